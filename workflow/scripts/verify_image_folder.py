"""Check an image-folder dataset (root/{train,val,test}/<class>/...) and list its classes."""
from featgeom.data.manifest import verify_image_folder
from featgeom.io import write_json, write_text
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    manifest = verify_image_folder(snakemake.params.source["root"])
    write_json(snakemake.output.manifest, manifest)
    write_text(snakemake.output.classes, "\n".join(manifest["classes"]) + "\n")
