"""The command line: `python run.py run|...`."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import signal
import sys
from pathlib import Path

from sim.experiments.interrupts import INTERRUPTED, remember_interrupt
from sim.outputs.compare import CompareError
from sim.outputs.discover import DiscoverError
from sim.outputs.folders import FolderError, OutputFolder, manifest_kind
from sim.outputs.files import git_state, now
from sim.outputs.verify import VerifyError
from sim.scenario import ScenarioError

RESULTS = Path("results")


class UsageError(Exception):
    """Bad command-line input that is not about a scenario key."""


class VerificationFailed(Exception):
    """verify found differences, or validate failed checks (exit status 1, not 2: the
    input was fine)."""


def output_folder(args, default: Path, kind: str, expected: tuple[str, ...] = ()) -> OutputFolder:
    """The command's output folder (--out, else `default`), checked before any work."""
    return OutputFolder(args.out or default, kind, args.overwrite, expected)


def cmd_run(args) -> None:
    from sim import api
    from sim.outputs.results import summarize_replicate
    from sim.experiments.runner import memory_estimate, run_scenario

    overrides = api.run_overrides(args.set, args.replicates, args.steps, args.seed, args.engine)
    scenario = api.load_scenario(args.scenario, overrides)
    refuse_if_too_large(memory_estimate(scenario), args.scenario, args.force,
                        "grid x replicates x steps")
    folder = output_folder(args, RESULTS / scenario.name, "run", api.RUN_FILES)
    started = now()
    runs = run_scenario(scenario, progress=not args.quiet)
    summaries = [summarize_replicate(scenario, run.replicate, run.rows) for run in runs]
    headline = api.write_run(folder, Path(args.scenario), overrides, scenario, runs, summaries,
                             started)
    print_headline(scenario, headline, folder.path)
    unsettled = sum(any(e["event"] == "burn_in" and "not at rest" in e["detail"]
                        for e in run.events) for run in runs)
    if unsettled:
        print(f"note: in {unsettled} of {len(runs)} replicate(s) the burn-in stopped at its "
              f"limit of {scenario.burn_in.weeks} weeks before the market was at rest "
              "(events.csv, event burn_in; ODD section 5)")


def refuse_if_too_large(need: float, source, force: bool, sizes: str) -> None:
    """Refuse, before anything runs, work the machine cannot hold (unless forced);
    `sizes` names what the estimate `need` (bytes) grows with."""
    from sim.experiments.runner import available_memory

    have = available_memory()
    if need > 0.8 * have and not force:
        raise ScenarioError(str(source), "grid", f"this needs about {need / 2**30:.1f} GiB "
                            f"({sizes}) and {have / 2**30:.1f} GiB are free; "
                            "make it smaller, or pass --force")


def print_headline(scenario, headline: list[dict], target: Path) -> None:
    shown = {"steps_to_open", "total_fines", "total_reblocks", "abandoned_rate",
             "final_links_blocked", "final_hhi", "final_multihoming_rate",
             "mean_consumer_surplus"} | {f"final_users_{p.name}" for p in scenario.messaging}
    print(f"{scenario.name}: {scenario.replicates} replicate(s) x {scenario.steps} weeks")
    print(f"{'metric':<28}{'mean':>12}  95% CI")
    for h in headline:
        if h["metric"] in shown:
            interval = f"[{h['ci_low']:.4g}, {h['ci_high']:.4g}]" if h["n"] else "never"
            print(f"{h['metric']:<28}{h['mean']:>12.4g}  {interval}  (n={h['n']})")
    print(f"results in {target}/ (report.html, timeseries.csv, summary.csv, manifest.json)")


