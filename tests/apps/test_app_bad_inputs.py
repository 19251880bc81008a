"""The bad-input corpus (``bad_inputs`` in conftest) through both apps' endpoints with
``gradio_client``.

Every corpus file goes through ``/detect``, ``/correct`` (Restore mode) and ``/enhance``, each bad
request followed by a good one that must succeed. The answer must be a correct result (readable
files) or one clear message naming the file and the problem (refused files): never a traceback,
never a server path, never an "unexpected error", never a hang (every call has a deadline).
Files that cannot be uploaded at all (a directory, a missing file, one this user cannot read) are
refused by ``gradio_client`` before anything is sent, with an error naming them; the server then
still answers. (Sending a server path in their place is refused by Gradio itself:
``tests/apps/test_app_limits.py``.)

Each app is launched once for the module, in this process, on loopback; weights are random ones
in a temporary folder (plumbing, not accuracy).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from deepclarity.apps.correct_app import build_correct_app  # noqa: E402
from deepclarity.apps.detect_app import build_detect_app  # noqa: E402
from deepclarity.apps.server import launch_app, parse_app_args  # noqa: E402
from helpers import clear_model_caches, free_port, write_random_weights  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")  # Gradio's own event stats vs pandas 3

REPO = Path(__file__).resolve().parents[2]
#: Seconds any one request may take before the test calls it a hang.
DEADLINE_S = 120
#: What a message must never contain: a traceback, an unexpected-error line, a server path.
FORBIDDEN = re.compile(r"Traceback|unexpected|File \"|/(?:tmp|home|root|work|var|usr|etc|proc)/", re.I)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Random weights, an own results and upload folder, for the whole module."""
    root = tmp_path_factory.mktemp("bad_inputs_apps")
    weights = write_random_weights(root / "weights", ("mobilesr", "detector-canny", "detector-rgb"))
    (root / "results").mkdir()
    good = root / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(good)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPCLARITY_WEIGHTS", str(weights))
        mp.setenv("GRADIO_TEMP_DIR", str(root / "uploads"))
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        mp.setattr(tempfile, "tempdir", str(root / "results"))
        clear_model_caches()
        yield {"root": root, "good": good}
        clear_model_caches()


def _launch(build, root: Path):
    from gradio_client import Client

    app = build(device="cpu", examples=False)
    args = parse_app_args(["--host", "127.0.0.1", "--port", str(free_port()), "--device", "cpu"])
    _, url, _ = launch_app(app, args, prevent_thread_lock=True, quiet=True)
    # Results are not downloaded: the server is this process, its files are read where they are.
    client = Client(url, verbose=False, download_files=False, analytics_enabled=False)
    return app, client


@pytest.fixture(scope="module")
def detect_client(env):
    app, client = _launch(build_detect_app, env["root"])
    yield client
    client.close()
    app.close()


@pytest.fixture(scope="module")
def correct_client(env):
    app, client = _launch(build_correct_app, env["root"])
    yield client
    client.close()
    app.close()


def _uploadable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.R_OK)


def _call(client, api_name: str, args: tuple):
    return client.submit(*args, api_name=api_name).result(timeout=DEADLINE_S)


def _check_refusal(message: str, name: str, fragments: tuple[str, ...], server_paths: list[str]) -> str | None:
    """Why ``message`` is not one clear line naming ``name`` and the problem (None when it is)."""
    if name not in message:
        return "the file is not named"
    if not any(f in message.lower() for f in fragments):
        return f"none of {fragments} in it"
    if "\n" in message:
        return "more than one line"
    if FORBIDDEN.search(message) or any(p in message for p in server_paths):
        return "a traceback, an unexpected error or a server path"
    return None


