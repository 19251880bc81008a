"""Speed benchmarks behind ``deepclarity bench``: figures with their conditions printed beside them.

``bench detect`` reports the median of ``repeats`` runs after one warm-up run (DESIGN.md section 3);
``bench sr`` and ``bench train`` the fastest, which on a shared machine is the run least disturbed by
other work. Nothing here is a test: speed is measured, never asserted.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from .errors import DeepClarityError

__all__ = ["hardware", "run_times", "median_time", "fastest_time", "bench_detect", "format_bench", "SR_FRAME",
           "sr_bench_models", "CPU_OPTIONS", "cpu_options", "bench_sr", "format_bench_sr", "bench_train",
           "format_bench_train", "bench_detect_ray", "format_bench_ray"]


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


def run_times(fn, repeats: int, sync=None) -> list[float]:
    """Seconds of each of ``repeats`` runs of ``fn()`` after one warm-up run (``sync`` waits for
    the device, e.g. ``torch.cuda.synchronize``)."""
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
    return times


def median_time(fn, repeats: int, sync=None) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs after one warm-up."""
    return statistics.median(run_times(fn, repeats, sync))


def fastest_time(fn, repeats: int, sync=None) -> float:
    """Fastest seconds of ``fn()`` over ``repeats`` runs after a warm-up: on a shared machine the
    fastest run is the one least disturbed by other work."""
    return min(run_times(fn, repeats, sync))


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
    from .runtime import image_worker_count, inference_mode, to_model_input

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
            for _, found in detector.detect_files(files):
                if isinstance(found, Exception):
                    raise found

        e2e_repeats = max(1, repeats // 2)  # each run reads all the files
        e2e_s = median_time(end_to_end, e2e_repeats, sync)
    workers = image_worker_count(dev)
    return {
        "benchmark": "detect",
        "method": method,
        "hardware": hardware(dev),
        "device": str(dev),
        "dtype": "float16 (autocast)" if detector.fp16 else "float32",
        "model_only": {"crops_per_s": batch / model_s, "batch": batch, "crop": f"{CROP_SIZE}x{CROP_SIZE}"},
        "end_to_end": {"images_per_s": len(files) / e2e_s, "images": len(files), "size": "1920x1080 JPEG q90",
                       "tiles_per_image": detector.max_tiles,
                       "includes": f"file read + JPEG decode + Canny + model + block-size estimate when pixelated; "
                                   f"{workers} images at a time, as deepclarity detect does"},
        "repeats": repeats,
        "repeats_end_to_end": e2e_repeats,
    }


def format_bench(result: dict) -> str:
    lines = [f"deepclarity bench {result['benchmark']} ({result['method']}) on {result['hardware']}, "
             f"device {result['device']}, {result['dtype']}"]
    mo, e2e = result["model_only"], result["end_to_end"]
    lines.append(f"  model only : {mo['crops_per_s']:8.1f} crops/s   (batch {mo['batch']}, crops {mo['crop']})")
    lines.append(f"  end to end : {e2e['images_per_s']:8.1f} images/s  ({e2e['images']} x {e2e['size']}, "
                 f"{e2e['tiles_per_image']} tiles each; {e2e['includes']})")
    lines.append(f"  median of {result['repeats']} runs (end to end: {result['repeats_end_to_end']}) after a warm-up")
    return "\n".join(lines)


# The prototype's speed setting: a 480x270 frame upscaled x4 to 1920x1080.
SR_FRAME = (270, 480)


def sr_bench_models() -> tuple[str, ...]:
    """The default ``bench sr`` rows, from the registry: function entries first (``bicubic``, the
    reference row), then the shipped generators, then the architectures kept for comparison.
    Restoration variants (the same networks, other weights) are left out."""
    from .models import list_models

    specs = [s for s in list_models("sr") if not s.is_restoration_variant]
    return tuple(s.name for s in sorted(specs, key=lambda s: (s.is_network, not s.shipped)))


#: The CPU options ``bench sr`` times for each network: ``<backend>-<precision>``.
CPU_OPTIONS = ("torch-fp32", "torch-bf16", "onnx-fp32")


def cpu_options() -> list[str]:
    """:data:`CPU_OPTIONS` that can run here: bf16 only on a CPU with native bf16, onnx only with
    the onnx extra installed."""
    from .export import onnx_available
    from .runtime import cpu_has_native_bf16

    return [o for o in CPU_OPTIONS if (o != "torch-bf16" or cpu_has_native_bf16())
            and (not o.startswith("onnx-") or onnx_available())]


def _sr_upscaler(name: str, device, option: str = "torch-fp32", channels_last: bool | None = None):
    """The :class:`~deepclarity.enhance.Upscaler` timed for ``name`` on ``device`` with ``option``
    (``<backend>-<precision>``; on CUDA the default fp16 autocast) and what its weights are: the
    shipped ones when present, else the architecture as initialised (speed does not depend on the
    weights; the prototype designs have none). ``channels_last``: the PyTorch memory layout
    (default: the one the card records for ``option``)."""
    from .enhance import Upscaler
    from .models import create_model, get_spec
    from .runtime import prepare_model

    spec = get_spec(name)
    if spec.task != "sr":
        raise DeepClarityError(f"{name} is not a super-resolution model")
    backend, precision = option.split("-", 1) if device.type == "cpu" else ("torch", "fp16")
    if not spec.is_network:
        return Upscaler(spec.name, device=device, tile=0), "n/a"
    if spec.has_weights:
        return Upscaler(spec.name, device=device, tile=0, precision=precision, backend=backend,
                        channels_last=channels_last), "trained"
    module = prepare_model(create_model(spec.name, pretrained=False), device, channels_last=channels_last)
    if backend == "onnx":
        import tempfile

        from .export import OnnxModule, export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            module = OnnxModule(export_onnx(module, Path(tmp) / f"{spec.name}.onnx"))
    return Upscaler.from_module(module, name=spec.name, device=device, tile=0, precision=precision), \
        "architecture only"


def bench_sr(models: tuple[str, ...] | list[str] | None = None, *, device: str = "auto", repeats: int = 3,
             frame: tuple[int, int] = SR_FRAME, options: list[str] | None = None, layouts: bool = False) -> dict:
    """Seconds per ``frame`` (H, W) input upscaled x4, whole frame at once, through
    :meth:`Upscaler.upscale_array <deepclarity.enhance.Upscaler.upscale_array>` (a ``uint8`` frame in,
    a ``uint8`` frame out: conversions and transfers included), the fastest of ``repeats`` runs after
    a warm-up: on the CPU (the configured threads) for each of ``options`` (default
    :func:`cpu_options`: PyTorch fp32, PyTorch bf16 autocast, onnxruntime fp32) and, for networks
    where CUDA is present and asked for, in fp16 on the GPU.

    ``models``: registry names (default: :func:`sr_bench_models`). ``layouts``: time each PyTorch
    CPU option in both memory layouts and keep the faster (``cpu_channels_last`` says which; what
    ``evaluation.calibrate_inference`` records), else in the layout the card records.
    """
    import torch

    from .models import get_spec
    from .runtime import model_channels_last, select_device

    models = sr_bench_models() if models is None else models
    options = cpu_options() if options is None else list(options)
    cuda = select_device(device)
    rng = np.random.default_rng(0)
    lr = rng.integers(0, 256, (*frame, 3), dtype=np.uint8)
    rows = []
    for name in models:
        spec = get_spec(name)
        row: dict = {"model": name, "params": spec.num_params, "weights": "n/a", "cpu_s": {}, "cuda_fp16_fps": None,
                     "cpu_channels_last": {}}
        if spec.is_network:
            row["size_mb_fp32"] = row["params"] * 4 / 1e6
        runs = [(torch.device("cpu"), o) for o in (options if spec.is_network else options[:1])]
        if spec.is_network and cuda.type == "cuda":
            runs.append((cuda, "torch-fp16"))
        for dev, option in runs:
            both = layouts and spec.is_network and dev.type == "cpu" and option.startswith("torch-")
            for layout in ((False, True) if both else (None,)):
                upscaler, row["weights"] = _sr_upscaler(name, dev, option, layout)
                sync = torch.cuda.synchronize if dev.type == "cuda" else None
                seconds = fastest_time(lambda: upscaler.upscale_array(lr),
                                       repeats if dev.type == "cpu" else max(repeats, 10), sync)
                key = option if spec.is_network else "torch-fp32"
                if dev.type == "cuda":
                    row["cuda_fp16_fps"] = 1.0 / seconds
                elif key not in row["cpu_s"] or seconds < row["cpu_s"][key]:
                    row["cpu_s"][key] = seconds
                    if upscaler.model is not None and option.startswith("torch-"):
                        row["cpu_channels_last"][key] = model_channels_last(upscaler.model)
        rows.append(row)
    return {
        "benchmark": "sr",
        "frame": f"{frame[1]}x{frame[0]} -> {frame[1] * 4}x{frame[0] * 4}",
        "cpu": hardware(torch.device("cpu")),
        "cuda": hardware(cuda) if cuda.type == "cuda" else None,
        "repeats": repeats,
        "options": options,
        "rows": rows,
    }


def format_bench_sr(result: dict) -> str:
    """A markdown table: one row per model, CPU seconds/frame for each option, CUDA fp16 frames/s."""
    cuda = result["cuda"]
    options = result["options"]
    lines = [
        f"x4 super-resolution, one {result['frame']} frame, whole frame at once through Upscaler.upscale_array "
        f"(uint8 in and out); fastest of {result['repeats']} runs after a warm-up",
        f"CPU: {result['cpu']}" + (f"; GPU: {cuda}, fp16 autocast" if cuda else "; GPU: none present"),
        "",
        "| model | params | MB (fp32) | weights | " + " | ".join(f"CPU s/frame {o}" for o in options)
        + " | GPU fp16 frames/s |",
        "|---|---|---|---|" + "---|" * len(options) + "---|",
    ]
    for r in result["rows"]:
        params = f"{r['params']:,}" if r["params"] else "-"
        size = f"{r['size_mb_fp32']:.3f}" if r.get("size_mb_fp32") else "-"
        cpu = [f"{r['cpu_s'][o]:.3f}" if o in r["cpu_s"] else "-" for o in options]
        gpu = f"{r['cuda_fp16_fps']:.1f}" if r["cuda_fp16_fps"] else "n/a"
        lines.append(f"| {r['model']} | {params} | {size} | {r['weights']} | " + " | ".join(cpu) + f" | {gpu} |")
    return "\n".join(lines)


def bench_train(models: list[str] | None = None, *, precisions: list[str] | None = None, batch: int = 16,
                patch: int = 32, repeats: int = 3) -> dict:
    """Training throughput on the CPU: patches per second of one optimiser step (autocast forward,
    L1 loss in fp32, backward, Adam on fp32 master weights) for each generator and precision, the
    fastest of ``repeats`` steps after a warm-up step, so the training precision is chosen by
    measurement. ``models``: registry networks (default: every x4 architecture, restoration
    variants left out); ``precisions``: default fp32, and bf16 where the CPU computes it natively."""
    import torch
    import torch.nn.functional as F

    from .models import create_model, list_models
    from .runtime import autocast, cpu_has_native_bf16

    cpu = torch.device("cpu")
    if models is None:
        models = [s.name for s in list_models("sr") if s.is_network and not s.is_restoration_variant
                  and s.derived_from is None]
    precisions = precisions or (["fp32", "bf16"] if cpu_has_native_bf16() else ["fp32"])
    gen = torch.Generator().manual_seed(0)
    lr = torch.rand(batch, 3, patch, patch, generator=gen)
    hr = torch.rand(batch, 3, patch * 4, patch * 4, generator=gen)
    rows = []
    for name in models:
        row: dict = {"model": name, "patches_per_s": {}}
        for precision in precisions:
            torch.manual_seed(0)
            model = create_model(name, pretrained=False).train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-4)

            def step() -> None:
                with autocast(cpu, precision):
                    out = model(lr)
                loss = F.l1_loss(out.float(), hr)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            row["patches_per_s"][precision] = batch / fastest_time(step, repeats)
        row["params"] = sum(p.numel() for p in create_model(name, pretrained=False).parameters())
        rows.append(row)
    return {"benchmark": "train", "cpu": hardware(cpu), "batch": batch, "patch_lr": patch,
            "precisions": precisions, "repeats": repeats, "rows": rows}


