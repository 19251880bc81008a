"""``--engine ray`` gives the local engine's answers: same detect records, same enhanced images, bad
files as error records, and a worker killed mid-batch retried by Ray with nothing lost or doubled.

One local Ray instance (2 CPUs, no dashboard) for the module; small images; randomly initialised
weights (``helpers.write_random_weights``), never ``weights/`` (a training run may rewrite it).
Skipped when Ray is not installed (``pip install 'deepclarity[ray]'``; ``make test`` installs it).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import clear_model_caches, write_random_weights
from skimage import data as skdata

from deepclarity.cli import main
from deepclarity.degrade import pixelate
from deepclarity.io import read_image, write_image

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pa = pytest.importorskip("pyarrow")

BROKEN = ("broken.png", "notes.jpg")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from deepclarity.enhance import DEFAULT_UPSCALER

    names = tuple(dict.fromkeys(("mobilesr", DEFAULT_UPSCALER, "detector-canny")))  # -m mobilesr and the default
    return write_random_weights(tmp_path_factory.mktemp("ray_weights"), names)


@pytest.fixture(scope="module")
def cluster(weights):
    """One Ray instance for the module; the CLI uses it as it is (it never starts a second)."""
    saved = {k: os.environ.get(k) for k in ("DEEPCLARITY_WEIGHTS", "DEEPCLARITY_THREADS", "RAY_USAGE_STATS_ENABLED")}
    os.environ.update(DEEPCLARITY_WEIGHTS=str(weights), DEEPCLARITY_THREADS="1", RAY_USAGE_STATS_ENABLED="0")
    clear_model_caches()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    yield
    ray.shutdown()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    clear_model_caches()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Seven small images of every kind io handles (gray, alpha, 16-bit, EXIF-rotated, pixelated)
    and two broken files."""
    from PIL import Image

    root = tmp_path_factory.mktemp("ray_inputs") / "in"
    (root / "sub").mkdir(parents=True)
    photo = skdata.astronaut()
    write_image(root / "a.png", photo[:96, :128])
    write_image(root / "b.jpg", pixelate(skdata.chelsea()[:120, :150], 3.0), quality=95)
    write_image(root / "gray.png", skdata.camera()[:80, :100])
    write_image(root / "alpha.png", np.dstack([photo[100:164, :80], np.full((64, 80), 200, np.uint8)]))
    write_image(root / "deep.png", skdata.coffee()[:72, :90].astype(np.uint16) * 257)
    write_image(root / "sub" / "c.webp", pixelate(skdata.rocket()[:100, :100], 4.0))
    im = Image.fromarray(photo[:60, :90])
    exif = im.getexif()
    exif[0x0112] = 6  # rotated 90 degrees: io applies it
    im.save(root / "rotated.jpg", exif=exif.tobytes(), quality=95)
    (root / BROKEN[0]).write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    (root / BROKEN[1]).write_text("not an image")
    return root


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_detect_gives_the_local_records(cluster, folder, tmp_path, capsys):
    local, remote = tmp_path / "local.json", tmp_path / "ray.jsonl"
    common = [str(folder), "-r", "--threshold", "0.3", "-q"]  # a low threshold: block sizes get estimated
    assert main(["detect", *common, "--format", "json", "-o", str(local)]) == 1
    assert main(["detect", *common, "--engine", "ray", "--workers", "2", "--batch-size", "2", "-o", str(remote)]) == 1
    want, got = json.loads(local.read_text()), _lines(remote)
    assert [r["path"] for r in got] == [r["path"] for r in want] and len(got) == 9
    for w, g in zip(want, got):
        assert set(g) == set(w)
        assert g["error"] == w["error"] and g["pixelated"] == w["pixelated"] and g["block_size"] == w["block_size"]
        if w["probability"] is not None:
            assert abs(g["probability"] - w["probability"]) <= 1e-6
    errors = {Path(r["path"]).name for r in got if r["error"]}
    assert errors == set(BROKEN)
    assert any(r["block_size"] for r in got)  # the grid estimate ran somewhere
    assert "2 of 9 inputs failed" in capsys.readouterr().err


def test_input_list_text_and_parquet(cluster, folder, tmp_path):
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(str(p) for p in files) + "\n\n" + str(folder / "missing.png") + "\n")
    table = tmp_path / "list.parquet"
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"path": [str(p) for p in files]}), table)
    out_text, out_pq = tmp_path / "a.jsonl", tmp_path / "records"
    assert main(["detect", "--input-list", str(listing), "--engine", "ray", "-q", "-o", str(out_text)]) == 1
    got = _lines(out_text)
    assert [r["path"] for r in got] == [str(p) for p in files] + [str(folder / "missing.png")]
    assert got[-1]["error"] == f"{folder / 'missing.png'}: no such file"
    assert main(["detect", "--input-list", str(table), "--engine", "ray", "-q", "--format", "parquet",
                 "-o", str(out_pq)]) == 1
    rows = pq.read_table(out_pq).to_pylist()
    assert sorted(r["path"] for r in rows) == [str(p) for p in files]
    by_path = {r["path"]: r for r in got}
    for r in rows:
        assert r["error"] == by_path[r["path"]]["error"] and r["pixelated"] == by_path[r["path"]]["pixelated"]
    # the local engine reads the same list itself
    local = tmp_path / "local.jsonl"
    assert main(["detect", "--input-list", str(listing), "-q", "--format", "jsonl", "-o", str(local)]) == 1
    assert [r["path"] for r in _lines(local)] == [r["path"] for r in got]


