"""Super-resolution evaluation on the published protocol (DESIGN.md section 3).

HR images are cropped to a multiple of the scale, LR inputs made with the MATLAB-compatible
bicubic :func:`~deepclarity.degrade.imresize`, outputs rounded to ``uint8``, and PSNR/SSIM taken on
Y with ``scale`` pixels shaved per border. ``deepclarity eval sr`` and ``evaluation/eval_sr.py``
both call :func:`evaluate_sr`, so the README's numbers and the command line agree.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from ..degrade import imresize
from ..errors import DeepClarityError, ImageError
from ..io import read_image, to_uint8
from ..metrics import detail_ratio, lpips, lpips_available, psnr_y, ssim_y

__all__ = [
    "split_variant",
    "make_upscaler",
    "SetResult",
    "evaluate_sr",
    "format_sr_table",
]

UpscaleFn = Callable[[np.ndarray], np.ndarray]


def split_variant(method: str) -> tuple[str, str, str]:
    """``"name[@bf16|@fp16|@fp32|@onnx]"`` -> ``(name, precision, backend)``; no suffix is fp32
    PyTorch, so a table never depends on what ``auto`` would pick."""
    name, _, option = method.partition("@")
    option = option.lower() or "fp32"
    if option == "onnx":
        return name, "fp32", "onnx"
    if option not in ("fp32", "bf16", "fp16"):
        raise DeepClarityError(f"{method}: unknown option @{option} (use @fp32, @bf16, @fp16 or @onnx)")
    return name, option, "torch"


def make_upscaler(method: str, scale: int = 4, *, device: str = "cpu", fp32: bool = False,
                  tile: int = 0, tile_pad: int = 16) -> UpscaleFn:
    """A function ``uint8 HxWx3 LR -> uint8 HxWx3 SR`` for a registered SR entry (``bicubic`` included),
    optionally with a precision or backend suffix (:func:`split_variant`: ``minisrresnet@bf16``).

    It is :meth:`deepclarity.enhance.Upscaler.upscale_array`: the pixels ``deepclarity enhance``
    writes. A function entry asked for another scale than its own (``bicubic`` x2, x3) runs its
    function at that scale.

    Raises:
        DeepClarityError: ``method`` is not a super-resolution entry, or a network of another scale.
        ModelError: unknown name or missing weights.
    """
    from ..enhance import Upscaler
    from ..models import get_spec

    name, precision, backend = split_variant(method)
    spec = get_spec(name)
    if spec.task != "sr":
        raise DeepClarityError(f"{name} is a {spec.task} model, not a super-resolution model")
    if spec.scale != scale:
        if spec.is_network:
            raise DeepClarityError(f"{name} upscales x{spec.scale}, but --scale is {scale}")
        return lambda lr: spec.function(lr, scale)
    if "@" not in method:  # no suffix: as before (fp16 autocast on CUDA unless fp32)
        return Upscaler(spec.name, device=device, fp32=fp32, tile=tile, tile_pad=tile_pad).upscale_array
    return Upscaler(spec.name, device=device, tile=tile, tile_pad=tile_pad, precision=precision,
                    backend=backend).upscale_array


@dataclass
class SetResult:
    """Mean metrics of one method on one benchmark set (per-image values kept for JSON)."""

    method: str
    dataset: str
    images: int
    psnr: float
    ssim: float
    lpips: float | None = None
    lpips_note: str | None = None
    detail: float | None = None
    seconds: float = 0.0
    per_image: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _lr_hr_pair(path: Path, scale: int) -> tuple[np.ndarray, np.ndarray]:
    hr = to_uint8(read_image(path).pixels)
    h, w = hr.shape[:2]
    hr = hr[: h - h % scale, : w - w % scale]
    if hr.shape[0] < 2 * scale + 11 or hr.shape[1] < 2 * scale + 11:
        raise ImageError(f"{path}: too small for x{scale} evaluation")
    return imresize(hr, 1.0 / scale), hr


def evaluate_sr(
    sets: list[tuple[str, list[Path]]],
    methods: list[str],
    *,
    scale: int = 4,
    device: str = "cpu",
    fp32: bool = False,
    tile: int = 0,
    with_lpips: bool = False,
    progress: bool = True,
) -> list[SetResult]:
    """PSNR-Y / SSIM-Y (and optionally LPIPS) of every method on every set.

    LPIPS, when asked for but unavailable (no cached backbone), is reported as ``None`` with the
    reason in ``lpips_note`` — never estimated.
    """
    from ..runtime import select_device

    select_device(device)  # a bad --device fails before any work, whatever the methods
    lp_ok, lp_note = lpips_available() if with_lpips else (False, "not requested")
    upscalers = {m: make_upscaler(m, scale, device=device, fp32=fp32, tile=tile) for m in methods}
    pairs = {name: [(p, *_lr_hr_pair(p, scale)) for p in files] for name, files in sets}
    results = []
    total = sum(len(v) for v in pairs.values()) * len(methods)
    with tqdm(total=total, desc="eval sr", unit="img", disable=None if progress else True, leave=False) as bar:
        for method in methods:
            up = upscalers[method]
            for name, items in pairs.items():
                rows, seconds = [], 0.0
                for path, lr, hr in items:
                    t0 = time.perf_counter()
                    sr = up(lr)
                    seconds += time.perf_counter() - t0
                    row = {"image": path.name, "psnr": psnr_y(sr, hr, scale), "ssim": ssim_y(sr, hr, scale),
                           "detail": detail_ratio(sr, hr, scale)}
                    if lp_ok:
                        row["lpips"] = lpips(sr, hr, scale)
                    rows.append(row)
                    bar.update(1)
                results.append(SetResult(
                    method=method, dataset=name, images=len(rows),
                    psnr=float(np.mean([r["psnr"] for r in rows])),
                    ssim=float(np.mean([r["ssim"] for r in rows])),
                    lpips=float(np.mean([r["lpips"] for r in rows])) if lp_ok else None,
                    lpips_note=None if lp_ok else lp_note,
                    detail=float(np.mean([r["detail"] for r in rows])),
                    seconds=seconds, per_image=rows,
                ))
    return results


def format_sr_table(results: list[SetResult], *, scale: int, facts: dict[str, dict] | None = None) -> str:
    """A markdown table: one row per method, one ``PSNR / SSIM[ / LPIPS]`` column per set.

    ``facts`` (method -> ``params``, ``size_mb_fp32``, ``cpu_s`` from :func:`deepclarity.bench.bench_sr`)
    adds the prototype's columns: parameters, size and CPU time per 480x270 -> 1920x1080 frame.
    The LPIPS column appears whenever LPIPS was asked for; unavailable values read "n/a" and the
    reason is printed under the table.
    """
    methods = list(dict.fromkeys(r.method for r in results))
    sets = list(dict.fromkeys(r.dataset for r in results))
    cell = {(r.method, r.dataset): r for r in results}
    has_lpips = any(r.lpips is not None or (r.lpips_note and r.lpips_note != "not requested") for r in results)

    def fmt(r: SetResult) -> str:
        text = f"{r.psnr:.2f} / {r.ssim:.4f}"
        if has_lpips:
            text += f" / {r.lpips:.4f}" if r.lpips is not None else " / n/a"
        return text

    extra = ["params", "MB (fp32)", "CPU s/frame (frames/s)"] if facts else []
    lines = [
        f"x{scale} — PSNR (dB) / SSIM{' / LPIPS' if has_lpips else ''} on Y, {scale} px shaved, "
        "MATLAB bicubic LR",
        "",
        "| method | " + " | ".join([f"{s} ({cell[(methods[0], s)].images})" for s in sets] + extra) + " |",
        "|---|" + "---|" * (len(sets) + len(extra)),
    ]
    for m in methods:
        vals = [fmt(cell[(m, s)]) for s in sets]
        if facts:
            f = facts.get(m, {})
            vals += [f"{f['params']:,}" if f.get("params") else "-",
                     f"{f['size_mb_fp32']:.3f}" if f.get("size_mb_fp32") else "-",
                     f"{f['cpu_s']:.2f} ({1 / f['cpu_s']:.2f})" if f.get("cpu_s") else "-"]
        lines.append(f"| {m} | " + " | ".join(vals) + " |")
    if all(r.detail is not None for r in results):
        lines += ["", "Fine detail relative to the ground truth (`metrics.detail_ratio`: mean squared neighbour "
                      "differences of Y; 1.0 = as much as the truth, less = smoother, more = sharper or noisier):", "",
                  "| method | " + " | ".join(sets) + " |", "|---|" + "---|" * len(sets)]
        lines += [f"| {m} | " + " | ".join(f"{cell[(m, s)].detail:.3f}" for s in sets) + " |" for m in methods]
    notes = {r.lpips_note for r in results if r.lpips is None and r.lpips_note and r.lpips_note != "not requested"}
    for note in sorted(notes):
        lines.append(f"\nLPIPS: n/a — {note}")
    return "\n".join(lines)
