"""Batch safety of ``detect``, ``enhance`` and ``restore``, mostly end to end in subprocesses (real
exit codes, real stderr, a real ``kill -9``, timeouts against hangs), plus the bad-input corpus
through ``detect`` and ``restore`` (``test_cli_enhance`` runs it through ``enhance``).

* 200 files of which 5 are broken: the 195 others are processed, exactly the 5 are reported, exit 1.
* ``kill -9`` in the middle of ``enhance``: no partial file under a final name; ``--skip-existing``
  resumes without recomputing what was written.
* No input is ever overwritten: not by an output (``-o`` = the input folder with ``--suffix ''``),
  not by the report file.
* Every file of ``bad_inputs`` (conftest) gives a correct output or one one-line error naming it,
  never a traceback, never a hang; the good files of the same run are still processed.

Temporary files of an interrupted write (``.NAME.XXXX.tmp``, see ``deepclarity.files``) are left
where they are: a later run cannot tell a stale one from one another process is writing right now.
They are harmless because nothing takes them for an image: folder listings go by extension and
``.tmp`` is not one, ``--skip-existing`` looks only at the final name, and a final name only ever
appears through ``os.replace`` of a complete file. The resume test checks all three.

The models are randomly initialised (``helpers.write_random_weights``), never ``weights/``: these
tests check files, records and exit codes, not quality. One PyTorch thread per process: on a shared
CPU, two spinning OpenMP threads make the same runs several times slower.
"""

from __future__ import annotations

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import encode_pil, png_header_only, tmp_leftovers
from helpers import clear_model_caches, write_random_weights
from PIL import Image
from skimage import data as skdata

from deepclarity.cli import main
from deepclarity.degrade import pixelate
from deepclarity.io import write_image

REPO = Path(__file__).resolve().parents[2]
SUFFIX = {"enhance": "out", "restore": "restored"}
SCALE = {"enhance": 4, "restore": 1}  # the default -s of each command


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    """Random generator (MobileSR and the default) and canny-detector weights: all that detect,
    enhance and restore load."""
    from deepclarity.enhance import DEFAULT_UPSCALER

    names = tuple(dict.fromkeys(("mobilesr", DEFAULT_UPSCALER, "detector-canny")))  # -m mobilesr and the default
    return write_random_weights(tmp_path_factory.mktemp("batch_weights"), names)


def cli_env(weights: Path) -> dict[str, str]:
    env = dict(os.environ, DEEPCLARITY_WEIGHTS=str(weights), DEEPCLARITY_THREADS="1", OMP_NUM_THREADS="1")
    env.pop("OPENCV_LOG_LEVEL", None)
    return env


