"""Measure how a generator may run on the CPU without changing its picture, for ``precision=auto``.

For one shipped generator: the PSNR-Y of bf16 autocast against fp32 on benchmark sets (the SR
protocol of :mod:`deepclarity.eval.sr`), the largest difference between onnxruntime and PyTorch
outputs in 8-bit levels on the same images, and the CPU seconds per 480x270 -> 1920x1080 frame of
each option (:func:`deepclarity.bench.bench_sr`, each PyTorch option in the faster of the two
memory layouts, recorded as ``cpu_channels_last``). The options that keep the picture (bf16 within
:data:`~deepclarity.inference.MAX_BF16_PSNR_DELTA_DB` on every set, ONNX within 1/255) are ranked
fastest first; :func:`deepclarity.inference.choose_inference` follows that ranking.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..inference import MAX_BF16_PSNR_DELTA_DB
from .sr import evaluate_sr, make_upscaler

__all__ = ["measure_inference"]


def _onnx_max_diff(name: str, sets: list[tuple[str, list[Path]]]) -> int:
    """Largest |ONNX - PyTorch| in 8-bit levels over the LR images of ``sets``."""
    from .sr import _lr_hr_pair

    torch_up, onnx_up = make_upscaler(f"{name}@fp32"), make_upscaler(f"{name}@onnx")
    worst = 0
    for _, files in sets:
        for path in files:
            lr, _ = _lr_hr_pair(path, 4)
            worst = max(worst, int(np.abs(torch_up(lr).astype(np.int16) - onnx_up(lr)).max()))
    return worst


def measure_inference(name: str, sets: list[tuple[str, list[Path]]], *, repeats: int = 3,
                      progress: bool = True) -> dict:
    """The ``inference`` record of generator ``name`` (see the module docstring); the caller adds
    the command and writes it into the model card."""
    from ..bench import bench_sr, cpu_options
    from ..models import get_spec
    from ..models.weights import read_card, write_card

    spec = get_spec(name)
    options = cpu_options()
    # Speed first, each PyTorch option in both memory layouts: the faster layout is written into
    # the card at once, so the PSNR below is measured in the layout that ships.
    speed = bench_sr([name], device="cpu", repeats=repeats, options=options, layouts=True)
    layouts = speed["rows"][0]["cpu_channels_last"]
    record: dict = {"weights_sha256": spec.card["sha256"], "sets": [n for n, _ in sets], "cpu_channels_last": layouts}
    card = read_card(spec.weights_path) or {}
    write_card(spec.weights_path, {**card, "inference": {**record, "cpu_ranking": []}})
    methods = [f"{name}@fp32"] + ([f"{name}@bf16"] if "torch-bf16" in options else [])
    results = evaluate_sr(sets, methods, device="cpu", progress=progress)
    psnr = {(r.method, r.dataset): r.psnr for r in results}
    keeps = {"torch-fp32": True}
    if "torch-bf16" in options:
        deltas = {n: psnr[(f"{name}@bf16", n)] - psnr[(f"{name}@fp32", n)] for n, _ in sets}
        record["bf16_psnr_delta_db"] = deltas
        keeps["torch-bf16"] = max(abs(d) for d in deltas.values()) <= MAX_BF16_PSNR_DELTA_DB
    if "onnx-fp32" in options:
        record["onnx_max_diff_8bit"] = _onnx_max_diff(name, sets)
        keeps["onnx-fp32"] = record["onnx_max_diff_8bit"] <= 1
    seconds = speed["rows"][0]["cpu_s"]
    record["cpu"] = speed["cpu"]
    record["cpu_seconds_per_frame"] = seconds
    record["frame"] = speed["frame"]
    record["keeps_picture"] = keeps
    record["cpu_ranking"] = sorted((o for o in seconds if keeps.get(o)), key=seconds.get)
    return record
