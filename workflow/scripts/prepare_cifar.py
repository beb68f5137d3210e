"""Verify (md5), extract and convert CIFAR-10/100 into the arrays .npz (download if allowed)."""
from featgeom.data.arrays import save_arrays
from featgeom.data.cifar import prepare_cifar
from featgeom.data.limits import apply_data_limits
from featgeom.io import write_text
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    source = snakemake.params.source
    arrays = prepare_cifar(source["kind"], source["root"], download=source["download"],
                           md5=source.get("md5"))
    arrays = apply_data_limits(arrays, snakemake.params.limits, snakemake.output.arrays)
    save_arrays(snakemake.output.arrays, arrays)
    write_text(snakemake.output.classes, "\n".join(arrays["class_names"]) + "\n")
