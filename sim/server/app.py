"""The interactive page for students: `python run.py serve`, or `solara run sim/server/app.py`.

Each browser tab gets its own model (built in `Page`, never shared). Controls take
effect on Reset, as in every Mesa page; Step and Play advance the model a week at a
time. Every chart is plotly, so the page needs nothing from the internet.

The page is laid out with Solara components rather than Mesa's SolaraViz: SolaraViz
puts every view in one draggable card about 470 px wide whatever the screen (the
figures were clipped and half the screen stayed empty), and its ModelController
rebuilds the model from the controls on Reset whatever they hold, so a bad field ended
the running model with a traceback. Here Reset first checks every field and keeps the
running model if one is wrong, and the figures are updated in place each week rather
than rebuilt.
"""

from __future__ import annotations

import datetime as dt
import gc
import io
import json
import pickle
import sys
import threading
import time
from collections import OrderedDict
from concurrent.futures import Future
from pathlib import Path

import anywidget
import numpy as np
import pandas as pd
import plotly
import plotly.graph_objects as go
import solara
import solara.lab
import traitlets
from plotly.subplots import make_subplots
from solara.server import settings as server_settings

from sim.model.agents import UserAgent
from sim.model.model import WalledGardenModel
from sim.outputs.report import regulatory_marks
from sim.model.rules import ABANDONED, DIRECT, TOKEN_FAIL, TOKEN_OK, UNREACHABLE, WARNED_DROP, WARNED_OK
from sim.scenario import MAX_SEED, SURFACES, ScenarioError, load

# `run.py serve` turns Solara's telemetry off before the server starts; this also
# covers `solara run sim/server/app.py` from the moment the page is loaded.
server_settings.telemetry.mixpanel_enable = False
# plotly.js from the plotly package, served at /static/assets/plotly.min.js (plotly_view.js)
server_settings.assets.extra_locations.append(str(Path(plotly.__file__).parent / "package_data"))

SCENARIOS = Path(__file__).resolve().parent.parent.parent / "scenarios"
DEFAULT_SCENARIO = "china_2021"
STRATEGIES = ["static", "best_response", "learning", "comply"]
MEASURES = {"regulator.naming": "Name the platform publicly",
            "regulator.suspend_registrations": "Suspend new registrations",
            "regulator.forced_open": "Open the links by force"}

# One colour per messaging platform, by its place in the scenario, on every figure.
PLATFORM_COLOURS = ["#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b"]
SEVERAL_APPS, EMPTY, TOKEN = "#9e9e9e", "#ffffff", "#000000"
LINK_STATES = [("open", "#2ca02c"), ("warning page", "#ffbf00"), ("blocked", "#d62728"),
               ("own group", "#dddddd")]
OUTCOME_COLOURS = {"direct": "#17becf", "token": TOKEN, "abandoned": "#e377c2",
                   "unreachable": "#7f7f7f"}
SURFACE_DASH = {"chat": "solid", "group": "dash", "feed": "dot"}

# name: (scenario key, label, unit, min, max, step)
SLIDERS = {
    "size": ("grid.width", "Grid side", "cells a side (users = side²)", 10, 60, 5),
    "deadline": ("regulator.deadline_step", "Deadline", "(week number)", 2, 60, 1),
    "audits": ("regulator.audit_probability", "Audits",
               "chance per platform per week after the deadline", 0.0, 0.5, 0.01),
    "complaints": ("regulator.complaints", "Complaints",
                   "reports per unit of harm per thousand users a week", 0.0, 0.001, 0.00005),
    "fine": ("regulator.fine", "Fine", "", 0.0, 0.2, 0.005),
    "token_cost": ("users.token_cost", "Token cost", "× a share's mean value", 0.0, 2.0, 0.01),
    "share_rate": ("users.share_rate", "Shares per user", "per week", 0.0, 6.0, 0.5),
    "multihoming_cost": ("users.multihoming_cost", "Multihoming cost",
                         "utility per week for each app beyond the first", 0.0, 2.0, 0.05),
    "switching_cost": ("users.switching_cost", "Switching cost", "utility, once, for each app joined",
                       0.0, 2.0, 0.05),
    # the calibrated case settles before the order (ODD 5); each week makes Reset slower
    "burn_in": ("burn_in.weeks", "Settling", "most weeks the market runs with no order before "
                "week 1 (0: it starts from the mid-2021 blocks)", 0, 260, 13),
}
ORDER_ONLY = {"regulator.deadline_step", "regulator.audit_probability",
              "regulator.complaints", "regulator.fine",
              "regulator.fine_kind", *MEASURES}
FINE_UNITS = {"revenue_share": "of the owner's yearly revenue, per decision",
              "fixed": "money units per decision"}


