"""Fetching pretrained weights: torchvision's sha256-prefix check, and no partial file on failure."""
import hashlib

import pytest

from featgeom.data import weights


def _serve(tmp_path, monkeypatch, payload: bytes, prefix: str):
    source = tmp_path / "served.pth"
    source.write_bytes(payload)
    monkeypatch.setitem(weights.IMAGENET_RESNET50, "url", source.as_uri())
    monkeypatch.setitem(weights.IMAGENET_RESNET50, "sha256_prefix", prefix)


def test_fetch_checks_the_sha256_prefix(tmp_path, monkeypatch):
    payload = b"resnet50 weights"
    _serve(tmp_path, monkeypatch, payload, hashlib.sha256(payload).hexdigest()[:8])
    target = tmp_path / "pretrained" / "resnet50-0676ba61.pth"
    assert weights.fetch_imagenet_resnet50(target).read_bytes() == payload


def test_fetch_removes_a_file_with_the_wrong_hash(tmp_path, monkeypatch):
    _serve(tmp_path, monkeypatch, b"truncated", "0676ba61")
    target = tmp_path / "resnet50-0676ba61.pth"
    with pytest.raises(ValueError, match="does not start with torchvision's 0676ba61"):
        weights.fetch_imagenet_resnet50(target)
    assert not target.exists()
