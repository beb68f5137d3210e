# Data stage: build or verify each dataset once, into results/{dataset}/data/.
# No raw dataset file is a declared input, so `snakemake -n` resolves the papers' DAG on a
# machine without the datasets; the jobs themselves fail with a message naming what is missing.
# An image folder is stood for by its listing (common.smk, write_image_listings), which exists with or
# without the dataset. Archives (CIFAR, FGVC-Aircraft) need none: a job accepts only the archive of the
# configured md5 (source.md5 or the official one), so its results hold for as long as that md5 stays.


rule prepare_synthetic:
    output:
        arrays=layout.ARRAYS,
        classes=layout.CLASSES,
        paths=layout.SYNTHETIC_PATHS,
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        limits=fg.data_limits(config),
    wildcard_constraints:
        dataset=datasets_prepared_by("prepare_synthetic"),
    log:
        f"{layout.DATASET_LOGS}/data/prepare.log",
    benchmark:
        f"{layout.BENCHMARKS}/prepare.tsv"
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/prepare_synthetic.py"


rule prepare_cifar:
    output:
        arrays=layout.ARRAYS,
        classes=layout.CLASSES,
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        limits=fg.data_limits(config),
    wildcard_constraints:
        dataset=datasets_prepared_by("prepare_cifar"),
    log:
        f"{layout.DATASET_LOGS}/data/prepare.log",
    benchmark:
        f"{layout.BENCHMARKS}/prepare.tsv"
    resources:
        mem_mb=4000,
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/prepare_cifar.py"


rule verify_image_folder:
    input:
        listing=layout.IMAGE_LISTING,
    output:
        manifest=layout.IMAGE_MANIFEST,
        classes=layout.CLASSES,
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        max_per_class=fg.data_limits(config).get("images_per_class"),
    wildcard_constraints:
        dataset=datasets_prepared_by("verify_image_folder"),
    threads: config["threads_per_run"]
    log:
        f"{layout.DATASET_LOGS}/data/verify.log",
    benchmark:
        f"{layout.BENCHMARKS}/verify.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/verify_image_folder.py"


rule prepare_fgvc_aircraft:
    # HAFrame's preprocessing (banner crop, v-<variant> folders) from the official archive, then the
    # same verification and manifest as any image folder.
    output:
        manifest=layout.IMAGE_MANIFEST,
        classes=layout.CLASSES,
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        images=f"{layout.DATA}/images",
        max_per_class=fg.data_limits(config).get("images_per_class"),
    wildcard_constraints:
        dataset=datasets_prepared_by("prepare_fgvc_aircraft"),
    threads: config["threads_per_run"]
    log:
        f"{layout.DATASET_LOGS}/data/prepare.log",
    benchmark:
        f"{layout.BENCHMARKS}/prepare.tsv"
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
        manifest=layout.IMAGE_MANIFEST,
        classes=layout.CLASSES,
    params:
        source=lambda wc: config["datasets"][wc.dataset]["source"],
        flat=lambda wc: config["datasets"][wc.dataset]["hierarchy"]["flat"],
        images=lambda wc: fg.stretched_folder(config, wc.dataset),
        max_per_class=fg.data_limits(config).get("images_per_class"),
    wildcard_constraints:
        dataset=datasets_prepared_by("prepare_stretched_images"),
    threads: config["threads_per_run"]
    log:
        f"{layout.DATASET_LOGS}/data/prepare.log",
    benchmark:
        f"{layout.BENCHMARKS}/prepare.tsv"
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
        f"{layout.LOGS}/fetch_imagenet_weights.log",
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/fetch_imagenet_weights.py"


rule make_longtail:
    input:
        arrays=layout.ARRAYS,
    output:
        arrays=layout.LONGTAIL_ARRAYS,
        counts=layout.LONGTAIL_TRAIN_COUNTS,
    params:
        longtail=lambda wc: experiment_spec(wc)["longtail"],
        # A pilot run's few images per class would leave tail classes empty: keep at least one.
        min_per_class=1 if fg.data_limits(config) else 0,
    log:
        f"{layout.DATASET_LOGS}/data/{{experiment}}_longtail.log",
    benchmark:
        f"{layout.BENCHMARKS}/{{experiment}}_longtail.tsv"
    localrule: True
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/make_longtail.py"


rule resize_images:
    # The deterministic Resize((size, size)) of every image, done once (featgeom/data/resized.py): the input of
    # runs whose every pass starts with it (crop_flip: FGVC), common.smk's resized_input.
    input:
        manifest=layout.IMAGE_MANIFEST,
    output:
        images=layout.RESIZED_IMAGES,
        key=layout.RESIZED_KEY,
    wildcard_constraints:
        size=r"\d+",
    threads: config["threads_per_run"]
    log:
        f"{layout.DATASET_LOGS}/data/resize_{{size}}.log",
    benchmark:
        f"{layout.BENCHMARKS}/resize_{{size}}.tsv"
    conda:
        "../../envs/featgeom.yaml"
    script:
        "../scripts/resize_images.py"
