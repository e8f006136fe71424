"""The WebUI in a real browser: Debian's headless Chromium, driven by Playwright, against ``python app.py``.

Each test is a user session on a fresh page: upload and cut out, switch the provider, hit a typed
error, run a batch in the Gallery, stream the (fake) webcam. ``UPDATE_SCREENSHOTS=1`` also rewrites
docs/screenshots/{upload,webcam,gallery}.png for the README; without it the tree is never touched.

Playwright drives the system Chromium (``/usr/bin/chromium``); ``playwright install`` is never needed.
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from core.providers import available_providers, resolve
from tests.conftest import ARTIFACTS, PHOTOS_DIR, ROOT, Server

pytestmark = pytest.mark.browser

SCREENSHOTS = ROOT / "docs" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
PAGE_LOAD_MS = 60_000  # Gradio's first render is ~5 s here; a loaded CI runner may be slower
RESULT_MS = 120_000  # one cutout is ~1-2 s on a CPU, plus the first load of a model's weights
#: What "Auto (best available)" runs on: cpu here and in CI, cuda on a GPU runner.
AUTO = resolve("auto")[0]
#: Headless, no GPU, none of Chromium's own background connections (updates, sync, QUIC: refused in
#: sandboxes and CI); the fake media flags give it a camera, which plays a file (see ``browser``).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def find_chromium() -> str | None:
    """Debian's ``chromium`` (what .ci/run installs), Ubuntu's ``chromium-browser``, or $CHROMIUM."""
    candidates = [
        os.environ.get("CHROMIUM"),
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def write_fake_camera(path: Path, size: tuple[int, int] = (640, 480)) -> Path:
    """A one-frame Y4M video of the astronaut photo (a person, like a webcam sees), for Chromium's fake camera."""
    photo = Image.open(PHOTOS_DIR / "astronaut.png").convert("RGB")
    width, height = size
    frame = photo.crop((0, 0, photo.width, photo.width * height // width)).resize(size, Image.Resampling.LANCZOS)
    ycc = np.asarray(frame.convert("YCbCr"), dtype=np.float64)
    luma = 16 + ycc[..., 0] * 219 / 255  # Y4M is video range
    chroma = (16 + ycc[..., 1:] * 224 / 255).reshape(height // 2, 2, width // 2, 2, 2).mean(axis=(1, 3))
    planes = (luma, chroma[..., 0], chroma[..., 1])  # 4:2:0
    data = b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)
    path.write_bytes(f"YUV4MPEG2 W{width} H{height} F15:1 Ip A1:1 C420jpeg\n".encode() + b"FRAME\n" + data)
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    executable = find_chromium()
    if executable is None:
        reason = "no Chromium binary (apt-get install chromium); the browser tests drive the system Chromium"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and .ci/run installs it", pytrace=False)
        pytest.skip(reason)
    camera = write_fake_camera(tmp_path_factory.mktemp("camera") / "astronaut.y4m")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-video-capture={camera}"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server: Server, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh session on the WebUI, loaded; on failure its screenshot and the server log go to tests/_artifacts."""
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.grant_permissions(["camera"], origin=server.url)
    opened = context.new_page()
    failed_before = request.session.testsfailed
    opened.goto(server.url, timeout=PAGE_LOAD_MS)
    expect(opened.locator("#provider")).to_be_visible(timeout=PAGE_LOAD_MS)
    yield opened
    # The call phase is reported before teardown, so a failure of this test is counted by now.
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        opened.screenshot(path=str(ARTIFACTS / f"browser-{request.node.name}.png"), full_page=True)
        (ARTIFACTS / f"browser-{request.node.name}.server.log").write_text(server.log())
    context.close()


def screenshot(page: Page, name: str) -> None:
    """Rewrite docs/screenshots/NAME.png, only when asked to (UPDATE_SCREENSHOTS=1)."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.mouse.move(0, 0)  # no hover highlight in the picture
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


#: The ``requests`` cell of a provider's row in the stats table, -1 while it has no row.
STATS_REQUESTS_JS = """(provider) => {
    const row = [...document.querySelectorAll('#stats tr')]
        .find((r) => r.cells[0] && r.cells[0].textContent.trim() === provider);
    return row === undefined ? -1 : Number(row.cells[1].textContent);
}"""


def stats_requests(page: Page, provider: str) -> int:
    return int(page.evaluate(STATS_REQUESTS_JS, provider))


def wait_for_stats_requests(page: Page, provider: str, at_least: int) -> None:
    page.wait_for_function(
        f"([provider, want]) => ({STATS_REQUESTS_JS})(provider) >= want", arg=[provider, at_least], timeout=RESULT_MS
    )


def wait_for_images_loaded(page: Page, selector: str) -> None:
    """Every <img> matching ``selector`` has really loaded, not just been inserted."""
    page.wait_for_function(
        "(sel) => [...document.querySelectorAll(sel)].every((i) => i.complete && i.naturalWidth > 0)",
        arg=selector,
        timeout=PAGE_LOAD_MS,
    )


def upload_image(page: Page, path: Path) -> None:
    page.locator("#upload-image input[type=file]").set_input_files(path)
    expect(page.locator("#upload-image img")).to_be_visible(timeout=PAGE_LOAD_MS)


def error_toast(page: Page, text: str | re.Pattern[str]) -> Locator:
    return page.get_by_test_id("toast-text").filter(has_text=text)


def test_page_shows_the_providers_that_can_run_and_why_others_cannot(page: Page) -> None:
    expect(page).to_have_title("Background removal")
    radio = page.locator("#provider")
    expect(radio.get_by_label("Auto (best available)")).to_be_checked()
    expect(radio.get_by_label("CPU", exact=True)).to_be_visible()
    note = page.locator("#provider-note")
    infos = available_providers()
    for info in infos:
        if info.available:
            expect(radio.get_by_label(info.name.upper(), exact=True)).to_be_visible()
        else:
            # e.g. "CUDA: not in this onnxruntime build (install onnxruntime-gpu instead of onnxruntime)"
            assert info.reason
            expect(radio.get_by_label(info.name.upper(), exact=True)).to_have_count(0)
            expect(note).to_contain_text(f"{info.name.upper()}: {info.reason}")
    if any(info.name == "cuda" and not info.available for info in infos):
        expect(note).to_contain_text(re.compile(r"Unavailable here: .*CUDA: \S"))
    expect(page.get_by_role("tab")).to_contain_text(["Upload", "Webcam", "Gallery"])


def test_upload_cuts_out_and_the_readout_follows_the_provider(page: Page) -> None:
    upload_image(page, PHOTOS_DIR / "car-1.jpg")
    page.get_by_text("Options", exact=True).click()
    page.locator("#model input").click()
    page.get_by_role("option", name="u2netp", exact=True).click()
    expect(page.locator("#model input")).to_have_value("u2netp")

    page.locator("#run").click()
    expect(page.locator("#slider img")).to_have_count(2, timeout=RESULT_MS)
    wait_for_images_loaded(page, "#slider img")
    readout = page.locator("#readout")
    expect(readout).to_contain_text(re.compile(r'"model":\s*"u2netp"'), timeout=RESULT_MS)
    expect(readout).to_contain_text(re.compile(rf'"provider":\s*"{AUTO}"'))
    expect(readout).to_contain_text('"inference"')
    link = page.locator("#download a[download]")
    expect(link).to_have_attribute("download", "car-1-cutout.png")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "car-1-cutout.png"
    cutout = Image.open(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert (cutout.format, cutout.mode, cutout.size) == ("PNG", "RGBA", (480, 360))
    alpha = np.asarray(cutout.getchannel("A"))
    assert alpha.min() == 0 and alpha.max() == 255, "a cutout has both background and subject"
    # The stats table is the server's, across sessions: it counts this request and any before it.
    wait_for_stats_requests(page, AUTO, 1)
    cpu_before = stats_requests(page, "cpu")
    first_readout = readout.inner_text()

    # Now pin the provider to CPU and run again: the readout and the stats table say cpu.
    page.locator("#provider").get_by_label("CPU", exact=True).check()
    page.locator("#run").click()
    wait_for_stats_requests(page, "cpu", max(cpu_before, 0) + 1)
    # The second request's own readout (its timings differ), not the first one's still showing.
    expect(readout).not_to_have_text(first_readout, use_inner_text=True, timeout=RESULT_MS)
    expect(readout).to_contain_text(re.compile(r'"provider":\s*"cpu"'))
    expect(readout).to_contain_text(re.compile(r'"model":\s*"u2netp"'))
    expect(page.locator("body")).not_to_contain_text("Traceback")

    page.get_by_text("Options", exact=True).click()  # fold the options away for the picture
    screenshot(page, "upload")


def test_a_file_that_is_not_an_image_is_refused_in_the_browser(page: Page) -> None:
    # The image input accepts image/* only: Gradio refuses the file before it is uploaded...
    page.locator("#upload-image input[type=file]").set_input_files(PHOTOS_DIR / "SOURCE.md")
    expect(error_toast(page, "Only image/* allowed")).to_be_visible(timeout=PAGE_LOAD_MS)
    # ...so running has no image, and says so in our words.
    page.locator("#run").click()
    expect(error_toast(page, "Add an image first.")).to_be_visible(timeout=RESULT_MS)
    expect(page.locator("body")).not_to_contain_text("Traceback")


def test_an_invalid_option_shows_its_typed_error_and_no_traceback(page: Page, server: Server) -> None:
    log_before = len(server.log())
    upload_image(page, PHOTOS_DIR / "car-1.jpg")
    page.get_by_text("Options", exact=True).click()
    page.get_by_label("Alpha matting (slow, finer edges)").check()
    threshold = page.get_by_role("spinbutton", name="Background threshold")
    threshold.fill("250")  # above the foreground threshold (240)
    threshold.press("Enter")
    expect(page.get_by_role("slider", name="Background threshold")).to_have_value("250")

    page.locator("#run").click()
    message = "invalid option 'alpha_matting_background_threshold': must be below the foreground threshold"
    expect(error_toast(page, message)).to_be_visible(timeout=RESULT_MS)
    expect(page.locator("body")).not_to_contain_text("Traceback")
    assert "Traceback" not in server.log()[log_before:], "a typed error is not logged as a crash"


def test_gallery_cuts_out_the_images_and_reports_the_file_that_is_not_one(page: Page) -> None:
    page.get_by_role("tab", name="Gallery").click()
    files = [PHOTOS_DIR / "car-1.jpg", PHOTOS_DIR / "chelsea.png", ROOT / "README.md"]
    page.locator("#gallery-files input[type=file]").set_input_files(files)
    for path in files:
        expect(page.locator("#gallery-files")).to_contain_text(path.stem, timeout=PAGE_LOAD_MS)

    page.locator("#gallery-run").click()
    # The table's rows by their ARIA role: Gradio 6 lays the grid out with more than plain <tr>s.
    rows = page.locator("#gallery-status").get_by_role("row")
    expect(rows.filter(has_text="README.md")).to_contain_text("error:", timeout=RESULT_MS)
    expect(rows.filter(has_text="car-1.jpg")).to_contain_text(re.compile(rf"\bok\b.*\b{AUTO}\b"))
    expect(rows.filter(has_text="chelsea.png")).to_contain_text(re.compile(rf"\bok\b.*\b{AUTO}\b"))
    expect(page.locator("#gallery img")).to_have_count(2, timeout=RESULT_MS)
    wait_for_images_loaded(page, "#gallery img")
    expect(page.locator('a[download="cutouts.zip"]')).to_have_count(1)
    expect(page.locator("body")).not_to_contain_text("Traceback")
    screenshot(page, "gallery")


def test_webcam_streams_live_cutouts(page: Page) -> None:
    page.get_by_role("tab", name="Webcam").click()
    live = page.locator("#live")
    expect(live).to_be_visible()
    expect(page.get_by_text("Click to Access Webcam")).to_have_count(2)  # the snapshot and the live input

    # Chromium's fake camera plays the astronaut photo; start streaming it.
    live.get_by_text("Click to Access Webcam").click()
    record = live.get_by_role("button", name="capture photo")
    record.click()
    expect(page.locator("#live-out img")).to_be_visible(timeout=RESULT_MS)
    fps = page.locator("#fps")
    readout = re.compile(rf"\d+\.\d frames/s · {AUTO} · u2netp · inference \d+ ms")
    expect(fps).to_contain_text(readout, timeout=RESULT_MS)
    # More than one frame: the rate is measured over frames, so it becomes non-zero.
    expect(fps).to_contain_text(re.compile(r"[1-9]\d*\.\d frames/s|0\.[1-9] frames/s"), timeout=RESULT_MS)
    wait_for_images_loaded(page, "#live-out img")
    screenshot(page, "webcam")
    record.click()  # stop, so the stream does not compete with the other tests for the CPU
    expect(page.locator("body")).not_to_contain_text("Traceback")
