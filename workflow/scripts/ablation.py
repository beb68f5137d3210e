"""HAFrame Table 6 ablation layout of one dataset, ours beside the paper's: CSV + Markdown + LaTeX + HTML."""
import pandas as pd

from featgeom.published import read_published
from featgeom.registry import TABLES
from featgeom.reporting import write_table_files
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    dataset, params = snakemake.wildcards.dataset, snakemake.params
    summary, cells = pd.read_csv(snakemake.input.main), read_published(snakemake.input.published)
    frame, document = TABLES["ablation"](summary, cells, dataset, params.published, ddof=params.ddof,
                                         banner=params.pilot)
    write_table_files(snakemake.output, frame, document, f"{dataset}: ablation (HAFrame Table 6 layout)")
    write_rule_provenance(snakemake)
