"""The interactive page for students: `python run.py serve`, or `solara run sim/server/app.py`.

Each browser tab gets its own model (built in `Page`, never shared). Controls take
effect on Reset, as in every Mesa SolaraViz page. Every chart is plotly, so the
page needs nothing from the internet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import solara
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter
from plotly.subplots import make_subplots

from sim.agents import UserAgent
from sim.model import WalledGardenModel
from sim.report import regulatory_marks
from sim.scenario import MAX_SEED, SURFACES, load

SCENARIOS = Path(__file__).resolve().parent.parent.parent / "scenarios"
HOSTS = ("WeChat", "QQ", "DingTalk")
DEFAULT_SEED = 2021
STRATEGY_CHOICES = ["as in scenario", "static", "best_response", "learning", "comply"]


def scenario_names() -> list[str]:
    """The scenarios a student may pick: the files of scenarios/, by name only."""
    return sorted(p.stem for p in SCENARIOS.glob("*.toml"))


class ClassroomModel(WalledGardenModel):
    """The model as the page builds it: a scenario from scenarios/ and the controls."""

    def __init__(self, scenario="china_2021", seed=DEFAULT_SEED, size=30, order=True, deadline_step=11,
                 audit_probability=0.02, fine=0.04, fine_kind="revenue_share", measures=True,
                 token_cost=0.3, share_rate=2.0, multihoming_cost=0.5, switching_cost=0.5,
                 WeChat="as in scenario", QQ="as in scenario", DingTalk="as in scenario"):
        if scenario not in scenario_names():        # names only: no paths from the page
            raise ValueError(f"unknown scenario {scenario!r}")
        # The seed is typed as text. A bad one must not reach the page as an error, whose
        # traceback would show the server's paths: the model takes the default seed and
        # its log says why.
        given = parse_seed(seed)
        used = DEFAULT_SEED if given is None else given
        overrides = [f"seed={used}", f"grid.width={int(size)}", f"grid.height={int(size)}",
                     'engine="agent"', f'regulator.policy="{"order" if order else "none"}"',
                     f"regulator.deadline_step={int(deadline_step)}",
                     f"regulator.audit_probability={float(audit_probability)}",
                     f"regulator.fine={float(fine)}", f'regulator.fine_kind="{fine_kind}"',
                     f"users.token_cost={float(token_cost)}", f"users.share_rate={float(share_rate)}",
                     f"users.multihoming_cost={float(multihoming_cost)}",
                     f"users.switching_cost={float(switching_cost)}"]
        overrides += [f"regulator.{m}={str(bool(measures)).lower()}"
                      for m in ("naming", "suspend_registrations", "forced_open")]
        spec = load(SCENARIOS / f"{scenario}.toml")
        if order and not spec.regulator.phases:
            overrides.append(f"regulator.announce_step={min(spec.regulator.announce_step, int(deadline_step))}")
        names = {p.name for p in spec.messaging}
        for host, strategy in (("WeChat", WeChat), ("QQ", QQ), ("DingTalk", DingTalk)):
            if host in names and strategy != "as in scenario":
                overrides.append(f'platforms.{host}.strategy="{strategy}"')
        super().__init__(load(SCENARIOS / f"{scenario}.toml", overrides), rng=used)
        if given is None:
            self.events.append({"step": 0, "event": "seed", "platform": "", "detail":
                                f"the random seed must be a whole number from 0 to {MAX_SEED}, "
                                f"got {str(seed)[:40]!r}: using {used}"})


def parse_seed(text) -> int | None:
    """The seed typed on the page, or None if it is not a valid seed."""
    try:
        seed = int(str(text).strip())
    except ValueError:
        return None
    return seed if 0 <= seed <= MAX_SEED else None


MODEL_PARAMS = {
    "scenario": {"type": "Select", "value": "china_2021", "values": scenario_names(),
                 "label": "Scenario"},
    "seed": {"type": "InputText", "value": DEFAULT_SEED, "label": "Random seed"},
    "size": {"type": "SliderInt", "value": 30, "min": 10, "max": 60, "step": 5,
             "label": "Grid side (users = side²)"},
    "order": {"type": "Checkbox", "value": True, "label": "Regulator orders links open"},
    "deadline_step": {"type": "SliderInt", "value": 11, "min": 2, "max": 60, "step": 1,
                      "label": "Deadline (week)"},
    "audit_probability": {"type": "SliderFloat", "value": 0.02, "min": 0.0, "max": 0.5,
                          "step": 0.01, "label": "Audits after the deadline (per week)"},
    "fine": {"type": "SliderFloat", "value": 0.04, "min": 0.0, "max": 0.2, "step": 0.005,
             "label": "Fine per violation"},
    "fine_kind": {"type": "Select", "value": "revenue_share", "values": ["revenue_share", "fixed"],
                  "label": "Fine kind"},
    "measures": {"type": "Checkbox", "value": True,
                 "label": "Measures: naming, suspension, forced opening"},
    "token_cost": {"type": "SliderFloat", "value": 0.3, "min": 0.0, "max": 2.0, "step": 0.05,
                   "label": "Token cost"},
    "share_rate": {"type": "SliderFloat", "value": 2.0, "min": 0.0, "max": 6.0, "step": 0.5,
                   "label": "Shares per user per week"},
    "multihoming_cost": {"type": "SliderFloat", "value": 0.5, "min": 0.0, "max": 2.0,
                         "step": 0.05, "label": "Multihoming cost"},
    "switching_cost": {"type": "SliderFloat", "value": 0.5, "min": 0.0, "max": 2.0, "step": 0.05,
                       "label": "Switching cost"},
    **{host: {"type": "Select", "value": "as in scenario", "values": STRATEGY_CHOICES,
              "label": f"{host} strategy"} for host in HOSTS},
}

HELP = """
**What you are looking at.** Each square is a person; its colour is the messaging
app they use (grey: more than one; red: paid a copy-paste token this week).

