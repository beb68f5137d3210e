"""Check config files before Snakemake reads them: YAML syntax (file, line, column), schema, cross-references.

    python tools/check_config.py config/config.yaml config/pilot.yaml     # the files you pass to --configfile

Snakemake reads `--configfile` files before the Snakefile runs and reports a YAML syntax error as "Config file
is not valid JSON or YAML", naming neither file nor line. This script merges the files as Snakemake does (later
keys override, nested mappings merge) and runs the checks the Snakefile runs at start-up. No torch.
"""
import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from featgeom.config_files import checked_config, merge_config_files  # noqa: E402

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=[str(REPO / "config" / "config.yaml")],
                        help="config files in --configfile order (default: config/config.yaml)")
    args = parser.parse_args(argv)
    try:
        config = checked_config(merge_config_files(args.files), SCHEMA)
    except ValueError as err:  # ConfigError is a ValueError
        print(f"check_config: {err}", file=sys.stderr)
        return 1
    n_experiments = sum(len(ds["experiments"]) for ds in config["datasets"].values())
    print(f"ok: {' + '.join(args.files)}: {len(config['datasets'])} dataset(s), {n_experiments} experiment(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
