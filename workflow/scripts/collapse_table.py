"""Per-dataset neural-collapse table (final epoch, train features), mean +- 95% CI over seeds."""
from featgeom.io import write_text
from featgeom.reporting import build_table
from featgeom.rule_io import rule_log

with rule_log(snakemake):
    summary, markdown, latex = build_table("collapse", {"collapse": list(snakemake.input.collapse)},
                                           snakemake.params.experiments, ddof=snakemake.params.ddof)
    write_text(snakemake.output.csv, summary.to_csv(index=False))
    write_text(snakemake.output.md, markdown)
    write_text(snakemake.output.tex, latex)
