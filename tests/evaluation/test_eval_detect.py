"""Detection evaluation: the benchmark's slices, its metrics and the confusion-matrix drawing
(:mod:`deepclarity.eval.detect`, :mod:`deepclarity.eval.confusion`), and ``python -m
evaluation.eval_detect`` end to end on a tiny temporary benchmark with randomly initialised detectors.

Nothing here needs ../shared/datasets: photos come from scikit-image's bundled samples.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import run_module
from PIL import Image
from skimage import data as skdata

import deepclarity.eval.detect as ed
from deepclarity.degrade import block_starts
from deepclarity.errors import DeepClarityError
from deepclarity.eval.confusion import draw_confusion, png_bytes

SLICE_BY_NAME = {s.name: s for s in ed.SLICES}


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 200x240 natural RGB photo (uint8)."""
    return np.ascontiguousarray(skdata.astronaut()[100:300, 140:380])


# --------------------------------------------------------------------------------------- metrics


def test_binary_metrics_exact_values():
    # 4 positives: 3 found (tp=3, fn=1); 6 negatives: 2 false alarms (fp=2, tn=4).
    labels = [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    preds = [1, 1, 1, 0, 1, 1, 0, 0, 0, 0]
    m = ed.binary_metrics(labels, preds)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (3, 2, 4, 1)
    assert (m["support"], m["positives"], m["negatives"]) == (10, 4, 6)
    assert m["precision"] == pytest.approx(3 / 5)
    assert m["recall"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    assert m["accuracy"] == pytest.approx(7 / 10)
    assert m["fpr"] == pytest.approx(2 / 6)


def test_binary_metrics_negative_only_leaves_precision_undefined():
    m = ed.binary_metrics([0, 0, 0, 0], [0, 1, 0, 0])
    assert m["precision"] is None and m["recall"] is None and m["f1"] is None
    assert m["fpr"] == pytest.approx(0.25)
    assert m["accuracy"] == pytest.approx(0.75) == 1 - m["fpr"]


def test_binary_metrics_positive_only_and_nothing_predicted():
    m = ed.binary_metrics([1, 1], [0, 0])
    assert m["fpr"] is None  # no negatives
    assert m["precision"] is None  # nothing called pixelated: 0/0
    assert m["recall"] == 0.0 and m["f1"] == 0.0 and m["accuracy"] == 0.0


def test_binary_metrics_refuses_bad_input():
    with pytest.raises(ValueError):
        ed.binary_metrics([0, 1], [1])
    with pytest.raises(ValueError):
        ed.binary_metrics([0, 2], [0, 1])


def test_block_metrics_counts_missing_as_misses():
    b = ed.block_metrics([2.0, 3.0, 4.0, 2.5], [2.1, 3.6, None, 2.5])
    assert b["images"] == 4 and b["returned"] == 3
    assert b["within"] == 2  # 5% and 0% in; 20% and the missing one out
    assert b["share_within"] == pytest.approx(0.5)
    assert b["median_rel_error"] == pytest.approx((0.05 + 0.2) / 2)
    assert b["median_rel_error_returned"] == pytest.approx(0.05)
    # Mostly missing: the median is infinite, reported as undefined rather than as a number.
    worst = ed.block_metrics([2.0, 3.0, 4.0], [None, None, 4.0])
    assert worst["median_rel_error"] is None and worst["share_within"] == pytest.approx(1 / 3)


# ---------------------------------------------------------------------------------------- slices


def test_every_slice_is_deterministic_and_labelled(photo):
    for spec in ed.SLICES:
        a = ed.build_variant(photo, spec.name, ed.slice_rng(7, spec.name, 12345))
        b = ed.build_variant(photo, spec.name, ed.slice_rng(7, spec.name, 12345))
        assert np.array_equal(a.image, b.image) and a.recipe == b.recipe, spec.name
        assert a.label == spec.label, spec.name
        assert a.image.dtype == np.uint8 and a.image.ndim == 3 and a.image.shape[2] == 3
        assert (a.block_size is not None) == spec.block_metric, spec.name
    # Different seeds or photo keys give different draws.
    x = ed.build_variant(photo, "pixelated 2-3", ed.slice_rng(7, "pixelated 2-3", 1)).recipe
    y = ed.build_variant(photo, "pixelated 2-3", ed.slice_rng(8, "pixelated 2-3", 1)).recipe
    assert x != y
    assert ed.image_key("Set14", "a.png") == ed.image_key("Set14", "a.png") != ed.image_key("B100", "a.png")


@pytest.mark.parametrize("name", ["pixelated 1.5-2", "pixelated 2-3", "pixelated 3-4"])
def test_fully_pixelated_slice_has_constant_blocks(photo, name):
    v = ed.build_variant(photo, name, ed.slice_rng(2024, name, 99))
    lo, hi = ed.FACTOR_BINS[name]
    factor = v.recipe["factor"]
    assert lo <= factor < hi and v.image.shape == photo.shape
    h, w = photo.shape[:2]
    ys, xs = block_starts(h, factor), block_starts(w, factor)
    # Every block is one colour, and neighbouring blocks are where the image changes.
    y_edges, x_edges = np.append(ys, h), np.append(xs, w)
    for y0, y1 in zip(y_edges[:-1], y_edges[1:]):
        for x0, x1 in zip(x_edges[:-1], x_edges[1:]):
            block = v.image[y0:y1, x0:x1]
            assert (block == block[0, 0]).all()
    changes = np.flatnonzero(np.any(v.image[:, 1:] != v.image[:, :-1], axis=(0, 2))) + 1
    assert set(changes) <= set(xs)
    truth = (h / len(ys) + w / len(xs)) / 2
    assert v.block_size == pytest.approx(truth)
    assert abs(v.block_size - factor) / factor < 0.05


def test_resized_slice_truth_follows_the_resize(photo):
    v = ed.build_variant(photo, "pixelated+resized", ed.slice_rng(2024, "pixelated+resized", 5))
    r = v.recipe
    assert 2.0 <= r["factor"] < 4.0 and 0.6 <= r["scale"] <= 1.0 and r["scale"] * r["factor"] >= 1.5
    h, w = photo.shape[:2]
    oh, ow = v.image.shape[:2]
    assert (oh, ow) == (round(h * r["scale"]), round(w * r["scale"]))
    expected = (oh / len(block_starts(h, r["factor"])) + ow / len(block_starts(w, r["factor"]))) / 2
    assert v.block_size == pytest.approx(expected)
    assert v.block_size == pytest.approx(r["factor"] * r["scale"], rel=0.05)


def test_pixelated_jpeg_quality_in_range(photo):
    for key in range(5):
        r = ed.build_variant(photo, "pixelated+jpeg", ed.slice_rng(1, "pixelated+jpeg", key)).recipe
        assert 50 <= r["jpeg"] <= 90 and 1.5 <= r["factor"] < 4.0


def test_mosaic_changes_only_its_rectangle(photo):
    for key in range(4):
        v = ed.build_variant(photo, "mosaic", ed.slice_rng(2024, "mosaic", key))
        x0, y0, x1, y1 = v.recipe["box_xyxy"]
        assert 6 <= v.recipe["block"] <= 24
        share = (x1 - x0) * (y1 - y0) / (photo.shape[0] * photo.shape[1])
        assert 0.08 <= share <= 0.52  # 10-50% of the area, give or take rounding
        outside = np.ones(photo.shape[:2], bool)
        outside[y0:y1, x0:x1] = False
        assert np.array_equal(v.image[outside], photo[outside])
        assert not np.array_equal(v.image[y0:y1, x0:x1], photo[y0:y1, x0:x1])


def test_negative_slices_keep_the_shape(photo):
    for name in ("clean", "jpeg q30", "bicubic-upscaled", "blurred"):
        v = ed.build_variant(photo, name, ed.slice_rng(2024, name, 3))
        assert v.image.shape == photo.shape and v.label == 0 and v.block_size is None
    clean = ed.build_variant(photo, "clean", ed.slice_rng(2024, "clean", 3))
    assert np.array_equal(clean.image, photo)
    up = ed.build_variant(photo, "bicubic-upscaled", ed.slice_rng(2024, "bicubic-upscaled", 3))
    assert 2.0 <= up.recipe["upscale"] < 4.0
    assert not np.array_equal(up.image, photo)


def test_unknown_slice_is_refused(photo):
    with pytest.raises(ValueError, match="unknown slice"):
        ed.build_variant(photo, "sepia", np.random.default_rng(0))


# ------------------------------------------------------------------------------ confusion matrix


def test_confusion_png_is_a_valid_image(tmp_path):
    m = ed.binary_metrics([1, 1, 1, 0, 0], [1, 1, 0, 0, 1])
    img = draw_confusion(m, "detector-canny (method 2)")
    assert img.size == (480, 400)
    path = tmp_path / "cm.png"
    path.write_bytes(png_bytes(img))
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size == (480, 400)
        px = np.asarray(im.convert("RGB"))
    assert px.std() > 10  # something was drawn
    # An empty row (no negatives) must not crash either.
    draw_confusion(ed.binary_metrics([1], [1]), "all positive")


# ------------------------------------------------------------------------------------ end to end


def _write_weights(folder: Path, names: list[str]) -> None:
    from deepclarity.models import create_model, get_spec, save_weights

    for name in names:
        save_weights(create_model(name, pretrained=False), folder / get_spec(name).weights, {}, half=True)


def _tiny_benchmark(root: Path) -> Path:
    folder = root / "benchmark" / "Set14"
    folder.mkdir(parents=True)
    Image.fromarray(np.ascontiguousarray(skdata.astronaut()[::2, ::2][:180, :200])).save(folder / "astronaut.png")
    Image.fromarray(np.ascontiguousarray(skdata.chelsea()[:160, :200])).save(folder / "chelsea.png")
    return root


@pytest.mark.slow
def test_end_to_end_on_a_tiny_benchmark(tmp_path, monkeypatch):
    weights = tmp_path / "weights"
    _write_weights(weights, ["detector-canny", "detector-rgb"])
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(weights))
    data = _tiny_benchmark(tmp_path / "data")
    out = tmp_path / "out"
    argv = ["--data", str(data), "--sets", "Set14", "--limit", "1", "--out-dir", str(out), "--name", "t"]
    done = run_module("evaluation.eval_detect", *argv)
    assert done.returncode == 0, done.stderr
    for f in ("t.json", "t.md", "t_cm_canny.png", "t_cm_rgb.png"):
        assert (out / f).is_file(), f
    text = (out / "t.json").read_text()
    report = json.loads(text)
    # One line per image record (both methods), the rest indented.
    assert sum('"slice": ' in line and '"probability": ' in line for line in text.splitlines()) == 2 * len(ed.SLICES)
    assert report["command"].startswith("python evaluation/eval_detect.py --data")
    assert report["benchmark"]["images"] == len(ed.SLICES)  # one photo (--limit 1)
    for method in ("canny", "rgb"):
        res = report["methods"][method]
        assert "skipped" not in res
        assert set(res["summary"]["slices"]) == set(ed.SLICE_NAMES)
        for key in ("accuracy", "precision", "recall", "f1", "fpr", "support", "tp", "fp", "tn", "fn"):
            assert key in res["summary"]["overall"]
        for name, m in res["summary"]["slices"].items():
            assert m["support"] == 1
            if SLICE_BY_NAME[name].label == 0:
                assert m["precision"] is None and m["recall"] is None
        assert len(res["images"]) == len(ed.SLICES)
        row = res["images"][0]
        for key in ("set", "file", "slice", "label", "block_size_true", "probability", "predicted", "block_size"):
            assert key in row
        assert {r["file"] for r in res["images"]} == {"astronaut.png"}
    assert [t["target"] for t in report["methods"]["canny"]["targets"]]
    sha = report["environment_detail"]["weights_sha256"]["detector-canny"]
    assert sha and sha in report["environment"]
    md = (out / "t.md").read_text()
    assert md.startswith("`python evaluation/eval_detect.py ")
    assert "| **overall** |" in md and "Flickr2K" in md and "0.944" in md
    with Image.open(out / "t_cm_canny.png") as im:
        assert im.size == (480, 400)
    # The same benchmark on a second run: identical truth, image by image.
    again = run_module("evaluation.eval_detect", *argv, "--methods", "canny", "--name", "t2")
    assert again.returncode == 0, again.stderr
    again = json.loads((out / "t2.json").read_text())["methods"]["canny"]["images"]
    keep = ("slice", "label", "block_size_true", "recipe", "probability")
    first = report["methods"]["canny"]["images"]
    assert [{k: r[k] for k in keep} for r in again] == [{k: r[k] for k in keep} for r in first]


def test_missing_weights_are_skipped_not_fatal(tmp_path, monkeypatch):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path / "no-weights-here"))
    data = _tiny_benchmark(tmp_path / "data")
    out = tmp_path / "out"
    done = run_module("evaluation.eval_detect", "--data", data, "--sets", "Set14", "--limit", "1", "--out-dir", out)
    assert done.returncode == 0, done.stderr
    assert "skipping canny" in done.stderr
    report = json.loads((out / "detect.json").read_text())
    for method in ("canny", "rgb"):
        assert "no trained weights" in report["methods"][method]["skipped"]
    assert "skipped:" in (out / "detect.md").read_text()
    assert not (out / "detect_cm_canny.png").exists()


