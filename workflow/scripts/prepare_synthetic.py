"""Generate the embedded `synthetic` dataset and its tree (paths CSV) from the config seed."""
from featgeom.data.arrays import save_arrays
from featgeom.data.limits import apply_data_limits
from featgeom.data.synthetic import make_synthetic
from featgeom.hierarchy import Hierarchy, write_paths_csv
from featgeom.io import write_text
from featgeom.rule_io import rule_log

# the rest of `source` is not for the generator
GENERATOR_KEYS = ("seed", "branching", "n_train", "n_val", "n_test", "noise", "image_size")

with rule_log(snakemake):
    source = {k: v for k, v in snakemake.params.source.items() if k in GENERATOR_KEYS}
    arrays, rows = make_synthetic(**source)
    arrays = apply_data_limits(arrays, snakemake.params.limits, snakemake.output.arrays)
    save_arrays(snakemake.output.arrays, arrays)
    write_paths_csv(snakemake.output.paths, Hierarchy(rows, source="synthetic generator"))
    write_text(snakemake.output.classes, "\n".join(arrays["class_names"]) + "\n")
    print(f"synthetic: {len(rows)} classes, {len(arrays['train_labels'])} train images")
