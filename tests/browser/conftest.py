"""Browser-test fixtures: the real server in a subprocess, driven by Debian's Chromium.

Fixtures for tests in this folder:

- ``server_url``: base URL of a real ``uvicorn app.main:create_app --factory`` process
  (one per session) on a free loopback port.
- ``browser``: Playwright's Chromium, launched from Debian's ``/usr/bin/chromium``.
- ``page``: a fresh page per test (own context, 1366x768, English), whose ``goto`` accepts
  paths relative to the server (``page.goto("/")``). A JavaScript error or a console error
  on the page fails the test; ``console.allow(regex)`` accepts an expected one (e.g. the
  422 a deliberately bad upload produces).
- ``new_page(**context_options)``: more pages with other options (``locale="zh-CN"``,
  ``viewport={"width": 1920, "height": 1080}``, ``has_touch=True``), checked the same way.
- ``screenshot(page, name)``: saves ``<tmp>/screenshots/<name>.png`` and, when
  ``CONVSCOPE_SCREENSHOTS=1`` (``make screenshots``), ``docs/screenshots/<name>.png``.

``CONVSCOPE_SKIP_BROWSER=1`` skips these tests (for machines without Chromium; CI never
sets it). ``playwright install`` is never used: it downloads browsers.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT_DIR = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}
# The machines' network is closed: without these flags Chromium stalls on background
# connections (updates, sync, QUIC probes). --no-sandbox because CI runs as root.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
SERVER_START_TIMEOUT = 60.0  # seconds; imports and model set-up on a busy 2-core machine
ACTION_TIMEOUT_MS = 15_000
NAVIGATION_TIMEOUT_MS = 30_000  # a page load waits on the server's first forward pass


def _skip_requested() -> bool:
    return os.environ.get("CONVSCOPE_SKIP_BROWSER") == "1"


def chromium_path() -> str | None:
    """Debian's Chromium, if installed."""
    if os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    return shutil.which("chromium")


@pytest.fixture(scope="session", autouse=True)
def _browser_tests_enabled() -> None:
    """Skip the folder on request; otherwise a missing Chromium is an error, not a skip."""
    if _skip_requested():
        pytest.skip("CONVSCOPE_SKIP_BROWSER=1")
    if chromium_path() is None:
        pytest.fail(
            "Chromium not found at /usr/bin/chromium or on PATH. `make test` installs "
            "Debian's chromium; or set CONVSCOPE_SKIP_BROWSER=1 to skip browser tests locally.",
            pytrace=False,
        )


# --- the server -----------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    """True once the server returns any HTTP response (even an error status)."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _start_server(log_path: Path) -> tuple[subprocess.Popen, str]:
    """Start uvicorn on a free port; retry if another process took the port meanwhile."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    for _attempt in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        command = [
            sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
        ]  # fmt: skip
        with log_path.open("wb") as log:
            proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while time.monotonic() < deadline and proc.poll() is None:
            if _answers(url + "/"):
                return proc, url
            time.sleep(0.2)
        exited = proc.poll() is not None
        _stop(proc)
        output = log_path.read_text(errors="replace")
        if "address already in use" in output.lower():
            continue
        reason = (
            f"exited with status {proc.returncode}"
            if exited
            else f"did not answer within {SERVER_START_TIMEOUT:.0f} s"
        )
        pytest.fail(f"server {' '.join(command)} {reason}. Its output:\n{output}", pytrace=False)
    pytest.fail("server: no free port after 3 attempts", pytrace=False)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL (no trailing slash) of a real convscope server for this session."""
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    proc, url = _start_server(log_path)
    try:
        yield url
    finally:
        _stop(proc)


# --- the browser ----------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright's sync API (one per session)."""
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
    except Exception:
        playwright.stop()
        raise
    try:
        yield chromium
    finally:
        chromium.close()
        playwright.stop()


class ConsoleLog:
    """Console errors and uncaught exceptions of the pages a test opened."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._allowed: list[re.Pattern[str]] = []

    def allow(self, pattern: str) -> None:
        """Accept errors matching ``pattern`` (a regex) for the rest of this test."""
        self._allowed.append(re.compile(pattern))

    def watch(self, page) -> None:
        def on_console(message) -> None:
            if message.type == "error":
                where = message.location.get("url", "")
                self.errors.append(f"console.error: {message.text} ({where})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self._allowed)]


_console_key = pytest.StashKey[ConsoleLog]()


@pytest.fixture
def console(request: pytest.FixtureRequest) -> ConsoleLog:
    """Collects the errors of this test's pages; checked after the test body runs."""
    log = ConsoleLog()
    request.node.stash[_console_key] = log
    return log


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Fail the test itself (not its teardown) when a page logged an error."""
    result = yield
    log = item.stash.get(_console_key, None)
    if log is not None:
        errors = log.unexpected()
        if errors:
            pytest.fail("the page logged errors:\n" + "\n".join(errors), pytrace=False)
    return result


@pytest.fixture
def new_page(browser, server_url: str, console: ConsoleLog) -> Iterator[Callable[..., object]]:
    """Factory for pages in fresh contexts; every page is watched for errors."""
    contexts = []

    def make(**options):
        options.setdefault("viewport", VIEWPORT)
        options.setdefault("locale", "en-US")
        options.setdefault("base_url", server_url)  # another server's, for tests/redis
        context = browser.new_context(**options)
        context.set_default_timeout(ACTION_TIMEOUT_MS)
        context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        console.watch(page)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page):
    """A fresh page at 1366x768 in English; ``page.goto("/")`` opens the server's root."""
    return new_page()


@pytest.fixture
def screenshot(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``screenshot(page, name, full_page=False)`` -> path of the saved PNG."""
    tmp_dir = tmp_path_factory.getbasetemp() / "screenshots"
    tmp_dir.mkdir(exist_ok=True)
    publish = os.environ.get("CONVSCOPE_SCREENSHOTS") == "1"

    def take(page, name: str, full_page: bool = False) -> Path:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
            raise ValueError(f"screenshot name {name!r}: use lower-case letters, digits, - _ .")
        path = tmp_dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        if publish:
            SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOT_DIR / f"{name}.png")
        return path

    return take
