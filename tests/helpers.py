"""Helpers the test modules share (imported as ``helpers``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest


def write_random_weights(folder: Path, names: tuple[str, ...], card: dict | None = None) -> Path:
    """Randomly initialised weights (seeded) for registry ``names`` in ``folder``, the layout of
    ``weights/``; detectors are stored in fp16 like the shipped ones. Returns ``folder``."""
    import torch

    from deepclarity.models import create_model, get_spec, save_weights

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    for name in names:
        spec = get_spec(name)
        save_weights(create_model(name, pretrained=False), folder / spec.weights, dict(card or {}),
                     half=spec.task == "detect")
    return folder


def clear_model_caches() -> None:
    """Forget every model loaded by an earlier test (upscalers, detectors, restorers)."""
    from deepclarity import detect, enhance, restore

    for cache in (enhance._UPSCALERS, detect._DETECTORS, restore._RESTORERS):
        cache.clear()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120.0) -> None:
    """Return once ``url`` answers 200; fail the test with the server's log if it exits or never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the app exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"the app did not answer at {url} within {timeout:.0f} s:\n{log.read_text()[-3000:]}")
