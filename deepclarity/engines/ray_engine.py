"""Ray Data batch inference for ``detect``, ``enhance`` and ``restore``.

The driver never opens an image: it builds a dataset of paths (a list it was given, or an
``--input-list`` read by Ray Data itself, text or Parquet) and streams it through a class-based
``map_batches`` UDF on a pool of actors (``ActorPoolStrategy(size=N)``, ``num_gpus=1`` each for
CUDA workers). Each actor loads its model once, then turns a batch of paths into a batch of records
with :mod:`deepclarity.engines.records` -- the same calls the local CLI makes, so pixel limits, EXIF
orientation, 16-bit and alpha, error texts, output names and ``--skip-existing`` are the local ones.
Enhance/restore workers write their images themselves, atomically.

Ray owns scheduling and retries: Ray Data restarts a dead actor and re-runs its batch
(``max_restarts=-1``, ``max_task_retries=-1`` are its defaults for actor pools). A batch that is
re-run writes the same files again (atomic replace) and its records replace the lost ones, so
nothing is lost or duplicated. Records come back in input order (``preserve_order``).

Usage from Python (the CLI is ``deepclarity detect|enhance|restore ... --engine ray``)::

    run = RayJob("detect", options={"method": "canny"}, workers=4)
    for record in run.records(paths=["a.png", "b.jpg"]):
        ...
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from ..errors import DeepClarityError
from . import require_ray
from .records import DETECT_FIELDS, IMAGE_FIELDS, RESTORE_FIELDS, detect_record, image_record, is_parquet, \
    make_processor

__all__ = ["JOBS", "connect", "schema", "DetectWorker", "ImageWorker", "RayJob"]

JOBS = ("detect", "enhance", "restore")

#: Environment passed to every worker: the library's settings (weights folder, pixel limit,
#: precision, ...) as the driver has them; threads are set per actor instead.
_ENV_PREFIX = "DEEPCLARITY_"


def _library_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIX) and k != "DEEPCLARITY_THREADS"}


def connect(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Join the cluster at ``address`` (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``) or, without
    one, start a light local Ray instance with ``num_cpus`` (default: this machine's) and no dashboard.

    Returns whether this call started Ray (the caller then shuts it down); an already initialised
    Ray (a notebook, the tests) is used as it is.
    """
    ray = require_ray()
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    kwargs: dict[str, Any] = {"logging_level": logging.WARNING}
    env = _library_env()
    if env:
        kwargs["runtime_env"] = {"env_vars": env}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus or os.cpu_count() or 1, include_dashboard=False, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise DeepClarityError(f"cannot start or join {where}: {str(exc).strip().splitlines()[0]}") from None
    return True


def schema(job: str):
    """The pyarrow schema of ``job``'s records (fixed, so every batch and the Parquet output agree)."""
    import pyarrow as pa

    f64, text = pa.float64(), pa.string()
    if job == "detect":
        region = pa.struct([("x", pa.int64()), ("y", pa.int64()), ("w", pa.int64()), ("h", pa.int64()),
                            ("block_size", f64), ("phase", pa.list_(f64)), ("confidence", f64)])
        return pa.schema([("path", text), ("pixelated", pa.bool_()), ("probability", f64), ("block_size", f64),
                          ("phase", pa.list_(f64)), ("method", text), ("basis", text), ("regions", pa.list_(region)),
                          ("error", text)])
    fields = [("input", text), ("output", text), ("status", text), ("model", text), ("size", text),
              ("seconds", f64), ("error", text)]
    if job == "restore":
        fields += [("action", text), ("pixelated", pa.bool_()), ("probability", f64), ("block_size", f64),
                   ("region", pa.list_(pa.int64())), ("lowres_size", pa.list_(pa.int64()))]
    return pa.schema(fields)


def columns(job: str) -> list[str]:
    """Record keys of ``job``, in the order of the local CLI's JSON."""
    if job == "detect":
        return list(DETECT_FIELDS)
    return list(IMAGE_FIELDS) + (list(RESTORE_FIELDS) if job == "restore" else [])


# ------------------------------------------------------------------------------------ the workers


class _Worker:
    """What every actor does once: the driver's library settings, working folder and thread count."""

    job = ""

    def __init__(self, *, cwd: str | None = None, threads: int = 1, env: dict[str, str] | None = None) -> None:
        os.environ.update(env or {})
        if cwd and os.path.isdir(cwd):  # relative paths mean what they meant to the driver
            os.chdir(cwd)
        try:
            import cv2

            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our error records say it
        except Exception:  # pragma: no cover - an OpenCV build without the logging module
            pass
        from ..runtime import configure_threads

        configure_threads(threads)
        self.schema = schema(self.job)

    def _table(self, records: list[dict]):
        import pyarrow as pa

        return pa.Table.from_pylist(records, schema=self.schema)

    @staticmethod
    def _paths(batch: dict) -> list[str]:
        return [p for p in (str(v).strip() for v in batch["path"]) if p]

    def _guarded(self, record_fn, path: str, fallback: dict) -> dict:
        """``record_fn()``; an unexpected exception (not a bad file: a bug, an OpenCV assertion) is
        still one error record, so one odd file never fails a long job."""
        try:
            return record_fn()
        except Exception as exc:  # noqa: BLE001 - the record carries it
            return {**fallback, "error": f"{path}: internal error: {type(exc).__name__}: {exc}"}


