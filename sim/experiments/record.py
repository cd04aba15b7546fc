"""The 2021 record as data: `scenarios/data/record_2021.csv`, one row per figure or
dated event, each with its source and whether it is an approximation.

The validation and the calibration read the case's targets from here, never from
numbers typed into the code, so a reader can check every target against its source
and change one in one place.
"""

from __future__ import annotations

import csv
import datetime
from dataclasses import dataclass
from pathlib import Path

RECORD_FILE = Path(__file__).resolve().parents[2] / "scenarios" / "data" / "record_2021.csv"
COLUMNS = ("series", "platform", "surface", "content", "date", "value", "unit", "approximate",
           "source")
MONTHLY_USERS = "million monthly users"


@dataclass(frozen=True)
class Entry:
    series: str
    platform: str
    surface: str
    content: str          # the rival content platform a link event is about
    date: datetime.date
    value: float | None
    unit: str
    approximate: bool
    source: str


def load_record(path: Path = RECORD_FILE) -> tuple[Entry, ...]:
    """Every row of the record, checked: known columns, ISO dates, numbers where a
    value is given, a source for every row."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns must be {', '.join(COLUMNS)}")
        entries = []
        for line, row in enumerate(reader, start=2):
            if not row["source"].strip():
                raise ValueError(f"{path}:{line}: every figure needs a source")
            entries.append(Entry(row["series"], row["platform"], row["surface"], row["content"],
                                 datetime.date.fromisoformat(row["date"]),
                                 float(row["value"]) if row["value"] else None, row["unit"],
                                 row["approximate"] == "true", row["source"]))
    return tuple(entries)


def event(record, series: str, platform: str = "", surface: str = "") -> Entry:
    """The one dated event of a series (for a platform and surface)."""
    found = [e for e in record if e.series == series and e.platform == platform
             and e.surface == surface]
    if len(found) != 1:
        raise LookupError(f"the record has {len(found)} {series!r} events for "
                          f"{platform or 'the market'} {surface}".rstrip())
    return found[0]


def weeks_between(start: datetime.date, end: datetime.date) -> float:
    return (end - start).days / 7


def monthly_users(record, platform: str) -> list[Entry]:
    """A platform's monthly users over time, oldest first."""
    return sorted((e for e in record if e.series == "users" and e.platform == platform
                   and e.unit == MONTHLY_USERS), key=lambda e: e.date)


def users_at(record, platform: str, date: datetime.date) -> float:
    """Monthly users on a date, interpolated linearly between the record's figures
    (held flat beyond the first and last)."""
    series = monthly_users(record, platform)
    if not series:
        raise LookupError(f"the record has no monthly users for {platform}")
    points = [(e.date.toordinal(), e.value) for e in series]
    day = date.toordinal()
    if day <= points[0][0]:
        return points[0][1]
    for (d0, v0), (d1, v1) in zip(points, points[1:]):
        if day <= d1:
            return v0 + (v1 - v0) * (day - d0) / (d1 - d0)
    return points[-1][1]


# --- The record's moments ---------------------------------------------------------------

WECHAT, QQ = "WeChat", "QQ"
REBLOCK_WINDOW = 4    # weeks after the deadline in which a re-block counts
USER_WINDOW = 4       # weeks over which a quarter-end's users are averaged (monthly users)


@dataclass(frozen=True)
class Moment:
    """One target of the record, and how a run of the case measures it."""

    name: str
    target: float
    week: int            # the week it is measured at or up to
    kind: str            # "ratio", "lag", "share" or "blocks"
    approximate: bool
    source: str
    doc: str
    weeks: tuple[int, ...] = ()     # a ratio's weeks: those of the record's figures


def has_record(case) -> bool:
    names = [p.name for p in case.messaging]
    return (WECHAT in names and QQ in names and case.regulator.policy == "order"
            and bool(case.start_date))


def first_deadline(case) -> int:
    phases = case.regulator.phases
    return min(p.step for p in phases) if phases else case.regulator.deadline_step


def calendar_week(case, date: datetime.date) -> int:
    """The model's week (1-based) that holds a calendar date."""
    start = datetime.date.fromisoformat(case.start_date)
    return (date - start).days // 7 + 1


