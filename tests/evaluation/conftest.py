"""The evaluation wrappers are run the way users run them: ``python -m evaluation.<name>`` from the
repository root, in a subprocess (environment inherited, so ``monkeypatch.setenv`` reaches them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_evaluation():
    """``run_evaluation(name, *args)`` -> the finished ``python -m evaluation.<name> args...``
    (``returncode``, ``stdout``, ``stderr`` as text)."""

    def run(name: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", f"evaluation.{name}", *map(str, args)], cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    return run
