#!/usr/bin/env python
"""Train the x4 generators from scratch: MobileSR, MiniSRResNet, and MiniSRGAN (fine-tuned).

    python training/train_sr.py --model mobilesr --steps 60000 --minutes 90
    python training/train_sr.py --model minisrresnet --steps 60000 --minutes 90
    python training/train_sr.py --model minisrgan --steps 6000 --minutes 30   # starts from minisrresnet

Data: the photos under ``<data>/train`` (default folders: bsds400, t91, polyu40, realsr16; never
``benchmark/``), split by image with the detector's hash (~10% validation). Each HR photo is cropped
to a multiple of 4 and downscaled once with the MATLAB-compatible bicubic (``degrade.imresize``, the
benchmark protocol); training pairs are aligned random crops (``--patch`` LR pixels) with one of the
8 flips/rotations. Sample ``i`` comes from ``numpy.random.default_rng([seed, i])``, so a run is
reproducible and a resumed run continues with the same samples.

Objectives:

* ``mobilesr`` / ``minisrresnet``: L1 (``--loss l1``) or Charbonnier, Adam, linear warm-up then
  cosine decay, EMA of the weights (the EMA is what gets validated and shipped).
* ``minisrgan``: the MiniSRResNet generator (from ``weights/minisrresnet.safetensors`` or
  ``--init``) against the SRGAN-style discriminator, relativistic-average GAN loss as in ESRGAN.
  No pretrained VGG exists offline, so the perceptual term is *discriminator feature matching*
  (L1 between the discriminator's activations for SR and HR, each layer normalised by its mean
  magnitude): it compares images in a feature space that is learned to tell real from fake, which
  is what a perceptual loss is for. A *frequency* term (L1 between FFT amplitudes) asks for the
  high-frequency energy of the real image, which L1 alone averages away; a small L1 term keeps
  colours and low frequencies in place.

Restoration variants (``--degradation nearest``, for ``mobilesr`` and ``minisrresnet``): the LR
image is one pixel per 4x4 block (``degrade.nearest_downscale``), exactly what ``deepclarity restore``
recovers from a pixelated image; the run starts from ``<model>``'s weights. ``restore`` uses a
variant as soon as it is in ``weights/``, so write it elsewhere and ship it only when
``evaluation/select_restore_variant.py`` finds it better than the plain generator:

    python training/train_sr.py --model mobilesr --degradation nearest --steps 5000 --minutes 45 \
        --lr 1e-3 --warmup 200 --out checkpoints/mobilesr-pixel/mobilesr-pixel.safetensors

Validation: PSNR-Y (4 px shaved, the benchmark protocol) of the EMA generator on centre crops of the
validation photos, and ``val_hf_ratio`` — :func:`deepclarity.metrics.detail_ratio` of the output
against the ground truth (1.0 = as much fine detail as the truth; bicubic and L1 training give < 1). ``mobilesr``/``minisrresnet``
ship the best validation PSNR; ``minisrgan`` ships the latest.

Checkpoints (model, EMA, optimisers, step) go to ``checkpoints/<model>/last.pt`` with a CSV log; the
weights go to ``weights/<model>.safetensors`` with a model card. Without a checkpoint a run starts
from the shipped weights and the step in their card (``--from-weights``), so training can span
machines through what is committed (the optimiser state then starts afresh).
"""

from __future__ import annotations

import argparse
import copy
import csv
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from deepclarity.degrade import imresize, nearest_downscale
from deepclarity.datasets import default_data_dir
from deepclarity.metrics import detail_ratio, psnr_y
from deepclarity.models import create_model, get_spec, load_weights, read_card, save_weights
from deepclarity.runtime import PRECISIONS, autocast, configure_threads, resolve_precision, select_device, tensor_to_image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FromStep, is_validation, load_images, lr_at, training_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SCALE = 4
DEFAULT_SUBSETS = ["bsds400", "t91", "polyu40", "realsr16"]

