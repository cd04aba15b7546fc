"""Scenario files: the schema, loading, validation and `--set` overrides.

A scenario is a TOML file. Every key it may hold is declared once, below, as a
dataclass field with its default, unit, allowed range and meaning; validation,
`--set` and the key reference in `scenarios/README.md` are all derived from these
declarations, so they cannot drift apart.

Bad input raises `ScenarioError`, whose message is one line naming the file, the
key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import math
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SURFACES = ("chat", "group", "feed")


class ScenarioError(Exception):
    """Bad scenario input: one line naming the file, the key and what is allowed."""

    def __init__(self, source: str, key: str, message: str):
        self.source, self.key = source, key
        where = f"{source}: {key}: " if key else f"{source}: "
        super().__init__(where + message)


# --- Declaring keys -------------------------------------------------------------------

@dataclass(frozen=True)
class Check:
    """What a key accepts: a type, an optional numeric range, optional choices."""

    kind: type
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    choices: tuple[str, ...] = ()
    noun: str = ""            # what it is, when not its kind's usual name

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        name = self.noun or {int: "an integer", float: "a number", bool: "true or false",
                             str: "a string", list: "a list of strings",
                             dict: "a table of numbers", tuple: "a list of tables"}[self.kind]
        if self.low is not None and self.high is not None:
            opening = "(" if self.low_open else "["
            return f"{name} in {opening}{_fmt(self.low)}, {_fmt(self.high)}]"
        if self.low is not None:
            return f"{name} {'>' if self.low_open else '≥'} {_fmt(self.low)}"
        return name

    def validate(self, value: Any) -> Any:
        """Return the value coerced to its kind, or raise ValueError with what is allowed."""
        allowed = self.describe()
        if self.kind is bool:
            if not isinstance(value, bool):
                raise ValueError(f"must be {allowed}, got {value!r}")
            return value
        if self.kind in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"must be {allowed}, got {value!r}")
            if self.kind is int and not float(value).is_integer():
                raise ValueError(f"must be {allowed}, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"must be {allowed}, got {value!r}")
            value = self.kind(value)
            too_low = self.low is not None and (value <= self.low if self.low_open else value < self.low)
            too_high = self.high is not None and value > self.high
            if too_low or too_high:
                raise ValueError(f"must be {allowed}, got {value!r}")
            return value
        if self.kind is str:
            if not isinstance(value, str) or (self.choices and value not in self.choices):
                raise ValueError(f"must be {allowed}, got {value!r}")
            return value
        if self.kind is list:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError(f"must be {allowed}, got {value!r}")
            return tuple(value)
        if self.kind is dict:
            if not isinstance(value, dict):
                raise ValueError(f"must be {allowed}, got {value!r}")
            return dict(value)
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise ValueError(f"must be {allowed}, got {value!r}")
        return tuple(value)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def key(default: Any, check: Check, unit: str, doc: str):
    """A scenario key: its default, what it accepts, its unit and what it means."""
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default),
                     metadata={"check": check, "unit": unit, "doc": doc})
    return field(default=default, metadata={"check": check, "unit": unit, "doc": doc})


def number(low=None, high=None, low_open=False):
    return Check(float, low, high, low_open)


def integer(low=None, high=None):
    return Check(int, low, high)


def probability():
    return Check(float, 0.0, 1.0)


FLAG = Check(bool)
TEXT = Check(str)

# Every number has an upper bound, so that no valid input overflows to inf or NaN. The
# bounds are far beyond any sensible value yet keep every product the model forms
# finite: money, utilities and weights up to 1e6 (money's unit is one chat view's mean
# value), times at most 4e8 users, 50 shares and 120 ties each, stay below 1e20.
LARGE = 1e6
MAX_STEPS = 100_000            # weeks: about 1,900 years
MAX_REPLICATES = 100_000
MAX_SEED = 2**63 - 1           # what a TOML integer can hold
# How long naming or a suspension lasts: the platforms' projection of a measure costs
# time in its length times their planning horizon (at most 520 weeks too).
MAX_MEASURE_WEEKS = 520


# --- The schema -----------------------------------------------------------------------

@dataclass(frozen=True)
class GridSpec:
    width: int = key(40, integer(3, 20000), "cells", "Width of the torus grid.")
    height: int = key(40, integer(3, 20000), "cells", "Height of the torus grid.")
    density: float = key(1.0, number(0.0, 1.0, low_open=True), "fraction",
                         "Chance that a cell holds a user; below 1 leaves cells empty.")
    radius: int = key(1, integer(1, 5), "cells",
                      "Moore neighbourhood radius: a user's ties are the users within it.")
    rewire: float = key(0.05, probability(), "fraction",
                        "Fraction of ties replaced by a tie to a random user (small world).")
    well_mixed: bool = key(False, FLAG, "",
                           "Draw every partner from the whole population (the mean-field limit).")
    extra_ties: float = key(0.0, number(0.0, 1000.0), "ties per user",
                            "Mean number of long-range ties added to each user's grid ties, "
                            "with heavy-tailed counts (0: none, the plain grid).")
    degree_tail: float = key(2.5, number(1.0, 100.0, low_open=True), "shape",
                             "Tail exponent alpha of the long-range ties' counts (Lomax "
                             "weights): P(more than k) falls like k^-alpha; smaller is heavier.")


@dataclass(frozen=True)
class UserSpec:
    share_rate: float = key(1.0, number(0.0, 50.0), "shares per week",
                            "Mean number of links a user shares per week (Poisson).")
    surface_weights: dict = key({"chat": 0.6, "group": 0.3, "feed": 0.1}, Check(dict), "weights",
                                "Relative frequency of posts on each surface: chat, group, feed (each in "
                                "[0, 1e6]).")
    group_size: int = key(5, integer(1, 120), "ties",
                          "Ties one group post reaches (at most the sender's ties); a chat post "
                          "reaches one tie and a feed post every tie.")
    surface_value: dict = key({"chat": 1.0, "group": 0.5, "feed": 0.2}, Check(dict),
                              "x share_value",
                              "Mean value of one view on each surface, relative to share_value (each "
                              "in (0, 1e6]).")
    share_value: float = key(1.0, number(0.0, LARGE, low_open=True), "money per view",
                             "Mean value of a chat view reaching its content (exponential).")
    token_cost: float = key(0.3, number(0.0, LARGE), "money per token",
                            "Time cost of routing a blocked share through a copy-paste token.")
    token_success: float = key(0.8, probability(), "probability",
                               "Chance that a token share reaches its content.")
    warning_cost: float = key(0.05, number(0.0, LARGE), "money per view",
                              "Time cost of clicking through a warning page.")
    warning_dropout: float = key(0.2, probability(), "probability",
                                 "Chance that a viewer gives up at a warning page whatever the "
                                 "view is worth.")
    diverted_value: float = key(0.5, probability(), "fraction",
                                "What a view diverted to the host owner's own service is worth "
                                "to the user, as a fraction of the view it replaced.")
    revision_rate: float = key(0.1, probability(), "per week",
                               "Fraction of users who reconsider their platforms each week.")
    choice_intensity: float = key(4.0, number(0.0, 1000.0), "1 / utility",
                                  "Logit intensity of platform choice (Brock-Durlauf beta).")
    network_weight: float = key(2.0, number(0.0, LARGE), "utility",
                                "Value of reaching all of one's ties (Brock-Durlauf J).")
    switching_cost: float = key(0.5, number(0.0, LARGE), "utility", "One-off cost of joining a platform.")
    multihoming_cost: float = key(0.4, number(0.0, LARGE), "utility per week",
                                  "Cost of each platform used beyond the first.")
    max_platforms: int = key(2, integer(1, 8), "platforms",
                             "Most messaging platforms one user may use at once.")
    initial_multihoming: float = key(0.0, probability(), "fraction",
                                     "Fraction of users who start on a second messaging platform.")
    cohorts: tuple = key([], Check(tuple), "tables",
                         "Optional latent classes of users, each a {name, share, taste, sharing, "
                         "initial_share, initial_second} table (mixed logit); none: every user alike.")
    cohort_clustering: float = key(0.0, probability(), "fraction",
                                   "Chance that a user belongs to the cohort of their patch of "
                                   "the grid rather than to one drawn alone (cohorts who share a "
                                   "platform live near each other).")
    cohort_patch: int = key(5, integer(1, 20000), "cells",
                            "Side of the square patches whose users share a cohort.")


@dataclass(frozen=True)
class CohortSpec:
    name: str = key("", TEXT, "", "Unique name of the cohort.")
    share: float = key(1.0, probability(), "fraction",
                       "Fraction of users in it (the cohorts' shares sum to 1).")
    taste: dict = key({}, Check(dict), "platform -> utility per week",
                      "Extra appeal of messaging platforms to its members, by platform name "
                      "(a platform not named: 0).")
    sharing: float = key(1.0, number(0.0, 50.0), "x users.share_rate",
                         "Its members' sharing intensity, relative to users.share_rate.")
    initial_share: dict = key({}, Check(dict), "platform -> fraction",
                              "Where its members start, by platform name (sums to 1); empty: "
                              "the platforms' initial_share.")
    initial_second: dict = key({}, Check(dict), "platform -> fraction",
                               "Chance that a member starting elsewhere also starts on this "
                               "platform (at most one second platform: the chances beside any "
                               "first platform sum to at most 1; none with users.max_platforms = 1); "
                               "empty: users.initial_multihoming with the second drawn by the "
                               "starting shares.")


@dataclass(frozen=True)
class PlatformSpec:
    name: str = key("", TEXT, "", "Unique name; output columns use it (users_<name>).")
    owner: str = key("", TEXT, "", "The group that owns it; profits are per owner (profit_<owner>).")
    messaging: bool = key(False, FLAG, "", "Users chat and share links on it.")
    content: bool = key(False, FLAG, "", "Its links get shared (a shop, short video, search).")
    initial_share: float = key(0.0, probability(), "fraction",
                               "Messaging: fraction of users who start on it (they sum to 1).")
    quality: float = key(0.0, number(-100.0, 100.0), "utility per week",
                         "Messaging: intrinsic appeal to users.")
    interconnected: bool = key(
        False, FLAG, "",
        "Messaging: its users reach the users of other interconnected platforms they share no "
        "platform with (voluntary compatibility, as among Malueg & Schwartz's rivals).")
    content_weight: float = key(0.0, number(0.0, LARGE), "weight",
                                "Content: relative frequency with which its links are shared.")
    category: str = key("", TEXT, "",
                        "Content: what it offers (shopping, video, search, work...). A blocked "
                        "view can be diverted only to a service of the same category.")
    stakes: dict = key({}, Check(dict), "owner -> fraction",
                       "Content: shares of its visit profit that accrue to other groups "
                       "(Tencent's stake in JD.com), paid on stake_margin; the owner keeps "
                       "the rest.")
    stake_margin: float = key(1.0, probability(), "share of revenue",
                              "Content: the profit a visit's revenue leaves, on which stakes are "
                              "paid (a stake is a claim on profit, not on sales; 1: on revenue).")
    revenue_per_visit: float = key(1.0, number(0.0, LARGE), "money per visit",
                                   "Content: what a completed share earns its owner.")
    revenue_per_user: float = key(0.5, number(0.0, LARGE), "money per user-week",
                                  "Messaging: weekly revenue from each user on it.")
    diversion: float = key(0.3, probability(), "fraction",
                           "Messaging: chance that a view lost to its block or warning page goes "
                           "to a service of the same category in which its owner has a stake.")
    blocks: tuple = key([], Check(list), "platform names",
                        "Messaging: rival content platforms blocked on every surface at the start.")
    warns: tuple = key([], Check(list), "platform names",
                       "Messaging: rival content platforms behind a warning page on every "
                       "surface at the start.")
    strategy: str = key("static", Check(str, choices=("static", "best_response", "learning", "comply")),
                        "", "How it sets its link policy (see sim/model/strategies.py).")
    review_period: int = key(4, integer(1, 520), "weeks", "How often it reviews its link policy.")
    planning_horizon: int = key(52, integer(1, 520), "weeks",
                                "Weeks over which it counts the users a policy loses or keeps.")
    discount: float = key(0.998, number(0.0, 1.0, low_open=True), "per week",
                          "Weekly discount factor of its owner (0.998 is about 10% a year).")
    strategy_intensity: float = key(100.0, number(0.0, 10000.0), "1 / weekly revenue",
                                    "Logit intensity on profit differences (best_response, "
                                    "learning).")
    adjustment_cost: float = key(0.005, number(0.0, LARGE), "weekly revenue",
                                 "Cost of changing one link's state, in weeks of the owner's "
                                 "revenue.")
    traffic_memory: float = key(0.25, number(0.0, 1.0, low_open=True), "fraction",
                                "Weight of the newest week in its estimate of the views on "
                                "each route (an exponential average of the ledger; 1: last "
                                "week's alone).")
    audit_belief: float = key(0.1, probability(), "probability",
                              "Prior mean of its belief in the weekly routine audit probability.")
    complaint_belief: float = key(
        1.0, number(0.0, LARGE), "multiple of regulator.complaints",
        "How strongly it believes users' complaints report its violations, as a multiple of "
        "the true rate (1: it knows the rate; not learned).")
    deadline_credibility: float = key(
        1.0, probability(), "probability",
        "Prior belief that an announced deadline check comes (times regulator.deadline_audit).")
    foresee_escalation: bool = key(
        False, FLAG, "",
        "Counts what a decision against its group in the coming period adds to later "
        "penalties to its horizon (each decision raises the next fine and climbs the "
        "ladder), each later week keeping its violations or complying, whichever costs "
        "its owner less.")
    belief_weight: float = key(10.0, number(0.0, LARGE), "platform-weeks",
                               "Weight of each prior against inspections seen, in "
                               "pseudo-observations: one a week for each platform the "
                               "regulator may inspect (with three, 10 is about three "
                               "calendar weeks).")
    recency: float = key(0.1, probability(), "fraction",
                         "Learning: how fast old experience is forgotten (EWA phi).")
    experimentation: float = key(0.05, probability(), "probability",
                                 "Learning: chance of trying a state at random.")
    credit: str = key("link", Check(str, choices=("link", "owner")), "",
                      "Learning: credit each link with its own payoff, or every link with "
                      "the owner's realised profit (no credit assignment).")
    foregone_weight: float = key(0.5, probability(), "fraction",
                                 "Learning: weight of the payoffs of states not played (EWA delta).")


@dataclass(frozen=True)
class PhaseSpec:
    step: int = key(0, integer(0, MAX_STEPS), "week", "Week from which the surfaces must be open.")
    surfaces: tuple = key(list(SURFACES), Check(list), "surface names",
                          "Surfaces the phase requires open: chat, group, feed.")


@dataclass(frozen=True)
class RegulatorSpec:
    policy: str = key("none", Check(str, choices=("none", "order")), "",
                      "none, or an order to open rival links.")
    announce_step: int = key(10, integer(0, MAX_STEPS), "week", "Week the order is announced.")
    deadline_step: int = key(11, integer(0, MAX_STEPS), "week",
                             "Week by which every surface must be open (unless phases say otherwise).")
    phases: tuple = key([], Check(tuple), "tables",
                        "Optional phased opening: a list of {step, surfaces}; replaces the deadline.")
    deadline_audit: float = key(1.0, probability(), "probability",
                                "Audit probability per platform on a deadline week (the blitz).")
    audit_probability: float = key(0.05, probability(), "per platform-week",
                                   "Audit probability per platform each week after a deadline.")
    visibility: dict = key({"chat": 1.0, "group": 0.6, "feed": 0.3}, Check(dict), "probability",
                           "Chance that an audit finds a violating link on each surface "
                           "(complaints come mostly from chats).")
    complaints: float = key(0.0, number(0.0, LARGE), "per unit of harm per thousand users",
                            "Users' reports of a violating link: each week one that costs users "
                            "h a week per thousand users (value of the views lost and friction "
                            "paid, shared among a route's platforms) is reported with chance "
                            "1 - exp(-complaints x h), and the inspection a report brings finds "
                            "it (0: no reports).")
    reblock_audit: float = key(0.0, probability(), "probability",
                               "Chance that a re-block, which users notice and report, brings "
                               "an audit of that platform the next week.")
    accept_warning: bool = key(False, FLAG, "",
                               "Count a link open behind a warning page as open (else it is a "
                               "violation).")
    fine: float = key(0.04, number(0.0, 10.0), "share of annual revenue, or money",
                      "Fine of one decision, for an audit that finds violations (see fine_kind).")
    fine_kind: str = key("revenue_share", Check(str, choices=("revenue_share", "fixed")), "",
                         "revenue_share: fine x owner's previous year's revenue; fixed: fine in "
                         "money.")
    fine_escalation: float = key(1.5, number(1.0, 100.0), "factor",
                                 "Multiplies the fine for each earlier decision against the platform.")
    fine_cap: float = key(0.10, number(0.0, 10.0), "share of annual revenue",
                          "Cap on one decision, as a share of the owner's previous year's revenue "
                          "(Anti-Monopoly Law: 10%). Once a decision is capped, each further one "
                          "also climbs a rung of the measures.")
    naming: bool = key(True, FLAG, "", "Measure: publicly name a platform caught repeatedly.")
    naming_after: int = key(2, integer(1, MAX_STEPS), "audits", "Audits with violations before naming.")
    naming_penalty: float = key(0.3, number(0.0, LARGE), "utility per week",
                                "Quality penalty with users while named.")
    naming_steps: int = key(8, integer(1, MAX_MEASURE_WEEKS), "weeks", "How long naming lasts.")
    suspend_registrations: bool = key(True, FLAG, "",
                                      "Measure: suspend new registrations (WeChat, July 2021).")
    suspend_after: int = key(3, integer(1, MAX_STEPS), "audits", "Audits with violations before suspension.")
    suspension_steps: int = key(2, integer(1, MAX_MEASURE_WEEKS), "weeks", "How long registrations stay suspended.")
    forced_open: bool = key(True, FLAG, "", "Measure: the regulator opens the links itself.")
    forced_open_after: int = key(4, integer(1, MAX_STEPS), "audits",
                                 "Audits with violations before links are forced open.")
    interoperability: bool = key(
        False, FLAG, "",
        "Also order messaging interoperability (as EU DMA Art. 7): from the first deadline, "
        "every messaging platform is interconnected with every other.")
    interoperability_reach: float = key(
        0.8, probability(), "fraction",
        "Worth of a tie reached only across interconnected platforms, relative to one on a "
        "shared platform.")


@dataclass(frozen=True)
class BurnInSpec:
    weeks: int = key(0, integer(0, 2000), "weeks",
                     "Most weeks the whole market runs before week 1 with no order: users "
                     "share and choose their platforms, owners earn, platforms review their "
                     "links. It stops earlier at rest (see window, tolerance), so the case "
                     "meets a market at its own rest point, links included. 0: none.")
    window: int = key(52, integer(2, 520), "weeks",
                      "At rest: over the last `window` weeks, the mean of the second half "
                      "differs from the first half's by at most `tolerance`, for every "
                      "messaging platform's share of users and share of rival links blocked.")
    tolerance: float = key(0.01, number(0.0, 1.0), "fraction",
                           "How far the window's halves may differ at rest (0: run every week "
                           "of `weeks`).")


@dataclass(frozen=True)
class Scenario:
    name: str = key("scenario", TEXT, "", "Scenario name; results go to results/<name>/.")
    description: str = key("", TEXT, "", "What the scenario is for.")
    start_date: str = key("", TEXT, "ISO date", "Calendar date of week 1, for the report's axis.")
    steps: int = key(104, integer(1, MAX_STEPS), "weeks", "Weeks to simulate.")
    replicates: int = key(10, integer(1, MAX_REPLICATES), "runs", "Independent replicates.")
    seed: int = key(0, integer(0, MAX_SEED), "", "Root seed; replicates get streams spawned from it.")
    engine: str = key("array", Check(str, choices=("array", "agent")), "",
                      "Which engine simulates the users: array (fast) or agent (one object each).")
    grid: GridSpec = field(default_factory=GridSpec)
    users: UserSpec = field(default_factory=UserSpec)
    platforms: tuple[PlatformSpec, ...] = ()
    regulator: RegulatorSpec = field(default_factory=RegulatorSpec)
    burn_in: BurnInSpec = field(default_factory=BurnInSpec)
    source: str = field(default="<scenario>", compare=False)

    # Derived views the model uses everywhere.
    @property
    def messaging(self) -> tuple[PlatformSpec, ...]:
        return tuple(p for p in self.platforms if p.messaging)

    @property
    def content(self) -> tuple[PlatformSpec, ...]:
        return tuple(p for p in self.platforms if p.content)

    @property
    def owners(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.owner for p in self.platforms))

    def to_dict(self) -> dict:
        """The resolved parameters as plain data (for manifests and TOML)."""
        data = dataclasses.asdict(self)
        data.pop("source")
        return _plain(data)


def _plain(value):
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


SECTIONS = {"grid": GridSpec, "users": UserSpec, "regulator": RegulatorSpec,
            "burn_in": BurnInSpec}


# --- Loading --------------------------------------------------------------------------

def load(path: str | Path, overrides: list[str] = ()) -> Scenario:
    """Read, override and validate a scenario file."""
    source = str(path)
    data = read_table(Path(path), source)
    data.setdefault("name", Path(path).stem)
    for assignment in overrides:
        if "=" not in assignment:
            raise ScenarioError(source, assignment, "--set takes KEY=VALUE, e.g. regulator.fine=0.04")
        dotted, text = assignment.split("=", 1)
        apply_override(data, dotted.strip(), parse_value(text.strip()), source)
    return from_dict(data, source)


def read_table(path: Path, source: str, depth: int = 0) -> dict:
    """A scenario file's data, with its `base` file merged under it and its
    `overrides` (dotted keys, as with --set) applied."""
    if not path.is_file():
        raise ScenarioError(source, "", f"no such scenario file: {path}")
    data = read_toml(path)
    base = data.pop("base", None)
    overrides = data.pop("overrides", {})
    if base is not None:
        if not isinstance(base, str) or depth >= 5:
            raise ScenarioError(str(path), "base", "must name another scenario file "
                                "(at most 5 levels deep)")
        merged = read_table(path.parent / base, str(path), depth + 1)
        for name, value in data.items():
            if name in SECTIONS and isinstance(value, dict) and isinstance(merged.get(name), dict):
                merged[name] = {**merged[name], **value}
            else:
                merged[name] = value
        data = merged
    if not isinstance(overrides, dict):
        raise ScenarioError(str(path), "overrides", 'must be a table of "dotted.key" = value')
    for dotted, value in overrides.items():
        apply_override(data, dotted, value, str(path))
    return data


def read_toml(path: Path) -> dict:
    """A TOML file's data (scenario, sweep or paper spec), or one line saying why not.
    A leading byte-order mark, which some Windows editors write, is skipped."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as err:
        raise ScenarioError(str(path), "", f"malformed TOML: {err}") from None
    except UnicodeDecodeError:
        raise ScenarioError(str(path), "", "not a UTF-8 text file") from None
    except RecursionError:     # tomllib recurses once per level of nested arrays or tables
        raise ScenarioError(str(path), "", "malformed TOML: nested too deeply") from None
    except OSError as err:
        raise ScenarioError(str(path), "", f"cannot read it: {err.strerror}") from None


