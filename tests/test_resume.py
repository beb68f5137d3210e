"""A killed training job, rerun, ends exactly where an uninterrupted one does (CPU)."""
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

import featgeom.train as train_module
from featgeom.data.arrays import load_arrays, save_arrays
from featgeom.data.loaders import build_loaders
from featgeom.data.manifest import verify_image_folder
from featgeom.data.synthetic import make_synthetic
from featgeom.frames import find_s_min
from featgeom.hierarchy import Hierarchy, read_distance_csv, write_distance_csv, write_paths_csv
from featgeom.hierarchy_stage import build_hierarchy_outputs
from featgeom.io import read_json, write_json
from featgeom.rule_io import RUN_LOG, rule_log
from featgeom.packs import run_inputs, train_pack
import featgeom.runner as runner_module
from featgeom.lineage import made_of
from featgeom.run_guard import FORCED_MARK, mark_forced
from featgeom.runner import run_training
from featgeom.checkpoint import read_torch_file


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
            "device": "cpu", "pilot": None,
            "train": {"epochs": 4, "batch_size": 16, "eval_batch_size": 64, "lr": {"backbone": 0.05, "head": 0.1,
                      "classifier": 0.1}, "collapse_every": 2, "collapse_seeds": [0], "select": "best_val",
                      "augment": "crop_flip", "momentum": 0.9, "weight_decay": 5e-4, "schedule": "cosine_per_epoch",
                      "precision": "fp32"}}


def saved_checkpoint(path) -> dict:
    return read_torch_file(path, "checkpoint", "")


def outputs(folder):
    folder.mkdir(parents=True, exist_ok=True)
    names = ("test_logits.npz", "checkpoint_best.pt", "history.json", "collapse.json", "provenance.json")
    return {"run_dir": str(folder), **{n.split(".")[0].replace("_best", ""): str(folder / n) for n in names}}


