"""A PNG of the search page's results for one query, taken with headless Chromium, for the docs.

    python scripts/screenshot.py --index INDEX --query "a red square moving left" --out docs/img/results-page.png

Serves INDEX on a free local port as `vitr serve` does, types the query, waits for every thumbnail, plays the
first result from its moment (so the player and the timelines show) and saves the page as it looks at
--width x --height. Needs Debian's chromium and chromium-driver, and selenium (the `dev` extra).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn

from vitr.index.video_index import VideoIndex
from vitr.serve.app import ServeSettings, create_app
from vitr.serve.server import default_allowed_hosts, server_config

CHROMIUM = "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshot(index_dir: Path, query: str, out: Path, width: int, height: int, play: bool) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    index = VideoIndex(index_dir)
    port = _free_port()
    app = create_app(index, settings=ServeSettings(allowed_hosts=default_allowed_hosts("127.0.0.1")))
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
                 "--autoplay-policy=no-user-gesture-required", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver") or "chromedriver"))
    try:
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )
        driver.get(f"http://127.0.0.1:{port}/")
        driver.find_element(By.ID, "query").send_keys(query, Keys.ENTER)
        wait = WebDriverWait(driver, 120)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#results .hit"))
        wait.until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"))
        if play:
            driver.find_element(By.CSS_SELECTOR, "#results .result").click()
            player = driver.find_element(By.ID, "player")
            wait.until(lambda d: d.execute_script("return arguments[0].readyState >= 2", player))
            driver.execute_script("arguments[0].pause(); window.scrollTo(0, 0);", player)
        out.parent.mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(out))
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
        index.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="an index made by `vitr index`")
    parser.add_argument("--query", required=True, help="what to search for")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--no-play", dest="play", action="store_false", help="do not open the first result")
    args = parser.parse_args(argv)
    screenshot(args.index, args.query, args.out, args.width, args.height, args.play)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