def cmd_sweep(args) -> None:
    from sim.outputs import figures
    from sim.outputs import files as outputs
    from sim.experiments import sweep as sweeps
    from sim.experiments.runner import sweep_memory_estimate

    sweep = sweeps.load_sweep(args.sweep, args.set, args.replicates)
    check_scheduler(args.scheduler)
    refuse_if_too_large(sweep_memory_estimate(
        [sweeps.point_scenario(sweep, point) for point in sweep.points], sweep.replicates,
        args.workers or os.cpu_count() or 1), args.sweep, args.force,
        "grid x replicates x points")
    folder = output_folder(args, RESULTS / sweep.name, "sweep", SWEEP_FILES)
    workers = args.workers or os.cpu_count() or 1
    if workers < 1:
        raise UsageError("--workers: must be at least 1")
    identity = json.loads(json.dumps(sweeps.identity(sweep)))     # as a manifest holds it
    with folder.writing():
        start_sweep_folder(folder, identity, args.new)
    started = now()
    with folder.writing():
        status = sweeps.run_sweep(sweep, folder.path, workers, args.scheduler,
                                  progress=not args.quiet)
    with folder.staged() as staging:
        runs = sweeps.collect(sweep, folder.path, staging)
        if not runs:
            raise UsageError(f"{args.sweep}: every run failed; see "
                             f"{folder.path}/runs/*.error.json")
        summary = sweeps.summary_rows(sweep, runs)
        columns = ["point", "point_id", *sweep.parameters, "metric", "mean", "sd", "ci_low",
                   "ci_high", "n"]
        outputs.write_csv(staging / "summary.csv", columns, summary)
        sweeps.write_outcomes(staging, *sweeps.outcome_rows(sweep, runs))
        figures.write_figures(figures.sweep_figures(sweep, summary, runs), staging / "figures",
                              png=not args.no_png)
        figures.write_sensitivity(sweep, runs, staging / "figures")
        failed = sweeps.errors(sweep, folder.path)
        manifest = outputs.manifest(
            recipe=["sweep", outputs.portable(args.sweep), *[
                part for override in args.set for part in ("--set", override)]]
            + (["--replicates", str(args.replicates)] if args.replicates else [])
            + (["--no-png"] if args.no_png else []),
            inputs={"sweep": Path(args.sweep), "base": sweep.base},
            parameters={"design": sweep.design, "parameters": {k: list(v) for k, v in
                                                               sweep.parameters.items()},
                        "fixed": sweep.fixed, "points": list(sweep.points),
                        "replicates": sweep.replicates, "metrics": list(sweep.metrics)},
            seeds={"root": sweep.seed, "common_random_numbers": sweep.common_random_numbers,
                   "derivation": "SeedSequence(root, spawn_key=(replicate,))"
                   if sweep.common_random_numbers else
                   "SeedSequence(root, spawn_key=(int(point_id, 16), replicate))",
                   "point_ids": [sweeps.point_id(p) for p in sweep.points]},
            started=started, finished=now(), directory=staging,
            written_elsewhere=sweeps.stored_runs(folder.path))
        manifest["identity"] = identity
        manifest["backend"] = {"workers": workers, "scheduler": args.scheduler or "processes"}
        manifest["failed_runs"] = [{k: e[k] for k in ("index", "replicate", "error")}
                                   for e in failed]
        outputs.write_json(staging / "manifest.json", manifest)
    print(f"{sweep.name}: {len(sweep.points)} point(s) x {sweep.replicates} replicate(s); "
          f"ran {status['ran']} now, {len(failed)} failed in all")
    print(f"results in {folder.path}/ (outcomes.csv, runs.parquet, summary.csv, figures/, "
          "manifest.json)")


SWEEP_FILES = ("outcomes.csv", "outcomes.parquet", "runs.parquet", "summary.csv",
               "manifest.json")


def start_sweep_folder(folder: OutputFolder, identity: dict, new: bool) -> None:
    """Resume the sweep already in the folder only if it was made with the same
    settings (its identity); else start afresh, with --new, replacing only the
    project's files. A manifest marks the folder as this sweep's from the start, so an
    interrupted sweep is recognised and resumed."""
    from sim.experiments import sweep as sweeps

    if manifest_kind(folder.previous) == "sweep":
        recorded = folder.previous.get("identity")
        if recorded == identity:
            return
        if not new:
            changed = sorted(k for k in identity if (recorded or {}).get(k) != identity[k])
            raise UsageError(f"--out {folder.shown}: holds a sweep made with other settings "
                             f"({', '.join(changed)}); resuming would mix their runs: pass "
                             "--new to start it afresh, or choose another --out")
        sweeps.clear_runs(folder.path)
    folder.clear()
    folder.mark({"kind": "sweep", "identity": identity, "finished": None})


def check_scheduler(address: str | None) -> None:
    """--scheduler: nothing, `local`, or a Dask scheduler's tcp:// or tls:// address."""
    if address is not None and address != "local" and not re.fullmatch(
            r"(tcp|tls)://[^\s/:]+:\d{1,5}", address):
        raise UsageError(f"--scheduler: must be 'local' or a Dask scheduler's address such as "
                         f"tcp://HOST:8786, got {address!r}")


