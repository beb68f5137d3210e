"""FGVC-Aircraft: HAFrame's class folders from the official archive, then verified like any image folder."""
from featgeom.data.fgvc import prepare_fgvc_aircraft
from featgeom.data.manifest import verify_image_folder
from featgeom.io import write_json, write_text
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    source = snakemake.params.source
    counts = prepare_fgvc_aircraft(source["root"], snakemake.params.images, download=source["download"],
                                   md5=source.get("md5"), workers=snakemake.threads)
    print(f"prepared {counts} images in {snakemake.params.images}")
    manifest = verify_image_folder(snakemake.params.images, max_per_class=snakemake.params.max_per_class,
                                   workers=snakemake.threads)
    write_json(snakemake.output.manifest, manifest)
    write_text(snakemake.output.classes, "\n".join(manifest["classes"]) + "\n")
