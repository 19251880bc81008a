"""The training loop both entry points share: everything around one model-specific training step.

An entry point builds its model, optimisers and data, then::

    run = Trainer(name, ckpt_dir=..., weights=out, schedule=Schedule(lr, steps, warmup), batch=...,
                  optimizers=[opt], best_key="val_psnr", command=command_line("training.train_sr", argv),
                  args=vars(args), minutes=args.minutes, val_every=args.val_every)
    state = run.resume(device)                      # last.pt, if this run was interrupted
    if state: model.load_state_dict(state["model"]); opt.load_state_dict(state["opt"])
    elif args.from_weights and out.is_file(): run.continue_from_weights(model, ...)
    loader = DataLoader(..., sampler=FromStep(run.progress.step * batch))
    run.fit(loader, train_step, validate, ship=model, card=card, checkpoint=lambda: {...})

What it does:

* **schedule** — linear warm-up then cosine decay (:class:`Schedule`), counted from
  ``progress.schedule_start``: a warm restart moves that step, and the warm-up and cosine start again
  there and end at ``--steps``;
* **resume** — ``<ckpt_dir>/last.pt`` holds the entry point's state dicts plus :class:`Progress`
  (``step``, ``samples``, ``best``, ``seconds``, ``started_from``, ``earlier_runs``,
  ``schedule_start``) and ``args``; rerunning the same command continues where it stopped, with the
  same samples (the caller's sampler starts at ``step * batch``);
* **continue from weights** — without a checkpoint, a run can start from a weights file and the
  step in its card (the optimiser state starts afresh) and records the run that made it in
  ``earlier_runs``, so training spans machines through what is committed;
* **checkpoints** are replaced atomically after each validation and at the end;
* **log** — ``<ckpt_dir>/log.csv``, one row per validation (appended to, in the columns of an
  existing log);
* **time budget** — ``minutes``: stop after the step that passes it, validate, checkpoint;
* **weights + card** — on a new best of ``best_key`` (or at every validation with
  ``keep_best=False``) ``ship`` is written to ``weights`` with its model card;
* a **progress bar** over the schedule's steps;
* **distributed** (``torchrun --nproc_per_node=N -m training.train_sr ...``): :func:`distributed` joins
  the process group (gloo on the CPU, NCCL on CUDA); rank ``r`` of ``W`` takes samples ``i * W + r`` of
  the one seeded sample stream (:class:`RankSampler`), so ``--batch`` is the *global* batch (each rank
  runs ``batch / W``) and a one-process run with the same ``--batch`` sees the same samples; gradients
  are averaged by DDP; rank 0 alone validates and writes checkpoints, log, weights and card
  (``Trainer(main=...)``). The checkpoint stores samples consumed, so a run resumes on another
  number of processes.

It is not a framework: the entry point keeps its arguments, models, step and validation.
"""

from __future__ import annotations

import csv
import io
import math
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from deepclarity.files import atomic_write
from deepclarity.models import load_weights, read_card, save_weights

__all__ = ["lr_at", "Schedule", "Progress", "Trainer", "command_line", "Distributed", "distributed", "rank_device",
           "RankSampler"]


def lr_at(step: int, total: int, peak: float, warmup: int, floor: float = 0.0) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to ``floor * peak`` at ``total``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))


@dataclass(frozen=True)
class Schedule:
    """The learning rate of step ``step`` when the schedule starts at step ``start``:
    :func:`lr_at` of ``step - start`` over ``total - start`` steps."""

    peak: float
    total: int
    warmup: int
    floor: float = 0.0

    def __call__(self, step: int, start: int = 0) -> float:
        return lr_at(step - start, self.total - start, self.peak, self.warmup, self.floor)


@dataclass
class Progress:
    """Where a run stands; saved in ``last.pt`` (same keys) and carried into model cards.

    Attributes:
        step: optimiser steps done, over every run this one continues.
        samples: training samples seen, over every run this one continues.
        seconds: training wall time before the current process.
        best: validation metrics of the weights last shipped.
        started_from: what the first of these runs started from.
        earlier_runs: summaries of the runs this one continues from their weights, oldest first.
        schedule_start: the step the learning-rate schedule counts from.
    """

    step: int = 0
    samples: int = 0
    seconds: float = 0.0
    best: dict = field(default_factory=dict)
    started_from: str = "random initialisation"
    earlier_runs: list[dict] = field(default_factory=list)
    schedule_start: int = 0