def cmd_compare(args) -> None:
    from sim.outputs import compare
    from sim.outputs import files as outputs

    rows = compare.compare_runs(args.a, args.b)
    folder = output_folder(args, RESULTS / "compare" / compare.folder_name(rows), "compare",
                           ("compare.csv", "compare.html", "plotly.min.js", "manifest.json"))
    started = now()
    with folder.staged() as staging:
        compare.write_comparison(staging, rows)
        sources = {}
        for role, name in (("baseline", args.a), ("other", args.b)):
            side, _ = compare.split_spec(name)      # read once already, by compare_runs
            found = side / "summary.csv" if (side / "summary.csv").is_file() else side / "manifest.json"
            if found.is_file():
                sources[role] = found
        outputs.write_json(staging / "manifest.json", outputs.manifest(
            recipe=["compare", args.a, args.b], inputs=sources, parameters={},
            seeds={}, started=started, finished=now(), directory=staging))
    first = rows[0]
    base, other = first["baseline"], first["other"]
    print(f"{other} against {base}: {first['test']} and {first['rank_test']} tests, "
          + ("paired by replicate" if first["paired"] else "independent samples"))
    print(f"{'metric':<28}{'mean ' + base[:14]:>20}{'mean ' + other[:14]:>20}{'difference':>12}"
          f"{first['effect_size_name']:>10}{'p':>10}{'p (Holm)':>10}")
    for r in rows:
        print(f"{r['metric']:<28}{r['mean_baseline']:>20.4g}{r['mean_other']:>20.4g}"
              f"{r['difference']:>12.4g}{r['effect_size']:>10.2f}{r['p_value']:>10.3g}"
              f"{r['p_value_holm']:>10.3g}")
    print(f"results in {folder.path}/ (compare.csv, compare.html)")


def cmd_discover(args) -> None:
    from sim.outputs import discover
    from sim.outputs import files as outputs

    if (args.below is None) == (args.above is None):
        raise UsageError("discover: give exactly one of --below X or --above X")
    if not 0 < args.threshold <= 1 or not 0 < args.mass_min < 1:
        raise UsageError("discover: --threshold must lie in (0, 1] and --mass-min in (0, 1)")
    result = discover.discover(Path(args.runs), args.metric, args.below, args.above,
                               args.threshold, args.mass_min, args.seed)
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{Path(args.runs).resolve().name}-{args.metric}")
    folder = output_folder(args, RESULTS / "discover" / name, "discover",
                           ("boxes.csv", "trajectory.csv", "tree.txt", "discover.html",
                            "plotly.min.js", "manifest.json"))
    started = now()
    with folder.staged() as staging:
        discover.write_discovery(staging, result)
        manifest_file = Path(args.runs) / "manifest.json"
        outputs.write_json(staging / "manifest.json", outputs.manifest(
            recipe=["discover", args.runs, "--metric", args.metric]
            + (["--below", str(args.below)] if args.below is not None else
               ["--above", str(args.above)]),
            inputs={"sweep": manifest_file} if manifest_file.is_file() else {},
            parameters={"threshold": args.threshold, "mass_min": args.mass_min},
            seeds={"cart": args.seed}, started=started, finished=now(), directory=staging))
    chosen = [r for r in result["boxes"] if r["method"] == "prim" and r["chosen"]]
    print(f"{result['condition']}: {result['meeting']} of {result['runs']} runs")
    if not result["threshold_reached"]:
        print(f"no box reaches density {args.threshold}; the densest along the peeling:")
    if chosen:
        print(f"PRIM box: coverage {chosen[0]['coverage']:.2f}, density "
              f"{chosen[0]['density']:.2f}, mass {chosen[0]['mass']:.2f}")
    for r in chosen:
        if r["restricted"]:
            print(f"  {r['parameter']:<36} [{r['low']:.4g}, {r['high']:.4g}]")
    print(f"results in {folder.path}/ (boxes.csv, trajectory.csv, tree.txt, discover.html)")


def cmd_reproduce(args) -> None:
    from sim.outputs import files as outputs
    from sim.experiments import paper

    spec_path = Path(args.spec)
    spec = paper.load_spec(spec_path)
    name = spec.get("name", spec_path.stem) + ("_quick" if args.quick else "")
    folder = output_folder(args, RESULTS / "papers" / name, "reproduce",
                           ("manifest.json", "experiments", "figures", "tables"))
    started = now()
    with folder.staged() as staging:
        paper.run_experiments(spec, spec_path, staging, args.quick, main)
        paper.make_outputs(spec, staging, png=not args.no_png)
        outputs.write_json(staging / "manifest.json", outputs.manifest(
            recipe=["reproduce", outputs.portable(spec_path)] + (["--quick"] if args.quick else [])
            + (["--no-png"] if args.no_png else []),
            inputs={"spec": spec_path}, parameters={"quick": args.quick, "spec": spec},
            seeds={"experiments": "each experiment's manifest.json"}, started=started,
            finished=now(), directory=staging))
    print(f"{name}: {len(spec.get('figures', []))} figure(s), {len(spec.get('tables', []))} "
          f"table(s) in {folder.path}/")
    for figure, claim in paper.claims(spec):
        print(f"  {figure}: {claim}")


