"""``deepclarity enhance`` run in-process through ``deepclarity.cli.main`` (plus one ``--help`` in a
subprocess).

The SR networks are randomly initialised and saved to a temporary ``$DEEPCLARITY_WEIGHTS`` folder
(never ``weights/``): these tests check files, names, formats, records and exit codes, not quality.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

import deepclarity.runtime as runtime_mod
from deepclarity.cli import main
from deepclarity.degrade import imresize
from deepclarity.enhance import resize_to
from deepclarity.io import read_image, write_image

REPO = Path(__file__).resolve().parents[2]
RECORD_KEYS = ["input", "output", "status", "model", "size", "seconds", "error"]


# ------------------------------------------------------------------------------------- fixtures


pytestmark = pytest.mark.usefixtures("random_sr_weights")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 24x32 RGB crop of the astronaut."""
    return np.ascontiguousarray(skdata.astronaut()[120:264:6, 160:352:6])


@pytest.fixture
def images(tmp_path, photo) -> Path:
    """A folder: two images at the top, one in sub/, one in sub/deeper/, plus non-images to ignore."""
    root = tmp_path / "imgs"
    (root / "sub" / "deeper").mkdir(parents=True)
    write_image(root / "a.png", photo)
    write_image(root / "b.jpg", skdata.chelsea()[50:150:4, 100:220:4], quality=95)
    write_image(root / "sub" / "c.png", photo[:16, :20])
    write_image(root / "sub" / "deeper" / "d.png", photo[4:20, 8:30])
    (root / "notes.txt").write_text("not an image\n")
    (root / "sub" / "data.bin").write_bytes(b"\x00\x01")
    return root


def enhance(capsys, *args: str | os.PathLike, fmt: str = "json") -> tuple[int, list[dict] | str, str]:
    """Run ``deepclarity enhance ARGS -q --format FMT``; (exit code, records or stdout, stderr)."""
    argv = ["enhance", *map(str, args), "-q", "--format", fmt]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if fmt == "json" and out.strip() else out), err


def by_name(records: list[dict]) -> dict[str, dict]:
    return {Path(r["input"]).name: r for r in records}


def size_of(path: Path) -> tuple[int, int]:
    with Image.open(path) as im:
        return im.size


def assert_one_line_errors(err: str) -> None:
    assert "Traceback" not in err
    for line in err.strip().splitlines():
        assert line.startswith("deepclarity: "), line


# -------------------------------------------------------------------------------- batch basics


def test_folder_is_searched_recursively_and_layout_kept(images, tmp_path, capsys):
    out = tmp_path / "out"
    code, records, err = enhance(capsys, "-i", images, "-o", out)
    assert code == 0, err
    assert sorted(Path(r["output"]).relative_to(out).as_posix() for r in records) == [
        "a_out.png", "b_out.jpg", "sub/c_out.png", "sub/deeper/d_out.png"]
    assert all(r["status"] == "written" and r["error"] is None for r in records)
    assert size_of(out / "a_out.png") == (128, 96)
    assert size_of(out / "b_out.jpg") == (120, 100)
    assert size_of(out / "sub" / "c_out.png") == (80, 64)
    assert size_of(out / "sub" / "deeper" / "d_out.png") == (88, 64)
    assert not list(out.rglob("*.txt")) and not list(out.rglob("*.bin"))
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a_out.png", "b_out.jpg", "c_out.png", "d_out.png"]


def test_files_and_folders_mixed_and_duplicates_once(images, tmp_path, capsys):
    out = tmp_path / "out"
    code, records, _ = enhance(capsys, "-i", images / "a.png", images / "sub", images / "a.png", "-o", out)
    assert code == 0
    assert sorted(Path(r["output"]).relative_to(out).as_posix() for r in records) == [
        "a_out.png", "c_out.png", "deeper/d_out.png"]


def test_table_report_by_default(images, tmp_path, capsys):
    code = main(["enhance", "-i", str(images / "a.png"), "-o", str(tmp_path / "out"), "-q"])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    header, row = out.strip().splitlines()
    assert header.split() == ["input", "output", "status", "size", "seconds", "error"]
    assert "a.png" in row and "a_out.png" in row and "written" in row and "128x96" in row


def test_output_folder_is_created(images, tmp_path, capsys):
    out = tmp_path / "new" / "nested" / "out"
    code, _, _ = enhance(capsys, "-i", images / "a.png", "-o", out)
    assert code == 0 and (out / "a_out.png").is_file()


