"""End to end in a real browser: ``detect_app.py`` and ``correct_app.py`` launched as subprocesses
on free loopback ports with the shipped weights (``weights/``), driven in headless Chromium through
Playwright for Python.

The browser is Debian's ``chromium`` (``/usr/bin/chromium``; ``make test`` installs the packages
``chromium`` and ``chromium-driver`` when missing): Playwright's own browser download does not work
here. When Chromium or the ``playwright`` package is missing these tests FAIL with the reason, so
CI never passes without them; set ``DEEPCLARITY_SKIP_BROWSER=1`` to skip them instead.

Screenshots (and the two servers' logs) go to ``test-artifacts/browser/`` at the repository root.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

if os.environ.get("DEEPCLARITY_SKIP_BROWSER") == "1":
    pytest.skip("DEEPCLARITY_SKIP_BROWSER=1: browser tests skipped", allow_module_level=True)

from deepclarity.apps.correct_app import MODE_LABELS  # noqa: E402
from helpers import start_app, stop_app, wait_for_http  # noqa: E402

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: How long to wait for a result on the page (a busy 2-core machine runs several test workers).
RESULT_TIMEOUT_MS = 60_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
APPS = ("detect_app.py", "correct_app.py")


# ------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def uploads(tmp_path_factory) -> dict[str, Path]:
    """Files to upload: a strongly pixelated crop of skimage's astronaut (8 px blocks), the clean
    crop, a small clean image for x4 upscaling, and a text file named .png."""
    from skimage import data as skdata

    from deepclarity.degrade import pixelate

    folder = tmp_path_factory.mktemp("browser_uploads")
    crop = skdata.astronaut()[:256, 100:356]
    Image.fromarray(pixelate(crop, 8)).save(folder / "pixelated.png")
    Image.fromarray(crop).save(folder / "clean.png")
    Image.fromarray(np.ascontiguousarray(crop[::4, ::4][:48])).save(folder / "small.png")  # 64x48
    (folder / "notes.png").write_text("this is not an image\n")
    return {p.stem: p for p in folder.iterdir()}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """Both apps, launched at once (start-up is the slow part), on CPU with one thread each.
    Yields ``{script: (url, log_path)}``; the processes are always terminated."""
    folder = tmp_path_factory.mktemp("browser_servers")
    running: dict[str, tuple[subprocess.Popen, str, Path]] = {}
    try:
        for script in APPS:  # the shipped weights; TMPDIR holds Gradio's cache and the apps' results
            running[script] = start_app(script, folder, log_name=f"{Path(script).stem}.log")
        for proc, url, log in running.values():
            wait_for_http(url, proc, log, timeout=150)
        yield {script: (url, log) for script, (_, url, log) in running.items()}
    finally:
        for proc, _, log in running.values():
            stop_app(proc)
            if log.exists():  # the logs are artifacts too
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log, ARTIFACTS / log.name)


@pytest.fixture(scope="module", autouse=True)
def browser_requirements() -> None:
    """Playwright and Debian's Chromium, checked before anything starts: missing ones FAIL the
    tests (CI must not pass without them) unless DEEPCLARITY_SKIP_BROWSER=1 (then never here)."""
    try:
        import playwright.sync_api  # noqa: F401
        missing_playwright = None
    except ImportError as exc:
        missing_playwright = str(exc)
    if missing_playwright is not None:
        pytest.fail(f"the browser tests need the 'playwright' package ({missing_playwright}): "
                    "pip install -e '.[dev]' (or `make test`, which does); set DEEPCLARITY_SKIP_BROWSER=1 "
                    "to skip them", pytrace=False)
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(f"the browser tests need Chromium at {CHROMIUM}: `make browser` (run by `make test`) "
                    "or `apt-get install chromium chromium-driver` installs it; set "
                    "DEEPCLARITY_SKIP_BROWSER=1 to skip them", pytrace=False)


@pytest.fixture(scope="module")
def browser(browser_requirements):
    """Headless Debian Chromium through Playwright (its own browser download is not used)."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
    finally:
        pw.stop()


@pytest.fixture
def page(browser, request):
    """A fresh page (own context, downloads accepted); a last screenshot is taken whatever happens."""
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    try:
        yield pg
    finally:
        try:
            shot(pg, f"{request.node.name}-last")
        finally:
            context.close()


# ------------------------------------------------------------------------------------- helpers


