"""The student server: its page's logic, and the page in a real browser (Playwright
driving Debian's chromium). Screenshots go to results/test-artifacts/."""

import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from conftest import ROOT, SCENARIOS
from sim.outputs.folders import OutputFolder
from sim.scenario import load
from sim.server import app

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "results" / "test-artifacts"
SCREEN_SIZES = [(1366, 768), (1920, 1080)]
PLOT_DATA = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .map(d => (d.data || []).map(t => [t.name, t.y ? Array.from(t.y) : null]))"""
# every figure drawn: the grid and the matrix with their cells, the time series with a
# line per column of the run (empty at week 0)
FIGURES_DRAWN = """() => {
    const plots = document.querySelectorAll('.js-plotly-plot');
    return plots.length === 3 && Array.from(plots).every(d => d.data && d.data.length > 2)
        && plots[0].data[0].z && plots[0].data[0].z.length > 0
        && plots[2].data.slice(0, 3).every(t => t.z && t.z.length > 0);
}"""


# --- the page's logic, without a browser

def test_controls_start_from_the_scenarios_own_values():
    china, none = app.scenario_settings("china_2021"), app.scenario_settings("no_regulation")
    assert china["regulator.policy"] == "order" and none["regulator.policy"] == "none"
    spec = load(SCENARIOS / "china_2021.toml")
    assert china["users.token_cost"] == spec.users.token_cost
    assert china["platforms.WeChat.strategy"] == spec.platforms[0].strategy
    assert china["seed"] == str(spec.seed)
    assert app.changed_settings("no_regulation", none) == {}     # nothing imposed


def test_a_bad_seed_names_its_field_and_builds_nothing():
    settings = {**app.scenario_settings("china_2021"), "seed": "abc"}
    with pytest.raises(app.FieldError) as err:
        app.build_model("china_2021", settings)
    assert err.value.field == "Random seed" and "whole number" in str(err.value)
    with pytest.raises(app.FieldError, match="unknown scenario"):
        app.build_model("../../etc/passwd", {**settings, "seed": "1"})


def test_saved_settings_are_a_scenario_that_builds_the_same_model(tmp_path):
    settings = {**app.scenario_settings("no_regulation"), "seed": "7", "grid.width": 20,
                "regulator.policy": "order", "regulator.deadline_step": 5,
                "users.token_cost": 1.25}
    shutil.copytree(SCENARIOS, tmp_path / "scenarios")
    saved = tmp_path / "scenarios" / "saved.toml"
    saved.write_text(app.settings_toml("no_regulation", settings), encoding="utf-8")
    spec = load(saved)
    model = app.build_model("no_regulation", settings)
    assert (spec.seed, spec.grid.width, spec.grid.height) == (7, 20, 20)
    assert spec.regulator.policy == "order" and spec.regulator.deadline_step == 5
    assert spec.regulator.announce_step == 5 and spec.users.token_cost == 1.25
    assert model.scenario.regulator == spec.regulator and model.scenario.users == spec.users


def test_tabs_on_the_same_controls_share_one_burn_in_and_run_alike():
    settings = {**app.scenario_settings("china_2021"), "grid.width": 10}
    first = app.build_model("china_2021", settings)
    second = app.build_model("china_2021", settings)
    assert first is not second and first.burn_in_weeks == second.burn_in_weeks > 0
    assert sum(e["event"] == "burn_in" for e in second.events) == 1
    for _ in range(3):
        first.step()
    assert second.steps == 0                       # one tab's weeks are not another's
    for _ in range(3):
        second.step()
    assert first.rows == second.rows
    other_seed = app.build_model("china_2021", {**settings, "seed": "8"})
    other_seed.step()
    assert other_seed.rows[0] != first.rows[0]


def test_every_figure_colours_a_platform_alike_and_has_a_legend():
    model = app.build_model("china_2021", {**app.scenario_settings("china_2021"), "grid.width": 12})
    model.step()
    figures = [app.grid_figure(model), app.time_figure(model), app.policy_figure(model)]
    grid, series = figures[0], figures[1]
    for name in ("WeChat", "QQ", "DingTalk"):
        square = next(t for t in grid.data if t.name == name)
        line = next(t for t in series.data if t.name == name)
        assert square.marker.color == line.line.color
    assert len({next(t for t in grid.data if t.name == n).marker.color
                for n in ("WeChat", "QQ", "DingTalk")}) == 3
    assert any(t.name == "paid a token this week" for t in grid.data)
    for figure in figures:
        assert sum(1 for t in figure.data if t.showlegend is not False and t.name) >= 3


def test_week_by_week_updates_touch_data_only_and_follow_the_model():
    model = app.build_model("china_2021", {**app.scenario_settings("china_2021"), "grid.width": 10})
    for _ in range(3):
        model.step()
    for build, traces in ((app.grid_figure, app.grid_traces), (app.time_figure, app.time_traces),
                          (app.policy_figure, app.policy_traces)):
        figure = build(model)
        for trace, data in zip(figure.data, traces(model)):
            assert set(data) <= {"x", "y", "z"}
            for key, value in data.items():
                assert list(map(list, trace[key]) if key == "z" else trace[key]) == \
                    list(map(list, value) if key == "z" else value)
    assert app.time_traces(model)[0]["x"] == [1, 2, 3]


def test_a_clicked_cell_shows_that_users_apps_ties_and_shares():
    model = app.build_model("china_2021", {**app.scenario_settings("china_2021"), "grid.width": 10})
    model.step()
    user = max(model.agents_by_type[app.UserAgent], key=lambda u: len(u.last_views))
    card = app.user_card(model, *user.cell.coordinate)
    assert f"uses {app.platform_names(model, user.platforms)}." in card
    assert f"{len(user.ties)} ties" in card and f"({len(user.last_views)} views)" in card
    assert sum(int(n) for n in re.findall(r"(\d+) (?:opened|given|sent|friend)", card)) == \
        len(user.last_views)


def test_a_new_tab_takes_the_model_built_ahead_when_its_settings_match():
    spare, settings = app.SpareModel(delay=0), app.scenario_settings("china_2021")
    first = spare.take(settings)                  # none ready: built at once
    deadline = time.time() + 120
    while spare.ready is None and time.time() < deadline:       # the next, in the background
        time.sleep(0.05)
    ready = spare.ready[1]
    assert spare.take(settings) is ready
    codes = [app.grid_codes(model)[0] for model in (first, ready)]
    assert (codes[0] == codes[1]).all() and ready.steps == 0        # the same model, unrun
    while spare.ready is None and time.time() < deadline:
        time.sleep(0.05)
    unused = spare.ready[1]
    other = spare.take({**settings, "seed": "5"})                   # not for these settings
    assert other is not unused and other.scenario.seed == 5


def test_the_spare_model_is_built_ahead_before_any_tab_asks():
    # as the server starts (app.py run as __main__): the first tab takes a settled model
    spare, settings = app.SpareModel(), {**app.scenario_settings("china_2021"), "grid.width": 10}
    spare.prepare(settings)
    deadline = time.time() + 120
    while spare.ready is None and time.time() < deadline:
        time.sleep(0.05)
    ready = spare.ready[1]
    assert ready.burn_in_weeks > 0 and ready.steps == 0
    assert spare.take(settings) is ready


# --- the server

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


def open_page(browser, url, width=1400, height=1100):
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(120000)      # the server answers slowly when the tests fill the cores
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: page.problems.append(f"{r.status} {r.url}")
            if r.status >= 400 else None)
    page.goto(url)
    page.wait_for_selector("text=Users on the grid, week 0", timeout=120000)
    page.wait_for_function(FIGURES_DRAWN, timeout=120000)
    return page


def press(page, label: str, week: int):
    """Press a control, then wait until the charts show that week."""
    page.get_by_role("button", name=label, exact=True).click()
    page.wait_for_selector(f"text=Week {week}", timeout=120000)
    page.wait_for_function("""week => {
        const plots = document.querySelectorAll('.js-plotly-plot');
        if (plots.length < 3 || !plots[1].data) return false;
        const token = plots[1].data.find(t => t.name === 'token');
        return token && (token.y ? token.y.length : 0) === week;
    }""", arg=week, timeout=120000)


def open_at_week(browser, url, weeks: int):
    page = open_page(browser, url)
    for week in range(1, weeks + 1):
        press(page, "Step", week)
    return page


def type_seed(page, text: str):
    seed = page.get_by_label("Random seed")
    seed.fill(text)
    seed.press("Enter")


def token_shares(page) -> list:
    time_chart = page.evaluate(PLOT_DATA)[1]
    return next(y for name, y in time_chart if name == "token")


def choose_scenario(page, name: str):
    page.locator(".v-select").filter(has_text="Scenario").first.click()
    page.get_by_role("option", name=name, exact=True).click()


def is_disabled(page, slider: str) -> bool:
    return page.get_by_role("slider", name=slider).evaluate(
        "e => e.closest('.v-input').classList.contains('v-input--is-disabled')")


def set_slider(page, label: str, key: str, expected: str):
    """Move a slider by a key (Home, End, ArrowRight...) and wait until the server has
    the value `expected` (its note, drawn by the server, shows it)."""
    page.get_by_role("slider", name=label).focus()
    page.keyboard.press(key)
    page.wait_for_function("""([label, value]) => {
        const slider = document.querySelector(`[aria-label='${label}']`);
        const note = slider.closest('.v-input').nextElementSibling.textContent;
        return slider.getAttribute('aria-valuenow') === value && note.startsWith(value + ' ');
    }""", arg=[label, expected])


def slider_note(page, label: str) -> str:
    """The note under a slider: its value and unit."""
    return page.get_by_role("slider", name=label).evaluate(
        "e => e.closest('.v-input').nextElementSibling.textContent")


def monitor_values(page) -> dict:
    names = page.locator(".monitors .monitor-name").all_inner_texts()
    return dict(zip(names, page.locator(".monitors .monitor-value").all_inner_texts()))


def download(page, label: str) -> Path:
    with page.expect_download() as started:
        page.get_by_text(label).click()
    return Path(started.value.path())


def keep_screenshot(page, width: int, height: int):
    """A screenshot for results/test-artifacts/, by the output-folder rule: staged, then
    moved in; the other size's screenshot stays, and a file there the project did not
    write is refused."""
    names = [f"server-{w}x{h}.png" for w, h in SCREEN_SIZES]
    name = f"server-{width}x{height}.png"
    folder = OutputFolder(ARTIFACTS, "test-artifacts", expected=(name,))
    with folder.staged() as staging:
        page.screenshot(path=str(staging / name), full_page=True)
        (staging / "manifest.json").write_text(json.dumps(
            {"kind": "test-artifacts", "written": names}), encoding="utf-8")


@pytest.mark.parametrize("width,height", SCREEN_SIZES)
def test_layout_uses_the_width_clips_nothing_and_colours_agree(server, chromium, width, height):
    page = open_page(chromium, server, width, height)
    press(page, "Step", 1)
    boxes = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => {
        const own = d.getBoundingClientRect(), holder = d.parentElement.getBoundingClientRect();
        const svg = d.querySelector('.main-svg').getBoundingClientRect();
        return {left: own.left, right: own.right, top: own.top, width: own.width,
                holder: holder.width, drawn: svg.width, height: own.height};
    })""")
    grid, series, policy = boxes
    for box in boxes:
        assert box["drawn"] <= box["holder"] + 1 and box["width"] <= box["holder"] + 1
        assert box["right"] <= width
    assert abs(grid["top"] - series["top"]) < 5 and series["left"] >= grid["right"] - 1
    assert policy["top"] >= grid["top"] + grid["height"] - 1         # below them
    assert grid["width"] + series["width"] > 0.6 * width                 # the width is used
    legend = page.evaluate("""() => Array.from(document.querySelectorAll('.js-plotly-plot'))
        .map(d => Object.fromEntries(d.data.filter(t => t.name)
            .map(t => [t.name, (t.line && t.line.color) || (t.marker && t.marker.color)])))""")
    for name in ("WeChat", "QQ", "DingTalk"):
        assert legend[0][name] == legend[1][name]
    assert page.locator(".legend").count() == 3                       # a legend on every figure
    keep_screenshot(page, width, height)
    assert page.problems == []
    page.close()


