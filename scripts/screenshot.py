"""A PNG of the search page's results for one query, taken with headless Chromium, for the docs.

    python scripts/screenshot.py --lab LAB --work /tmp/shot --out docs/img/results-page.png
    python scripts/screenshot.py --index INDEX --query "a red square moving left" --out shot.png

With --lab (a lab made by `vitr quickstart` or `vitr synth` + `vitr pretrain`), it first makes reels of the lab's
test clips, `CLIPS_PER_REEL` one after another, indexes them in 1 s windows with the lab's CLIP under --work, and
asks for the caption of the middle clip of the first reel, so the timelines have somewhere to peak. It serves the
index on a free local port as `vitr serve` does, types the query, waits for every thumbnail, plays the first
result from its moment and saves the page as it looks at --width x --height. Needs Debian's chromium and
chromium-driver, and selenium (the `dev` extra).
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
from PIL import Image

from vitr.index.indexer import update_index
from vitr.index.video_index import VideoIndex
from vitr.model.factory import ModelSpec
from vitr.serve.app import ServeSettings, create_app
from vitr.serve.server import default_allowed_hosts, server_config

CHROMIUM = "/usr/bin/chromium"
REELS = 8
CLIPS_PER_REEL = 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_reels(lab: Path, work: Path) -> tuple[Path, str]:
    """Reels of the lab's test clips under work/videos, indexed in work/index -> (index, the query)."""
    import csv

    import av
    import numpy as np

    from vitr.video.writer import write_video

    with (lab / "test.csv").open() as f:
        rows = list(csv.DictReader(f))[: REELS * CLIPS_PER_REEL]
    if len(rows) < REELS * CLIPS_PER_REEL:
        raise SystemExit(f"{lab / 'test.csv'} lists {len(rows)} test clips; {REELS * CLIPS_PER_REEL} are needed")
    for reel in range(REELS):
        frames, fps = [], 8.0
        for row in rows[reel * CLIPS_PER_REEL : (reel + 1) * CLIPS_PER_REEL]:
            with av.open(str(lab / row["video"])) as container:
                fps = float(container.streams.video[0].average_rate or fps)
                frames += [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
        write_video(work / "videos" / f"reel{reel}.mp4", np.stack(frames), fps=fps)
    spec = ModelSpec(backbone=str((lab / "clip").resolve()), head="meanP", precision="fp32")
    index = VideoIndex.create(work / "index", spec)
    try:
        update_index(index, work / "videos", window=1.0, stride=0.5, progress=False, workers=0)
    finally:
        index.close()
    return work / "index", rows[CLIPS_PER_REEL // 2]["caption"]


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
        # a 256-colour palette keeps a page of flat colours sharp at a third of the size, for the repository
        with Image.open(out) as shot:
            shot.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(out, optimize=True)
    finally:
        driver.quit()
        server.should_exit = True
        thread.join(timeout=10)
        index.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--index", type=Path, help="an index made by `vitr index`")
    source.add_argument("--lab", type=Path, help="a lab with a pretrained CLIP, to make and index reels of")
    parser.add_argument("--work", type=Path, help="with --lab: an empty folder for the reels and their index")
    parser.add_argument("--query", help="what to search for (with --lab: the default is a clip's caption)")
    parser.add_argument("--out", type=Path, required=True, help="the PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=960)
    parser.add_argument("--no-play", dest="play", action="store_false", help="do not open the first result")
    args = parser.parse_args(argv)
    index, query = args.index, args.query
    if args.lab is not None:
        if args.work is None or (args.work.exists() and any(args.work.iterdir())):
            parser.error("--lab needs --work, an empty or new folder")
        index, caption = lab_reels(args.lab, args.work)
        query = query or caption
    elif query is None:
        parser.error("--index needs --query")
    screenshot(index, query, args.out, args.width, args.height, args.play)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
