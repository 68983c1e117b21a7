"""The web page of `limn serve` in a real browser (issue 21, section 8).

Headless Chromium from Debian (/usr/bin/chromium, or $LIMN_CHROMIUM) driven by Playwright from
PyPI, pointed at that binary (Playwright's own browser download is never used), against real
`limn serve` subprocesses on 127.0.0.1 (conftest.py's ``server`` and ``start_server``).

- test_page_in_chromium: loads `/`, adds two photos, moves the strength slider with the keyboard,
  starts, waits for every progress bar to reach 100 %, downloads the ZIP the page builds and
  compares each image in it with the library's direct call pixel for pixel (PNG, so exactly);
  then a file that is not an image and one over --max-upload each get their error on their own
  card. Screenshots (the results; the errors in light and dark; 360 px wide, light and dark) go
  to $LIMN_TEST_ARTIFACTS, else to the test's tmp folder.
- test_page_queue_busy_cancel_and_key: the API key field (401 until it is filled, kept in
  localStorage), queue position, "Server busy: retrying after N s" on a 429, and cancel (DELETE).
- test_page_without_jobs: against `limn serve --no-jobs` (as behind Ray Serve), the page waits on
  the synchronous route and shows the same result, pixel for pixel.

Without Playwright or a Chromium that starts, the tests are skipped with the reason, never passed.
"""
from __future__ import annotations

import os
import zipfile
from typing import List

import limn
import numpy as np
import pytest

CHROMIUM = os.environ.get("LIMN_CHROMIUM", "/usr/bin/chromium")
STRENGTH = 0.75     # the slider starts at 1.00 and moves 5 steps of 0.05 down
MAX_SIDE = 512      # the "512 px" output size
TIMEOUT_MS = 120_000


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium under Playwright; skipped (with the reason) when either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.skip(f"Playwright is not installed (pip install playwright): {e}")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set LIMN_CHROMIUM)")
    try:
        manager = sync_playwright().start()
    except Exception as e:  # the driver (node) could not start
        pytest.skip(f"Playwright's driver could not start: {e}")
    try:
        try:
            # --no-sandbox: Chromium's sandbox refuses to run as root (CI containers)
            chromium = manager.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        except Exception as e:
            pytest.skip(f"Chromium at {CHROMIUM} could not be launched: {e}")
        yield chromium
        chromium.close()
    finally:
        manager.stop()


