"""A 2x2 confusion matrix drawn as an image (Pillow only), for the detection report.

Rows are the actual class, columns the predicted one; each cell shows its count and its share of
the row, shaded from white to dark blue by that share.
"""

from __future__ import annotations

import io

__all__ = ["draw_confusion", "png_bytes"]


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: the small bitmap font only
        return ImageFont.load_default()


def _text_size(draw, text: str, font) -> tuple[int, int]:
    x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
    return x1 - x0, y1 - y0


def _centered(draw, xy: tuple[float, float], text: str, font, fill) -> None:
    draw.text(xy, text, font=font, fill=fill, anchor="mm")


def draw_confusion(metrics: dict, title: str, size: tuple[int, int] = (480, 400)):
    """A 2x2 confusion matrix (rows actual, columns predicted; counts and row percentages) as a
    ``PIL.Image`` of ``size`` (width, height). ``metrics`` holds ``tp fp tn fn`` (and, optionally,
    ``accuracy``, shown in the subtitle)."""
    from PIL import Image, ImageDraw

    width, height = size
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    f_title, f_label, f_cell, f_small = _font(18), _font(15), _font(24), _font(14)
    _centered(draw, (width / 2, 18), title, f_title, "black")
    acc = metrics.get("accuracy")
    sub = f"{metrics['tp'] + metrics['fp'] + metrics['tn'] + metrics['fn']} images"
    if acc is not None:
        sub = f"accuracy {acc:.4f}, " + sub
    _centered(draw, (width / 2, 40), sub, f_small, (70, 70, 70))

    # Geometry: axis title + class names on the left and on top, a square-ish 2x2 grid.
    left, top = 150, 100
    right, bottom = width - 20, height - 20
    cw, ch = (right - left) / 2, (bottom - top) / 2
    classes = ("not pixelated", "pixelated")
    _centered(draw, (left + cw, 62), "predicted", f_label, "black")
    for j, name in enumerate(classes):
        _centered(draw, (left + cw * (j + 0.5), top - 16), name, f_small, "black")
    # "actual", written upwards along the left edge.
    tw, th = _text_size(draw, "actual", f_label)
    label = Image.new("RGB", (tw + 8, th + 8), "white")
    ImageDraw.Draw(label).text((4, 4), "actual", font=f_label, fill="black", anchor="lt")
    label = label.rotate(90, expand=True)
    img.paste(label, (8, int(top + ch - label.height / 2)))
    for i, name in enumerate(classes):
        _centered(draw, ((left + 30) / 2 + 4, top + ch * (i + 0.5)), name, f_small, "black")

    counts = [[metrics["tn"], metrics["fp"]], [metrics["fn"], metrics["tp"]]]
    for i in range(2):
        row_total = sum(counts[i])
        for j in range(2):
            share = counts[i][j] / row_total if row_total else 0.0
            # White to dark blue by row share; the diagonal reads as "good", the rest as errors.
            shade = tuple(int(round(255 + (c - 255) * share)) for c in (31, 78, 140))
            box = (left + j * cw, top + i * ch, left + (j + 1) * cw, top + (i + 1) * ch)
            draw.rectangle(box, fill=shade, outline=(60, 60, 60), width=1)
            ink = "white" if share > 0.5 else "black"
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            _centered(draw, (cx, cy - 12), str(counts[i][j]), f_cell, ink)
            _centered(draw, (cx, cy + 16), f"{share:.1%}" if row_total else "–", f_small, ink)
    return img


def png_bytes(image) -> bytes:
    """``image`` (a ``PIL.Image``) encoded as PNG."""
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()