def cmd_verify(args) -> None:
    from sim.outputs.verify import verify

    problems = verify(Path(args.directory))
    if problems:
        for problem in problems:
            print(f"DIFFERS {problem}")
        raise VerificationFailed(f"{args.directory}: {len(problems)} difference(s)")
    print(f"{args.directory}: every file reproduces byte for byte")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number ≥ 1, got {text!r}")
    return value


def power_of_two(text: str) -> int:
    value = positive_int(text)
    if value & (value - 1):
        raise argparse.ArgumentTypeError(f"must be a power of two (Sobol design), got {text!r}")
    return value


def cmd_validate(args) -> None:
    from sim.outputs import files as outputs
    from sim.experiments import validation
    from sim.scenario import load
    from sim.outputs.validation_report import write_validation_report

    case = load(args.scenario)
    unknown = [name for name in args.check if name not in validation.CHECKS]
    if unknown:
        raise UsageError(f"--check: unknown check {unknown[0]!r}; checks are "
                         + ", ".join(validation.CHECKS))
    effort_name = "quick" if args.quick else "full"
    effort = validation.QUICK if args.quick else validation.FULL
    folder = output_folder(args, RESULTS / "validation" / case.name, "validate",
                           ("validation.csv", "report.html", "plotly.min.js", "manifest.json"))
    started = now()
    with validation.in_parallel(args.workers):
        rows = validation.validate(case, effort, args.check or None, progress=not args.quiet)
    if not rows:
        raise UsageError(f"{args.scenario}: the selected checks do not apply to this scenario "
                         "(the record check needs WeChat, QQ and regulator.policy = \"order\")")
    with folder.staged() as staging:
        outputs.write_csv(staging / "validation.csv", list(rows[0]), rows)
        write_validation_report(staging / "report.html", rows, case.name, effort_name)
        recipe = ["validate", "--scenario", outputs.portable(args.scenario)] + (
            ["--quick"] if args.quick else []) + [
            part for name in args.check for part in ("--check", name)]
        outputs.write_json(staging / "manifest.json", outputs.manifest(
            recipe=recipe, inputs={"scenario": Path(args.scenario)},
            parameters={"case": case.to_dict(), "effort": vars(effort)},
            seeds={"root": case.seed, "derivation": "SeedSequence(seed, spawn_key=(replicate,)) "
                   "of each experiment's scenario; replicate r is paired across scenarios"},
            started=started, finished=now(), directory=staging))
    failed = [r for r in rows if not r["passed"] or r["without_mechanism"]]
    for r in rows:
        mark = "pass" if r["passed"] else "FAIL"
        off = {None: "", True: "  (passes without its mechanism!)", False: ""}[
            r["without_mechanism"]]
        if r["passed"] and r["row_without_mechanism"] and not r["without_mechanism"]:
            off = "  (this row passes without the mechanism too)"
        print(f"{mark:<5} {r['check']:<26} {r['measure'][:60]:<60} {r['value']:>10.4g}{off}")
    print(f"{len(rows) - len(failed)} of {len(rows)} checks pass, and fail without their "
          f"mechanism; report in {folder.path}/report.html")
    if failed:
        raise VerificationFailed(f"{len(failed)} check(s) failed")


