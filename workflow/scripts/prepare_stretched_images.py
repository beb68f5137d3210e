"""tieredImageNet-H / iNat19: the stretched copies of MBM's split lists from the raw files, then verified like any
image folder (featgeom.data.prepare_raw)."""
from featgeom.data.manifest import folder_listing, verify_image_folder
from featgeom.data.prepare_raw import STRETCH_MARKER, prepare_raw_dataset
from featgeom.hierarchy_stage import load_hierarchy
from featgeom.io import read_json, write_json, write_text
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    images, cap = snakemake.params.images, snakemake.params.max_per_class
    tree = {key: snakemake.input[key] for key in ("paths", "edges") if key in snakemake.input.keys()}
    leaves = None if snakemake.params.flat else load_hierarchy(tree, []).leaves  # flat: any class name will do
    counts = prepare_raw_dataset(snakemake.params.source, images, leaves, max_per_class=cap, workers=snakemake.threads)
    print(f"{images}: {counts['written']} images written, {counts['kept']} kept from an earlier run "
          f"(split lists {counts['splits']})")
    manifest = verify_image_folder(images, max_per_class=cap, workers=snakemake.threads)
    # how the copies were made, and the files verified (path, size, mtime): a run's lineage hashes the manifest
    # (featgeom.lineage), so a new size, filter or split list, or a replaced image, makes a kept checkpoint stale.
    manifest["prepared"] = read_json(f"{images}/{STRETCH_MARKER}")
    manifest["listing_sha256"] = folder_listing(images)["sha256"]
    write_json(snakemake.output.manifest, manifest)
    write_text(snakemake.output.classes, "\n".join(manifest["classes"]) + "\n")
