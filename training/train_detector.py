#!/usr/bin/env python
"""Train the pixelation detector from scratch: method 2 (Canny edges) or method 1 (RGB baseline).

    python training/train_detector.py --method canny --steps 12000 --minutes 60
    python training/train_detector.py --method rgb --steps 12000 --minutes 30

Data: every image under ``<data>/train`` (never ``benchmark/``), split by image into train and
validation (a hash of the file name puts ~10% in validation). Samples are synthesised on the fly at
native resolution (crops of ``deepclarity.detect.CROP_SIZE``; small images are padded, never
upscaled):

* positives — full-image pixelation (factor in [1.5, 4], fractional too) or a mosaic over 10-100%
  of the crop with 4-32 px blocks;
* negatives — the clean photo, or a hard negative: bicubic/bilinear upscaling (blurry is not
  pixelated), Gaussian blur, sharpening, low-quality JPEG (its 8x8 grid is not pixelation);
* then, for both, at random: resizing (0.5-1.0, any interpolation; positives never below 1.5 px
  blocks), JPEG quality 40-95, Gaussian noise.

Sample ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so a run is reproducible and a
resumed run continues exactly where it stopped. Checkpoints (model, optimiser, step) go to
``checkpoints/detector-<method>/last.pt``; the best validation model is written to
``weights/detector-<method>.safetensors`` with its model card. Without a checkpoint, a run starts
from the shipped weights when they exist (``--from-weights``), so training can span machines
through what is committed.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from deepclarity.degrade import RESIZE_METHODS, jpeg, mosaic, pixelate, resize
from deepclarity.detect import CROP_SIZE, METHODS, crop_features
from deepclarity.datasets import default_data_dir
from deepclarity.models import create_model, get_spec, load_weights, read_card, save_weights
from deepclarity.runtime import configure_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import FromStep, is_validation, load_images, lr_at, training_images  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------------------------------ data


@dataclass
class Sample:
    crop: np.ndarray  # HxWx3 uint8, at most CROP_SIZE per side
    label: int  # 1 = pixelated
    recipe: str  # what was done, for logs and debugging


def _region(img: np.ndarray, rng: np.random.Generator, side: int) -> np.ndarray:
    """A random ``side x side`` window of ``img`` (the whole image where it is smaller)."""
    h, w = img.shape[:2]
    y = int(rng.integers(0, max(1, h - side + 1)))
    x = int(rng.integers(0, max(1, w - side + 1)))
    return img[y:y + side, x:x + side]


def _center_crop(img: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    return _region(img, rng, size)


def synthesize(img: np.ndarray, rng: np.random.Generator, label: int, size: int = CROP_SIZE) -> Sample:
    """One training (or validation) sample from photo ``img`` with the given label."""
    steps = []
    # Post-resize first decided, so the region is large enough to still fill a crop afterwards.
    factor = 1.0
    if label == 1 and rng.random() < 0.7:
        factor = float(rng.choice([2.0, 3.0, 4.0])) if rng.random() < 0.2 else float(rng.uniform(1.5, 4.0))
    resize_scale = 1.0
    if rng.random() < 0.3:
        low = max(0.5, 1.5 / factor) if factor > 1 else 0.5
        resize_scale = float(rng.uniform(low, 1.0)) if low < 1.0 else 1.0
    side = int(math.ceil(size / resize_scale)) + 8
    region = np.ascontiguousarray(_region(img, rng, side))

    if label == 1:
        if factor > 1:
            region = pixelate(region, factor)
            steps.append(f"pixelate {factor:.2f}")
        else:
            h, w = region.shape[:2]
            area = float(rng.uniform(0.1, 1.0)) * min(h, size / resize_scale) * min(w, size / resize_scale)
            aspect = float(np.exp(rng.uniform(-0.7, 0.7)))
            bh = int(min(h, max(8, round(math.sqrt(area * aspect)))))
            bw = int(min(w, max(8, round(area / max(bh, 1)))))
            y0 = int(rng.integers(0, h - bh + 1))
            x0 = int(rng.integers(0, w - bw + 1))
            block = int(rng.integers(4, 33))
            region = mosaic(region, (x0, y0, x0 + bw, y0 + bh), block)
            steps.append(f"mosaic {bw}x{bh} block {block}")
    else:
        r = rng.random()
        if r < 0.25:
            up = float(rng.uniform(1.5, 4.0))
            small = _region(img, rng, max(8, int(side / up)))
            method = "bicubic" if rng.random() < 0.6 else "bilinear"
            region = resize(small, up, method)
            steps.append(f"{method} x{up:.2f}")
        elif r < 0.40:
            sigma = float(rng.uniform(0.5, 2.0))
            region = cv2.GaussianBlur(region, (0, 0), sigma)
            steps.append(f"blur {sigma:.2f}")
        elif r < 0.55:
            amount = float(rng.uniform(0.5, 2.0))
            blurred = cv2.GaussianBlur(region, (0, 0), float(rng.uniform(0.8, 2.0)))
            region = cv2.addWeighted(region, 1 + amount, blurred, -amount, 0)
            steps.append(f"sharpen {amount:.2f}")
        elif r < 0.70:
            q = int(rng.integers(10, 41))
            region = jpeg(np.ascontiguousarray(region), q)
            steps.append(f"jpeg q{q}")

    if resize_scale < 1.0:
        method = str(rng.choice(sorted(RESIZE_METHODS)))
        region = resize(region, resize_scale, method)
        steps.append(f"resize {resize_scale:.2f} {method}")
    if rng.random() < 0.4:
        q = int(rng.integers(40, 96))
        region = jpeg(np.ascontiguousarray(region), q)
        steps.append(f"jpeg q{q}")
    if rng.random() < 0.15:
        sigma = float(rng.uniform(1.0, 4.0))
        noisy = region.astype(np.float32) + rng.normal(0, sigma, region.shape).astype(np.float32)
        region = np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
        steps.append(f"noise {sigma:.1f}")
    crop = np.ascontiguousarray(_center_crop(region, rng, size))
    return Sample(crop, label, ", ".join(steps) or "clean")


class SynthDataset(Dataset):
    """Sample ``i``: photo and label drawn from ``rng([seed, i])``; labels alternate by parity."""

    def __init__(self, images: list[np.ndarray], kind: str, seed: int) -> None:
        self.images, self.kind, self.seed = images, kind, seed

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, i: int):
        rng = np.random.default_rng([self.seed, i])
        img = self.images[int(rng.integers(len(self.images)))]
        sample = synthesize(img, rng, label=i % 2)
        return torch.from_numpy(crop_features(sample.crop, self.kind)), sample.label


def validation_set(images: list[np.ndarray], kind: str, seed: int, per_image: int) -> tuple[torch.Tensor, torch.Tensor]:
    feats, labels = [], []
    for n, img in enumerate(images):
        for k in range(per_image):
            rng = np.random.default_rng([seed, 1_000_003, n, k])
            s = synthesize(img, rng, label=k % 2)
            feats.append(crop_features(s.crop, kind))
            labels.append(s.label)
    return torch.from_numpy(np.stack(feats)), torch.tensor(labels)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 128) -> dict:
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


# -------------------------------------------------------------------------------------- training


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=sorted(METHODS), default="canny")
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--steps", type=int, default=12000, help="length of the LR schedule")
    parser.add_argument("--minutes", type=float, default=0, help="stop (resumably) after this long; 0 = no limit")
    parser.add_argument("--batch", type=int, default=48)
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
    args = parser.parse_args(argv)

    threads = configure_threads(args.threads)
    torch.manual_seed(args.seed)
    model_name = METHODS[args.method]
    spec = get_spec(model_name)
    out = args.out or spec.weights_path
    ckpt_dir = args.checkpoints / model_name
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = ckpt_dir / "last.pt", ckpt_dir / "log.csv"

    paths = training_images(args.data)
    train_paths = [p for p in paths if not is_validation(p, args.data)]
    val_paths = [p for p in paths if is_validation(p, args.data)]
    if args.limit_images:
        train_paths, val_paths = train_paths[: args.limit_images], val_paths[: max(1, args.limit_images // 4)]
    train_images = load_images(train_paths, "train")
    val_images = load_images(val_paths, "validation")
    val_x, val_y = validation_set(val_images, args.method, args.seed, args.val_per_image)

    model = create_model(model_name, pretrained=False).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step, best = 0, {"val_acc": -1.0}
    # Runs this one continues, oldest first: the card then says how to reproduce the weights.
    earlier_runs: list[dict] = []
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, best = state["step"], state["best"]
        earlier_runs = state.get("earlier_runs", [])
        print(f"resumed from {ckpt_path} at step {step}", file=sys.stderr)
    elif args.from_weights and out.is_file():
        load_weights(model, out)
        card = read_card(out) or {}
        step = int(card.get("steps", 0))
        best = {k: card[k] for k in ("val_acc", "val_fpr", "val_fnr", "val_loss") if k in card} or best
        earlier_runs = card.get("earlier_runs", []) + [
            {k: card[k] for k in ("command", "steps", "sha256") if k in card}]
        print(f"started from {out} (step {step}); optimiser state is new", file=sys.stderr)

    loader = DataLoader(SynthDataset(train_images, args.method, args.seed), batch_size=args.batch,
                        sampler=FromStep(step * args.batch), num_workers=args.workers,
                        persistent_workers=args.workers > 0, prefetch_factor=4 if args.workers else None)
    new_log = not log_path.is_file()
    log_file = open(log_path, "a", newline="")
    log = csv.writer(log_file)
    if new_log:
        log.writerow(["step", "samples", "loss", "train_acc", "lr", "val_loss", "val_acc", "val_fpr",
                      "val_fnr", "samples_per_s", "elapsed_s"])
    command = "python training/train_detector.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    start = time.time()
    t_last, seen_last = start, 0
    losses, accs = [], []
    bar = tqdm(total=args.steps, initial=step, desc=f"train {model_name}", unit="step", dynamic_ncols=True)

    def save_checkpoint() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "best": best,
                    "earlier_runs": earlier_runs, "args": vars(args)}, tmp)
        os.replace(tmp, ckpt_path)

    for x, y in loader:
        if step >= args.steps:
            break
        lr = lr_at(step, args.steps, args.lr, args.warmup)
        for group in opt.param_groups:
            group["lr"] = lr
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        losses.append(loss.item())
        accs.append(float((logits.argmax(1) == y).float().mean()))
        bar.update(1)
        timed_out = args.minutes and (time.time() - start) > args.minutes * 60
        if step % args.val_every == 0 or step == args.steps or timed_out:
            metrics = evaluate(model, val_x, val_y)
            now = time.time()
            rate = (step * args.batch - seen_last) / max(1e-9, now - t_last) if seen_last else 0.0
            t_last, seen_last = now, step * args.batch
            log.writerow([step, step * args.batch, f"{np.mean(losses):.5f}", f"{np.mean(accs):.4f}", f"{lr:.6f}",
                          f"{metrics['val_loss']:.5f}", f"{metrics['val_acc']:.4f}", f"{metrics['val_fpr']:.4f}",
                          f"{metrics['val_fnr']:.4f}", f"{rate:.1f}", f"{now - start:.0f}"])
            log_file.flush()
            bar.set_postfix(loss=f"{np.mean(losses):.4f}", val_acc=f"{metrics['val_acc']:.4f}",
                            fpr=f"{metrics['val_fpr']:.4f}")
            losses, accs = [], []
            if metrics["val_acc"] >= best.get("val_acc", -1.0):
                best = dict(metrics)
                save_weights(model.eval(), out, half=True, card={
                    "name": model_name, "task": "detect", "input": args.method, "crop_size": CROP_SIZE,
                    "steps": step, "samples": step * args.batch, "batch": args.batch, "seed": args.seed,
                    "data": f"{len(train_images)} photos from train/ (validation: {len(val_images)} others)",
                    "validation": f"{len(val_y)} synthesised crops, {args.val_per_image} per validation photo",
                    "command": command, "threads": threads, **metrics,
                    **({"earlier_runs": earlier_runs} if earlier_runs else {}),
                })
                model.train()
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
