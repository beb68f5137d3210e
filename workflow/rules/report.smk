# Report stage (no torch): per-dataset tables (long-format CSV -> Markdown + LaTeX + HTML, mean +- 95% CI
# over seeds), the paper-vs-ours comparison and ablation, and figures (t-SNE, Mueller projection,
# neural-collapse curves). Outputs flagged report() make up `snakemake --report report.html`, one
# category per dataset; captions in workflow/report/.


rule table:
    input:
        unpack(table_inputs),
    output:
        csv="results/{dataset}/tables/{table}.csv",
        md="results/{dataset}/tables/{table}.md",
        tex="results/{dataset}/tables/{table}.tex",
        html=report("results/{dataset}/tables/{table}.html", caption="../report/table.rst", category="{dataset}",
                    subcategory="tables", labels={"table": "{table}"}),
        provenance="results/{dataset}/tables/{table}.provenance.json",
    params:
        experiments=lambda wc: {e: config["datasets"][wc.dataset]["experiments"][e]
                                for e in fg.experiments_of_table(config, wc.dataset, wc.table)},
        ddof=config.get("ci_ddof", 0),
        pilot=fg.pilot_banner(config),
        # a change of the training code reruns the tables (seconds), which then name the runs the old code made
        training_code=lambda wc: training_code_hash(),  # only where a table job is considered
    wildcard_constraints:
        table="|".join(registry.RUN_TABLES),
    log:
        "logs/{dataset}/tables/{table}.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/table.py"


rule nc_curves:
    input:
        collapse=collapse_curve_files,
    output:
        png=report("results/{dataset}/figures/nc_curves.png", caption="../report/nc_curves.rst", category="{dataset}",
                   subcategory="figures", labels={"figure": "nc_curves"}),
        pdf="results/{dataset}/figures/nc_curves.pdf",
        provenance="results/{dataset}/figures/nc_curves.provenance.json",
    params:
        pilot=fg.pilot_banner(config),
    log:
        "logs/{dataset}/figures/nc_curves.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/nc_curves.py"


rule tsne:
    input:
        unpack(class_names_source),
        features=figure_features("tsne_experiment"),
        levels="results/{dataset}/hierarchy/levels.json",
    output:
        png=report("results/{dataset}/figures/tsne.png", caption="../report/tsne.rst", category="{dataset}",
                   subcategory="figures", labels={"figure": "tsne"}),
        pdf="results/{dataset}/figures/tsne.pdf",
        provenance="results/{dataset}/figures/tsne.provenance.json",
    params:
        figures=lambda wc: config["datasets"][wc.dataset]["figures"],
        pilot=fg.pilot_banner(config),
    threads: config.get("threads_per_run", 1)
    log:
        "logs/{dataset}/figures/tsne.log",
    benchmark:
        "results/{dataset}/benchmarks/tsne.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/tsne.py"


rule muller:
    input:
        unpack(class_names_source),
        features=figure_features("muller_experiment"),
        levels="results/{dataset}/hierarchy/levels.json",
    output:
        png=report("results/{dataset}/figures/muller.png", caption="../report/muller.rst", category="{dataset}",
                   subcategory="figures", labels={"figure": "muller"}),
        pdf="results/{dataset}/figures/muller.pdf",
        provenance="results/{dataset}/figures/muller.provenance.json",
    params:
        figures=lambda wc: config["datasets"][wc.dataset]["figures"],
        pilot=fg.pilot_banner(config),
    log:
        "logs/{dataset}/figures/muller.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/muller.py"


rule paper_vs_ours:
    input:
        main="results/{dataset}/tables/main.csv",
        published=str(PUBLISHED_FILE),
    output:
        csv="results/{dataset}/tables/paper_vs_ours.csv",
        md="results/{dataset}/tables/paper_vs_ours.md",
        tex="results/{dataset}/tables/paper_vs_ours.tex",
        html=report("results/{dataset}/tables/paper_vs_ours.html", caption="../report/paper_vs_ours.rst",
                    category="{dataset}", subcategory="tables", labels={"table": "paper_vs_ours"}),
        png=report("results/{dataset}/figures/paper_vs_ours.png", caption="../report/paper_vs_ours_figure.rst",
                   category="{dataset}", subcategory="figures", labels={"figure": "paper_vs_ours"}),
        pdf="results/{dataset}/figures/paper_vs_ours.pdf",
        provenance="results/{dataset}/tables/paper_vs_ours.provenance.json",
    params:
        published=published_name,
        ddof=config.get("ci_ddof", 0),
        pilot=fg.pilot_banner(config),
    log:
        "logs/{dataset}/tables/paper_vs_ours.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/paper_vs_ours.py"


rule ablation:
    input:
        main="results/{dataset}/tables/main.csv",
        published=str(PUBLISHED_FILE),
    output:
        csv="results/{dataset}/tables/ablation.csv",
        md="results/{dataset}/tables/ablation.md",
        tex="results/{dataset}/tables/ablation.tex",
        html=report("results/{dataset}/tables/ablation.html", caption="../report/ablation.rst",
                    category="{dataset}", subcategory="tables", labels={"table": "ablation"}),
        provenance="results/{dataset}/tables/ablation.provenance.json",
    params:
        published=published_name,
        ddof=config.get("ci_ddof", 0),
        pilot=fg.pilot_banner(config),
    log:
        "logs/{dataset}/tables/ablation.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/ablation.py"
