# featgeom: regenerate every table and figure of HAFrame (ICCV 2023) and MSC / Hinge CE.
#   snakemake --cores 8 --profile slurm                       (the papers, config/config.yaml)
#   snakemake --cores 2 --configfile config/demo.yaml         (embedded synthetic data, CPU)
# Only includes and target rules live here; see workflow/rules/*.smk.
import os

from snakemake.utils import min_version

from featgeom.config_files import load_config_file

min_version("9.0")


# The papers' config is the default; `--configfile X` replaces it instead of being merged into it
# (`--config key=value` still overrides single keys of whichever file is used).
# Files given with --configfile were read by Snakemake before this line (a syntax error there: tools/check_config.py
# names its line); the default one is read here first, so that a syntax error in it names file, line and column.
if not workflow.overwrite_configfiles:
    load_config_file(os.path.join(workflow.basedir, "config", "config.yaml"))

    configfile: os.path.join(workflow.basedir, "config", "config.yaml")


# `snakemake --report report.html`: every table and figure of the run, by dataset (captions in workflow/report/).
report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/hierarchy.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/train_packs.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    input:
        all_targets(),
    default_target: True