def parse_value(text: str) -> Any:
    """A `--set` value: TOML syntax (0.04, true, [1, 2], "x"), else a bare string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def apply_override(data: dict, dotted: str, value: Any, source: str) -> None:
    """Set one dotted key in raw scenario data; platforms are addressed by name, or all
    at once by `*` (platforms.*.<key>)."""
    parts = dotted.split(".")
    if parts[0] == "platforms":
        if len(parts) != 3:
            raise ScenarioError(source, dotted, "platform keys read platforms.<name>.<key> "
                                "or platforms.*.<key>")
        if parts[1] == "*":
            for platform in data.get("platforms", []):
                if isinstance(platform, dict):
                    platform[parts[2]] = value
            return
        names = [p.get("name") for p in data.get("platforms", []) if isinstance(p, dict)]
        if parts[1] not in names:
            raise ScenarioError(source, dotted, f"unknown platform {parts[1]!r}; platforms are "
                                + ", ".join(map(str, names)))
        data["platforms"][names.index(parts[1])][parts[2]] = value
        return
    if parts[:2] == ["users", "cohorts"] and len(parts) > 2:
        apply_cohort_override(data, parts, value, source, dotted)
        return
    target = data
    for part in parts[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ScenarioError(source, dotted, f"{part!r} is not a section")
    target[parts[-1]] = value


def apply_cohort_override(data: dict, parts: list[str], value: Any, source: str,
                          dotted: str) -> None:
    """users.cohorts.<name>.<key>, or users.cohorts.<name>.taste.<platform>."""
    if len(parts) not in (4, 5) or (len(parts) == 5 and parts[3] not in ("taste",
                                                                         "initial_share")):
        raise ScenarioError(source, dotted, "cohort keys read users.cohorts.<name>.<key> or "
                            "users.cohorts.<name>.taste.<platform>")
    cohorts = data.get("users", {}).get("cohorts", [])
    names = [c.get("name") for c in cohorts if isinstance(c, dict)]
    if parts[2] not in names:
        raise ScenarioError(source, dotted, f"unknown cohort {parts[2]!r}; cohorts are "
                            + (", ".join(map(str, names)) or "none"))
    target = cohorts[names.index(parts[2])]
    if len(parts) == 5:
        target = target.setdefault(parts[3], {})
        if not isinstance(target, dict):
            raise ScenarioError(source, dotted, f"{parts[3]!r} is not a table")
    target[parts[-1]] = value


def check_table(raw: Any, checks: dict[str, Check], source: str, prefix: str) -> dict:
    """Validate a table (of a scenario, sweep or paper spec) against the checks of its
    keys: no unknown key, every value of its kind and in its range."""
    if not isinstance(raw, dict):
        raise ScenarioError(source, prefix.rstrip(".") or "(top level)", "must be a table")
    for name in raw:
        if name not in checks:
            hint = difflib.get_close_matches(name, checks, n=1)
            allowed = f"did you mean {hint[0]!r}?" if hint else "allowed: " + ", ".join(checks)
            raise ScenarioError(source, prefix + name, f"unknown key; {allowed}")
    values = {}
    for name, value in raw.items():
        try:
            values[name] = checks[name].validate(value)
        except ValueError as err:
            raise ScenarioError(source, prefix + name, str(err)) from None
    return values


def _build(cls, raw: Any, source: str, prefix: str):
    """Validate a table against a spec dataclass and build it."""
    fields = {f.name: f for f in dataclasses.fields(cls) if "check" in f.metadata}
    values = check_table(raw, {name: f.metadata["check"] for name, f in fields.items()},
                         source, prefix)
    for name, f in fields.items():        # defaults take the same normal form (lists as tuples)
        if name not in values:
            default = f.default_factory() if f.default is dataclasses.MISSING else f.default
            values[name] = f.metadata["check"].validate(default)
    return cls(**values)


def from_dict(data: dict, source: str = "<scenario>") -> Scenario:
    """Validate raw scenario data (as read from TOML) into a Scenario."""
    data = dict(data)
    nested = {}
    for section, spec in SECTIONS.items():
        nested[section] = _build(spec, data.pop(section, {}), source, section + ".")
    raw_platforms = data.pop("platforms", [])
    if not isinstance(raw_platforms, list) or not raw_platforms:
        raise ScenarioError(source, "platforms", "needs at least one [[platforms]] table")
    platforms = tuple(_build(PlatformSpec, p, source, f"platforms[{i}].")
                      for i, p in enumerate(raw_platforms))
    phases = tuple(_build(PhaseSpec, p, source, f"regulator.phases[{i}].")
                   for i, p in enumerate(nested["regulator"].phases))
    nested["regulator"] = dataclasses.replace(nested["regulator"], phases=phases)
    cohorts = tuple(_build(CohortSpec, c, source, f"users.cohorts[{i}].")
                    for i, c in enumerate(nested["users"].cohorts))
    nested["users"] = dataclasses.replace(nested["users"], cohorts=cohorts)
    top = _build(Scenario, data, source, "")
    scenario = dataclasses.replace(top, platforms=platforms, source=source, **nested)
    check_consistency(scenario)
    return scenario


MIN_EXPECTED_USERS = 10
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def check_name(source: str, key: str, name) -> str:
    """A name read from a file that names a folder or file: an identifier, so that it
    cannot reach outside the output folder (no separators, no '..', not empty)."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ScenarioError(source, key, "must be letters, digits, '_', '-' or '.', starting "
                            f"with a letter or digit (it names a folder or file), got {name!r}")
    return name