def cmd_calibrate(args) -> None:
    import os.path

    from sim.experiments import calibration
    from sim.outputs import files as outputs
    from sim.experiments import validation
    from sim.scenario import load
    from sim.outputs.validation_report import write_calibration_report

    case = load(args.scenario)
    budget = calibration.QUICK_BUDGET if args.quick else calibration.Budget()
    budget = dataclasses.replace(budget, **{
        name: value for name, value in (("replicates", args.replicates),
                                        ("design_points", args.design_points),
                                        ("polish_evaluations", args.polish),
                                        ("profile_rounds", args.profile_rounds))
        if value is not None})
    refuse_if_too_large(calibration.memory_estimate(case, budget, args.workers), args.scenario,
                        args.force, "grid x replicates per evaluation x workers")
    fitted_name = f"{case.name}_fitted"
    folder = output_folder(args, RESULTS / "calibration" / case.name, "calibrate",
                           ("fit.csv", "moments.csv", "identification.csv", "profiles.csv",
                            "report.html", "plotly.min.js", f"{fitted_name}.toml",
                            "manifest.json"))
    target = folder.path
    started = now()
    with validation.in_parallel(args.workers):
        result = calibration.calibrate(case, budget, progress=not args.quiet)
    base = os.path.relpath(Path(args.scenario).resolve(), target.resolve())
    identification = result["identification"]
    lines = [f"# {case.name} with the parameters fitted by `python run.py calibrate`",
             f"# (method of simulated moments on {len(result['moments'])} moments of "
             "scenarios/data/record_2021.csv;",
             f"# objective {result['objective']:.4g}; Jacobian rank {identification['rank']} of "
             f"{identification['parameters_count']}, condition number "
             f"{identification['condition_number']:.3g}; Hansen's J "
             f"{identification['overidentification']['J']:.4g} on "
             f"{identification['overidentification']['degrees_of_freedom']} degrees of "
             f"freedom, p = {identification['overidentification']['p_value']:.3g}).",
             f'base = "{base}"', f'name = "{fitted_name}"',
             f'description = "{case.name}, calibrated to the record by simulated moments."',
             "", "[overrides]"]
    for p in result["fit"]:
        if p["identified"]:
            for key, value in result["settings"][p["parameter"]]:
                note = (f"fitted, s.e. {p['std_error']:.3g}" if key in result["keys"][
                    p["parameter"]] else f"follows {p['parameter']}")
                lines.append(f'"{key}" = {value!r}   # {note}')
        elif p["at_bound"]:
            lines.append(f"# {p['parameter']}: at the end of its range ({p['estimate']:.3g} in "
                         f"{p['low']:g}-{p['high']:g}): the moments ask for it or beyond, so "
                         "no standard error applies; held at the scenario's assumption: sweep it")
        else:
            lines.append(f"# {p['parameter']}: not pinned down by the moments (s.e. "
                         f"{p['std_error']:.3g}); held at the scenario's assumption: sweep it")
    with folder.staged() as staging:
        outputs.write_csv(staging / "fit.csv", list(result["fit"][0]), result["fit"])
        outputs.write_csv(staging / "moments.csv", list(result["moments"][0]), result["moments"])
        outputs.write_csv(staging / "identification.csv",
                          list(identification["parameters"][0]), identification["parameters"])
        outputs.write_csv(staging / "profiles.csv", list(result["profiles"][0]),
                          result["profiles"])
        (staging / f"{fitted_name}.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        write_calibration_report(staging / "report.html", result, case.name,
                                 str(target / f"{fitted_name}.toml"))
        outputs.write_json(staging / "manifest.json", outputs.manifest(
            recipe=["calibrate", "--scenario", outputs.portable(args.scenario)]
            + (["--quick"] if args.quick else []),
            inputs={"scenario": Path(args.scenario)},
            parameters={"case": case.to_dict(), "budget": vars(budget),
                        "jacobian": result["jacobian"]},
            seeds={"root": case.seed, "derivation": "the case's replicate streams at every "
                   "evaluation (common random numbers); the Sobol design scrambled by seed"},
            started=started, finished=now(), directory=staging))
    for p in result["fit"]:
        held = ("" if p["identified"] else "  at the end of its range: held at the assumption"
                if p["at_bound"] else "  not identified: held at the assumption")
        print(f"{p['parameter']:<22}{p['estimate']:>10.4g}  (s.e. {p['std_error']:.3g}){held}")
    for m in result["moments"]:
        print(f"{m['moment']:<22}record {m['target']:>8.4g}  model {m['simulated']:>8.4g}"
              f"  on fresh streams {m['simulated_fresh']:>8.4g}")
    test, fresh = identification["overidentification"], result["fresh"]
    print(f"Hansen's J = {test['J']:.4g} on {test['degrees_of_freedom']} degrees of freedom "
          f"(p = {test['p_value']:.3g}); on fresh streams {fresh['J']:.4g} "
          f"(p = {fresh['p_value']:.3g})")
    print(f"fitted scenario: {target / (fitted_name + '.toml')}")


