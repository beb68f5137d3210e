"""featgeom.layout: a run folder's path, its pattern and its parsing agree."""
import pytest

from featgeom.layout import RUN_DIR, parse_run_dir, run_dirs_glob, run_outputs, run_path


def test_a_run_file_is_parsed_back_into_its_run():
    path = run_path("cifar100", "coarse_fine", "hinge_ce", 3, "metrics.json")
    assert path == "results/cifar100/coarse_fine/hinge_ce/seed3/metrics.json"
    assert parse_run_dir(f"/scratch/pilot/{path}") == {"dataset": "cifar100", "experiment": "coarse_fine",
                                                       "method": "hinge_ce", "seed": 3}


def test_a_file_outside_a_run_folder_is_rejected():
    with pytest.raises(ValueError, match="not inside a run folder"):
        parse_run_dir("results/a/metrics.json")


def test_run_outputs_are_the_run_folders_files_with_features_only_where_asked():
    outputs = run_outputs("d", "e", "m", 2, features=True)
    assert outputs["run_dir"] == RUN_DIR.format(dataset="d", experiment="e", method="m", seed=2)
    assert outputs["checkpoint"] == "results/d/e/m/seed2/checkpoint_best.pt"
    assert outputs["features"] == "results/d/e/m/seed2/features.npz"
    assert "features" not in run_outputs("d", "e", "m", 2, features=False)


def test_the_run_folder_glob_finds_run_folders_only(tmp_path):
    for folder in ("c100/main/ce_t1/seed0", "c100/main/ce_t1/seed1", "c100/data", "c100/tables/x/y"):
        (tmp_path / folder).mkdir(parents=True)
    found = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob(run_dirs_glob()))
    assert found == ["c100/main/ce_t1/seed0", "c100/main/ce_t1/seed1"]
