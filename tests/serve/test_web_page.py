"""End to end in headless Chromium: type a query, see results, click one, the video plays from its moment."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.serve.conftest import Served, serve_folder
from vitr.serve.app import create_app

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium (Debian package chromium)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Served]]:
    served = serve_folder(tmp_path_factory.mktemp("web"))
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(served.index, [served.root]), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", served
    server.should_exit = True
    thread.join(timeout=10)
    served.index.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--mute-audio",
        "--autoplay-policy=no-user-gesture-required",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or str(CHROMEDRIVER)))
    yield driver
    driver.quit()


def test_search_click_plays_from_the_moment(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, served = live_server
    browser.get(url + "/")
    box = browser.find_element(By.ID, "query")
    box.send_keys("a red square moving", Keys.ENTER)
    wait = WebDriverWait(browser, 20)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 4)
    cards = browser.find_elements(By.CSS_SELECTOR, "#results .result")
    assert "Results 1–4" in browser.find_element(By.ID, "status").text
    assert all("score" in c.text for c in cards)
    wait.until(
        lambda d: d.execute_script(
            "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"
        )
    )

    card = max(cards, key=lambda c: float(c.get_attribute("data-start")))  # the latest moment, to see a seek
    start = float(card.get_attribute("data-start"))
    video_id = card.get_attribute("data-video-id")
    assert start > 0
    card.click()
    player = browser.find_element(By.ID, "player")
    assert player.is_displayed()
    assert player.get_attribute("src").endswith(f"/api/videos/{video_id}/file#t={start:g},{start + 1:g}")
    wait.until(lambda d: d.execute_script("return arguments[0].readyState >= 1", player))
    current = browser.execute_script("return arguments[0].currentTime", player)
    assert start - 0.05 <= current <= start + 1.0


def test_empty_query_shows_a_hint_instead_of_searching(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, _ = live_server
    browser.get(url + "/")
    browser.find_element(By.ID, "query").send_keys("   ", Keys.ENTER)
    assert browser.find_element(By.ID, "status").text == "Type what to look for."
    assert browser.find_elements(By.CSS_SELECTOR, "#results .result") == []