def test_suffix_option(images, tmp_path, capsys):
    code, records, _ = enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "out", "--suffix", "x4")
    assert code == 0 and Path(records[0]["output"]).name == "a_x4.png"
    code, records, _ = enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "out", "--suffix", "")
    assert code == 0 and Path(records[0]["output"]).name == "a.png"
    assert (tmp_path / "out" / "a_x4.png").is_file() and (tmp_path / "out" / "a.png").is_file()


@pytest.mark.parametrize("model", ["mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan", "bicubic"])
def test_every_model_choice_runs(model, images, tmp_path, capsys):
    code, records, _ = enhance(capsys, "-i", images / "sub" / "c.png", "-o", tmp_path, "-m", model,
                               "--device", "cpu", "--fp32")
    assert code == 0
    assert records[0]["model"] == model and records[0]["size"] == "80x64"


def test_bicubic_model_is_matlab_imresize(images, tmp_path, capsys, photo):
    code, _, _ = enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "out", "-m", "bicubic")
    assert code == 0
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "a_out.png").pixels, imresize(photo, 4))


@pytest.mark.parametrize("outscale, size", [("2.5", (80, 60)), ("1.3", (42, 31)), ("0.5", (16, 12)),
                                            ("3", (96, 72)), ("16", (512, 384))])
def test_arbitrary_outscale(outscale, size, images, tmp_path, capsys):
    """24x32 input: the output is round(H*s) x round(W*s)."""
    code, records, _ = enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "out", "-s", outscale)
    assert code == 0
    assert size_of(tmp_path / "out" / "a_out.png") == size
    assert records[0]["size"] == f"{size[0]}x{size[1]}"


def test_tile_options_reach_the_model(images, tmp_path, capsys, monkeypatch):
    seen = []
    real = runtime_mod.run_model

    def spy(*args, **kwargs):
        seen.append((kwargs["tile"], kwargs["tile_pad"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(runtime_mod, "run_model", spy)
    code, _, _ = enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "o1", "-t", "8", "--tile-pad", "4")
    assert code == 0 and seen == [(8, 4)]
    code, _, _ = enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "o2")
    assert code == 0 and seen[-1] == (0, 16)  # small image: automatic tiling does not tile


def test_sharpen_option_changes_the_result(images, tmp_path, capsys):
    enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "plain", "-m", "bicubic")
    enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "sharp", "-m", "bicubic", "--sharpen", "1")
    plain = read_image(tmp_path / "plain" / "a_out.png").pixels
    sharp = read_image(tmp_path / "sharp" / "a_out.png").pixels
    assert plain.shape == sharp.shape and not np.array_equal(plain, sharp)


# ------------------------------------------------------------------- alpha, depth, gray, EXIF


def test_rgba_in_rgba_out_with_alpha_split_kept(tmp_path, capsys, photo):
    rgba = np.dstack([photo, np.zeros(photo.shape[:2], np.uint8)])
    rgba[:, :16, 3] = 255  # opaque left half, transparent right half
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    code, records, _ = enhance(capsys, "-i", tmp_path / "logo.png", "-o", tmp_path / "out")
    assert code == 0
    with Image.open(tmp_path / "out" / "logo_out.png") as im:
        assert im.mode == "RGBA" and im.size == (128, 96)
        alpha = np.asarray(im)[..., 3]
    assert alpha[:, :60].min() == 255 and alpha[:, 68:].max() == 0


