"""Train the pixelation detector from scratch: method 2 (Canny edges) or method 1 (RGB baseline).

Run from the repository root:

    python -m training.train_detector --method canny --steps 12000 --minutes 60
    python -m training.train_detector --method rgb --steps 12000 --minutes 30

Data: every image under ``<data>/train`` (never ``benchmark/``), split by image into train and
validation (a hash of the file path puts ~10% in validation). Samples are synthesised on the fly at
native resolution (crops of ``deepclarity.detect.CROP_SIZE``; small images are padded, never
upscaled) by :mod:`training.synth`: full-image pixelation or a mosaic as positives; clean photos
and hard negatives (upscaled, blurred, sharpened, JPEG) as negatives; then resizing, JPEG and noise.
``--synthesis v2`` (:mod:`training.synth_v2`) adds screenshots (``train/screens``) and drawn
non-photo carriers, censor mosaics of every shape (block average or nearest, any phase, 2-32 px
blocks), screenshot scaling, HiDPI hard negatives and small snippets; v1 stays the default, so
the shipped weights' card command reproduces them. ``--synthesis mix`` draws half the samples from
v1 (photos) and half from v2, and validates on both sets.

Sample ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so a run is reproducible and a
resumed run continues exactly where it stopped. Checkpoints (model, optimiser, step) go to
``checkpoints/detector-<method>/last.pt`` with a CSV log; rerunning the same command resumes. The
best validation model is written to ``weights/detector-<method>.safetensors`` with its model card.
Without a checkpoint, a run starts from the shipped weights when they exist (``--from-weights``),
so training can span machines through what is committed (see :mod:`training.loop`).

Several processes: ``torchrun --nproc_per_node=N -m training.train_detector --batch 48 ...`` (gloo,
DDP): ``--batch`` is the global batch, rank ``r`` takes samples ``i * N + r`` of the same stream, rank
0 alone writes. MobileNetV3's BatchNorm statistics are computed per process (no SyncBatchNorm on the
CPU), so such a run is close to, not bit-equal with, a one-process run.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from deepclarity.datasets import default_data_dir
from deepclarity.detect import CROP_SIZE
from deepclarity.models import create_model, detector_methods, get_spec
from deepclarity.runtime import configure_threads

from .data import load_images, split_images
from .loop import RankSampler, Schedule, Trainer, command_line, distributed
from .synth import SynthDataset, validation_set
from .synth_v2 import REVISION, V1_SHARE_IN_MIX, SynthDatasetV2, validation_set_mix, validation_set_v2

ROOT = Path(__file__).resolve().parents[1]
#: Card fields that summarise a run in ``earlier_runs``.
RUN_FIELDS = ("command", "steps", "sha256")


@torch.inference_mode()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 128) -> dict:
    """Loss, accuracy, false-positive and false-negative rates of ``model`` on features ``x``
    ``(N,3,S,S)`` with labels ``y`` ``(N,)``; the model is left in training mode."""
    model.eval()
    logits = torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    model.train()
    pred = logits.argmax(1)
    neg, pos = y == 0, y == 1
    return {
        "val_loss": float(F.cross_entropy(logits, y)),
        "val_acc": float((pred == y).float().mean()),
        "val_fpr": float((pred[neg] == 1).float().mean()),
        "val_fnr": float((pred[pos] == 0).float().mean()),
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train_detector", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=sorted(detector_methods()), default="canny")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--steps", type=int, default=12000, help="length of the LR schedule")
    parser.add_argument("--minutes", type=float, default=0, help="stop (resumably) after this long; 0 = no limit")
    parser.add_argument("--batch", type=int, default=48, help="global batch (under torchrun: batch / N each)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--val-per-image", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--out", type=Path, default=None, help="weights file (default: the registry's)")
    parser.add_argument("--from-weights", action=argparse.BooleanOptionalAction, default=True,
                        help="with no checkpoint, start from the shipped weights if present")
    parser.add_argument("--limit-images", type=int, default=0, help="use only N training images (smoke tests)")
    parser.add_argument("--synthesis", choices=["v1", "v2", "mix"], default="v1",
                        help="sample synthesis: v1 photos only (the shipped weights'), v2 adds screenshots, "
                             "drawn carriers and censor mosaics (training.synth_v2), mix draws half of "
                             "the samples from each")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dist = distributed(torch.device("cpu"))  # torchrun: gloo, one rank per process (training.loop)
    local_batch = dist.per_rank(args.batch)  # --batch is the global batch
    threads = configure_threads(args.threads or (None if dist.world == 1
                                                 else max(1, (os.cpu_count() or 1) // dist.local_world)))
    torch.manual_seed(args.seed)
    model_name = detector_methods()[args.method]
    revision = REVISION if args.synthesis != "v1" else 1  # of the samples: a bar only for the same
    out = args.out or get_spec(model_name).weights_path

    train_paths, val_paths = split_images(args.data)
    if args.limit_images:
        train_paths, val_paths = train_paths[: args.limit_images], val_paths[: max(1, args.limit_images // 4)]
    train_images = load_images(train_paths, "train")
    val_images = load_images(val_paths, "validation")
    if args.synthesis in ("v2", "mix"):
        def parts(paths, images):  # screenshots (train/screens) apart from photos
            screens = [im for p, im in zip(paths, images) if p.parent.name == "screens"]
            return [im for p, im in zip(paths, images) if p.parent.name != "screens"], screens

        mix = args.synthesis == "mix"
        val_x, val_y = (validation_set_mix if mix else validation_set_v2)(
            *parts(val_paths, val_images), args.method, args.seed, args.val_per_image)
        dataset = SynthDatasetV2(*parts(train_paths, train_images), args.method, args.seed,
                                 v1_share=V1_SHARE_IN_MIX if mix else 0.0)
    else:
        val_x, val_y = validation_set(val_images, args.method, args.seed, args.val_per_image)
        dataset = SynthDataset(train_images, args.method, args.seed)

    model = create_model(model_name, pretrained=False).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    run = Trainer(model_name, ckpt_dir=args.checkpoints / model_name, weights=out,
                  schedule=Schedule(args.lr, args.steps, args.warmup), batch=args.batch, optimizers=[opt],
                  best_key="val_acc", command=command_line("training.train_detector", argv), args=vars(args),
                  minutes=args.minutes, val_every=args.val_every, dist=dist)
    state = run.resume("cpu", run_fields=RUN_FIELDS)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
    elif args.from_weights and out.is_file():
        from deepclarity.models.weights import read_card

        # Weights made with another synthesis (or revision of it) were validated on other samples:
        # their scores are not a bar for this run, and its schedule starts afresh from their step.
        made = read_card(out) or {}
        same = (made.get("synthesis", "v1"), made.get("synthesis_revision", 1)) == (args.synthesis, revision)
        run.continue_from_weights(model, metrics=("val_acc", "val_fpr", "val_fnr", "val_loss") if same else (),
                                  run_fields=RUN_FIELDS, restart=not same)

    net = dist.wrap(model)  # DistributedDataParallel under torchrun (BatchNorm statistics stay per rank)

    def train_step(batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict:
        x, y = batch
        logits = net(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return {"loss": loss.item(), "train_acc": float((logits.argmax(1) == y).float().mean())}

    def card(metrics: dict) -> dict:
        return {"name": model_name, "task": "detect", "input": args.method, "crop_size": CROP_SIZE,
                "batch": args.batch, "processes": dist.world, "batch_per_process": local_batch, "seed": args.seed,
                "data": f"{len(train_images)} photos from train/ (validation: {len(val_images)} others)",
                "validation": f"{len(val_y)} synthesised crops, {args.val_per_image} per validation photo",
                **({"synthesis": args.synthesis, "synthesis_revision": revision} if args.synthesis != "v1" else {}),
                "threads": threads}

    start = run.progress.samples or run.progress.step * args.batch  # global samples consumed
    loader = DataLoader(dataset, batch_size=local_batch,
                        sampler=RankSampler(start, dist.rank, dist.world), num_workers=args.workers,
                        persistent_workers=args.workers > 0, prefetch_factor=4 if args.workers else None)
    run.fit(loader, train_step, lambda: evaluate(model, val_x, val_y), ship=model, card=card,
            checkpoint=lambda: {"model": model.state_dict(), "opt": opt.state_dict()}, half=True)
    dist.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
