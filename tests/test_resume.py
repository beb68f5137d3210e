"""A killed training job, rerun, ends exactly where an uninterrupted one does (CPU)."""
import numpy as np
import pytest

import featgeom.train as train_module
from featgeom.data.arrays import save_arrays
from featgeom.data.synthetic import make_synthetic
from featgeom.hierarchy import Hierarchy, write_distance_csv, write_paths_csv
from featgeom.hierarchy_stage import build_hierarchy_outputs
from featgeom.io import read_json, write_json
from featgeom.runner import run_training
from featgeom.train import load_checkpoint


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    arrays, rows = make_synthetic(seed=1, branching=(2, 3), n_train=10, n_val=3, n_test=4)
    save_arrays(folder / "arrays.npz", arrays)
    classes = [str(c) for c in arrays["class_names"]]
    paths = folder / "paths.csv"
    write_paths_csv(paths, Hierarchy(rows))
    order, distances, levels = build_hierarchy_outputs({"paths": paths}, classes)
    write_distance_csv(folder / "distances.csv", order, distances)
    write_json(folder / "levels.json", levels)
    return {"data": str(folder / "arrays.npz"), "distances": str(folder / "distances.csv"),
            "levels": str(folder / "levels.json")}


def spec(method="haframe"):
    model = {"backbone": "convnet_small", "backbone_kwargs": {"width": 4}, "head": "type2", "frame": "haframe"}
    return {"dataset": "synthetic", "experiment": "main", "method": method, "kind": "hierarchy",
            "label_level": "fine", "source": {"kind": "synthetic"}, "model_type": "II", "model": model,
            "loss": {"name": "haframe", "alpha": 0.4}, "frame": {"gamma": 2.0}, "crm_of": None, "longtail": None,
            "device": "cpu",
            "train": {"epochs": 4, "batch_size": 16, "eval_batch_size": 64, "lr": {"backbone": 0.05, "head": 0.1,
                      "classifier": 0.1}, "collapse_every": 2}}


def outputs(folder):
    folder.mkdir(parents=True, exist_ok=True)
    names = ("test_logits.npz", "checkpoint_best.pt", "history.json", "collapse.json")
    return {"run_dir": str(folder), **{n.split(".")[0].replace("_best", ""): str(folder / n) for n in names}}


def test_resumed_run_matches_uninterrupted_run(inputs, tmp_path, monkeypatch):
    clean, resumed = outputs(tmp_path / "clean"), outputs(tmp_path / "resumed")
    run_training(spec(), 0, inputs, clean)

    real_epoch = kill_in_epoch(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_training(spec(), 0, inputs, resumed)
    assert load_checkpoint(tmp_path / "resumed" / "last_checkpoint.pt",
                           train_module.spec_fingerprint({**spec(), "seed": 0}))["epoch"] == 2
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    run_training(spec(), 0, inputs, resumed)
    assert not (tmp_path / "resumed" / "last_checkpoint.pt").exists()  # removed once the run is complete

    a, b = np.load(clean["test_logits"]), np.load(resumed["test_logits"])
    np.testing.assert_array_equal(a["scores"], b["scores"])
    np.testing.assert_array_equal(a["labels"], b["labels"])


def kill_in_epoch(n, monkeypatch):
    real_epoch, calls = train_module.train_one_epoch, {"n": 0}

    def dies(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == n:
            raise KeyboardInterrupt("simulated SLURM kill")
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "train_one_epoch", dies)
    return real_epoch


def test_checkpoint_of_another_config_is_refused(inputs, tmp_path, monkeypatch):
    real_epoch = kill_in_epoch(2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_training(spec(), 0, inputs, outputs(tmp_path / "run"))
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    other = spec()
    other["loss"]["alpha"] = 0.5
    with pytest.raises(ValueError, match="different run config"):
        run_training(other, 0, inputs, outputs(tmp_path / "run"))


def test_corrupt_checkpoint_names_the_file(inputs, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "last_checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="last_checkpoint.pt cannot be read"):
        run_training(spec(), 0, inputs, outputs(folder))


def test_select_last_tests_the_final_epoch(inputs, tmp_path):
    last = spec()
    last["train"]["select"] = "last"
    run_training(last, 0, inputs, outputs(tmp_path / "run"))
    history = read_json(tmp_path / "run" / "history.json")
    assert history["best_epoch"] == last["train"]["epochs"]
