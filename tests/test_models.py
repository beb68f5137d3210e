"""Backbones, heads, factory and param groups (CPU, tiny inputs)."""
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from featgeom.config import LEVEL_HEAD_LOSSES

from featgeom.models import factory
from featgeom.models import (
    BACKBONES, HEADS, LEVEL_HEADS, CosineETFClassifier, Head, LinearClassifier, NormalisedTrunk, ResNetCifar,
    WideResNet, build_backbone, build_model, param_groups,
)

torch.manual_seed(0)
K = 5


def random_orthonormal_frame(k: int, seed: int = 0) -> np.ndarray:
    """K x K with unit rows; stands in for a HAFrame (frames.py is tested elsewhere)."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((k, k)))
    return q.T


def simplex_etf(k: int, dim: int, seed: int = 0) -> np.ndarray:
    """K x dim simplex ETF: sqrt(K/(K-1)) (I - 11^T/K) rotated into dim dimensions."""
    centred = np.sqrt(k / (k - 1)) * (np.eye(k) - np.ones((k, k)) / k)
    basis, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, k)))
    return centred @ basis.T


def frame_for(head: str, feature_dim: int):
    return {"type2": random_orthonormal_frame(K), "cosine_etf": simplex_etf(K, feature_dim)}.get(head)


BACKBONE_FEATURES = {"convnet_small": 128, "resnet32": 64, "wrn28_2": 128, "resnet50": 2048}
HEADS = ["linear", "type1_mlp", "type2", "cosine_etf"]
_BACKBONE_CACHE = {}


def cached_backbone(name, **kwargs):
    """Build each backbone once per session: ResNet-50 init alone takes ~1 s on CPU."""
    if name not in _BACKBONE_CACHE:
        _BACKBONE_CACHE[name] = build_backbone(name, **kwargs)
    return _BACKBONE_CACHE[name]


@pytest.mark.parametrize("backbone", list(BACKBONE_FEATURES))
@pytest.mark.parametrize("head", HEADS)
def test_every_backbone_head_combo_shapes(backbone, head, monkeypatch):
    monkeypatch.setattr(factory, "build_backbone", cached_backbone)
    spec = {"backbone": backbone, "head": head, "hidden_units": 16, "scale": 10.0}
    if backbone == "resnet50":
        spec["backbone_kwargs"] = {"pretrained": False}
    expected_dim = {"linear": BACKBONE_FEATURES[backbone], "type1_mlp": 16, "type2": K,
                    "cosine_etf": BACKBONE_FEATURES[backbone]}[head]
    model = build_model(spec, num_classes=K, frame=frame_for(head, expected_dim))
    size = 64 if backbone == "resnet50" else 32
    x = torch.randn(2, 3, size, size)
    fmap = model.backbone(x)
    assert fmap.ndim == 4 and fmap.shape[1] == model.backbone.out_channels == BACKBONE_FEATURES[backbone]
    logits, features, level_logits, level_weights = model.head(fmap)
    assert logits.shape == (2, K) and level_logits == level_weights == ()
    assert features.shape == (2, expected_dim)
    w, _ = model.head.classifier_weight()
    assert w.shape == (K, expected_dim)


def test_resnet32_matches_he_et_al():
    net = ResNetCifar(depth=32)
    n_params = sum(p.numel() for p in net.parameters())
    assert net.out_channels == 64
    assert abs(n_params - 0.464e6) < 0.01e6  # He et al. report 0.46M for ResNet-32
    assert build_backbone("resnet32", width=32).out_channels == 128  # Yang et al. widened variant


def test_wrn28_8_channels_and_bn_momentum():
    net = build_backbone("wrn28_8")
    assert isinstance(net, WideResNet) and net.out_channels == 512
    assert net.bn_final.momentum == 0.001
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(23.4e6, rel=0.01)


def test_type1_wrn_classifier_is_a_default_nn_linear_drawn_after_the_backbone():
    # HAFrame custom_wideresnet.WideResNet: classifier_3 = nn.Linear(feature_size, num_classes) after the backbone,
    # PyTorch's default init (uniform weights and bias); not the xavier-normal, zero-bias init of the unused fc.
    torch.manual_seed(3)
    model = build_model({"backbone": "wrn28_2", "head": "linear"}, num_classes=K)
    torch.manual_seed(3)
    build_backbone("wrn28_2")
    official = torch.nn.Linear(128, K)
    assert torch.equal(model.head.classifier.weight, official.weight)
    assert torch.equal(model.head.classifier.bias, official.bias) and official.bias.abs().sum() > 0


def test_unknown_backbone_lists_valid_names():
    with pytest.raises(ValueError, match="wrn28_<k>"):
        build_backbone("vgg16")


@pytest.fixture(scope="module")
def resnet50_state():
    """A seeded torchvision resnet50 state dict (the real key set and shapes, 320 keys with fc)."""
    from torchvision.models import resnet50 as tv_resnet50

    torch.manual_seed(0)
    return tv_resnet50(weights=None).state_dict()


def moco_v2_checkpoint(resnet50_state) -> dict:
    """The layout facebookresearch/moco main_moco.py saves (the PASS file): DataParallel-wrapped query and
    key encoders whose fc is the MoCo-v2 MLP 2048-2048-128, the queue [128, 65536] and its pointer."""
    encoder = {k: v for k, v in resnet50_state.items() if not k.startswith("fc.")}
    mlp = {"fc.0.weight": torch.randn(2048, 2048), "fc.0.bias": torch.randn(2048),
           "fc.2.weight": torch.randn(128, 2048), "fc.2.bias": torch.randn(128)}
    state = {f"module.encoder_q.{k}": v for k, v in {**encoder, **mlp}.items()}
    state |= {f"module.encoder_k.{k}": v + 1 for k, v in {**encoder, **mlp}.items()}  # differs from encoder_q
    state |= {"module.queue": torch.randn(128, 65536), "module.queue_ptr": torch.zeros(1, dtype=torch.long)}
    optimizer = {"state": {}, "param_groups": [{"lr": 0.03, "momentum": 0.9, "weight_decay": 1e-4,
                                                "params": list(range(len(encoder) // 2))}]}
    return {"epoch": 800, "arch": "resnet50", "state_dict": state, "optimizer": optimizer}


def trunk_tensors(trunk) -> dict:
    """The trunk's state dict under torchvision names (its children are conv1, bn1, relu, maxpool, layer1-4)."""
    names = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
    return {f"{names[int(k.split('.')[0])]}.{k.split('.', 1)[1]}": v for k, v in trunk.state_dict().items()}


