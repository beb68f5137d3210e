# Report stage (no torch): per-dataset tables (long-format CSV -> Markdown + LaTeX + HTML, mean +- 95% CI
# over seeds), the paper-vs-ours comparison and ablation, and figures (t-SNE, Mueller projection,
# neural-collapse curves). Outputs flagged report() make up `snakemake --report report.html`, one
# category per dataset; captions in workflow/report/.


rule table:
    input:
        unpack(table_inputs),
    output:
        csv=f"{layout.TABLES}/{{table}}.csv",
        md=f"{layout.TABLES}/{{table}}.md",
        tex=f"{layout.TABLES}/{{table}}.tex",
        html=report(f"{layout.TABLES}/{{table}}.html", caption="../report/table.rst", category="{dataset}",
                    subcategory="tables", labels={"table": "{table}"}),
        provenance=f"{layout.TABLES}/{{table}}.provenance.json",
    params:
        experiments=lambda wc: {e: config["datasets"][wc.dataset]["experiments"][e]
                                for e in fg.experiments_of_table(config, wc.dataset, wc.table)},
        ddof=config["ci_ddof"],
        pilot=fg.pilot_banner(config),
        # a change of the training code reruns the tables (seconds), which then name the runs the old code made
        training_code=lambda wc: training_code_hash(),  # only where a table job is considered
    wildcard_constraints:
        table="|".join(registry.RUN_TABLES),
    log:
        f"{layout.DATASET_LOGS}/tables/{{table}}.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/table.py"


rule nc_curves:
    input:
        collapse=collapse_curve_files,
    output:
        png=report(f"{layout.FIGURES}/nc_curves.png", caption="../report/nc_curves.rst", category="{dataset}",
                   subcategory="figures", labels={"figure": "nc_curves"}),
        pdf=f"{layout.FIGURES}/nc_curves.pdf",
        provenance=f"{layout.FIGURES}/nc_curves.provenance.json",
    params:
        pilot=fg.pilot_banner(config),
    log:
        f"{layout.DATASET_LOGS}/figures/nc_curves.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/nc_curves.py"


rule tsne:
    input:
        unpack(class_names_source),
        features=figure_features("tsne_experiment"),
        levels=layout.LEVELS,
    output:
        png=report(f"{layout.FIGURES}/tsne.png", caption="../report/tsne.rst", category="{dataset}",
                   subcategory="figures", labels={"figure": "tsne"}),
        pdf=f"{layout.FIGURES}/tsne.pdf",
        provenance=f"{layout.FIGURES}/tsne.provenance.json",
    params:
        figures=lambda wc: config["datasets"][wc.dataset]["figures"],
        pilot=fg.pilot_banner(config),
    threads: config["threads_per_run"]
    log:
        f"{layout.DATASET_LOGS}/figures/tsne.log",
    benchmark:
        f"{layout.BENCHMARKS}/tsne.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/tsne.py"


rule muller:
    input:
        unpack(class_names_source),
        features=figure_features("muller_experiment"),
        levels=layout.LEVELS,
    output:
        png=report(f"{layout.FIGURES}/muller.png", caption="../report/muller.rst", category="{dataset}",
                   subcategory="figures", labels={"figure": "muller"}),
        pdf=f"{layout.FIGURES}/muller.pdf",
        provenance=f"{layout.FIGURES}/muller.provenance.json",
    params:
        figures=lambda wc: config["datasets"][wc.dataset]["figures"],
        pilot=fg.pilot_banner(config),
    log:
        f"{layout.DATASET_LOGS}/figures/muller.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/muller.py"


rule paper_vs_ours:
    input:
        main=f"{layout.TABLES}/main.csv",
        published=str(PUBLISHED_FILE),
    output:
        csv=f"{layout.TABLES}/paper_vs_ours.csv",
        md=f"{layout.TABLES}/paper_vs_ours.md",
        tex=f"{layout.TABLES}/paper_vs_ours.tex",
        html=report(f"{layout.TABLES}/paper_vs_ours.html", caption="../report/paper_vs_ours.rst",
                    category="{dataset}", subcategory="tables", labels={"table": "paper_vs_ours"}),
        png=report(f"{layout.FIGURES}/paper_vs_ours.png", caption="../report/paper_vs_ours_figure.rst",
                   category="{dataset}", subcategory="figures", labels={"figure": "paper_vs_ours"}),
        pdf=f"{layout.FIGURES}/paper_vs_ours.pdf",
        provenance=f"{layout.TABLES}/paper_vs_ours.provenance.json",
    params:
        published=published_name,
        ddof=config["ci_ddof"],
        pilot=fg.pilot_banner(config),
    log:
        f"{layout.DATASET_LOGS}/tables/paper_vs_ours.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/paper_vs_ours.py"


rule ablation:
    input:
        main=f"{layout.TABLES}/main.csv",
        published=str(PUBLISHED_FILE),
    output:
        csv=f"{layout.TABLES}/ablation.csv",
        md=f"{layout.TABLES}/ablation.md",
        tex=f"{layout.TABLES}/ablation.tex",
        html=report(f"{layout.TABLES}/ablation.html", caption="../report/ablation.rst",
                    category="{dataset}", subcategory="tables", labels={"table": "ablation"}),
        provenance=f"{layout.TABLES}/ablation.provenance.json",
    params:
        published=published_name,
        ddof=config["ci_ddof"],
        pilot=fg.pilot_banner(config),
    log:
        f"{layout.DATASET_LOGS}/tables/ablation.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/ablation.py"
