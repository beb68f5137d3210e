# Report stage (no torch): per-dataset tables (long-format CSV -> Markdown + LaTeX, mean +- 95% CI
# over seeds) and figures (t-SNE, Mueller projection, neural-collapse curves).


rule table:
    input:
        unpack(table_inputs),
    output:
        csv="results/{dataset}/tables/{table}.csv",
        md="results/{dataset}/tables/{table}.md",
        tex="results/{dataset}/tables/{table}.tex",
        provenance="results/{dataset}/tables/{table}.provenance.json",
    params:
        experiments=lambda wc: {e: config["datasets"][wc.dataset]["experiments"][e]
                                for e in fg.experiments_of_table(config, wc.dataset, wc.table)},
        ddof=config.get("ci_ddof", 0),
        pilot=fg.pilot_banner(config),
    wildcard_constraints:
        table="main|coarse_fine|longtail|collapse",
    log:
        "logs/{dataset}/tables/{table}.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/table.py"


rule nc_curves:
    input:
        collapse=lambda wc: [f for name, exp in config["datasets"][wc.dataset]["experiments"].items()
                             for f in experiment_files(wc.dataset, name, "collapse.json",
                                                       methods=fg.trained_methods(exp), seeds=[0])],
    output:
        png="results/{dataset}/figures/nc_curves.png",
        pdf="results/{dataset}/figures/nc_curves.pdf",
        provenance="results/{dataset}/figures/nc_curves.provenance.json",
    params:
        experiments=lambda wc: config["datasets"][wc.dataset]["experiments"],
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
        features=figure_features("tsne_experiment"),
        levels="results/{dataset}/hierarchy/levels.json",
    output:
        png="results/{dataset}/figures/tsne.png",
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
        features=figure_features("muller_experiment"),
        levels="results/{dataset}/hierarchy/levels.json",
    output:
        png="results/{dataset}/figures/muller.png",
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