def format_bench_train(result: dict) -> str:
    """A markdown table: patches/s per model and precision, and the speed-up over fp32."""
    precisions = result["precisions"]
    lines = [f"training step (autocast forward, L1, backward, Adam), batch {result['batch']} x "
             f"{result['patch_lr']}x{result['patch_lr']} LR patches (x4 HR); fastest of {result['repeats']} steps "
             "after a warm-up",
             f"CPU: {result['cpu']}", "",
             "| model | params (training form) | " + " | ".join(f"{p} patches/s" for p in precisions)
             + (" | bf16 / fp32 |" if "bf16" in precisions and "fp32" in precisions else " |"),
             "|---|---|" + "---|" * len(precisions) + ("---|" if "bf16" in precisions and "fp32" in precisions else "")]
    for r in result["rows"]:
        speeds = r["patches_per_s"]
        cells = [f"{speeds[p]:.1f}" for p in precisions]
        if "bf16" in speeds and "fp32" in speeds:
            cells.append(f"{speeds['bf16'] / speeds['fp32']:.2f}x")
        lines.append(f"| {r['model']} | {r['params']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------ detect on Ray Data


def bench_detect_ray(method: str = "canny", *, images: int = 24, repeats: int = 3, data: str | None = None,
                     workers: int | None = None, address: str | None = None, batch_size: int = 4) -> dict:
    """End-to-end images/s of ``deepclarity detect --engine ray`` over 1080p JPEGs on disk, with the
    start-up stated apart: Ray's own start (or joining ``address``), and the start of a job's actor
    pool (processes, imports, one model load each), timed as a job of one tiny image per worker.
    Every job starts its own pool (Ray Data does), so the per-job figure includes it; the steady
    figure takes the pool start out."""
    from .engines.ray_engine import RayJob, connect
    from .io import write_image

    ray = __import__("ray")
    t0 = time.perf_counter()
    started = connect(address)
    init_s = time.perf_counter() - t0
    try:
        options = {"method": method}
        with tempfile.TemporaryDirectory(prefix="deepclarity-bench-") as tmp:
            files = [str(p) for p in _make_1080p_jpegs(Path(tmp), images, data)]
            probe = RayJob("detect", options=options, workers=workers, device="cpu", quiet=True)
            n_workers = probe._plan(ray)[0]
            tiny = []
            for i in range(n_workers):
                tiny.append(str(Path(tmp) / f"tiny{i}.png"))
                write_image(tiny[-1], np.full((64, 64, 3), 128, np.uint8))

            def job(paths):
                run = RayJob("detect", options=options, workers=workers, batch_size=batch_size, device="cpu",
                             quiet=True)
                for record in run.records(paths):
                    if record["error"]:
                        raise DeepClarityError(record["error"])
                return run.stats

            pool_s = median_time(lambda: job(tiny), repeats)
            job_s = median_time(lambda: job(files), repeats)
            stats = job(tiny)
            cluster = address or f"local Ray instance, {int(ray.cluster_resources().get('CPU', 0))} CPUs"
        cpu = hardware(__import__("torch").device("cpu")).rsplit(",", 1)[0]
        steady = len(files) / max(1e-9, job_s - pool_s)
    finally:
        if started:
            ray.shutdown()
    return {
        "benchmark": "detect",
        "engine": "ray",
        "method": method,
        "cluster": cluster,
        "hardware": cpu,
        "workers": stats["workers"],
        "cpus_per_worker": stats["cpus_per_worker"],
        "batch_size": batch_size,
        "images": len(files),
        "size": "1920x1080 JPEG q90",
        "startup": {"ray_init_s": init_s, "actor_pool_s": pool_s},
        "end_to_end": {"images_per_s_per_job": len(files) / job_s, "job_s": job_s,
                       "images_per_s_steady": steady,
                       "images_per_s_per_worker": steady / stats["workers"]},
        "repeats": repeats,
    }


def format_bench_ray(result: dict) -> str:
    e2e, st = result["end_to_end"], result["startup"]
    return "\n".join([
        f"deepclarity bench detect --engine ray ({result['method']}) on {result['hardware']}: {result['cluster']}, "
        f"{result['workers']} workers x {result['cpus_per_worker']:g} CPU, batches of {result['batch_size']}",
        f"  start-up   : Ray start {st['ray_init_s']:.1f} s; actor pool start + model load {st['actor_pool_s']:.1f} s "
        f"per job",
        f"  end to end : {e2e['images_per_s_per_job']:8.2f} images/s per job ({result['images']} x {result['size']}, "
        f"{e2e['job_s']:.1f} s, pool start included)",
        f"  steady     : {e2e['images_per_s_steady']:8.2f} images/s ({e2e['images_per_s_per_worker']:.2f} per worker; "
        f"job time less pool start)",
        f"  median of {result['repeats']} jobs after a warm-up",
    ])
