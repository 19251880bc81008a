"""DeepClarity: tell whether an image is pixelated, and restore it with small, fast SR networks.

The public API grows with the product: image I/O (:func:`read_image`, :func:`write_image`), the
model zoo (:func:`create_model`, :func:`list_models`), detection (:func:`load_detector`),
super-resolution (:func:`load_upscaler`) and the error types.
"""

from .detect import load_detector
from .enhance import Upscaler, load_upscaler
from .errors import DeepClarityError, DeviceError, ImageError, ModelError
from .io import LoadedImage, read_image, read_rgb, write_image
from .models import create_model, list_models

__version__ = "0.1.0"

__all__ = [
    "__version__", "DeepClarityError", "DeviceError", "ImageError", "ModelError", "LoadedImage",
    "read_image", "read_rgb", "write_image", "create_model", "list_models", "load_detector", "Upscaler",
    "load_upscaler",
]
