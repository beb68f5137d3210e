"""Check an image-folder dataset (root/{train,val,test}/<class>/...), decode every image, and list
its classes and the files training will read."""
from featgeom.data.manifest import verify_image_folder
from featgeom.io import read_json, write_json, write_text
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    # .get: the rule may not pass max_per_class (no pilot cap = every image).
    manifest = verify_image_folder(snakemake.params.source["root"],
                                   max_per_class=snakemake.params.get("max_per_class"),
                                   workers=snakemake.threads)
    # The files verified, by path, size and mtime: a run's lineage hashes the manifest (featgeom.lineage), so an
    # image replaced under the same name makes a kept checkpoint stale too.
    manifest["listing_sha256"] = read_json(snakemake.input.listing)["sha256"]
    write_json(snakemake.output.manifest, manifest)
    write_text(snakemake.output.classes, "\n".join(manifest["classes"]) + "\n")
