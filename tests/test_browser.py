"""The app in a real browser: Debian's Chromium driven by Selenium through ChromeDriver.

The real agent (SmolLM2, the real embedder, a real Chroma index of the small catalog) is
served on a free localhost port; the tests type, click and read the page like a user.
`make test` installs Chromium first (scripts/install_browser.sh); when it is missing these
tests fail with a message saying how to install it: they never skip.
Screenshots go to tests/screenshots/ (ignored by git).
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crs.agent import Agent
from crs.catalog import Catalog
from tests.conftest import free_port, test_config

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
CHROME_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
INSTALL_HINT = "run `sudo scripts/install_browser.sh` (Debian: apt-get install chromium chromium-driver)"


def browser_paths() -> tuple[str, str]:
    """Chromium and ChromeDriver: $CRS_CHROMIUM / $CRS_CHROMEDRIVER, else Debian's."""
    chromium = os.environ.get("CRS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    driver = os.environ.get("CRS_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"
    missing = [p for p in (chromium, driver) if not os.access(p, os.X_OK)]
    if missing:
        raise FileNotFoundError(f"not found: {', '.join(missing)}; {INSTALL_HINT}")
    return chromium, driver


def start_chrome(width: int = 1400, height: int = 1200) -> Any:
    """A headless Chromium with a new empty profile, driven by Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_paths()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--window-size={width},{height}")
    opts.add_argument("--user-data-dir=" + tempfile.mkdtemp(prefix="crs-chrome-"))
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    browser.set_page_load_timeout(60)
    return browser


class Page:
    """The crs page in a browser, by the elem_ids crs/app/ui.py gives its parts."""

    def __init__(self, browser: Any, url: str, shots: Path = SCREENSHOTS) -> None:
        self.browser, self.url, self.shots = browser, url, shots

    def wait(self, what: str, check: Callable[[], object], timeout: float = 120) -> Any:
        """Poll ``check`` until it returns something truthy; on timeout fail with the page text."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = check()
            except Exception:  # the element may be re-rendering
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                self.shot("timeout")
                body = self.browser.find_element("tag name", "body").text[-1500:]
                raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; the page shows:\n{body}")
            time.sleep(0.2)

    def css(self, selector: str) -> list[Any]:
        return self.browser.find_elements("css selector", selector)

    def text(self, elem_id: str) -> str:
        found = self.css(f"#{elem_id}")
        return found[0].text if found else ""

    def shot(self, name: str) -> Path:
        self.shots.mkdir(parents=True, exist_ok=True)
        path = self.shots / f"{name}.png"
        self.browser.save_screenshot(str(path))
        return path

    def open(self) -> None:
        self.browser.get(self.url)
        self.wait("the chat input", lambda: self.css("#crs-input textarea"), 60)

    def send(self, message: str) -> None:
        box = self.css("#crs-input textarea")[0]
        box.clear()
        box.send_keys(message)
        self.css("#crs-send")[0].click()

    def bot_messages(self) -> list[str]:
        return [m.text for m in self.css("#crs-chat .message.bot, #crs-chat [data-testid='bot']") if m.text.strip()]

    def cards(self) -> list[tuple[str, str]]:
        """(item id, title) of the visible cards, in order."""
        out = []
        for body in self.css("[id^='crs-card-'] [data-item-id]"):
            if body.is_displayed():
                out.append((body.get_attribute("data-item-id"), body.find_element("css selector", "h4").text))
        return out

    def tab(self, label: str) -> None:
        tabs = [t for t in self.css("button[role='tab']") if label in t.text]
        assert tabs, f"no tab {label!r}"
        tabs[0].click()

    def profile_box(self) -> Any:
        return self.wait("the profile editor", lambda: self.css("#crs-profile-text textarea")[0], 30)


@pytest.fixture(scope="module")
def browser_ready() -> None:
    try:
        import selenium  # noqa: F401

        browser_paths()
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]'")
    except FileNotFoundError as exc:
        pytest.fail(f"the browser tests need Chromium and ChromeDriver: {exc}")


@pytest.fixture(scope="module")
def real_agent(
    tmp_path_factory: pytest.TempPathFactory,
    small_catalog: Catalog,
    catalog: Catalog,
    embedder,
    local_llm,  # noqa: ANN001
) -> Agent:
    """The real agent: SmolLM2, the real embedder and a real Chroma index, with a profile store."""
    from crs.profiles.db import ProfileStore
    from crs.rank.store import ItemStore

    cfg = test_config(tmp_path_factory.mktemp("browser"))
    store = ItemStore(cfg, embedder=embedder)
    store.index(small_catalog.items, progress=False)
    agent = Agent(cfg, catalog, store, local_llm)
    if getattr(agent, "profiles", None) is None:
        agent.profiles = ProfileStore.from_config(cfg)  # type: ignore[attr-defined]
    return agent