def _outputs(root: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(root)): read_image(p).to_array() for p in sorted(root.rglob("*")) if p.is_file()}


def test_enhance_gives_the_local_images_and_skip_existing(cluster, folder, tmp_path):
    a, b = tmp_path / "local", tmp_path / "ray"
    args = ["-s", "2", "-q", "--format", "json"]
    assert main(["enhance", "-i", str(folder), "-o", str(a), *args, "--report", str(tmp_path / "a.json")]) == 1
    assert main(["enhance", "-i", str(folder), "-o", str(b), *args, "--report", str(tmp_path / "b.json"),
                 "--engine", "ray", "--batch-size", "3"]) == 1
    want, got = _outputs(a), _outputs(b)
    assert sorted(want) == sorted(got) and len(got) == 7
    for name in want:  # same pixels, same kind (gray, alpha, 16-bit kept)
        assert want[name].dtype == got[name].dtype and np.array_equal(want[name], got[name]), name
    local = json.loads((tmp_path / "a.json").read_text())
    remote = json.loads((tmp_path / "b.json").read_text())
    strip = lambda r: {k: (v.replace(str(b), str(a)) if isinstance(v, str) else v)  # noqa: E731
                       for k, v in r.items() if k != "seconds"}
    assert [strip(r) for r in remote] == [strip(r) for r in local]
    # resume: everything written is skipped, the broken files are still errors
    assert main(["enhance", "-i", str(folder), "-o", str(b), "-q", "-s", "2", "--skip-existing", "--engine", "ray",
                 "--report", str(tmp_path / "c.jsonl")]) == 1
    status = {Path(r["input"]).name: r["status"] for r in _lines(tmp_path / "c.jsonl")}
    assert sorted(k for k, v in status.items() if v == "error") == sorted(BROKEN)
    assert all(v == "skipped" for k, v in status.items() if k not in BROKEN)


def test_restore_gives_the_local_records(cluster, folder, tmp_path):
    args = ["-q", "--format", "json", "--threshold", "0.3"]
    assert main(["restore", "-i", str(folder), "-o", str(tmp_path / "a"), *args, "--report", str(tmp_path / "a.json")]) == 1
    assert main(["restore", "-i", str(folder), "-o", str(tmp_path / "b"), *args, "--report", str(tmp_path / "b.json"),
                 "--engine", "ray", "--workers", "2"]) == 1
    local = json.loads((tmp_path / "a.json").read_text())
    remote = json.loads((tmp_path / "b.json").read_text())
    keys = ("status", "action", "pixelated", "block_size", "size", "model")
    assert [[r.get(k) for k in keys] for r in remote] == [[r.get(k) for k in keys] for r in local]
    assert _outputs(tmp_path / "a").keys() == _outputs(tmp_path / "b").keys()


def test_a_killed_worker_is_retried_without_loss_or_duplicates(cluster, folder, tmp_path):
    """The first batch a worker takes writes one image, then the process dies (``os._exit``); Ray
    restarts the actor and runs the batch again: every record once, in order, every output there."""
    import ray.cloudpickle

    from deepclarity.engines.ray_engine import ImageWorker, RayJob

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    marker = tmp_path / "crashed"

    class CrashOnce(ImageWorker):
        def __call__(self, batch):
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                self.record(str(batch["path"][0]), str(batch["rel"][0]))  # one output written...
                os._exit(1)  # ...then the worker dies mid-batch
            return super().__call__(batch)

    files = sorted(p for p in folder.glob("*") if p.is_file())
    out = tmp_path / "out"
    job = RayJob("enhance", options={"options": {"model": "mobilesr", "outscale": 1.0}, "outdir": str(out),
                                     "suffix": "x"},
                 workers=2, batch_size=2, device="cpu", quiet=True, udf=CrashOnce)
    records = list(job.records([str(p) for p in files], rels=[p.name for p in files]))
    assert marker.exists()
    assert [r["input"] for r in records] == [str(p) for p in files]  # none lost, none twice
    assert {Path(r["input"]).name for r in records if r["status"] == "error"} == set(BROKEN)
    written = sorted(p.name for p in out.iterdir())
    assert written == sorted(Path(r["output"]).name for r in records if r["status"] == "written")
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_without_ray_one_line_says_how_to_install(folder, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)
    assert main(["detect", str(folder / "a.png"), "--engine", "ray"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "deepclarity: error: --engine ray needs Ray Data: pip install 'deepclarity[ray]'"
