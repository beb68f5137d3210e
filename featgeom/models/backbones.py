"""Backbones: image -> spatial feature map [B, C, h, w]; pooling belongs to the heads.

Every backbone has `out_channels` (C). Architectures follow the code the papers ran:
- ResNetCifar: kaidic/LDAM-DRW models/resnet_cifar.py (He et al. option-A ResNet), as used
  by the MSC / long-tail literature; width=32 is Yang et al.'s widened ResNet-32 (128-d).
- WideResNet: HAFrame util/arch/wideresnet.py (the FixMatch-style WRN, BN momentum 0.001).
- resnet50: torchvision ResNet-50 without avgpool/fc (HAFrame `children()[:-2]`).
"""
from __future__ import annotations

import re
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from featgeom.checkpoint import read_torch_file


# ----------------------------------------------------------------------------- tiny CPU demo net
def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class ConvNetSmall(nn.Module):
    """3 conv-BN-ReLU-maxpool stages (w, 2w, 4w channels); ~93k params at width 32, 32x32 -> 4x4."""

    def __init__(self, width: int = 32):
        super().__init__()
        widths = [width, 2 * width, 4 * width]
        layers, cin = [], 3
        for cout in widths:
            layers += _conv_bn_relu(cin, cout) + [nn.MaxPool2d(2)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.out_channels = widths[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


# ----------------------------------------------------------------------------- CIFAR ResNet (LDAM-DRW)
class _PadShortcut(nn.Module):
    """Option-A shortcut: stride-2 subsample, zero-pad channels equally on both sides (no params)."""

    def __init__(self, in_planes: int, planes: int):
        super().__init__()
        self.pad = (planes - in_planes) // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, self.pad, self.pad))


class _CifarBasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        needs_projection = stride != 1 or in_planes != planes
        self.shortcut = _PadShortcut(in_planes, planes) if needs_projection else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(nn.Module):
    """He et al. CIFAR ResNet: 3 stages x n BasicBlocks, n = (depth-2)/6, widths w/2w/4w."""

    def __init__(self, depth: int = 32, width: int = 16):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"ResNetCifar depth must be 6n+2 (20, 32, 44, 56, 110), got {depth}")
        blocks_per_stage = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        stages, in_planes = [], width
        for planes, stride in [(width, 1), (2 * width, 2), (4 * width, 2)]:
            blocks = []
            for i in range(blocks_per_stage):
                blocks.append(_CifarBasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.out_channels = 4 * width
        for m in self.modules():  # LDAM-DRW `_weights_init`: kaiming_normal_ (fan_in) on convs
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return self.layer3(self.layer2(self.layer1(out)))


# ----------------------------------------------------------------------------- WideResNet (HAFrame / FixMatch)
_WRN_BN_MOMENTUM = 0.001


class _WideBasicBlock(nn.Module):
    """Pre-activation block; `activate_before_residual` makes the first block's shortcut see BN+LReLU."""

    def __init__(self, in_planes: int, planes: int, stride: int, drop: float, activate_before_residual: bool):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes, momentum=_WRN_BN_MOMENTUM)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=_WRN_BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.drop = drop
        self.equal_in_out = in_planes == planes
        self.shortcut = None if self.equal_in_out else nn.Conv2d(in_planes, planes, 1, stride=stride, bias=False)
        self.activate_before_residual = activate_before_residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.equal_in_out:
            out, skip = F.leaky_relu(self.bn1(x), 0.1), x
        elif self.activate_before_residual:
            out = F.leaky_relu(self.bn1(x), 0.1)
            skip = self.shortcut(out)
        else:
            # official (FixMatch WRN) quirk: the first block of stages 2-3 feeds the RAW input to both
            # conv1 and the shortcut, so bn1 there is never used; kept so state_dicts/param counts match
            out, skip = x, self.shortcut(x)
        out = F.leaky_relu(self.bn2(self.conv1(out)), 0.1)
        if self.drop > 0:
            out = F.dropout(out, p=self.drop, training=self.training)
        return skip + self.conv2(out)


class WideResNet(nn.Module):
    """WRN-depth-k with channels 16/16k/32k/64k; ends with BN + LeakyReLU(0.1), out 64k channels."""

    def __init__(self, depth: int = 28, widen: int = 8, drop: float = 0.0):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"WideResNet depth must be 6n+4 (16, 22, 28, 40), got {depth}")
        blocks_per_stage = (depth - 4) // 6
        channels = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, channels[0], 3, padding=1, bias=False)
        stages = []
        for s, stride in enumerate([1, 2, 2]):
            blocks = [
                _WideBasicBlock(channels[s] if i == 0 else channels[s + 1], channels[s + 1],
                                stride if i == 0 else 1, drop, activate_before_residual=(s == 0))
                for i in range(blocks_per_stage)
            ]
            stages.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = stages
        self.bn_final = nn.BatchNorm2d(channels[3], momentum=_WRN_BN_MOMENTUM)
        self.out_channels = channels[3]
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():  # official: normal(0, sqrt(2/(k*k*out))) i.e. kaiming fan_out
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        return F.leaky_relu(self.bn_final(out), 0.1)


# ----------------------------------------------------------------------------- ResNet-50 (torchvision)
class ResNet50Trunk(nn.Sequential):
    """torchvision ResNet-50 conv1..layer4 (the official `children()[:-2]`); 2048 channels, stride 32."""

    out_channels = 2048