class DetectWorker(_Worker):
    """A ``map_batches`` UDF: ``{"path": [...]}`` -> detect records. The detector loads once per actor."""

    job = "detect"

    def __init__(self, *, method: str, device: str = "cpu", fp32: bool = False, threshold: float | None = None,
                 max_tiles: int = 24, **kwargs) -> None:
        super().__init__(**kwargs)
        from ..detect import load_detector

        self.method = method
        self.detector = load_detector(method, device=device, fp32=fp32, threshold=threshold, max_tiles=max_tiles)

    def __call__(self, batch: dict):
        records = [self._guarded(lambda p=p: detect_record(self.detector, p, self.method), p,
                                 {"path": p, "method": self.method}) for p in self._paths(batch)]
        return self._table(records)


class ImageWorker(_Worker):
    """A ``map_batches`` UDF for ``enhance``/``restore``: ``{"path": [...], "rel": [...]}`` -> records;
    the images are written by the worker (atomically) under ``outdir``."""

    def __init__(self, *, job: str, options: dict, outdir: str, suffix: str, ext: str = "auto",
                 skip_existing: bool = False, inputs: list[str] | None = None,
                 claims: dict[str, str] | None = None, **kwargs) -> None:
        self.job = job
        super().__init__(**kwargs)
        self.process = make_processor(job, options)
        self.model = options["model"]
        self.outdir, self.suffix, self.ext, self.skip_existing = outdir, suffix, ext, skip_existing
        self.inputs = frozenset(inputs) if inputs else None
        self.claims = claims

    def record(self, path: str, rel: str) -> dict:
        return self._guarded(
            lambda: image_record(path, rel, self.outdir, self.process, model=self.model, suffix=self.suffix,
                                 ext=self.ext, skip_existing=self.skip_existing, inputs=self.inputs,
                                 claims=self.claims),
            path, {"input": path, "status": "error", "model": self.model})

    def __call__(self, batch: dict):
        paths = [str(v).strip() for v in batch["path"]]
        rels = [str(v) for v in batch["rel"]] if "rel" in batch else [Path(p).name for p in paths]
        return self._table([self.record(p, r) for p, r in zip(paths, rels) if p])


# ------------------------------------------------------------------------------------ the driver