def cmd_bench(args) -> None:
    from sim.experiments import bench
    from sim.outputs import figures
    from sim.outputs import files as outputs

    folder = output_folder(args, RESULTS / "bench", "bench",
                           ("bench.json", "bench.html", "plotly.min.js", "manifest.json"))
    started = now()
    rows, summary = bench.run(quick=args.quick, progress=not args.quiet)
    with folder.staged() as staging:
        outputs.write_json(staging / "bench.json", {"quick": args.quick, "cores": os.cpu_count(),
                                                    "measurements": rows, **summary})
        figures.write_figures({"bench": bench.figure(rows)}, staging, png=False)
        outputs.write_json(staging / "manifest.json", outputs.manifest(
            recipe=["bench"] + (["--quick"] if args.quick else []),
            inputs={"scenario": bench.SCENARIO}, parameters={"quick": args.quick},
            seeds={"model": 1}, started=started, finished=now(), directory=staging))
    print(f"{'engine':<7}{'users':>11}{'s/step':>10}{'user-steps/s':>15}{'peak MiB':>10}"
          f"{'B/user':>8}")
    for r in rows:
        print(f"{r['engine']:<7}{r['users']:>11,}{r['seconds_per_step']:>10.4f}"
              f"{r['user_steps_per_second']:>15,.0f}{r['peak_rss_mib']:>10.0f}"
              f"{r['bytes_per_user']:>8.1f}")
    ratios = ", ".join(f"{side}x{side}: {ratio:.0f}x"
                       for side, ratio in summary["speed_ratio_array_over_agent"].items())
    print(f"array / agent speed: {ratios}")
    print("cost growth (seconds per step ~ users^b): " + ", ".join(
        f"{engine} b={b:.2f}" for engine, b in summary["growth_exponent"].items() if b is not None))
    for r in summary["sweeps"]:
        print(f"sweep of {r['runs']} runs, {r['workers']} worker(s), {r['backend']}: "
              f"{r['runs_per_minute']:.1f} runs/minute")
    for line in bench.target_lines(summary):
        print(line)
    if "skipped" in summary["page"]:
        print(f"student page not timed in a browser: {summary['page']['skipped']}")
    else:
        print(f"student page: the first tab, opened as soon as the server answered, drew in "
              f"{summary['page']['first_tab_seconds']:.1f} s")
    print(f"results in {folder.path}/ (bench.json, bench.html, manifest.json)")


# A tab gone this long (closed, or its connection lost) has its model freed; Solara's
# default keeps it a day, so a class's abandoned tabs would fill the memory.
SESSION_TIMEOUT = "2m"
OFFLINE_SOLARA = {"SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
                  "SOLARA_ASSETS_CDN": "http://127.0.0.1:9/no-cdn/"}


def cmd_serve(args) -> None:
    import socket
    import subprocess

    if not 0 < args.port < 65536:
        raise UsageError(f"--port: must be from 1 to 65535, got {args.port}")
    try:          # Solara would only log a failure to bind, and exit 0
        socket.create_server((args.host, args.port)).close()
    except OSError as err:
        raise UsageError(f"--host/--port: cannot listen on {args.host}:{args.port}: "
                         f"{err.strerror or err}") from None
    app = Path(__file__).resolve().parent / "server" / "app.py"
    print(f"serving on http://{args.host}:{args.port} (Ctrl-C to stop)")
    from sim.experiments.workers import die_with_parent

    # Nothing leaves the machine: no version check against the package index, no telemetry,
    # and an asset missing from solara-assets fails rather than being fetched from a CDN.
    # The server dies with this command, even when it is killed (SIGTERM, SIGKILL).
    status = subprocess.run([sys.executable, "-m", "solara", "run", str(app), "--host", args.host,
                             "--port", str(args.port), "--production", "--no-open",
                             "--no-check-version"],
                            env={**OFFLINE_SOLARA, **os.environ,
                                 "SOLARA_KERNEL_CULL_TIMEOUT": SESSION_TIMEOUT},
                            preexec_fn=lambda parent=os.getpid(): die_with_parent(parent),
                            check=False).returncode
    if status != 0:
        raise UsageError(f"serve: the server stopped with status {status}")


def cmd_keys(args) -> None:
    from sim.model import metrics
    from sim.outputs import results
    from sim.scenario import schema_rows

    tracked = ", ".join(f"`{c}`" for c in results.TRACKED[:1] + ("users_<platform>",)
                        + results.TRACKED[1:])
    print(keys_markdown(schema_rows()))
    print("\n## Output columns (timeseries.csv, a sweep's runs.parquet)\n")
    print(meanings_markdown("column", metrics.MEANINGS))
    print("\n## Summary metrics (summary.csv, a sweep's outcomes.csv and `metrics`)\n")
    print(meanings_markdown("metric", results.MEANINGS))
    print(f"\n<column> is one of {tracked}.")


