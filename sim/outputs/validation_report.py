"""The validation and calibration reports: HTML pages with plotly figures (plotly.min.js
beside them, so they open offline)."""

from __future__ import annotations

import html
import math
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sim.outputs.figures import page_figure, write_plotlyjs

PASS, FAIL = "#2ca02c", "#d62728"
STYLE = """<style>body{font-family:sans-serif;margin:2em;max-width:90em}
td,th{padding:3px 8px;vertical-align:top;border-bottom:1px solid #ddd}
th{text-align:left} .num{text-align:right;white-space:nowrap}
.pass{color:#2ca02c;font-weight:bold} .fail{color:#d62728;font-weight:bold}</style>"""


def number(x: float) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    if isinstance(x, float) and math.isinf(x):
        return "∞" if x > 0 else "-∞"
    return f"{x:.4g}"


def interval(low: float, high: float) -> str:
    return "" if math.isnan(low) else f"[{number(low)}, {number(high)}]"


def evidence_figure(rows: list[dict]) -> go.Figure:
    """Each model value with its 95% interval, in a panel of its own (they have
    different units)."""
    columns = 2
    panels = math.ceil(len(rows) / columns)
    fig = make_subplots(rows=panels, cols=columns, vertical_spacing=0.6 / max(panels, 1),
                        subplot_titles=[f"{r['check']}: {r['measure'][:60]}" for r in rows])
    for k, r in enumerate(rows):
        has_ci = not math.isnan(r["ci_low"])
        fig.add_trace(go.Scatter(
            x=[r["value"]], y=[0], mode="markers",
            marker={"size": 11, "color": PASS if r["passed"] else FAIL},
            error_x={"type": "data", "symmetric": False, "visible": has_ci,
                     "array": [r["ci_high"] - r["value"] if has_ci else 0],
                     "arrayminus": [r["value"] - r["ci_low"] if has_ci else 0]},
            hovertext=[f"{r['claim']}<br>pass if {r['expected']}"], showlegend=False),
            row=k // columns + 1, col=k % columns + 1)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(height=110 * panels + 120, title="Model values with 95% confidence "
                      "intervals (green: pass, red: fail; hover for the claim)")
    return fig


