"""Regenerate the small example images the apps ship with (``examples/detect/*.png`` for the
detection app, ``examples/correct/*.png`` for the super-resolution app).

Every image is made here from scikit-image's bundled samples (``skimage.data``), so nothing is
downloaded and nothing comes from the training or benchmark data. Run from anywhere::

    python examples/make_examples.py

The output is deterministic; each file stays well under 150 KB.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

from deepclarity.degrade import imresize, jpeg, mosaic, pixelate

OUT = Path(__file__).resolve().parent / "detect"
OUT_CORRECT = Path(__file__).resolve().parent / "correct"
MAX_BYTES = 150_000


def _half(img: np.ndarray) -> np.ndarray:
    """Box-filtered 2x reduction (antialiased: the result is a clean, sharp photo)."""
    return np.asarray(Image.fromarray(img).reduce(2))


def make_examples() -> dict[str, np.ndarray]:
    """``file name -> HxWx3 uint8`` for every example image."""
    astronaut = _half(skdata.astronaut())                 # 256x256, clean photo
    chelsea = skdata.chelsea()                              # 300x451
    rocket = skdata.rocket()[90:346, 150:534]               # 256x384 around the rocket
    coffee = _half(skdata.coffee())                          # 200x300
    return {
        "clean_astronaut.png": astronaut,
        "pixelated_x3_chelsea.png": pixelate(chelsea, 3),
        # A censor-style mosaic (12 px blocks) over the rocket only: the middle column of the region map.
        "mosaic_rocket.png": mosaic(rocket, (128, 0, 256, 256), 12),
        # Clean but JPEG-compressed (quality 30): its 8x8 grid must not read as pixelation.
        "jpeg_q30_coffee.png": jpeg(coffee, 30),
    }


def make_correct_examples() -> dict[str, np.ndarray]:
    """``file name -> HxWx3 (or HxW) uint8``: small low-resolution inputs for the super-resolution
    app, made as the training pairs are (MATLAB-style antialiased bicubic downscaling)."""
    face = skdata.astronaut()[16:272, 128:384]              # 256x256 around the face
    coffee = skdata.coffee()[20:380, 60:540]                 # 360x480
    camera = skdata.camera()                                  # 512x512 grayscale
    return {
        "astronaut_face_96.png": imresize(face, size=(96, 96)),
        "coffee_160x120.png": imresize(coffee, size=(120, 160)),
        # Grayscale stays grayscale in the download.
        "camera_gray_128.png": imresize(camera, size=(128, 128)),
    }


def _png_bytes(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG", optimize=True)
    return buf.getvalue()


def main() -> int:
    for out, images in ((OUT, make_examples()), (OUT_CORRECT, make_correct_examples())):
        out.mkdir(parents=True, exist_ok=True)
        for name, img in images.items():
            payload = _png_bytes(img)
            if len(payload) > MAX_BYTES:
                print(f"{name}: {len(payload)} bytes is over the {MAX_BYTES} byte budget", file=sys.stderr)
                return 1
            (out / name).write_bytes(payload)
            print(f"{out / name}: {img.shape[1]}x{img.shape[0]}, {len(payload) / 1000:.1f} kB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