def meanings_markdown(what: str, meanings: dict[str, str]) -> str:
    lines = [f"| {what} | meaning |", "|---|---|"]
    lines += [f"| `{name}` | {meaning} |" for name, meaning in meanings.items()]
    return "\n".join(lines)


def keys_markdown(rows) -> str:
    """The key reference table of scenarios/README.md."""
    lines = ["| key | default | unit | allowed | meaning |", "|---|---|---|---|---|"]
    for key, default, unit, allowed, doc in rows:
        shown = repr(default).replace("'", '"') if default != "" else '""'
        lines.append(f"| `{key}` | `{shown}` | {unit} | {allowed} | {doc} |")
    return "\n".join(lines)


def add_output_options(command: argparse.ArgumentParser, default: str) -> None:
    command.add_argument("--out", help=f"output directory (default {default})")
    command.add_argument("--overwrite", action="store_true",
                         help="write into an existing folder that is not this command's result "
                              "(only files this project wrote are replaced, never others)")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="run.py", description="The walled-garden simulator.")
    commands = top.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run a scenario's replicates and write its results")
    run.add_argument("scenario", help="scenario TOML file, e.g. scenarios/china_2021.toml")
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="override a key, e.g. regulator.fine=0.04 or platforms.QQ.strategy=static")
    run.add_argument("--replicates", type=int)
    run.add_argument("--steps", type=int)
    run.add_argument("--seed", type=int)
    run.add_argument("--engine")
    add_output_options(run, "results/<scenario name>/")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--force", action="store_true", help="run even if it looks too large")
    run.set_defaults(handler=cmd_run)

    sweep = commands.add_parser("sweep", help="run a sweep of scenarios (resumable)")
    sweep.add_argument("sweep", help="sweep TOML file, e.g. scenarios/sweeps/fine_deadline.toml")
    sweep.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    sweep.add_argument("--scheduler", metavar="ADDRESS|local",
                       help="run on Dask: 'local' starts a LocalCluster, tcp://HOST:PORT joins one")
    add_output_options(sweep, "results/<sweep name>/")
    sweep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="a fixed override for every point, as in the sweep's [set] table")
    sweep.add_argument("--replicates", type=int, help="replicates per point (overrides the file)")
    sweep.add_argument("--new", action="store_true",
                       help="start afresh when --out holds this sweep made with other settings")
    sweep.add_argument("--no-png", action="store_true", help="figures as HTML only")
    sweep.add_argument("--force", action="store_true", help="run even if it looks too large")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(handler=cmd_sweep)

    compare = commands.add_parser(
        "compare", help="test the differences between two runs' (or sweep points') outcomes")
    compare.add_argument("a", help="the baseline: a run's folder, or SWEEP_FOLDER@POINT")
    compare.add_argument("b", help="the other: a run's folder, or SWEEP_FOLDER@POINT")
    add_output_options(compare, "results/compare/<baseline>-vs-<other>/")
    compare.set_defaults(handler=cmd_compare)

    discover = commands.add_parser(
        "discover", help="find the parameter boxes where an outcome happens (PRIM, CART)")
    discover.add_argument("runs", help="a sweep's folder")
    discover.add_argument("--metric", required=True, help="a summary metric, e.g. steps_to_open")
    discover.add_argument("--below", type=float, help="the outcome: the metric below this")
    discover.add_argument("--above", type=float, help="the outcome: the metric above this")
    discover.add_argument("--threshold", type=float, default=0.8,
                          help="PRIM stops peeling at this density (default 0.8)")
    discover.add_argument("--mass-min", type=float, default=0.05,
                          help="the smallest share of runs in a box or leaf (default 0.05)")
    discover.add_argument("--seed", type=int, default=0, help="the CART tree's seed")
    add_output_options(discover, "results/discover/<sweep>-<metric>/")
    discover.set_defaults(handler=cmd_discover)

    reproduce = commands.add_parser("reproduce", help="regenerate a paper's figures and tables")
    reproduce.add_argument("spec", help="paper spec, e.g. scenarios/papers/walled_gardens.toml")
    reproduce.add_argument("--quick", action="store_true",
                           help="the same figures from smaller, faster experiments")
    add_output_options(reproduce, "results/papers/<name>/")
    reproduce.add_argument("--no-png", action="store_true", help="figures as HTML only")
    reproduce.add_argument("--quiet", action="store_true", help="no progress bars")
    reproduce.set_defaults(handler=cmd_reproduce)

    verify = commands.add_parser("verify", help="re-run what a manifest describes and compare")
    verify.add_argument("directory", help="a run, sweep or paper output directory")
    verify.set_defaults(handler=cmd_verify)

    bench = commands.add_parser("bench", help="measure both engines' speed and memory")
    bench.add_argument("--quick", action="store_true", help="a smaller plan, under a minute")
    add_output_options(bench, "results/bench/")
    bench.add_argument("--quiet", action="store_true", help="no progress bar")
    bench.set_defaults(handler=cmd_bench)

    serve = commands.add_parser("serve", help="the interactive page for students (Mesa/Solara)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: localhost only)")
    serve.add_argument("--port", type=int, default=8765)
    serve.set_defaults(handler=cmd_serve)

    validate = commands.add_parser(
        "validate", help="check the model against theory and the record; write a report")
    validate.add_argument("--scenario", default="scenarios/china_2021.toml",
                          help="the case to validate (default scenarios/china_2021.toml)")
    validate.add_argument("--quick", action="store_true",
                          help="fewer replicates and a smaller grid (a few minutes)")
    validate.add_argument("--check", action="append", default=[], metavar="NAME",
                          help="run only this check (repeatable)")
    add_output_options(validate, "results/validation/<name>/")
    validate.add_argument("--quiet", action="store_true", help="no progress bar")
    validate.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                          help="processes running replicates (default: one per core)")
    validate.set_defaults(handler=cmd_validate)

    calibrate = commands.add_parser(
        "calibrate", help="fit the unpinned parameters to the record (simulated moments)")
    calibrate.add_argument("--scenario", default="scenarios/china_2021.toml",
                           help="the case to calibrate (default scenarios/china_2021.toml)")
    calibrate.add_argument("--quick", action="store_true", help="a small search, for testing")
    add_output_options(calibrate, "results/calibration/<name>/")
    calibrate.add_argument("--quiet", action="store_true", help="no progress bar")
    calibrate.add_argument("--replicates", type=positive_int,
                           help="replicates per evaluation (default 8)")
    calibrate.add_argument("--design-points", type=power_of_two,
                           help="Sobol design points, a power of two (default 32)")
    calibrate.add_argument("--polish", type=positive_int,
                           help="Nelder-Mead evaluations after the design (default 40)")
    calibrate.add_argument("--profile-rounds", type=int, choices=range(0, 6), metavar="0-5",
                           help="moves to a better point a profile finds (default 3)")
    calibrate.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                           help="processes running replicates (default: one per core)")
    calibrate.add_argument("--force", action="store_true", help="run even if it looks too large")
    calibrate.set_defaults(handler=cmd_calibrate)

    keys = commands.add_parser(
        "keys", help="print the scenario keys and output metrics with their meanings (Markdown)")
    keys.set_defaults(handler=cmd_keys)
    return top