def check_consistency(s: Scenario) -> None:
    """Rules that tie keys together."""
    src = s.source
    check_name(src, "name", s.name)
    names = [p.name for p in s.platforms]
    for i, p in enumerate(s.platforms):
        where = f"platforms[{i}]"
        if not p.name:
            raise ScenarioError(src, f"{where}.name", "every platform needs a name")
        if not p.owner:
            raise ScenarioError(src, f"{where}.owner", f"platform {p.name!r} needs an owner")
        if names.count(p.name) > 1:
            raise ScenarioError(src, f"{where}.name", f"platform name {p.name!r} is used twice")
        if not (p.messaging or p.content):
            raise ScenarioError(src, f"{where}", f"{p.name!r} must be messaging, content or both")
        if p.interconnected and not p.messaging:
            raise ScenarioError(src, f"{where}.interconnected",
                                f"{p.name!r} is not a messaging platform")
        rivals = [c.name for c in s.content if c.owner != p.owner]
        for listed, names_ in (("blocks", p.blocks), ("warns", p.warns)):
            for name in names_:
                if not p.messaging:
                    raise ScenarioError(src, f"{where}.{listed}",
                                        f"{p.name!r} is not a messaging platform")
                if name not in rivals:
                    raise ScenarioError(src, f"{where}.{listed}", f"unknown rival content "
                                        f"platform {name!r}; allowed: " + ", ".join(rivals))
        if set(p.blocks) & set(p.warns):
            raise ScenarioError(src, f"{where}.warns", "a platform cannot be both blocked and "
                                "behind a warning page: " + ", ".join(set(p.blocks) & set(p.warns)))
    if not s.messaging:
        raise ScenarioError(src, "platforms", "at least one platform needs messaging = true")
    if not s.content:
        raise ScenarioError(src, "platforms", "at least one platform needs content = true")
    total = sum(p.initial_share for p in s.messaging)
    if abs(total - 1.0) > 1e-6:
        raise ScenarioError(src, "platforms.initial_share", "messaging platforms' initial shares "
                            f"must sum to 1, got {total:g}")
    if sum(p.content_weight for p in s.content) <= 0:
        raise ScenarioError(src, "platforms.content_weight", "content weights must not all be 0")
    if len(s.messaging) > 8:
        raise ScenarioError(src, "platforms", "at most 8 messaging platforms are supported")
    if s.users.max_platforms > len(s.messaging):
        raise ScenarioError(src, "users.max_platforms", "must be at most the number of messaging "
                            f"platforms ({len(s.messaging)})")
    check_surface_table(src, "users.surface_weights", s.users.surface_weights)
    if sum(s.users.surface_weights.values()) <= 0:
        raise ScenarioError(src, "users.surface_weights", "weights must not all be 0")
    check_surface_table(src, "users.surface_value", s.users.surface_value, complete=True)
    check_surface_table(src, "regulator.visibility", s.regulator.visibility, complete=True)
    for i, p in enumerate(s.platforms):
        where = f"platforms[{i}].stakes"
        for holder, stake in p.stakes.items():
            if holder not in s.owners or holder == p.owner:
                raise ScenarioError(src, f"{where}.{holder}", "must name another owner of a "
                                    "platform in the scenario: " + ", ".join(
                                        o for o in s.owners if o != p.owner))
            if isinstance(stake, bool) or not isinstance(stake, (int, float)) \
                    or not 0 <= stake <= 1:
                raise ScenarioError(src, f"{where}.{holder}", f"must be a fraction in [0, 1], "
                                    f"got {stake!r}")
        if sum(p.stakes.values()) > 1:
            raise ScenarioError(src, where, "stakes must sum to at most 1")
        if p.stakes and not p.content:
            raise ScenarioError(src, where, f"{p.name!r} is not a content platform")
    if s.start_date:
        try:
            datetime.date.fromisoformat(s.start_date)
        except ValueError:
            raise ScenarioError(src, "start_date", f"must be an ISO date like 2021-07-05, "
                                f"got {s.start_date!r}") from None
    r = s.regulator
    if r.deadline_step < r.announce_step:
        raise ScenarioError(src, "regulator.deadline_step", f"must be ≥ announce_step "
                            f"({r.announce_step}), got {r.deadline_step}")
    for i, phase in enumerate(r.phases):
        if phase.step < r.announce_step:
            raise ScenarioError(src, f"regulator.phases[{i}].step",
                                f"must be ≥ announce_step ({r.announce_step}), got {phase.step}")
        for surface in phase.surfaces:
            if surface not in SURFACES:
                raise ScenarioError(src, f"regulator.phases[{i}].surfaces",
                                    f"unknown surface {surface!r}; allowed: " + ", ".join(SURFACES))
    check_cohorts(s)
    expected_users = s.grid.width * s.grid.height * s.grid.density
    if expected_users < MIN_EXPECTED_USERS:
        # cells hold a user by chance: with 10 expected, a replicate draws none with
        # chance below 1e-4 (e^-10)
        raise ScenarioError(src, "grid.density", "every replicate needs at least one user: "
                            f"width x height x density must be at least {MIN_EXPECTED_USERS}, "
                            f"got {expected_users:.3g}")
    if s.grid.radius * 2 + 1 > min(s.grid.width, s.grid.height):
        raise ScenarioError(src, "grid.radius", "the neighbourhood (2 x radius + 1) must fit in "
                            f"the grid ({s.grid.width} x {s.grid.height})")
    check_extra_ties(s)


