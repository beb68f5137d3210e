"""The one piece every workflow script shares: send its output to the rule's log file."""
from __future__ import annotations

import contextlib
import sys
import traceback


@contextlib.contextmanager
def rule_log(snakemake):
    """Redirect stdout/stderr to snakemake.log[0]; the traceback of a failure lands there too."""
    if not snakemake.log:
        yield sys.stderr
        return
    with open(snakemake.log[0], "a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        try:
            yield log
        except BaseException:
            traceback.print_exc(file=log)
            raise


def write_rule_provenance(snakemake) -> None:
    """provenance.json of a per-dataset output (tables, figures, hierarchy): the rule's params and
    inputs, git SHA and package versions."""
    from featgeom.provenance import write_provenance

    write_provenance(snakemake.output.provenance, {"rule": snakemake.rule, "params": dict(snakemake.params.items()),
                                                   "inputs": [str(p) for p in snakemake.input]})
