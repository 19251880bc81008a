"""Train the x4 generators from scratch: MobileSR, MobileSR-Rep, MiniSRResNet, and MiniSRGAN (fine-tuned).

Run from the repository root:

    python -m training.train_sr --model mobilesr --steps 60000 --minutes 90
    python -m training.train_sr --model mobilesr-rep --steps 8000 --minutes 55
    python -m training.train_sr --model minisrresnet --steps 60000 --minutes 90
    python -m training.train_sr --model minisrgan --steps 6000 --minutes 30   # starts from minisrresnet

Data: the photos under ``<data>/train`` (default folders: bsds400, t91, polyu40, realsr16; never
``benchmark/``), split by image with the detector's hash (~10% validation). Each HR photo is cropped
to a multiple of 4 and downscaled once with the MATLAB-compatible bicubic (``degrade.imresize``, the
benchmark protocol); training pairs are aligned random crops (``--patch`` LR pixels) with one of the
8 flips/rotations. Sample ``i`` comes from ``numpy.random.default_rng([seed, i])``, so a run is
reproducible and a resumed run continues with the same samples.

Objectives:

* ``mobilesr`` / ``mobilesr-rep`` / ``minisrresnet``: L1 (``--loss l1``) or Charbonnier, Adam, linear warm-up then
  cosine decay, EMA of the weights (the EMA is what gets validated and shipped).
* ``minisrgan``: the MiniSRResNet generator (from ``weights/minisrresnet.safetensors`` or
  ``--init``) against the SRGAN-style discriminator, relativistic-average GAN loss as in ESRGAN.
  No pretrained VGG exists offline, so the perceptual term is *discriminator feature matching*
  (L1 between the discriminator's activations for SR and HR, each layer normalised by its mean
  magnitude): it compares images in a feature space that is learned to tell real from fake, which
  is what a perceptual loss is for. A *frequency* term (L1 between FFT amplitudes) asks for the
  high-frequency energy of the real image, which L1 alone averages away; a small L1 term keeps
  colours and low frequencies in place.

Restoration variants (``--degradation nearest``, for a generator that has a ``<model>-pixel`` entry
in the registry): the LR image is one pixel per 4x4 block (``degrade.nearest_downscale``), exactly
what ``deepclarity restore`` recovers from a pixelated image; the run starts from ``<model>``'s
weights. ``restore`` uses a variant as soon as it is in ``weights/``, so write it elsewhere and ship
it only when ``evaluation/select_restore_variant.py`` finds it better than the plain generator:

    python -m training.train_sr --model mobilesr --degradation nearest --steps 5000 --minutes 45 \\
        --lr 1e-3 --warmup 200 --out checkpoints/mobilesr-pixel/mobilesr-pixel.safetensors

Validation: PSNR-Y (4 px shaved, the benchmark protocol) of the EMA generator on centre crops of the
validation photos, upscaled by the library's own path (``Upscaler.from_module``), and
``val_hf_ratio`` — :func:`deepclarity.metrics.detail_ratio` of the output against the ground truth
(1.0 = as much fine detail as the truth; bicubic and L1 training give < 1). ``mobilesr``,
``mobilesr-rep`` and ``minisrresnet`` ship the best validation PSNR; ``minisrgan`` ships the latest.

Checkpoints (model, EMA, optimisers, step) go to ``checkpoints/<model>/last.pt`` with a CSV log;
rerunning the same command resumes. The weights go to ``weights/<model>.safetensors`` with a model
card. Without a checkpoint a run starts from the shipped weights and the step in their card
(``--from-weights``), so training can span machines through what is committed (the optimiser state
then starts afresh); ``--restart`` then starts the warm-up and cosine again (see
:mod:`training.loop`).

Several processes (DDP; gloo on the CPU, NCCL on CUDA), one node or several::

    torchrun --nproc_per_node=2 -m training.train_sr --model mobilesr --batch 32 --steps 60000

``--batch`` stays the global batch (each rank runs ``batch / W``) and rank ``r`` takes samples
``i * W + r`` of the same seeded stream, so the run sees the samples a one-process run with that batch
sees; rank 0 alone validates and writes checkpoints, log, weights and card (which states the global
batch and the process count). A checkpoint resumes on any number of processes. ``minisrgan`` runs in
one process.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from deepclarity.datasets import default_data_dir
from deepclarity.degrade import imresize
from deepclarity.enhance import Upscaler
from deepclarity.metrics import detail_ratio, psnr_y
from deepclarity.models import create_model, get_spec, list_models, load_weights, read_card
from deepclarity.runtime import PRECISIONS, autocast, configure_threads, resolve_precision, select_device

from .data import (DEGRADATIONS, SCALE, Pair, PatchDataset, load_images, make_pairs, split_images,
                   validation_pairs)
from .loop import RankSampler, Schedule, Trainer, command_line, distributed, rank_device
from .losses import EMA, PIXEL_LOSSES, feature_matching, frequency_loss, pixel_loss, relativistic_loss

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SUBSETS = ["bsds400", "t91", "polyu40", "realsr16"]

# Per-model defaults (registry names) sized for the CPU (a GPU run would pass a larger --patch and --batch).
DEFAULTS = {
    "mobilesr": {"patch": 48, "batch": 16, "lr": 2e-3, "warmup": 500},
    "mobilesr-rep": {"patch": 48, "batch": 16, "lr": 1e-3, "warmup": 500},
    "minisrresnet": {"patch": 32, "batch": 16, "lr": 5e-4, "warmup": 500},
    "minisrgan": {"patch": 32, "batch": 8, "lr": 1e-4, "warmup": 0},
}
#: For a registered generator not listed in :data:`DEFAULTS`.
GENERIC_DEFAULTS = {"patch": 48, "batch": 16, "lr": 5e-4, "warmup": 500}
#: Generators fine-tuned against the discriminator, starting from the weights they derive from.
ADVERSARIAL = ("minisrgan",)
#: Card fields that summarise a run in ``earlier_runs``.
RUN_FIELDS = ("command", "steps", "samples", "batch", "patch_lr", "hardware", "precision", "train_seconds",
              "val_psnr", "sha256")


def trainable_models() -> list[str]:
    """The registry's x4 networks trained on the SR protocol (``--model``): the shipped generators and
    the architectures without a weight file yet (those need ``--out``)."""
    return [s.name for s in list_models("sr") if s.is_network and s.scale == SCALE and s.degradation == "bicubic"]


def restoration_variant(model: str) -> str:
    """The registry name of ``model``'s restoration variant (trained on one pixel per block)."""
    names = [s.name for s in list_models("sr") if s.derived_from == model and s.degradation == "nearest"]
    if not names:
        raise SystemExit(f"{model} has no restoration variant in the registry")
    return names[0]


