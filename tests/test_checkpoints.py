"""A checkpoint or weights file that cannot be read fails with an error naming the file (and the fix)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from featgeom.models import build_backbone
from featgeom.runner import dump_features
from featgeom.checkpoint import CHECKPOINT_FORMAT, load_checkpoint, save_checkpoint


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