def serve(agent: Agent, auth: str = "") -> tuple[Any, str]:
    from crs.app.ui import launch

    if auth:
        agent = copy.copy(agent)
        agent.cfg = dataclasses.replace(agent.cfg, serve=dataclasses.replace(agent.cfg.serve, auth=auth))
    port = free_port()
    demo = launch(agent, "127.0.0.1", port, prevent_thread_lock=True)
    return demo, f"http://127.0.0.1:{port}/"


@pytest.fixture(scope="module")
def app(browser_ready: None, real_agent: Agent) -> Iterator[str]:
    demo, url = serve(real_agent)
    yield url
    demo.close()


@pytest.fixture
def page(app: str) -> Iterator[Page]:
    browser = start_chrome()
    try:
        yield Page(browser, app)
    finally:
        browser.quit()


def test_chat_cards_thumbs_down_and_profile(page: Page, real_agent: Agent) -> None:
    page.open()
    assert "Tell me a film you loved" in page.text("crs-chat")  # the welcome, with example prompts
    assert any("I loved Alien" in b.text for b in page.css("#crs-chat button"))
    assert page.cards() == []
    page.send("I loved Alien but no romance please")
    # The reply streams in; the cards come with the end of the turn.
    cards = page.wait("recommendation cards", page.cards)
    reply = page.wait("the assistant's reply", lambda: page.bot_messages())[-1]
    assert len(reply) > 20 and "My picks" in reply, reply
    assert "Tool steps" in page.text("crs-chat")  # folded away under <details>
    assert len(cards) >= 3
    assert "Alien (1979)" in page.text("crs-likes") and "Romance" in page.text("crs-dislikes")
    first = page.css("#crs-card-0")[0].text
    assert "Wikipedia" in first and "(" in first  # title (year), genres · Wikipedia, reason
    page.shot("chat")

    # Thumbs down on the second card: it leaves the cards and shows as a dislike.
    item_id, title = cards[1]
    page.css("#crs-card-1-down")[0].click()
    page.wait(f"{title} in the dislikes", lambda: title in page.text("crs-dislikes"), 30)
    page.wait(f"{title} to leave the cards", lambda: item_id not in [i for i, _ in page.cards()], 30)
    assert [c for c in cards if c[0] != item_id] == page.cards()
    assert "not for you" in page.text("crs-feedback")
    page.shot("after_thumbs_down")

    # Removing a chip retracts it: the × on "Romance".
    token = next(t for t in page.css("#crs-dislikes .token") if "Romance" in t.text)
    token.find_element("css selector", ".token-remove").click()
    page.wait("Romance to be forgotten", lambda: "Romance" not in page.text("crs-dislikes"), 30)
    assert title in page.text("crs-dislikes")

    # The next turn never brings the rejected film back.
    page.send("more like that please")
    page.wait("a second reply", lambda: len(page.bot_messages()) >= 2)
    page.wait("new cards", lambda: page.cards() and page.cards() != [c for c in cards if c[0] != item_id])
    assert item_id not in [i for i, _ in page.cards()]

    # New conversation: chat, cards and chips are cleared.
    page.css("#crs-new")[0].click()
    page.wait("a fresh start", lambda: not page.cards() and not page.bot_messages(), 30)
    assert title not in page.text("crs-dislikes") and "Alien" not in page.text("crs-likes")

    # Profile: edit, save, see the version, reload the page and find it persisted.
    page.tab("Your profile")
    box = page.profile_box()
    box.clear()
    box.send_keys("Mostly tense science fiction.\nLikes:\n- Alien (1979)\nDislikes:\n- Romance")
    page.css("#crs-profile-save")[0].click()
    page.wait("the save to be confirmed", lambda: "Saved as version 1" in page.text("crs-profile-note"), 30)
    assert "version 1" in page.text("crs-profile-status") and "edit:ui" in page.text("crs-profile-history")
    page.shot("profile")
    saved = real_agent.profiles.get("local")  # type: ignore[attr-defined]
    assert saved is not None and saved.text.startswith("Mostly tense science fiction.") and saved.source == "edit:ui"

    page.browser.refresh()
    page.wait("the page after reload", lambda: page.css("#crs-input textarea"), 60)
    page.tab("Your profile")
    page.wait(
        "the saved profile after reload",
        lambda: "Mostly tense science fiction." in page.profile_box().get_attribute("value"),
        30,
    )
    # A reload starts a new conversation: the old belief is gone, the profile is not.
    page.tab("Chat")
    assert "Alien (1979)" not in page.text("crs-likes")