class FieldError(ValueError):
    """A control holds a value the model cannot take; `field` is its label."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def scenario_names() -> list[str]:
    """The scenarios a student may pick: the files of scenarios/, by name only."""
    return sorted(p.stem for p in SCENARIOS.glob("*.toml"))


def scenario_spec(name: str):
    if name not in scenario_names():        # names only: no paths from the page
        raise FieldError("Scenario", f"unknown scenario {name!r}")
    return load(SCENARIOS / f"{name}.toml")


def value_at(spec, key: str):
    """The value of a dotted scenario key, e.g. users.token_cost or platforms.QQ.strategy."""
    section, *rest = key.split(".")
    if section == "platforms":
        name, attribute = rest
        return getattr(next(p for p in spec.platforms if p.name == name), attribute)
    value = getattr(spec, section)
    for part in rest:
        value = getattr(value, part)
    return value


def control_keys(spec) -> list[str]:
    keys = [key for key, *_ in SLIDERS.values()]
    keys += ["regulator.policy", "regulator.fine_kind", *MEASURES]
    return keys + [f"platforms.{p.name}.strategy" for p in spec.messaging]


def scenario_settings(name: str) -> dict:
    """What the controls show for a scenario: its own values, and its seed as text."""
    spec = scenario_spec(name)
    return {"seed": str(spec.seed), **{key: value_at(spec, key) for key in control_keys(spec)}}


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


def parse_seed(text) -> int:
    try:
        seed = int(str(text).strip())
    except ValueError:
        seed = -1
    if not 0 <= seed <= MAX_SEED:
        raise FieldError("Random seed", f"the random seed must be a whole number from 0 to "
                                        f"{MAX_SEED}, got {str(text)[:40]!r}")
    return seed


def changed_settings(name: str, settings: dict) -> dict:
    """The settings that differ from the scenario's own: only these override it."""
    own = scenario_settings(name)
    changed = {key: value for key, value in settings.items()
               if key != "seed" and key in own and value != own[key]}
    if "grid.width" in changed:
        changed["grid.height"] = changed["grid.width"]
    spec = scenario_spec(name)
    if settings["regulator.policy"] == "order" and not spec.regulator.phases:
        # the announcement cannot come after the deadline a student sets
        announce = min(spec.regulator.announce_step, settings["regulator.deadline_step"])
        if announce != spec.regulator.announce_step:
            changed["regulator.announce_step"] = announce
    return changed


def build_model(name: str, settings: dict) -> WalledGardenModel:
    """The model the controls describe; FieldError names the control that is wrong."""
    seed = parse_seed(settings["seed"])
    overrides = [f"{key}={toml_value(value)}" for key, value in
                 changed_settings(name, settings).items()]
    overrides += [f"seed={seed}", 'engine="agent"']     # the grid shows one agent per user
    try:
        spec = load(SCENARIOS / f"{name}.toml", overrides)
    except ScenarioError as err:       # without the server's paths
        raise FieldError("Scenario", str(err).replace(str(SCENARIOS) + "/", "")) from None
    return SETTLED.copy_of(spec, seed)


class SettledModels:
    """Models at week 0, after their burn-in, by the whole scenario they were built from:
    a class of students on the same controls waits for one burn-in (seconds to tens of
    seconds on a large grid), not one each. The settled model is kept pickled and each
    tab unpickles its own, which runs the same weeks, byte for byte, as the model it
    was pickled from."""

    def __init__(self, size: int = 8):
        self.size = size
        self.lock = threading.Lock()
        self.models: OrderedDict[str, Future] = OrderedDict()

    def copy_of(self, spec, seed: int) -> WalledGardenModel:
        key = f"{seed}:{spec!r}"
        with self.lock:
            entry = self.models.get(key)
            builder = entry is None
            if builder:
                entry = self.models[key] = Future()
                while len(self.models) > self.size:
                    self.models.popitem(last=False)
            self.models.move_to_end(key)
        if builder:
            try:
                entry.set_result(pickled(WalledGardenModel(spec, rng=seed)))
            except BaseException as err:   # the tabs waiting on it see the error, and none is kept
                entry.set_exception(err)
                with self.lock:
                    self.models.pop(key, None)
                raise
        return pickle.loads(entry.result())


def pickled(model: WalledGardenModel) -> bytes:
    """The model as bytes. Pickling walks the grid's cells neighbour by neighbour, a
    few stack frames per cell, deeper than Python's recursion limit on a large grid (deepcopy
    fails there), so it runs in a thread of its own with a deep stack; unpickling keeps
    its own stack and needs neither."""
    result = {}

    def dump():
        try:
            result["bytes"] = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException as err:        # raised again in the caller's thread
            result["error"] = err

    with DEEP_STACK:
        limit = sys.getrecursionlimit()
        threading.stack_size(512 * 2**20)      # reserved, touched only as deep as it goes
        try:
            sys.setrecursionlimit(max(limit, 200_000))
            worker = threading.Thread(target=dump)
            worker.start()
            worker.join()
        finally:
            threading.stack_size(0)
            sys.setrecursionlimit(limit)
    if "error" in result:
        raise result["error"]
    return result["bytes"]


