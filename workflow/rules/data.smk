# Data stage: build or verify each dataset once, into results/{dataset}/data/.
# No raw dataset file is a declared input, so `snakemake -n` resolves the papers' DAG on a
# machine without the datasets; the jobs themselves fail with a message naming what is missing.


rule prepare_synthetic:
    output:
        arrays="results/{dataset}/data/arrays.npz",
        classes="results/{dataset}/data/classes.txt",
        paths="results/{dataset}/data/paths.csv",
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
    wildcard_constraints:
        dataset=datasets_of_kind("synthetic"),
    log:
        "logs/{dataset}/data/prepare.log",
    benchmark:
        "results/{dataset}/benchmarks/prepare.tsv"
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/prepare_synthetic.py"


rule prepare_cifar:
    output:
        arrays="results/{dataset}/data/arrays.npz",
        classes="results/{dataset}/data/classes.txt",
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
    wildcard_constraints:
        dataset=datasets_of_kind("cifar100", "cifar10"),
    log:
        "logs/{dataset}/data/prepare.log",
    benchmark:
        "results/{dataset}/benchmarks/prepare.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/prepare_cifar.py"


rule verify_image_folder:
    output:
        manifest="results/{dataset}/data/image_folder.json",
        classes="results/{dataset}/data/classes.txt",
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
    wildcard_constraints:
        dataset=datasets_of_kind("image_folder"),
    log:
        "logs/{dataset}/data/verify.log",
    benchmark:
        "results/{dataset}/benchmarks/verify.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/verify_image_folder.py"


rule make_longtail:
    input:
        arrays="results/{dataset}/data/arrays.npz",
    output:
        arrays="results/{dataset}/data/{experiment}_longtail.npz",
        counts="results/{dataset}/data/{experiment}_train_counts.json",
    params:
        longtail=lambda wc: experiment_spec(wc)["longtail"],
    log:
        "logs/{dataset}/data/{experiment}_longtail.log",
    benchmark:
        "results/{dataset}/benchmarks/{experiment}_longtail.tsv"
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/make_longtail.py"
