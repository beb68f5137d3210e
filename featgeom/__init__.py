"""featgeom: reproduce HAFrame (ICCV 2023) and MSC / Hinge CE ("Do we need neural collapse?").

The package holds all logic; workflow/scripts/*.py are thin wrappers called by Snakemake.
Modules that never train (hierarchy, frames, metrics, stats, tables, collapse, probe, plots)
import only numpy/pandas/scipy/sklearn/matplotlib, never torch.
"""

__version__ = "0.1.0"