def check_extra_ties(s: Scenario) -> None:
    """Long-range ties need a grid to add to and other users to reach."""
    g = s.grid
    if not g.extra_ties:
        return
    if g.well_mixed:
        raise ScenarioError(s.source, "grid.extra_ties", "must be 0 when grid.well_mixed is "
                            "true: well mixed, every partner is drawn from everyone already")
    cells = g.width * g.height
    if g.extra_ties > (cells - 1) / 2:
        raise ScenarioError(s.source, "grid.extra_ties", f"must be at most half the other "
                            f"cells ({(cells - 1) / 2:g} on a {g.width} x {g.height} grid), "
                            f"got {g.extra_ties:g}")


def check_cohorts(s: Scenario) -> None:
    """Cohorts: unique names, shares that sum to 1, tastes and starting shares keyed by
    messaging platforms."""
    src, cohorts = s.source, s.users.cohorts
    messaging = [p.name for p in s.messaging]
    names = [c.name for c in cohorts]
    for i, cohort in enumerate(cohorts):
        where = f"users.cohorts[{i}]"
        if not cohort.name or names.count(cohort.name) > 1:
            raise ScenarioError(src, f"{where}.name", "every cohort needs a name of its own")
        for table, allowed, valid in (("taste", "a number in [-100, 100]", lambda v: abs(v) <= 100),
                                      ("initial_share", "a fraction in [0, 1]",
                                       lambda v: 0 <= v <= 1),
                                      ("initial_second", "a fraction in [0, 1]",
                                       lambda v: 0 <= v <= 1)):
            for platform, value in getattr(cohort, table).items():
                if platform not in messaging:
                    raise ScenarioError(src, f"{where}.{table}.{platform}", "unknown messaging "
                                        "platform; allowed: " + ", ".join(messaging))
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not math.isfinite(value) or not valid(value):
                    raise ScenarioError(src, f"{where}.{table}.{platform}",
                                        f"must be {allowed}, got {value!r}")
        if cohort.initial_share and abs(sum(cohort.initial_share.values()) - 1) > 1e-6:
            raise ScenarioError(src, f"{where}.initial_share", "must sum to 1, got "
                                f"{sum(cohort.initial_share.values()):g}")
        for first in messaging:
            beside = sum(v for p, v in cohort.initial_second.items() if p != first)
            if beside > 1 + 1e-9:
                raise ScenarioError(src, f"{where}.initial_second", "the chances of a second "
                                    f"platform beside {first} must sum to at most 1, got "
                                    f"{beside:g}")
    if cohorts and abs(sum(c.share for c in cohorts) - 1) > 1e-6:
        raise ScenarioError(src, "users.cohorts", "the cohorts' shares must sum to 1, got "
                            f"{sum(c.share for c in cohorts):g}")
    if cohorts and all(c.initial_share for c in cohorts):
        # every user then starts by their cohort's shares: the platforms' own would be
        # silently ignored, so they must agree
        for p in s.messaging:
            implied = sum(c.share * c.initial_share.get(p.name, 0.0) for c in cohorts)
            if abs(implied - p.initial_share) > 0.01:
                raise ScenarioError(src, f"platforms.{p.name}.initial_share", "must equal "
                                    f"the cohorts' starting shares weighted by their shares "
                                    f"({implied:.3g}) when every cohort gives its own, got "
                                    f"{p.initial_share:g}")


