"""End to end in headless Chromium: type a query, see results, click one, the video plays from its moment."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from tests.serve.conftest import Served, serve_folder
from tests.serve.word_index import word_index
from vitr.serve.app import ServeSettings, create_app
from vitr.serve.server import default_allowed_hosts, server_config

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path(shutil.which("chromedriver") or "/usr/bin/chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs /usr/bin/chromium and chromedriver (Debian packages chromium and chromium-driver; .ci/run installs "
    "them)",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running(app) -> Iterator[str]:  # noqa: ANN001
    """`app` served by uvicorn on a free local port, as `vitr serve` runs it; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Served]]:
    served = serve_folder(tmp_path_factory.mktemp("web"))
    settings = ServeSettings(allowed_hosts=default_allowed_hosts("127.0.0.1"))
    with running(create_app(served.index, [served.root], settings)) as url:
        yield url, served
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


def test_weak_best_hits_are_said_on_the_page(tmp_path: Path, browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    index = word_index(tmp_path)
    try:
        with running(create_app(index, index.meta.roots())) as url:
            browser.get(url + "/")
            wait = WebDriverWait(browser, 20)
            note = browser.find_element(By.ID, "weak-note")
            for query, weak in (("a person playing a guitar on stage", True), ("a red square moving right", False)):
                box = browser.find_element(By.ID, "query")
                box.clear()
                box.send_keys(query, Keys.ENTER)
                wait.until(lambda d, q=query: q in d.find_element(By.ID, "status").text)
                assert note.is_displayed() is weak
                first = browser.find_elements(By.CSS_SELECTOR, "#results .result")[0]
                assert ("weak match" in first.text) is weak and ("weak" in first.get_attribute("class")) is weak
            assert "Weak matches" not in browser.find_element(By.TAG_NAME, "body").text
    finally:
        index.close()


def _search(browser, query: str) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = browser.find_element(By.ID, "query")
    box.clear()
    box.send_keys(query, Keys.ENTER)


def test_the_pager_shows_only_when_there_is_another_page(tmp_path: Path, browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    many = [f"{word} {shape} number{i}" for i, (word, shape) in enumerate(
        (w, s) for w in ("red", "blue", "green", "yellow", "white", "purple") for s in ("square", "disc", "cross",
                                                                                        "triangle", "circle"))]
    index = word_index(tmp_path, many)  # 30 videos: more than one page of 24
    try:
        with running(create_app(index, index.meta.roots())) as url:
            browser.get(url + "/")
            pager = browser.find_element(By.ID, "pager")
            assert not pager.is_displayed()  # the empty page has nothing to turn
            assert not browser.find_element(By.ID, "next").is_displayed()
            wait = WebDriverWait(browser, 20)
            _search(browser, "red square")
            wait.until(lambda d: "Results 1–24" in d.find_element(By.ID, "status").text)
            assert pager.is_displayed()
            assert browser.find_element(By.ID, "prev").get_attribute("disabled") == "true"
            browser.find_element(By.ID, "next").click()
            wait.until(lambda d: "Results 25–30" in d.find_element(By.ID, "status").text)
            assert browser.find_element(By.ID, "next").get_attribute("disabled") == "true"
            assert browser.find_element(By.ID, "prev").get_attribute("disabled") is None
    finally:
        index.close()


def test_a_search_that_fits_one_page_has_no_pager(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.get(url + "/")
    _search(browser, "a red square")
    WebDriverWait(browser, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 4)
    assert not browser.find_element(By.ID, "pager").is_displayed()


@pytest.mark.parametrize(
    ("fake_fetch", "expected"),
    [
        ("() => Promise.reject(new TypeError('Failed to fetch'))", "could not be reached"),
        ("async () => new Response('<html>502 Bad Gateway</html>', {status: 502, headers: {'content-type': "
         "'text/html'}})", "HTTP 502"),
        ("async () => new Response('<html>ok?</html>', {status: 200, headers: {'content-type': 'text/html'}})",
         "unreadable reply"),
    ],
    ids=["unreachable", "error-page", "not-json"],
)
def test_a_failed_search_shows_an_error_not_searching_forever(
    live_server: tuple[str, Served], browser, fake_fetch: str, expected: str  # noqa: ANN001
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.get(url + "/")
    browser.execute_script(f"window.fetch = {fake_fetch};")
    _search(browser, "a red square")
    status = browser.find_element(By.ID, "status")
    WebDriverWait(browser, 10).until(lambda d: status.text != "Searching…" and status.text != "")
    assert expected in status.text
    assert "error" in status.get_attribute("class")
    assert browser.find_elements(By.CSS_SELECTOR, "#results .result") == []
    assert not browser.find_element(By.ID, "pager").is_displayed()


def test_a_new_search_clears_the_previous_player(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20)
    _search(browser, "a red square")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .result")) == 4)
    browser.find_elements(By.CSS_SELECTOR, "#results .result")[0].click()
    player = browser.find_element(By.ID, "player")
    assert player.is_displayed() and browser.find_element(By.ID, "player-caption").text
    _search(browser, "a blue circle")
    wait.until(lambda d: "a blue circle" in d.find_element(By.ID, "status").text)
    assert not player.is_displayed()
    assert browser.execute_script("return arguments[0].getAttribute('src')", player) is None
    assert browser.find_element(By.ID, "player-caption").text == ""


def test_the_page_has_an_icon(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    url, _ = live_server
    browser.get(url + "/")
    status = browser.execute_async_script(
        "const done = arguments[0];"
        "fetch('/favicon.ico').then(r => done(r.status + ' ' + r.headers.get('content-type')))"
    )
    assert status == "200 image/svg+xml"


def test_each_result_downloads_its_moment(live_server: tuple[str, Served], browser, tmp_path: Path) -> None:  # noqa: ANN001
    import av
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.get(url + "/")
    wait = WebDriverWait(browser, 30)
    _search(browser, "a red square")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit .download")) == 4)
    hit = browser.find_elements(By.CSS_SELECTOR, "#results .hit")[0]
    button = hit.find_element(By.CSS_SELECTOR, ".result")
    link = hit.find_element(By.CSS_SELECTOR, ".download")
    start = float(button.get_attribute("data-start"))
    assert link.get_attribute("href") == (
        f"{url}/api/videos/{button.get_attribute('data-video-id')}/clip?start={start:g}&end={start + 1:g}"
    )
    assert link.text.startswith("Download ")
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
    link.click()
    wait.until(lambda _: [p for p in tmp_path.iterdir() if p.suffix == ".mp4"])
    (clip,) = [p for p in tmp_path.iterdir() if p.suffix == ".mp4"]
    name = button.find_element(By.CSS_SELECTOR, ".name").text
    assert clip.name.startswith(Path(name).stem + "_")
    with av.open(str(clip)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 8  # one second at 8 fps: the moment, and it plays


def test_each_hit_shows_what_was_said_and_plays_from_it(tmp_path: Path, browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tests.index.test_text_tracks import srt
    from tests.index.videos import TINY_MODEL
    from tests.serve.test_text_search import subtitled_folder
    from vitr.index.indexer import update_index
    from vitr.index.video_index import VideoIndex

    root = subtitled_folder(tmp_path / "videos")
    (root / "red.srt").write_text(srt((0.5, 1.5, "fish & chips <lighthouse beam")))  # markup, as innerHTML
    index = VideoIndex.create(tmp_path / "index", TINY_MODEL)
    update_index(index, root, window=1.0, stride=0.5, progress=False, workers=0)
    try:
        with running(create_app(index, [root])) as url:
            browser.get(url + "/")
            wait = WebDriverWait(browser, 20)
            _search(browser, "lighthouse keeper")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit")) == 3)
            first = browser.find_elements(By.CSS_SELECTOR, "#results .hit")[0]
            assert first.find_element(By.CSS_SELECTOR, ".name").text == "green.mp4"
            assert "subtitles" in first.find_element(By.CSS_SELECTOR, ".sources").text
            (said,) = first.find_elements(By.CSS_SELECTOR, ".evidence")
            assert said.find_element(By.CSS_SELECTOR, ".snippet").text == "the lighthouse keeper sings"
            assert [m.text for m in said.find_elements(By.CSS_SELECTOR, "mark")] == ["lighthouse", "keeper"]
            assert "(en)" in said.find_element(By.CSS_SELECTOR, ".when").text

            # subtitle text is shown as text, never parsed as markup
            red = next(h for h in browser.find_elements(By.CSS_SELECTOR, "#results .hit")
                       if h.find_element(By.CSS_SELECTOR, ".name").text == "red.mp4")
            snippet = red.find_element(By.CSS_SELECTOR, ".evidence .snippet")
            assert snippet.text == "fish & chips <lighthouse beam"
            assert snippet.find_elements(By.CSS_SELECTOR, "lighthouse") == []
            assert [m.text for m in snippet.find_elements(By.CSS_SELECTOR, "mark")] == ["lighthouse"]

            said.click()  # plays from the cue's start
            player = browser.find_element(By.ID, "player")
            assert player.is_displayed()
            assert player.get_attribute("src").endswith("/file#t=1.2,1.9")
            wait.until(lambda d: d.execute_script("return arguments[0].readyState >= 1", player))
            assert 1.15 <= browser.execute_script("return arguments[0].currentTime", player) <= 2.0

            Select(browser.find_element(By.ID, "mode")).select_by_value("text")
            _search(browser, "lighthouse keeper")
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit")) == 2)  # only what says it
    finally:
        index.close()


def _names(browser) -> list[str]:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    return [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#results .result .name")]


def test_an_uploaded_image_or_video_is_the_query(live_server: tuple[str, Served], browser, tmp_path: Path) -> None:  # noqa: ANN001
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from tests.index.videos import shape_frames

    url, served = live_server
    still = tmp_path / "still.jpg"
    Image.fromarray(shape_frames("yellow", 16)[8]).save(still)
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20)
    status = browser.find_element(By.ID, "status")
    for upload, best in ((still, "clips/yellow.mp4"), (served.root / "red.mp4", "red.mp4")):
        browser.find_element(By.ID, "upload").send_keys(str(upload))
        wait.until(lambda d, name=upload.name: f"“video {name}”" in status.text)
        assert "error" not in status.get_attribute("class")
        assert _names(browser)[0] == best
        assert len(browser.find_elements(By.CSS_SELECTOR, "#results .hit .timeline")) == 4


def test_more_like_this_searches_by_that_result(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20)
    _search(browser, "a blue square")
    wait.until(lambda d: len(_names(d)) == 4)
    hits = browser.find_elements(By.CSS_SELECTOR, "#results .hit")
    hit = next(h for h in hits if h.find_element(By.CSS_SELECTOR, ".name").text == "blue.mp4")
    buttons = browser.find_elements(By.CSS_SELECTOR, "#results .hit .similar")
    assert len(buttons) == 4  # on every result
    hit.find_element(By.CSS_SELECTOR, ".similar").click()
    wait.until(lambda d: "similar to blue.mp4" in d.find_element(By.ID, "status").text)
    names = _names(browser)
    assert "blue.mp4" not in names and len(names) == 3
    assert names[0] == "green.mp4"  # the one other video that shows a blue square
    green = browser.find_elements(By.CSS_SELECTOR, "#results .hit")[0]
    best = green.find_element(By.CSS_SELECTOR, ".timeline .segment.best")
    assert float(best.get_attribute("data-start")) < 2.0  # its timeline peaks where it shows the blue square


def test_filters_narrow_the_results_by_folder_and_score(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20)
    status = browser.find_element(By.ID, "status")
    browser.find_element(By.ID, "folder").send_keys("clips/")
    _search(browser, "a square")
    wait.until(lambda d: "Results 1–1" in status.text)
    assert _names(browser) == ["clips/yellow.mp4"]
    folder = browser.find_element(By.ID, "folder")
    folder.clear()
    browser.find_element(By.ID, "min-score").send_keys("1", Keys.ENTER)  # re-runs the search on screen
    wait.until(lambda d: "No videos match" in status.text)
    assert _names(browser) == []
    assert not browser.find_element(By.ID, "pager").is_displayed()  # an empty page has nothing to turn
    minimum = browser.find_element(By.ID, "min-score")
    minimum.clear()
    minimum.send_keys("-1", Keys.ENTER)
    wait.until(lambda d: "Results 1–4" in status.text)


def test_the_api_docs_render_without_a_network(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.get(url + "/docs")
    WebDriverWait(browser, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".opblock")) >= 5)
    paths = {e.text for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert {"/api/search", "/api/search/video", "/api/search/similar"} <= paths


def _timeline(hit) -> list:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    return hit.find_elements(By.CSS_SELECTOR, ".timeline .segment")


def test_each_result_shows_where_it_matched_and_a_segment_plays_from_there(
    live_server: tuple[str, Served], browser  # noqa: ANN001
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, served = live_server
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20)
    _search(browser, "a red square")
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit .timeline")) == 4)
    api = {h["name"]: h for h in served.client.get("/api/search", params={"q": "a red square", "k": 24}).json()[
        "results"]}
    for hit in browser.find_elements(By.CSS_SELECTOR, "#results .hit"):
        name = hit.find_element(By.CSS_SELECTOR, ".name").text
        segments = _timeline(hit)
        assert [float(s.get_attribute("data-start")) for s in segments] == [p["start"] for p in api[name]["timeline"]]
        (best,) = hit.find_elements(By.CSS_SELECTOR, ".timeline .segment.best")
        assert best.get_attribute("data-start") == hit.find_element(By.CSS_SELECTOR, ".result").get_attribute(
            "data-start")
        heights = [s.find_element(By.CSS_SELECTOR, ".level").size["height"] for s in segments]
        assert heights[segments.index(best)] == max(heights) and min(heights) > 0
        bar = hit.find_element(By.CSS_SELECTOR, ".timeline").rect
        assert all(bar["x"] - 1 <= s.rect["x"] and s.rect["x"] + s.rect["width"] <= bar["x"] + bar["width"] + 1
                   for s in segments)  # every stretch drawn inside the bar, in time order
        assert [s.rect["x"] for s in segments] == sorted(s.rect["x"] for s in segments)

    red = next(h for h in browser.find_elements(By.CSS_SELECTOR, "#results .hit")
               if h.find_element(By.CSS_SELECTOR, ".name").text == "red.mp4")
    first = _timeline(red)[0]
    assert "best" not in first.get_attribute("class")
    first.click()  # the stretch at 0 s, not the hit's own moment
    player = browser.find_element(By.ID, "player")
    assert player.is_displayed()
    assert player.get_attribute("src").endswith("/file#t=0,1")
    assert browser.find_element(By.ID, "player-caption").text == "red.mp4 — 0:00–0:01"


def test_the_page_works_from_the_keyboard(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20)
    focused = browser.switch_to.active_element
    assert focused.get_attribute("id") == "query"  # the page opens ready to type
    focused.send_keys("a red square", Keys.ENTER)
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit .timeline")) == 4)

    def press(*keys: str) -> None:  # to whatever has the focus, as a user's keyboard does
        chord = ActionChains(browser)
        for key in keys[:-1]:
            chord.key_down(key)
        chord.send_keys(keys[-1])
        for key in keys[:-1]:
            chord.key_up(key)
        chord.perform()

    def tab_to(selector: str, limit: int = 20) -> None:
        for _ in range(limit):
            press(Keys.TAB)
            if browser.execute_script(f"return document.activeElement.matches({selector!r})"):
                return
        raise AssertionError(f"Tab never reached {selector}")

    tab_to("#results .hit:first-child .result")
    press(Keys.ENTER)
    player = browser.find_element(By.ID, "player")
    first = browser.find_element(By.CSS_SELECTOR, "#results .hit:first-child .result")
    assert player.is_displayed() and player.get_attribute("data-start") == first.get_attribute("data-start")

    # the timeline is one tab stop, on its best stretch; the arrow keys and Home/End move along it
    press(Keys.TAB)
    assert browser.execute_script("return document.activeElement.matches('#results .hit:first-child .segment.best')")
    press(Keys.HOME)
    press(Keys.ARROW_RIGHT)
    segments = _timeline(browser.find_element(By.CSS_SELECTOR, "#results .hit:first-child"))
    assert browser.switch_to.active_element == segments[1]
    press(Keys.ENTER)
    assert player.get_attribute("data-start") == segments[1].get_attribute("data-start") == "0.5"
    press(Keys.END)
    assert browser.switch_to.active_element == segments[-1]
    press(Keys.TAB)  # leaves the timeline for the next control
    assert browser.execute_script("return document.activeElement.matches('#results .hit:first-child .download')")
    press(Keys.SHIFT, Keys.TAB)  # back in: on the stretch last chosen
    assert browser.switch_to.active_element == segments[-1]

    tab_to("#results .hit:first-child .similar")
    press(Keys.ENTER)
    wait.until(lambda d: "similar to" in d.find_element(By.ID, "status").text)


def test_the_page_fits_a_small_screen(live_server: tuple[str, Served], browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, _ = live_server
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride", {"width": 360, "height": 740, "deviceScaleFactor": 2, "mobile": True}
    )
    try:
        browser.get(url + "/")
        assert browser.execute_script("return window.innerWidth") == 360
        _search(browser, "a red square")
        WebDriverWait(browser, 20).until(
            lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results .hit .timeline")) == 4)
        # nothing sticks out sideways: no horizontal scrolling, every control inside the screen
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 360
        for selector in ("#query", "#mode", "#search-button", "#upload", "#folder", "#min-score", "#apply-filters",
                         "#results .hit", "#results .timeline", "#results .download", "#results .similar"):
            for element in browser.find_elements(By.CSS_SELECTOR, selector):
                box = element.rect
                assert 0 <= box["x"] and box["x"] + box["width"] <= 360, (selector, box)
        hits = browser.find_elements(By.CSS_SELECTOR, "#results .hit")
        assert len({h.rect["x"] for h in hits}) == 1  # one column
        assert all(h.find_element(By.CSS_SELECTOR, ".timeline").rect["width"] > 250 for h in hits)
        segment = _timeline(hits[0])[0]
        segment.click()  # a stretch is big enough to tap
        assert browser.find_element(By.ID, "player").is_displayed()
        assert browser.find_element(By.ID, "player").rect["width"] <= 360
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


@pytest.mark.slow  # a second browser and server in a process of their own
def test_the_screenshot_script_saves_the_results_page(live_server: tuple[str, Served], tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from PIL import Image

    _, served = live_server
    out = tmp_path / "page.png"
    script = Path(__file__).resolve().parents[2] / "scripts" / "screenshot.py"
    done = subprocess.run(
        [sys.executable, str(script), "--index", str(served.index.dir), "--query", "a red square", "--out", str(out),
         "--width", "800", "--height", "700"],
        capture_output=True, text=True, env=os.environ, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    with Image.open(out) as shot:
        assert shot.size == (800, 700)
        assert len(shot.getcolors(256) or []) > 16  # a page with pictures on it, not a blank one
