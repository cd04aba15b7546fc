"""The performance benchmark: both engines on china_2021's rules at growing sizes.

Each measurement runs in a fresh process, so its peak memory (RSS) is its own.
Speed and memory targets live here, never in the tests.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import resource
import statistics
import time
from pathlib import Path

import numpy as np

SCENARIO = Path(__file__).resolve().parents[2] / "scenarios" / "china_2021.toml"

# (engine, grid side, weeks timed)
FULL = [("agent", 25, 10), ("agent", 50, 10), ("agent", 100, 5),
        ("array", 25, 20), ("array", 50, 20), ("array", 100, 20), ("array", 316, 20),
        ("array", 1000, 10), ("array", 3536, 104)]
QUICK = [("agent", 25, 5), ("agent", 50, 3),
         ("array", 25, 10), ("array", 50, 10), ("array", 316, 5), ("array", 1000, 3)]
TARGETS = {"array_user_steps_per_s_at_1000": 20e6, "array_over_agent_at_100": 300,
           "case_1_100_seconds": 120, "case_1_100_peak_gib": 2.0,
           "sweep_2_workers_over_1": 1.8, "sweep_dask_over_processes": 0.9,
           "server_40x40_step_and_update_seconds": 0.2,
           "page_new_tab_seconds": 2.0, "page_40x40_step_seconds": 0.2,
           "page_40x40_play_steps_per_second_at_200ms": 5.0}
# targets that are ceilings; the others are floors
AT_MOST = {"case_1_100_seconds", "case_1_100_peak_gib", "server_40x40_step_and_update_seconds",
           "page_new_tab_seconds", "page_40x40_step_seconds"}


def state_bytes(model) -> float:
    """Bytes the array engine keeps per user (its arrays, nothing else)."""
    users = model.users
    arrays = [users.platforms, users.user_cell, users.cell_user, users.n_ties, users.revising,
              users.rewired_start, users.rewired_slot, users.rewired_target,
              users.extra_start, users.extra_target]
    return sum(a.nbytes for a in arrays) / max(model.population, 1)


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def measure(engine: str, side: int, weeks: int) -> dict:
    """Build and step one model; report its speed and memory."""
    from sim.model.model import WalledGardenModel
    from sim.scenario import load

    # the weekly step's speed: a burn-in runs the same step before week 1, uncounted here
    overrides = [f"grid.width={side}", f"grid.height={side}", f'engine="{engine}"',
                 "burn_in.weeks=0"]
    if engine == "array":       # compile (or load the cached kernels) before timing
        warm = WalledGardenModel(load(SCENARIO, ["grid.width=8", "grid.height=8", 'engine="array"',
                                                 "burn_in.weeks=0"]),
                                 rng=np.random.SeedSequence(0))
        warm.step()
    before = rss_mib()
    started = time.perf_counter()
    model = WalledGardenModel(load(SCENARIO, overrides), rng=np.random.SeedSequence(1))
    built = time.perf_counter()
    after_init = rss_mib()
    for _ in range(weeks):
        model.step()
    finished = time.perf_counter()
    users = model.population
    seconds_per_step = (finished - built) / weeks
    return {
        "engine": engine, "side": side, "users": users, "weeks": weeks,
        "init_seconds": built - started,
        "total_seconds": finished - started,
        "seconds_per_step": seconds_per_step,
        "user_steps_per_second": users / seconds_per_step,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "bytes_per_user": state_bytes(model) if engine == "array"
        else (after_init - before) * 2 ** 20 / max(users, 1),
    }


def _child(args, queue):
    queue.put(measure(*args))


def measure_in_fresh_process(args) -> dict:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(args, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


SWEEP_BENCH = """
name = "bench_sweep"
base = "{base}"
replicates = {replicates}
seed = 1
[set]
"grid.width" = 60
"grid.height" = 60
"steps" = 104
"burn_in.weeks" = 0
[parameters]
"regulator.fine" = [0.0, 0.01, 0.02, 0.04]
"""


def sweep_throughput(replicates: int) -> list[dict]:
    """Runs per minute of one fixed sweep with 1 and 2 worker processes and on Dask."""
    import tempfile

    from sim.experiments import sweep as sweeps

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_sweep.toml"
        path.write_text(SWEEP_BENCH.format(base=SCENARIO, replicates=replicates))
        sweep = sweeps.load_sweep(path)
        for workers, scheduler in ((1, None), (2, None), (2, "local")):
            out = Path(tmp) / f"{workers}-{scheduler}"
            started = time.perf_counter()
            sweeps.run_sweep(sweep, out, workers, scheduler, progress=False)
            seconds = time.perf_counter() - started
            runs = len(sweep.points) * sweep.replicates
            results.append({"workers": workers, "backend": scheduler or "processes",
                            "runs": runs, "seconds": seconds, "runs_per_minute": 60 * runs / seconds})
    return results


def server_update(side: int = 40, weeks: int = 10) -> dict:
    """Seconds for the student page's server to step a side x side grid and compute the
    data of every figure it changes in place: its share of one Step."""
    from sim.server import app

    model = app.build_model("china_2021", {**app.scenario_settings("china_2021"),
                                           "grid.width": side})
    started = time.perf_counter()
    for _ in range(weeks):
        model.step()
        for traces in (app.grid_traces, app.time_traces, app.policy_traces):
            traces(model)
    return {"side": side, "seconds_per_step_and_update": (time.perf_counter() - started) / weeks}


# In the browser: every figure holds its data; the week the time series has reached.
FIGURES_DRAWN = """() => { const plots = document.querySelectorAll('.js-plotly-plot');
    return plots.length >= 3 && Array.from(plots).every(d => d.data && d.data.length); }"""
WEEK_SHOWN = """() => { const plots = document.querySelectorAll('.js-plotly-plot');
    const token = plots.length > 1 && plots[1].data && plots[1].data.find(t => t.name === 'token');
    return token && token.y ? token.y.length : 0; }"""
PLAY_INTERVAL_MS, PLAY_WARM_UP, PLAY_WEEKS = 200, 3, 25


def new_tab_seconds(page, url: str, tabs: int = 3) -> tuple[float, float]:
    """Seconds from opening the page until every figure is drawn: the first tab, opened
    as soon as the server answers (it waits for what is left of the burn-in the server
    started, and fills the browser's cache), and the median of `tabs` tabs after it."""
    seconds = []
    for tab in range(tabs + 1):
        started = time.perf_counter()
        if tab:
            page.reload()
        else:
            page.goto(url)
        page.wait_for_function(FIGURES_DRAWN, timeout=120000, polling=20)
        seconds.append(time.perf_counter() - started)
    return seconds[0], statistics.median(seconds[1:])


def step_seconds(page, steps: int) -> float:
    """Median seconds from a click on Step until the figures show the new week."""
    seconds = []
    for _ in range(steps):
        week = page.evaluate(WEEK_SHOWN) + 1
        started = time.perf_counter()
        page.get_by_role("button", name="Step", exact=True).click()
        page.wait_for_function(f"({WEEK_SHOWN})() === {week} && document.querySelectorAll("
                               f"'.js-plotly-plot')[0].layout.title.text.includes('week {week}')",
                               timeout=60000, polling=20)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def play_steps_per_second(page) -> float:
    """Weeks a second that Play shows in the browser, set to one every PLAY_INTERVAL_MS:
    PLAY_WEEKS weeks timed from the week shown after PLAY_WARM_UP, so that the start of
    Play is not counted."""
    slider = page.get_by_role("slider", name=re.compile("^Play: one week every"))
    slider.focus()
    while int(slider.get_attribute("aria-valuenow")) > PLAY_INTERVAL_MS:
        page.keyboard.press("ArrowLeft")
    page.wait_for_selector(f"text=Play: one week every {PLAY_INTERVAL_MS} ms")
    page.get_by_role("button", name="▶", exact=True).click()
    first = page.evaluate(WEEK_SHOWN) + PLAY_WARM_UP
    page.wait_for_function(f"({WEEK_SHOWN})() >= {first}", timeout=60000, polling=10)
    started, start = time.perf_counter(), page.evaluate(WEEK_SHOWN)
    page.wait_for_function(f"({WEEK_SHOWN})() >= {start + PLAY_WEEKS}", timeout=300000,
                           polling=10)
    rate = (page.evaluate(WEEK_SHOWN) - start) / (time.perf_counter() - started)
    page.get_by_role("button", name="❚❚", exact=True).click()
    return rate


def page_timings(steps: int = 5, chromium: str = "/usr/bin/chromium") -> dict:
    """The student page in a real browser on `run.py serve`, china_2021's 40 x 40 grid: a
    new tab's render time, one Step's time (the click until every view shows the new
    week) and Play's weeks a second. Needs Playwright (the test extra) and chromium;
    without them, says so."""
    import socket
    import subprocess
    import sys
    import urllib.request

    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return {"skipped": "playwright is not installed (pip install -e \".[test]\")"}
    if not Path(chromium).exists():
        return {"skipped": f"no browser at {chromium}"}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, str(SCENARIO.parent.parent / "run.py"), "serve",
                               "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if time.time() > deadline:
                    return {"skipped": "the server did not start within 90 s"}
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            first, later = new_tab_seconds(page, url)
            timings = {"side": 40, "first_tab_seconds": first, "new_tab_seconds": later}
            # a student looks before pressing Step, and the server builds the next tab's
            # model a second after a tab opens (SpareModel): time Steps after that
            time.sleep(3)
            timings |= {"step_seconds": step_seconds(page, steps),
                        "play_interval_ms": PLAY_INTERVAL_MS,
                        "play_steps_per_second": play_steps_per_second(page)}
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return timings


def growth(rows: list[dict], engine: str) -> float | None:
    """Exponent b in seconds_per_step ~ users^b (1 = linear)."""
    points = [(r["users"], r["seconds_per_step"]) for r in rows if r["engine"] == engine]
    if len(points) < 2:
        return None
    x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
    return float(np.polyfit(x, y, 1)[0])


def summarise(rows: list[dict]) -> dict:
    by = {(r["engine"], r["side"]): r for r in rows}
    ratios = {side: by[("array", side)]["user_steps_per_second"]
              / by[("agent", side)]["user_steps_per_second"]
              for (engine, side) in by if engine == "agent" and ("array", side) in by}
    reached = {}
    if ("array", 1000) in by:
        reached["array_user_steps_per_s_at_1000"] = by[("array", 1000)]["user_steps_per_second"]
    if 100 in ratios:
        reached["array_over_agent_at_100"] = ratios[100]
    if ("array", 3536) in by:
        case = by[("array", 3536)]
        reached["case_1_100_seconds"] = case["total_seconds"]
        reached["case_1_100_peak_gib"] = case["peak_rss_mib"] / 1024
    return {"speed_ratio_array_over_agent": {str(k): v for k, v in sorted(ratios.items())},
            "growth_exponent": {e: growth(rows, e) for e in ("agent", "array")},
            "targets": TARGETS, "reached": reached}


def target_lines(summary: dict) -> list[str]:
    """Each target beside its measured figure, or that this plan did not measure it."""
    def number(value: float) -> str:
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"

    lines = []
    for name, target in summary["targets"].items():
        bound = f"{'at most' if name in AT_MOST else 'at least'} {number(target)}"
        if name not in summary["reached"]:
            lines.append(f"{name}: not measured (target: {bound})")
            continue
        value = summary["reached"][name]
        met = value <= target if name in AT_MOST else value >= target
        lines.append(f"{name}: {number(value)} (target: {bound}; {'met' if met else 'NOT met'})")
    return lines


def figure(rows: list[dict]):
    import plotly.graph_objects as go

    fig = go.Figure()
    for engine in ("agent", "array"):
        points = [r for r in rows if r["engine"] == engine]
        fig.add_trace(go.Scatter(x=[r["users"] for r in points],
                                 y=[r["user_steps_per_second"] for r in points],
                                 mode="lines+markers", name=f"{engine} engine"))
    fig.update_layout(template="plotly_white", xaxis_type="log", yaxis_type="log",
                      xaxis_title="users", yaxis_title="user-steps per second",
                      title=f"china_2021 rules on {os.cpu_count()} cores")
    return fig


def run(quick: bool, progress: bool = True) -> tuple[list[dict], dict]:
    from tqdm import tqdm

    plan = QUICK if quick else FULL
    rows = [measure_in_fresh_process(args)
            for args in tqdm(plan, desc="bench", unit="size", disable=not progress)]
    summary = summarise(rows)
    sweep = sweep_throughput(replicates=5 if quick else 15)
    one, two, dask = (r["runs_per_minute"] for r in sweep)
    summary["sweeps"] = sweep
    summary["server"] = server_update()
    summary["reached"]["server_40x40_step_and_update_seconds"] = \
        summary["server"]["seconds_per_step_and_update"]
    summary["page"] = page_timings()
    if "skipped" not in summary["page"]:
        summary["reached"]["page_new_tab_seconds"] = summary["page"]["new_tab_seconds"]
        summary["reached"]["page_40x40_step_seconds"] = summary["page"]["step_seconds"]
        summary["reached"]["page_40x40_play_steps_per_second_at_200ms"] = \
            summary["page"]["play_steps_per_second"]
    summary["reached"]["sweep_2_workers_over_1"] = two / one
    summary["reached"]["sweep_dask_over_processes"] = dask / two
    return rows, summary