def shot(page, name: str) -> Path:
    """A full-page screenshot in ``test-artifacts/browser/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def block(page, label: str):
    """The Gradio component whose label is exactly ``label``."""
    title = page.locator("label[data-testid=block-label]", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
    return page.locator("div.block").filter(has=title)


def open_app(page, url: str, button: str) -> None:
    page.goto(url)
    page.get_by_role("button", name=button, exact=True).wait_for()


def upload(page, label: str, path: Path) -> None:
    """Put ``path`` into the file component ``label`` (clearing what it held) and wait until the
    upload has reached the server (its name is listed)."""
    from playwright.sync_api import expect

    comp = block(page, label)
    clear = comp.get_by_role("button", name="Clear", exact=True)
    if clear.count():
        clear.click()
    comp.locator("input[type=file]").set_input_files(str(path))
    expect(comp.locator(f"td.filename[aria-label='{path.name}']")).to_be_visible()


def expect_error_toast(page, *fragments: str) -> str:
    """Wait for Gradio's error toast; it must name ``fragments`` and show no traceback. Returns its
    text, then closes it."""
    from playwright.sync_api import expect

    toast = page.locator("[data-testid=toast-body].error").first
    expect(toast).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(toast).to_have_css("opacity", "1")  # flown in (for the screenshot)
    for fragment in fragments:
        expect(toast).to_contain_text(fragment)
    text = toast.inner_text()
    assert "Traceback" not in text and 'File "' not in text, text
    return text


def dismiss_toasts(page) -> None:
    """Close every toast (an error toast would otherwise stay for 10 s)."""
    from playwright.sync_api import expect

    for close in page.locator("[data-testid=toast-close]").all():
        if close.is_visible():
            close.click()
    expect(page.locator("[data-testid=toast-body]")).to_have_count(0)


def log_tail(log: Path, chars: int = 3000) -> str:
    return log.read_text(errors="replace")[-chars:] if log.exists() else "(no log)"


def assert_clean_log(log: Path) -> None:
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-3000:]


def wait_for_result(page, done, log: Path, what: str) -> None:
    """Wait until ``done`` (a locator) is visible; fail at once, with the message and the server's
    log, if the app shows an error toast instead, or after :data:`RESULT_TIMEOUT_MS`."""
    from playwright.sync_api import expect

    error = page.locator("[data-testid=toast-body].error")
    try:
        expect(done.or_(error).first).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    except AssertionError:
        shot(page, f"timeout-{what}")
        pytest.fail(f"{what}: no result on the page within {RESULT_TIMEOUT_MS / 1000:g} s; "
                    f"server log:\n{log_tail(log)}", pytrace=False)
    if not done.first.is_visible() and error.count():
        shot(page, f"error-{what}")
        pytest.fail(f"{what}: the app showed an error instead of the result: "
                    f"{error.first.inner_text()!r}; server log:\n{log_tail(log)}", pytrace=False)


# ------------------------------------------------------------------------------------- detect_app


def detect(page, path: Path, log: Path):
    """Upload ``path``, press Detect; returns the summary's table row for it once it is shown."""
    upload(page, "Images", path)
    page.get_by_role("button", name="Detect", exact=True).click()
    row = page.locator("[data-testid=markdown] table tr").filter(
        has=page.locator("td", has_text=re.compile(rf"^\s*{re.escape(path.name)}\s*$")))
    wait_for_result(page, row, log, f"detect {path.name}")
    return row


def test_detect_app_pixelated_and_clean_verdicts(servers, page, uploads):
    from playwright.sync_api import expect

    url, log = servers["detect_app.py"]
    open_app(page, url, "Detect")
    expect(page.locator("#model-status")).to_be_hidden()  # the shipped weights loaded

    row = detect(page, uploads["pixelated"], log)
    expect(row).to_contain_text("PIXELATED")
    expect(page.get_by_text(re.compile(r"^1 image: 1 pixelated, 0 clean"))).to_be_visible()
    expect(page.locator(".caption-label")).to_have_text(re.compile(r"^pixelated\.png: PIXELATED, p = "))
    expect(block(page, "Region maps").locator("img").first).to_be_visible()
    shot(page, "detect_pixelated")

    row = detect(page, uploads["clean"], log)  # the same page: replace the upload, run again
    expect(row).to_contain_text("clean")
    expect(row).not_to_contain_text("PIXELATED")
    expect(page.get_by_text(re.compile(r"^1 image: 0 pixelated, 1 clean"))).to_be_visible()
    expect(page.locator(".caption-label")).to_have_text(re.compile(r"^clean\.png: clean, p = "))
    shot(page, "detect_clean")
    assert_clean_log(log)


