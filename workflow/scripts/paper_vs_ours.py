"""Paper vs ours of one dataset: comparison CSV + Markdown + LaTeX + HTML, and its figure (PNG + PDF)."""
from pathlib import Path

import pandas as pd

from featgeom.comparison import heading
from featgeom.published import read_published
from featgeom.registry import FIGURES, TABLES
from featgeom.reporting import write_table_files
from featgeom.rule_io import rule_log, write_rule_provenance
from featgeom.tables import plain_text

with rule_log(snakemake):
    dataset, params = snakemake.wildcards.dataset, snakemake.params
    summary, cells = pd.read_csv(snakemake.input.main), read_published(snakemake.input.published)
    frame, document = TABLES["paper_vs_ours"](summary, cells, dataset, params.published, ddof=params.ddof,
                                              banner=params.pilot)
    title = plain_text(heading(dataset, params.published, frame))
    write_table_files(snakemake.output, frame, document, title)
    FIGURES["paper_vs_ours"](frame, Path(snakemake.output.png).with_suffix(""), title=title, banner=params.pilot)
    write_rule_provenance(snakemake)
