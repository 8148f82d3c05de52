"""Fixtures shared by the engine tests."""

from __future__ import annotations

import numpy as np
import pytest

from engine import zoo
from engine.model import Sequential, Trace


@pytest.fixture(scope="session")
def vgg16() -> Sequential:
    """VGG-16 as zoo.load gives it: 138 million parameters, so built once per session."""
    return zoo.load("vgg16")


@pytest.fixture(scope="session")
def vgg16_trace(vgg16: Sequential) -> Trace:
    """One forward pass of VGG-16 on a seeded random 224x224 image."""
    x = np.random.default_rng(16).standard_normal((1, 3, 224, 224)).astype(np.float32)
    return vgg16.forward(x)