def test_controls_follow_the_scenario_and_reset_redraws_every_mark(server, chromium):
    page = open_page(chromium, server)
    assert page.get_by_label("Regulator orders links open").is_checked()
    assert not is_disabled(page, "Deadline")
    shapes = "() => (document.querySelectorAll('.js-plotly-plot')[1].layout.shapes || []).length"
    page.wait_for_function(f"({shapes})() > 0")                        # deadlines marked
    choose_scenario(page, "no_regulation")
    page.wait_for_selector("text=press Reset")
    assert not page.get_by_label("Regulator orders links open").is_checked()
    assert is_disabled(page, "Deadline") and is_disabled(page, "Audits")
    press(page, "Reset", 0)
    page.wait_for_function(f"({shapes})() === 0")                      # no stale deadline lines
    assert page.get_by_text("press Reset").count() == 0
    page.close()


def test_bad_seed_shows_inline_and_keeps_the_running_model(server, chromium):
    page = open_at_week(chromium, server, 2)
    type_seed(page, "abc")
    page.wait_for_selector("text=must be a whole number")
    press(page, "Reset", 2)             # refused: the charts stay at week 2
    press(page, "Step", 3)              # and the same model goes on (a new one: week 1)
    assert page.get_by_text("must be a whole number").count() >= 1
    assert page.get_by_text("Traceback").count() == 0
    type_seed(page, "5")
    press(page, "Reset", 0)
    assert page.get_by_text("must be a whole number").count() == 0
    page.close()