def test_detect_app_bad_upload_is_a_clear_error_then_works(servers, page, uploads):
    from playwright.sync_api import expect

    url, log = servers["detect_app.py"]
    open_app(page, url, "Detect")
    upload(page, "Images", uploads["notes"])
    page.get_by_role("button", name="Detect", exact=True).click()
    expect_error_toast(page, "No image could be processed", "notes.png", "not a recognized image")
    shot(page, "detect_bad_upload")
    dismiss_toasts(page)

    row = detect(page, uploads["pixelated"], log)
    expect(row).to_contain_text("PIXELATED")
    shot(page, "detect_after_bad_upload")
    assert_clean_log(log)


# ------------------------------------------------------------------------------------ correct_app


def run_correct(page, path: Path, expected: str, log: Path) -> None:
    """Upload ``path``, press the main button, wait until the summary beside the result contains
    ``expected`` (case-sensitive: "PIXELATED" is not "not pixelated")."""
    upload(page, "Image", path)
    page.locator("button.primary").first.click()  # "Restore" (Restore mode) or "Enhance" (Enhance mode)
    done = page.locator("#verdict", has_text=re.compile(re.escape(expected)))
    wait_for_result(page, done, log, f"correct {path.name}")


def download_result(page, tmp_path: Path, name: str) -> Path:
    """Click the "Full-resolution PNG" link; returns the saved file after checking its name."""
    from playwright.sync_api import expect

    link = block(page, "Full-resolution PNG").locator("a[data-testid=download-link]")
    expect(link).to_be_visible(timeout=RESULT_TIMEOUT_MS)
    expect(link).to_have_attribute("download", name)
    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.failure() is None
    assert download.suggested_filename == name
    dest = tmp_path / name
    download.save_as(str(dest))
    return dest


def assert_png(path: Path, size: tuple[int, int]) -> None:
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG" and im.size == size and im.mode == "RGB"


def test_correct_app_restores_shows_and_downloads(servers, page, uploads, tmp_path):
    from playwright.sync_api import expect

    url, log = servers["correct_app.py"]
    open_app(page, url, "Restore")
    expect(page.locator("#model-status")).to_be_hidden()

    # Restore mode (the default): detected as pixelated, restored at the input's size.
    run_correct(page, uploads["pixelated"], "PIXELATED", log)
    expect(page.locator("#verdict")).to_contain_text("restored the whole image")
    slider = page.locator("[data-testid=imageslider-image]")
    expect(slider).to_have_count(2)
    for i in range(2):
        expect(slider.nth(i)).to_have_attribute("src", re.compile(r"/gradio_api/file="))
    region_map = block(page, "Detection: region map (red = pixelated, green = clean)").locator("img")
    expect(region_map).to_be_visible()
    png = download_result(page, tmp_path, "pixelated_restored_mobilesr-rep.png")
    assert_png(png, (256, 256))
    shot(page, "correct_restored")

    # Enhance mode: x4 by default, the button becomes "Enhance", the region map is hidden.
    page.get_by_label(MODE_LABELS["upscale"], exact=True).check()
    expect(page.get_by_role("button", name="Enhance", exact=True)).to_be_visible()
    run_correct(page, uploads["small"], "→ 256×192", log)
    expect(region_map).to_be_hidden()
    png = download_result(page, tmp_path, "small_mobilesr-rep_x4.png")
    assert_png(png, (256, 192))
    shot(page, "correct_upscaled")
    assert_clean_log(log)


def test_correct_app_bad_upload_is_a_clear_error_then_works(servers, page, uploads, tmp_path):
    from playwright.sync_api import expect

    url, log = servers["correct_app.py"]
    open_app(page, url, "Restore")
    upload(page, "Image", uploads["notes"])
    page.get_by_role("button", name="Restore", exact=True).click()
    expect_error_toast(page, "notes.png", "not a recognized image")
    expect(page.locator("#verdict")).not_to_contain_text("Traceback")
    shot(page, "correct_bad_upload")
    dismiss_toasts(page)

    run_correct(page, uploads["pixelated"], "PIXELATED", log)
    assert_png(download_result(page, tmp_path, "pixelated_restored_mobilesr-rep.png"), (256, 256))
    shot(page, "correct_after_bad_upload")
    assert_clean_log(log)