def validation_table(rows: list[dict]) -> str:
    head = ("<tr><th>check</th><th>what theory or the record says</th><th>source</th>"
            "<th>model measure</th><th>pass if</th><th class=num>model</th>"
            "<th class=num>95% CI</th><th class=num>n</th><th>test</th><th class=num>p</th>"
            "<th>result</th><th>mechanism</th><th>switched off by</th>"
            "<th>check without it</th><th class=num>this row's model without it</th>"
            "<th>this row without it</th></tr>")
    body = "".join(
        f"<tr><td>{html.escape(r['check'])}</td><td>{html.escape(r['claim'])}</td>"
        f"<td>{html.escape(r['source'])}</td><td>{html.escape(r['measure'])}</td>"
        f"<td>{html.escape(r['expected'])}</td><td class=num>{number(r['value'])}</td>"
        f"<td class=num>{interval(r['ci_low'], r['ci_high'])}</td><td class=num>{r['n']}</td>"
        f"<td>{html.escape(r['test'])}</td><td class=num>{number(r['p_value'])}</td>"
        f"<td class={'pass' if r['passed'] else 'fail'}>{'pass' if r['passed'] else 'FAIL'}"
        f"</td><td>{html.escape(r['mechanism'])}</td><td>{html.escape(r['ablation'])}</td>"
        f"<td>{without(r['without_mechanism'])}</td>"
        f"<td class=num>{number(r['value_without_mechanism'])}</td>"
        f"<td>{without(r['row_without_mechanism'])}</td></tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def without(passed) -> str:
    """The check's result with its mechanism switched off: it should fail."""
    if passed is None:
        return ""
    return ("<span class=fail>still passes</span>" if passed
            else "<span class=pass>fails, as it should</span>")


def write_validation_report(path, rows: list[dict], scenario_name: str, effort: str) -> None:
    passed = sum(r["passed"] for r in rows)
    checks = {r["check"]: r["without_mechanism"] for r in rows}
    founded = sum(v is False for v in checks.values())
    figure = page_figure(evidence_figure(rows), "evidence")
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Validation: {html.escape(scenario_name)}</title>
{STYLE}</head><body>
<h1>Validation of {html.escape(scenario_name)}</h1>
<p>{passed} of {len(rows)} checks pass ({html.escape(effort)} effort). Every comparison of two
scenarios pairs replicate r of each (common random numbers); tests are at the 1% level.
Each check is run again with its mechanism switched off; {founded} of {len(checks)} checks
then fail, as evidence for the mechanism should (a check fails when any of its rows fails).</p>
{validation_table(rows)}
{figure}
</body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    write_plotlyjs(Path(path).parent)


def calibration_figure(result: dict) -> go.Figure:
    moments = result["moments"]
    fig = make_subplots(rows=1, cols=len(moments), subplot_titles=[m["moment"] for m in moments])
    for i, m in enumerate(moments, start=1):
        fig.add_trace(go.Bar(x=["record", "fitted model"], y=[m["target"], m["simulated"]],
                             error_y={"type": "data", "array": [0, m["sd"]]},
                             marker_color=["#7f7f7f", "#1f77b4"], showlegend=False),
                      row=1, col=i)
    fig.update_layout(height=360, title="Target moments and the fitted model's (± 1 sd across "
                      "replicates)")
    return fig


def parameter_grid(fit: list[dict]):
    """One subplot per parameter, four to a row: the figure, its rows and each
    parameter's (row, column)."""
    columns = min(len(fit), 4)
    rows = -(-len(fit) // columns)
    fig = make_subplots(rows=rows, cols=columns, subplot_titles=[p["parameter"] for p in fit])
    return fig, rows, [(i // columns + 1, i % columns + 1) for i in range(len(fit))]


def profile_figure(result: dict) -> go.Figure:
    """The objective along each parameter, the others held at the fit: a flat profile
    is a parameter the moments do not pin down."""
    fit = result["fit"]
    fig, rows, places = parameter_grid(fit)
    for p, (row, col) in zip(fit, places):
        points = [r for r in result["profiles"] if r["parameter"] == p["parameter"]]
        fig.add_trace(go.Scatter(x=[r["value"] for r in points], y=[r["objective"] for r in points],
                                 mode="lines+markers", marker={"color": "#1f77b4"},
                                 showlegend=False), row=row, col=col)
        fig.add_trace(go.Scatter(x=[p["estimate"]], y=[result["objective"]], mode="markers",
                                 marker={"color": FAIL if not p["identified"] else "#2ca02c",
                                         "size": 12, "symbol": "star"}, showlegend=False),
                      row=row, col=col)
    fig.update_yaxes(type="log")
    fig.update_layout(height=300 * rows, title="Profile of the objective along each parameter, "
                      "the others at the fit (star: the fit; red: not identified)")
    return fig


def design_figure(result: dict) -> go.Figure:
    """The objective over the Sobol design, against each parameter."""
    fit = result["fit"]
    fig, rows, places = parameter_grid(fit)
    for p, (row, col) in zip(fit, places):
        fig.add_trace(go.Scatter(x=[d[p["parameter"]] for d in result["design"]],
                                 y=[d["objective"] for d in result["design"]], mode="markers",
                                 marker={"color": "#1f77b4", "size": 6}, showlegend=False),
                      row=row, col=col)
    fig.update_yaxes(type="log")
    fig.update_layout(height=300 * rows, title="Objective over the search design (second-step "
                      "weights)")
    return fig


def write_calibration_report(path, result: dict, scenario_name: str, fitted_file: str) -> None:
    identification = result["identification"]
    unseen = {r["parameter"]: r for r in identification["parameters"]}
    test = identification["overidentification"]
    rejected = (": the model is rejected at the 5% level: the record's moments are not all "
                "matched at once" if test["p_value"] < 0.05 else "")
    fit_rows = "".join(
        f"<tr><td>{html.escape(p['parameter'])}</td><td class=num>{number(p['estimate'])}</td>"
        f"<td class=num>{number(p['std_error'])}</td>"
        f"<td class=num>[{number(p['low'])}, {number(p['high'])}]</td>"
        f"<td class=num>{number(unseen[p['parameter']]['unseen_share'])}</td>"
        f"<td>{'yes' if p['identified'] else '<b>no</b>: held at the assumption; sweep it'}</td>"
        f"<td>{html.escape(p['meaning'])}</td></tr>" for p in result["fit"])
    moment_rows = "".join(
        f"<tr><td>{html.escape(m['moment'])}</td><td class=num>{number(m['target'])}"
        f"{' (approx.)' if m['approximate'] else ''}</td>"
        f"<td class=num>{number(m['simulated'])}</td><td class=num>{number(m['sd'])}</td>"
        f"<td class=num>{number(m['simulated_fresh'])}</td>"
        f"<td class=num>{number(m['weight'])}</td><td>{html.escape(m['meaning'])}</td>"
        f"<td>{html.escape(m['source'])}</td></tr>" for m in result["moments"])
    singular = ", ".join(number(v) for v in identification["singular_values"])
    figures = "".join(
        page_figure(fig, name, load_plotlyjs=i == 0)
        for i, (name, fig) in enumerate((("moments", calibration_figure(result)),
                                         ("profiles", profile_figure(result)),
                                         ("design", design_figure(result)))))
    page = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Calibration: {html.escape(scenario_name)}</title>
{STYLE}</head><body>
<h1>Calibration of {html.escape(scenario_name)} by simulated moments</h1>
<p>Objective {number(result['objective'])} (best design point
{number(result['start_objective'])}; the scenario's own values
{number(result['case_objective'])}), {result['evaluations']} evaluations of {result['replicates']} replicates of {result['weeks']}
weeks each, common random numbers throughout; weighting matrix: the inverse of the moments'
covariance across replicates at the best first-step design point. Fitted scenario:
<code>{html.escape(fitted_file)}</code>.</p>
<h2>Identification</h2>
<p>Jacobian of the weighted moments (search scale): rank {identification['rank']} of
{identification['parameters_count']} parameters, condition number
{number(identification['condition_number'])}; singular values {singular}. A parameter is
identified when its standard error is finite and its 95% interval spans at most half its
search range (a standard error at most an eighth of it), and less than half of it lies in the
directions the moments do not see ("unseen"). Parameters that are not identified keep the
scenario's assumption in the fitted file: sweep them.</p>
<p>Hansen's test of the over-identifying restrictions: J = {number(test['J'])} on
{test['degrees_of_freedom']} degrees of freedom, p = {number(test['p_value'])}{rejected}.
The estimate is the best of the search's evaluations, all on the same replicate streams,
which biases its fit towards the record: on fresh streams (root seed
{result['fresh']['seed']}) the objective is {number(result['fresh']['objective'])} and
J = {number(result['fresh']['J'])}, p = {number(result['fresh']['p_value'])} (the moments'
column "fresh streams").</p>
<h2>Parameters</h2><table><tr><th>parameter</th><th class=num>estimate</th>
<th class=num>std. error</th><th class=num>search range</th><th class=num>unseen</th>
<th>identified</th><th>meaning</th></tr>{fit_rows}</table>
<h2>Moments</h2><table><tr><th>moment</th><th class=num>record</th><th class=num>fitted model</th>
<th class=num>sd</th><th class=num>fresh streams</th><th class=num>weight</th><th>meaning</th><th>source</th></tr>{moment_rows}
</table>
{figures}
</body></html>
"""
    with open(path, "w", encoding="utf-8") as f:
        f.write(page)
    write_plotlyjs(Path(path).parent)