def test_figures_keep_their_data_after_the_about_tab(server, chromium):
    page = open_at_week(chromium, server, 1)
    page.locator(".v-tab", has_text="About this model").click()
    page.wait_for_selector("text=A guided exercise")
    page.locator(".v-tab").filter(has_text="Model").filter(has_not_text="About").click()
    press(page, "Step", 2)
    page.wait_for_function(FIGURES_DRAWN)
    assert page.problems == []
    page.close()


def test_csv_download_holds_the_weeks_run_so_far(server, chromium):
    page = open_at_week(chromium, server, 2)
    lines = download(page, "Download the run (CSV)").read_text().splitlines()
    assert lines[0].startswith("replicate,step,") and "users_WeChat" in lines[0]
    assert [line.split(",")[1] for line in lines[1:]] == ["1", "2"]
    page.close()


def test_saved_settings_file_is_a_scenario_with_the_pages_settings(server, chromium, tmp_path):
    page = open_page(chromium, server)
    type_seed(page, "7")
    set_slider(page, "Token cost", "End", "2")
    saved = tmp_path / "scenarios" / "saved.toml"
    shutil.copytree(SCENARIOS, saved.parent)
    shutil.copy(download(page, "Save settings (scenario TOML)"), saved)
    spec, own = load(saved), load(SCENARIOS / "china_2021.toml")
    assert (spec.seed, spec.users.token_cost) == (7, 2.0)
    assert spec.regulator == own.regulator and spec.grid == own.grid      # the rest as it was
    page.close()