def test_moco_v2_checkpoint_loads_exactly_the_query_encoder(resnet50_state, tmp_path):
    checkpoint = moco_v2_checkpoint(resnet50_state)
    torch.save(checkpoint, tmp_path / "moco_v2_800ep_pass.pth.tar")
    loaded = trunk_tensors(build_backbone("resnet50", weights_path=str(tmp_path / "moco_v2_800ep_pass.pth.tar")))
    query = {k[len("module.encoder_q."):]: v for k, v in checkpoint["state_dict"].items()
             if k.startswith("module.encoder_q.") and not k.startswith("module.encoder_q.fc.")}
    assert loaded.keys() == query.keys() and len(query) == 318
    assert all(torch.equal(loaded[k], query[k]) for k in query)


@pytest.mark.parametrize("layout", ["torchvision", "dataparallel"])
def test_plain_and_dataparallel_resnet50_files_load(resnet50_state, tmp_path, layout):
    content = dict(resnet50_state) if layout == "torchvision" else {
        "epoch": 90, "state_dict": {f"module.{k}": v for k, v in resnet50_state.items()}}
    torch.save(content, tmp_path / "weights.pth")
    loaded = trunk_tensors(build_backbone("resnet50", weights_path=str(tmp_path / "weights.pth")))
    assert len(loaded) == 318 and all(torch.equal(v, resnet50_state[k]) for k, v in loaded.items())