def log_in(url: str, user: str, password: str) -> Page:
    """A new browser at the login form, logged in as ``user`` (or refused)."""
    page = Page(start_chrome(), url)
    page.browser.get(url)
    page.wait("the login form", lambda: page.css("input[type='password']"), 60)
    page.css("input[type='text']")[0].send_keys(user)
    page.css("input[type='password']")[0].send_keys(password)
    page.css("button.primary")[0].click()
    return page


def save_as(url: str, user: str, password: str) -> None:
    page = log_in(url, user, password)
    try:
        page.wait("the app after login", lambda: page.css("#crs-input textarea"), 60)
        page.tab("Your profile")
        page.wait(f"{user}'s profile status", lambda: user in page.text("crs-profile-status"), 30)
        box = page.profile_box()
        assert box.get_attribute("value") == "", f"{user} sees someone else's profile"
        box.send_keys(f"{user} likes heist films")
        page.css("#crs-profile-save")[0].click()
        page.wait("the save", lambda: "Saved as version 1" in page.text("crs-profile-note"), 30)
    finally:
        page.browser.quit()


def test_logins_keep_profiles_apart(browser_ready: None, real_agent: Agent) -> None:
    demo, url = serve(real_agent, auth="ann:pw-ann,bob:pw-bob")
    store = real_agent.profiles  # type: ignore[attr-defined]
    try:
        save_as(url, "ann", "pw-ann")
        save_as(url, "bob", "pw-bob")
        assert store.get("ann").text == "ann likes heist films"
        assert store.get("bob").text == "bob likes heist films"
        assert store.get("local") is None or "heist" not in store.get("local").text
        # A wrong password does not get in.
        page = log_in(url, "ann", "wrong")
        try:
            page.wait("the refusal", lambda: "incorrect" in page.browser.page_source.lower(), 30)
            page.shot("login_refused")
            assert not page.css("#crs-input textarea")
        finally:
            page.browser.quit()
    finally:
        demo.close()


XSS_TITLE = '<img src=x onerror="window.__xss=1">'


def test_html_in_titles_and_replies_never_runs(
    browser_ready: None, small_catalog: Catalog, catalog: Catalog, embedder
) -> None:  # noqa: ANN001
    """A film titled like an attack, and a model reply carrying markup, shown in the real page:
    nothing runs, nothing becomes an element, and the text is still shown as text."""
    from crs.catalog import Item
    from crs.llm.scripted import ScriptedChatModel
    from crs.rank.store import ItemStore

    evil = Item(
        "evil-1979",
        XSS_TITLE,
        1979,
        ("Horror", "Science Fiction"),
        summary="A crew in deep space answers a distress call and meets a deadly alien creature.",
    )
    cfg = test_config(Path(tempfile.mkdtemp(prefix="crs-xss-")))
    store = ItemStore(cfg, embedder=embedder)
    store.index([*small_catalog.items, evil], progress=False)
    llm = ScriptedChatModel(default='<img src=x onerror="window.__xss=2"> <script>window.__xss=3</script> enjoy it')
    agent = Agent(cfg, Catalog([*catalog.items, evil]), store, llm)
    demo, url = serve(agent)
    page = Page(start_chrome(), url)
    try:
        page.open()
        page.send("a space horror film about a crew meeting a deadly alien creature")
        cards = page.wait("the evil film among the cards", lambda: [c for c in page.cards() if c[0] == "evil-1979"])
        assert cards[0][1].startswith(XSS_TITLE)  # the card shows the title as text
        slot = next(n for n, (i, _) in enumerate(page.cards()) if i == "evil-1979")
        page.css(f"#crs-card-{slot}-up")[0].click()
        page.wait("the liked chip", lambda: XSS_TITLE in page.text("crs-likes"), 30)
        assert XSS_TITLE in page.text("crs-feedback")
        assert XSS_TITLE in page.wait("the reply", page.bot_messages)[-1]
        page.shot("xss")
        assert page.browser.execute_script("return window.__xss === undefined")
        assert not page.css("img[src='x']") and not page.css("#crs-chat script")
    finally:
        page.browser.quit()
        demo.close()
