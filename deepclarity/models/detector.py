"""The pixelation detector network: MobileNetV3-small with a two-class head.

Both methods share the architecture and differ only in what they are fed (see ``edges.py``):
method 2 ("canny", the proposed one) takes the Canny edge map replicated to 3 channels; method 1
("rgb", the baseline) takes the RGB crop. Input ``(B, 3, H, W)`` float32 in [0, 1]; output logits
``(B, 2)`` for (clean, pixelated). Trained from scratch: no ImageNet weights exist offline.
"""

from __future__ import annotations

from torch import nn
from torchvision.models import mobilenet_v3_small

DETECTOR_INPUTS = ("canny", "rgb")
CLASSES = ("clean", "pixelated")


def build_detector(input_kind: str = "canny", num_classes: int = len(CLASSES)) -> nn.Module:
    """MobileNetV3-small, randomly initialised, ``num_classes`` outputs.

    ``input_kind`` is recorded on the module (``model.input_kind``) so inference feeds it the
    right features; it does not change the layers.
    """
    if input_kind not in DETECTOR_INPUTS:
        raise ValueError(f"input_kind must be one of {DETECTOR_INPUTS}, got {input_kind!r}")
    model = mobilenet_v3_small(weights=None, num_classes=num_classes)
    model.input_kind = input_kind
    return model
