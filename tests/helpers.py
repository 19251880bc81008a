"""Helpers the test modules share (imported as ``helpers``; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
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


def write_train_folder(root: Path, name: str, height: int, width: int, step: tuple[int, int]) -> Path:
    """A tiny ``<root>/train/mini`` of 30 crops of scikit-image photos (``name00.png``...), the crop
    ``i`` starting at ``(step[0] * i, step[1] * i)``; both sides of the train/validation split are
    used. Returns ``root``, the ``--data`` folder of the training scripts."""
    from skimage import data as skdata

    from deepclarity.datasets import is_validation
    from deepclarity.io import write_image

    folder = root / "train" / "mini"
    folder.mkdir(parents=True)
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    for i in range(30):
        y, x = step[0] * i, step[1] * i
        write_image(folder / f"{name}{i:02d}.png", photos[i % 4][y:y + height, x:x + width])
    names = [p for p in folder.iterdir() if is_validation(p, root)]
    assert 0 < len(names) < 30  # both sides of the split are used
    return root


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


REPO = Path(__file__).resolve().parents[1]


def start_app(script: str, folder: Path, *, weights: Path | None = None,
              log_name: str = "server.log") -> tuple[subprocess.Popen, str, Path]:
    """Launch ``script`` (``detect_app.py``/``correct_app.py``) as a subprocess on a free loopback
    port, CPU, one thread; ``folder`` is its TMPDIR (results, Gradio's cache) and holds its log.
    ``weights``: a weights folder (default: the shipped ones). Does not wait: see
    :func:`wait_for_http`; end it with :func:`stop_app`. Returns ``(process, url, log)``."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False", "TMPDIR": str(folder)}
    for name in ("DEEPCLARITY_WEIGHTS", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT"):
        env.pop(name, None)  # the shipped weights, the default (loopback) host, the port given below
    if weights is not None:
        env["DEEPCLARITY_WEIGHTS"] = str(weights)
    port = free_port()
    log = folder / log_name
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, script, "--port", str(port), "--device", "cpu", "--threads", "1"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}/", log


def stop_app(proc: subprocess.Popen) -> None:
    """Terminate an app started by :func:`start_app` (killed if it does not stop in 20 s)."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=20)


def run_module(module: str, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m <module> args...`` run from the repository root, as users run the evaluation and
    training scripts (environment inherited, so ``monkeypatch.setenv`` reaches it); ``returncode``,
    ``stdout`` and ``stderr`` (text) of the finished process."""
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=timeout, check=False)
