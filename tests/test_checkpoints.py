"""A checkpoint or weights file that cannot be read fails with an error naming the file (and the fix); format-1
checkpoints load with their keys renamed."""
from pathlib import Path

import numpy as np
import pytest
import torch

from featgeom.checkpoint import CHECKPOINT_FORMAT, load_best_checkpoint, load_checkpoint, save_checkpoint
from featgeom.models import build_backbone, build_model
from featgeom.runner import dump_features


def truncated_copy(path: Path) -> Path:
    """Cut a saved file in half, as a job killed while copying it (or a full disk) leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def saved(path: Path, state: dict) -> Path:
    save_checkpoint(path, state)
    return path


def best_checkpoint_state() -> dict:
    return {"format": CHECKPOINT_FORMAT, "model": {"w": torch.randn(64, 64)}, "spec": {"device": "cpu"},
            "frame": np.eye(4), "best_epoch": 3, "best_val_top1": 50.0}


def test_truncated_best_checkpoint_names_the_file_and_the_rerun(tmp_path):
    path = truncated_copy(saved(tmp_path / "seed0" / "checkpoint_best.pt", best_checkpoint_state()))
    with pytest.raises(ValueError) as err:
        dump_features({"device": "cpu"}, 0, {"checkpoint": str(path)}, tmp_path / "features.npz")
    assert str(path) in str(err.value) and "--forcerun" in str(err.value)


def test_best_checkpoint_without_model_frame_spec_is_refused(tmp_path):
    path = saved(tmp_path / "checkpoint_best.pt", {"format": CHECKPOINT_FORMAT, "model": {}})
    with pytest.raises(ValueError, match="not a featgeom best-model checkpoint") as err:
        dump_features({"device": "cpu"}, 0, {"checkpoint": str(path)}, tmp_path / "features.npz")
    assert str(path) in str(err.value)


def test_truncated_last_checkpoint_names_the_file(tmp_path):
    state = {"format": CHECKPOINT_FORMAT, "fingerprint": "f", "model": {"w": torch.randn(64, 64)}}
    path = truncated_copy(saved(tmp_path / "last_checkpoint.pt", state))
    with pytest.raises(ValueError, match="cannot be read") as err:
        load_checkpoint(path, {})
    assert str(path) in str(err.value)


def test_truncated_weights_file_names_the_file(tmp_path):
    path = tmp_path / "moco_v2_800ep_pass.pth.tar"
    torch.save({"conv1.weight": torch.randn(64, 3, 7, 7)}, path)
    with pytest.raises(ValueError, match="cannot be read") as err:
        build_backbone("resnet50", weights_path=str(truncated_copy(path)))
    assert str(path) in str(err.value)


def format_1_model_state(state: dict, per_level: bool) -> dict:
    """A format-2 model state dict as format 1 wrote it: a single-classifier head's trunk flat under `head.`, the
    ETF as `head.etf`; per-level heads already had `head.trunk.` and `head.classifier.`."""
    def format_1(key: str) -> str:
        if key == "head.classifier.etf":
            return "head.etf"
        return key if per_level else key.replace("head.trunk.", "head.", 1)
    return {format_1(key): value for key, value in state.items()}


FORMAT_1_MODELS = {
    "type2 with a frame": ({"head": "type2"}, np.eye(4), "head.channel_reduce.weight"),
    "cosine_etf": ({"head": "cosine_etf", "scale": 10.0, "projection_dim": 8}, np.eye(4, 8), "head.etf"),
    "type1_mlp": ({"head": "type1_mlp", "hidden_units": 8}, None, "head.mlp.1.weight"),
    "hafeature": ({"head": "linear", "level_heads": "hafeature"}, None, "head.classifier.1.weight"),
}


@pytest.mark.parametrize("name", FORMAT_1_MODELS)
def test_format_1_best_checkpoint_loads_into_the_composed_heads(tmp_path, name):
    head, frame, format_1_key = FORMAT_1_MODELS[name]
    spec = {"backbone": "convnet_small", "backbone_kwargs": {"width": 2}, **head}
    table = np.array([[0, 0, 1, 1], [0, 1, 2, 3]])
    model = build_model(spec, 4, frame, level_table=table)
    old = format_1_model_state(model.state_dict(), per_level="level_heads" in spec)
    assert format_1_key in old
    path = saved(tmp_path / "checkpoint_best.pt", {"format": 1, "model": old, "best_model": old, "spec": spec,
                                                   "frame": frame})
    state = load_best_checkpoint(path)
    fresh = build_model(spec, 4, frame, level_table=table)
    fresh.load_state_dict(state["model"])  # strict: every key renamed, none left over
    assert state["format"] == CHECKPOINT_FORMAT and state["best_model"].keys() == state["model"].keys()
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))


@pytest.mark.parametrize("loader", ["best", "resume point"])
def test_a_checkpoint_of_an_unknown_format_is_refused_naming_the_file_and_the_fix(tmp_path, loader):
    path = saved(tmp_path / "checkpoint.pt", {"format": CHECKPOINT_FORMAT + 1, "model": {}, "spec": {}, "frame": None})
    with pytest.raises(ValueError, match=rf"{path}.*format {CHECKPOINT_FORMAT} or 1.*delete it"):
        load_best_checkpoint(path) if loader == "best" else load_checkpoint(path, {})