def test_missing_set_is_a_clear_error(tmp_path):
    data = _tiny_benchmark(tmp_path / "data")
    with pytest.raises(DeepClarityError, match="Kodak24"):
        ed.find_photos(data, ["Kodak24"], 0)


def test_missing_set_fails_the_command(tmp_path):
    data = _tiny_benchmark(tmp_path / "data")
    done = run_module("evaluation.eval_detect", "--data", data, "--sets", "Kodak24", "--out-dir", tmp_path / "o")
    assert done.returncode == 2 and "Kodak24" in done.stderr
    assert not (tmp_path / "o").exists()


def test_censor_summary_counts_box_iou_at_both_bars():
    from deepclarity.eval.detect import summarise
    from deepclarity.eval.detect_report import censor_table

    def rec(iou, predicted=1):
        return {"slice": "photo censor", "label": 1, "predicted": predicted, "block_size_true": 8.0,
                "region_block_size": 8.0, "iou": iou, "probability": 0.99, "block_size": 8.0}

    records = [rec(0.9), rec(0.75), rec(0.6), rec(0.1, predicted=0)]
    m = summarise(records)["censor_slices"]["photo censor"]
    assert m["iou"]["share_over_0.5"] == 0.75 and m["iou"]["share_over_0.7"] == 0.5
    row = [line for line in censor_table(summarise(records)).splitlines() if line.startswith("| photo censor")][0]
    assert row.endswith("| 75.0% | 50.0% |")


