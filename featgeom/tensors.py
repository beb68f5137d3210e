"""Numpy -> torch conversion shared by heads and losses."""
from __future__ import annotations

import numpy as np
import torch


def as_float_tensor(array) -> torch.Tensor:
    """A float32 copy of `array` (numpy or tensor) that owns its memory, for buffers and frozen weights."""
    return torch.as_tensor(np.asarray(array), dtype=torch.float32).clone()