# The tables keyed by surface, and what one entry takes (also as a dotted key of its
# own, e.g. regulator.visibility.group, so a sweep can vary one surface's value)
SURFACE_TABLES = {"users.surface_weights": number(0.0, LARGE),
                  "users.surface_value": number(0.0, LARGE, low_open=True),
                  "regulator.visibility": probability()}


def check_surface_table(src: str, name: str, table: dict, complete: bool = False) -> None:
    """A table keyed by surface (one of SURFACE_TABLES): known surfaces, each value what
    an entry takes, and (if `complete`) every surface present."""
    for surface, value in table.items():
        if surface not in SURFACES:
            raise ScenarioError(src, f"{name}.{surface}",
                                "unknown surface; allowed: " + ", ".join(SURFACES))
        try:
            SURFACE_TABLES[name].validate(value)
        except ValueError as err:
            raise ScenarioError(src, f"{name}.{surface}", str(err)) from None
    missing = [surface for surface in SURFACES if surface not in table]
    if complete and missing:
        raise ScenarioError(src, name, "needs a value for every surface; missing: "
                            + ", ".join(missing))


def key_check(dotted: str) -> Check | None:
    """What a dotted key (as in --set) accepts, or None if there is no such key."""
    parts = dotted.split(".")
    if parts[:2] == ["users", "cohorts"] and len(parts) > 2:
        if len(parts) == 5 and parts[3] == "taste":
            return number(-100.0, 100.0)
        if len(parts) == 5 and parts[3] == "initial_share":
            return probability()
        cls, name = (CohortSpec, parts[3]) if len(parts) == 4 else (None, "")
        if cls is None:
            return None
    elif parts[0] == "platforms" and len(parts) == 3:
        cls, name = PlatformSpec, parts[2]
    elif len(parts) == 3 and ".".join(parts[:2]) in SURFACE_TABLES:
        return SURFACE_TABLES[".".join(parts[:2])] if parts[2] in SURFACES else None
    elif parts[0] in SECTIONS and len(parts) == 2:
        cls, name = SECTIONS[parts[0]], parts[1]
    elif len(parts) == 1:
        cls, name = Scenario, parts[0]
    else:
        return None
    fields = {f.name: f for f in dataclasses.fields(cls) if "check" in f.metadata}
    return fields[name].metadata["check"] if name in fields else None