DEADLINE_ENABLED = """() => !document.querySelector("[aria-label='Deadline']")
    .closest('.v-input').classList.contains('v-input--is-disabled')"""
# the grid cell under the mouse: plotly's axes map a cell to a pixel of the plot
CELL_ON_SCREEN = """([x, y]) => {
    const grid = document.querySelectorAll('.js-plotly-plot')[0];
    const axes = grid._fullLayout, box = grid.getBoundingClientRect();
    return [box.left + axes.xaxis._offset + axes.xaxis.l2p(x),
            box.top + axes.yaxis._offset + axes.yaxis.l2p(y)];
}"""


def test_clicking_a_cell_shows_that_users_apps_ties_and_shares(server, chromium):
    page = open_at_week(chromium, server, 1)
    codes = page.evaluate("() => document.querySelectorAll('.js-plotly-plot')[0].data[0].z")
    # a cell whose mirror image holds another colour, so a swapped x and y would show
    x, y = next((x, y) for y in range(len(codes)) for x in range(y) if codes[y][x] != codes[x][y])
    page.mouse.click(*page.evaluate(CELL_ON_SCREEN, [x, y]))
    page.wait_for_selector(f"text=User at ({x}, {y})")
    card = page.get_by_text(f"User at ({x}, {y})").locator("xpath=..").inner_text()
    names = [p.name for p in load(SCENARIOS / "china_2021.toml").messaging]
    uses = re.search(r"uses (.+?)\. ", card).group(1)
    if codes[y][x] <= len(names):                 # one app: the one its colour shows
        assert uses == names[codes[y][x] - 1]
    else:                                         # grey: several apps
        assert " + " in uses
    ties, on_apps = re.search(r"(\d+) ties: (.+?)\. This week's shares \(\d+ views\)",
                              card).groups()
    assert int(ties) == sum(int(n) for n in re.findall(r"(\d+) on ", on_apps)) > 0
    page.close()