def _through(client, api_name: str, make_args, check_result, good_args, bad_inputs, env, capfd, caplog) -> None:
    """Every corpus file through ``api_name``, each followed by a good request; all the problems
    are collected, then reported together. Nothing may reach the server's log as an error (the
    apps log unexpected exceptions there) and no traceback may be printed."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    server_paths = [str(bad_inputs.root), str(env["root"]), tempfile.gettempdir(), str(REPO)]
    problems, outcomes = [], {}
    assert len(bad_inputs) >= 20 and bad_inputs.refused and bad_inputs.readable
    for name in sorted(bad_inputs):
        entry, path = bad_inputs.entries[name], bad_inputs[name]
        if not _uploadable(path):  # refused on the client side, nothing is sent
            with pytest.raises((OSError, ValueError)) as exc:  # FileNotFoundError, IsADirectoryError, ...
                _call(client, api_name, make_args(handle_file(str(path))))
            assert not isinstance(exc.value, AppError), exc.value  # not the server's answer
            outcomes[name] = "not uploadable"
            if name not in str(exc.value):
                problems.append(f"{name}: the client's error does not name it: {exc.value}")
        else:
            try:
                result = _call(client, api_name, make_args(handle_file(str(path))))
            except AppError as exc:
                message = str(exc)
                outcomes[name] = f"refused: {message}"
                if entry.readable:
                    problems.append(f"{name}: a readable file was refused: {message}")
                elif why := _check_refusal(message, name, entry.error, server_paths):
                    problems.append(f"{name}: {why}: {message!r}")
            else:
                outcomes[name] = "ok"
                if not entry.readable:
                    problems.append(f"{name}: a file that must be refused gave a result")
                elif why := check_result(name, entry, result):
                    problems.append(f"{name}: wrong result: {why}")
        try:  # the server still answers
            if why := check_result("good.png", None, _call(client, api_name, good_args(handle_file(str(env["good"]))))):
                problems.append(f"after {name}: the good request's result is wrong: {why}")
        except Exception as exc:  # noqa: BLE001 - reported with the others
            problems.append(f"after {name}: the good request failed: {type(exc).__name__}: {exc}")
    printed = capfd.readouterr()
    if "Traceback" in printed.err + printed.out:
        problems.append("a traceback was printed:\n" + (printed.err + printed.out)[-3000:])
    problems += [f"logged: {r.levelname} {r.getMessage()}" for r in caplog.records if r.levelno >= logging.ERROR]
    report = "\n".join(f"  {k}: {v}" for k, v in outcomes.items())
    assert not problems, "\n".join(problems) + "\n\nall outcomes:\n" + report


def _file(value) -> Path:
    """The server-side path of a file output (``download_files=False`` gives ``FileData`` dicts)."""
    return Path(value["path"] if isinstance(value, dict) else value)


def _plain(markdown: str) -> str:
    """Markdown without its escapes (file names are escaped in the summaries: ``exif\\_rot6``)."""
    return markdown.replace("\\", "")


def _size(entry, scale: float = 1) -> tuple[int, int]:
    w, h = entry.expect["size"] if entry is not None else (40, 30)
    return round(w * scale), round(h * scale)


# ------------------------------------------------------------------------------------- the tests


@pytest.mark.slow
def test_every_corpus_file_through_detect(capfd, caplog, detect_client, bad_inputs, env):
    def check(name, entry, result):
        gallery, summary, records = result
        (rec,) = records
        if rec["file"] != name or rec["error"] is not None or rec["verdict"] not in ("PIXELATED", "clean"):
            return f"record {rec}"
        if (rec["width"], rec["height"]) != _size(entry):
            return f"size {(rec['width'], rec['height'])}"
        if len(gallery) != 1 or not _file(gallery[0]["image"]).is_file() or name not in _plain(summary):
            return "no region map or no summary line"
        return None

    _through(detect_client, "/detect", lambda f: ([f], "canny", 0.5), check, lambda f: ([f], "canny", 0.5),
             bad_inputs, env, capfd, caplog)


@pytest.mark.slow
def test_every_corpus_file_through_correct_restore(capfd, caplog, correct_client, bad_inputs, env):
    def check(name, entry, result):
        pair, png, info, region = result
        png = _file(png)
        with Image.open(png) as im:
            if im.size != _size(entry):
                return f"download size {im.size}"
        if Path(png).name != f"{Path(name).stem}_restored_bicubic.png" or name not in _plain(info):
            return f"download {Path(png).name!r} or summary {info[:80]!r}"
        if len(pair) != 2 or region is None or not _file(region).is_file():
            return "no before/after pair or no region map"
        return None

    args = lambda f: (f, "auto", "bicubic", 1, 0, "keep")  # noqa: E731
    _through(correct_client, "/correct", args, check, args, bad_inputs, env, capfd, caplog)


@pytest.mark.slow
def test_every_corpus_file_through_enhance(capfd, caplog, correct_client, bad_inputs, env):
    def check(name, entry, result):
        pair, png, info = result
        png = _file(png)
        with Image.open(png) as im:
            if im.size != _size(entry, 4):
                return f"download size {im.size}"
        if Path(png).name != f"{Path(name).stem}_mobilesr_x4.png" or name not in _plain(info) or len(pair) != 2:
            return f"download {Path(png).name!r} or summary {info[:80]!r}"
        return None

    # MobileSR at its native x4: bicubic to another size builds a dense resize matrix per axis,
    # which takes ~15 s for tall.png (1x10000); see the report on deepclarity.degrade.imresize.
    args = lambda f: (f, "mobilesr", 4, 0)  # noqa: E731
    _through(correct_client, "/enhance", args, check, args, bad_inputs, env, capfd, caplog)