def check_value(dotted: str, value: Any, source: str, table: str) -> Any:
    """A value for the dotted key (as given in a sweep's or paper's table of overrides),
    checked as the scenario checks it."""
    check = key_check(dotted)
    if check is None:
        raise ScenarioError(source, f"{table}.{dotted}", "not a scenario key (see "
                            "scenarios/README.md)")
    try:
        return check.validate(value)
    except ValueError as err:
        raise ScenarioError(source, f"{table}.{dotted}", str(err)) from None


def surface_weights(s: Scenario) -> tuple[float, ...]:
    """Surface weights in SURFACES order, normalised to sum to 1."""
    raw = [float(s.users.surface_weights.get(name, 0.0)) for name in SURFACES]
    return tuple(w / sum(raw) for w in raw)


def by_surface(table: dict) -> tuple[float, ...]:
    """A complete surface table (surface_value, visibility) in SURFACES order."""
    return tuple(float(table[name]) for name in SURFACES)


def schema_rows():
    """(key, default, unit, allowed, meaning) for every key, for the key reference."""
    def rows(cls, prefix):
        for f in dataclasses.fields(cls):
            if "check" not in f.metadata:
                continue
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            yield (prefix + f.name, default, f.metadata["unit"], f.metadata["check"].describe(),
                   f.metadata["doc"])
    yield from rows(Scenario, "")
    for section, spec in SECTIONS.items():
        yield from rows(spec, section + ".")
    yield from rows(CohortSpec, "users.cohorts[].")
    yield from rows(PhaseSpec, "regulator.phases[].")
    yield from rows(PlatformSpec, "platforms[].")