@torch.inference_mode()
def validate(upscaler: Upscaler, pairs: list[Pair]) -> dict:
    """Protocol PSNR-Y and the high-frequency ratio of ``upscaler``'s output over ``pairs``."""
    psnrs, ratios = [], []
    for pair in pairs:
        sr = upscaler.upscale_array(pair.lr)
        psnrs.append(psnr_y(sr, pair.hr, SCALE))
        ratios.append(detail_ratio(sr, pair.hr, SCALE))
    return {"val_psnr": float(np.mean(psnrs)), "val_hf_ratio": float(np.mean(ratios))}


def validation_subset(paths: list[Path], count: int) -> list[Path]:
    """``count`` of the validation photos spread evenly over ``paths`` (all of them when 0)."""
    return paths[:: max(1, len(paths) // count)][:count] if count else paths


def bicubic_psnr(pairs: list[Pair]) -> float:
    """Mean protocol PSNR-Y of bicubic upscaling over ``pairs``: the bar a generator must clear."""
    return float(np.mean([psnr_y(imresize(p.lr, SCALE), p.hr, SCALE) for p in pairs]))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train_sr", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=trainable_models(), default="mobilesr")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--subsets", nargs="+", default=DEFAULT_SUBSETS, help="folders of <data>/train to use")
    parser.add_argument("--steps", type=int, default=60000, help="length of the LR schedule")
    parser.add_argument("--minutes", type=float, default=0, help="stop (resumably) after this long; 0 = no limit")
    parser.add_argument("--patch", type=int, default=None, help="LR patch side (HR is 4x)")
    parser.add_argument("--batch", type=int, default=None,
                        help="global batch: under torchrun each of the W processes runs batch / W")
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--restart", action="store_true",
                        help="warm restart: continuing from weights, the warm-up and cosine schedule start again at "
                             "the current step and end at --steps")
    parser.add_argument("--degradation", choices=sorted(DEGRADATIONS), default="bicubic",
                        help="LR images: bicubic (benchmark protocol) or nearest (pixelation; trains <model>-pixel, "
                             "starting from <model>'s weights)")
    parser.add_argument("--loss", choices=PIXEL_LOSSES, default="l1")
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights")
    parser.add_argument("--init", type=Path, default=None,
                        help="minisrgan / restoration variants: generator to start from (default: the shipped one "
                             "it derives from)")
    parser.add_argument("--w-pixel", type=float, default=0.1, help="minisrgan: weight of L1")
    parser.add_argument("--w-fm", type=float, default=1.0, help="minisrgan: weight of feature matching")
    parser.add_argument("--w-freq", type=float, default=1.0, help="minisrgan: weight of the FFT-amplitude L1")
    parser.add_argument("--w-adv", type=float, default=5e-3, help="minisrgan: weight of the adversarial loss")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--val-every", type=int, default=500)
    parser.add_argument("--val-images", type=int, default=30, help="validation photos used (0 = all)")
    parser.add_argument("--val-crop", type=int, default=256, help="HR side of the validation centre crops")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: all cores)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="autocast for forward/backward, fp32 master weights (auto: bf16 on CPUs with native "
                             "bf16, bf16/fp16 on CUDA, else fp32)")
    parser.add_argument("--checkpoints", type=Path, default=ROOT / "checkpoints")
    parser.add_argument("--out", type=Path, default=None, help="weights file (default: the registry's)")
    parser.add_argument("--from-weights", action=argparse.BooleanOptionalAction, default=True,
                        help="with no checkpoint, continue from the shipped weights if present")
    parser.add_argument("--limit-images", type=int, default=0, help="use only N training images (smoke tests)")
    args = parser.parse_args(argv)
    for key, value in DEFAULTS.get(args.model, GENERIC_DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    gan = args.model in ADVERSARIAL
    device = select_device(args.device)
    dist = distributed(device)  # torchrun: this process's rank (training.loop); one process: rank 0 of 1
    device = rank_device(device, dist)
    if gan and dist.world > 1:
        raise SystemExit(f"{args.model}: the GAN step runs in one process only (no torchrun)")
    local_batch = dist.per_rank(args.batch)  # --batch is the global batch
    threads = configure_threads(args.threads or (None if dist.world == 1
                                                 else max(1, (os.cpu_count() or 1) // dist.local_world)))
    precision = resolve_precision(device, args.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    torch.manual_seed(args.seed)
    restoration = args.degradation == "nearest"
    name = restoration_variant(args.model) if restoration else args.model
    out = args.out or get_spec(name).weights_path
    if out is None:
        raise SystemExit(f"{name} has no weight file in the registry yet; give --out FILE")

    train_paths, val_paths = split_images(args.data, args.subsets)
    val_paths = validation_subset(val_paths, args.val_images)
    if args.limit_images:
        train_paths, val_paths = train_paths[: args.limit_images], val_paths[: max(1, args.limit_images // 4)]
    if not val_paths:
        raise SystemExit("no validation photos: the split puts ~10% of train/ aside; add more images")
    pairs = make_pairs(load_images(train_paths, "train"), args.patch, args.degradation)
    if not pairs:
        raise SystemExit(f"no training photo is at least {args.patch * SCALE} px a side")
    val_pairs = validation_pairs(load_images(val_paths, "validation"), args.val_crop, args.degradation)
    bicubic = bicubic_psnr(val_pairs)
    print(f"{len(pairs)} training photos; validation: {len(val_pairs)} crops, bicubic {bicubic:.3f} dB",
          file=sys.stderr)

    model = create_model(args.model, pretrained=False).to(device).train()
    disc = create_model("discriminator", pretrained=False).to(device).train() if gan else None
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.9, 0.99)) if gan else None
    run = Trainer(name, ckpt_dir=args.checkpoints / name, weights=out,
                  schedule=Schedule(args.lr, args.steps, args.warmup, floor=0.01), batch=args.batch,
                  optimizers=[opt, opt_d] if gan else [opt], best_key="val_psnr", keep_best=not gan,
                  command=command_line("training.train_sr", argv), args=vars(args), minutes=args.minutes,
                  val_every=args.val_every, dist=dist)
    state = run.resume(device, run_fields=RUN_FIELDS)
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if gan:
            disc.load_state_dict(state["disc"])
            opt_d.load_state_dict(state["opt_d"])
    elif args.from_weights and out.is_file():
        run.continue_from_weights(model, metrics=("val_psnr", "val_hf_ratio"), run_fields=RUN_FIELDS,
                                  restart=args.restart)
    elif gan or restoration:
        init = args.init or get_spec(get_spec(name).derived_from).weights_path
        if not init.is_file():
            raise SystemExit(f"{name} starts from trained weights: {init} not found (train them first, or give --init)")
        load_weights(model, init)
        card = read_card(init) or {}
        run.progress.started_from = f"{init.name} (sha256 {card.get('sha256', '?')[:12]}, {card.get('steps', '?')} steps)"
        print(f"generator initialised from {init}", file=sys.stderr)
    ema = EMA(model, args.ema)
    if state is not None:
        ema.model.load_state_dict(state["ema"])
    upscaler = Upscaler.from_module(ema.model, name=name, device=device, degradation=args.degradation)
    net = dist.wrap(model)  # DistributedDataParallel under torchrun: gradients averaged over the ranks

    def train_step(batch: tuple[torch.Tensor, torch.Tensor], step: int) -> dict:
        lr_img, hr_img = (t.to(device, non_blocking=True) for t in batch)
        with autocast(device, precision):
            sr = net(lr_img)
            if gan:
                fake_logits, fake_feats = disc(sr, features=True)
                with torch.no_grad():
                    real_logits, real_feats = disc(hr_img, features=True)
        sr = sr.float()
        if gan:  # losses in fp32 (the FFT and the BCE want it)
            loss = (args.w_pixel * F.l1_loss(sr, hr_img)
                    + args.w_fm * feature_matching([f.float() for f in fake_feats], [r.float() for r in real_feats])
                    + args.w_freq * frequency_loss(sr, hr_img)
                    + args.w_adv * relativistic_loss(fake_logits.float(), real_logits.float()))
        else:
            loss = pixel_loss(sr, hr_img, args.loss)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        if gan:  # discriminator step on the same batch
            with autocast(device, precision):
                real_d, fake_d = disc(hr_img), disc(sr.detach())
            d_loss = relativistic_loss(real_d.float(), fake_d.float())
            opt_d.zero_grad(set_to_none=True)
            scaler.scale(d_loss).backward()
            scaler.step(opt_d)
        scaler.update()
        ema.update(model, step)
        return {"loss": loss.item()}

    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"
    if dist.world > 1:
        hardware = f"{dist.world} processes ({dist.backend}) x {hardware}"
    print(f"{hardware}, precision {precision}", file=sys.stderr)
    objective = (f"relativistic GAN {args.w_adv} + D feature matching {args.w_fm} + FFT amplitude "
                 f"L1 {args.w_freq} + L1 {args.w_pixel}" if gan else args.loss)

    def card(metrics: dict) -> dict:
        return {
            "name": name, "task": "sr", "degradation": args.degradation, "scale": SCALE, "batch": args.batch,
            "processes": dist.world, "batch_per_process": local_batch,
            "patch_lr": args.patch, "seed": args.seed, "objective": objective, "ema": args.ema,
            "peak_lr": args.lr, "schedule_steps": args.steps, "schedule_start": run.progress.schedule_start,
            "precision": precision, "started_from": run.progress.started_from,
            "data": f"{len(pairs)} photos from train/{{{','.join(args.subsets)}}}, "
                    + ("MATLAB bicubic /4" if args.degradation == "bicubic" else "one pixel per 4x4 block"),
            "validation": f"{len(val_pairs)} other photos from train/, centre crops <= {args.val_crop} px, "
                          "PSNR-Y 4 px shaved",
            "hardware": hardware, "train_seconds": round(run.seconds), "val_psnr_bicubic": bicubic,
        }

    def checkpoint() -> dict:
        states = {"model": model.state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict()}
        if gan:
            states.update(disc=disc.state_dict(), opt_d=opt_d.state_dict())
        return states

    # Rank r takes samples start + r, start + r + W, ... of the one seeded stream (start: the global
    # samples consumed), so the global batch holds the samples a one-process run's batch holds.
    start = run.progress.samples or run.progress.step * args.batch
    loader = torch.utils.data.DataLoader(PatchDataset(pairs, args.patch, args.seed), batch_size=local_batch,
                                         sampler=RankSampler(start, dist.rank, dist.world), num_workers=0)
    run.fit(loader, train_step, lambda: validate(upscaler, val_pairs), ship=ema.model, card=card,
            checkpoint=checkpoint)
    dist.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
