"""Every table and figure of a dataset, by name: the one list the rules' targets and wildcard constraints are made
from (workflow/rules/common.smk, report.smk), and that tests/test_registry.py checks the rules, the schema and the
report captions against.

An `Output` is called like the function that builds it; that function is named "module:function" and imported at
the call, by the job that builds the output, so that parsing the rules (every SLURM job does) imports neither pandas
nor matplotlib. `needs` says which datasets get the output.
"""
from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

FROM_RUNS = "featgeom.reporting:build_table"  # mean ± CI over seeds of the runs' files (rule `table`)


@dataclass(frozen=True)
class Output:
    """builder: "module:function"; needs: what a dataset must have to get the output, all of "kind:<experiment
    kind>" (an experiment of that kind), "published" (a published counterpart, `published:`) and "figures.<key>"
    (its `figures` block names the key)."""
    builder: str
    needs: tuple = ()

    def function(self):
        module, name = self.builder.split(":")
        return getattr(import_module(module), name)

    def __call__(self, *args, **kwargs):
        return self.function()(*args, **kwargs)

    def made_for(self, dataset: dict) -> bool:
        """Whether a dataset (its config block) gets this output."""
        kinds = {experiment["kind"] for experiment in dataset["experiments"].values()}
        holds = {"published": bool(dataset.get("published")),
                 **{f"kind:{kind}": True for kind in kinds},
                 **{f"figures.{key}": True for key in dataset.get("figures", {})}}
        return all(holds.get(need, False) for need in self.needs)


BESIDE_THE_PAPER = ("kind:hierarchy", "published")  # needs the `main` table and the paper's rows

TABLES = {
    "main": Output(FROM_RUNS, ("kind:hierarchy",)),
    "coarse_fine": Output(FROM_RUNS, ("kind:coarse_fine",)),
    "longtail": Output(FROM_RUNS, ("kind:longtail",)),
    "collapse": Output(FROM_RUNS),  # every experiment of the dataset
    "paper_vs_ours": Output("featgeom.comparison:build_paper_vs_ours", BESIDE_THE_PAPER),
    "ablation": Output("featgeom.comparison:build_ablation", BESIDE_THE_PAPER),
}

FIGURES = {
    "nc_curves": Output("featgeom.figures:plot_nc"),
    "tsne": Output("featgeom.figures:tsne_figure", ("figures.tsne_experiment",)),
    "muller": Output("featgeom.figures:muller_figure", ("figures.muller_experiment",)),
    "paper_vs_ours": Output("featgeom.figures:paper_vs_ours_figure", BESIDE_THE_PAPER),
}

RUN_TABLES = [name for name, table in TABLES.items() if table.builder == FROM_RUNS]
# The table of each experiment kind's runs (featgeom.config.experiments_of_table).
TABLE_OF_KIND = {need.removeprefix("kind:"): name for name in RUN_TABLES for need in TABLES[name].needs}


def names_for(outputs: dict, dataset: dict) -> list[str]:
    """The outputs (TABLES or FIGURES) a dataset (its config block) gets."""
    return [name for name, output in outputs.items() if output.made_for(dataset)]
