"""Networks and the registry that names them. See :mod:`.registry` for ``create_model``."""

from .detector import build_detector
from .discriminator import Discriminator
from .mobilesr import MobileSR, MobileSRSeed
from .repsr import MobileSRRep, RepConv
from .registry import (DEGRADATIONS, TASKS, ModelSpec, create_model, detector_methods, get_spec, list_models,
                       register, sr_model_names, weights_dir)
from .srresnet import MiniSRResNet
from .weights import count_params, load_weights, read_card, save_weights

__all__ = [
    "build_detector", "Discriminator", "MobileSR", "MobileSRSeed", "MobileSRRep", "RepConv", "MiniSRResNet", "ModelSpec",
    "TASKS", "DEGRADATIONS", "create_model", "get_spec", "list_models", "register", "weights_dir",
    "sr_model_names", "detector_methods", "count_params",
    "load_weights", "read_card", "save_weights",
]
