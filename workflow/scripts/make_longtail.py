"""Subsample the training split to an exponential long-tail profile (val/test stay balanced)."""
from featgeom.data.arrays import class_counts, load_arrays, save_arrays
from featgeom.data.longtail import make_longtail, pool_train_and_val
from featgeom.io import write_json
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    spec = snakemake.params.longtail
    arrays = load_arrays(snakemake.input.arrays)
    if spec["pool"] == "train_and_val":
        arrays = pool_train_and_val(arrays)
    arrays = make_longtail(arrays, rho=spec["rho"], seed=spec["seed"],
                           min_per_class=snakemake.params.min_per_class)
    save_arrays(snakemake.output.arrays, arrays)
    counts = class_counts(arrays["train_labels"], len(arrays["class_names"]))
    write_json(snakemake.output.counts, {"rho": spec["rho"], "counts": counts.tolist(), "total": int(counts.sum())})
    print(f"long tail rho={spec['rho']}: {counts.sum()} training images, {counts.max()}..{counts.min()} per class")
