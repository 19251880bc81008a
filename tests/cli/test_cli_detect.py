"""``deepclarity detect`` (and ``bench detect``) run in-process through ``deepclarity.cli.main``.

The detector is randomly initialised and saved to a temporary ``$DEEPCLARITY_WEIGHTS`` folder: its
probabilities mean nothing (they are all 0.5), so these tests check records, formats, exit codes
and file handling, not accuracy.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import cv2
import pytest
from conftest import tmp_leftovers
from skimage import data as skdata

import deepclarity.detect as detect_mod
import deepclarity.files as files_mod
from deepclarity.cli import expand_inputs, main
from deepclarity.degrade import pixelate
from deepclarity.io import write_image
from deepclarity.models import create_model, get_spec, save_weights

JSON_KEYS = {"path", "pixelated", "probability", "block_size", "phase", "method", "basis", "regions", "error"}
CSV_HEADER = "path,pixelated,probability,block_size,error"


@pytest.fixture(autouse=True)
def random_weights(tmp_path_factory, monkeypatch) -> Path:
    """Random canny and rgb detectors in a temporary ``$DEEPCLARITY_WEIGHTS``; a clean detector cache."""
    import torch

    folder = tmp_path_factory.mktemp("weights")
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(folder))
    torch.manual_seed(0)
    for name in ("detector-canny", "detector-rgb"):
        save_weights(create_model(name, pretrained=False), folder / get_spec(name).weights, {}, half=True)
    detect_mod._DETECTORS.clear()
    yield folder
    detect_mod._DETECTORS.clear()


@pytest.fixture
def images(tmp_path) -> Path:
    """A folder: two images at the top, one in sub/, one in sub/deeper/, plus non-images to ignore."""
    root = tmp_path / "imgs"
    (root / "sub" / "deeper").mkdir(parents=True)
    astro = skdata.astronaut()
    write_image(root / "a.png", pixelate(astro[100:196, 150:278], 4))
    write_image(root / "b.jpg", skdata.chelsea()[50:150, 100:220], quality=95)
    write_image(root / "sub" / "c.png", astro[200:280, 200:300])
    write_image(root / "sub" / "deeper" / "d.PNG", pixelate(skdata.coffee()[:90, :120], 3))
    (root / "notes.txt").write_text("not an image\n")
    (root / "sub" / "notes.txt").write_text("not an image either\n")
    (root / "sub" / "data.bin").write_bytes(b"\x00\x01")
    return root


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["detect", *args])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *args: str) -> tuple[int, list[dict], str]:
    code, out, err = run(capsys, "--format", "json", "-q", *args)
    return code, json.loads(out), err


# ------------------------------------------------------------------------------------ formats


def test_json_schema(capsys, images):
    code, records, err = run_json(capsys, str(images / "a.png"), str(images / "b.jpg"))
    assert code == 0, err
    assert isinstance(records, list) and len(records) == 2
    for rec in records:
        assert set(rec) == JSON_KEYS
        assert rec["error"] is None
        assert isinstance(rec["pixelated"], bool)
        assert 0.0 <= rec["probability"] <= 1.0
        assert rec["method"] == "canny"
        if rec["block_size"] is not None:
            assert rec["block_size"] > 0 and len(rec["phase"]) == 2
    assert [r["path"] for r in records] == [str(images / "a.png"), str(images / "b.jpg")]
    # Random weights say 0.5 everywhere (>= the default threshold): the x4 image gets its grid.
    assert records[0]["pixelated"] is True
    assert records[0]["block_size"] == pytest.approx(4, rel=0.05)


def test_csv_format(capsys, images):
    code, out, err = run(capsys, "--format", "csv", "-q", str(images / "a.png"), str(images / "b.jpg"),
                         str(images / "notes.txt"))
    assert code == 1
    lines = out.rstrip("\n").split("\n")
    assert lines[0] == CSV_HEADER
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 3
    assert [r["path"] for r in rows] == [str(images / n) for n in ("a.png", "b.jpg", "notes.txt")]
    assert rows[0]["pixelated"] == "True" and rows[0]["error"] == ""
    assert float(rows[0]["probability"]) == pytest.approx(0.5)
    assert rows[2]["pixelated"] == "" and rows[2]["probability"] == "" and "notes.txt" in rows[2]["error"]


def test_table_format_has_a_verdict_column(capsys, images):
    code, out, err = run(capsys, "-q", str(images / "a.png"), str(images / "notes.txt"))
    assert code == 1
    lines = out.rstrip("\n").split("\n")
    assert lines[0].split() == ["path", "verdict", "probability", "block_size", "error"]
    assert len(lines) == 3
    assert lines[1].startswith(str(images / "a.png")) and "PIXELATED" in lines[1].split()
    assert "error" in lines[2].split()[:2]
    code, out, _ = run(capsys, "-q", "--threshold", "1.0", str(images / "b.jpg"))
    assert code == 0 and "clean" in out.split("\n")[1].split()


# ------------------------------------------------------------------------------ file discovery


def test_folder_non_recursive(capsys, images):
    code, records, _ = run_json(capsys, str(images))
    assert code == 0
    assert [Path(r["path"]).name for r in records] == ["a.png", "b.jpg"]


def test_folder_recursive(capsys, images):
    code, records, _ = run_json(capsys, "-r", str(images))
    assert code == 0
    names = sorted(Path(r["path"]).relative_to(images).as_posix() for r in records)
    assert names == ["a.png", "b.jpg", "sub/c.png", "sub/deeper/d.PNG"]
    assert all(r["error"] is None for r in records)


def test_expand_inputs_order_and_duplicates(images):
    files = expand_inputs([str(images / "b.jpg"), str(images), str(images / "b.jpg")], recursive=False)
    assert files == [images / "b.jpg", images / "a.png"]
    assert expand_inputs([str(images / "sub")], recursive=False) == [images / "sub" / "c.png"]
    assert expand_inputs([str(images / "nope.png")], recursive=True) == [images / "nope.png"]


def test_explicit_files_with_odd_extensions_are_attempted(capsys, images, tmp_path):
    disguised = tmp_path / "photo.data"  # a real PNG under a strange name: read by content
    disguised.write_bytes((images / "a.png").read_bytes())
    code, records, err = run_json(capsys, str(images / "notes.txt"), str(images / "sub" / "data.bin"),
                                  str(disguised))
    assert code == 1
    assert [r["path"] for r in records] == [str(images / "notes.txt"), str(images / "sub" / "data.bin"),
                                            str(disguised)]
    assert records[0]["error"] and "notes.txt" in records[0]["error"]
    assert records[1]["error"] and "data.bin" in records[1]["error"]
    assert records[2]["error"] is None and records[2]["pixelated"] is True
    assert "2 of 3 inputs failed" in err


# ------------------------------------------------------------------------------ failures / exit codes


BAD = ["empty.png", "text.png", "truncated.png", "bomb.png", "page.jpg", "missing.png", "truncated16.png"]


def test_bad_files_get_error_records_and_the_rest_is_processed(capsys, images, bad_inputs):
    paths = [str(images / "a.png")] + [str(bad_inputs[n]) for n in BAD] + [str(images / "b.jpg")]
    code, records, err = run_json(capsys, *paths)
    assert code == 1
    assert [r["path"] for r in records] == paths
    good, bad, last = records[0], records[1:-1], records[-1]
    for rec in (good, last):
        assert rec["error"] is None and isinstance(rec["pixelated"], bool)
    for name, rec in zip(BAD, bad):
        assert rec["error"] and name in rec["error"], rec
        assert rec["pixelated"] is None and rec["probability"] is None and rec["block_size"] is None
        assert rec["phase"] is None and rec["method"] == "canny"  # the method asked for
        frags = bad_inputs.entries[name].error
        assert any(f in rec["error"].lower() for f in frags), (name, rec["error"])
    assert f"{len(BAD)} of {len(paths)} inputs failed" in err
    assert "Traceback" not in err


def test_folder_named_like_an_image_is_scanned_as_a_folder(capsys, images, bad_inputs):
    """``folder.png`` is a directory: it is looked into (it is empty), not read as an image."""
    code, records, err = run_json(capsys, str(bad_inputs["folder.png"]), str(images / "a.png"))
    assert code == 0
    assert [r["path"] for r in records] == [str(images / "a.png")]
    code, out, err = run(capsys, str(bad_inputs["folder.png"]))
    assert code == 2 and out == ""
    assert err.strip() == "deepclarity: error: no input images found"


def test_all_good_exits_0(capsys, images):
    code, out, err = run(capsys, "-r", str(images))
    assert code == 0
    assert "failed" not in err


def test_no_inputs_found_exits_2(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    code, out, err = run(capsys, "-r", str(empty))
    assert code == 2 and out == ""
    assert err.endswith("\n") and err.count("\n") == 1
    assert err.startswith("deepclarity: error: ") and "no input images" in err


def test_missing_weights_exit_2(capsys, images, monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path / "no-weights"))
    detect_mod._DETECTORS.clear()
    code, out, err = run(capsys, str(images / "a.png"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "no trained weights" in err and "Traceback" not in err


def test_output_file(capsys, images, tmp_path, monkeypatch):
    calls = []
    real = files_mod.atomic_write
    monkeypatch.setattr(files_mod, "atomic_write", lambda dest, data: calls.append(dest) or real(dest, data))
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    report.write_text("old contents")
    code, out, err = run(capsys, "--format", "json", "-q", "-o", str(report), str(images))
    assert code == 0
    assert out == ""
    assert calls == [report]
    records = json.loads(report.read_text())
    assert [Path(r["path"]).name for r in records] == ["a.png", "b.jpg"]
    assert report.read_text().endswith("\n")
    assert tmp_leftovers(report.parent) == []
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.json"]


def test_output_file_csv_with_failures(capsys, images, tmp_path):
    report = tmp_path / "report.csv"
    code, out, err = run(capsys, "--format", "csv", "-o", str(report), str(images / "a.png"),
                         str(images / "notes.txt"))
    assert code == 1 and out == ""
    assert "1 of 2 inputs failed" in err
    assert report.read_text().split("\n")[0] == CSV_HEADER
    assert len(report.read_text().strip().split("\n")) == 3


def test_output_into_missing_folder_exits_2(capsys, images, tmp_path):
    code, out, err = run(capsys, "-o", str(tmp_path / "nope" / "r.json"), str(images / "a.png"))
    assert code == 2 and out == ""
    assert "cannot write" in err and err.count("\n") == 1


def test_method_rgb(capsys, images):
    code, records, err = run_json(capsys, "--method", "rgb", str(images))
    assert code == 0, err
    assert len(records) == 2 and all(r["method"] == "rgb" for r in records)
    assert all(0.0 <= r["probability"] <= 1.0 for r in records)


def test_threshold_one_leaves_only_the_second_looks_finds(capsys, images):
    # The threshold is the network's: at 1.0 it never fires, and only the second look's own
    # evidence (here: a.png and d.PNG pixelated all over, their grids found) can call an image pixelated.
    code, records, _ = run_json(capsys, "--threshold", "1.0", "-r", str(images))
    assert code == 0 and len(records) == 4
    for rec in records:
        if rec["pixelated"]:
            assert Path(rec["path"]).name in ("a.png", "d.PNG") and rec["basis"] == "second look: image grid"
            assert rec["block_size"] is not None
        else:
            assert rec["block_size"] is None and rec["phase"] is None
    assert not any(r["pixelated"] for r in records if Path(r["path"]).name in ("b.jpg", "c.png"))


def test_threshold_zero_makes_everything_pixelated(capsys, images):
    code, records, _ = run_json(capsys, "--threshold", "0", "-r", str(images))
    assert code == 0 and all(r["pixelated"] is True for r in records)


def test_tiles_option(capsys, tmp_path):
    path = tmp_path / "wide.png"
    write_image(path, skdata.coffee())
    code, records, _ = run_json(capsys, "--tiles", "2", "--threshold", "1", str(path))
    assert code == 0 and records[0]["error"] is None


def test_one_pixel_wide_images_do_not_abort_the_run(capsys, images, bad_inputs):
    code, records, err = run_json(capsys, str(bad_inputs["tiny.png"]), str(bad_inputs["tall.png"]),
                                  str(images / "a.png"))
    assert len(records) == 3
    assert code in (0, 1)


# ---------------------------------------------------------------------------------------- bench


@pytest.mark.slow
def test_bench_detect_json(capsys):
    code = main(["bench", "detect", "--images", "2", "--repeats", "1", "--batch", "8", "--format", "json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    res = json.loads(out)
    assert res["benchmark"] == "detect" and res["method"] == "canny"
    assert res["hardware"] and isinstance(res["hardware"], str)
    assert res["dtype"] in ("float32", "float16 (autocast)")
    assert res["device"] in ("cpu", "cuda", "cuda:0")
    mo, e2e = res["model_only"], res["end_to_end"]
    assert mo["crops_per_s"] > 0 and mo["batch"] == 8 and mo["crop"] == "160x160"
    assert e2e["images_per_s"] > 0 and e2e["images"] == 2 and "1920x1080" in e2e["size"]
    assert e2e["tiles_per_image"] == 24
    assert res["repeats"] == 1
