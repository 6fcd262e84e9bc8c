"""Reliability tests (issue: crash-resume, faults, quota parks, bad input, hostile data,
secrets). Each records its figures with the ``figures`` fixture; ``tests/conftest.py`` prints
them in a "reliability figures" section at the end of the run, also under ``pytest -n 2``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

FIGURE = "figure"


@pytest.fixture
def figures(record_property) -> Callable[[str, object], None]:
    """``figures("requests, clean run", 812)``: one line in the end-of-run report."""

    def record(name: str, value: object) -> None:
        record_property(FIGURE, f"{name}: {value}")

    return record
