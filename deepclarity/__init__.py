"""DeepClarity: tell whether an image is pixelated, and restore it with small, fast SR networks.

Three jobs, each a class, a shared loader and a result type:

* **detect** — :class:`Detector` / :func:`load_detector` -> :class:`Detection`;
* **enhance** (plain super-resolution) — :class:`Upscaler` / :func:`load_upscaler` -> :class:`Enhanced`;
* **restore** (detect + de-pixelate + super-resolve) — :class:`Restorer` / :func:`load_restorer`
  -> :class:`Restored` (what was done: :class:`Action`).

The loaders share one cache (:mod:`deepclarity.cache`): one object per setting and resolved device,
rebuilt when a weight file changes. Also here: image I/O (:func:`read_image`, :func:`write_image`,
:class:`LoadedImage`), the model zoo (:func:`create_model`, :func:`list_models`) and the errors.
"""

from .detect import Detection, Detector, load_detector
from .enhance import Enhanced, Upscaler, load_upscaler
from .errors import DeepClarityError, DeviceError, ImageError, ModelError
from .io import LoadedImage, list_images, read_image, read_images, read_rgb, write_image
from .models import create_model, list_models
from .restore import Action, Restored, Restorer, load_restorer

__version__ = "0.1.0"

__all__ = [
    "__version__",
    # the three jobs
    "Detector", "load_detector", "Detection",
    "Upscaler", "load_upscaler", "Enhanced",
    "Restorer", "load_restorer", "Restored", "Action",
    # images
    "LoadedImage", "read_image", "read_images", "read_rgb", "write_image", "list_images",
    # models
    "create_model", "list_models",
    # errors
    "DeepClarityError", "DeviceError", "ImageError", "ModelError",
]