def test_resumed_run_matches_uninterrupted_run(inputs, tmp_path, monkeypatch):
    clean, resumed = outputs(tmp_path / "clean"), outputs(tmp_path / "resumed")
    run_training(spec(), 0, inputs, clean)

    real_epoch = kill_in_epoch(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_training(spec(), 0, inputs, resumed)
    assert saved_checkpoint(tmp_path / "resumed" / "last_checkpoint.pt")["epoch"] == 2
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


def test_run_log_keeps_the_killed_attempt_and_the_resume(inputs, tmp_path, monkeypatch):
    """What workflow/scripts/train.py does under a rerun, Snakemake having deleted the rule log in between."""
    run = {**outputs(tmp_path / "run"), "provenance": str(tmp_path / "run" / "provenance.json")}
    rule_log_path = tmp_path / "logs" / "train.log"

    def attempt():
        rule_log_path.parent.mkdir(exist_ok=True)
        rule_log_path.unlink(missing_ok=True)
        with rule_log(SimpleNamespace(log=[str(rule_log_path)]), keep_in=run["run_dir"]) as log:
            run_training(spec(), 0, inputs, run, log=log)

    real_epoch = kill_in_epoch(3, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        attempt()
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    attempt()
    text = (tmp_path / "run" / RUN_LOG).read_text()
    expected_in_order = ["==== attempt 1 started", "epoch 2/4 ", "==== attempt 1 failed", "==== attempt 2 started",
                         "resumed from", "after epoch 2", "epoch 4/4 ", "==== attempt 2 finished"]
    positions = [text.find(s) for s in expected_in_order]
    assert -1 not in positions and positions == sorted(positions), text
    # one line per epoch, no progress bar (not a terminal): what tools/progress.py reads
    assert "\r" not in text and len(re.findall(r"^epoch \d/4  train_loss=\S+  train_top1=\S+  val_top1=\S+  lr=\S+  "
                                               r"img/s=\d+  epoch_s=\S+  eta=\d+:\d\d:\d\d$", text, re.M)) == 4


def counting_epochs(monkeypatch) -> list:
    """Make train_one_epoch append to the returned list each time it trains an epoch."""
    real_epoch, trained = train_module.train_one_epoch, []

    def counting(step, loader, progress):
        trained.append(1)
        return real_epoch(step, loader, progress)

    monkeypatch.setattr(train_module, "train_one_epoch", counting)
    return trained


def test_an_unfinished_checkpoint_of_another_config_is_retrained_from_scratch(inputs, tmp_path, monkeypatch):
    real_epoch = kill_in_epoch(2, monkeypatch)
    run = outputs(tmp_path / "run")
    with pytest.raises(KeyboardInterrupt):
        run_training(spec(), 0, inputs, run)
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    other = spec()
    other["loss"]["alpha"] = 0.5
    trained = counting_epochs(monkeypatch)
    with open(tmp_path / "log.txt", "w") as log:
        run_training(other, 0, inputs, run, log=log)
    assert len(trained) == 4
    assert "training from scratch" in (tmp_path / "log.txt").read_text()
    assert "the run's config changed since it was written" in (tmp_path / "log.txt").read_text()
    fresh = outputs(tmp_path / "fresh")
    run_training(other, 0, inputs, fresh)
    assert np.load(run["test_logits"])["scores"].tobytes() == np.load(fresh["test_logits"])["scores"].tobytes()


def _scaled_distances(inputs, folder):
    """Every distance x2: still a valid hierarchy, but another HAFrame (its similarities, s_min and frame)."""
    order, distances = read_distance_csv(inputs["distances"])
    write_distance_csv(folder / "distances.csv", order, 2 * distances)
    return {**inputs, "distances": str(folder / "distances.csv")}


def _edited_train_image(inputs, folder):
    arrays = load_arrays(inputs["data"])
    arrays["train_images"][0] = 255 - arrays["train_images"][0]
    save_arrays(folder / "arrays.npz", arrays)
    return {**inputs, "data": str(folder / "arrays.npz")}


@pytest.mark.parametrize("change, message", [
    (_scaled_distances, "the hierarchy distances changed"),
    (_edited_train_image, "the training data changed"),
    ("code", "the training code changed"),
])
def test_a_kept_final_checkpoint_is_reused_only_when_nothing_that_made_it_changed(inputs, tmp_path, monkeypatch,
                                                                                    change, message):
    """A pack rerun re-evaluates a finished run from its kept checkpoint only if its spec, input files, frame and
    training code are those that made it; otherwise it trains from scratch, as a fresh run would, and says why."""
    run = outputs(tmp_path / "run")
    run_training(spec(), 0, inputs, run, keep_resume_point=True)
    if change == "code":
        monkeypatch.setattr("featgeom.runner.made_of", lambda *args: {**made_of(*args), "code": "edited"})
        changed_inputs = inputs
    else:
        changed_inputs = change(inputs, tmp_path)
    trained = counting_epochs(monkeypatch)
    with open(tmp_path / "log.txt", "w") as log:
        run_training(spec(), 0, changed_inputs, run, keep_resume_point=True, log=log)
    assert len(trained) == 4, "a stale final checkpoint was reused"
    assert message in (tmp_path / "log.txt").read_text()
    fresh = outputs(tmp_path / "fresh")
    run_training(spec(), 0, changed_inputs, fresh)
    assert np.load(run["test_logits"])["scores"].tobytes() == np.load(fresh["test_logits"])["scores"].tobytes()
    kept = saved_checkpoint(Path(run["run_dir"]) / "last_checkpoint.pt")
    assert read_json(run["provenance"])["made_of"] == kept["made_of"]


def test_corrupt_checkpoint_names_the_file(inputs, tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "last_checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="last_checkpoint.pt cannot be read"):
        run_training(spec(), 0, inputs, outputs(folder))


def test_a_full_disk_names_the_checkpoint_and_keeps_the_last_complete_one(inputs, tmp_path, monkeypatch):
    run = outputs(tmp_path / "run")
    real_save, calls = torch.save, []

    def disk_full_at_epoch_3(state, target):
        calls.append(target)
        if len(calls) == 3:
            Path(target).write_bytes(b"PK half")  # what torch's zip writer leaves when the disk fills
            raise RuntimeError("[enforce fail at inline_container.cc:671] . unexpected pos 15069952 vs 15069848")
        real_save(state, target)

    monkeypatch.setattr(torch, "save", disk_full_at_epoch_3)
    with pytest.raises(OSError, match=r"cannot write checkpoint .*last_checkpoint\.pt .*MiB are free.*full disk"):
        run_training(spec(), 0, inputs, run)
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["last_checkpoint.pt"]  # no half-written file
    assert saved_checkpoint(tmp_path / "run" / "last_checkpoint.pt")["epoch"] == 2

    monkeypatch.setattr(torch, "save", real_save)
    run_training(spec(), 0, inputs, run)
    assert read_json(run["history"])["epochs"][-1]["epoch"] == 4


def test_select_last_tests_the_final_epoch(inputs, tmp_path):
    last = spec()
    last["train"]["select"] = "last"
    run_training(last, 0, inputs, outputs(tmp_path / "run"))
    history = read_json(tmp_path / "run" / "history.json")
    assert history["best_epoch"] == last["train"]["epochs"]


# --- image folders with worker processes --------------------------------------------------

IMAGE_CLASSES = ["a1", "a2", "b1"]


@pytest.fixture(scope="module")
def image_inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 2), ("test", 2)):
        for k, name in enumerate(IMAGE_CLASSES):
            (folder / "ds" / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 255, (20, 20, 3), dtype=np.uint8) // (k + 1)
                Image.fromarray(pixels).save(folder / "ds" / split / name / f"{i}.png")
    write_json(folder / "manifest.json", verify_image_folder(folder / "ds"))
    write_paths_csv(folder / "paths.csv", Hierarchy([("a", "a1"), ("a", "a2"), ("b", "b1")]))
    order, distances, levels = build_hierarchy_outputs({"paths": folder / "paths.csv"}, IMAGE_CLASSES)
    write_distance_csv(folder / "distances.csv", order, distances)
    write_json(folder / "levels.json", levels)
    return {"data": str(folder / "manifest.json"), "distances": str(folder / "distances.csv"),
            "levels": str(folder / "levels.json")}


def image_spec(epochs=3, workers=2):
    return {**spec(), "dataset": "toy", "source": {"kind": "image_folder", "recipe": "fgvc"},
            "train": {"epochs": epochs, "batch_size": 4, "eval_batch_size": 8, "num_workers": workers,
                      "augment": "crop_flip", "image_size": 16, "select": "last",  # test what epoch 3 learnt
                      "collapse_every": 0, "collapse_seeds": [0], "momentum": 0.9, "weight_decay": 5e-4,
                      "schedule": "cosine_per_epoch", "precision": "fp32",
                      "lr": {"backbone": 0.05, "head": 0.1, "classifier": 0.1}}}


def test_resumed_image_folder_run_with_workers_matches_uninterrupted_run(image_inputs, tmp_path, monkeypatch):
    clean, resumed = outputs(tmp_path / "clean"), outputs(tmp_path / "resumed")
    run_training(image_spec(), 0, image_inputs, clean, threads=2)  # 2 cores: 1 worker beside the main process
    real_epoch = kill_in_epoch(2, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_training(image_spec(), 0, image_inputs, resumed, threads=2)
    assert saved_checkpoint(tmp_path / "resumed" / "last_checkpoint.pt")["epoch"] == 1
    monkeypatch.setattr(train_module, "train_one_epoch", real_epoch)
    run_training(image_spec(), 0, image_inputs, resumed, threads=2)
    a, b = np.load(clean["test_logits"]), np.load(resumed["test_logits"])
    np.testing.assert_array_equal(a["scores"], b["scores"])
    np.testing.assert_array_equal(a["labels"], b["labels"])


def _image_epoch(inputs, epoch, workers, earlier=()):
    levels = read_json(inputs["levels"])
    loaders, _ = build_loaders(image_spec(workers=workers), inputs["data"], levels, 0, torch.device("cpu"), 2)
    for e in earlier:  # iterate (and consume) earlier epochs first, as a run that was not restarted does
        loaders["train"].set_epoch(e)
        list(loaders["train"])
    loaders["train"].set_epoch(epoch)
    return [(x.clone(), y.clone()) for x, y in loaders["train"]]


def test_image_folder_epoch_depends_only_on_seed_and_epoch(image_inputs):
    fresh = _image_epoch(image_inputs, 2, workers=2)
    after_earlier = _image_epoch(image_inputs, 2, workers=2, earlier=(0, 1))
    in_process = _image_epoch(image_inputs, 2, workers=0)
    other_epoch = _image_epoch(image_inputs, 1, workers=2)
    for batches in (after_earlier, in_process):  # same order and the same crops and flips
        assert all(torch.equal(xa, xb) and torch.equal(ya, yb) for (xa, ya), (xb, yb) in zip(fresh, batches))
    assert len(fresh) == 6 and not torch.equal(torch.cat([x for x, _ in fresh]), torch.cat([x for x, _ in other_epoch]))


def test_kill_after_the_last_epoch_keeps_the_checkpoint_and_retrains_nothing(inputs, tmp_path, monkeypatch):
    clean, killed = outputs(tmp_path / "clean"), outputs(tmp_path / "killed")
    run_training(spec(), 0, inputs, clean)

    def killed_while_finishing(*args, **kwargs):
        raise KeyboardInterrupt("killed between the last epoch and the job's end")

    with monkeypatch.context() as patch:
        patch.setattr("featgeom.runner.write_provenance", killed_while_finishing)
        with pytest.raises(KeyboardInterrupt):
            run_training(spec(), 0, inputs, killed)
    assert (tmp_path / "killed" / "last_checkpoint.pt").exists()  # the outputs were not complete yet

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was retrained")

    monkeypatch.setattr(train_module, "train_one_epoch", no_training)
    run_training(spec(), 0, inputs, killed)
    assert not (tmp_path / "killed" / "last_checkpoint.pt").exists()
    assert np.load(clean["test_logits"])["scores"].tobytes() == np.load(killed["test_logits"])["scores"].tobytes()
    assert read_json(killed["provenance"])["config"]["seed"] == 0


def test_collapse_curves_only_for_the_configured_seeds(inputs, tmp_path):
    curve_spec = spec()
    curve_spec["train"]["collapse_seeds"] = [1]
    epochs = {}
    for seed in (0, 1):
        run = outputs(tmp_path / f"s{seed}")
        run_training(curve_spec, seed, inputs, run)
        epochs[seed] = [h["epoch"] for h in read_json(run["collapse"])["history"]]
    assert epochs == {0: [4], 1: [3, 4]}  # every seed keeps its final collapse metrics
    assert "nc3_self_duality_raw" in read_json(run["collapse"])["final"]  # a fixed HAFrame: NC3 on raw means


def test_collapse_curves_sample_the_official_checkpoints():
    # HAFrame: checkpoint "epoch_e" after 0-based epoch e (e % 5 == 0, e > 0); curves read e in arange(5, 100, 5).
    official = {e + 1 for e in np.arange(5, 100, 5)}
    assert train_module.collapse_epochs(100, 5) == official | {100}
    assert train_module.collapse_epochs(100, 0) == {100}
    assert train_module.collapse_epochs(4, 5) == {4}


def test_a_pack_retrains_only_the_run_whose_folder_was_deleted(inputs, tmp_path, monkeypatch):
    """runs_per_process > 1 keeps each run's final checkpoint: when Snakemake reruns the pack (its outputs
    deleted, one run folder gone), the intact runs are only evaluated again, with identical results."""
    runs = {seed: outputs(tmp_path / f"seed{seed}") for seed in (0, 1)}
    for seed, run in runs.items():
        run_training(spec(), seed, inputs, run, keep_resume_point=True)
    first = {seed: np.load(run["test_logits"])["scores"].tobytes() for seed, run in runs.items()}
    kept = [saved_checkpoint(tmp_path / f"seed{seed}" / "last_checkpoint.pt") for seed in runs]
    # A finished run's resume point holds its best model, not the current weights nor the momentum buffers, and
    # it is the best-model checkpoint itself (one file, two names): the folder holds one copy of the model.
    assert all(state["epoch"] == 4 and "best_model" in state and "optimizer" not in state for state in kept)
    for seed, run in runs.items():
        assert (tmp_path / f"seed{seed}" / "last_checkpoint.pt").samefile(run["checkpoint"])
    torch.save(kept[0]["best_model"], tmp_path / "model_alone.pt")
    alone, checkpoint = (tmp_path / "model_alone.pt").stat().st_size, Path(runs[0]["checkpoint"]).stat().st_size
    print(f"model alone {alone} B, best checkpoint = resume point {checkpoint} B")
    assert checkpoint < 1.5 * alone  # the model stored once, not twice

    for path in (tmp_path / "seed1").iterdir():  # the user deletes seed 1's folder ...
        path.unlink()
    for run in runs.values():                      # ... and Snakemake deletes the pack's declared outputs
        for key in ("test_logits", "checkpoint", "history", "collapse", "provenance"):
            Path(run[key]).unlink(missing_ok=True)
    real_epoch, trained = train_module.train_one_epoch, []

    def counting(step, loader, progress):
        trained.append(step.model)
        return real_epoch(step, loader, progress)

    monkeypatch.setattr(train_module, "train_one_epoch", counting)
    for seed, run in runs.items():
        before = len(trained)
        run_training(spec(), seed, inputs, run, keep_resume_point=True)
        assert (len(trained) - before) == (0 if seed == 0 else spec()["train"]["epochs"]), seed
    assert {seed: np.load(run["test_logits"])["scores"].tobytes() for seed, run in runs.items()} == first


def test_a_forced_run_trains_again_and_a_kill_after_its_last_epoch_keeps_that_work(inputs, tmp_path, monkeypatch):
    """Snakemake's -F / -R / --forcerun (the forced mark of featgeom.run_guard) is never answered by the kept final
    checkpoint; the final checkpoint the forced training writes is reused if the job is killed after it."""
    run = outputs(tmp_path / "run")
    run_training(spec(), 0, inputs, run, keep_resume_point=True)
    mark_forced([run["run_dir"]])
    trained = counting_epochs(monkeypatch)
    real_write = runner_module.write_run_outputs

    def killed_while_writing(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner_module, "write_run_outputs", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        run_training(spec(), 0, inputs, run, keep_resume_point=True)
    assert len(trained) == 4  # trained again, not re-evaluated
    monkeypatch.setattr(runner_module, "write_run_outputs", real_write)
    run_training(spec(), 0, inputs, run, keep_resume_point=True)
    assert len(trained) == 4  # the forced run's own final checkpoint: nothing trained twice
    assert not (Path(run["run_dir"]) / FORCED_MARK).exists()


def ce_spec():
    """A type-II cross-entropy run: a second method for packs."""
    return {**spec("ce_t2"), "model": {"backbone": "convnet_small", "backbone_kwargs": {"width": 4}, "head": "type2"},
            "loss": {"name": "ce", "label_smoothing": 0.0}, "frame": {}}


def test_a_pack_trains_its_runs_in_two_processes_as_they_would_train_alone(inputs, tmp_path):
    """train_pack with 2 workers (this process and a spawned one) on runs of two methods: each run's outputs equal
    a lone run's, HAFrame's run reads its own s_min input, each run folder has its own log, the rule log gets both."""
    specs = {"haframe": spec(), "ce_t2": ce_spec()}
    s_min = tmp_path / "s_min.json"
    _, distances = read_distance_csv(inputs["distances"])
    write_json(s_min, {"s_min": find_s_min(distances, 2.0)})
    alone = {method: outputs(tmp_path / "alone" / method) for method in specs}
    for method, method_spec in specs.items():
        run_training(method_spec, 1, inputs, alone[method])
    runs = [{"method": method, "seed": 1, "outputs": outputs(tmp_path / "pack" / method / "seed1")} for method in specs]
    rule_log_path = tmp_path / "pack.log"
    train_pack(specs, runs, {**inputs, "s_min_of_haframe": str(s_min)}, workers=2, log_path=str(rule_log_path))
    for run in runs:
        packed = np.load(run["outputs"]["test_logits"])["scores"]
        assert packed.tobytes() == np.load(alone[run["method"]]["test_logits"])["scores"].tobytes()
        assert "==== attempt 1 finished" in (Path(run["outputs"]["run_dir"]) / RUN_LOG).read_text()
    provenance = read_json(runs[0]["outputs"]["provenance"])
    assert provenance["applied"]["haframe_s_min"] == find_s_min(distances, 2.0)
    assert rule_log_path.read_text().count("epoch 4/4 ") == 2


def test_run_inputs_gives_each_method_its_own_model_inputs():
    pack_inputs = {"data": "a.npz", "levels": "l.json",
                   "s_min_of_haframe": "g2.json", "s_min_of_haframe_of_g5": "g5.json"}
    assert run_inputs(pack_inputs, "haframe") == {"data": "a.npz", "levels": "l.json", "s_min": "g2.json"}
    assert run_inputs(pack_inputs, "haframe_of_g5")["s_min"] == "g5.json"
    assert run_inputs(pack_inputs, "ce") == {"data": "a.npz", "levels": "l.json"}


def test_tensorboard_curves_change_nothing_a_run_computes(inputs, tmp_path):
    """train.logger: tensorboard writes event files into the run folder, and nothing else of the run differs."""
    pytest.importorskip("tensorboard", reason="the optional tensorboard extra is not installed")
    plain, watched = outputs(tmp_path / "plain"), outputs(tmp_path / "watched")
    run_training(spec(), 0, inputs, plain)
    run_training(spec(), 0, inputs, watched, logger="tensorboard")
    assert list((tmp_path / "watched" / "tensorboard").glob("events.out.tfevents.*"))
    assert np.load(plain["test_logits"])["scores"].tobytes() == np.load(watched["test_logits"])["scores"].tobytes()
    assert read_json(plain["provenance"])["made_of"] == read_json(watched["provenance"])["made_of"]
    assert read_json(plain["provenance"])["config"] == read_json(watched["provenance"])["config"]