def command_line(module: str, argv: Sequence[str] | None) -> str:
    """The command as run, for model cards: ``python -m <module> <arguments>``."""
    return f"python -m {module} " + shlex.join(list(argv) if argv is not None else sys.argv[1:])


class Trainer:
    """One run's bookkeeping around a model-specific training step.

    Args:
        name: registry name of the model trained (progress bar, messages).
        ckpt_dir: folder of ``last.pt`` and ``log.csv`` (created).
        weights: the weights file written on a new best (its card beside it).
        schedule: the learning rate of every step.
        batch: samples per step (counts ``samples``).
        optimizers: whose parameter groups get the schedule's rate before each step.
        best_key: the validation metric that decides a new best (higher is better).
        keep_best: ship only on a new best of ``best_key``; ``False``: ship after every validation.
        command: the command line recorded in the card (:func:`command_line`).
        args: the parsed arguments, saved in the checkpoint.
        minutes: time budget of this process (0 = none).
        val_every: validate (log, ship, checkpoint) every this many steps and at the end.
        dist: the process group (:func:`distributed`); only its rank 0 validates and writes
            anything, every rank stops at the same step.
    """

    def __init__(self, name: str, *, ckpt_dir: Path, weights: Path, schedule: Schedule, batch: int,
                 optimizers: Sequence[torch.optim.Optimizer], best_key: str, keep_best: bool = True,
                 command: str, args: dict[str, Any], minutes: float = 0.0, val_every: int = 500,
                 dist: "Distributed | None" = None) -> None:
        self.dist = dist or Distributed()
        self.name, self.weights, self.schedule, self.batch = name, Path(weights), schedule, batch
        self.optimizers = list(optimizers)
        self.best_key, self.keep_best = best_key, keep_best
        self.command, self.args = command, args
        self.minutes, self.val_every = minutes, val_every
        self.ckpt_dir = Path(ckpt_dir)
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        self.ckpt_path, self.log_path = self.ckpt_dir / "last.pt", self.ckpt_dir / "log.csv"
        self.progress = Progress(best={best_key: -1.0})
        self._start_time = time.time()
        self._first_step = 0
        self._samples_before = 0

    # ---------------------------------------------------------------------------- where to start

    def resume(self, map_location: torch.device | str = "cpu", *, run_fields: Iterable[str] = ()) -> dict | None:
        """Load ``last.pt`` if there is one: set :attr:`progress` from it and return the whole
        state (the caller loads its own state dicts from it); ``None`` without a checkpoint.

        When the checkpoint was written by another command (a run resumed with a longer schedule
        or time budget), the card of the weights that command shipped is summarised by
        ``run_fields`` into ``earlier_runs``, as :meth:`continue_from_weights` does, so that the
        card names every command that trained the weights."""
        if not self.ckpt_path.is_file():
            return None
        state = torch.load(self.ckpt_path, map_location=map_location, weights_only=False)
        p = self.progress
        p.step, p.best = state["step"], state["best"]
        p.samples = state.get("samples", p.step * state["args"]["batch"])  # global samples, any world size
        p.seconds = state.get("seconds", 0.0)
        p.started_from = state.get("started_from", p.started_from)
        p.earlier_runs = state.get("earlier_runs", [])
        if run_fields and state.get("command") != self.command:
            card = read_card(self.weights) or {}
            shipped = card.get("command") not in (None, self.command)
            if shipped and all(r.get("sha256") != card.get("sha256") for r in p.earlier_runs):
                p.earlier_runs = p.earlier_runs + [{k: card[k] for k in run_fields if k in card}]
        p.schedule_start = state.get("schedule_start", 0)
        if self.dist.main:
            print(f"resumed from {self.ckpt_path} at step {p.step}", file=sys.stderr)
        return state

    def continue_from_weights(self, model: nn.Module, *, metrics: Iterable[str], run_fields: Iterable[str],
                              restart: bool = False) -> dict:
        """Load :attr:`weights` into ``model`` and continue from the step in their card.

        ``metrics``: card fields that become :attr:`Progress.best` (a later run must beat them);
        ``run_fields``: card fields that summarise the run that made the weights, appended to
        ``earlier_runs``; ``restart``: the schedule starts again at this step (else where the card's
        run started it). Returns the card.
        """
        load_weights(model, self.weights)
        card = read_card(self.weights) or {}
        p = self.progress
        p.step, p.seconds = int(card.get("steps", 0)), float(card.get("train_seconds", 0.0))
        p.started_from = card.get("started_from", f"{self.weights.name} at step {p.step}")
        p.samples = int(card.get("samples", 0))
        p.schedule_start = p.step if restart else int(card.get("schedule_start", 0))
        p.best = {k: card[k] for k in metrics if k in card} or p.best
        p.earlier_runs = card.get("earlier_runs", []) + [{k: card[k] for k in run_fields if k in card}]
        print(f"continuing from {self.weights} (step {p.step}); optimiser state is new", file=sys.stderr)
        return card

    # ----------------------------------------------------------------------------- while running

    @property
    def samples(self) -> int:
        """Samples seen over all runs up to the current step."""
        return self._samples_before + (self.progress.step - self._first_step) * self.batch

    @property
    def seconds(self) -> float:
        """Training wall time over all runs, up to now."""
        return self.progress.seconds + time.time() - self._start_time

    def lr(self) -> float:
        """The learning rate of the current step."""
        return self.schedule(self.progress.step, self.progress.schedule_start)

    def save_checkpoint(self, states: dict[str, Any]) -> None:
        """Write ``states`` (the caller's state dicts) with :class:`Progress` and ``args`` to ``last.pt``,
        atomically (rank 0 only)."""
        if not self.dist.main:
            return
        p = self.progress
        state = {**states, "command": self.command, "step": p.step, "samples": self.samples, "best": p.best,
                 "seconds": self.seconds, "started_from": p.started_from, "earlier_runs": p.earlier_runs,
                 "schedule_start": p.schedule_start, "args": self.args}
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write(self.ckpt_path, buf.getvalue())

    def _card(self, card: dict, metrics: dict) -> dict:
        return {**card, "steps": self.progress.step, "samples": self.samples, "command": self.command,
                **({"earlier_runs": self.progress.earlier_runs} if self.progress.earlier_runs else {}),
                **metrics}

    def fit(self, batches: Iterable, train_step: Callable[[Any, int], dict[str, float]],
            validate: Callable[[], dict[str, float]], *, ship: nn.Module,
            card: Callable[[dict], dict], checkpoint: Callable[[], dict[str, Any]], half: bool = False) -> dict:
        """Train until the schedule's last step or the time budget, then return the best metrics.

        Args:
            batches: an endless iterable of batches; the first must be sample ``step * batch``.
            train_step: ``(batch, step) -> {"loss": float, ...}`` does one optimiser step (the rate is
                already set); the values are averaged between validations for the log.
            validate: ``() -> {"val_...": float, ...}``, must contain ``best_key``.
            ship: the module written to :attr:`weights` (e.g. the EMA of the weights).
            card: ``metrics -> dict``, the entry point's card fields; ``steps``, ``samples``,
                ``command``, ``earlier_runs`` and the metrics are added.
            checkpoint: ``() -> {"model": ..., "opt": ...}``, state dicts to save with the progress.
            half: store the weights as float16.
        """
        p = self.progress
        main = self.dist.main
        self._start_time, self._first_step, self._samples_before = time.time(), p.step, p.samples
        t_last, step_last = self._start_time, p.step
        stats: dict[str, list[float]] = {}
        log = _CsvLog(self.log_path) if main else None
        bar = tqdm(total=self.schedule.total, initial=p.step, desc=f"train {self.name}", unit="step",
                   dynamic_ncols=True, disable=not main)
        try:
            for batch in batches:
                if p.step >= self.schedule.total:
                    break
                rate = self.lr()
                for opt in self.optimizers:
                    for group in opt.param_groups:
                        group["lr"] = rate
                for key, value in train_step(batch, p.step).items():
                    stats.setdefault(key, []).append(float(value))
                p.step += 1
                bar.update(1)
                timed_out = bool(self.minutes) and time.time() - self._start_time > self.minutes * 60
                timed_out = self.dist.agree(timed_out) if self.minutes else False  # every rank stops together
                if main and (p.step % self.val_every == 0 or p.step == self.schedule.total or timed_out):
                    metrics = validate()
                    now = time.time()
                    speed = (p.step - step_last) * self.batch / max(1e-9, now - t_last)
                    t_last, step_last = now, p.step
                    means = {k: float(np.mean(v)) for k, v in stats.items()}
                    stats = {}
                    log.write({"step": p.step, "samples": self.samples, **means, "lr": rate, **metrics,
                               "samples_per_s": round(speed, 1), "elapsed_s": round(now - self._start_time)})
                    bar.set_postfix({k: f"{v:.4g}" for k, v in {**means, **metrics}.items()})
                    if not self.keep_best or metrics[self.best_key] >= p.best.get(self.best_key, -1.0):
                        p.best = dict(metrics)
                        save_weights(ship, self.weights, card=self._card(card(metrics), metrics), half=half)
                    self.save_checkpoint(checkpoint())
                if timed_out:
                    if main:
                        print(f"time limit reached at step {p.step}; rerun the same command to resume", file=sys.stderr)
                    break
        finally:
            bar.close()
            if log is not None:
                log.close()
        self.save_checkpoint(checkpoint())
        if main:
            print(f"best validation: {p.best}", file=sys.stderr)
        self.dist.barrier()
        return p.best


