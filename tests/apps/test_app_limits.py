"""The apps' limits: the per-request time limit (:class:`TimeLimit`, ``--time-limit``, stated on
both pages), and no access to files outside what was uploaded.

The time limit is checked with a slow function monkeypatched in-process, called directly and once
through ``gradio_client`` against a launched correction app. Path traversal is tried against the
same launched app: ``/gradio_api/file=`` requests for repository and system files, API requests
naming server paths instead of uploads, and an upload whose file name climbs out of the upload
folder. The app runs in this process (module-scoped) so the tests can patch it and see its
upload folder; weights are random ones in a temporary folder.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

gr = pytest.importorskip("gradio")
pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")  # Gradio's own event stats vs pandas 3

import deepclarity.apps as apps_pkg  # noqa: E402
from deepclarity.apps import correct_app as correct_mod  # noqa: E402
from deepclarity.apps import detect_app as detect_app_mod  # noqa: E402
from deepclarity.apps.correct_app import build_correct_app  # noqa: E402
from deepclarity.apps.detect_app import build_detect_app  # noqa: E402
from deepclarity.apps.server import (  # noqa: E402
    DEFAULT_TIME_LIMIT_S, EXAMPLES_DIR, TimeLimit, launch_app, parse_app_args, user_error,
)
from helpers import clear_model_caches, free_port, write_random_weights  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
MODELS = ("mobilesr", "detector-canny", "detector-rgb")
#: The launched app's limit: ample for a 40x30 bicubic request (~0.3 s) on a busy 2-core machine.
SERVER_LIMIT_S = 3.0


def _photo(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(path)
    return path


def _limits_text(app) -> str:
    texts = [b.value for b in app.blocks.values()
             if getattr(b, "elem_id", None) in ("limits", "models-and-limits")]
    assert len(texts) == 1
    return texts[0]


def _dep(app, api_name: str):
    (dep,) = [d for d in app.fns.values() if d.api_name == api_name]
    return dep


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    return write_random_weights(tmp_path_factory.mktemp("weights"), MODELS)


@pytest.fixture
def fresh_models(monkeypatch, weights_dir, tmp_path):
    """Random weights, models loaded afresh, results under ``tmp_path``."""
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(weights_dir))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    clear_model_caches()
    yield
    clear_model_caches()


@pytest.fixture
def release():
    """An event the slow functions wait on; always set at the end so no thread stays blocked."""
    event = threading.Event()
    yield event
    event.set()


# ------------------------------------------------------------------------------- TimeLimit itself


def test_time_limit_passes_results_and_errors_through():
    limit = TimeLimit(5)
    assert limit.run(lambda a, b=0: a + b, 40, b=2) == 42
    error = gr.Error("the library's own message")
    with pytest.raises(gr.Error) as exc:
        limit.run(lambda: (_ for _ in ()).throw(error))
    assert exc.value is error  # the same gr.Error, not wrapped
    with pytest.raises(ZeroDivisionError):
        limit.run(lambda: 1 / 0)
    assert limit.overdue == 0


def test_over_the_limit_the_user_is_told_at_once_and_overdue_work_does_not_pile_up(release):
    limit = TimeLimit(0.2, hint="Try a smaller image.")
    t0 = time.monotonic()
    with pytest.raises(gr.Error) as exc:
        limit.run(release.wait, 30)
    assert time.monotonic() - t0 < 5  # not the 30 s the work would take
    message = exc.value.message
    assert message.startswith("Time limit exceeded") and "0.2 s" in message and message.endswith("Try a smaller image.")
    assert "\n" not in message and exc.value.print_exception is False
    assert limit.overdue == 1

    # The next request does not start its work beside the overdue one: it waits, then is refused.
    started = []
    with pytest.raises(gr.Error, match="still finishing an earlier request that ran over the time limit"):
        limit.run(started.append, 1)
    assert started == []

    # A request arriving while the overdue work is about to end waits for it, then runs.
    threading.Timer(0.05, release.set).start()
    assert limit.run(lambda: "served") == "served"
    assert limit.wait_idle(5) and limit.overdue == 0


def test_work_that_finishes_in_time_is_never_marked_overdue():
    limit = TimeLimit(5)
    for _ in range(20):
        assert limit.run(time.sleep, 0.001) is None
    assert limit.overdue == 0 and limit.wait_idle(0)


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf")])
def test_a_limit_must_be_a_positive_number_of_seconds(seconds):
    with pytest.raises(ValueError, match="positive"):
        TimeLimit(seconds)


def test_time_limit_flag(monkeypatch):
    assert parse_app_args([]).time_limit == DEFAULT_TIME_LIMIT_S == 120
    assert parse_app_args(["--time-limit", "2.5"]).time_limit == 2.5
    for bad in ("0", "-5", "nan", "inf", "soon"):
        with pytest.raises(SystemExit):
            parse_app_args(["--time-limit", bad])


# ------------------------------------------------------------------------ the apps' event functions


def test_correct_app_events_time_out_and_the_app_recovers(fresh_models, monkeypatch, release, tmp_path):
    photo = str(_photo(tmp_path / "photo.png"))
    limit = TimeLimit(0.05)
    app = build_correct_app(device="cpu", examples=False, time_limit=limit)
    correct, enhance = _dep(app, "correct").fn, _dep(app, "enhance").fn

    slow_calls = []

    def slow(real):
        def wrapper(*args, **kwargs):
            slow_calls.append(args[0])
            release.wait(30)
            return real(*args, **kwargs)
        return wrapper

    real_correct, real_enhance = correct_mod.correct_image, correct_mod.enhance_image
    monkeypatch.setattr(correct_mod, "correct_image", slow(real_correct))
    monkeypatch.setattr(correct_mod, "enhance_image", slow(real_enhance))
    with pytest.raises(gr.Error, match=r"Time limit exceeded: processing took longer than 0\.05 s"):
        correct(photo, "auto", "bicubic", 1, 0, "keep")
    release.set()
    assert limit.wait_idle(30)
    release.clear()
    with pytest.raises(gr.Error, match=r"Time limit exceeded.*0\.05 s.*faster model"):
        enhance(photo, "bicubic", 2, 0)
    release.set()
    assert limit.wait_idle(30)
    assert len(slow_calls) == 2

    # The real functions again, with a limit they fit in: the same app serves normally.
    monkeypatch.setattr(correct_mod, "correct_image", real_correct)
    monkeypatch.setattr(correct_mod, "enhance_image", real_enhance)
    limit.seconds = 60
    _, png, info, region = correct(photo, "auto", "bicubic", 1, 0, "keep")
    assert Path(png).is_file() and "photo.png" in info and region is not None
    _, png, info = enhance(photo, "bicubic", 2, 0)
    with Image.open(png) as im:
        assert im.size == (80, 60)


def test_detect_app_event_times_out_and_the_app_recovers(fresh_models, monkeypatch, release, tmp_path):
    photo = str(_photo(tmp_path / "photo.png"))
    limit = TimeLimit(0.05)
    app = build_detect_app(device="cpu", examples=False, time_limit=limit)
    detect = _dep(app, "detect").fn
    real = detect_app_mod.detect_images

    def slow(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(detect_app_mod, "detect_images", slow)
    with pytest.raises(gr.Error, match=r"Time limit exceeded.*0\.05 s.*fewer or smaller images"):
        detect([photo], "canny", 0.5)
    release.set()
    assert limit.wait_idle(30)
    monkeypatch.setattr(detect_app_mod, "detect_images", real)
    limit.seconds = 60
    gallery, summary, records = detect([photo], "canny", 0.5)
    assert len(gallery) == 1 and records[0]["file"] == "photo.png" and records[0]["error"] is None


def test_both_pages_state_the_limits_and_the_flags_reach_them(fresh_models, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    import correct_app
    import detect_app

    launched = []
    monkeypatch.setattr(apps_pkg, "launch_app", lambda app, args, **kw: launched.append(app))
    argv = ["--time-limit", "33", "--max-file-size", "7mb", "--device", "cpu"]
    assert detect_app.main(argv) == 0 and correct_app.main(argv) == 0
    detect_page, correct_page = (_limits_text(app) for app in launched)
    for text in (detect_page, correct_page):
        assert "33 s of processing per request" in text
    assert "uploads up to 7mb each" in detect_page and "32 images per request" in detect_page
    assert "images up to 100 MP" in detect_page
    assert "uploads up to 7mb" in correct_page and "inputs up to 2 MP" in correct_page
    # The defaults, as built by the library.
    assert f"{DEFAULT_TIME_LIMIT_S:g} s of processing per request" in _limits_text(
        build_detect_app(device="cpu", preload=False, examples=False))


def test_correct_and_enhance_share_one_concurrency_group(fresh_models):
    # Two events with their own limits would compute two requests at once on the same models.
    app = build_correct_app(device="cpu", preload=False, examples=False)
    groups = {f.api_name: f.concurrency_id for f in app.fns.values() if f.api_name in ("correct", "enhance")}
    assert set(groups) == {"correct", "enhance"} and groups["correct"] == groups["enhance"]


def test_errors_stay_on_the_page_until_closed():
    err = user_error("photo.png: not a recognized image\n(details)")
    assert err.duration is None and err.message == "photo.png: not a recognized image (details)"


# ------------------------------------------------------------------------------ a launched app


@pytest.fixture(scope="module")
def server(tmp_path_factory, weights_dir):
    """The correction app launched in this process on loopback with a short time limit; its own
    upload folder (``GRADIO_TEMP_DIR``) and results folder, inside one temporary root."""
    from gradio_client import Client

    root = tmp_path_factory.mktemp("server")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DEEPCLARITY_WEIGHTS", str(weights_dir))
        mp.setenv("GRADIO_TEMP_DIR", str(root / "uploads"))
        mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
        mp.delenv("GRADIO_SERVER_NAME", raising=False)
        (root / "results").mkdir()
        mp.setattr(tempfile, "tempdir", str(root / "results"))
        clear_model_caches()
        limit = TimeLimit(SERVER_LIMIT_S)
        app = build_correct_app(device="cpu", examples=False, time_limit=limit)
        args = parse_app_args(["--port", str(free_port()), "--device", "cpu"])
        assert args.host == "127.0.0.1"
        try:
            _, url, _ = launch_app(app, args, prevent_thread_lock=True, quiet=True)
            client = Client(url, verbose=False, download_files=str(root / "downloads"), analytics_enabled=False)
            try:
                state = dict(app=app, url=url, client=client, limit=limit, root=root,
                             uploads=Path(app.server_app.uploaded_file_dir), photo=_photo(root / "photo.png"))
                limit.seconds = 120  # a first request warms up (lazy imports) without the short limit
                _good_request(state)
                limit.seconds = SERVER_LIMIT_S
                yield state
            finally:
                client.close()
        finally:
            app.close()
            clear_model_caches()


def _good_request(server) -> None:
    """A small image through /correct: must succeed."""
    from gradio_client import handle_file

    job = server["client"].submit(handle_file(str(server["photo"])), "upscale", "bicubic", 2, 0, "keep",
                                  api_name="/correct")
    _, png, info, _ = job.result(timeout=60)
    with Image.open(png) as im:
        assert im.size == (80, 60)
    assert "photo.png" in info


def test_time_limit_through_gradio_client(server, monkeypatch, release):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    client, limit = server["client"], server["limit"]
    _good_request(server)
    slow_file = _photo(server["root"] / "slow.png", seed=1)
    real = correct_mod.correct_image

    def correct_image(file, *args, **kwargs):
        if Path(file).name == "slow.png":
            release.wait(60)
        return real(file, *args, **kwargs)

    monkeypatch.setattr(correct_mod, "correct_image", correct_image)
    t0 = time.monotonic()
    with pytest.raises(AppError) as exc:
        client.submit(handle_file(str(slow_file)), "upscale", "bicubic", 2, 0, "keep",
                      api_name="/correct").result(timeout=60)
    assert time.monotonic() - t0 < SERVER_LIMIT_S + 20
    assert str(exc.value).startswith(f"Time limit exceeded: processing took longer than {SERVER_LIMIT_S:g} s")
    assert "Traceback" not in str(exc.value) and limit.overdue == 1

    # While the overdue request still computes, the next one is not started beside it.
    with pytest.raises(AppError, match="still finishing an earlier request"):
        _good_request(server)
    release.set()
    assert limit.wait_idle(60)
    _good_request(server)  # the server answers normally again


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _upload(url: str, filename: str, content: bytes) -> list[str]:
    """POST one file to Gradio's upload route under ``filename`` (as a hostile client would)."""
    boundary = secrets.token_hex(16)
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n").encode()
    body = head + content + f"\r\n--{boundary}--\r\n".encode()
    req = urllib.request.Request(url + "gradio_api/upload", data=body,
                                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def _raw_predict(server, api_name: str, data: list) -> dict:
    """Send ``data`` through the queue as-is (no client-side upload of local paths, which is what
    ``gradio_client`` would do with them), and return the final message."""
    url, app = server["url"], server["app"]
    fn_index = next(i for i, d in app.fns.items() if d.api_name == api_name)
    session = secrets.token_hex(8)
    req = urllib.request.Request(
        url + "gradio_api/queue/join", headers={"Content-Type": "application/json"},
        data=json.dumps({"data": data, "fn_index": fn_index, "session_hash": session,
                         "event_data": None, "trigger_id": None}).encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
    with urllib.request.urlopen(f"{url}gradio_api/queue/data?session_hash={session}", timeout=60) as resp:
        for raw in resp:
            line = raw.decode().strip()
            if line.startswith("data:"):
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    return msg
    raise AssertionError("the queue closed without a result")


#: Files that exist on the server and must never be served or read: (path as requested, a
#: line of the file that must not appear in any answer).
def _secrets() -> list[tuple[str, bytes]]:
    readme = (REPO / "README.md").read_bytes().splitlines()[0]
    code = b"class TimeLimit:"
    example = sorted((EXAMPLES_DIR / "detect").glob("*.png"))[0]
    out = [(str(REPO / "README.md"), readme), ("README.md", readme), ("./README.md", readme),
           ("deepclarity/apps/server.py", code), (str(REPO / "deepclarity" / "apps" / "server.py"), code),
           (str(example), example.read_bytes()[200:264]),
           ("examples/detect/" + example.name, example.read_bytes()[200:264])]
    if Path("/etc/passwd").is_file():
        out.append(("/etc/passwd", b"root:"))
    return out


def test_file_route_serves_nothing_but_uploads_and_results(server, monkeypatch):
    monkeypatch.chdir(REPO)  # "the working directory" is the repository, as with `python correct_app.py`
    url, uploads = server["url"], server["uploads"]
    # Control: the route works, for a file that was uploaded.
    (uploaded,) = _upload(url, "control.png", server["photo"].read_bytes())
    status, body = _get(f"{url}gradio_api/file={uploaded}")
    assert status == 200 and body == server["photo"].read_bytes()

    depth = "../" * (len(uploads.parts) + 2)
    for path, secret in _secrets():
        name = Path(path).name
        variants = [f"gradio_api/file={path}", f"gradio_api/file/{path}", f"file={path}", path,
                    f"gradio_api/file={uploads}/../../{path}",
                    f"gradio_api/file={Path(uploaded).parent}/{depth}{path.lstrip('/')}",
                    f"gradio_api/file=..%2F..%2F{path}", f"static/../{name}", f"assets/..%2F..%2F{name}"]
        if not path.startswith("/"):
            variants.append(f"gradio_api/file={depth}{REPO.relative_to('/')}/{path}")
        for variant in variants:
            status, body = _get(url + variant)
            assert status != 200 or secret not in body, (variant, status, body[:200])
            assert secret not in body, variant


def test_api_cannot_name_server_files_instead_of_uploads(server, monkeypatch):
    monkeypatch.chdir(REPO)
    calls = []
    real = correct_mod.correct_image

    def correct_image(file, *args, **kwargs):
        calls.append(Path(file).resolve())
        return real(file, *args, **kwargs)

    monkeypatch.setattr(correct_mod, "correct_image", correct_image)
    secrets_ = _secrets()
    paths = [p for p, _ in secrets_] + ["../README.md", f"{server['uploads']}/../../../README.md",
                                         str(server["root"] / "photo.png"), "/nonexistent/missing.png", "/tmp"]
    for path in paths:
        named = {"path": path, "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}}
        msg = _raw_predict(server, "correct", [named, "upscale", "bicubic", 2, 0, "keep"])
        assert msg["success"] is False, (path, msg)
        text = json.dumps(msg).encode()
        assert not any(secret in text for _, secret in secrets_), path
        _good_request(server)  # still answering
    # Only the good requests' uploads ever reached the app; the named files were never read.
    assert len(calls) == len(paths)
    assert all(f.is_relative_to(server["uploads"].resolve()) for f in calls), calls


def test_uploaded_file_names_cannot_climb_out_of_the_upload_folder(server):
    url, uploads, root = server["url"], server["uploads"], server["root"]
    token = secrets.token_hex(4)
    png = server["photo"].read_bytes()
    names = [f"../../evil-{token}.png", f"..\\..\\evil-{token}b.png", f"/tmp/evil-{token}c.png",
             f"%2e%2e%2fevil-{token}d.png", f"../../../../../../../../tmp/evil-{token}e.png"]
    for name in names:
        (stored,) = _upload(url, name, png)
        stored = Path(stored).resolve()
        assert stored.is_relative_to(uploads.resolve()), (name, stored)
        assert ".." not in stored.parts and stored.read_bytes() == png
    everything = {p.resolve() for p in root.rglob(f"*evil-{token}*")}
    assert everything and all(p.is_relative_to(uploads.resolve()) for p in everything), everything
    assert not list(Path(tempfile.gettempdir()).glob(f"*evil-{token}*"))
    assert not list(Path("/tmp").glob(f"*evil-{token}*"))

    # Processed with a hostile original name, the result lands in the app's own results folder.
    msg = _raw_predict(server, "correct", [{"path": str(stored), "orig_name": f"../../evil-{token}.png",
                                            "meta": {"_type": "gradio.FileData"}}, "upscale", "bicubic", 2, 0, "keep"])
    assert msg["success"] is True, msg
    download = Path(msg["output"]["data"][1]["path"]).resolve()
    assert download.is_relative_to(uploads.resolve())  # Gradio's copy, served from its cache
    assert download.name.endswith("_bicubic_x2.png") and ".." not in download.name
    results = list((root / "results").rglob("*_bicubic_x2.png"))
    assert any(p.name == download.name for p in results)
    assert all(p.resolve().is_relative_to((root / "results").resolve()) for p in results)
