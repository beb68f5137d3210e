"""A training run keeps its own log across attempts, although Snakemake deletes the rule log before each."""
from types import SimpleNamespace

import pytest

from featgeom.rule_io import RUN_LOG, rule_log


def attempt(tmp_path, lines, fail=False):
    """One run of the train script: Snakemake has just deleted the declared log (Job.remove_existing_output)."""
    rule_log_path = tmp_path / "logs" / "train.log"
    rule_log_path.parent.mkdir(exist_ok=True)
    rule_log_path.unlink(missing_ok=True)
    with rule_log(SimpleNamespace(log=[str(rule_log_path)]), keep_in=tmp_path / "run") as log:
        for line in lines:
            print(line, file=log)
        print("via stdout")
        if fail:
            raise KeyboardInterrupt("simulated SLURM kill")
    return rule_log_path.read_text()


def test_two_attempts_append_to_the_run_log(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        attempt(tmp_path, ["epoch=1", "epoch=2"], fail=True)
    second = attempt(tmp_path, ["resumed from last_checkpoint.pt after epoch 2", "epoch=3"])
    assert "epoch=1" not in second and "epoch=3" in second  # the rule log only has the last attempt

    lines = (tmp_path / "run" / RUN_LOG).read_text().splitlines()
    headers = [line for line in lines if line.startswith("==== attempt")]
    assert [h.split()[2:4] for h in headers] == [["1", "started"], ["1", "failed"],
                                                  ["2", "started"], ["2", "finished"]]
    assert lines.index("epoch=1") < lines.index("epoch=2") < lines.index(headers[2]) < lines.index("epoch=3")
    assert lines.count("via stdout") == 2 and any("KeyboardInterrupt" in line for line in lines[:lines.index(headers[2])])


def test_rule_log_without_run_folder_is_unchanged(tmp_path):
    rule_log_path = tmp_path / "rule.log"
    with rule_log(SimpleNamespace(log=[str(rule_log_path)])) as log:
        print("hello", file=log)
    assert rule_log_path.read_text() == "hello\n" and not (tmp_path / RUN_LOG).exists()