def test_monitors_show_the_state_and_follow_each_step(server, chromium):
    page = open_page(chromium, server)
    # a small grid, and an order with its deadline in week 2 and frequent audits: fines
    choose_scenario(page, "no_regulation")
    order = page.get_by_label("Regulator orders links open")
    expect(order).not_to_be_checked()
    page.get_by_text("Regulator orders links open", exact=True).click()
    expect(order).to_be_checked()
    page.wait_for_function(DEADLINE_ENABLED)
    set_slider(page, "Grid side", "Home", "10")
    set_slider(page, "Deadline", "Home", "2")
    set_slider(page, "Audits", "End", "0.5")
    press(page, "Reset", 0)
    start = monitor_values(page)
    assert start["week"] == "Week 0"
    assert re.fullmatch(r"chat \d+ · group \d+ · feed \d+", start["links blocked"])
    press(page, "Step", 1)
    press(page, "Step", 2)
    shown = monitor_values(page)
    rows = list(csv.DictReader(download(page, "Download the run (CSV)").open()))
    last = rows[-1]
    assert shown["week"] == "Week 2 (12 Jul 2021)"
    users = shown["users (share, several apps count for each)"]
    for name in ("WeChat", "QQ", "DingTalk"):
        assert f"{name} {float(last[f'users_{name}']):.0%}" in users
    assert shown["links blocked"] == " · ".join(
        f"{s} {last[f'links_blocked_{s}']}" for s in ("chat", "group", "feed"))
    assert shown["friction paid this week"] == f"{float(last['friction_cost']):,.1f}"
    assert shown["consumer surplus this week"] == f"{float(last['consumer_surplus']):,.1f}"
    fines = sum(float(row["fines"]) for row in rows)
    assert fines > 0 and shown["fines to date"] == f"{fines:,.1f}"
    assert start["friction paid this week"] == "0.0" != shown["friction paid this week"]
    page.close()


def test_every_slider_shows_its_value_and_unit(server, chromium):
    page = open_page(chromium, server)
    kind = app.scenario_settings("china_2021")["regulator.fine_kind"]
    for key, label, unit, *_ in app.SLIDERS.values():
        value = float(page.get_by_role("slider", name=label).get_attribute("aria-valuenow"))
        unit = app.FINE_UNITS[kind] if key == "regulator.fine" else unit
        assert slider_note(page, label).startswith(f"{value:g} {unit}".strip()), label
    set_slider(page, "Shares per user", "ArrowRight", "2.5")            # the note follows
    page.wait_for_function("() => document.body.innerText.includes('2.5 per week')")
    play = page.get_by_role("slider", name=re.compile("^Play: one week every"))
    assert play.get_attribute("aria-label") == \
        f"Play: one week every {play.get_attribute('aria-valuenow')} ms"
    play.focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_selector("text=Play: one week every 250 ms")
    page.close()


def test_token_cost_control_and_step_change_what_is_shown(server, chromium):
    page = open_page(chromium, server)
    press(page, "Step", 1)
    default = token_shares(page)
    set_slider(page, "Token cost", "End", "2")                  # the highest token cost
    press(page, "Reset", 0)
    press(page, "Step", 1)
    expensive = token_shares(page)
    assert len(default) == len(expensive) == 1
    assert expensive[0] < default[0]     # fewer tokens used (the case's fitted 1.41 is near the top)
    assert page.problems == []
    page.close()


def test_play_runs_the_weeks_and_reset_stops_it(server, chromium):
    page = open_page(chromium, server)
    page.get_by_role("button", name="▶", exact=True).click()
    page.wait_for_selector("text=Week 2")                      # weeks go by on their own
    press(page, "Reset", 0)
    expect(page.get_by_role("button", name="▶", exact=True)).to_be_visible()
    press(page, "Step", 1)
    rows = download(page, "Download the run (CSV)").read_text().splitlines()[1:]
    assert [row.split(",")[1] for row in rows] == ["1"]          # the new model's one week
    page.close()


def test_two_tabs_have_their_own_models(server, chromium):
    first, second = open_at_week(chromium, server, 2), open_page(chromium, server)
    second.reload()
    second.wait_for_selector("text=Week 0", timeout=120000)
    assert second.get_by_text("Week 2").count() == 0
    press(second, "Step", 1)
    assert first.get_by_text("Users on the grid, week 2").count() == 1
    first.close()
    second.close()


def test_a_class_of_twenty_sessions_stays_independent_and_up(server, chromium):
    pages = [open_at_week(chromium, server, n % 2 + 1) for n in range(20)]
    for n, page in enumerate(pages):
        assert page.get_by_text(f"Users on the grid, week {n % 2 + 1}").count() == 1
    # one student types a bad seed: their page shows why, the others go on
    broken = pages[0]
    type_seed(broken, "abc")
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
