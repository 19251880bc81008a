"""deepclarity.datasets (where the data lives) and deepclarity.data without the network: the
shipped manifest, set selection, URLs, the recorded transforms, checking a folder, the generator."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tomllib
from pathlib import Path

import pytest
from datasets_mini import REPO, ROOT, build_mini, encode, load_build_manifest
from PIL import Image

from deepclarity.data import load_manifest
from deepclarity.data.manifest import DEFAULT_BASE_URL, base_url, parse_manifest
from deepclarity.data.transforms import TransformError, apply_transform, parse_transform, pixels_sha256
from deepclarity.data.verify import ALTERED, MISSING, OK, SAME_PIXELS, check_files, file_status
from deepclarity.datasets import (
    MISSING_DATA_HINT,
    default_data_dir,
    default_fetch_dir,
    find_benchmark_sets,
    training_images,
    user_data_dir,
)
from deepclarity.errors import DeepClarityError

SHARED = ROOT.parent / "shared" / "datasets" / "MANIFEST.json"


@pytest.fixture
def mini(tmp_path):
    return build_mini(tmp_path)


# ---------------------------------------------------------------------------- where the data lives


def test_fetch_dir_is_env_else_user_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPCLARITY_DATA", str(tmp_path / "d"))
    assert default_fetch_dir() == tmp_path / "d" == default_data_dir()
    monkeypatch.delenv("DEEPCLARITY_DATA")
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert user_data_dir() == tmp_path / "xdg" / "deepclarity" / "datasets" == default_fetch_dir()


def test_missing_data_messages_point_to_the_data_commands(tmp_path):
    assert "deepclarity data fetch" in MISSING_DATA_HINT and "deepclarity data check DIR" in MISSING_DATA_HINT
    with pytest.raises(DeepClarityError, match="deepclarity data fetch"):
        find_benchmark_sets([tmp_path / "nowhere"])
    with pytest.raises(DeepClarityError, match="deepclarity data check DIR"):
        find_benchmark_sets([tmp_path])
    with pytest.raises(DeepClarityError, match="deepclarity data fetch"):
        training_images(tmp_path)


# ----------------------------------------------------------------------------------- the manifest


def test_shipped_manifest_loads_and_ships_as_package_data():
    manifest = load_manifest()
    names = [s.name for s in manifest]
    assert any(n.startswith("train/") for n in names) and any(n.startswith("benchmark/") for n in names)
    for s in manifest:
        assert s.entries and s.bytes and s.description
        for e in s.entries:
            assert e.path.startswith(s.name + "/") and len(e.sha256) == len(e.pixels_sha256) == 64
            parse_transform(e.transform)  # every transform string is one this version applies
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "manifest.json.gz" in pyproject["tool"]["setuptools"]["package-data"]["deepclarity.data"]


def test_select_by_full_name_last_part_or_top_folder(mini):
    manifest = load_manifest(mini.manifest)
    assert [s.name for s in manifest.select([])] == ["train/photos", "train/bmp", "train/big", "benchmark/Tiny"]
    assert [s.name for s in manifest.select(["tiny", "train/bmp"])] == ["train/bmp", "benchmark/Tiny"]
    assert [s.name for s in manifest.select(["train"])] == ["train/photos", "train/bmp", "train/big"]
    with pytest.raises(DeepClarityError, match="unknown data set 'nope'.*train/photos"):
        manifest.select(["nope"])


def test_urls_pin_the_commit_and_quote_the_path(mini, monkeypatch):
    manifest = load_manifest(mini.manifest)
    odd = next(e for e in manifest.entries if e.file == "Tiny/g.png")
    assert odd.url() == f"{DEFAULT_BASE_URL}/{REPO}/{odd.commit}/sets/carpenter%27s%20kit.png"
    monkeypatch.setenv("DEEPCLARITY_DATA_URL", "http://127.0.0.1:9/mirror/")
    assert base_url() == "http://127.0.0.1:9/mirror" and base_url("http://x") == "http://x"
    monkeypatch.delenv("DEEPCLARITY_DATA_URL")
    assert base_url() == DEFAULT_BASE_URL


def test_both_layouts_read_the_same_and_bad_ones_are_refused(mini, tmp_path):
    shipped, shared = load_manifest(mini.manifest), load_manifest(mini.shared_manifest)
    strip = lambda es: [dataclasses.replace(e, bytes=None) for e in es]  # noqa: E731
    assert strip(shipped.entries) == strip(shared.entries)
    rec = json.loads(mini.shared_manifest.read_text())["train/photos"][0]
    with pytest.raises(DeepClarityError, match="unsafe file name"):
        parse_manifest({"train/x": [dict(rec, file="../../etc/passwd")]})
    with pytest.raises(DeepClarityError, match="lacks pixels_sha256"):
        parse_manifest({"train/x": [{k: v for k, v in rec.items() if k != "pixels_sha256"}]})
    with pytest.raises(DeepClarityError, match="format 99"):
        parse_manifest({"format": 99, "sets": {}})
    (tmp_path / "bad.json.gz").write_bytes(b"\x1f\x8bnot gzip")
    with pytest.raises(DeepClarityError, match="cannot read the data manifest"):
        load_manifest(tmp_path / "bad.json.gz")


# ------------------------------------------------------------------------------------ transforms


def test_every_transform_reproduces_the_staged_file(mini):
    manifest = load_manifest(mini.manifest)
    assert {e.transform for e in manifest.entries} >= {
        "copy", "decode bmp, save PNG (pixels unchanged)", "decode png, save PNG (pixels unchanged)",
        "decode tif, save PNG (pixels unchanged)", "rgb, downscale 1/2 with PIL BICUBIC (reducing_gap=None), PNG"}
    for e in manifest.entries:
        out = apply_transform(mini.upstream[mini.url_path[e.path]], e)
        assert out == (mini.staged / e.path).read_bytes(), e.path


def test_transform_mismatch_and_unknown_transform_are_errors(mini):
    manifest = load_manifest(mini.manifest)
    entry = next(e for e in manifest.entries if e.transform.startswith("rgb, downscale"))
    up = mini.upstream[mini.url_path[entry.path]]
    wrong = dataclasses.replace(entry, sha256="0" * 64, pixels_sha256="1" * 64)
    with pytest.raises(TransformError, match="other pixels than recorded"):
        apply_transform(up, wrong)
    with pytest.raises(TransformError, match="not the recorded 10x10"):
        apply_transform(up, dataclasses.replace(entry, size=(10, 10)))
    with pytest.raises(TransformError, match="unknown transform 'sharpen'"):
        apply_transform(up, dataclasses.replace(entry, transform="sharpen"))
    bmp = next(e for e in manifest.entries if "bmp" in e.transform)
    with pytest.raises(TransformError, match="upstream file is JPEG, the manifest says bmp"):
        apply_transform(up, bmp)


def test_pixels_checksum_is_the_rgb_pixels_whatever_the_encoding():
    im = Image.new("RGBA", (5, 3), (10, 20, 30, 128))
    a = Image.open(io.BytesIO(encode(im, "PNG", compress_level=0)))
    b = Image.open(io.BytesIO(encode(im, "PNG", optimize=True)))
    assert pixels_sha256(a) == pixels_sha256(b) == hashlib.sha256(bytes([10, 20, 30]) * 15).hexdigest()


# ---------------------------------------------------------------------------- checking a folder


def test_check_counts_ok_same_pixels_missing_altered_extra(mini):
    manifest = load_manifest(mini.manifest)
    report = check_files(mini.staged, manifest)
    assert report.passed and report.total().ok == len(manifest.entries) and not report.problems
    # re-encoded (another Pillow would do this): same pixels, still passes
    reenc = mini.staged / "train" / "bmp" / "c.png"
    reenc.write_bytes(encode(Image.open(reenc), "PNG", compress_level=0))
    (mini.staged / "train/photos/a.jpg").unlink()
    (mini.staged / "benchmark/Tiny/e.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    Image.new("RGB", (4, 4)).save(mini.staged / "benchmark/Tiny/stray.png")
    report = check_files(mini.staged, manifest)
    counts = {s.name: (s.ok, s.same_pixels, s.missing, s.altered, s.extra) for s in report.sets}
    assert counts == {"train/photos": (1, 0, 1, 0, 0), "train/bmp": (0, 1, 0, 0, 0), "train/big": (1, 0, 0, 0, 0),
                      "benchmark/Tiny": (2, 0, 0, 1, 1)}
    assert not report.passed
    assert [(st, p) for st, p, _ in report.problems] == [
        (MISSING, "train/photos/a.jpg"), (ALTERED, "benchmark/Tiny/e.png"), ("extra", "benchmark/Tiny/stray.png")]
    table = report.table()
    assert "same pixels" in table and "missing: train/photos/a.jpg" in table and "total" in table
    assert json.loads(json.dumps(report.as_dict()))["total"]["missing"] == 1


def test_file_status_tells_other_pixels_from_other_bytes(mini):
    e = next(e for e in load_manifest(mini.manifest).entries if e.file == "photos/b.png")
    path = mini.staged / e.path
    assert file_status(path, e) == (OK, "")
    Image.open(path).save(path, compress_level=0)
    assert file_status(path, e) == (SAME_PIXELS, "")
    Image.new("RGB", (24, 20)).save(path)
    assert file_status(path, e) == (ALTERED, "other pixels than recorded")


# ----------------------------------------------------------------------------------- the generator


def test_generator_output_for_a_miniature_input(mini, tmp_path):
    tool = load_build_manifest()
    doc = tool.build(mini.shared_manifest)
    blob = tool.encode(doc)
    assert blob == tool.encode(tool.build(mini.shared_manifest))  # reproducible bytes
    assert gzip.decompress(blob)[:1] == b"{" and tool.decode(blob) == doc
    shared = json.loads(mini.shared_manifest.read_text())
    assert list(doc["sets"]) == list(shared)
    for name, files in shared.items():
        for rec, out in zip(files, doc["sets"][name]["files"], strict=True):
            assert {k: v for k, v in out.items() if k != "bytes"} == rec
            assert out["bytes"] == (mini.staged / Path(name).parent / rec["file"]).stat().st_size
    # --check: stale until generated, then up to date; the docs block follows the manifest
    out, docs = tmp_path / "m.json.gz", tmp_path / "DATA.md"
    docs.write_text("intro\n<!-- data:size -->\nold\n<!-- /data:size -->\nend\n")
    args = ["--source", str(mini.shared_manifest), "--out", str(out), "--docs", str(docs)]
    assert tool.main(args + ["--check"]) == 1
    assert tool.main(args) == 0 and tool.main(args + ["--check"]) == 0
    assert out.read_bytes() == blob and "**0 MB** on disk for all 7 files" in docs.read_text()
    # a staged file that no longer matches its checksum stops the generator
    (mini.staged / "train/photos/a.jpg").write_bytes(b"changed")
    with pytest.raises(SystemExit, match="does not match its sha256"):
        tool.build(mini.shared_manifest)


def test_docs_size_figure_is_generated_from_the_shipped_manifest():
    tool = load_build_manifest()
    shipped = tool.decode((ROOT / "deepclarity" / "data" / "manifest.json.gz").read_bytes())
    text = (ROOT / "docs" / "DATA.md").read_text()
    assert tool.render_docs(text, shipped) == text, "run python -m tools.build_manifest"
    assert "`deepclarity data list`" in tool.size_block(shipped)


@pytest.mark.data
@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/datasets is not present")
def test_shipped_manifest_is_the_generators_output_for_the_shared_one():
    tool = load_build_manifest()
    shipped = tool.decode((ROOT / "deepclarity" / "data" / "manifest.json.gz").read_bytes())
    assert shipped == tool.build(SHARED, verify=False), "run python -m tools.build_manifest"


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_file(), reason="../shared/datasets is not present")
def test_reencoding_transforms_reproduce_the_shared_files_exactly():
    """Upstream files are not reachable here; the re-encoding transforms are checked on an upstream
    stand-in: the staged pixels written in the upstream format must give the staged bytes back."""
    fmt = {"bmp": "BMP", "png": "PNG", "tif": "TIFF"}
    root = SHARED.parent
    for s in load_manifest():
        picks = sorted((e for e in s.entries if e.transform.startswith("decode ")), key=lambda e: e.bytes)[:1]
        for e in picks:
            up = encode(Image.open(root / e.path), fmt[e.transform.split()[1].rstrip(",")])
            e2 = dataclasses.replace(e, upstream_sha256=hashlib.sha256(up).hexdigest())
            assert hashlib.sha256(apply_transform(up, e2)).hexdigest() == e.sha256, e.path
