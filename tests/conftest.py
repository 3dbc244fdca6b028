"""Shared fixtures and helpers for the test-suite (float64 everywhere, small nets)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_SPECS = sorted((ROOT / "specs").glob("*.py"))
TEST_SPECS = sorted((ROOT / "tests" / "specs").glob("*.py"))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _float64_and_seed():
    torch.manual_seed(0)
    yield
