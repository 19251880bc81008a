"""Engines: where the per-file work of ``detect``, ``enhance`` and ``restore`` runs.

* ``local`` (the default): this process, a few images at a time (:meth:`Detector.detect_files`,
  the CLI's batch loop);
* ``ray``: Ray Data batch inference (:mod:`deepclarity.engines.ray_engine`) on a local Ray instance
  or an existing cluster; the model is loaded once per actor, files are read and decoded by
  :mod:`deepclarity.io` inside the workers, and Ray owns scheduling and retries.

Both engines make their records with the same functions (:mod:`deepclarity.engines.records`):
one file in, one record out, a bad file an error record. Ray is an optional dependency
(``pip install 'deepclarity[ray]'``); nothing here imports it until the ray engine is asked for.
"""

from __future__ import annotations

from ..errors import DeepClarityError

__all__ = ["ENGINES", "RAY_INSTALL_HINT", "require_ray"]

#: The engines the CLI offers (``--engine``).
ENGINES = ("local", "ray")

RAY_INSTALL_HINT = "--engine ray needs Ray Data: pip install 'deepclarity[ray]'"


def require_ray():
    """``import ray`` (with Ray Data and pyarrow), or a one-line :class:`DeepClarityError` saying how
    to install it."""
    try:
        import pyarrow  # noqa: F401
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise DeepClarityError(RAY_INSTALL_HINT) from None
    return ray