# The ResNet-50 weight-file layouts we accept. Each is recognised by its whole key set rather than
# by stripping whatever prefix matches, so that e.g. MoCo's key encoder can never be loaded by accident.
_MOCO_QUERY = "module.encoder_q."
_MOCO_OTHER = ("module.encoder_k.", "module.queue", "module.queue_ptr")
_LAYOUTS = ("a torchvision state dict (conv1.weight, ...), {'state_dict': {'module.conv1.weight', ...}} "
            "(a DataParallel training checkpoint), or a MoCo checkpoint {'state_dict': {'module.encoder_q.*', "
            "'module.encoder_k.*', 'module.queue', 'module.queue_ptr'}}")


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _describe(obj) -> str:
    """What a weights file holds, in a few words, for the error message."""
    if not isinstance(obj, dict):
        return f"a {type(obj).__name__}"
    inner = obj.get("state_dict")
    if isinstance(inner, dict):
        prefixes = sorted({".".join(str(k).split(".")[:2]) for k in inner})
        return f"{{'state_dict': ...}} with keys under {prefixes[:6]}"
    return f"a dict with keys {sorted(map(str, obj))[:5]}"


def _select_resnet50_tensors(obj, weights_path) -> dict[str, torch.Tensor]:
    """The torchvision-named tensors of a weights file, by layout (see _LAYOUTS).

    MoCo (facebookresearch/moco main_moco.py, e.g. the PASS moco_v2_800ep file HAFrame uses for
    tieredImageNet-H): only the query encoder is kept, as in HAFrame's
    MBM/better_mistakes/model/init.py:extract_resnet_state_dict, which keeps the keys starting with
    "module.encoder_q." but not "module.encoder_q.fc" (the MoCo-v2 MLP) and strips that prefix.
    """
    inner = obj.get("state_dict") if isinstance(obj, dict) else None
    if _is_tensor_dict(inner):
        if any(k.startswith(_MOCO_QUERY) for k in inner):
            if all(k.startswith((_MOCO_QUERY, *_MOCO_OTHER)) for k in inner):
                return {k[len(_MOCO_QUERY):]: v for k, v in inner.items() if k.startswith(_MOCO_QUERY)}
        elif all(k.startswith("module.") for k in inner):
            return {k[len("module."):]: v for k, v in inner.items()}
    elif _is_tensor_dict(obj) and not any(k.startswith("module.") for k in obj):
        return dict(obj)
    raise ValueError(f"ResNet-50 weights file {weights_path} has an unknown layout: it holds {_describe(obj)}; "
                     f"expected {_LAYOUTS}")


def _read_resnet50_state_dict(weights_path: str | Path) -> dict[str, torch.Tensor]:
    """The conv1..layer4 tensors of a local weights file, torchvision-named, without fc.*."""
    obj = read_torch_file(weights_path, "ResNet-50 weights file", "download it again", weights_only=True)
    # fc.* is the classifier (torchvision) or the MoCo-v2 MLP: the trunk (children()[:-2]) has neither
    return {k: v for k, v in _select_resnet50_tensors(obj, weights_path).items() if not k.startswith("fc.")}


def _load_trunk_weights(net: nn.Module, weights_path: str | Path) -> None:
    state = _read_resnet50_state_dict(weights_path)
    expected = {k for k in net.state_dict() if not k.startswith("fc.")}
    missing, unexpected = sorted(expected - state.keys()), sorted(state.keys() - expected)
    if missing or unexpected:
        raise ValueError(
            f"ResNet-50 weights file {weights_path} does not match torchvision resnet50: "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]})"
        )
    try:
        net.load_state_dict(state, strict=False)  # strict=False only because fc.* was dropped on purpose
    except RuntimeError as err:  # same keys, other shapes (e.g. a wide_resnet50_2 file)
        raise ValueError(f"ResNet-50 weights file {weights_path} does not match torchvision resnet50: {err}") from err


def resnet50(pretrained: bool = False, weights_path: str | Path | None = None) -> ResNet50Trunk:
    """ResNet-50 trunk; `pretrained` = torchvision IMAGENET1K_V1 (downloads), `weights_path` = local file."""
    from torchvision.models import ResNet50_Weights
    from torchvision.models import resnet50 as tv_resnet50

    if pretrained and weights_path is not None:
        raise ValueError("resnet50: give either pretrained=True or weights_path, not both")
    net = tv_resnet50(weights=ResNet50_Weights.IMAGENET1K_V1 if pretrained else None)
    if weights_path is not None:
        _load_trunk_weights(net, weights_path)
    return ResNet50Trunk(*list(net.children())[:-2])


# ----------------------------------------------------------------------------- registry
# Config name -> builder(**backbone_kwargs). `wrn28_<k>` stands for every widening factor: wrn28_8, wrn28_10, ...
# The schema's `backbone` pattern lists the same names (tests/test_models.py checks it).
WRN28_FAMILY = "wrn28_<k>"
_WRN28 = re.compile(r"wrn28_(\d+)$")
BACKBONES = {
    "convnet_small": ConvNetSmall,
    "resnet32": partial(ResNetCifar, depth=32),
    "resnet_cifar": ResNetCifar,
    WRN28_FAMILY: partial(WideResNet, depth=28),
    "resnet50": resnet50,
}


def build_backbone(name: str, **kwargs) -> nn.Module:
    """Build a backbone by config name; kwargs go to the constructor (e.g. width, depth, drop)."""
    match = _WRN28.match(name)
    if match:
        return BACKBONES[WRN28_FAMILY](widen=int(match.group(1)), **kwargs)
    if name not in BACKBONES or name == WRN28_FAMILY:
        raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(BACKBONES)} (e.g. wrn28_8, wrn28_10)")
    return BACKBONES[name](**kwargs)