- **Token cost**: in 2021 a WeChat user could not open a Taobao link, so people
  copied a code such as `¥1234abcd¥` into the chat and the friend pasted it into
  Taobao. The slider is the time that costs, in units of a share's mean value.
- **Deadline**: MIIT met the firms on 9 September 2021 (week 10) and gave them until
  17 September (week 11).
- **Audits** and **fine**: the ministry checked on the deadline day; later checks
  were rare. The Alibaba fine of April 2021 was 4% of its revenue; the law caps
  fines at 10%.
- **Measures**: naming a platform publicly, suspending new registrations (WeChat
  paused sign-ups in July 2021), and opening the links by order.
- **Strategies**: *static* never changes; *best_response* weighs the visits its
  owner's own services gain (Weixin Channels for short video, Sogou for search)
  against the users it loses and the regulator's expected fines and measures;
  *learning* repeats what paid, link by link; *comply* opens when told.
- **Warning page**: in September 2021 WeChat let links open in one-on-one chats only
  behind a warning page; some users give up there (amber in the link policy).

Change the controls, then press **Reset** to start again with them.
"""


def platform_codes(model) -> np.ndarray:
    """Each cell's colour code: 0 empty, 1..M the single platform, M+1 several,
    M+2 paid a token this week."""
    grid = model.scenario.grid
    codes = np.zeros((grid.height, grid.width), dtype=int)
    hosts = len(model.scenario.messaging)
    for user in model.agents_by_type[UserAgent]:
        x, y = user.cell.coordinate
        if user.paid_token:
            codes[y, x] = hosts + 2
        elif bin(user.platforms).count("1") > 1:
            codes[y, x] = hosts + 1
        else:
            codes[y, x] = user.platforms.bit_length()
    return codes


PALETTE = ["#ffffff", "#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b"]


def grid_figure(model) -> go.Figure:
    hosts = [p.name for p in model.scenario.messaging]
    labels = ["empty", *hosts, "several apps", "paid a token"]
    colors = PALETTE[: len(hosts) + 1] + ["#999999", "#d62728"]
    n = len(labels)
    scale = [[k / n, c] for i, c in enumerate(colors) for k in (i, i + 1)]
    fig = go.Figure(go.Heatmap(z=platform_codes(model), zmin=-0.5, zmax=n - 0.5,
                               colorscale=scale, showscale=True,
                               colorbar={"tickvals": list(range(n)), "ticktext": labels}))
    fig.update_layout(title=f"Users on the grid, week {model.steps}", height=420,
                      margin={"l": 10, "r": 10, "t": 40, "b": 10},
                      yaxis={"scaleanchor": "x", "visible": False}, xaxis={"visible": False})
    return fig


def time_figure(model) -> go.Figure:
    rows = model.rows
    fig = make_subplots(rows=2, cols=2, subplot_titles=(
        "Users by platform", "Links blocked", "Share outcomes", "Consumer surplus"))
    weeks = [r["step"] for r in rows]
    for p in model.scenario.messaging:
        fig.add_trace(go.Scatter(x=weeks, y=[r[f"users_{p.name}"] for r in rows], name=p.name),
                      row=1, col=1)
    for surface in SURFACES:
        fig.add_trace(go.Scatter(x=weeks, y=[r[f"links_blocked_{surface}"] for r in rows],
                                 name=f"blocked: {surface}"), row=1, col=2)
    fig.add_trace(go.Scatter(x=weeks, y=[r["links_warned"] for r in rows],
                             name="warning page"), row=1, col=2)
    for outcome in ("direct", "token", "abandoned", "unreachable"):
        fig.add_trace(go.Scatter(x=weeks, y=[r[f"shares_{outcome}"] for r in rows], name=outcome),
                      row=2, col=1)
    fig.add_trace(go.Scatter(x=weeks, y=[r["consumer_surplus"] for r in rows],
                             name="consumer surplus"), row=2, col=2)
    for week, _ in regulatory_marks(model.scenario):
        fig.add_vline(x=week, line_dash="dot", line_color="#444")
    fig.update_layout(height=520, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    return fig


def policy_figure(model) -> go.Figure:
    """Host x content, per surface: open, behind a warning page, blocked, or own group."""
    hosts = [p.name for p in model.scenario.messaging]
    contents = [c.name for c in model.scenario.content]
    state = np.where(model.links.rival, model.links.state, 3)
    colors = ["#2ca02c", "#ffbf00", "#d62728", "#dddddd"]
    scale = [[k / 4, c] for i, c in enumerate(colors) for k in (i, i + 1)]
    fig = make_subplots(rows=1, cols=3, subplot_titles=SURFACES)
    for s in range(len(SURFACES)):
        fig.add_trace(go.Heatmap(z=state[:, :, s].tolist(), x=contents, y=hosts, zmin=-0.5,
                                 zmax=3.5, colorscale=scale, showscale=False, xgap=2, ygap=2),
                      row=1, col=s + 1)
    fig.update_layout(title="Link policy: green open, amber warning page, red blocked, "
                            "grey own group", height=300,
                      margin={"l": 10, "r": 10, "t": 70, "b": 10})
    return fig


def html(markdown_text: str):
    """Markdown shown as HTML: solara.Markdown would fetch KaTeX from a CDN."""
    import markdown

    solara.HTML(tag="div", unsafe_innerHTML=markdown.markdown(markdown_text,
                                                              extensions=["tables"]))


def event_log(model) -> str:
    lines = [f"| {e['step']} | {e['event']} | {e['platform']} | {e['detail']} |"
             for e in model.events[-12:]]
    table = ("| week | event | platform | detail |\n|---|---|---|---|\n" + "\n".join(lines)
             if lines else "_No regulatory events yet._")
    return f"**Week {model.steps}** · links blocked: {model.links.count_blocked}\n\n{table}"


@solara.component
def Dashboard(model):
    """Every view, one under another, redrawn after each step."""
    update_counter.get()
    with solara.Columns([3, 2]):
        solara.FigurePlotly(grid_figure(model))
        with solara.Column():
            html(event_log(model))
    solara.FigurePlotly(time_figure(model))
    solara.FigurePlotly(policy_figure(model))
    html(HELP)


@solara.component
def Page():
    # Built here, per browser tab: two students never share a model.
    model = solara.use_memo(ClassroomModel, [])
    SolaraViz(model, components=[Dashboard], model_params=MODEL_PARAMS,
              name="Walled gardens: the 2021 order to open links", play_interval=300)
