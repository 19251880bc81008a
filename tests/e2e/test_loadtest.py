"""evaluation/loadtest.py in its reduced form: both apps launched, concurrent requests, no failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_reduced_load_has_no_failures():
    res = subprocess.run([sys.executable, "evaluation/loadtest.py", "--detect", "6", "--correct", "3", "--name", ""],
                         cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    assert "| detect_app.py | /detect | 6 | 6 | 0 |" in res.stdout
    assert "| correct_app.py | /correct | 3 | 3 | 0 |" in res.stdout
    assert res.stdout.count("| yes |") == 2  # each server still answered afterwards
