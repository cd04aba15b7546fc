"""The student server in a real browser: Playwright driving Debian's chromium."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "results" / "test-artifacts"
PLOT_DATA = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .map(d => (d.data || []).map(t => [t.name, t.y ? Array.from(t.y) : null]))"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, env=None) -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "run.py", "serve", "--port", str(port)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url, timeout=2).status == 200:
                return process
        except OSError:
            time.sleep(0.5)
    process.kill()
    pytest.fail("the server did not start within 90 s")


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = start_server(port)
    yield f"http://127.0.0.1:{port}/"
    process.terminate()
    process.wait(timeout=20)


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Debian's chromium is needed: apt-get install chromium"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        yield browser
        browser.close()


def open_page(browser, url):
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    page.goto(url)
    page.wait_for_selector("text=Week 0", timeout=60000)
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3")
    return page


def press(page, label: str, week: int):
    """Press a control, then wait until the charts show that week."""
    page.get_by_role("button", name=label, exact=True).click()
    page.wait_for_selector(f"text=Week {week}", timeout=30000)
    page.wait_for_function("""week => {
        const plots = document.querySelectorAll('.js-plotly-plot');
        if (plots.length < 3 || !plots[1].data) return false;
        const token = plots[1].data.find(t => t.name === 'token');
        return token && (token.y ? token.y.length : 0) === week;
    }""", arg=week, timeout=30000)


def token_shares(page) -> list:
    time_chart = page.evaluate(PLOT_DATA)[1]
    return next(y for name, y in time_chart if name == "token")


def test_page_loads_offline_without_errors_and_shows_grid_and_charts(server, chromium):
    page = open_page(chromium, server)
    assert page.locator(".js-plotly-plot").count() >= 3
    assert page.get_by_text("Users on the grid, week 0").count() == 1
    assert page.get_by_text("copy-paste").count() >= 1          # the help beside the controls
    page.wait_for_timeout(1000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "server.png"), full_page=True)
    assert page.problems == []
    page.close()


def test_token_cost_control_and_step_change_what_is_shown(server, chromium):
    page = open_page(chromium, server)
    press(page, "Step", 1)
    default = token_shares(page)
    slider = page.get_by_role("slider", name="Token cost")
    slider.focus()
    page.keyboard.press("End")                                  # the highest token cost
    page.wait_for_function("document.querySelector('[aria-label=\"Token cost\"]')"
                           ".getAttribute('aria-valuenow') === '2'")
    press(page, "Reset", 0)
    press(page, "Step", 1)
    expensive = token_shares(page)
    assert len(default) == len(expensive) == 1
    assert expensive[0] < default[0] / 2                         # far fewer tokens used
    assert page.problems == []
    page.close()


def test_reset_returns_to_week_zero(server, chromium):
    page = open_page(chromium, server)
    press(page, "Step", 1)
    press(page, "Step", 2)
    press(page, "Reset", 0)
    assert page.get_by_text("Users on the grid, week 0").count() == 1
    page.close()


def test_two_tabs_have_their_own_models(server, chromium):
    first, second = open_page(chromium, server), open_page(chromium, server)
    press(first, "Step", 1)
    press(first, "Step", 2)
    second.reload()
    second.wait_for_selector("text=Week 0", timeout=60000)
    assert second.get_by_text("Week 2").count() == 0
    press(second, "Step", 1)
    assert first.get_by_text("Users on the grid, week 2").count() == 1
    first.close()
    second.close()


def test_a_class_of_twenty_sessions_stays_independent_and_up(server, chromium):
    pages = [open_page(chromium, server) for _ in range(20)]
    for n, page in enumerate(pages):
        for week in range(1, n % 2 + 2):
            press(page, "Step", week)
    for n, page in enumerate(pages):
        assert page.get_by_text(f"Users on the grid, week {n % 2 + 1}").count() == 1
    # one student types a bad seed: their page shows why, the others go on
    broken = pages[0]
    seed = broken.get_by_label("Random seed")
    seed.fill("abc")
    seed.press("Enter")
    broken.get_by_role("button", name="Reset", exact=True).click()
    broken.wait_for_selector("text=must be a whole number", timeout=30000)
    assert broken.get_by_text("Traceback").count() == 0
    press(pages[1], "Step", 3)
    assert urllib.request.urlopen(server, timeout=10).status == 200
    for page in pages:
        page.close()


class ConnectRecorder:
    """A proxy that answers nothing and records every request sent to it."""

    def __init__(self):
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.seen: list[str] = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            connection, _ = self.socket.accept()
            with connection:
                connection.settimeout(2)
                try:
                    self.seen.append(connection.recv(4096).decode("latin-1").split("\r\n")[0])
                except OSError:
                    self.seen.append("(a connection)")


def test_serve_calls_out_to_nothing_and_its_server_dies_with_it(chromium):
    recorder = ConnectRecorder()
    proxy = f"http://127.0.0.1:{recorder.port}"
    # the recorder does see a request sent through it
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
    with pytest.raises(OSError):
        opener.open("http://example.invalid/", timeout=3)
    assert recorder.seen and "example.invalid" in recorder.seen[0]
    recorder.seen.clear()
    local = "127.0.0.1,localhost"
    env = {**os.environ, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy,
           "https_proxy": proxy, "NO_PROXY": local, "no_proxy": local}
    port = free_port()
    command = start_server(port, env)
    page = open_page(chromium, f"http://127.0.0.1:{port}/")
    press(page, "Step", 1)
    page.close()
    time.sleep(2)                       # a telemetry call would go now, in a thread
    found = subprocess.run(["pgrep", "-P", str(command.pid)], capture_output=True, text=True)
    children = [int(pid) for pid in found.stdout.split()]
    assert children, "run.py serve runs the Solara server as its child"
    command.send_signal(signal.SIGTERM)
    command.wait(timeout=20)
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in children):
        time.sleep(0.2)
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    socket.create_server(("127.0.0.1", port)).close()           # the port is free again
    assert recorder.seen == []
