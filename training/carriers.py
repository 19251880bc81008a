"""Non-photo carriers for the detector's training samples: rendered text, UI, charts, flat graphics,
tiles and screentones, drawn with Pillow (``training.synth_v2`` uses them as clean negatives and as
carriers of censor mosaics).

Text is set in the DejaVu fonts when the system has them (``/usr/share/fonts/truetype/dejavu``,
the fonts matplotlib ships too), else in Pillow's built-in font (``ImageFont.load_default(size)``).
Every function takes ``(height, width, rng)`` and returns ``HxWx3`` ``uint8`` RGB, drawn only from
``rng``: the same generator state gives the same image.
"""

from __future__ import annotations

import string
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["CARRIERS", "font_files", "render_text", "ui_panel", "chart", "flat_graphics", "tiles",
           "screentone", "pixel_art_icon"]

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"),)


@lru_cache(maxsize=1)
def font_files() -> tuple[str, ...]:
    """The DejaVu font files found (sorted, so a seed picks the same font everywhere they exist)."""
    files: list[str] = []
    for d in FONT_DIRS:
        if d.is_dir():
            files += sorted(str(p) for p in d.glob("DejaVu*.ttf") if "MathTeX" not in p.name)
    return tuple(files)


@lru_cache(maxsize=256)
def _font(index: int, size: int):
    files = font_files()
    if files:
        return ImageFont.truetype(files[index % len(files)], size)
    return ImageFont.load_default(size)


def _colour(rng: np.random.Generator, dark: bool | None = None) -> tuple[int, int, int]:
    if dark is None:
        return tuple(int(v) for v in rng.integers(0, 256, 3))
    lo, hi = (0, 110) if dark else (170, 256)
    return tuple(int(v) for v in rng.integers(lo, hi, 3))


def _words(rng: np.random.Generator, n: int) -> str:
    letters = string.ascii_letters + string.digits + "     .,:;-_/()[]{}=+#@"
    return "".join(rng.choice(list(letters), n))


def _canvas(h: int, w: int, rng: np.random.Generator) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    bg = _colour(rng, dark=bool(rng.random() < 0.2))  # light themes mostly, dark ones too
    img = Image.new("RGB", (w, h), bg)
    return img, ImageDraw.Draw(img)


