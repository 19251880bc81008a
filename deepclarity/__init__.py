"""DeepClarity: tell whether an image is pixelated, and restore it with small, fast SR networks.

The public API grows with the product; today it is the foundation every job stands on:
image I/O (:func:`read_image`, :func:`write_image`), the model zoo (:func:`create_model`,
:func:`list_models`) and the error types.
"""

from .errors import DeepClarityError, DeviceError, ImageError, ModelError
from .io import LoadedImage, read_image, read_rgb, write_image
from .models import create_model, list_models

__version__ = "0.1.0"

__all__ = [
    "__version__", "DeepClarityError", "DeviceError", "ImageError", "ModelError", "LoadedImage",
    "read_image", "read_rgb", "write_image", "create_model", "list_models",
]
