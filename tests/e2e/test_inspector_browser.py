"""The inspector page in a real browser: headless Debian Chromium driven by Selenium opens the HTML file
``bot inspect`` wrote and finds the waveforms, turns, barge-in, tool call, filler and latency bars visible
with a size; the page loads nothing besides itself. A screenshot goes into the test's tmp_path (and to
``$INSPECTOR_SCREENSHOT`` when set), for a person to look at. Then ``/calls`` served on 127.0.0.1: the
browser opens it once with ``?token=``, lands on the clean URL with an HttpOnly session cookie scripts
cannot read, and follows a link (which carries no token) to the call's page.

Needs ``chromium``, ``chromium-driver`` (apt) and ``selenium`` (pip): skipped without them, except under
``CI``, which must install them: there it fails.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.inspector import cli as inspector_cli
from bot.inspector.auth import COOKIE
from bot.inspector.routes import calls_routes
from bot.recording import LocalStore
from tests.support.sample_call import SID, XSS, write_sample_call

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BROWSER_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium is not installed (pip install selenium)"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {missing}")
        pytest.skip(missing)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (*BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def _visible(driver: Any, css: str, count: int | None = None) -> list[Any]:
    from selenium.webdriver.common.by import By

    elements = driver.find_elements(By.CSS_SELECTOR, css)
    assert elements, f"no {css}"
    if count is not None:
        assert len(elements) == count, css
    for element in elements:
        assert element.is_displayed(), css
        assert element.size["width"] > 0 and element.size["height"] > 0, (css, element.size)
    return list(elements)


def test_inspector_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    folder = write_sample_call(tmp_path / "recordings", transcript=XSS)
    page = tmp_path / "inspect.html"
    parser = argparse.ArgumentParser()
    inspector_cli.add_arguments(parser)
    assert inspector_cli.run(parser.parse_args([str(folder), "-o", str(page)])) == 0

    browser.get(page.resolve().as_uri())
    assert SID in browser.title
    caller = _visible(browser, "#waveform-caller", 1)[0]
    bot = _visible(browser, "#waveform-bot", 1)[0]
    assert caller.size["width"] == bot.size["width"] > 400  # one time axis for both sides
    assert caller.location["x"] == bot.location["x"]
    _visible(browser, "tr.turn", 4)
    _visible(browser, "#timeline .turn-span", 4)
    _visible(browser, "#timeline .barge-in", 1)
    _visible(browser, "#turns .barge-in", 1)
    _visible(browser, ".tool-call", 1)
    _visible(browser, "#turns .filler", 1)
    _visible(browser, "#timeline .phrase.filler", 1)
    _visible(browser, "#timeline .cut", 1)
    bars = _visible(browser, ".latency-bar", 4)
    widths = [bar.size["width"] for bar in bars]
    assert widths[1] > widths[3]  # turn 2 (1120 ms) took longer than turn 4 (610 ms)

    # The transcript is text, not markup: nothing ran, and it reads back as typed.
    assert browser.execute_script("return window.alertCalled === undefined && document.scripts.length === 0")
    assert XSS in browser.find_element("css selector", "#turn-2 .transcript").text
    # Nothing but the page itself was loaded.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0

    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(int(height) + 40, 4000))
    shot = tmp_path / "inspector.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    extra = os.environ.get("INSPECTOR_SCREENSHOT")
    if extra:
        Path(extra).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, extra)


TOKEN = "browser-token/6a1f+0c9e=4b7d2e58a3f1"


@pytest.fixture
def calls_server(tmp_path: Path) -> Iterator[str]:
    """``/calls`` over one recorded call, served on 127.0.0.1 from a thread (selenium is synchronous)."""
    write_sample_call(tmp_path / "served")
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_routes(calls_routes(LocalStore(tmp_path / "served"), TOKEN))
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{port}"  # a secure context for Chromium: its Secure cookies are kept
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=30)
        loop.close()


def test_the_token_is_exchanged_for_a_cookie_in_chromium(browser: Any, calls_server: str) -> None:
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    browser.get(f"{calls_server}/calls?token={quote(TOKEN, safe='')}")
    assert browser.current_url == f"{calls_server}/calls"  # redirected: the token left the address bar
    assert SID in browser.page_source
    (cookie,) = browser.get_cookies()
    assert cookie["name"] == COOKIE and cookie["httpOnly"] and cookie["secure"]
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/calls" and TOKEN not in cookie["value"]
    assert browser.execute_script("return document.cookie") == ""  # scripts cannot read it
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#calls a")]
    assert links and not any("token" in link for link in links)
    browser.find_element(By.CSS_SELECTOR, "#calls a").click()  # the cookie opens the call's page
    assert "/calls/" in browser.current_url and "token" not in browser.current_url
    _visible(browser, "#waveform-caller", 1)
    _visible(browser, "#audio", 1)
