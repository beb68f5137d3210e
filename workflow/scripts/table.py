"""One per-dataset results table: long CSV (full precision) + Markdown + LaTeX."""
from featgeom.io import write_text
from featgeom.reporting import build_table
from featgeom.rule_io import rule_log, write_rule_provenance

with rule_log(snakemake):
    inputs = {k: list(snakemake.input[k]) for k in ("metrics", "probe", "collapse") if k in snakemake.input.keys()}
    summary, markdown, latex = build_table(snakemake.wildcards.table, inputs, snakemake.params.experiments,
                                           ddof=snakemake.params.ddof, banner=snakemake.params.pilot)
    write_text(snakemake.output.csv, summary.to_csv(index=False))
    write_text(snakemake.output.md, markdown)
    write_text(snakemake.output.tex, latex)
    write_rule_provenance(snakemake)