def test_rgba_jpeg_auto_becomes_png(tmp_path, capsys, photo):
    """``--ext auto`` with alpha and a .jpg name (JPEG cannot hold alpha): the result is a PNG."""
    rgba = np.dstack([photo, np.full(photo.shape[:2], 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.jpg", format="PNG")  # misnamed; read by content
    code, records, _ = enhance(capsys, "-i", tmp_path / "t.jpg", "-o", tmp_path / "out")
    assert code == 0 and Path(records[0]["output"]).name == "t_out.png"
    with Image.open(tmp_path / "out" / "t_out.png") as im:
        assert im.mode == "RGBA" and np.all(np.asarray(im)[..., 3] == 128)


def test_ext_jpg_with_rgba_input_is_written_as_png(tmp_path, capsys, photo):
    """``--ext jpg`` with an RGBA input: JPEG cannot hold alpha, so that file becomes a PNG (as in
    Real-ESRGAN) while the opaque ones are JPEGs; the transparency is never thrown away."""
    rgba = np.dstack([photo, np.zeros(photo.shape[:2], np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "logo.png")
    write_image(tmp_path / "plain.png", photo)
    code, records, err = enhance(capsys, "-i", tmp_path / "logo.png", tmp_path / "plain.png",
                                 "-o", tmp_path / "out", "--ext", "jpg")
    assert code == 0, err
    recs = by_name(records)
    assert recs["plain.png"]["status"] == "written" and Path(recs["plain.png"]["output"]).suffix == ".jpg"
    with Image.open(recs["plain.png"]["output"]) as im:
        assert im.format == "JPEG"
    assert Path(recs["logo.png"]["output"]).name == "logo_out.png"
    assert not (tmp_path / "out" / "logo_out.jpg").exists()
    with Image.open(recs["logo.png"]["output"]) as im:
        assert im.mode == "RGBA" and np.all(np.asarray(im)[..., 3] == 0)


def test_output_folder_inside_the_input_folder_is_not_reprocessed(images, tmp_path, capsys):
    out = images / "out"
    code, first, _ = enhance(capsys, "-i", images, "-o", out)
    assert code == 0 and len(first) == 4
    code, second, _ = enhance(capsys, "-i", images, "-o", out, "--skip-existing")
    assert code == 0 and sorted(r["input"] for r in second) == sorted(r["input"] for r in first)
    assert {r["status"] for r in second} == {"skipped"}
    assert not list(out.rglob("*_out_out.*"))


def test_output_that_is_a_file_is_one_fatal_error(images, tmp_path, capsys):
    target = tmp_path / "taken.png"
    target.write_bytes(b"precious")
    code, out, err = enhance(capsys, "-i", images, "-o", target)
    assert code == 2 and "not a folder" in err and err.count("\n") == 1
    assert target.read_bytes() == b"precious"


@pytest.mark.parametrize("ext", ["bmp", "tif"])
def test_ext_auto_for_bmp_and_tif_gives_png(ext, tmp_path, capsys, photo):
    Image.fromarray(photo).save(tmp_path / f"scan.{ext}")
    code, records, _ = enhance(capsys, "-i", tmp_path / f"scan.{ext}", "-o", tmp_path / "out")
    assert code == 0 and Path(records[0]["output"]).name == "scan_out.png"
    with Image.open(tmp_path / "out" / "scan_out.png") as im:
        assert im.format == "PNG" and im.size == (128, 96)


@pytest.mark.parametrize("ext, fmt", [("png", "PNG"), ("jpg", "JPEG"), ("webp", "WEBP")])
def test_ext_option_sets_the_format(ext, fmt, images, tmp_path, capsys):
    code, records, _ = enhance(capsys, "-i", images / "b.jpg", "-o", tmp_path / "out", "--ext", ext)
    assert code == 0 and Path(records[0]["output"]).name == f"b_out.{ext}"
    with Image.open(records[0]["output"]) as im:
        assert im.format == fmt and im.size == (120, 100)


def test_16bit_png_stays_16bit(tmp_path, capsys):
    ramp = np.linspace(2000, 62000, 16 * 20).reshape(16, 20)
    rgb16 = np.stack([ramp, ramp[::-1], np.full_like(ramp, 30000)], axis=2).astype(np.uint16)
    write_image(tmp_path / "deep.png", rgb16)
    write_image(tmp_path / "deepgray.png", ramp.astype(np.uint16))
    code, _, _ = enhance(capsys, "-i", tmp_path / "deep.png", tmp_path / "deepgray.png", "-o", tmp_path / "out")
    assert code == 0
    color = cv2.imread(str(tmp_path / "out" / "deep_out.png"), cv2.IMREAD_UNCHANGED)
    gray = cv2.imread(str(tmp_path / "out" / "deepgray_out.png"), cv2.IMREAD_UNCHANGED)
    assert color.dtype == np.uint16 and color.shape == (64, 80, 3)
    assert gray.dtype == np.uint16 and gray.shape == (64, 80)
    assert np.count_nonzero(color % 257) > color.size // 2  # real 16-bit values, not 8-bit * 257


@pytest.mark.parametrize("model", ["minisrresnet", "mobilesr"])
def test_grayscale_stays_grayscale(model, tmp_path, capsys, photo):
    gray = cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY)
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    Image.fromarray(gray, "L").save(tmp_path / "g.jpg", quality=95)
    code, _, _ = enhance(capsys, "-i", tmp_path / "g.png", tmp_path / "g.jpg", "-o", tmp_path / "out", "-m", model)
    assert code == 0
    for name in ("g_out.png", "g_out.jpg"):
        with Image.open(tmp_path / "out" / name) as im:
            assert im.mode == "L" and im.size == (128, 96), name


def test_exif_rotated_jpeg_output_has_rotated_size(tmp_path, capsys):
    stored = np.full((20, 40, 3), 255, np.uint8)  # 40 wide x 20 tall as stored
    stored[:6, :6] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed 20 wide x 40 tall
    Image.fromarray(stored).save(tmp_path / "phone.jpg", quality=95, exif=exif.tobytes())
    code, records, _ = enhance(capsys, "-i", tmp_path / "phone.jpg", "-o", tmp_path / "out")
    assert code == 0 and records[0]["size"] == "80x160"
    with Image.open(tmp_path / "out" / "phone_out.jpg") as im:
        assert im.size == (80, 160)
        assert im.getexif().get(0x0112, 1) == 1  # no orientation tag left to rotate it twice
        pixels = np.asarray(im.convert("RGB"))
    assert pixels[:16, -16:, 1].mean() < 100 < pixels[-16:, :16, 1].mean()  # red corner now top-right


# ----------------------------------------------------------------------- errors and overwriting


def test_bad_files_are_reported_and_the_batch_goes_on(images, tmp_path, capsys):
    (images / "broken.png").write_text("this is not an image\n")
    (images / "empty.jpg").write_bytes(b"")
    out = tmp_path / "out"
    code, records, err = enhance(capsys, "-i", images, images / "missing.png", "-o", out)
    assert code == 1
    recs = by_name(records)
    assert {n for n, r in recs.items() if r["status"] == "error"} == {"broken.png", "empty.jpg", "missing.png"}
    assert {n for n, r in recs.items() if r["status"] == "written"} == {"a.png", "b.jpg", "c.png", "d.png"}
    for name in ("broken.png", "empty.jpg", "missing.png"):
        assert name in recs[name]["error"] and "\n" not in recs[name]["error"]
        assert recs[name]["size"] is None
    assert (out / "a_out.png").is_file() and (out / "sub" / "deeper" / "d_out.png").is_file()
    assert not (out / "broken_out.png").exists()
    assert err.strip() == "deepclarity: 3 of 7 inputs failed"


def test_bad_files_named_in_the_table_report(images, tmp_path, capsys):
    (images / "broken.png").write_text("this is not an image\n")
    code, text, err = enhance(capsys, "-i", images, "-o", tmp_path / "out", fmt="table")
    assert code == 1 and "1 of 5 inputs failed" in err
    (bad_row,) = [line for line in text.splitlines() if "broken.png" in line]
    assert "error" in bad_row and "not a recognized image" in bad_row


def test_write_failure_is_a_record_not_a_crash(images, tmp_path, capsys):
    """A file where an output sub-folder should go: that input fails (OSError), the others are written."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "sub").write_text("in the way\n")
    code, records, err = enhance(capsys, "-i", images, "-o", out)
    assert code == 1
    recs = by_name(records)
    assert recs["c.png"]["status"] == "error" and recs["d.png"]["status"] == "error"
    assert "sub" in recs["c.png"]["error"] and "\n" not in recs["c.png"]["error"]
    assert recs["a.png"]["status"] == "written" and (out / "a_out.png").is_file()
    assert (out / "sub").read_text() == "in the way\n"
    assert_one_line_errors(err)


def test_never_overwrites_an_input_in_place(images, capsys):
    """``-o`` = the input folder, no suffix, same extension: refused per file, inputs unchanged."""
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in images.rglob("*.*")}
    code, records, err = enhance(capsys, "-i", images, "-o", images, "--suffix", "")
    assert code == 1
    assert len(records) == 4 and all(r["status"] == "error" for r in records)
    assert all("input file" in r["error"] and "overwrite" in r["error"] for r in records)
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in images.rglob("*.*")} == before
    assert not list(images.rglob(".*.tmp"))
    assert_one_line_errors(err)


def test_jpg_and_png_of_the_same_name_do_not_overwrite_each_other(tmp_path, capsys, photo):
    folder = tmp_path / "pics"
    folder.mkdir()
    write_image(folder / "a.jpg", photo, quality=95)
    write_image(folder / "a.png", photo[::-1])
    png_before = (folder / "a.png").read_bytes()
    # in place: a.jpg -> a.png would replace the input a.png
    code, records, _ = enhance(capsys, "-i", folder / "a.jpg", folder / "a.png", "-o", folder,
                               "--ext", "png", "--suffix", "")
    assert code == 1 and [r["status"] for r in records] == ["error", "error"]
    assert (folder / "a.png").read_bytes() == png_before
    # elsewhere: the first one is written, the second must not replace it
    out = tmp_path / "out"
    code, records, _ = enhance(capsys, "-i", folder / "a.jpg", folder / "a.png", "-o", out,
                               "--ext", "png", "--suffix", "")
    assert code == 1
    recs = by_name(records)
    assert recs["a.jpg"]["status"] == "written" and recs["a.png"]["status"] == "error"
    assert "already written" in recs["a.png"]["error"]
    back = resize_to(read_image(out / "a.png").pixels, 24, 32).astype(float)
    # it is a.jpg's result, not a.png's (a.png is a.jpg upside down)
    assert np.abs(back - read_image(folder / "a.jpg").pixels).mean() < \
        0.5 * np.abs(back - read_image(folder / "a.png").pixels).mean()


def test_skip_existing_leaves_the_file_alone(images, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    existing = out / "a_out.png"
    write_image(existing, np.zeros((2, 2, 3), np.uint8))
    old_bytes = existing.read_bytes()
    os.utime(existing, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    code, records, _ = enhance(capsys, "-i", images / "a.png", images / "b.jpg", "-o", out, "--skip-existing")
    assert code == 0
    recs = by_name(records)
    assert recs["a.png"]["status"] == "skipped" and recs["a.png"]["error"] is None
    assert recs["a.png"]["output"] == str(existing)
    assert recs["b.jpg"]["status"] == "written"
    assert existing.read_bytes() == old_bytes
    assert existing.stat().st_mtime_ns == 1_000_000_000_000_000_000
    # without the flag the old result is replaced
    code, records, _ = enhance(capsys, "-i", images / "a.png", "-o", out)
    assert code == 0 and records[0]["status"] == "written" and size_of(existing) == (128, 96)


def test_skip_existing_table_says_skipped(images, tmp_path, capsys):
    enhance(capsys, "-i", images / "a.png", "-o", tmp_path)
    code, text, _ = enhance(capsys, "-i", images / "a.png", "-o", tmp_path, "--skip-existing", fmt="table")
    assert code == 0 and "skipped" in text.splitlines()[1]


# -------------------------------------------------------------------------------------- reports


def test_json_report_fields(images, tmp_path, capsys):
    (images / "broken.png").write_text("nope\n")
    code, records, _ = enhance(capsys, "-i", images / "a.png", images / "broken.png", "-o", tmp_path / "out",
                               "-m", "bicubic")
    assert code == 1
    assert [list(r) for r in records] == [RECORD_KEYS, RECORD_KEYS]
    good, bad = records
    assert good == {"input": str(images / "a.png"), "output": str(tmp_path / "out" / "a_out.png"),
                    "status": "written", "model": "bicubic", "size": "128x96",
                    "seconds": good["seconds"], "error": None}
    assert isinstance(good["seconds"], float) and good["seconds"] >= 0
    assert bad["status"] == "error" and bad["size"] is None and bad["seconds"] is None
    assert bad["output"] is None and "broken.png" in bad["error"]


def test_csv_report(images, tmp_path, capsys):
    code, text, _ = enhance(capsys, "-i", images / "a.png", "-o", tmp_path / "out", fmt="csv")
    assert code == 0
    header, row = text.strip().splitlines()
    assert header == "input,output,status,size,seconds,error"
    assert row.startswith(f"{images / 'a.png'},{tmp_path / 'out' / 'a_out.png'},written,128x96,")


def test_report_file(images, tmp_path, capsys):
    report = tmp_path / "report.json"
    code = main(["enhance", "-i", str(images), "-o", str(tmp_path / "out"), "-q", "--format", "json",
                 "--report", str(report)])
    out, err = capsys.readouterr()
    assert code == 0 and out == "" and err == ""
    records = json.loads(report.read_text())
    assert len(records) == 4 and all(r["status"] == "written" for r in records)


# -------------------------------------------------------------------------------- usage errors


@pytest.mark.parametrize("args, message", [
    (["-s", "0"], "outscale"),
    (["-s", "-2"], "outscale"),
    (["-s", "nan"], "outscale"),
    (["-s", "16.5"], "outscale"),
    (["-t", "-1"], "tile"),
    (["--tile-pad", "-1"], "tile_pad"),
])
def test_bad_settings_are_one_line_fatal_errors(args, message, images, tmp_path, capsys):
    code = main(["enhance", "-i", str(images / "a.png"), "-o", str(tmp_path / "out"), "-q", *args])
    out, err = capsys.readouterr()
    assert code == 2
    assert err.startswith("deepclarity: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_no_inputs_is_fatal(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["enhance", "-i", str(tmp_path / "empty"), "-o", str(tmp_path / "out")])
    assert code == 2 and "no input images found" in capsys.readouterr().err


def test_missing_weights_is_fatal_and_names_the_model(images, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path / "nothing"))
    code = main(["enhance", "-i", str(images / "a.png"), "-o", str(tmp_path / "out"), "-m", "minisrresnet"])
    err = capsys.readouterr().err
    assert code == 2 and "minisrresnet" in err and "Traceback" not in err


def test_unavailable_cuda_is_fatal(images, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    code = main(["enhance", "-i", str(images / "a.png"), "-o", str(tmp_path / "out"), "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("deepclarity: error: ") and "CUDA" in err


@pytest.mark.parametrize("argv", [
    ["-i", "x.png", "-o", "out", "-m", "esrgan"],
    ["-i", "x.png", "-o", "out", "--ext", "gif"],
    ["-i", "x.png", "-o", "out", "--device"],
    ["-i", "x.png"],
])
def test_argparse_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["enhance", *argv])
    assert exc.value.code == 2
    assert "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["enhance", "restore"])
def test_no_inputs_at_all_is_a_usage_error_naming_both_ways_to_give_them(command, tmp_path, capsys):
    assert main([command, "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "-i INPUT" in err and "--input-list" in err and not (tmp_path / "out").exists()


def test_help_in_a_subprocess():
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "deepclarity", "enhance", "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for flag in ("-i INPUT", "-o OUTDIR", "-m", "mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan", "bicubic",
                 "-s", "--outscale", "-t", "--tile", "--tile-pad", "--suffix", "--ext", "auto", "webp",
                 "--skip-existing", "--device", "--fp32", "--format", "--report"):
        assert flag in proc.stdout, flag


# ------------------------------------------------------------------------------ bad-input corpus


def test_bad_input_corpus_in_one_batch(bad_inputs, tmp_path, capsys):
    """Every refused file gets a one-line error record naming it; every readable one is written."""
    # folder.png is a directory: on the command line a folder means "the images inside it"
    files = [bad_inputs[name] for name in sorted(bad_inputs) if not bad_inputs[name].is_dir()]
    out = tmp_path / "out"
    code, records, err = enhance(capsys, "-i", *files, "-o", out)
    assert code == 1
    assert_one_line_errors(err)
    recs = by_name(records)
    assert set(recs) == {p.name for p in files}
    for name in bad_inputs.refused:
        if name == "folder.png":
            continue
        rec = recs[name]
        assert rec["status"] == "error", name
        assert name in rec["error"] and "\n" not in rec["error"], rec["error"]
        assert any(frag in rec["error"].lower() for frag in bad_inputs.entries[name].error), rec["error"]
    assert err.strip() == f"deepclarity: {len(bad_inputs.refused) - 1} of {len(files)} inputs failed"
    for name in bad_inputs.readable:
        rec = recs[name]
        assert rec["status"] == "written", (name, rec["error"])
        expect = bad_inputs.entries[name].expect
        dest = Path(rec["output"])
        assert dest.is_file() and dest.parent == out
        with Image.open(dest) as im:
            assert im.size == (4 * expect["size"][0], 4 * expect["size"][1]), name
            if expect["alpha"]:
                assert "A" in im.getbands(), name
            elif expect["grayscale"]:
                assert im.mode in ("L", "I", "I;16"), (name, im.mode)
            else:
                assert im.mode == "RGB", (name, im.mode)
