# Data stage: build or verify each dataset once, into results/{dataset}/data/.
# No raw dataset file is a declared input, so `snakemake -n` resolves the papers' DAG on a
# machine without the datasets; the jobs themselves fail with a message naming what is missing.
# An image folder is stood for by its listing (common.smk, write_image_listings), which exists with or
# without the dataset. Archives (CIFAR, FGVC-Aircraft) need none: a job accepts only the archive of the
# configured md5 (source.md5 or the official one), so its results hold for as long as that md5 stays.


rule prepare_synthetic:
    output:
        arrays="results/{dataset}/data/arrays.npz",
        classes="results/{dataset}/data/classes.txt",
        paths="results/{dataset}/data/paths.csv",
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        limits=fg.data_limits(config),
    wildcard_constraints:
        dataset=datasets_prepared_by("prepare_synthetic"),
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
        limits=fg.data_limits(config),
    wildcard_constraints:
        dataset=datasets_prepared_by("prepare_cifar"),
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
    input:
        listing=IMAGE_LISTING,
    output:
        manifest="results/{dataset}/data/image_folder.json",
        classes="results/{dataset}/data/classes.txt",
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        max_per_class=fg.data_limits(config).get("images_per_class"),
    wildcard_constraints:
        dataset=datasets_prepared_by("verify_image_folder"),
    threads: config.get("threads_per_run", 1)
    log:
        "logs/{dataset}/data/verify.log",
    benchmark:
        "results/{dataset}/benchmarks/verify.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/verify_image_folder.py"


rule prepare_fgvc_aircraft:
    # HAFrame's preprocessing (banner crop, v-<variant> folders) from the official archive, then the
    # same verification and manifest as any image folder.
    output:
        manifest="results/{dataset}/data/image_folder.json",
        classes="results/{dataset}/data/classes.txt",
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        images="results/{dataset}/data/images",
        max_per_class=fg.data_limits(config).get("images_per_class"),
    wildcard_constraints:
        dataset=datasets_prepared_by("prepare_fgvc_aircraft"),
    threads: config.get("threads_per_run", 1)
    log:
        "logs/{dataset}/data/prepare.log",
    benchmark:
        "results/{dataset}/benchmarks/prepare.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/prepare_fgvc_aircraft.py"


rule prepare_stretched_images:
    # tieredImageNet-H / iNat19 as the papers trained on them: the images of MBM's split lists, from the raw
    # ILSVRC-2012 / iNaturalist 2019 files, stretched to source.stretch (featgeom.data.prepare_raw), then the
    # same verification and manifest as any image folder. The folder is named by the size: a new size is
    # prepared afresh beside the old one, never mixed into it.
    input:
        unpack(tree_files),
    output:
        manifest="results/{dataset}/data/image_folder.json",
        classes="results/{dataset}/data/classes.txt",
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        flat=lambda wc: config["datasets"][wc.dataset]["hierarchy"].get("flat", False),
        images=lambda wc: fg.stretched_folder(config, wc.dataset),
        max_per_class=fg.data_limits(config).get("images_per_class"),
    wildcard_constraints:
        dataset=datasets_prepared_by("prepare_stretched_images"),
    threads: config.get("threads_per_run", 1)
    log:
        "logs/{dataset}/data/prepare.log",
    benchmark:
        "results/{dataset}/benchmarks/prepare.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/prepare_stretched_images.py"


rule fetch_imagenet_weights:
    # torchvision's ResNet-50 IMAGENET1K_V1 file, fetched once on the submitting node (compute nodes
    # are often offline) and checked against torchvision's sha256 prefix.
    output:
        weights=fg.imagenet_weights_path(config),
    log:
        "logs/fetch_imagenet_weights.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/fetch_imagenet_weights.py"


rule make_longtail:
    input:
        arrays="results/{dataset}/data/arrays.npz",
    output:
        arrays="results/{dataset}/data/{experiment}_longtail.npz",
        counts="results/{dataset}/data/{experiment}_train_counts.json",
    params:
        longtail=lambda wc: experiment_spec(wc)["longtail"],
        # A pilot run's few images per class would leave tail classes empty: keep at least one.
        min_per_class=1 if fg.data_limits(config) else 0,
    log:
        "logs/{dataset}/data/{experiment}_longtail.log",
    benchmark:
        "results/{dataset}/benchmarks/{experiment}_longtail.tsv"
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/make_longtail.py"


rule resize_images:
    # The deterministic Resize((size, size)) of every image, done once (featgeom/data/resized.py): the input of
    # runs whose every pass starts with it (crop_flip: FGVC), common.smk's resized_input.
    input:
        manifest="results/{dataset}/data/image_folder.json",
    output:
        images="results/{dataset}/data/resized_{size}.npy",
        key="results/{dataset}/data/resized_{size}.json",
    wildcard_constraints:
        size=r"\d+",
    threads: config.get("threads_per_run", 1)
    log:
        "logs/{dataset}/data/resize_{size}.log",
    benchmark:
        "results/{dataset}/benchmarks/resize_{size}.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/resize_images.py"
