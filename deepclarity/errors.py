"""One small exception hierarchy, so every front end can turn failures into one clear line.

The CLI maps any :class:`DeepClarityError` to ``error: <message>`` and a non-zero exit code;
the apps map it to ``gr.Error``. Anything else escaping the library is a bug.
"""

from __future__ import annotations


class DeepClarityError(Exception):
    """Base class of every error the library raises on purpose."""


class ImageError(DeepClarityError, ValueError):
    """An input could not be read as an image, or an output could not be written.

    The message always names the input (path or kind of object) and the problem.
    """


class ModelError(DeepClarityError):
    """A model or its weights could not be built, found or loaded."""


class DeviceError(DeepClarityError):
    """The requested compute device is not available."""
