"""Shared checks for the evaluation scripts' tables."""

from __future__ import annotations

import pytest


@pytest.fixture
def rule_table_rows():
    """A function checking a rule table (evaluation/rule_table.py) written by ``script`` over
    ``slices`` with ``n`` images each, and returning its rows as lists of cells."""

    def check(text: str, script: str, slices, n: int) -> list[list[str]]:
        assert text.startswith(f"`python -m evaluation.{script} --data ")
        lines = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
        rows = [line.strip("| ").split(" | ") for line in lines]
        assert [r[0] for r in rows] == list(slices)
        for cells in rows:
            assert cells[2] == str(n) and all(c.endswith("%") for c in cells[3:])
        return rows

    return check