DEEP_STACK = threading.Lock()


SETTLED = SettledModels()


class SpareModel:
    """The default scenario's model, built ahead for the next new tab: building one takes
    0.15-0.8 s here, most of the server's part in opening a tab. The first is built as
    the server starts, the next a moment after a tab took the last, so as not to slow
    that tab's first render (both would share the interpreter's lock), and one at a time."""

    def __init__(self, delay: float = 1.0):
        self.delay = delay
        self.lock = threading.Lock()
        self.ready: tuple[dict, WalledGardenModel] | None = None
        self.building = False

    def take(self, settings: dict) -> WalledGardenModel:
        with self.lock:
            ready, self.ready = self.ready, None
        self.prepare(settings, self.delay)
        if ready is not None and ready[0] == settings:      # not if the file changed since
            return ready[1]
        return build_model(DEFAULT_SCENARIO, settings)

    def prepare(self, settings: dict, delay: float = 0.0) -> None:
        """Build a spare in the background, `delay` seconds from now, unless one is
        being built already."""
        with self.lock:
            if self.building:
                return
            self.building = True
        timer = threading.Timer(delay, self.build, [settings])
        timer.daemon = True
        timer.start()

    def build(self, settings: dict) -> None:
        model = None
        try:
            model = build_model(DEFAULT_SCENARIO, settings)
        finally:            # one that failed leaves no spare, and the next tab tries again
            with self.lock:
                self.building = False
                if model is not None:
                    self.ready = (settings, model)


SPARE = SpareModel()


def settings_toml(name: str, settings: dict) -> str:
    """The controls as a scenario file: the chosen scenario as base, changes as overrides."""
    lines = [f"# Saved from the student page: {name} with the controls' changes.",
             f'base = "{name}.toml"', f'name = "{name}_page"',
             f'description = "{name} as set on the student page."', "", "[overrides]",
             f'"seed" = {parse_seed(settings["seed"])}']
    lines += [f'"{key}" = {toml_value(value)}'
              for key, value in changed_settings(name, settings).items()]
    return "\n".join(lines) + "\n"


def run_csv(model) -> str:
    """The weeks run so far, one row each, with the columns of `run.py run`'s tables."""
    buffer = io.StringIO()
    pd.DataFrame(model.rows).to_csv(buffer, index=False)
    return buffer.getvalue()


def platform_colours(model) -> dict[str, str]:
    return {p.name: colour for p, colour in zip(model.scenario.messaging, PLATFORM_COLOURS)}


def week_label(model) -> str:
    """Week and the calendar week it stands for (week 1 starts on start_date)."""
    if not model.scenario.start_date or model.steps == 0:
        return f"Week {model.steps}"
    monday = dt.date.fromisoformat(model.scenario.start_date) + dt.timedelta(weeks=model.steps - 1)
    return f"Week {model.steps} ({monday:%d %b %Y})"


OUTCOME_NAMES = {DIRECT: "opened directly", WARNED_OK: "opened behind a warning page",
                 WARNED_DROP: "given up at a warning page", TOKEN_OK: "sent as a token",
                 TOKEN_FAIL: "sent as a token, lost", ABANDONED: "given up (blocked)",
                 UNREACHABLE: "friend on no shared app"}


def platform_names(model, mask: int) -> str:
    return " + ".join(p.name for i, p in enumerate(model.scenario.messaging) if mask >> i & 1)


def user_at(model, x: int, y: int):
    return next((u for u in model.agents_by_type[UserAgent] if u.cell.coordinate == (x, y)), None)


def user_card(model, x: int, y: int) -> str:
    """The clicked user: their apps, their ties' apps, and what became of this week's shares."""
    user = user_at(model, x, y)
    if user is None:
        return f"Cell ({x}, {y}) is empty."
    ties = pd.Series([platform_names(model, t.platforms) for t in user.ties]).value_counts()
    outcomes = pd.Series([OUTCOME_NAMES[v[3]] for v in user.last_views]).value_counts()
    return (f"**User at ({x}, {y})** uses {platform_names(model, user.platforms)}. "
            f"**{len(user.ties)} ties**: "
            + ", ".join(f"{n} on {apps}" for apps, n in ties.items())
            + f". **This week's shares** ({len(user.last_views)} views): "
            + (", ".join(f"{n} {what}" for what, n in outcomes.items()) or "none") + ".")


