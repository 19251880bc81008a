"""Shared fixtures and helpers for the test suite.

The main fixture is :func:`bad_inputs`: a corpus of awkward image files (broken, hostile,
unusual but valid) generated once per test session in a temporary folder. Nothing in it is
committed to the repository; every file is built here from NumPy / Pillow / OpenCV.

Typical uses::

    def test_every_refused_input(bad_inputs):
        for name in bad_inputs.refused:
            with pytest.raises(ImageError, match=re.escape(name)):
                read_image(bad_inputs[name])

    def test_every_good_input(bad_inputs):
        for name in bad_inputs.readable:
            read_image(bad_inputs[name])

``bad_inputs`` is a ``dict`` (name -> :class:`~pathlib.Path`) with extra attributes:

* ``bad_inputs.entries[name]`` -> :class:`CorpusEntry` (what is expected of that file);
* ``bad_inputs.readable`` / ``bad_inputs.refused`` -> sorted lists of names;
* ``bad_inputs.arrays[name]`` -> the exact pixels a good file must decode to, where known.

The corpus is session-scoped and shared: tests must never modify, move or delete its files
(copy one into ``tmp_path`` first if a test needs to write over it).

Helpers importable from test modules (``from conftest import ...``): :func:`png_chunk`,
:func:`png_header_only`, :func:`encode_png`, :func:`encode_pil`, :func:`noise`,
:func:`tmp_leftovers`.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

# --------------------------------------------------------------------------------------- helpers


def noise(shape: tuple[int, ...], dtype=np.uint8, seed: int = 0) -> np.ndarray:
    """Deterministic random pixels covering the full range of ``dtype``."""
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max
    return rng.integers(0, top, size=shape, endpoint=True, dtype=dtype)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data and the CRC over type + data."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_header_only(width: int, height: int, *, bit_depth: int = 8, color_type: int = 2) -> bytes:
    """A syntactically valid PNG whose IHDR claims ``width x height`` but whose IDAT holds only
    a few bytes: the classic decompression bomb. Reading it must be refused from the header;
    decoding it would allocate ``width * height * channels`` bytes.
    """
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def encode_png(arr: np.ndarray) -> bytes:
    """PNG bytes via OpenCV (keeps ``uint16``). NB: OpenCV takes channels as BGR(A)."""
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr))
    assert ok, "cv2.imencode failed"
    return buf.tobytes()


def encode_pil(im: Image.Image, fmt: str, **params) -> bytes:
    """Bytes of ``im`` saved by Pillow in ``fmt`` with ``params``."""
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def tmp_leftovers(folder: Path) -> list[Path]:
    """Temporary files :func:`deepclarity.io.write_image` may leave behind (``.<name>.*.tmp``)."""
    return sorted(folder.glob(".*.tmp"))


# --------------------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class CorpusEntry:
    """What one corpus file is and what reading it must do.

    Attributes:
        name: file name inside the corpus folder (also the key in the fixture).
        path: where it is.
        readable: True when ``read_image`` must decode it, False when it must raise ImageError.
        error: for refused files, lower-case fragments of which at least one must appear in the
            error message (besides the file name, which must always appear).
        expect: for readable files, attributes of the :class:`LoadedImage`: ``size`` (W, H),
            ``dtype``, ``grayscale``, ``alpha`` (bool: has alpha), ``frames``, ``format``.
        note: why the file is there.
    """

    name: str
    path: Path
    readable: bool
    error: tuple[str, ...] = ()
    expect: dict = field(default_factory=dict)
    note: str = ""


class Corpus(dict):
    """``dict`` name -> Path, plus ``entries``, ``readable``, ``refused`` and ``arrays``."""

    def __init__(self, entries: dict[str, CorpusEntry], arrays: dict[str, np.ndarray], root: Path):
        super().__init__({name: e.path for name, e in entries.items()})
        self.entries = entries
        self.arrays = arrays
        self.root = root
        self.readable = sorted(n for n, e in entries.items() if e.readable)
        self.refused = sorted(n for n, e in entries.items() if not e.readable)


def _build_corpus(root: Path) -> Corpus:
    entries: dict[str, CorpusEntry] = {}
    arrays: dict[str, np.ndarray] = {}

    def good(name: str, data: bytes | None, note: str, **expect) -> Path:
        path = root / name
        if data is not None:
            path.write_bytes(data)
        entries[name] = CorpusEntry(name, path, True, (), expect, note)
        return path

    def bad(name: str, data: bytes | None, note: str, *error: str) -> Path:
        path = root / name
        if data is not None:
            path.write_bytes(data)
        entries[name] = CorpusEntry(name, path, False, tuple(error), {}, note)
        return path

    rgb = noise((48, 64, 3), seed=1)  # noise: compresses badly, so half a file is half the data
    png_rgb = encode_pil(Image.fromarray(rgb), "PNG")
    jpg_rgb = encode_pil(Image.fromarray(rgb), "JPEG", quality=90)

    # ---- refused ---------------------------------------------------------------------------
    bad("empty.png", b"", "zero bytes", "empty", "0 bytes")
    bad("truncated.png", png_rgb[: len(png_rgb) // 2], "valid PNG cut in half",
        "truncated", "corrupt")
    bad("truncated.jpg", jpg_rgb[: len(jpg_rgb) // 2], "valid JPEG cut in half",
        "truncated", "corrupt")
    rgb16_for_cut = noise((32, 32, 3), np.uint16, seed=2)
    png16 = encode_png(rgb16_for_cut)
    bad("truncated16.png", png16[: len(png16) // 2], "16-bit RGB PNG cut in half (OpenCV path)",
        "truncated", "corrupt")
    bad("text.png", b"hello, I am plain text pretending to be a PNG\n" * 4,
        "text with an image extension", "not a recognized image")
    bad("page.jpg", b"<!DOCTYPE html>\n<html><head><title>404</title></head>"
        b"<body>Not Found</body></html>\n", "an HTML error page saved as .jpg",
        "not a recognized image")
    bad("bomb.png", png_header_only(50_000, 50_000),
        "IHDR claims 50000x50000 (2.5 Gpx), IDAT is a few bytes", "limit")
    bad("bomb_12000.png", png_header_only(12_000, 12_000),
        "IHDR claims 12000x12000 = 144 Mpx: above our default 100 Mpx, below Pillow's own cap",
        "limit")
    bad("icon.ico", encode_pil(Image.new("RGB", (16, 16), (1, 2, 3)), "ICO"),
        "an image format Pillow knows but deepclarity does not take", "unsupported image format")
    folder = root / "folder.png"
    folder.mkdir()
    bad("folder.png", None, "a directory with an image extension", "directory")
    bad("missing.png", None, "does not exist (never created)", "no such file")

    # chmod 000: refused for ordinary users; root reads anything, so there it is a good file.
    unreadable_data = encode_pil(Image.new("RGB", (4, 4), (9, 9, 9)), "PNG")
    if os.geteuid() == 0:
        p = good("unreadable.png", unreadable_data, "chmod 000 (readable anyway: running as root)",
                 size=(4, 4), dtype="uint8", grayscale=False, alpha=False, frames=1, format="PNG")
    else:
        p = bad("unreadable.png", unreadable_data, "chmod 000", "permission denied")
    p.chmod(0)

    # ---- readable --------------------------------------------------------------------------
    arrays["tiny.png"] = np.array([[[10, 200, 30]]], np.uint8)
    good("tiny.png", encode_pil(Image.fromarray(arrays["tiny.png"]), "PNG"), "1x1 RGB",
         size=(1, 1), dtype="uint8", grayscale=False, alpha=False, frames=1, format="PNG")

    arrays["tall.png"] = noise((10_000, 1, 3), seed=3)
    good("tall.png", encode_pil(Image.fromarray(arrays["tall.png"]), "PNG"),
         "1 pixel wide, 10000 tall", size=(1, 10_000), dtype="uint8", grayscale=False,
         alpha=False, frames=1, format="PNG")

    arrays["rgb.png"] = rgb
    good("rgb.png", png_rgb, "plain 8-bit RGB", size=(64, 48), dtype="uint8", grayscale=False,
         alpha=False, frames=1, format="PNG")

    rgb16 = noise((24, 32, 3), np.uint16, seed=4)
    arrays["rgb16.png"] = rgb16
    good("rgb16.png", encode_png(rgb16[..., ::-1]), "16-bit RGB written by OpenCV",
         size=(32, 24), dtype="uint16", grayscale=False, alpha=False, frames=1, format="PNG")

    rgba16 = noise((24, 32, 4), np.uint16, seed=5)
    arrays["rgba16.png"] = rgba16
    good("rgba16.png", encode_png(rgba16[..., [2, 1, 0, 3]]), "16-bit RGBA written by OpenCV",
         size=(32, 24), dtype="uint16", grayscale=False, alpha=True, frames=1, format="PNG")

    gray16 = noise((24, 32), np.uint16, seed=6)
    arrays["gray16.png"] = gray16
    good("gray16.png", encode_png(gray16), "16-bit grayscale written by OpenCV",
         size=(32, 24), dtype="uint16", grayscale=True, alpha=False, frames=1, format="PNG")

    gray = noise((24, 32), seed=7)
    arrays["gray.png"] = gray
    good("gray.png", encode_pil(Image.fromarray(gray, "L"), "PNG"), "8-bit grayscale (L)",
         size=(32, 24), dtype="uint8", grayscale=True, alpha=False, frames=1, format="PNG")

    rgba = noise((24, 32, 4), seed=8)
    arrays["rgba.png"] = rgba
    good("rgba.png", encode_pil(Image.fromarray(rgba, "RGBA"), "PNG"), "8-bit RGBA",
         size=(32, 24), dtype="uint8", grayscale=False, alpha=True, frames=1, format="PNG")

    la = noise((24, 32, 2), seed=9)
    arrays["la.png"] = la
    good("la.png", encode_pil(Image.fromarray(la, "LA"), "PNG"), "8-bit gray + alpha (LA)",
         size=(32, 24), dtype="uint8", grayscale=True, alpha=True, frames=1, format="PNG")

    # Palette: index 0 = red (transparent), 1 = green, 2 = blue; left half index 0.
    idx = np.zeros((16, 20), np.uint8)
    idx[:, 10:] = 1
    idx[8:, 10:] = 2
    pal = Image.fromarray(idx, "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * (253 * 3))
    arrays["palette_trns.png"] = idx
    good("palette_trns.png", encode_pil(pal, "PNG", transparency=0),
         "palette (P) with index 0 transparent (tRNS); the array is the index map",
         size=(20, 16), dtype="uint8", grayscale=False, alpha=True, frames=1, format="PNG")

    cmyk = np.zeros((16, 24, 4), np.uint8)
    cmyk[:, :12, 0] = 255  # left half pure cyan, right half white (all inks 0)
    good("cmyk.jpg", encode_pil(Image.fromarray(cmyk, "CMYK"), "JPEG", quality=95),
         "CMYK JPEG: left half cyan, right half white",
         size=(24, 16), dtype="uint8", grayscale=False, alpha=False, frames=1, format="JPEG")

    # Stored 40 wide x 20 tall with a red top-left corner; orientation 6 = "rotate 90 CW to
    # display", so the decoded image is 20 wide x 40 tall with the red block at the top-right.
    stored = np.full((20, 40, 3), 255, np.uint8)
    stored[:6, :6] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    arrays["exif_rot6.jpg"] = stored
    good("exif_rot6.jpg", encode_pil(Image.fromarray(stored), "JPEG", quality=95,
                                     exif=exif.tobytes()),
         "JPEG 40x20 stored, EXIF orientation 6; the array is the stored (unrotated) image",
         size=(20, 40), dtype="uint8", grayscale=False, alpha=False, frames=1)

    ftiff = np.linspace(0.0, 1.0, 24 * 32, dtype=np.float32).reshape(24, 32)
    arrays["float.tif"] = ftiff
    good("float.tif", encode_pil(Image.fromarray(ftiff, "F"), "TIFF"),
         "32-bit float TIFF (mode F), values 0..1", size=(32, 24), dtype="uint16",
         grayscale=True, alpha=False, frames=1, format="TIFF")

    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]
    frames = [Image.new("RGB", (16, 12), c) for c in colors]
    arrays["animated.gif"] = np.array(colors, np.uint8)
    good("animated.gif", encode_pil(frames[0], "GIF", save_all=True, append_images=frames[1:],
                                    duration=100, loop=0),
         "3 frames: red, green, blue; the array is the frame colors", size=(16, 12),
         dtype="uint8", grayscale=False, alpha=False, frames=3, format="GIF")

    webp = noise((24, 32, 3), seed=10)
    arrays["lossless.webp"] = webp
    good("lossless.webp", encode_pil(Image.fromarray(webp), "WEBP", lossless=True),
         "lossless WebP", size=(32, 24), dtype="uint8", grayscale=False, alpha=False, frames=1,
         format="WEBP")

    return Corpus(entries, arrays, root)


@pytest.fixture(scope="session")
def bad_inputs(tmp_path_factory) -> Corpus:
    """The generated corpus of awkward image files (see the module docstring). Read-only."""
    root = tmp_path_factory.mktemp("bad_inputs")
    corpus = _build_corpus(root)
    yield corpus
    # Let pytest's tmp cleanup remove the chmod-000 file even when not root.
    unreadable = root / "unreadable.png"
    if unreadable.exists():
        unreadable.chmod(0o644)


# ----------------------------------------------------------------------- random generator weights

#: The x4 generators the product ships.
SR_MODELS = ("mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan")


@pytest.fixture(scope="session")
def sr_weights_dir(tmp_path_factory) -> Path:
    """Randomly initialised weights of the shipped generators (plumbing tests never read
    ``weights/``, which a training run may be rewriting)."""
    from helpers import write_random_weights

    return write_random_weights(tmp_path_factory.mktemp("sr_weights"), SR_MODELS)


@pytest.fixture
def random_sr_weights(monkeypatch, sr_weights_dir) -> Path:
    """Point the registry at :func:`sr_weights_dir` and forget models cached by other tests."""
    from helpers import clear_model_caches

    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(sr_weights_dir))
    clear_model_caches()
    yield sr_weights_dir
    clear_model_caches()


@pytest.fixture
def stub_detector():
    """A method-2 detector whose model is never run (tests fake its tile probabilities), with the
    screenshot check and the second look on, threshold 0.5."""
    from deepclarity.detect import Detector

    det = Detector.__new__(Detector)
    det.method, det.threshold, det.max_tiles, det.batch_size = "canny", 0.5, 24, 8
    det.screen_check, det.second_look = True, True
    return det


@pytest.fixture
def rule_table_rows():
    """A function checking a rule table (evaluation/rule_table.py) written by ``script`` over
    ``slices`` with ``n`` images each, and returning its rows as lists of cells."""

    def check(text: str, script: str, slices, n: int) -> list[list[str]]:
        assert text.startswith(f"`python -m evaluation.{script} --data ")
        lines = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
        rows = [line.strip("| ").split(" | ") for line in lines]
        assert [r[0] for r in rows] == list(slices)
        for cells in rows:
            assert cells[2] == str(n) and all(c.endswith("%") for c in cells[3:])
        return rows

    return check
