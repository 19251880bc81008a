"""Image-quality metrics on the published super-resolution protocol (DESIGN.md section 3).

PSNR and SSIM are computed on the Y channel of MATLAB's ``rgb2ycbcr`` (BT.601, 16-235) with
``crop_border`` pixels shaved from every side, as BasicSR's ``calculate_psnr(...,
test_y_channel=True)`` and the papers that quote it. LPIPS needs the AlexNet backbone weights; they
cannot be downloaded here, so :func:`lpips` works only where they are already in the torch cache
and otherwise raises :class:`~deepclarity.errors.ModelError` — it never makes a number up.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from .errors import ImageError, ModelError

__all__ = ["rgb_to_y", "psnr_y", "psnr_of_y", "ssim_y", "detail_ratio", "lpips", "lpips_available",
           "LPIPS_BACKBONE_FILE"]

#: The torchvision AlexNet checkpoint that the ``lpips`` package loads as its backbone.
LPIPS_BACKBONE_FILE = "alexnet-owt-7be5be79.pth"


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Y of MATLAB's ``rgb2ycbcr`` for ``uint8`` RGB (``HxWx3``) or gray (``HxW``), as float64 in [16, 235]."""
    img = np.asarray(img)
    if img.dtype != np.uint8:
        raise ImageError(f"metrics expect uint8 images, got {img.dtype}")
    x = img.astype(np.float64) / 255.0
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if x.ndim == 2:
        x = np.repeat(x[..., None], 3, axis=2)
    if x.ndim != 3 or x.shape[2] != 3:
        raise ImageError(f"metrics expect HxW or HxWx3 images, got shape {img.shape}")
    return 16.0 + x @ np.array([65.481, 128.553, 24.966])


def _pair_y(img: np.ndarray, ref: np.ndarray, crop_border: int) -> tuple[np.ndarray, np.ndarray]:
    if np.shape(img) != np.shape(ref):
        raise ImageError(f"metrics: image shapes differ: {np.shape(img)} vs {np.shape(ref)}")
    a, b = rgb_to_y(img), rgb_to_y(ref)
    if crop_border:
        a = a[crop_border:-crop_border, crop_border:-crop_border]
        b = b[crop_border:-crop_border, crop_border:-crop_border]
    if a.size == 0:
        raise ImageError(f"metrics: nothing left after shaving {crop_border} px from {np.shape(img)}")
    return a, b


def psnr_y(img: np.ndarray, ref: np.ndarray, crop_border: int = 0, mask: np.ndarray | None = None) -> float:
    """PSNR (dB) between two ``uint8`` RGB images on Y, ``crop_border`` px shaved per side, or
    over the pixels where ``mask`` (``HxW`` bool, no shaving) is true, e.g. inside censor boxes.

    Returns ``inf`` for images identical there, ``nan`` for an empty ``mask``.
    """
    if mask is not None:
        if not mask.any():
            return float("nan")
        a, b = _pair_y(img, ref, 0)
        a, b = a[mask], b[mask]
    else:
        a, b = _pair_y(img, ref, crop_border)
    return psnr_of_y(a, b)


def psnr_of_y(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB, peak 255) between two Y planes of :func:`rgb_to_y` (``inf`` when identical): the
    last step of :func:`psnr_y`, for callers that already hold Y (or can make it cheaper)."""
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def detail_ratio(img: np.ndarray, ref: np.ndarray, crop_border: int = 0) -> float:
    """How much fine detail ``img`` holds relative to ``ref``: the ratio of their mean squared
    neighbour differences on Y. 1.0 = as much as the reference; bicubic and L1-trained SR give
    less (smooth), GAN-trained SR more of it (sharper, not necessarily truer). Not a fidelity
    metric: it only makes "visibly sharper" a number.
    """
    a, b = _pair_y(img, ref, crop_border)

    def energy(y: np.ndarray) -> float:
        return float(np.mean(np.diff(y, axis=0) ** 2) + np.mean(np.diff(y, axis=1) ** 2))

    return energy(a) / max(energy(b), 1e-12)


def ssim_y(img: np.ndarray, ref: np.ndarray, crop_border: int = 0) -> float:
    """SSIM (Wang et al. 2004) on Y: 11x11 Gaussian window, sigma 1.5, K1=0.01, K2=0.03, L=255.

    Statistics are taken over the "valid" part of the window (5 px more trimmed per side), as in
    the reference MATLAB code and BasicSR.
    """
    a, b = _pair_y(img, ref, crop_border)
    if min(a.shape) < 11:
        raise ImageError(f"ssim: image of {a.shape} is smaller than the 11x11 window")
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    g = cv2.getGaussianKernel(11, 1.5)
    window = g @ g.T

    def filt(x: np.ndarray) -> np.ndarray:
        return cv2.filter2D(x, -1, window)[5:-5, 5:-5]

    mu_a, mu_b = filt(a), filt(b)
    var_a = filt(a * a) - mu_a**2
    var_b = filt(b * b) - mu_b**2
    cov = filt(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


# ---------------------------------------------------------------------------------------- LPIPS

_lpips_model = None
_lpips_lock = threading.Lock()


def _backbone_path() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / LPIPS_BACKBONE_FILE


def lpips_available() -> tuple[bool, str]:
    """Whether :func:`lpips` can run here, and if not, why (one line)."""
    try:
        import lpips as _lp  # noqa: F401
    except ImportError:
        return False, "the 'lpips' package is not installed"
    path = _backbone_path()
    if not path.is_file():
        return False, (f"LPIPS backbone weights are not available offline: {path} is missing "
                       "(copy torchvision's AlexNet checkpoint there to enable LPIPS)")
    return True, "ok"


def _load_lpips():
    global _lpips_model
    with _lpips_lock:
        if _lpips_model is None:
            ok, why = lpips_available()
            if not ok:
                raise ModelError(why)
            import lpips as _lp

            try:
                model = _lp.LPIPS(net="alex", verbose=False)
            except Exception as exc:
                raise ModelError(f"LPIPS backbone weights could not be loaded from "
                                 f"{_backbone_path()}: {exc}") from None
            _lpips_model = model.eval()
    return _lpips_model


def lpips(img: np.ndarray, ref: np.ndarray, crop_border: int = 0) -> float:
    """LPIPS (AlexNet, v0.1) between two ``uint8`` RGB images; lower is closer.

    Raises:
        ModelError: "LPIPS backbone weights are not available offline ..." when the AlexNet
            checkpoint is not in the torch cache.
    """
    import torch

    if np.shape(img) != np.shape(ref):
        raise ImageError(f"lpips: image shapes differ: {np.shape(img)} vs {np.shape(ref)}")
    model = _load_lpips()

    def to_tensor(x: np.ndarray) -> torch.Tensor:
        x = np.asarray(x)
        if crop_border:
            x = x[crop_border:-crop_border, crop_border:-crop_border]
        if x.ndim == 2:
            x = np.repeat(x[..., None], 3, axis=2)
        t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float()
        return t / 127.5 - 1.0

    with torch.inference_mode():
        return float(model(to_tensor(img), to_tensor(ref)).item())