def run_cli(weights: Path, *args, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m deepclarity ARGS`` with the random weights; a hang fails the test."""
    argv = [sys.executable, "-m", "deepclarity", *map(str, args)]
    try:
        return subprocess.run(argv, cwd=REPO, env=cli_env(weights), capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`deepclarity {' '.join(map(str, args[:1]))}` hung: no exit within {timeout:g} s")


def assert_clean_stderr(err: str, summary: str | None) -> None:
    """No traceback, nothing but ``deepclarity: ...`` lines (no library noise), and the summary."""
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert all(line.startswith("deepclarity: ") for line in lines), err
    if summary is not None:
        assert lines == [summary], err


def decoded_size(path: Path) -> tuple[int, int]:
    """Size of ``path`` after decoding every pixel (a truncated file raises here)."""
    with Image.open(path) as im:
        im.load()
        return im.size


def finals(folder: Path) -> list[Path]:
    """Files under a final (non-hidden) name."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def snapshot(folder: Path) -> dict[Path, tuple[bytes, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------- 200 files, 5 broken


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[Path, dict[str, tuple[int, int]], dict[str, str]]:
    """A flat folder of 195 small good images (PNG and JPEG, 32..48 px, a third pixelated) and 5
    broken ones sorted in between. Returns (folder, good name -> (W, H), broken name -> a fragment
    its error must contain). Read-only: outputs go elsewhere."""
    folder = tmp_path_factory.mktemp("batch200")
    photo = skdata.astronaut()
    good: dict[str, tuple[int, int]] = {}
    for i in range(195):
        h, w = 32 + i % 17, 32 + (i * 7) % 17
        y, x = (i * 37) % 400, (i * 53) % 400
        img = np.ascontiguousarray(photo[y:y + h, x:x + w])
        if i % 3 == 0:
            img = pixelate(img, 4)
        name = f"img{i:03d}.{'jpg' if i % 2 else 'png'}"
        write_image(folder / name, img, quality=90 if i % 2 else None)
        good[name] = (w, h)
    png = encode_pil(Image.fromarray(np.ascontiguousarray(photo[:48, :48])), "PNG")
    jpg = encode_pil(Image.fromarray(np.ascontiguousarray(photo[:48, :48])), "JPEG", quality=90)
    broken = {
        "img020_empty.png": (b"", "empty"),
        "img060_cut.png": (png[: len(png) // 2], "truncated"),
        "img100_cut.jpg": (jpg[: len(jpg) // 2], "truncated"),
        "img140_text.png": (b"just some text, not a PNG\n" * 3, "not a recognized image"),
        "img180_bomb.png": (png_header_only(40_000, 40_000), "limit"),
    }
    for name, (data, _) in broken.items():
        (folder / name).write_bytes(data)
    return folder, good, {name: frag for name, (_, frag) in broken.items()}


@pytest.mark.slow
@pytest.mark.parametrize("command", ["detect", "enhance", "restore"])
def test_200_files_5_broken(command, batch, weights, tmp_path):
    folder, good, broken = batch
    out, report = tmp_path / "out", tmp_path / "report.json"
    if command == "detect":
        args = ["detect", folder, "-o", report]
    else:
        args = [command, "-i", folder, "-o", out, "-m", "mobilesr", "--report", report]
    proc = run_cli(weights, *args, "-q", "--format", "json")

    assert proc.returncode == 1, proc.stderr
    assert_clean_stderr(proc.stderr, "deepclarity: 5 of 200 inputs failed")
    assert proc.stdout == ""  # the report went to its file
    records = json.loads(report.read_text())
    key = "path" if command == "detect" else "input"
    assert sorted(Path(r[key]).name for r in records) == sorted([*good, *broken])
    failed = {Path(r[key]).name: r["error"] for r in records if r["error"]}
    assert set(failed) == set(broken)
    for name, error in failed.items():
        assert name in error and "\n" not in error and broken[name] in error.lower(), error

    if command == "detect":
        for r in records:
            if not r["error"]:
                assert isinstance(r["pixelated"], bool) and 0.0 <= r["probability"] <= 1.0, r
        return
    assert {r["status"] for r in records if not r["error"]} == {"written"}
    expected = {f"{Path(n).stem}_{SUFFIX[command]}{Path(n).suffix}": size for n, size in good.items()}
    assert sorted(p.name for p in finals(out)) == sorted(expected)
    assert tmp_leftovers(out) == []
    scale = SCALE[command]
    for name, (w, h) in expected.items():
        assert decoded_size(out / name) == (scale * w, scale * h), name


# ---------------------------------------------------------------- kill -9, then --skip-existing


@pytest.fixture
def photos(tmp_path) -> Path:
    """12 photos of 160x200: MobileSR x4 on one CPU thread takes a few tenths of a second each."""
    folder = tmp_path / "photos"
    folder.mkdir()
    photo = skdata.astronaut()
    for i in range(12):
        y, x = 25 * i, 300 - 20 * i
        write_image(folder / f"p{i:02d}.png", np.ascontiguousarray(photo[y:y + 160, x:x + 200]))
    return folder


@pytest.mark.slow
def test_kill_9_leaves_no_partial_output_and_skip_existing_resumes(photos, weights, tmp_path):
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "deepclarity", "enhance", "-i", str(photos), "-o", str(out),
            "-m", "mobilesr", "--device", "cpu", "-q", "--format", "json"]
    proc = subprocess.Popen(argv, cwd=REPO, env=cli_env(weights), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    # Read every output the moment its final name shows up (a writer that is not atomic is caught
    # mid-file there), and kill -9 once three are out.
    first_sight: dict[str, bytes] = {}
    try:
        deadline = time.monotonic() + 180
        while len(first_sight) < 3:
            for entry in os.scandir(out) if out.is_dir() else ():
                if not entry.name.startswith(".") and entry.name not in first_sight:
                    first_sight[entry.name] = Path(entry.path).read_bytes()
            assert proc.poll() is None, f"enhance exited early ({proc.returncode}): {proc.stderr.read()}"
            assert time.monotonic() < deadline, "enhance wrote too little within 180 s"
            time.sleep(0.0005)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()

    for name, data in first_sight.items():
        try:
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                size = im.size
        except (OSError, SyntaxError, struct.error) as exc:
            pytest.fail(f"{name} was visible under its final name before it was complete ({exc})")
        assert size == (800, 640), name
    done = finals(out)
    assert 3 <= len(done) < 12, "the run was not interrupted in the middle"
    for p in done:  # everything under a final name is a complete image
        assert p.name.endswith("_out.png") and decoded_size(p) == (800, 640), p
    hidden = [p for p in out.iterdir() if p.name.startswith(".")]
    assert hidden == tmp_leftovers(out)  # anything else is an atomic_write temporary file

    # A stale temporary for an output not written yet, and one among the inputs (as after a
    # crashed run with -o = the input folder): neither may be read as an input or as an output.
    todo = sorted(set(f"p{i:02d}_out.png" for i in range(12)) - {p.name for p in done})[-1]
    (out / f".{todo}.stale123.tmp").write_bytes((out / done[0].name).read_bytes()[:500])
    (photos / ".p00.png.stale456.tmp").write_bytes(b"\x89PNG\r\n\x1a\n")
    before = {p.name: p.stat().st_mtime_ns for p in done}
    time.sleep(0.01)

    proc2 = run_cli(weights, "enhance", "-i", photos, "-o", out, "-m", "mobilesr", "--device", "cpu",
                    "--skip-existing", "-q", "--format", "json")
    assert proc2.returncode == 0, proc2.stderr
    assert_clean_stderr(proc2.stderr, None)
    records = {Path(r["input"]).name: r for r in json.loads(proc2.stdout)}
    assert sorted(records) == [f"p{i:02d}.png" for i in range(12)]
    for name, r in records.items():
        out_name = Path(name).stem + "_out.png"
        assert r["status"] == ("skipped" if out_name in before else "written"), r
    assert records[todo.replace("_out", "")]["status"] == "written"
    assert {p.name: p.stat().st_mtime_ns for p in done} == before  # not recomputed
    assert sorted(p.name for p in finals(out)) == [f"p{i:02d}_out.png" for i in range(12)]
    for p in finals(out):
        assert decoded_size(p) == (800, 640), p


# ----------------------------------------------------------------- inputs are never overwritten


@pytest.fixture
def small(tmp_path) -> Path:
    """Three small images, one of them in a sub-folder."""
    folder = tmp_path / "small"
    (folder / "sub").mkdir(parents=True)
    photo = skdata.astronaut()
    write_image(folder / "a.png", pixelate(np.ascontiguousarray(photo[100:140, 150:198]), 4))
    write_image(folder / "b.jpg", np.ascontiguousarray(photo[200:232, 200:240]), quality=90)
    write_image(folder / "sub" / "c.png", np.ascontiguousarray(photo[300:340, 100:140]))
    return folder


@pytest.mark.slow
def test_restore_in_place_without_suffix_refuses_and_keeps_inputs(small, weights):
    """``-o`` = the input folder, ``--suffix ''``, same extension: every file is refused with a
    one-line error, exit 1, and not a byte (nor an mtime) of the folder changes. With another
    extension the results get their own names and the inputs are still untouched."""
    before = snapshot(small)
    proc = run_cli(weights, "restore", "-i", small, "-o", small, "--suffix", "", "-m", "mobilesr",
                   "-q", "--format", "json")
    assert proc.returncode == 1
    assert_clean_stderr(proc.stderr, "deepclarity: 3 of 3 inputs failed")
    records = json.loads(proc.stdout)
    assert len(records) == 3 and {r["status"] for r in records} == {"error"}
    for r in records:
        assert "input file" in r["error"] and "overwrite" in r["error"], r["error"]
    assert snapshot(small) == before

    proc = run_cli(weights, "restore", "-i", small, "-o", small, "--suffix", "", "--ext", "webp",
                   "-m", "mobilesr", "-q", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert {r["status"] for r in json.loads(proc.stdout)} == {"written"}
    assert {p: v for p, v in snapshot(small).items() if p in before} == before
    assert sorted(p.relative_to(small).as_posix() for p in set(snapshot(small)) - set(before)) == [
        "a.webp", "b.webp", "sub/c.webp"]
    assert decoded_size(small / "a.webp") == (48, 40)


@pytest.mark.parametrize("command", ["detect", "enhance", "restore"])
def test_report_file_never_replaces_an_input(command, small, weights, tmp_path, capsys, monkeypatch):
    """``-o`` (detect) / ``--report`` (enhance, restore) naming one of the inputs: one fatal line,
    exit 2, the input intact. (Before the fix the report was written over the image.)"""
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(weights))
    clear_model_caches()
    before = snapshot(small)
    victim = small / "b.jpg"
    if command == "detect":
        argv = ["detect", str(small), "-o", str(victim)]
    else:
        argv = [command, "-i", str(small), "-o", str(tmp_path / "out"), "--report", str(victim)]
    try:
        code = main([*argv, "-q", "--device", "cpu", "--format", "csv"])
    finally:
        clear_model_caches()
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == f"deepclarity: error: {'-o' if command == 'detect' else '--report'} {victim} is one of " \
                  "the input images; refusing to overwrite it\n"
    assert snapshot(small) == before
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------- bad-input corpus, as a subprocess


@pytest.mark.slow
@pytest.mark.parametrize("command", ["detect", "restore"])
def test_bad_input_corpus_through_the_cli(command, bad_inputs, small, weights, tmp_path):
    """Every corpus file (as ``test_cli_enhance`` does for ``enhance``), with good files before and
    after: a refused file is one error record naming it and saying what is wrong; a readable one is
    processed (``restore``: an output of the input's size, alpha and grayscale kept); stderr holds
    only the summary line; the whole run is bounded by a timeout."""
    # folder.png is a directory: on the command line that means "the images inside it" (none)
    corpus = [bad_inputs[n] for n in sorted(bad_inputs) if not bad_inputs[n].is_dir()]
    files = [small / "a.png", *corpus, small / "b.jpg"]
    out, report = tmp_path / "out", tmp_path / "report.json"
    if command == "detect":
        args = ["detect", *files, "-o", report]
    else:
        args = ["restore", "-i", *files, "-o", out, "-m", "mobilesr", "--report", report]
    proc = run_cli(weights, *args, "-q", "--format", "json", timeout=180)

    refused = [n for n in bad_inputs.refused if n != "folder.png"]
    assert proc.returncode == 1, proc.stderr
    assert_clean_stderr(proc.stderr, f"deepclarity: {len(refused)} of {len(files)} inputs failed")
    key = "path" if command == "detect" else "input"
    records = {Path(r[key]).name: r for r in json.loads(report.read_text())}
    assert sorted(records) == sorted(p.name for p in files)
    for name in refused:
        error = records[name]["error"]
        assert error and name in error and "\n" not in error, (name, error)
        assert any(frag in error.lower() for frag in bad_inputs.entries[name].error), error
    readable = [*bad_inputs.readable, "a.png", "b.jpg"]
    for name in readable:
        assert records[name]["error"] is None, (name, records[name]["error"])
    if command == "detect":
        for name in readable:
            assert 0.0 <= records[name]["probability"] <= 1.0, name
        return
    assert {p.name for p in finals(out)} == {Path(records[n]["output"]).name for n in readable}
    assert tmp_leftovers(out) == []
    for name in bad_inputs.readable:
        rec, expect = records[name], bad_inputs.entries[name].expect
        assert rec["status"] == "written" and rec["size"] == "{}x{}".format(*expect["size"]), rec
        dest = Path(rec["output"])
        assert decoded_size(dest) == expect["size"], name
        with Image.open(dest) as im:
            if expect["alpha"]:
                assert "A" in im.getbands(), (name, im.mode)
            elif expect["grayscale"]:
                assert im.mode in ("L", "I", "I;16"), (name, im.mode)
            else:
                assert im.mode == "RGB", (name, im.mode)