# Per-model defaults sized for the CPU (a GPU run would pass a larger --patch and --batch).
DEFAULTS = {
    "mobilesr": {"patch": 48, "batch": 16, "lr": 2e-3, "warmup": 500},
    "minisrresnet": {"patch": 32, "batch": 16, "lr": 5e-4, "warmup": 500},
    "minisrgan": {"patch": 32, "batch": 8, "lr": 1e-4, "warmup": 0},
}


# ------------------------------------------------------------------------------------------ data


@dataclass
class Pair:
    """One photo: ``hr`` HxWx3 uint8 (H, W multiples of 4) and ``lr`` its /4 (see :data:`DEGRADATIONS`)."""

    hr: np.ndarray
    lr: np.ndarray


#: How the LR image is made. ``bicubic``: the MATLAB-compatible bicubic (the SR benchmarks'
#: protocol). ``nearest``: one pixel per 4x4 block, exactly what a nearest-neighbour-pixelated
#: image holds (``degrade.nearest_downscale``) — for the restoration variants (``<model>-pixel``)
#: that ``deepclarity restore`` feeds with the grid it recovers.
DEGRADATIONS = {
    "bicubic": lambda hr: imresize(hr, 1.0 / SCALE),
    "nearest": lambda hr: nearest_downscale(hr, SCALE),
}


def make_pairs(images: list[np.ndarray], min_lr: int, degradation: str = "bicubic") -> list[Pair]:
    pairs = []
    for hr in tqdm(images, desc="downscaling", unit="img", leave=False):
        h, w = hr.shape[:2]
        hr = np.ascontiguousarray(hr[: h - h % SCALE, : w - w % SCALE])
        if min(hr.shape[:2]) // SCALE >= min_lr:
            pairs.append(Pair(hr, DEGRADATIONS[degradation](hr)))
    return pairs


def dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations of an HxWxC array (``k`` in 0..7)."""
    if k & 4:
        x = x[:, ::-1]
    return np.rot90(x, k & 3)


def to_tensor(x: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))).float().div_(255.0)


class PatchDataset(Dataset):
    """Sample ``i``: photo, position and flip drawn from ``rng([seed, i])``; (LR, HR) float [0, 1]."""

    def __init__(self, pairs: list[Pair], patch: int, seed: int) -> None:
        self.pairs, self.patch, self.seed = pairs, patch, seed

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        rng = np.random.default_rng([self.seed, i])
        pair = self.pairs[int(rng.integers(len(self.pairs)))]
        p = self.patch
        y = int(rng.integers(0, pair.lr.shape[0] - p + 1))
        x = int(rng.integers(0, pair.lr.shape[1] - p + 1))
        k = int(rng.integers(8))
        lr = dihedral(pair.lr[y:y + p, x:x + p], k)
        hr = dihedral(pair.hr[SCALE * y:SCALE * (y + p), SCALE * x:SCALE * (x + p)], k)
        return to_tensor(lr), to_tensor(hr)


def validation_pairs(images: list[np.ndarray], crop: int, degradation: str = "bicubic") -> list[Pair]:
    """Centre crops (at most ``crop`` HR pixels a side) of the validation photos."""
    out = []
    for img in images:
        h, w = img.shape[:2]
        ch, cw = min(h, crop) // SCALE * SCALE, min(w, crop) // SCALE * SCALE
        y, x = (h - ch) // 2, (w - cw) // 2
        hr = np.ascontiguousarray(img[y:y + ch, x:x + cw])
        out.append(Pair(hr, DEGRADATIONS[degradation](hr)))
    return out


@torch.inference_mode()
def validate(model: nn.Module, pairs: list[Pair], device: torch.device) -> dict:
    """Protocol PSNR-Y and the high-frequency ratio of ``model`` over ``pairs``."""
    model.eval()
    psnrs, ratios = [], []
    for pair in pairs:
        sr = tensor_to_image(model(to_tensor(pair.lr)[None].to(device)).float().cpu())
        psnrs.append(psnr_y(sr, pair.hr, SCALE))
        ratios.append(detail_ratio(sr, pair.hr, SCALE))
    return {"val_psnr": float(np.mean(psnrs)), "val_hf_ratio": float(np.mean(ratios))}


# ---------------------------------------------------------------------------------------- losses


def pixel_loss(sr: Tensor, hr: Tensor, kind: str) -> Tensor:
    if kind == "charbonnier":
        return torch.sqrt((sr - hr) ** 2 + 1e-6).mean()
    return F.l1_loss(sr, hr)


def frequency_loss(sr: Tensor, hr: Tensor) -> Tensor:
    """L1 between FFT amplitudes: asks for the truth's high-frequency energy, not its exact phase."""
    return F.l1_loss(torch.fft.rfft2(sr, norm="ortho").abs(), torch.fft.rfft2(hr, norm="ortho").abs())