def render_text(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Lines of text (random words, 9-28 px type, one font per image) on a flat background."""
    img, draw = _canvas(h, w, rng)
    dark_bg = sum(img.getpixel((0, 0))) < 384
    size = int(rng.integers(9, 29))
    font = _font(int(rng.integers(0, 1 << 16)), size)
    ink = _colour(rng, dark=not dark_bg)
    y = int(rng.integers(0, size))
    while y < h:
        x = int(rng.integers(0, 3 * size))
        draw.text((x, y), _words(rng, int(rng.integers(8, 80))), fill=ink, font=font)
        y += int(size * rng.uniform(1.2, 2.0))
    return np.asarray(img)


def ui_panel(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Panels, buttons, input fields and a table with ruled cells, with labels."""
    img, draw = _canvas(h, w, rng)
    font = _font(int(rng.integers(0, 1 << 16)), int(rng.integers(10, 18)))
    for _ in range(int(rng.integers(2, 7))):
        x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
        x1, y1 = x0 + int(rng.integers(30, max(31, w // 2))), y0 + int(rng.integers(14, max(15, h // 3)))
        kind = rng.random()
        if kind < 0.4:  # button
            draw.rounded_rectangle((x0, y0, x1, y0 + 28), radius=int(rng.integers(0, 10)), fill=_colour(rng),
                                   outline=_colour(rng) if rng.random() < 0.5 else None)
            draw.text((x0 + 6, y0 + 6), _words(rng, int(rng.integers(3, 12))), fill=_colour(rng), font=font)
        elif kind < 0.7:  # panel / input field
            draw.rectangle((x0, y0, x1, y1), fill=_colour(rng), outline=_colour(rng), width=int(rng.integers(1, 3)))
            draw.text((x0 + 4, y0 + 3), _words(rng, int(rng.integers(4, 20))), fill=_colour(rng), font=font)
        else:  # table
            rows, cols = int(rng.integers(2, 8)), int(rng.integers(2, 6))
            rh, cw = int(rng.integers(16, 32)), int(rng.integers(30, 90))
            line = _colour(rng)
            for r in range(rows + 1):
                draw.line((x0, y0 + r * rh, x0 + cols * cw, y0 + r * rh), fill=line)
            for c in range(cols + 1):
                draw.line((x0 + c * cw, y0, x0 + c * cw, y0 + rows * rh), fill=line)
            for r in range(rows):
                for c in range(cols):
                    draw.text((x0 + c * cw + 3, y0 + r * rh + 2), _words(rng, int(rng.integers(2, 8))),
                              fill=_colour(rng), font=font)
    return np.asarray(img)


def chart(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Axes with ticks, and a line plot, bars or a scatter plot."""
    img, draw = _canvas(h, w, rng)
    axis = _colour(rng, dark=True)
    left, bottom = int(rng.integers(10, 40)), h - int(rng.integers(10, 40))
    draw.line((left, 5, left, bottom), fill=axis, width=1)
    draw.line((left, bottom, w - 5, bottom), fill=axis, width=1)
    for t in range(left, w - 5, int(rng.integers(15, 60))):
        draw.line((t, bottom, t, bottom + 4), fill=axis)
    n = int(rng.integers(5, 40))
    xs = np.linspace(left + 2, w - 8, n)
    ys = np.clip(bottom - (np.cumsum(rng.normal(0, 1, n)) * rng.uniform(3, 15) + (bottom - 5) / 2), 5, bottom - 1)
    kind = rng.random()
    colour = _colour(rng)
    if kind < 0.4:
        draw.line(list(zip(xs.tolist(), ys.tolist())), fill=colour, width=int(rng.integers(1, 4)))
    elif kind < 0.7:
        bw = max(2, int((w - left) / n * 0.7))
        for x, y in zip(xs, ys):
            draw.rectangle((int(x), int(y), int(x) + bw, bottom), fill=colour)
    else:
        r = int(rng.integers(1, 5))
        for x, y in zip(xs, ys + rng.normal(0, 10, n)):
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    return np.asarray(img)


def flat_graphics(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Flat-colour shapes: rectangles, ellipses and polygons, no shading."""
    img, draw = _canvas(h, w, rng)
    for _ in range(int(rng.integers(3, 15))):
        pts = rng.integers(-w // 4, max(w, h) + w // 4, (int(rng.integers(3, 7)), 2))
        kind = rng.random()
        box = (int(pts[:, 0].min()), int(pts[:, 1].min()), int(pts[:, 0].max()), int(pts[:, 1].max()))
        if kind < 0.3:
            draw.rectangle(box, fill=_colour(rng))
        elif kind < 0.6:
            draw.ellipse(box, fill=_colour(rng))
        else:
            draw.polygon([tuple(int(v) for v in p) for p in pts], fill=_colour(rng))
    return np.asarray(img)


def tiles(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A checkerboard or tiled floor: square tiles of 4-40 px in two to four colours, grout lines sometimes."""
    t = int(rng.integers(4, 41))
    colours = np.array([_colour(rng) for _ in range(int(rng.integers(2, 5)))], np.uint8)
    yy, xx = np.mgrid[0:h, 0:w]
    oy, ox = int(rng.integers(0, t)), int(rng.integers(0, t))
    cell = ((yy + oy) // t + (xx + ox) // t)
    index = cell % len(colours) if rng.random() < 0.5 else (cell * 7 + (yy + oy) // t) % len(colours)
    out = colours[index]
    if rng.random() < 0.4:
        grout = ((yy + oy) % t == 0) | ((xx + ox) % t == 0)
        out[grout] = _colour(rng)
    return np.ascontiguousarray(out)


def screentone(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """A halftone: dots on a 3-8 px grid whose size follows a smooth gradient (manga/print tone)."""
    period = int(rng.integers(3, 9))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    level = (xx / w * rng.uniform(-1, 1) + yy / h * rng.uniform(-1, 1)) * 0.5 + 0.5
    dy = (yy % period) - period / 2 + 0.5
    dx = (xx % period) - period / 2 + 0.5
    dot = np.sqrt(dx * dx + dy * dy) < level * period * 0.7
    ink, paper = np.array(_colour(rng, dark=True), np.uint8), np.array(_colour(rng, dark=False), np.uint8)
    return np.ascontiguousarray(np.where(dot[..., None], ink, paper))


def pixel_art_icon(size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``size x size`` pixel-art icon (a symmetric random sprite in a few colours)."""
    half = rng.integers(0, 4, (size, (size + 1) // 2))
    sprite = np.concatenate([half, half[:, ::-1][:, size % 2:]], axis=1)
    palette = np.array([_colour(rng) for _ in range(4)], np.uint8)
    return np.ascontiguousarray(palette[sprite])


#: Carrier name -> function ``(height, width, rng) -> HxWx3 uint8``.
CARRIERS = {
    "text": render_text,
    "ui": ui_panel,
    "chart": chart,
    "flat": flat_graphics,
    "tiles": tiles,
    "screentone": screentone,
}
