"""Restoration evaluation: the slices and the prototype's correction (:mod:`deepclarity.eval.restore`),
and ``python -m evaluation.eval_restore`` / ``evaluation.select_restore_variant`` end to end on tiny
generated data (scikit-image photos; ../shared/datasets is never needed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_module, write_random_weights
from skimage import data as skdata

import deepclarity.eval.restore as er
from deepclarity.datasets import is_validation
from deepclarity.degrade import mosaic, pixelate
from deepclarity.enhance import Upscaler
from deepclarity.io import write_image


def test_slices_degrade_as_named():
    img = np.ascontiguousarray(skdata.astronaut()[:160, :200])
    rng = np.random.default_rng(0)
    bad, block = er.degrade(img, "x2.5", rng)
    assert block == 2.5 and np.array_equal(bad, pixelate(img, 2.5))
    bad, block = er.degrade(img, "x3+jpeg75", rng)
    assert block == 3.0 and not np.array_equal(bad, pixelate(img, 3)) and np.abs(bad.astype(int) - pixelate(img, 3)).mean() < 4
    bad, block = er.degrade(img, "mosaic25%", np.random.default_rng(1))
    changed = np.argwhere((bad != img).any(axis=2))
    (y0, x0), (y1, x1) = changed.min(axis=0), changed.max(axis=0) + 1
    assert 8 <= block <= 16 and abs((y1 - y0) * (x1 - x0) / (160 * 200) - 0.25) < 0.05  # a quarter of the area
    box = (int(x0), int(y0), int(x0) + 100, int(y0) + 80)
    assert np.array_equal(bad, mosaic(img, box, int(block)))


def test_prototype_correction_keeps_the_size():
    upscaler = Upscaler("bicubic", device="cpu")
    img = np.ascontiguousarray(skdata.coffee()[:90, :130])
    out = er.prototype_correction(img, upscaler)
    assert out.shape == img.shape and out.dtype == np.uint8


@pytest.mark.slow
def test_eval_restore_writes_the_table_and_rows(tmp_path):
    bench = tmp_path / "benchmark" / "Set14"
    bench.mkdir(parents=True)
    write_image(bench / "a.png", skdata.astronaut()[:128, 64:192])
    write_image(bench / "b.png", skdata.chelsea()[:128, :160])
    out = tmp_path / "results"
    done = run_module("evaluation.eval_restore", "--data", tmp_path, "--sets", "Set14", "--generators", "mobilesr",
                          "--name", "t", "--out-dir", out)
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "t.json").read_text())
    rows = report["rows"]
    assert len(rows) == 2 * len(er.SLICES) and {r["slice"] for r in rows} == set(er.SLICES)
    methods = ["input", "prototype", "grid+bicubic", "restore:mobilesr"]
    for r in rows:
        assert all(np.isfinite(r[m]["psnr"]) and 0 < r[m]["ssim"] <= 1 for m in methods)
    x4 = [r for r in rows if r["slice"] == "x4"]
    assert all(r["estimated_block"] == pytest.approx(4, rel=0.05) for r in x4)
    assert np.mean([r["restore:mobilesr"]["psnr"] - r["input"]["psnr"] for r in x4]) > 1.0  # shipped weights
    table = (out / "t.md").read_text()
    assert "python evaluation/eval_restore.py --data" in table and "| restore:mobilesr |" in table
    assert all(f"\n| {s} | " in table for s in er.SLICES)  # the block-size table, one line per slice


@pytest.mark.slow
def test_select_restore_variant_compares_on_validation_photos(tmp_path):

    folder = tmp_path / "data" / "train" / "mini"
    folder.mkdir(parents=True)
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea()]
    for i in range(30):  # crop27 is the one the hash puts in validation
        write_image(folder / f"crop{i:02d}.png", photos[i % 3][4 * i:4 * i + 96, 3 * i:3 * i + 96])
    assert any(is_validation(p, tmp_path / "data") for p in folder.iterdir())
    variant = write_random_weights(tmp_path / "w", ("mobilesr-pixel",), card={"degradation": "nearest"})
    out = tmp_path / "results"
    done = run_module("evaluation.select_restore_variant", "--variant", variant / "mobilesr-pixel.safetensors",
                          "--data", tmp_path / "data", "--subsets", "mini", "--images", "2", "--crop", "64",
                          "--name", "v", "--out-dir", out)
    assert done.returncode == 0, done.stderr
    table = (out / "v.md").read_text()
    lines = [ln for ln in table.splitlines() if ln.startswith("| x")]
    assert [ln.split("|")[1].strip() for ln in lines] == ["x2", "x2.5", "x3", "x4"]
    for ln in lines:
        inp, plain, random_variant = (float(v) for v in ln.split("|")[2:5])
        assert plain > inp and plain > random_variant  # the shipped generator beats random weights


def test_select_restore_variant_without_validation_photos_says_so(tmp_path):
    (tmp_path / "data" / "train").mkdir(parents=True)
    done = run_module("evaluation.select_restore_variant", "--variant", tmp_path / "none.safetensors",
                          "--data", tmp_path / "data", "--subsets", "missing")
    assert done.returncode == 1 and "no folder missing" in done.stderr


def test_censor_reference_and_masked_psnr():
    from deepclarity.degrade import resize
    from deepclarity.eval.censor_restore import reference
    from deepclarity.metrics import psnr_y

    img = np.ascontiguousarray(skdata.astronaut()[:120, :160])
    assert reference(img, img, {}) is img
    small = resize(img, 0.75, "lanczos")
    assert np.array_equal(reference(img, small, {"interpolation": "lanczos"}), small)  # the same resize
    other = img.copy()
    other[:20, :20] = 0
    mask = np.zeros(img.shape[:2], bool)
    mask[60:, 60:] = True
    assert psnr_y(other, img, mask=mask) == float("inf")  # the change is outside the mask
    mask[:10, :10] = True
    assert np.isfinite(psnr_y(other, img, mask=mask))
    assert np.isnan(psnr_y(other, img, mask=np.zeros_like(mask)))


@pytest.mark.slow
def test_eval_restore_censor_suite_scores_inside_and_outside_the_boxes(tmp_path):
    from PIL import Image, ImageDraw

    bench = tmp_path / "benchmark"
    (bench / "Set14").mkdir(parents=True)
    (bench / "Screens").mkdir()
    write_image(bench / "Set14" / "a.png", skdata.astronaut()[:256, :320])
    for k in range(2):
        im = Image.new("RGB", (320, 200), "white")
        d = ImageDraw.Draw(im)
        for y in range(10, 190, 18):
            d.text((10 + 7 * k, y), "user@example.com  password: hunter2  " * 2, fill=(20, 20, 20))
        im.save(bench / "Screens" / f"s{k}.png")
    out = tmp_path / "results"
    done = run_module("evaluation.eval_restore", "--suite", "censor", "--data", tmp_path, "--sets", "Set14",
                      "--generators", "mobilesr", "--name", "c", "--out-dir", out)
    assert done.returncode == 0, done.stderr
    rows = json.loads((out / "c.json").read_text())["rows"]
    assert sorted(r["slice"] for r in rows) == ["photo censor", "screens censored", "screens censored"]
    for r in rows:
        assert np.isfinite(r["input"]["psnr_in"]) and r["input"]["changed_out"] == 0.0
        for m in ("grid+bicubic", "restore:mobilesr"):
            assert 0.0 <= r[m]["changed_out"] <= 1.0 and r[f"action:{m}"] in {"kept", "no-grid", "restored",
                                                                               "restored-region"}
            if r[f"action:{m}"] in ("kept", "no-grid"):
                assert r[m]["psnr_in"] == r["input"]["psnr_in"] and r[m]["changed_out"] == 0.0
    md = (out / "c.md").read_text()
    assert "--suite censor" in md and "| photo censor | 1 |" in md and "changed outside the boxes" in md
