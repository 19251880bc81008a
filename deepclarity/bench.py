"""Speed benchmarks behind ``deepclarity bench``: figures with their conditions printed beside them.

Timings are the median of ``repeats`` runs after one warm-up run (DESIGN.md section 3). Nothing
here is a test: speed is measured, never asserted.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import DeepClarityError

__all__ = ["hardware", "median_time", "bench_detect", "format_bench"]


def hardware(device) -> str:
    """One line naming the processor (or GPU) and the thread count."""
    import torch

    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


def median_time(fn, repeats: int, sync=None) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    fn()
    if sync:
        sync()
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _sample_photos(data: str | None) -> list[np.ndarray]:
    from .io import read_rgb

    if data:
        from .io import list_images

        files = list_images(data, recursive=True)[:8]
        if not files:
            raise DeepClarityError(f"--data {data}: no images found")
        return [read_rgb(f) for f in files]
    from skimage import data as skdata

    return [skdata.astronaut(), skdata.chelsea(), skdata.coffee(), skdata.rocket()]


def _make_1080p_jpegs(folder: Path, count: int, data: str | None) -> list[Path]:
    """``count`` 1920x1080 JPEGs (quality 90): photos resized to fill the frame, every other one
    pixelated by a factor between 2 and 4, so the end-to-end figure includes block-size estimation."""
    import cv2

    from .degrade import pixelate
    from .io import write_image

    photos = _sample_photos(data)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        img = cv2.resize(photos[i % len(photos)], (1920, 1080), interpolation=cv2.INTER_CUBIC)
        if i % 2:
            img = pixelate(img, float(rng.uniform(2, 4)))
        path = folder / f"frame{i:03d}.jpg"
        write_image(path, img, quality=90)
        paths.append(path)
    return paths


def bench_detect(method: str = "canny", *, device: str = "auto", batch: int = 256, images: int = 24,
                 repeats: int = 5, data: str | None = None) -> dict:
    """Model-only crops/s (random crops, batch ``batch``) and end-to-end images/s from 1080p JPEGs."""
    import torch

    from .detect import CROP_SIZE, load_detector
    from .io import read_images
    from .runtime import inference_mode, to_model_input

    detector = load_detector(method, device=device)
    dev = detector.device
    sync = torch.cuda.synchronize if dev.type == "cuda" else None
    x = to_model_input(torch.rand(batch, 3, CROP_SIZE, CROP_SIZE), dev, detector.channels_last)

    def model_only():
        with inference_mode(dev, detector.fp16):
            detector.model(x)

    model_s = median_time(model_only, repeats, sync)
    with tempfile.TemporaryDirectory(prefix="deepclarity-bench-") as tmp:
        files = _make_1080p_jpegs(Path(tmp), images, data)

        def end_to_end():
            for _, loaded in read_images(files):
                detector.detect(loaded)

        e2e_s = median_time(end_to_end, max(1, repeats // 2), sync)
    return {
        "benchmark": "detect",
        "method": method,
        "hardware": hardware(dev),
        "device": str(dev),
        "dtype": "float16 (autocast)" if detector.fp16 else "float32",
        "model_only": {"crops_per_s": batch / model_s, "batch": batch, "crop": f"{CROP_SIZE}x{CROP_SIZE}"},
        "end_to_end": {"images_per_s": len(files) / e2e_s, "images": len(files), "size": "1920x1080 JPEG q90",
                       "tiles_per_image": detector.max_tiles,
                       "includes": "file read + JPEG decode (2 threads ahead, as deepclarity detect does) + Canny + "
                                    "model + block-size estimate when pixelated"},
        "repeats": repeats,
    }


def format_bench(result: dict) -> str:
    lines = [f"deepclarity bench {result['benchmark']} ({result['method']}) on {result['hardware']}, "
             f"device {result['device']}, {result['dtype']}"]
    mo, e2e = result["model_only"], result["end_to_end"]
    lines.append(f"  model only : {mo['crops_per_s']:8.1f} crops/s   (batch {mo['batch']}, crops {mo['crop']})")
    lines.append(f"  end to end : {e2e['images_per_s']:8.1f} images/s  ({e2e['images']} x {e2e['size']}, "
                 f"{e2e['tiles_per_image']} tiles each; {e2e['includes']})")
    lines.append(f"  median of {result['repeats']} runs after warm-up")
    return "\n".join(lines)
