"""Resize every image of a verified image folder once to size x size (featgeom.data.resized): the cache that
crop_flip runs (FGVC) read instead of decoding and resizing each image every epoch."""
from featgeom.data.resized import write_resized
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    write_resized(snakemake.input.manifest, int(snakemake.wildcards.size), snakemake.output.images,
                  snakemake.output.key, workers=snakemake.threads)
