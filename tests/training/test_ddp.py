"""``torchrun --nproc_per_node=2 -m training.train_sr``: two CPU processes (gloo, DDP) train the model a
one-process run with the same global batch trains, and a checkpoint resumes on another number of
processes. Tiny generated data (``helpers.write_train_folder``), a few steps, float32."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import write_train_folder

from training.loop import RankSampler

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_ranks_share_one_sample_stream():
    take = lambda s, n: [i for _, i in zip(range(n), s)]  # noqa: E731
    single = take(RankSampler(8), 8)
    r0, r1 = take(RankSampler(8, 0, 2), 4), take(RankSampler(8, 1, 2), 4)
    assert single == list(range(8, 16)) and sorted(r0 + r1) == single and not set(r0) & set(r1)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_train_folder(tmp_path_factory.mktemp("ddp_data"), "crop", 120, 140, (5, 4))


def _train(data: Path, tmp: Path, name: str, procs: int, *extra: str) -> Path:
    """One run into ``tmp/name`` (its checkpoint folder and weights); returns that folder."""
    out = tmp / name
    args = ["--model", "mobilesr", "--data", str(data), "--subsets", "mini", "--patch", "12", "--batch", "4",
            "--steps", "4", "--val-every", "4", "--val-images", "0", "--val-crop", "64", "--threads", "1",
            "--device", "cpu", "--precision", "fp32", "--no-from-weights", "--lr", "1e-3", "--warmup", "1",
            "--checkpoints", str(out / "ckpt"), "--out", str(out / "mobilesr.safetensors"), *extra]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}"]
                if procs > 1 else [sys.executable])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([*launcher, "-m", "training.train_sr", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


def _state(folder: Path) -> dict:
    return torch.load(folder / "ckpt" / "mobilesr" / "last.pt", map_location="cpu", weights_only=False)


def _assert_same(a: dict, b: dict) -> None:
    for part in ("model", "ema"):
        for k, v in a[part].items():
            assert torch.allclose(v.float(), b[part][k].float(), atol=2e-5, rtol=1e-4), (part, k)


def test_two_processes_equal_one_with_the_same_global_batch_and_resume_on_one(data, tmp_path):
    one = _state(_train(data, tmp_path, "one", 1))
    two_dir = _train(data, tmp_path, "two", 2)
    two = _state(two_dir)
    assert one["step"] == two["step"] == 4 and one["samples"] == two["samples"] == 16
    _assert_same(one, two)
    card = json.loads((two_dir / "mobilesr.json").read_text())
    assert card["batch"] == 4 and card["processes"] == 2 and card["batch_per_process"] == 2
    assert card["samples"] == 16 and card["hardware"].startswith("2 processes (gloo)")
    assert len((two_dir / "ckpt" / "mobilesr" / "log.csv").read_text().splitlines()) == 2  # rank 0 wrote once
    # Stopped by the time budget after its first step on 2 processes, resumed on 1: the same model.
    part = _train(data, tmp_path, "part", 2, "--minutes", "0.00001")
    assert _state(part)["step"] == 1 and _state(part)["samples"] == 4
    resumed = _state(_train(data, tmp_path, "part", 1))
    assert resumed["step"] == 4 and resumed["samples"] == 16
    _assert_same(one, resumed)