def _moco(state: dict) -> dict:
    return {"state_dict": {f"module.encoder_q.{k}": v for k, v in state.items()}}


@pytest.mark.parametrize("content, match", [
    (lambda sd: {k: v for k, v in sd.items() if not k.startswith("layer4.")}, "missing keys"),
    (lambda sd: _moco({k: v for k, v in sd.items() if k != "conv1.weight"}), "missing keys"),
    (lambda sd: {"model": {f"backbone.{k}": v for k, v in sd.items()}}, "unknown layout"),
    (lambda sd: {"state_dict": _moco(sd)["state_dict"] | {"module.head.w": sd["fc.bias"]}}, "unknown layout"),
    (lambda sd: {"conv1.weight": torch.zeros(1)}, "missing keys"),
])
def test_bad_resnet50_files_fail_naming_the_file(resnet50_state, tmp_path, content, match):
    torch.save(content(resnet50_state), tmp_path / "not_a_resnet.pth")
    with pytest.raises(ValueError, match=rf"not_a_resnet\.pth.*{match}"):
        build_backbone("resnet50", weights_path=str(tmp_path / "not_a_resnet.pth"))


def _tiny_type2_model():
    frame = random_orthonormal_frame(K)
    return build_model({"backbone": "convnet_small", "head": "type2",
                        "backbone_kwargs": {"width": 4}}, num_classes=K, frame=frame), frame


def test_type2_fixed_frame_is_frozen_saved_and_used_for_logits():
    model, frame = _tiny_type2_model()
    classifier = model.head.classifier
    assert np.allclose(classifier.weight.numpy(), frame.astype(np.float32))
    assert not classifier.weight.requires_grad and not classifier.bias.requires_grad
    state = model.state_dict()
    assert torch.equal(state["head.classifier.weight"], classifier.weight)
    assert torch.equal(state["head.classifier.bias"], torch.zeros(K))

    opt = torch.optim.SGD(param_groups(model, {"backbone": 0.1, "head": 0.1, "classifier": 0.1}),
                          momentum=0.9, weight_decay=5e-4)
    logits, h, _, _ = model(torch.randn(4, 3, 32, 32))
    torch.nn.functional.cross_entropy(logits, torch.arange(4) % K).backward()
    opt.step()
    assert np.allclose(classifier.weight.numpy(), frame.astype(np.float32))
    assert torch.allclose(logits, h @ classifier.weight.T)


def test_type2_frame_survives_reload():
    model, frame = _tiny_type2_model()
    fresh = build_model({"backbone": "convnet_small", "head": "type2", "backbone_kwargs": {"width": 4}},
                        num_classes=K, frame=random_orthonormal_frame(K, seed=1))
    fresh.load_state_dict(model.state_dict())
    assert np.allclose(fresh.head.classifier.weight.numpy(), frame.astype(np.float32))


def test_type2_without_frame_is_learnable():
    model = build_model({"backbone": "convnet_small", "head": "type2"}, num_classes=K)
    assert model.head.classifier.weight.requires_grad and model.head.classifier.bias is not None


@pytest.mark.parametrize("head, frame, match", [
    ("cosine_etf", None, "needs a frame"),
    ("type2", np.eye(K + 1), r"expected shape \(5, 5\), got \(6, 6\)"),
    ("cosine_etf", np.eye(K), r"\(5, 128\), got \(5, 5\)"),
    ("linear", np.eye(K), "learnable classifier"),
    ("mlp", None, "valid heads"),
])
def test_build_model_frame_errors(head, frame, match):
    with pytest.raises(ValueError, match=match):
        build_model({"backbone": "convnet_small", "head": head, "scale": 10.0}, num_classes=K, frame=frame)


