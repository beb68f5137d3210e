"""Verify (md5), extract and convert CIFAR-10/100 into the arrays .npz (download if allowed)."""
from featgeom.data.cifar import prepare_cifar
from featgeom.data.arrays import load_arrays
from featgeom.io import write_text
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    source = snakemake.params.source
    prepare_cifar(source["kind"], source["root"], snakemake.output.arrays, download=source.get("download", False))
    names = load_arrays(snakemake.output.arrays)["class_names"]
    write_text(snakemake.output.classes, "\n".join(names) + "\n")