def record_links(case, record, series: str = "blocked") -> list[Entry]:
    """The record's links on the case's platforms before the order: those the host
    blocked (`blocked`; not `closed_by_content`: Alibaba closed the jump from WeChat
    into Taobao, and the model's content platforms do not block), or those it kept open
    (`open`)."""
    hosts = {p.name for p in case.messaging}
    contents = {p.name for p in case.content}
    return [e for e in record if e.series == series and e.platform in hosts
            and e.content in contents]


def moments(case, weeks: int, record=None) -> tuple[Moment, ...]:
    """The record's targets that a run of `weeks` weeks of the case can measure.

    - QQ's monthly users per WeChat monthly user at the record's QQ figures inside the
      run (WeChat's interpolated to the same date), as a level (their mean) and a
      change (the last less the first): three quarters of one flat series are one
      level, not three moments.
    - Of the links the record's hosts blocked before the order (WeChat: Douyin since
      2018, DingTalk since 2020; QQ: Taobao, Douyin), every surface,
      the share blocked in the week before the announcement: the blocks of a market
      at its own rest; and of the links the record shows open (to JD, Tencent's
      partner), the share open (a warning page is not open), so that restricting
      where the record does not is a misfit too.
    - Weeks from the order's deadline until WeChat's chat links are all at least
      behind a warning page, and until its chat, group and feed links are all plainly
      open, each for good (to the run's end: the record shows no WeChat re-block, so a
      re-block restarts the count, and opening for the check's weeks is not opening); a
      lag longer than the run is censored at the run's end, and so is the target (the
      feed never opened in the record).
    - Of WeChat's rival group and feed links, the share open (not blocked) for the
      deadline's check: none in the record.
    - Of QQ's chat links blocked at the start: the share open for the deadline's
      check, and the share open for it and blocked again within REBLOCK_WINDOW weeks.
    """
    record = record or load_record()
    deadline_date = event(record, "deadline").date
    deadline = first_deadline(case)
    cap = weeks - deadline
    found = []
    figures = [(calendar_week(case, e.date), e) for e in monthly_users(record, QQ)]
    figures = [(week, e) for week, e in figures if 1 < week <= weeks]
    if figures:
        ratios = [e.value / users_at(record, WECHAT, e.date) for _, e in figures]
        dates = ", ".join(f"{e.date:%b %Y}" for _, e in figures)
        source = "; ".join(e.source for _, e in figures) + ("; WeChat interpolated between "
                                                            "Tencent's quarterly figures")
        approximate = any(e.approximate for _, e in figures)
        at = tuple(week for week, _ in figures)
        found.append(Moment("qq_per_wechat_level", sum(ratios) / len(ratios), at[-1], "ratio",
                            approximate, source, f"QQ's users per WeChat user, the mean over "
                            f"{dates}", at))
        if len(figures) > 1:
            found.append(Moment("qq_per_wechat_change", ratios[-1] - ratios[0], at[-1], "ratio",
                                approximate, source, f"QQ's users per WeChat user, the change "
                                f"from {figures[0][1].date:%b %Y} to {figures[-1][1].date:%b %Y}",
                                at))
    announce = case.regulator.announce_step
    for series, name, held in (("blocked", "pre_order_blocks", "blocked"),
                               ("open", "pre_order_open", "open (not blocked)")):
        links = record_links(case, record, series)
        if links and announce > 1:
            found.append(Moment(name, 1.0, announce - 1, "blocks",
                                any(e.approximate for e in links),
                                "; ".join(e.source for e in links),
                                f"share of the record's {series} links (" + ", ".join(
                                    f"{e.platform}: {e.content}" for e in links) + "; every "
                                f"surface) {held} in the week before the announcement"))
    for series, surface, name, doc in (
            ("warned", "chat", "wechat_chat_warned_lag", "until WeChat's chat links are all at "
             "least behind a warning page"),
            ("opened", "chat", "wechat_chat_lag", "until WeChat's chat links are all open"),
            ("opened", "group", "wechat_group_lag", "until WeChat's group links are all open"),
            ("never_opened", "feed", "wechat_feed_lag", "until WeChat's feed links are all "
             "open (censored at the run's end)")):
        entry = event(record, series, WECHAT, surface)
        found.append(Moment(name, min(weeks_between(deadline_date, entry.date), cap),
                            weeks, "lag", entry.approximate, entry.source,
                            "weeks from the deadline " + doc))
    for surface in ("group", "feed"):
        closed = event(record, "closed", WECHAT, surface)
        found.append(Moment(f"wechat_{surface}_open_for_check", 0.0, deadline, "share",
                            closed.approximate, closed.source, f"share of WeChat's rival "
                            f"{surface} links open (not blocked) for the deadline's check"))
    opened = event(record, "opened", QQ, "chat")
    reblocked = event(record, "reblocked", QQ, "chat")
    found += [Moment("qq_opened_for_check", 1.0, deadline, "share", opened.approximate,
                     opened.source, "share of QQ's chat links blocked at the start that are "
                     "open for the deadline's check"),
              Moment("qq_reblocked", 1.0, deadline + REBLOCK_WINDOW, "share",
                     reblocked.approximate, reblocked.source,
                     "share of QQ's chat links blocked at the start that are open for the "
                     f"check and blocked again within {REBLOCK_WINDOW} weeks")]
    return tuple(found)


