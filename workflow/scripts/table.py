"""One per-dataset results table: long CSV (full precision) + Markdown + LaTeX + HTML (for the report)."""
from featgeom.reporting import build_table, write_table_files
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    inputs = {k: list(snakemake.input[k]) for k in ("metrics", "probe", "collapse", "provenance")
              if k in snakemake.input.keys()}
    summary, document = build_table(snakemake.wildcards.table, inputs, snakemake.params.experiments,
                                    ddof=snakemake.params.ddof, banner=snakemake.params.pilot)
    write_table_files(snakemake.output, summary, document,
                      f"{snakemake.wildcards.dataset}: {snakemake.wildcards.table}")
    write_rule_provenance(snakemake)