# --- figures: each has a builder and a function giving its traces' data, in order, so
# --- that a new week changes the data of the figure in the browser, nothing else.

def legend_entry(name: str, colour: str, size: int = 12) -> go.Scatter:
    return go.Scatter(x=[None], y=[None], mode="markers", name=name, showlegend=True,
                      marker={"symbol": "square", "color": colour, "size": size,
                              "line": {"color": "#555", "width": 1}})


def grid_codes(model) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's colour code (0 empty, 1..M the single platform, M+1 several), and 1
    where its user paid a token this week."""
    grid = model.scenario.grid
    codes = np.zeros((grid.height, grid.width), dtype=int)
    tokens = np.zeros_like(codes)
    several = len(model.scenario.messaging) + 1
    for user in model.agents_by_type[UserAgent]:
        x, y = user.cell.coordinate
        codes[y, x] = several if user.platforms & (user.platforms - 1) else user.platforms.bit_length()
        tokens[y, x] = user.paid_token
    return codes, tokens


def grid_traces(model) -> list[dict]:
    return [{"z": codes.tolist()} for codes in grid_codes(model)]


def grid_title(model) -> str:
    return "Users on the grid, " + week_label(model).replace("Week", "week", 1)


def grid_figure(model) -> go.Figure:
    colours = [EMPTY, *platform_colours(model).values(), SEVERAL_APPS]
    n = len(colours)
    scale = [[k / n, c] for i, c in enumerate(colours) for k in (i, i + 1)]
    side = model.scenario.grid.width
    platforms, tokens = grid_traces(model)
    # A token is a black square in the middle of its cell: a second heatmap, clear where
    # no token was paid, its cells shrunk by a gap of about 60% of a cell (in pixels, for
    # the grid's usual 400-500 px). A heatmap is one image to the browser; a marker per
    # token was an SVG element each, which made a week's redraw five times as slow.
    gap = round(0.6 * 450 / side)
    fig = go.Figure([
        go.Heatmap(**platforms, zmin=-0.5, zmax=n - 0.5, colorscale=scale, showscale=False,
                   hovertemplate="cell %{x}, %{y}<extra></extra>"),
        go.Heatmap(**tokens, zmin=0, zmax=1, showscale=False, xgap=gap, ygap=gap,
                   hoverinfo="skip", colorscale=[[0, "rgba(0,0,0,0)"], [0.5, "rgba(0,0,0,0)"],
                                                 [0.5, TOKEN], [1, TOKEN]]),
        legend_entry("paid a token this week", TOKEN, size=6),
        *[legend_entry(name, colour) for name, colour in platform_colours(model).items()],
        legend_entry("several apps", SEVERAL_APPS)])
    fig.update_layout(title=grid_title(model), height=560, autosize=True,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"orientation": "h", "y": -0.02, "yanchor": "top"},
                      xaxis={"visible": False, "range": [-0.5, side - 0.5], "constrain": "domain"},
                      yaxis={"visible": False, "scaleanchor": "x", "range": [-0.5, side - 0.5],
                             "constrain": "domain"})
    return fig


def time_traces(model) -> list[dict]:
    rows = model.rows
    weeks = [r["step"] for r in rows]
    columns = ([f"users_{p.name}" for p in model.scenario.messaging]
               + [f"links_blocked_{s}" for s in SURFACES] + ["links_warned"]
               + [f"shares_{o}" for o in OUTCOME_COLOURS] + ["consumer_surplus"])
    return [{"x": weeks, "y": [r[column] for r in rows]} for column in columns]


def time_figure(model) -> go.Figure:
    fig = make_subplots(rows=2, cols=2, vertical_spacing=0.12, subplot_titles=(
        "Users (share)", "Links blocked", "Shares (views a week)", "Consumer surplus a week"))
    data = iter(time_traces(model))
    for name, colour in platform_colours(model).items():
        fig.add_trace(go.Scatter(**next(data), name=name, line={"color": colour}, legendgroup="1",
                                 legendgrouptitle_text="platform"), row=1, col=1)
    for surface in SURFACES:
        fig.add_trace(go.Scatter(**next(data), name=f"blocked: {surface}", legendgroup="2",
                                 legendgrouptitle_text="links",
                                 line={"color": "#d62728", "dash": SURFACE_DASH[surface]}),
                      row=1, col=2)
    fig.add_trace(go.Scatter(**next(data), name="warning page", legendgroup="2",
                             line={"color": "#ffbf00"}), row=1, col=2)
    for outcome, colour in OUTCOME_COLOURS.items():
        fig.add_trace(go.Scatter(**next(data), name=outcome, legendgroup="3",
                                 legendgrouptitle_text="shares", line={"color": colour}),
                      row=2, col=1)
    fig.add_trace(go.Scatter(**next(data), name="consumer surplus", legendgroup="4",
                             line={"color": "#8c564b"}), row=2, col=2)
    marks = regulatory_marks(model.scenario)
    # one list of shapes: add_vline per mark and subplot takes most of a second
    fig.update_layout(shapes=[
        {"type": "line", "xref": f"x{axis}", "yref": f"y{axis} domain", "x0": week, "x1": week,
         "y0": 0, "y1": 1, "line": {"color": "#444", "dash": "dot"}}
        for week, _ in marks for axis in ("", "2", "3", "4")])
    if marks:
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", name="order and deadlines",
                                 line={"color": "#444", "dash": "dot"}, legendgroup="5"),
                      row=1, col=1)
    fig.update_xaxes(title_text="week", row=2)
    fig.update_layout(height=560, autosize=True, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      legend={"groupclick": "toggleitem", "font": {"size": 11},
                              "orientation": "h", "y": -0.12, "yanchor": "top"})
    return fig


def policy_traces(model) -> list[dict]:
    state = np.where(model.links.rival, model.links.state, 3)
    return [{"z": state[:, :, s].tolist()} for s in range(len(SURFACES))]


def policy_figure(model) -> go.Figure:
    """Host x content, per surface: open, behind a warning page, blocked, or own group."""
    hosts = [p.name for p in model.scenario.messaging]
    contents = [c.name for c in model.scenario.content]
    scale = [[k / 4, c] for i, (_, c) in enumerate(LINK_STATES) for k in (i, i + 1)]
    fig = make_subplots(rows=1, cols=len(SURFACES), subplot_titles=SURFACES,
                        horizontal_spacing=0.06)
    for s, data in enumerate(policy_traces(model)):
        fig.add_trace(go.Heatmap(**data, x=contents, y=hosts, zmin=-0.5, zmax=3.5,
                                 colorscale=scale, showscale=False, xgap=2, ygap=2,
                                 hovertemplate="%{y} → %{x}<extra></extra>"),
                      row=1, col=s + 1)
    for name, colour in LINK_STATES:
        fig.add_trace(legend_entry(name, colour), row=1, col=1)
    colours = platform_colours(model)
    fig.update_yaxes(tickvals=hosts, ticktext=[f'<span style="color:{colours[h]}">■</span> {h}'
                                               for h in hosts])
    fig.update_xaxes(tickangle=-30)
    fig.update_layout(title="Link policy: may a user of the app (row) open the service "
                            "(column)?", height=320, autosize=True,
                      margin={"l": 10, "r": 10, "t": 70, "b": 10},
                      legend={"title": {"text": "link"}})
    return fig


class PlotlyView(anywidget.AnyWidget):
    """A plotly figure on the page, drawn by plotly_view.js.

    Not plotly's FigureWidget, which sends plotly.js (5 MB) with every figure, shows in a
    view made later (a tab shown again) only the figure it was built with, and inside
    Solara never follows its column's width. This one loads plotly.js once per page from
    this server, always draws its current state, and takes the width of its column."""

    _esm = Path(__file__).with_name("plotly_view.js")
    figure = traitlets.Dict().tag(sync=True)    # the whole figure as plotly JSON, per model
    week = traitlets.Dict().tag(sync=True)      # what a week changes: {"data": [...], "layout": {}}


def week_changes(traces, title, model) -> dict:
    """The data of each trace that changes week by week (and the title, if it does)."""
    return {"data": traces(model), "layout": {"title": {"text": title(model)}} if title else {}}


FIGURES: dict[tuple, dict] = {}


def figure_json(build, model) -> dict:
    """The figure as plotly JSON, built once per scenario for every tab and Reset: plotly
    takes a tenth of a second or more to build one, and all that differs between two
    models of a scenario is the data that `week_changes` sends anyway."""
    key = (build.__name__, repr(model.scenario))
    if key not in FIGURES:
        if len(FIGURES) >= 60:                  # a class's scenarios, not every one tried
            FIGURES.pop(next(iter(FIGURES)))
        FIGURES[key] = json.loads(build(model).to_json())
    return FIGURES[key]


@solara.component
def LivePlot(build, traces, model, week: int, title=None, on_click=None):
    """A figure drawn for each model, its changing data sent week by week."""
    figure = solara.use_memo(lambda: figure_json(build, model), [model])
    widget = solara.use_memo(
        lambda: PlotlyView(figure=figure, week=week_changes(traces, title, model)), [])
    latest_click = solara.use_ref(on_click)
    latest_click.current = on_click

    def connect():
        def clicked(_, point, buffers):
            if latest_click.current is not None:
                latest_click.current(point["x"], point["y"])
        widget.on_msg(clicked)
        return widget.close

    def show():
        with widget.hold_sync():        # one message: figure and week drawn together
            widget.figure = figure
            widget.week = week_changes(traces, title, model)

    solara.use_effect(connect, [])
    solara.use_effect(show, [model, week])
    return solara.Column(children=[widget], margin=0)


# --- the page

CSS = """
.control-note { font-size: 0.8em; color: #666; display: block; margin: -6px 0 6px 0; }
.monitors td, .monitors th { padding: 0 8px 0 0; }
"""


def html(markdown_text: str):
    """Markdown shown as HTML: solara.Markdown would fetch KaTeX from a CDN."""
    import markdown

    solara.HTML(tag="div", unsafe_innerHTML=markdown.markdown(markdown_text))


ABOUT = """
### The case: China, 2021

For years China's largest apps blocked each other's links. A Taobao (Alibaba) link sent
in WeChat (Tencent) did not open; a Douyin (ByteDance) video could not be shared to
WeChat Moments. People got around the block with a **copy-paste token**: the sender
copied a code such as `¥1234abcd¥` into the chat, and the friend pasted it into Taobao.
It worked, but cost time, and some shares were lost on the way.

On **9 September 2021** the Ministry of Industry and Information Technology (MIIT) met
the platforms and told them to stop blocking rival links by **17 September**. WeChat
opened links in one-on-one chats, behind a *warning page*; groups and Moments stayed
closed for longer; QQ opened and blocked again the same day. Earlier that year
Alibaba had been fined 4% of its revenue under the Anti-Monopoly Law (the law caps a
fine at 10%), and WeChat had paused new registrations in July.

### What the controls meant in 2021

- **Regulator orders links open**: the MIIT order. Off, the platforms block as they see fit.
- **Deadline**: 17 September 2021 was week 11 of the model (week 1 starts 5 July 2021).
- **Audits after the deadline**: the ministry checked on the deadline day; later checks
  were rare.
- **Complaints**: users who meet a blocked link may report it; each week a blocked link
  is reported with a chance that grows with what it costs them, and a report brings an
  inspection that finds it. No figure from 2021: a lever to explore (0 in the case).
- **Fine per decision**: the Alibaba fine was 4% of its yearly revenue; the law allows 10%.
- **Measures**: naming a platform publicly, suspending its new registrations, opening the
  links by order.
- **Token cost**: the time a copy-paste token costs, in units of a share's mean value.
- **Multihoming and switching costs**: what it costs a user to keep a second app, or to
  join a new one.
- **Strategies**: *static* never changes its links; *best_response* weighs the visits its
  owner's own services gain (Weixin Channels for short video, Sogou for search) against
  the users it loses and the regulator's expected fines; *learning* repeats what paid,
  link by link; *comply* opens when told.

### Reading the page

Each square of the grid is a person, coloured by the messaging app they use (grey: more
than one); a small black square inside marks a person who paid a copy-paste token this
week. The link policy shows, for each app (row) and service (column), whether a shared
link opens (green), opens behind a warning page (amber) or is blocked (red), on each
surface: chats, groups and the feed (Moments).

### A guided exercise

1. Pick `china_2021`, press **Reset**, then **▶** until week 30. Which surface opens first,
   and which stays blocked? Compare with what happened in September 2021.
2. Untick **Regulator orders links open**, Reset and play to week 30. How many links stay
   blocked, and what happens to the black squares (tokens) and to consumer surplus? Use
   **Download the run (CSV)** for both runs and compare `friction_cost`.
3. With the order on, set **Audits after the deadline** to 0 and then to 0.3, each time to
   week 52. Do the platforms block again once the deadline has passed? What does this say
   about an order that is checked only once?
"""


@solara.component
def Slider(name: str, settings, disabled: bool = False, note: str = ""):
    key, label, unit, low, high, step = SLIDERS[name]
    value = settings.value[key]
    if key == "regulator.fine":
        unit = FINE_UNITS[settings.value["regulator.fine_kind"]]
    kind = solara.SliderInt if isinstance(step, int) else solara.SliderFloat
    kind(label=label, value=min(max(value, low), high), min=low, max=high, step=step,
         disabled=disabled, on_value=lambda v: settings.set({**settings.value, key: v}))
    solara.Text(f"{value:g} {unit}" + (f" · {note}" if note else ""), classes=["control-note"])


@solara.component
def Controls(scenario, settings, problem):
    spec = scenario_spec(scenario.value)
    values = settings.value

    def choose_scenario(name):
        scenario.set(name)
        settings.set(scenario_settings(name))
        problem.set(None)

    def set_value(key, value):
        settings.set({**settings.value, key: value})

    def set_seed(text):
        set_value("seed", text)
        try:
            parse_seed(text)
            problem.set(None)
        except FieldError as err:
            problem.set(err)

    solara.Select(label="Scenario", values=scenario_names(), value=scenario.value,
                  on_value=choose_scenario)
    solara.Text(spec.description, classes=["control-note"])
    field_error = problem.value.field if problem.value is not None else None
    solara.InputText("Random seed", value=values["seed"], on_value=set_seed,
                     error=str(problem.value) if field_error == "Random seed" else False)
    Slider("size", settings)
    Slider("burn_in", settings)

    html("**Regulator**")
    order = values["regulator.policy"] == "order"
    solara.Checkbox(label="Regulator orders links open", value=order,
                    on_value=lambda on: set_value("regulator.policy", "order" if on else "none"))
    off_note = "" if order else "Applies only when the regulator orders links open."
    if spec.regulator.phases:
        weeks = ", ".join(str(p.step) for p in spec.regulator.phases)
        Slider("deadline", settings, disabled=True,
               note=f"This scenario's phases set the deadlines (weeks {weeks}).")
    else:
        Slider("deadline", settings, disabled=not order, note=off_note)
    Slider("audits", settings, disabled=not order, note=off_note)
    Slider("complaints", settings, disabled=not order, note=off_note)
    Slider("fine", settings, disabled=not order)
    solara.Select(label="Fine kind", values=list(FINE_UNITS), value=values["regulator.fine_kind"],
                  disabled=not order, on_value=lambda v: set_value("regulator.fine_kind", v))
    for key, label in MEASURES.items():
        solara.Checkbox(label=label, value=values[key], disabled=not order,
                        on_value=lambda on, key=key: set_value(key, on))
    solara.Text(off_note, classes=["control-note"])     # empty, not absent: see Page

    html("**Users**")
    for name in ("token_cost", "share_rate", "multihoming_cost", "switching_cost"):
        Slider(name, settings)

    html("**Platforms' strategies**")
    for platform in spec.messaging:
        key = f"platforms.{platform.name}.strategy"
        solara.Select(label=platform.name, values=STRATEGIES, value=values[key],
                      on_value=lambda v, key=key: set_value(key, v))
    if field_error not in (None, "Random seed"):
        solara.Error(f"{field_error}: {problem.value}")


def monitors(model) -> str:
    """The state now (users, blocks: also at week 0) and the week's flows (none at week 0)."""
    last = model.rows[-1] if model.rows else {}
    shares = model.user_counts() / max(model.population, 1)
    users = " · ".join(f'<span style="color:{colour}">■</span> {name} {share:.0%}'
                       for (name, colour), share in zip(platform_colours(model).items(), shares))
    blocked = " · ".join(f"{surface} {n}" for surface, n in
                         zip(SURFACES, model.links.blocked.sum(axis=(0, 1))))
    cells = [("week", week_label(model)), ("users (share, several apps count for each)", users),
             ("links blocked", blocked),
             ("friction paid this week", f"{last.get('friction_cost', 0.0):,.1f}"),
             ("fines to date", f"{sum(r['fines'] for r in model.rows):,.1f}"),
             ("consumer surplus this week", f"{last.get('consumer_surplus', 0.0):,.1f}")]
    return ('<div class="monitors" style="display:flex;flex-wrap:wrap;gap:6px 18px">'
            + "".join(f'<div><div class="monitor-name" style="font-size:0.75em;color:#666">'
                      f'{name}</div><div class="monitor-value"><b>{value}</b></div></div>'
                      for name, value in cells) + "</div>")


def event_log(model) -> str:
    lines = "".join(f"<tr><td>{e['step']}</td><td>{e['event']}</td><td>{e['platform']}</td>"
                    f"<td>{e['detail']}</td></tr>" for e in reversed(model.events[-12:]))
    if not lines:
        return "<p><i>No regulatory events yet.</i></p>"
    return ("<table style='font-size:0.85em'><tr><th>week</th><th>event</th><th>platform</th>"
            f"<th>detail</th></tr>{lines}</table>")


@solara.component
def Views(model, week: solara.Reactive[int]):
    """Everything a week changes: the only part of the page drawn again at each Step, as
    the week is read here and not in Page (the controls are left alone)."""
    picked = solara.use_reactive(None)          # the cell clicked on the grid
    solara.HTML(tag="div", unsafe_innerHTML=monitors(model))
    with solara.Columns([5, 6], gutters_dense=True):
        with solara.Column():
            LivePlot(grid_figure, grid_traces, model, week.value, grid_title,
                     on_click=lambda x, y: picked.set((int(x), int(y))))
            html(user_card(model, *picked.value) if picked.value
                 else "_Click a cell to see that user's apps, ties and shares._")
        LivePlot(time_figure, time_traces, model, week.value)
    with solara.Columns([6, 5], gutters_dense=True):
        LivePlot(policy_figure, policy_traces, model, week.value)
        with solara.Column():
            html("**Regulatory events** (newest first)")
            solara.HTML(tag="div", unsafe_innerHTML=event_log(model))


@solara.component
def RunDownload(model, week: solara.Reactive[int]):
    solara.FileDownload(lambda: run_csv(model), label="Download the run (CSV)",
                        filename=f"{model.scenario.name}_week{week.value}.csv",
                        mime_type="text/csv")


@solara.component
def Page():
    # Built here, per browser tab: two students never share a model.
    scenario = solara.use_reactive(DEFAULT_SCENARIO)
    settings = solara.use_reactive(solara.use_memo(lambda: scenario_settings(DEFAULT_SCENARIO), []))
    model = solara.use_reactive(solara.use_memo(lambda: SPARE.take(settings.value), []))
    week = solara.use_reactive(0)
    playing = solara.use_reactive(False)
    interval = solara.use_reactive(300)
    problem = solara.use_reactive(None)
    applied = solara.use_reactive((DEFAULT_SCENARIO, settings.value))

    # One week at a time, and none during a Reset: Step, Play's thread and Reset take
    # turns. A Play stopped and started again quickly leaves its old thread running
    # until it wakes (solara's threaded tasks are not stopped, only no longer current):
    # that thread must see it is not the current one, and step nothing.
    turn = solara.use_memo(threading.Lock, [])

    def advance():
        model.value.step()
        week.set(model.value.steps)

    def step():
        with turn:
            advance()

    def play():
        # a week every interval on a schedule: a slow week (the platforms review their
        # links) is made up by the next ones, at most one interval's worth, so Play keeps
        # its rate while the weeks take less than the interval on average
        due = time.perf_counter()
        while True:
            with turn:
                if not (playing.value and player.is_current()):
                    return
                if model.value.steps >= model.value.scenario.steps:
                    break
                advance()
            period = interval.value / 1000
            due = max(due + period, time.perf_counter() - period)
            time.sleep(max(0.0, due - time.perf_counter()))
        playing.set(False)          # the run's last week

    player = solara.lab.use_task(play, dependencies=[playing.value], prefer_threaded=True)

    def reset():
        try:
            fresh = build_model(scenario.value, settings.value)
        except FieldError as err:       # the running model stays
            problem.set(err)
            return
        with turn:
            playing.set(False)
            problem.set(None)
            applied.set((scenario.value, settings.value))
            model.set(fresh)
            week.set(0)

    solara.Style(CSS)
    solara.Title("Walled gardens")
    with solara.AppBar():
        solara.AppBarTitle("Walled gardens: the 2021 order to open links")
    with solara.Sidebar():
        with solara.Row():
            solara.Button("Reset", color="primary", on_click=reset)
            solara.Button("❚❚" if playing.value else "▶", color="primary",
                          on_click=lambda: playing.set(not playing.value))
            solara.Button("Step", color="primary", on_click=step, disabled=playing.value)
        solara.SliderInt(label=f"Play: one week every {interval.value} ms", value=interval,
                         min=100, max=1000, step=50)
        if applied.value != (scenario.value, settings.value):
            solara.Info("Changed: press Reset to start again with these settings.")
        # keyed, so the note above coming and going leaves the controls in place: moved,
        # they would be made anew, losing the focus and a value being typed or dragged
        Controls(scenario, settings, problem).key("controls")
        with solara.Row():
            RunDownload(model.value, week)
        with solara.Row():
            if problem.value is None or problem.value.field != "Random seed":
                solara.FileDownload(lambda: settings_toml(scenario.value, settings.value),
                                    label="Save settings (scenario TOML)",
                                    filename=f"{scenario.value}_page.toml",
                                    mime_type="application/toml")
    with solara.lab.Tabs():
        with solara.lab.Tab("Model"):
            Views(model.value, week)
        with solara.lab.Tab("About this model"):
            html(ABOUT)


if __name__ == "__main__":
    # The server runs this file as __main__, once, as it starts (`solara run`; the tests
    # import it as a module instead). The server's own objects (Solara, plotly, pandas:
    # 220k, against 50k for a 40 x 40 model) are left out of Python's full collections,
    # which a running model sets off every few weeks: each walked them all (0.13 s here;
    # 0.01 s without them). Garbage is collected first, as frozen objects never are.
    gc.collect()
    gc.freeze()
    # The default scenario's burn-in (10-20 s at 40 x 40) starts now, in the background,
    # so that no tab waits for all of it, and the first takes its model ready-made if it
    # comes later than that.
    SPARE.prepare(scenario_settings(DEFAULT_SCENARIO))