def measure(case, targets, rows: list[dict], states) -> dict[str, float]:
    """Each moment in one run: `rows` its weekly rows, `states` (weeks, hosts,
    contents, surfaces) the rival links' states after each week (the policy the
    deadline's check audits was set the week before the deadline)."""
    import numpy as np

    from sim.model.rules import BLOCKED, OPEN
    from sim.scenario import SURFACES

    names = [p.name for p in case.messaging]
    contents = [p.name for p in case.content]
    wechat, qq = names.index(WECHAT), names.index(QQ)
    deadline = first_deadline(case)
    weeks = len(rows)
    rival = np.array([[p.owner != c.owner for c in case.content] for p in case.messaging])

    def lag(host, surface, condition):
        ok = condition(states[deadline - 1:, host, rival[host], surface]).all(axis=1)
        failing = np.flatnonzero(~ok)
        held_from = failing[-1] + 1 if failing.size else 0     # weeks after the check
        return float(min(held_from, weeks - deadline))

    def ratios(at):
        return [float(np.mean([r[f"users_{QQ}"] / max(r[f"users_{WECHAT}"], 1e-12)
                               for r in rows[max(week - USER_WINDOW, 0):week]]))
                for week in at]

    chat = SURFACES.index("chat")
    started = (states[0, qq, :, chat] == BLOCKED) & rival[qq]
    at_check = states[deadline - 2] != BLOCKED
    again = (states[deadline - 1:deadline - 1 + REBLOCK_WINDOW, qq, :, chat] == BLOCKED).any(axis=0)
    denominator = max(int(started.sum()), 1)
    values = {}
    for m in targets:
        if m.name == "qq_per_wechat_level":
            values[m.name] = float(np.mean(ratios(m.weeks)))
        elif m.name == "qq_per_wechat_change":
            first, *_, last = ratios(m.weeks)
            values[m.name] = last - first
        elif m.kind == "blocks":
            blocked = m.name == "pre_order_blocks"
            pairs = [(names.index(e.platform), contents.index(e.content))
                     for e in record_links(case, load_record(), "blocked" if blocked else "open")]
            # a warning page is neither the record's block nor its open link
            held = BLOCKED if blocked else OPEN
            values[m.name] = float(np.mean([states[m.week - 1, h, c] == held
                                             for h, c in pairs]))
        elif m.name == "wechat_chat_warned_lag":
            values[m.name] = lag(wechat, chat, lambda s: s != BLOCKED)
        elif m.kind == "lag":
            surface = SURFACES.index(m.name.split("_")[1])
            values[m.name] = lag(wechat, surface, lambda s: s == OPEN)
        elif m.name.endswith("_open_for_check"):
            surface = SURFACES.index(m.name.split("_")[1])
            values[m.name] = float(at_check[wechat, rival[wechat], surface].mean())
        elif m.name == "qq_opened_for_check":
            values[m.name] = float((started & at_check[qq, :, chat]).sum() / denominator)
        else:
            values[m.name] = float((started & at_check[qq, :, chat] & again).sum() / denominator)
    return values
