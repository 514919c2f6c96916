"""Shared test configuration: hypothesis profiles and a seeded RNG.

Profiles: ``dev`` (quick, the default), ``ci`` (more examples; chosen when the
``CI`` environment variable is set) and ``intense`` (``HYPOTHESIS_PROFILE=intense``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

_common = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}
settings.register_profile("dev", max_examples=40, **_common)
settings.register_profile("ci", max_examples=120, derandomize=True, print_blob=True, **_common)
settings.register_profile("intense", max_examples=2000, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator per test."""
    return np.random.default_rng(20261122)