def test_photo_table_counts_one_box_over_fully_pixelated_images():
    from types import SimpleNamespace

    from deepclarity.detect import Region
    from deepclarity.eval.detect import Variant, _whole_image_iou, summarise
    from deepclarity.eval.detect_report import method_table

    v = Variant(np.zeros((100, 200, 3), np.uint8), 1, 4.0, {})
    whole = SimpleNamespace(pixelated=True, regions=[Region(0, 0, 200, 100, 4.0, (0.0, 0.0), 0.9)])
    half = SimpleNamespace(pixelated=True, regions=[Region(0, 0, 100, 100, 4.0, (0.0, 0.0), 0.9)])
    missed = SimpleNamespace(pixelated=False, regions=[Region(0, 0, 200, 100, 4.0, (0.0, 0.0), 0.9)])
    assert [_whole_image_iou(d, v) for d in (whole, half, missed)] == [1.0, 0.5, 0.0]

    def rec(iou, slice_name="pixelated 2-3"):
        return {"slice": slice_name, "label": 1, "predicted": int(iou > 0), "block_size_true": 4.0,
                "block_size": 4.0, "iou": iou}

    clean = {"slice": "clean", "label": 0, "predicted": 0, "block_size_true": None, "block_size": None}
    summary = summarise([rec(1.0), rec(0.9), rec(0.5), rec(0.0), clean])
    assert summary["slices"]["pixelated 2-3"]["iou"]["share_over_0.7"] == 0.5
    assert summary["slices"]["clean"]["iou"] is None
    rows = method_table(summary).splitlines()
    assert [r for r in rows if r.startswith("| pixelated 2-3")][0].endswith("| 50.0% |")
    assert [r for r in rows if r.startswith("| clean")][0].endswith("| – |")
