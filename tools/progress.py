"""A one-screen progress summary of a running (or finished) workflow, from its runs' train.log files.

    python tools/progress.py                  # results/ of the current directory
    python tools/progress.py /tmp/pilot/results
    watch -n 60 python tools/progress.py      # refreshed every minute

Per experiment: runs finished, training and other (waiting, stopped), and an ETA (remaining epochs at the measured
epoch time, shared over the runs training now); then epoch / total of every run not finished. Reads text only.
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from featgeom.layout import RESULTS  # noqa: E402
from featgeom.progress import summarise  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default=RESULTS, help="the workflow's results/ folder")
    print(summarise(Path(parser.parse_args(argv).results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
