"""A miniature data manifest and a fake upstream server on 127.0.0.1 for the ``deepclarity data``
tests (imported as ``datasets_mini``; pytest puts tests/ on sys.path). Nothing here touches the
network beyond loopback; every image is generated.

:func:`build_mini` writes, under a folder: ``staged/`` (the files as they should end up, plus the
shared-layout ``MANIFEST.json`` describing them) and ``manifest.json.gz`` (the shipped layout, made
by ``tools/build_manifest.py`` from that ``MANIFEST.json``). Each transform string of the real
manifest is represented, with staged files computed here independently of the library.
:class:`Upstream` serves the upstream files as ``/<owner>/<repo>/<commit>/<path>``, counts requests
per path and can inject faults (``corrupt``, ``truncate``, ``404``, ``500``) per request.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, unquote

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
REPO = "someone/pictures"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def load_build_manifest():
    """``tools/build_manifest.py`` as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("build_manifest", ROOT / "tools" / "build_manifest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def pixels(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as im:
        return sha(im.convert("RGB").tobytes())


def _noise(rng, h: int, w: int, c: int) -> np.ndarray:
    base = rng.integers(0, 256, size=(h // 4 + 1, w // 4 + 1, c), dtype=np.uint8)
    return np.ascontiguousarray(base.repeat(4, 0).repeat(4, 1)[:h, :w].squeeze())


@dataclass
class Mini:
    root: Path
    staged: Path                       # the expected datasets root (files + MANIFEST.json)
    shared_manifest: Path              # staged/MANIFEST.json (shared layout)
    manifest: Path                     # manifest.json.gz (shipped layout)
    upstream: dict[str, bytes] = field(default_factory=dict)  # URL path -> body
    url_path: dict[str, str] = field(default_factory=dict)    # staged path -> URL path

    @property
    def paths(self) -> list[str]:
        return sorted(self.url_path)


def build_mini(root: Path) -> Mini:
    rng = np.random.default_rng(0)
    staged = root / "staged"
    mini = Mini(root, staged, staged / "MANIFEST.json", root / "manifest.json.gz")
    shared: dict[str, list[dict]] = {}

    def add(set_name: str, file: str, source: str, up: bytes, out: bytes, transform: str) -> None:
        with Image.open(io.BytesIO(out)) as im:
            mode, size = im.mode, list(im.size)
        target = staged / Path(set_name).parent / file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(out)
        shared.setdefault(set_name, []).append({
            "file": file, "source": f"{REPO}:{source}", "size": size, "mode": mode, "commit": COMMIT,
            "upstream_sha256": sha(up), "sha256": sha(out), "pixels_sha256": pixels(out), "transform": transform})
        url = f"/{REPO}/{COMMIT}/{quote(source)}"
        mini.upstream[url] = up
        mini.url_path[(Path(set_name).parent / file).as_posix()] = url

    png = lambda im: encode(im, "PNG", optimize=True)  # noqa: E731  (what the staging wrote)
    jpeg = encode(Image.fromarray(_noise(rng, 30, 40, 3)), "JPEG", quality=90)
    add("train/photos", "photos/a.jpg", "img/a.jpg", jpeg, jpeg, "copy")
    rgba = encode(Image.fromarray(_noise(rng, 20, 24, 4), "RGBA"), "PNG")
    add("train/photos", "photos/b.png", "img/b.png", rgba, rgba, "copy")
    bmp_im = Image.fromarray(_noise(rng, 18, 22, 3))
    add("train/bmp", "bmp/c.png", "data/c.bmp", encode(bmp_im, "BMP"), png(bmp_im),
        "decode bmp, save PNG (pixels unchanged)")
    big = Image.fromarray(_noise(rng, 48, 66, 3))
    big_jpeg = encode(big, "JPEG", quality=95)
    with Image.open(io.BytesIO(big_jpeg)) as im:
        small = im.convert("RGB").resize((33, 24), Image.Resampling.BICUBIC, reducing_gap=None)
    add("train/big", "big/d.png", "raw/d.JPG", big_jpeg, png(small),
        "rgb, downscale 1/2 with PIL BICUBIC (reducing_gap=None), PNG")
    gray = Image.fromarray(_noise(rng, 16, 16, 1), "L")
    add("benchmark/Tiny", "Tiny/e.png", "sets/e.png", encode(gray, "PNG", compress_level=1), png(gray),
        "decode png, save PNG (pixels unchanged)")
    tif = Image.fromarray(_noise(rng, 12, 14, 3))
    add("benchmark/Tiny", "Tiny/f.png", "sets/f.tif", encode(tif, "TIFF"), png(tif),
        "decode tif, save PNG (pixels unchanged)")
    odd = encode(Image.fromarray(_noise(rng, 10, 10, 3)), "PNG")
    add("benchmark/Tiny", "Tiny/g.png", "sets/carpenter's kit.png", odd, odd, "copy")

    mini.shared_manifest.write_text(json.dumps(shared, indent=1))
    tool = load_build_manifest()
    mini.manifest.write_bytes(tool.encode(tool.build(mini.shared_manifest)))
    return mini


class Upstream:
    """The upstream files over HTTP on 127.0.0.1 (a thread), with request counts and faults."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.requests: Counter[str] = Counter()
        self.faults: dict[str, list[str]] = defaultdict(list)
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                path = self.path
                with owner._lock:
                    owner.requests[unquote(path)] += 1
                    fault = owner.faults[path].pop(0) if owner.faults.get(path) else None
                body = owner.files.get(path)
                if body is None or fault == "404":
                    self.send_error(404)
                    return
                if fault == "500":
                    self.send_error(500)
                    return
                if fault == "corrupt":
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def count(self, url_path: str) -> int:
        return self.requests[unquote(url_path)]

    @property
    def total(self) -> int:
        return sum(self.requests.values())

    def __enter__(self) -> "Upstream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