class _CsvLog:
    """Rows appended to a CSV file; a new file gets the first row's keys as its header, an existing
    one keeps its header (values it has no column for are left out, missing ones left empty)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.columns: list[str] | None = None
        if path.is_file() and path.stat().st_size:
            with open(path, newline="") as fh:
                self.columns = next(csv.reader(fh), None)
        self.file = open(path, "a", newline="")
        self.writer: csv.DictWriter | None = None

    def write(self, row: dict[str, Any]) -> None:
        if self.writer is None:
            new = self.columns is None
            self.writer = csv.DictWriter(self.file, self.columns or list(row), extrasaction="ignore", restval="")
            if new:
                self.writer.writeheader()
        self.writer.writerow({k: f"{v:.6g}" if isinstance(v, float) else v for k, v in row.items()})
        self.file.flush()

    def close(self) -> None:
        self.file.close()


# ------------------------------------------------------------------------ distributed (torchrun)


@dataclass(frozen=True)
class Distributed:
    """This process's place in a ``torchrun`` job (one process: rank 0 of 1, nothing to join).

    Attributes:
        rank, world: ``RANK`` and ``WORLD_SIZE``; ``local_rank``/``local_world``: on this node.
        backend: ``"gloo"`` (CPU) or ``"nccl"`` (CUDA); ``None`` for one process.
    """

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    backend: str | None = None

    @property
    def main(self) -> bool:
        """Rank 0: the one process that validates and writes."""
        return self.rank == 0

    def per_rank(self, batch: int) -> int:
        """The per-process batch of global ``batch`` (which the world size must divide)."""
        if batch % self.world:
            raise SystemExit(f"--batch {batch} (the global batch) must be a multiple of the {self.world} processes")
        return batch // self.world

    def wrap(self, model: nn.Module) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` (gradients averaged over ranks), or as it is."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        dev = next(model.parameters()).device
        return DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)

    def agree(self, flag: bool) -> bool:
        """``flag`` of rank 0 on every rank (so all stop at the same step)."""
        if self.world == 1:
            return flag
        import torch.distributed as dist

        t = torch.tensor([int(flag)], device=self._comm_device())
        dist.broadcast(t, src=0)
        return bool(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        """Leave the process group (the end of an entry point)."""
        if self.world > 1:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

    def _comm_device(self) -> torch.device:
        return torch.device("cuda", torch.cuda.current_device()) if self.backend == "nccl" else torch.device("cpu")


def distributed(device: torch.device) -> Distributed:
    """Join the ``torchrun`` process group when ``WORLD_SIZE`` > 1: NCCL when ``device`` is CUDA (each
    process on ``cuda:LOCAL_RANK``, see :func:`rank_device`), gloo on the CPU. One process:
    :class:`Distributed` () and nothing joined."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Distributed()
    import torch.distributed as dist

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend)
    return Distributed(rank, world, local_rank, local_world, backend)


def rank_device(device: torch.device, d: Distributed) -> torch.device:
    """This rank's device: ``cuda:LOCAL_RANK`` for a CUDA job, else ``device``."""
    return torch.device("cuda", d.local_rank) if device.type == "cuda" and d.world > 1 else device


class RankSampler(torch.utils.data.Sampler):
    """Indices ``start + r, start + r + W, start + r + 2W, ...`` without end: rank ``r`` of ``W``'s share
    of the one sample stream that starts at global sample ``start`` (the samples consumed so far).
    With ``W = 1`` it is ``start, start + 1, ...`` (:class:`training.data.FromStep`)."""

    def __init__(self, start: int, rank: int = 0, world: int = 1) -> None:
        self.start, self.rank, self.world = start, rank, world

    def __iter__(self):
        i = self.start + self.rank
        while True:
            yield i
            i += self.world
