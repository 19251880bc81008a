"""Gradio front ends. The top-level ``detect_app.py`` and ``correct_app.py`` only parse, build and
launch what lives here:

* :mod:`.server`: plumbing every app shares (command-line flags, launch and queue settings, the
  per-request :class:`TimeLimit`, :func:`user_error`, the missing-model banner).
* :mod:`.uploads`: one request's files in and results out (upload paths, parameter checks,
  temporary result folders).
* :mod:`.render`: what the pages show (region-map overlays, the before/after pair, Markdown,
  download names, model labels).
* :mod:`.detect_app`: the detection app (:func:`detect_images`, :func:`build_detect_app`).
* :mod:`.correct_app`: the correction app, Restore and Enhance modes (:func:`restore_image`,
  :func:`enhance_image`, :func:`correct_image`, :func:`build_correct_app`).

The work is the library's (:mod:`deepclarity.detect`, :mod:`deepclarity.enhance`,
:mod:`deepclarity.restore`); these modules turn uploads into calls and results into pages.
Gradio is imported inside the functions that need it, so ``detect_app.py --help`` answers at once.
"""

from .correct_app import (AUTO_METHOD, AUTO_OUTSCALE, CORRECT_MAX_INPUT_PIXELS, CORRECT_MAX_OUTPUT_PIXELS,
                          DEFAULT_MODE, DEFAULT_OUTSCALE, MODE_LABELS, OUTSCALE_MAX, OUTSCALE_MIN, SHARPEN_MAX,
                          WHEN_CLEAN_LABELS, build_correct_app, correct_image, enhance_image, mode_settings,
                          restore_image)
from .detect_app import MAX_FILES, DetectRow, build_detect_app, detect_images, summary_markdown
from .render import (DISPLAY_MAX_SIDE, METHOD_LABELS, REGION_BOX_RGB, comparison_pair, display_box, download_name,
                     overlay_region_map, region_map_image, restored_download_name, upscaler_description,
                     upscaler_label, upscaler_names, verdict_markdown)
from .server import (DEFAULT_HOST, DEFAULT_MAX_FILE_SIZE, DEFAULT_PORT, DEFAULT_TIME_LIMIT_S, EXAMPLES_DIR,
                     TimeLimit, add_server_arguments, apply_runtime_args, example_files, launch_app,
                     launch_kwargs, parse_app_args, queue_kwargs, user_error)

__all__ = [
    # server
    "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_MAX_FILE_SIZE", "DEFAULT_TIME_LIMIT_S", "EXAMPLES_DIR", "TimeLimit",
    "add_server_arguments", "parse_app_args", "apply_runtime_args", "launch_kwargs", "queue_kwargs", "launch_app",
    "user_error", "example_files",
    # render
    "DISPLAY_MAX_SIDE", "METHOD_LABELS", "REGION_BOX_RGB", "overlay_region_map", "display_box", "region_map_image",
    "comparison_pair", "download_name", "restored_download_name", "verdict_markdown", "upscaler_names",
    "upscaler_label", "upscaler_description",
    # detection app
    "MAX_FILES", "DetectRow", "detect_images", "summary_markdown", "build_detect_app",
    # correction app
    "CORRECT_MAX_OUTPUT_PIXELS", "CORRECT_MAX_INPUT_PIXELS", "OUTSCALE_MIN", "OUTSCALE_MAX", "DEFAULT_OUTSCALE",
    "AUTO_OUTSCALE", "SHARPEN_MAX", "MODE_LABELS", "DEFAULT_MODE", "WHEN_CLEAN_LABELS", "AUTO_METHOD",
    "enhance_image", "restore_image", "correct_image", "mode_settings", "build_correct_app",
]