def feature_matching(fake: list[Tensor], real: list[Tensor]) -> Tensor:
    """Sum over discriminator stages of L1(fake, real) / mean |real| (each stage weighs the same)."""
    return sum(F.l1_loss(f, r.detach()) / (r.detach().abs().mean() + 1e-6) for f, r in zip(fake, real)) / len(real)


def relativistic_loss(pos: Tensor, neg: Tensor) -> Tensor:
    """ESRGAN's relativistic-average loss that pushes ``pos`` above ``neg`` on average."""
    ones, zeros = torch.ones_like(pos), torch.zeros_like(neg)
    return (F.binary_cross_entropy_with_logits(pos - neg.mean(), ones)
            + F.binary_cross_entropy_with_logits(neg - pos.mean(), zeros)) / 2


class EMA:
    """Exponential moving average of a model's weights (decay warmed up over the first steps)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for e, p in zip(self.model.state_dict().values(), model.state_dict().values()):
            if e.is_floating_point():
                e.lerp_(p, 1 - d)
            else:
                e.copy_(p)


# -------------------------------------------------------------------------------------- training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", choices=sorted(DEFAULTS), default="mobilesr")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--subsets", nargs="+", default=DEFAULT_SUBSETS, help="folders of <data>/train to use")
    parser.add_argument("--steps", type=int, default=60000, help="length of the LR schedule")
    parser.add_argument("--minutes", type=float, default=0, help="stop (resumably) after this long; 0 = no limit")
    parser.add_argument("--patch", type=int, default=None, help="LR patch side (HR is 4x)")
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None, help="peak learning rate")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--restart", action="store_true",
                        help="warm restart: continuing from weights, the warm-up and cosine schedule start again at "
                             "the current step and end at --steps")
    parser.add_argument("--degradation", choices=sorted(DEGRADATIONS), default="bicubic",
                        help="LR images: bicubic (benchmark protocol) or nearest (pixelation; trains <model>-pixel, "
                             "starting from <model>'s weights)")
    parser.add_argument("--loss", choices=["l1", "charbonnier"], default="l1")
    parser.add_argument("--ema", type=float, default=0.999, help="EMA decay of the weights")
    parser.add_argument("--init", type=Path, default=None,
                        help="minisrgan: generator to start from (default: the shipped minisrresnet)")
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
    for key, value in DEFAULTS[args.model].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    gan = args.model == "minisrgan"

    threads = configure_threads(args.threads)
    device = select_device(args.device)
    precision = resolve_precision(device, args.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    torch.manual_seed(args.seed)
    restoration = args.degradation == "nearest"
    name = f"{args.model}-pixel" if restoration else args.model
    spec = get_spec(name)
    out = args.out or spec.weights_path
    ckpt_dir = args.checkpoints / name
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = ckpt_dir / "last.pt", ckpt_dir / "log.csv"

    paths = training_images(args.data, args.subsets)
    train_paths = [p for p in paths if not is_validation(p, args.data)]
    val_paths = [p for p in paths if is_validation(p, args.data)]
    if args.val_images:
        val_paths = val_paths[:: max(1, len(val_paths) // args.val_images)][: args.val_images]
    if args.limit_images:
        train_paths, val_paths = train_paths[: args.limit_images], val_paths[: max(1, args.limit_images // 4)]
    if not val_paths:
        raise SystemExit("no validation photos: the split puts ~10% of train/ aside; add more images")
    pairs = make_pairs(load_images(train_paths, "train"), args.patch, args.degradation)
    if not pairs:
        raise SystemExit(f"no training photo is at least {args.patch * SCALE} px a side")
    val_pairs = validation_pairs(load_images(val_paths, "validation"), args.val_crop, args.degradation)
    bicubic_psnr = float(np.mean([psnr_y(imresize(p.lr, SCALE), p.hr, SCALE) for p in val_pairs]))
    print(f"{len(pairs)} training photos; validation: {len(val_pairs)} crops, bicubic {bicubic_psnr:.3f} dB",
          file=sys.stderr)

    model = create_model(args.model, pretrained=False).to(device).train()
    disc = create_model("discriminator", pretrained=False).to(device).train() if gan else None
    step, best, seconds_before = 0, {"val_psnr": -1.0}, 0.0
    started_from = "random initialisation"
    # Runs this one continues, oldest first: the card then says how the weights were reached.
    earlier_runs: list[dict] = []
    samples_before = 0
    schedule_start = 0  # the step the LR schedule counts from (a warm restart moves it)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(disc.parameters(), lr=args.lr, betas=(0.9, 0.99)) if gan else None
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        if gan:
            disc.load_state_dict(state["disc"])
            opt_d.load_state_dict(state["opt_d"])
        step, best, seconds_before = state["step"], state["best"], state.get("seconds", 0.0)
        started_from = state.get("started_from", started_from)
        earlier_runs = state.get("earlier_runs", [])
        samples_before = state.get("samples", step * state["args"]["batch"])
        schedule_start = state.get("schedule_start", 0)
        print(f"resumed from {ckpt_path} at step {step}", file=sys.stderr)
    elif args.from_weights and out.is_file():
        load_weights(model, out)
        card = read_card(out) or {}
        step, seconds_before = int(card.get("steps", 0)), float(card.get("train_seconds", 0.0))
        started_from = card.get("started_from", f"{out.name} at step {step}")
        samples_before = int(card.get("samples", 0))
        schedule_start = step if args.restart else int(card.get("schedule_start", 0))
        best = {k: card[k] for k in ("val_psnr", "val_hf_ratio") if k in card} or best
        earlier_runs = card.get("earlier_runs", []) + [{k: card[k] for k in (
            "command", "steps", "samples", "batch", "patch_lr", "hardware", "precision", "train_seconds", "val_psnr",
            "sha256") if k in card}]
        print(f"continuing from {out} (step {step}); optimiser state is new", file=sys.stderr)
    elif gan or restoration:
        init = args.init or get_spec("minisrresnet" if gan else args.model).weights_path
        if not init.is_file():
            raise SystemExit(f"{name} starts from trained weights: {init} not found (train them first, or give --init)")
        load_weights(model, init)
        card = read_card(init) or {}
        started_from = f"{init.name} (sha256 {card.get('sha256', '?')[:12]}, {card.get('steps', '?')} steps)"
        print(f"generator initialised from {init}", file=sys.stderr)
    ema = EMA(model, args.ema)
    if ckpt_path.is_file():
        ema.model.load_state_dict(state["ema"])

    loader = DataLoader(PatchDataset(pairs, args.patch, args.seed), batch_size=args.batch,
                        sampler=FromStep(step * args.batch), num_workers=0)
    new_log = not log_path.is_file()
    log_file = open(log_path, "a", newline="")
    log = csv.writer(log_file)
    if new_log:
        log.writerow(["step", "loss", "lr", "val_psnr", "val_hf_ratio", "samples_per_s", "elapsed_s"])
    command = "python training/train_sr.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    hardware = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {threads} threads"
    print(f"{hardware}, precision {precision}", file=sys.stderr)
    start = time.time()
    t_last, step_last = start, step
    first_step = step
    losses: list[float] = []
    bar = tqdm(total=args.steps, initial=step, desc=f"train {args.model}", unit="step", dynamic_ncols=True)

    def save_checkpoint() -> None:
        state = {"model": model.state_dict(), "ema": ema.model.state_dict(), "opt": opt.state_dict(),
                 "step": step, "samples": samples_before + (step - first_step) * args.batch, "best": best, "seconds": seconds_before + time.time() - start,
                 "started_from": started_from, "earlier_runs": earlier_runs, "schedule_start": schedule_start,
                 "args": vars(args)}
        if gan:
            state.update(disc=disc.state_dict(), opt_d=opt_d.state_dict())
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, ckpt_path)

    for lr_img, hr_img in loader:
        if step >= args.steps:
            break
        lr_img, hr_img = lr_img.to(device, non_blocking=True), hr_img.to(device, non_blocking=True)
        rate = lr_at(step - schedule_start, args.steps - schedule_start, args.lr, args.warmup, floor=0.01)
        for group in opt.param_groups + (opt_d.param_groups if gan else []):
            group["lr"] = rate
        with autocast(device, precision):
            sr = model(lr_img)
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
        step += 1
        losses.append(loss.item())
        bar.update(1)
        timed_out = args.minutes and (time.time() - start) > args.minutes * 60
        if step % args.val_every == 0 or step == args.steps or timed_out:
            metrics = validate(ema.model, val_pairs, device)
            now = time.time()
            speed = (step - step_last) * args.batch / max(1e-9, now - t_last)
            t_last, step_last = now, step
            log.writerow([step, f"{np.mean(losses):.5f}", f"{rate:.3g}", f"{metrics['val_psnr']:.3f}",
                          f"{metrics['val_hf_ratio']:.3f}", f"{speed:.1f}", f"{now - start:.0f}"])
            log_file.flush()
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", val_psnr=f"{metrics['val_psnr']:.2f}",
                            hf=f"{metrics['val_hf_ratio']:.2f}")
            losses = []
            if gan or metrics["val_psnr"] >= best.get("val_psnr", -1.0):
                best = dict(metrics)
                objective = (f"relativistic GAN {args.w_adv} + D feature matching {args.w_fm} + FFT amplitude "
                             f"L1 {args.w_freq} + L1 {args.w_pixel}" if gan else args.loss)
                save_weights(ema.model, out, card={
                    "name": name, "task": "sr", "degradation": args.degradation, "scale": SCALE, "steps": step,
                    "samples": samples_before + (step - first_step) * args.batch, "batch": args.batch, "patch_lr": args.patch, "seed": args.seed,
                    "objective": objective, "ema": args.ema, "peak_lr": args.lr, "schedule_steps": args.steps,
                    "schedule_start": schedule_start, "precision": precision,
                    "started_from": started_from, **({"earlier_runs": earlier_runs} if earlier_runs else {}),
                    "data": f"{len(pairs)} photos from train/{{{','.join(args.subsets)}}}, "
                            + ("MATLAB bicubic /4" if args.degradation == "bicubic" else "one pixel per 4x4 block"),
                    "validation": f"{len(val_pairs)} other photos from train/, centre crops <= {args.val_crop} px, "
                                  "PSNR-Y 4 px shaved",
                    "hardware": hardware, "train_seconds": round(seconds_before + now - start),
                    "command": command, **metrics, "val_psnr_bicubic": bicubic_psnr,
                })
            save_checkpoint()
        if timed_out:
            print(f"time limit reached at step {step}; rerun the same command to resume", file=sys.stderr)
            break
    bar.close()
    log_file.close()
    save_checkpoint()
    print(f"best validation: {best}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
