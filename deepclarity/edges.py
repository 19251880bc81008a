"""Canny edge features for the pixelation detector (method 2).

Training and inference both call :func:`canny_edges`, so the detector always sees the same
features. The prototype's thresholds (50, 150) are the default. The edge map is computed at the
image's native resolution: resizing it would blur away the block grid the detector looks for.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import ImageError

__all__ = ["CANNY_LOW", "CANNY_HIGH", "canny_edges"]

CANNY_LOW = 50
CANNY_HIGH = 150


def canny_edges(img: np.ndarray, low: int = CANNY_LOW, high: int = CANNY_HIGH) -> np.ndarray:
    """Canny edges of an ``HxWx3`` RGB or ``HxW`` gray ``uint8`` image.

    Returns:
        ``HxWx3`` ``uint8`` with the binary edge map (0 or 255) in all three channels, the input
        the MobileNetV3 detector expects.
    """
    arr = np.asarray(img)
    if arr.dtype != np.uint8:
        raise ImageError(f"canny_edges expects uint8 pixels, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 3:
        gray = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    elif arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1):
        gray = arr.reshape(arr.shape[:2])
    else:
        raise ImageError(f"canny_edges expects HxW or HxWx3, got shape {arr.shape}")
    edges = cv2.Canny(np.ascontiguousarray(gray), low, high)
    return np.repeat(edges[..., None], 3, axis=2)
