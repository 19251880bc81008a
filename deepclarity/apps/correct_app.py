"""The correction app: restore a pixelated image, or enhance (super-resolve) any image.

Two modes, one event (API ``/correct``, :func:`correct_image`):

* **Restore** (the default; key ``"auto"``): :func:`restore_image` runs
  :meth:`deepclarity.restore.Restorer.restore` (detect, de-pixelate, super-resolve) and shows
  the verdict (:func:`~deepclarity.apps.render.verdict_markdown`) and the region map
  (:func:`~deepclarity.apps.render.region_map_image`) beside the result.
* **Enhance** (key ``"upscale"``): :func:`enhance_image` super-resolves with
  :meth:`deepclarity.enhance.Upscaler.enhance`; also the ``/enhance`` endpoint.

The mode keys stay ``"auto"`` / ``"upscale"`` so ``gradio_client`` calls keep working. The models
offered come from the registry (:func:`~deepclarity.apps.render.upscaler_names`).
:func:`build_correct_app` lays out the page.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..enhance import DEFAULT_UPSCALER
from ..errors import DeepClarityError
from .render import (DISPLAY_MAX_SIDE, METHOD_LABELS, comparison_pair, describe, download_name, md, megapixels,
                     region_map_image, restored_download_name, scale_tag, upscaler_description, upscaler_label,
                     upscaler_names, verdict_markdown)
from .server import (DEFAULT_MAX_FILE_SIZE, DEFAULT_TIME_LIMIT_S, EXAMPLES_DIR, TimeLimit, as_time_limit,
                     example_files, model_status, user_error)
from .uploads import (as_float, as_request_file, as_request_files, choice, one_upload, path_hider, process_upload,
                      save_result)

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

    from ..enhance import Upscaler

__all__ = [
    "CORRECT_MAX_OUTPUT_PIXELS", "CORRECT_MAX_INPUT_PIXELS", "OUTSCALE_MIN", "OUTSCALE_MAX", "OUTSCALE_STEP",
    "DEFAULT_OUTSCALE", "AUTO_OUTSCALE", "SHARPEN_MAX", "MODE_LABELS", "DEFAULT_MODE", "WHEN_CLEAN_LABELS",
    "AUTO_METHOD", "enhance_image", "restore_image", "correct_image", "mode_settings", "build_correct_app",
]

#: Largest result the correction app makes (width x height of the output).
CORRECT_MAX_OUTPUT_PIXELS = 32_000_000
#: Largest input the correction app reads. The models always run at x4 and the result is then
#: resized to the chosen scale, so this bounds the x4 intermediate (float32 on the CPU) as well:
#: 2 MP in -> 32 MP at x4, whatever the output scale.
CORRECT_MAX_INPUT_PIXELS = 2_000_000
#: Output-scale slider: range, step and default (Enhance mode).
OUTSCALE_MIN, OUTSCALE_MAX, OUTSCALE_STEP, DEFAULT_OUTSCALE = 1.0, 8.0, 0.5, 4.0
#: The output scale in Restore mode: 1 = the input's size (restoration, not enlargement).
AUTO_OUTSCALE = 1.0
#: Sharpening (unsharp-mask amount) slider range; 0 = off.
SHARPEN_MAX = 2.0
#: Mode key (the API's value, kept from older versions) -> what the UI calls it.
MODE_LABELS = {"auto": "Restore (detect, de-pixelate, super-resolve)", "upscale": "Enhance (super-resolve only)"}
DEFAULT_MODE = "auto"
#: Restore mode, image not pixelated -> what the UI calls the choice (``when_clean`` of ``restore``).
WHEN_CLEAN_LABELS = {"keep": "Keep as is", "enhance": "Enhance anyway"}
#: The detection method Restore mode uses.
AUTO_METHOD = "canny"


def _upscaler_key(model: Any) -> str:
    names = upscaler_names(available=False)
    key = str(model or "").strip().lower()
    if key not in names:
        raise user_error(f"Unknown model {model!r}: use one of {', '.join(names)}.")
    return key


def _load_upscaler_or_error(key: str, device: str) -> Upscaler:
    """The shared upscaler for ``key``; a model that cannot load (e.g. no weights) is one line."""
    from ..enhance import load_upscaler

    try:
        return load_upscaler(key, device=device)
    except DeepClarityError as exc:
        raise user_error(f"{upscaler_label(key)} is unavailable: {exc}") from None


def enhance_image(file: Any, model: str = DEFAULT_UPSCALER, outscale: float = DEFAULT_OUTSCALE,
                  sharpen: float = 0.0, *, device: str = "auto",
                  max_output_pixels: int = CORRECT_MAX_OUTPUT_PIXELS,
                  max_input_pixels: int = CORRECT_MAX_INPUT_PIXELS,
                  display_max_side: int | None = DISPLAY_MAX_SIDE,
                  ) -> tuple[tuple[np.ndarray, np.ndarray], str, str]:
    """Enhance (super-resolve) one uploaded image: the correction app's Enhance mode.

    The file is read with :func:`deepclarity.io.read_image` and upscaled by
    :meth:`deepclarity.enhance.Upscaler.enhance` (models load once and are shared; large inputs
    are tiled there). The full-resolution result is written as PNG to a fresh temporary folder as
    ``<original-stem>_<model>_x<scale>.png``, in kind: alpha, 16-bit and grayscale are kept.

    Args:
        file: the upload's path (what ``gr.File(type="filepath")`` hands over).
        model: one of :func:`~deepclarity.apps.render.upscaler_names`.
        outscale: output size / input size, in [:data:`OUTSCALE_MIN`, :data:`OUTSCALE_MAX`].
        sharpen: unsharp-mask amount in [0, :data:`SHARPEN_MAX`]; 0 = off.
        device: passed to :func:`deepclarity.enhance.load_upscaler`.
        max_output_pixels: larger results are refused with a clear message.
        max_input_pixels: larger inputs are refused (checked from the file header).
        display_max_side: the slider's images are downscaled to this longest side (``None``: never).

    Returns:
        ``((before, after), download_path, info_markdown)``: the slider's pair (``uint8`` arrays of
        equal size), the PNG's path, and a Markdown summary.

    Raises:
        gr.Error: no upload, bad parameters, an unreadable file, a result over the limit, or a
            model that cannot be loaded (e.g. its weights are missing) — always one line.
    """
    from ..io import read_image

    path, name = one_upload(file)
    key = _upscaler_key(model)
    outscale = as_float(outscale, "output scale", OUTSCALE_MIN, OUTSCALE_MAX, DEFAULT_OUTSCALE)
    sharpen = as_float(sharpen, "sharpening amount", 0.0, SHARPEN_MAX, 0.0)
    clean = path_hider(path, name)
    upscaler = _load_upscaler_or_error(key, device)

    def work():
        loaded = read_image(path, max_pixels=max_input_pixels)
        return loaded, upscaler.enhance(loaded, outscale=outscale, sharpen_amount=sharpen,
                                        max_output_pixels=max_output_pixels)

    loaded, result = process_upload(work, clean=clean, name=name, doing=f"enhancing {path} with {key}",
                                    what="upscaling")
    dest = save_result(download_name(name, key, outscale), result.image, path, clean)
    before, after = comparison_pair(loaded, result.image, max_side=display_max_side)
    out = result.image
    lines = [
        f"**{md(name)}** ({describe(loaded)}) → **{out.width}×{out.height}** "
        f"(×{scale_tag(outscale)}) with **{md(upscaler_label(key))}** in {result.seconds:.2f} s"
        + (f", tiled {result.tile} px" if result.tile else "")
        + (f", sharpened {sharpen:g}" if sharpen > 0 else "") + ".",
        "",
        f"Download: **{md(dest.name)}**, full resolution, lossless PNG ({describe(out)}).",
    ]
    if before.shape[:2] != (out.height, out.width):
        lines += ["", f"The slider shows a {before.shape[1]}×{before.shape[0]} preview; the download is full size."]
    return (before, after), str(dest), "\n".join(lines)


def restore_image(file: Any, model: str = DEFAULT_UPSCALER, outscale: float = AUTO_OUTSCALE,
                  sharpen: float = 0.0, when_clean: str = "keep", *, device: str = "auto",
                  max_output_pixels: int = CORRECT_MAX_OUTPUT_PIXELS,
                  max_input_pixels: int = CORRECT_MAX_INPUT_PIXELS,
                  display_max_side: int | None = DISPLAY_MAX_SIDE,
                  ) -> tuple[tuple[np.ndarray, np.ndarray], str, str, np.ndarray | None]:
    """Detect, de-pixelate and super-resolve one uploaded image: the correction app's Restore mode.

    :meth:`deepclarity.restore.Restorer.restore` does the work (detector + grid recovery +
    generator, loaded once), sharpening included: a pixelated image is rebuilt from its block
    grid, a censor mosaic is restored in place, and a clean image is kept (``when_clean="keep"``)
    or enhanced (``"enhance"``); sharpening applies only to what was restored or enhanced. The
    result is written like :func:`enhance_image`'s, as
    ``<original-stem>_restored_<model>[_x<scale>].png``.

    Args:
        file, model, sharpen, device, max_output_pixels, max_input_pixels, display_max_side:
            as for :func:`enhance_image`.
        outscale: output size / input size (default 1: the input's size).
        when_clean: ``"keep"`` or ``"enhance"`` (or their labels in :data:`WHEN_CLEAN_LABELS`).

    Returns:
        ``((before, after), download_path, info_markdown, region_map)``: as :func:`enhance_image`,
        the Markdown starting with :func:`~deepclarity.apps.render.verdict_markdown`'s line, plus
        the region-map overlay (:func:`~deepclarity.apps.render.region_map_image`).

    Raises:
        gr.Error: as for :func:`enhance_image`, or the detector cannot be loaded — one line.
    """
    from ..io import read_image
    from ..restore import load_restorer

    path, name = one_upload(file)
    key = _upscaler_key(model)
    outscale = as_float(outscale, "output scale", OUTSCALE_MIN, OUTSCALE_MAX, AUTO_OUTSCALE)
    sharpen = as_float(sharpen, "sharpening amount", 0.0, SHARPEN_MAX, 0.0)
    when = choice(when_clean, WHEN_CLEAN_LABELS, "choice for clean images", "keep")
    clean = path_hider(path, name)
    _load_upscaler_or_error(key, device)  # the model first, so a missing one is named as such
    try:
        restorer = load_restorer(key, method=AUTO_METHOD, device=device)
    except DeepClarityError as exc:
        raise user_error(f"Restore mode is unavailable (the pixelation detector): {exc}") from None

    def work():
        loaded = read_image(path, max_pixels=max_input_pixels)
        return loaded, restorer.restore(loaded, outscale=outscale, when_clean=when,
                                        max_output_pixels=max_output_pixels, sharpen_amount=sharpen)

    loaded, res = process_upload(work, clean=clean, name=name, doing=f"restoring {path} with {key}",
                                 what="restoration")
    out = res.image
    dest = save_result(restored_download_name(name, key, outscale), out, path, clean)
    before, after = comparison_pair(loaded, out, max_side=display_max_side)
    overlay = region_map_image(loaded, res, max_side=display_max_side)
    lines = [
        verdict_markdown(res, upscaler_label(key, short=True), outscale),
        "",
        f"**{md(name)}** ({describe(loaded)}) → **{out.width}×{out.height}** (×{scale_tag(outscale)}) "
        f"in {res.seconds:.2f} s" + (f", sharpened {res.sharpened:g}" if res.sharpened else "") + ".",
        "",
        f"Download: **{md(dest.name)}**, full resolution, lossless PNG ({describe(out)}).",
        "",
        "Region map: each tile of the input tinted by its probability of being pixelated (red = pixelated, "
        "green = clean)" + ("; the blue box is the restored mosaic." if res.output_region else "."),
    ]
    if before.shape[:2] != (out.height, out.width):
        lines += ["", f"The slider shows a {before.shape[1]}×{before.shape[0]} preview; the download is full size."]
    return (before, after), str(dest), "\n".join(lines), overlay


def correct_image(file: Any, mode: str = DEFAULT_MODE, model: str = DEFAULT_UPSCALER, outscale: float | None = None,
                  sharpen: float = 0.0, when_clean: str = "keep", *, device: str = "auto",
                  max_output_pixels: int = CORRECT_MAX_OUTPUT_PIXELS,
                  max_input_pixels: int = CORRECT_MAX_INPUT_PIXELS,
                  display_max_side: int | None = DISPLAY_MAX_SIDE,
                  ) -> tuple[tuple[np.ndarray, np.ndarray], str, str, np.ndarray | None]:
    """The correction app's main event (API ``/correct``): :func:`restore_image` in ``"auto"``
    (Restore) mode, :func:`enhance_image` in ``"upscale"`` (Enhance) mode (no region map then:
    ``None``).

    ``mode`` is a key or a label of :data:`MODE_LABELS`; ``outscale=None`` takes the mode's default
    (1 for Restore, 4 for Enhance); ``when_clean`` matters in Restore mode only.
    """
    kw = dict(device=device, max_output_pixels=max_output_pixels, max_input_pixels=max_input_pixels,
              display_max_side=display_max_side)
    if choice(mode, MODE_LABELS, "mode", DEFAULT_MODE) == "upscale":
        pair, path, info = enhance_image(file, model, DEFAULT_OUTSCALE if outscale is None else outscale,
                                         sharpen, **kw)
        return pair, path, info, None
    return restore_image(file, model, AUTO_OUTSCALE if outscale is None else outscale, sharpen, when_clean, **kw)


def mode_settings(mode: str) -> tuple[float, Any, Any, Any]:
    """What switching the mode changes: ``(output scale, when-clean choice, button, region map)``
    updates: scale 1 and the Restore-only controls shown for Restore; scale 4 and them hidden for
    Enhance. (A private event: not part of the API.)"""
    import gradio as gr

    try:
        auto = choice(mode, MODE_LABELS, "mode", DEFAULT_MODE) == "auto"
    except gr.Error:
        auto = True
    return (AUTO_OUTSCALE if auto else DEFAULT_OUTSCALE, gr.update(visible=auto),
            gr.update(value="Restore" if auto else "Enhance"), gr.update(visible=auto))


# --------------------------------------------------------------------------------------- page


def _status(device: str, preload: bool) -> list[str]:
    """The banner: each upscaler that cannot be used, and Restore mode when its detector cannot."""
    from ..detect import METHODS
    from ..enhance import load_upscaler
    from ..restore import load_restorer

    models = [(upscaler_label(n), n, partial(load_upscaler, n, device=device))
              for n in upscaler_names(available=False) if n != "bicubic"]
    models.append((MODE_LABELS["auto"], METHODS[AUTO_METHOD],
                   partial(load_restorer, "bicubic", method=AUTO_METHOD, device=device)))
    return model_status(models, preload=preload)


def build_correct_app(*, device: str = "auto", preload: bool = True, examples: bool = True,
                      max_file_size: str | None = DEFAULT_MAX_FILE_SIZE,
                      max_output_pixels: int = CORRECT_MAX_OUTPUT_PIXELS,
                      max_input_pixels: int = CORRECT_MAX_INPUT_PIXELS,
                      time_limit: float | TimeLimit | None = DEFAULT_TIME_LIMIT_S) -> gr.Blocks:
    """The correction app: upload an image; in the default **Restore** mode it is checked for
    pixelation and restored (the verdict and region map shown beside the result), in **Enhance**
    mode it is super-resolved. Choose the model, the output scale and optional sharpening;
    compare before/after and download the full-resolution PNG.

    API: ``/correct`` with inputs ``(file, mode, model, outscale, sharpen, when_clean)`` (``mode``
    ``"auto"`` = Restore, ``"upscale"`` = Enhance) and outputs ``((before, after), png_file,
    info_markdown, region_map_image)`` (the map is ``None`` in Enhance mode); ``/enhance`` (Enhance
    mode alone) with inputs ``(file, model, outscale, sharpen)`` and outputs ``((before, after),
    png_file, info_markdown)``.

    Args:
        device: compute device for the models (``auto``, ``cpu``, ``cuda``).
        preload: load the models now (each loads once; a broken weight file is reported on the
            page instead of on the first request). Missing weights never stop the app.
        examples: show the example images from ``examples/detect`` (Restore) and
            ``examples/correct`` (Enhance), when present.
        max_file_size: the upload limit given to ``launch`` (only shown on the page here).
        max_output_pixels: larger results are refused.
        max_input_pixels: larger inputs are refused.
        time_limit: seconds a request may compute (or a :class:`~deepclarity.apps.server.TimeLimit`,
            shared by both events); stated on the page.
    """
    import gradio as gr

    problems = _status(device, preload)
    names = upscaler_names()
    default_model = DEFAULT_UPSCALER if DEFAULT_UPSCALER in names else names[0]
    limits_kw = dict(device=device, max_output_pixels=max_output_pixels, max_input_pixels=max_input_pixels)
    limit = as_time_limit(time_limit, "Try a smaller image, a lower output scale or a faster model.")

    def correct_work(file, mode, model, outscale, sharpen, when_clean):
        pair, png, info, overlay = correct_image(file, mode, model, outscale, sharpen, when_clean, **limits_kw)
        folder = Path(png).parent  # the download's folder, made for this request
        return as_request_files(pair, folder), png, info, as_request_file(overlay, folder, "region_map")

    def enhance_work(file, model, outscale, sharpen):
        pair, png, info = enhance_image(file, model, outscale, sharpen, **limits_kw)
        return as_request_files(pair, Path(png).parent), png, info

    def correct(file, mode, model, outscale, sharpen, when_clean):
        """Restore mode: detect pixelation and restore; Enhance mode: super-resolve. Returns the
        before/after pair, the full-resolution PNG, a summary (verdict first) and the region map."""
        return limit.run(correct_work, file, mode, model, outscale, sharpen, when_clean)

    def enhance(file, model, outscale, sharpen):
        """Enhance (super-resolve) one image: before/after pair, the full-resolution PNG and a summary."""
        return limit.run(enhance_work, file, model, outscale, sharpen)

    models_md = "\n".join(f"- **{md(upscaler_label(n))}**: {md(upscaler_description(n))}" for n in names)
    modes_md = (f"- **{MODE_LABELS['auto']}**: the detector ({md(METHOD_LABELS[AUTO_METHOD])}) decides "
                "whether the image is pixelated; if so its block grid is recovered (one value per block) "
                "and super-resolved back to the output size, or a censor mosaic over part of it is "
                "restored in place. A clean image is kept as is or enhanced anyway, as you choose.\n"
                f"- **{MODE_LABELS['upscale']}**: super-resolve the image whatever it is.")
    limits = [f"uploads up to {max_file_size}" if max_file_size else None,
              f"inputs up to {megapixels(max_input_pixels)}", f"results up to {megapixels(max_output_pixels)}",
              limit.describe()]
    limits_md = ("**Limits:** " + "; ".join(x for x in limits if x)
                 + ". Large inputs are processed in tiles automatically. Formats: PNG, JPEG, WebP, BMP, "
                   "TIFF, GIF (first frame); alpha, 16-bit and grayscale are kept in the download.")

    with gr.Blocks(title="DeepClarity: restore and enhance", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as app:
        gr.Markdown(
            "# DeepClarity: restore a pixelated image, enhance a low-resolution one\n"
            "Upload an image and press **Restore**. In **Restore** mode the image is checked for "
            "pixelation first and restored at its own size (the verdict and the region map appear "
            "beside the result); **Enhance** mode enlarges it with the chosen model. Drag the "
            "slider to compare the input (nearest-neighbour) with the result; download the "
            "full-resolution PNG below it."
        )
        gr.Markdown("\n\n".join(f"⚠️ {p}" for p in problems), visible=bool(problems), elem_id="model-status")
        with gr.Row():
            with gr.Column(scale=1):
                file = gr.File(label="Image", file_count="single", type="filepath")
                mode = gr.Radio([(label, key) for key, label in MODE_LABELS.items()], value=DEFAULT_MODE,
                                label="Mode")
                when_clean = gr.Radio([(label, key) for key, label in WHEN_CLEAN_LABELS.items()], value="keep",
                                      label="When not pixelated", visible=DEFAULT_MODE == "auto")
                model = gr.Radio([(upscaler_label(n), n) for n in names], value=default_model, label="Model")
                outscale = gr.Slider(OUTSCALE_MIN, OUTSCALE_MAX, value=AUTO_OUTSCALE, step=OUTSCALE_STEP,
                                     label="Output scale",
                                     info="output size / input size: 1 = the input's size (restoration); "
                                          "the models work at ×4, then resize")
                sharpen = gr.Slider(0.0, SHARPEN_MAX, value=0.0, step=0.1, label="Sharpening",
                                    info="unsharp-mask strength applied to what was restored or "
                                         "enhanced (0 = off)")
                button = gr.Button("Restore", variant="primary")
                with gr.Accordion("Modes, models and limits", open=False):
                    gr.Markdown(modes_md + "\n\n" + models_md + "\n\n" + limits_md, elem_id="models-and-limits")
            with gr.Column(scale=2):
                slider = gr.ImageSlider(label="Before (nearest-neighbour) / after", format="png",
                                        type="numpy", interactive=False, buttons=["fullscreen"])
                with gr.Row():
                    with gr.Column(scale=1):
                        info = gr.Markdown(elem_id="verdict")
                        download = gr.File(label="Full-resolution PNG", interactive=False)
                    region_map = gr.Image(label="Detection: region map (red = pixelated, green = clean)",
                                          type="numpy", format="png", interactive=False,
                                          buttons=["fullscreen"], scale=1, visible=DEFAULT_MODE == "auto")
                legacy = gr.Button("Enhance (API)", visible=False)
        restore_examples = ([p for p in example_files(EXAMPLES_DIR / "detect") if not p.stem.startswith("jpeg")]
                            if examples else [])
        enhance_examples = example_files(EXAMPLES_DIR / "correct") if examples else []
        if restore_examples or enhance_examples:
            gr.Examples(
                examples=[[str(p), "auto", default_model, AUTO_OUTSCALE, 0.0, "keep"] for p in restore_examples]
                + [[str(p), "upscale", default_model, DEFAULT_OUTSCALE, 0.0, "keep"] for p in enhance_examples],
                inputs=[file, mode, model, outscale, sharpen, when_clean],
                example_labels=[f"{p.stem.replace('_', ' ')} (restore)" for p in restore_examples]
                + [f"{p.stem.replace('_', ' ')} (enhance ×4)" for p in enhance_examples],
                cache_examples=False,
                label="Examples (generated by examples/make_examples.py)",
            )
        button.click(correct, inputs=[file, mode, model, outscale, sharpen, when_clean],
                     outputs=[slider, download, info, region_map], api_name="correct", concurrency_id="correct",
                     api_description="Restore mode ('auto'): detect pixelation and restore the image; "
                                     "Enhance mode ('upscale'): super-resolve it.")
        # One concurrency group: /enhance and /correct share the models and the cores.
        legacy.click(enhance, inputs=[file, model, outscale, sharpen], outputs=[slider, download, info],
                     api_name="enhance", concurrency_id="correct",
                     api_description="Enhance one image (super-resolution); the Enhance mode of /correct.")
        mode.change(mode_settings, inputs=mode, outputs=[outscale, when_clean, button, region_map],
                    api_visibility="private", queue=False)
    return app
