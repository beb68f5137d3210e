"""One per-dataset results table: long CSV (full precision) + Markdown + LaTeX + HTML (for the report)."""
from featgeom.registry import TABLES
from featgeom.reporting import write_table_files
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    inputs = {k: list(snakemake.input[k]) for k in ("metrics", "probe", "collapse", "provenance")
              if k in snakemake.input.keys()}
    table = snakemake.wildcards.table
    summary, document = TABLES[table](table, inputs, snakemake.params.experiments, ddof=snakemake.params.ddof,
                                      banner=snakemake.params.pilot)
    write_table_files(snakemake.output, summary, document, f"{snakemake.wildcards.dataset}: {table}")
    write_rule_provenance(snakemake)
