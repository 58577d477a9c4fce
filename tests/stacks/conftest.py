"""Framework-only checks: each file starts the one stack it is about."""
from __future__ import annotations

import pytest


@pytest.fixture
def kafka(fresh_stack):
    return fresh_stack("kafka")