class RayJob:
    """One ``detect``/``enhance``/``restore`` run on Ray.

    Args:
        job: ``"detect"``, ``"enhance"`` or ``"restore"``.
        options: the worker's constructor arguments: for detect ``method fp32 threshold max_tiles``;
            for enhance/restore ``options`` (:func:`~deepclarity.engines.records.make_processor`),
            ``outdir suffix ext skip_existing``.
        address: a cluster to join (``"auto"``, ``"ray://host:10001"``); ``None``: a local instance.
        workers: actors (default: one per CPU of the cluster, or one per GPU for CUDA workers).
        batch_size: files per UDF call (and per retry).
        device: ``"auto"`` (CUDA workers when the cluster has GPUs), ``"cpu"`` or ``"cuda"``.
        num_cpus: CPUs of a local instance (default: this machine's).
        quiet: no Ray Data progress on stderr.
        udf: a worker class instead of :class:`DetectWorker`/:class:`ImageWorker` (same arguments).
    """

    def __init__(self, job: str, *, options: dict, address: str | None = None, workers: int | None = None,
                 batch_size: int = 16, device: str = "auto", num_cpus: int | None = None, quiet: bool = False,
                 udf: type | None = None) -> None:
        if job not in JOBS:
            raise ValueError(f"unknown job {job!r} (use {', '.join(JOBS)})")
        if workers is not None and workers < 1:
            raise DeepClarityError(f"--workers must be >= 1, got {workers}")
        if batch_size < 1:
            raise DeepClarityError(f"--batch-size must be >= 1, got {batch_size}")
        self.job, self.options, self.address = job, dict(options), address
        self.workers, self.batch_size, self.device = workers, batch_size, device
        self.num_cpus, self.quiet, self.udf = num_cpus, quiet, udf
        #: Filled by :meth:`records`: ``startup_s`` (Ray start/join), ``seconds`` (the job after it),
        #: ``records``, ``failed``, ``workers``, ``cpus_per_worker``, ``gpus_per_worker``.
        self.stats: dict[str, Any] = {}

    def _plan(self, ray) -> tuple[int, float, int, str]:
        """``(workers, CPUs per actor, GPUs per actor, worker device)`` from the cluster's resources."""
        res = ray.cluster_resources()
        cpus, gpus = float(res.get("CPU", 1)), int(res.get("GPU", 0))
        dev = self.device.lower()
        use_gpu = dev.startswith("cuda") or (dev == "auto" and gpus > 0)
        if use_gpu and gpus == 0:
            raise DeepClarityError(f"--device {self.device}: the Ray cluster has no GPU")
        workers = self.workers or (gpus if use_gpu else max(1, int(cpus)))
        if use_gpu:
            return workers, 1.0, 1, dev if dev.startswith("cuda") else "cuda"
        per = math.floor(cpus / workers) if workers <= cpus else cpus / workers
        return workers, max(per, 0.01), 0, "cpu"

    def _dataset(self, ray, paths: list[str] | None, rels: list[str] | None, input_list: str | None):
        import ray.data

        if input_list is not None:
            src = str(Path(input_list).resolve())
            if not Path(src).exists():
                raise DeepClarityError(f"--input-list {input_list}: no such file")
            # Reading a list of paths is light: its tasks take no CPU, so actors holding every CPU
            # of the cluster never starve the reads that feed them.
            if is_parquet(src):
                ctx = ray.data.DataContext.get_current()
                saved, ctx.use_datasource_v2 = ctx.use_datasource_v2, False  # v2 lists files on a 1-CPU task
                try:
                    return ray.data.read_parquet(src, columns=["path"], num_cpus=0)
                finally:
                    ctx.use_datasource_v2 = saved
            return ray.data.read_text(src, num_cpus=0).rename_columns({"text": "path"})
        items = [{"path": p} for p in paths] if rels is None else [{"path": p, "rel": r} for p, r in zip(paths, rels)]
        blocks = max(1, min(len(items), math.ceil(len(items) / self._batch)))
        return ray.data.from_items(items, override_num_blocks=blocks)

    def records(self, paths: list[str] | None = None, *, rels: list[str] | None = None,
                input_list: str | None = None, parquet: str | os.PathLike | None = None) -> Iterator[dict]:
        """Run the job and yield its records in input order.

        Args:
            paths: input files (listed by the caller), or ``input_list``: a text file of paths (one a
                line) or a Parquet file/dataset with a ``path`` column, read by Ray Data.
            rels: for enhance/restore, each path's place under ``outdir`` (default: its file name).
            parquet: also write the records there as a Parquet dataset (replaced).
        """
        if (paths is None) == (input_list is None):
            raise ValueError("give paths or input_list")
        ray = require_ray()
        t0 = time.perf_counter()
        started = connect(self.address, num_cpus=self.num_cpus)
        try:
            self.stats["startup_s"] = time.perf_counter() - t0
            yield from self._run(ray, paths, rels, input_list, parquet)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray, paths, rels, input_list, parquet) -> Iterator[dict]:
        import ray.data

        t0 = time.perf_counter()
        workers, cpus, gpus, device = self._plan(ray)
        # A list known here is cut so that every worker gets some of it (batches of at most B files).
        self._batch = self.batch_size if paths is None else max(1, min(self.batch_size, math.ceil(len(paths) / workers)))
        self.stats.update(workers=workers, cpus_per_worker=cpus, gpus_per_worker=gpus, device=device)
        base = {"cwd": os.getcwd(), "threads": max(1, int(cpus)), "env": _library_env()}
        if self.job == "detect":
            ctor = {**base, **self.options, "device": device}
            udf = self.udf or DetectWorker
        else:
            opts = {**self.options}
            ctor = {**base, **{k: opts.pop(k) for k in ("outdir", "suffix", "ext", "skip_existing", "inputs",
                                                        "claims") if k in opts},
                    "job": self.job, "options": {**opts.pop("options", {}), "device": device}}
            udf = self.udf or ImageWorker
        ctx = ray.data.DataContext.get_current()
        saved = (ctx.execution_options.preserve_order, ctx.enable_progress_bars)
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = not self.quiet
        if not self.quiet:
            where = self.address or "a local Ray instance"
            print(f"deepclarity: {self.job} on {where}: {workers} workers x {cpus:g} CPU"
                  + (f" + {gpus} GPU" if gpus else "") + f", batches of {self._batch}", file=sys.stderr)
        try:
            ds = self._dataset(ray, paths, rels, input_list).map_batches(
                udf, fn_constructor_kwargs=ctor, batch_size=self._batch, batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=workers), num_cpus=cpus, num_gpus=gpus or None)
            if parquet is not None:
                from ray.data import SaveMode

                ds = ds.materialize()
                ds.write_parquet(str(Path(parquet).resolve()), mode=SaveMode.OVERWRITE)
            n = failed = 0
            for table in ds.iter_batches(batch_format="pyarrow", batch_size=None):
                for record in table.to_pylist():
                    n += 1
                    failed += bool(record.get("error"))
                    yield record
        finally:
            ctx.execution_options.preserve_order, ctx.enable_progress_bars = saved
        self.stats.update(records=n, failed=failed, seconds=time.perf_counter() - t0)