def main(argv: list[str] | None = None) -> int:
    previous_handler = signal.signal(signal.SIGINT, remember_interrupt)
    previous_hook, sys.unraisablehook = sys.unraisablehook, quiet_about_interrupts
    try:
        return run_command(argv)
    finally:
        signal.signal(signal.SIGINT, previous_handler)
        sys.unraisablehook = previous_hook
        INTERRUPTED.clear()


def quiet_about_interrupts(unraisable) -> None:
    """A Ctrl-C swallowed by a C callback is handled through INTERRUPTED: the one line
    `interrupted` says it, not a traceback of the callback."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)


def run_command(argv: list[str] | None) -> int:
    git_state()                # the code as the command starts, for its manifest
    try:
        args = parser().parse_args(argv)
        args.handler(args)
    except (ScenarioError, UsageError, CompareError, DiscoverError, VerifyError,
            FolderError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except VerificationFailed as err:
        print(f"{args.command}: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return interrupted()
    except BrokenPipeError:
        # the reader has gone (`keys | head`): what it wanted, it got; point stdout at
        # nothing so that the exit's flush does not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SystemError as err:
        # Ctrl-C while a numba kernel runs is raised when the kernel returns, wrapped
        # in SystemErrors (one per frame it passed through) whose first cause is the
        # KeyboardInterrupt
        if not caused_by_interrupt(err):
            raise
        return interrupted()
    return 0


def caused_by_interrupt(err: BaseException) -> bool:
    while err is not None:
        if isinstance(err, KeyboardInterrupt):
            return True
        err = err.__cause__ or err.__context__
    return False


def interrupted() -> int:
    print("interrupted: no result folder was completed (a sweep keeps its finished runs)",
          file=sys.stderr)
    return 130