@pytest.fixture
def artifacts(tmp_path) -> str:
    path = os.environ.get("LIMN_TEST_ARTIFACTS") or str(tmp_path)
    os.makedirs(path, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> List[str]:
    """Two small photos as PNG files: astronaut at 256 px, coffee at 400x600 (above MAX_SIDE)."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    paths = []
    for name, image in (("astronaut.png", data.astronaut()[::2, ::2]), ("coffee.png", data.coffee())):
        path = str(folder / name)
        limn.save_image(path, np.ascontiguousarray(image))
        paths.append(path)
    return paths


# ---- the tests -------------------------------------------------------------------------------


def _all_cards(page, script: str) -> bool:
    return page.evaluate(f"[...document.querySelectorAll('#cards .card')].every(c => {script})")


def test_page_in_chromium(browser, server, direct, photos, artifacts, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page_errors: List[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(server.url + "/")
    assert page.title().startswith("limn")
    # The models come from GET /v1/models; the built-in one is the default.
    page.wait_for_function("document.querySelector('#model').value === 'classical-cartoon'")

    # Two photos through the file picker, then the settings, by keyboard where a user would.
    page.set_input_files("#file-input", photos)
    page.wait_for_function("document.querySelectorAll('#cards .card').length === 2")
    page.focus("#strength")
    for _ in range(5):
        page.keyboard.press("ArrowLeft")
    assert page.input_value("#strength") == str(STRENGTH)
    assert page.text_content("#strength-value") == f"{STRENGTH:.2f}"
    page.uncheck("#head")  # the server has a head model; the plain cartoon is compared below
    page.select_option("#size", str(MAX_SIDE))
    page.select_option("#format", "png")
    page.click("#start")

    # Every card's progress bar reaches 100 % and its result is shown.
    page.wait_for_function(
        "[...document.querySelectorAll('#cards .card')].every(c =>"
        " c.querySelector('.progress').getAttribute('aria-valuenow') === '100' && c.dataset.state === 'done')",
        timeout=TIMEOUT_MS)
    assert _all_cards(page, "c.querySelector('img.after').complete && c.querySelector('img.after').naturalWidth > 0")
    assert _all_cards(page, "c.querySelector('.error').hidden")

    # The before/after slider works from the keyboard.
    first = page.locator("#cards .card").first
    first.locator(".compare-range").focus()
    page.keyboard.press("ArrowRight")
    assert first.locator(".compare").evaluate("e => e.style.getPropertyValue('--pos')") == "51%"
    page.locator("#photos-heading").focus()
    page.wait_for_timeout(300)  # the progress bars' last transition
    page.screenshot(path=os.path.join(artifacts, "serve-page-done.png"), full_page=True)

    # The ZIP built in the browser holds exactly the library's results.
    with page.expect_download() as download_info:
        page.click("#download-all")
    download = download_info.value
    assert download.suggested_filename == "limn-results.zip"
    zip_path = os.path.join(artifacts, "serve-page-results.zip")
    download.save_as(zip_path)
    with zipfile.ZipFile(zip_path) as archive:
        assert archive.testzip() is None  # every CRC-32 matches
        names = sorted(archive.namelist())
        assert names == ["astronaut-cartoon.png", "coffee-cartoon.png"]
        results = {name: archive.read(name) for name in names}
    for path in photos:  # direct["cartoon"]: the built-in model, loaded in this process
        expected = direct["cartoon"].cartoonize(limn.load_image(path), strength=STRENGTH, max_side=MAX_SIDE)
        name = os.path.splitext(os.path.basename(path))[0] + "-cartoon.png"
        got = limn.load_image(results[name])
        assert got.shape == expected.shape, name
        assert np.array_equal(got, expected), f"{name}: {np.count_nonzero(got != expected)} values differ"

    def error_beside(path: str, expected: str, errors_shown: int) -> None:
        """Adds one file and starts: the server's error shows on that file's own card, not elsewhere."""
        page.set_input_files("#file-input", [path])
        card = page.locator("#cards .card", has=page.locator(".name", has_text=os.path.basename(path)))
        card.wait_for()
        page.click("#start")
        error = card.locator(".error")
        error.wait_for(state="visible", timeout=TIMEOUT_MS)
        assert expected in error.text_content()
        assert card.get_attribute("data-state") == "failed"
        assert page.locator("#cards .error:visible").count() == errors_shown

    # A file that is not an image.
    bogus = tmp_path / "notes.txt"
    bogus.write_text("these are notes, not a photo\n")
    error_beside(str(bogus), "Not an image", 1)
    # A photo over the server's --max-upload (4 MiB): 413.
    huge = tmp_path / "huge.png"
    limn.save_image(str(huge), np.random.default_rng(0).integers(0, 256, (1400, 1400, 3), dtype=np.uint8))
    assert huge.stat().st_size > 4 << 20
    error_beside(str(huge), "Too big", 2)
    page.screenshot(path=os.path.join(artifacts, "serve-page.png"), full_page=True)

    # Dark by prefers-color-scheme, and usable at 360 px wide (nothing wider than the screen).
    def shot(name: str, scheme: str) -> None:
        page.emulate_media(color_scheme=scheme)
        page.wait_for_timeout(400)  # let the colour transitions of the buttons settle
        page.screenshot(path=os.path.join(artifacts, name), full_page=True)

    shot("serve-page-dark.png", "dark")
    page.set_viewport_size({"width": 360, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    shot("serve-page-360.png", "light")
    shot("serve-page-360-dark.png", "dark")

    assert not page_errors, page_errors
    page.close()
    print(f"screenshots in {artifacts}")


def test_page_queue_busy_cancel_and_key(browser, start_server, photo, tmp_path, artifacts):
    """With --api-key, --concurrency 1 and --queue 1: the page asks for the key and keeps it; while
    a big photo runs, of two more photos one waits in the queue (its position shown) and the other
    is refused with 429 and shows "retrying after N s" beside it; cancelling the big one (DELETE)
    lets both through."""
    key = "page-test-key"
    server = start_server("--api-key", key, "--queue", "1", "--concurrency", "1")
    big = str(tmp_path / "big.jpg")
    limn.save_image(big, photo(2400, 2400, seed=1), quality=90)
    smalls = [str(tmp_path / f"small{i}.png") for i in (1, 2)]
    for i, path in enumerate(smalls):
        limn.save_image(path, photo(192, 256, seed=2 + i))

    context = browser.new_context(viewport={"width": 1024, "height": 900})
    page = context.new_page()
    page_errors: List[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.goto(server.url + "/")
    # No key yet: /v1/models answers 401, the key field opens and says so.
    page.wait_for_selector("#apikey-box.needed[open]")
    page.fill("#apikey", key)
    page.wait_for_function("document.querySelector('#model').value === 'classical-cartoon'")
    page.reload()  # the key was kept in localStorage
    assert page.input_value("#apikey") == key
    page.wait_for_function("document.querySelector('#model').value === 'classical-cartoon'")
    assert page.is_hidden("#head-row")  # no head model loaded
    assert page.is_disabled("#op-restore")  # no restorer loaded

    page.select_option("#size", "0")  # original size: the big photo keeps the one slot busy
    page.set_input_files("#file-input", [big])
    page.click("#start")
    cards = page.locator("#cards .card")
    page.wait_for_function("document.querySelector('#cards .card').dataset.state === 'running'",
                           timeout=TIMEOUT_MS)

    page.set_input_files("#file-input", smalls)
    page.click("#start")
    # One small photo gets the queue's one place, the other a 429 (whichever the server saw first).
    page.wait_for_function(
        "(() => { const c = [...document.querySelectorAll('#cards .card')].slice(1);"
        " const q = c.find(x => x.dataset.state === 'queued'), w = c.find(x => x.dataset.state === 'waiting');"
        " return q && w && q.querySelector('.status').textContent === 'In queue · position 1'"
        " && /^Server busy: retrying after \\d+ s$/.test(w.querySelector('.error').textContent); })()",
        timeout=TIMEOUT_MS)
    assert page.locator("#cards .error:visible").count() == 1
    assert cards.nth(0).locator(".error").is_hidden()
    page.screenshot(path=os.path.join(artifacts, "serve-page-busy.png"), full_page=True)

    cards.nth(0).locator("button.cancel").click()
    page.wait_for_function("document.querySelector('#cards .card').dataset.state === 'cancelled'",
                           timeout=TIMEOUT_MS)
    page.wait_for_function("[...document.querySelectorAll('#cards .card')].slice(1)"
                           ".every(c => c.dataset.state === 'done')", timeout=TIMEOUT_MS)
    for i in (1, 2):
        assert cards.nth(i).locator(".progress").get_attribute("aria-valuenow") == "100"
    assert page.locator("#cards .error:visible").count() == 0
    assert not page_errors, page_errors
    context.close()


def test_page_without_jobs(browser, start_server, direct, photos):
    """/v1/jobs off (--no-jobs, as behind Ray Serve): the page posts to /v1/cartoonize and waits."""
    server = start_server("--no-jobs")
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page_errors: List[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    requests: List[str] = []
    page.on("request", lambda request: requests.append(f"{request.method} {request.url.split('/', 3)[3]}"))
    page.goto(server.url + "/")
    page.wait_for_function("document.querySelector('#model').value === 'classical-cartoon'")
    page.set_input_files("#file-input", photos[:1])
    page.wait_for_function("document.querySelectorAll('#cards .card').length === 1")
    page.select_option("#format", "png")
    page.click("#start")
    page.wait_for_function("document.querySelector('#cards .card').dataset.state === 'done'", timeout=TIMEOUT_MS)
    assert "POST v1/cartoonize" in requests and not any("v1/jobs" in r for r in requests), requests
    with page.expect_download() as download_info:
        page.click("#download-all")
    with zipfile.ZipFile(download_info.value.path()) as archive:
        got = limn.load_image(archive.read("astronaut-cartoon.png"))
    expected = direct["cartoon"].cartoonize(limn.load_image(photos[0]), max_side=1024)  # the page's default size
    assert np.array_equal(got, expected)
    assert not page_errors, page_errors
    page.close()