@pytest.mark.parametrize("head", HEADS)
def test_param_groups_cover_every_trainable_param_once(head):
    spec = {"backbone": "convnet_small", "head": head, "hidden_units": 8, "scale": 10.0,
            "backbone_kwargs": {"width": 4}}
    dim = {"cosine_etf": 16, "type2": K}.get(head, 16)
    model = build_model(spec, num_classes=K, frame=frame_for(head, dim))
    groups = param_groups(model, {"backbone": 0.01, "head": 0.1, "classifier": 0.1})
    ids = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(ids) == sorted(trainable) and len(ids) == len(set(ids))
    assert all(g["name"] in ("backbone", "head", "classifier") and g["base_lr"] == g["lr"] for g in groups)
    names = [g["name"] for g in groups]
    assert names[0] == "backbone" and ("classifier" in names) == (head in ("linear", "type1_mlp"))


def test_param_groups_put_type2_conv_in_backbone_and_skip_frozen_classifier():
    model, _ = _tiny_type2_model()
    groups = {g["name"]: g for g in param_groups(model, {"backbone": 0.01, "head": 0.1, "classifier": 0.1})}
    assert set(groups) == {"backbone", "head"}  # the fixed frame leaves the classifier group empty
    assert any(p is model.head.trunk.channel_reduce.weight for p in groups["backbone"]["params"])
    assert any(p is model.head.trunk.feature_bn.weight for p in groups["head"]["params"])
    assert groups["backbone"]["base_lr"] == 0.01


def cosine_etf_head(in_channels, etf, scale, projection_dim=None):
    trunk = NormalisedTrunk(in_channels, projection_dim)
    return Head(trunk, CosineETFClassifier(trunk.feature_dim, len(etf), etf, scale))


def test_cosine_etf_head_unit_features_and_scaled_cosine_logits():
    etf = simplex_etf(K, 8)
    head = cosine_etf_head(8, etf, scale=16.0)
    logits, h, _, _ = head(torch.randn(6, 8, 4, 4))
    assert torch.allclose(h.norm(dim=1), torch.ones(6), atol=1e-5)
    assert torch.allclose(logits, 16.0 * h @ torch.as_tensor(etf, dtype=torch.float32).T, atol=1e-4)
    assert "classifier.etf" in head.state_dict() and not any(p is head.classifier.etf for p in head.parameters())


def test_cosine_etf_head_rejects_dim_below_k_minus_1():
    with pytest.raises(ValueError, match="projection_dim"):
        cosine_etf_head(64, np.zeros((100, 64)), scale=10.0)
    head = cosine_etf_head(64, simplex_etf(100, 128), scale=10.0, projection_dim=128)
    assert head(torch.randn(3, 64, 2, 2)).features.shape == (3, 128)


def test_fixed_linear_classifier_rejects_a_frame_of_another_shape():
    with pytest.raises(ValueError, match=r"expected shape \(5, 5\), got \(5, 3\)"):
        LinearClassifier(K, K).freeze_to(np.ones((K, 3)))


def _schema_model_properties() -> dict:
    schema_path = Path(__file__).resolve().parent.parent / "workflow/schemas/config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    return schema["$defs"]["method"]["properties"]["model"]["properties"]


def test_registries_are_the_names_the_schema_and_config_accept():
    """One list per kind of name: the schema enums (what a config may say) are the registry keys (what is built);
    featgeom.config pairs each per-level head with its loss without importing torch, from its own copy."""
    model = _schema_model_properties()
    assert set(model["head"]["enum"]) == set(HEADS)
    assert set(model["level_heads"]["enum"]) == set(LEVEL_HEADS) == set(LEVEL_HEAD_LOSSES)
    alternatives = model["backbone"]["pattern"].removeprefix("^(").removesuffix(")$").split("|")
    assert set(alternatives) == {name.replace("<k>", "[0-9]+") for name in BACKBONES}
