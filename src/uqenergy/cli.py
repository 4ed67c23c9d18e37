"""The ``uqenergy`` command: a thin layer over the Python API."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from uqenergy._version import __version__
from uqenergy.config.errors import InputError

DEFAULT_STUDY = "paper_traditional"
DEFAULT_ROOT = "uqenergy-out"  # each command and study gets its own folder under it: run-paper_traditional, ...
EXTRAS = {"dask": "dask", "distributed": "dask"}  # optional imports -> the extra that installs them


def default_out(command: str, study: str) -> Path:
    """The folder a command writes when no ``--out`` is given: ``uqenergy-out/<command>-<study>``."""
    return Path(DEFAULT_ROOT) / f"{command}-{Path(study).stem}"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit code 2, no usage dump
        self.exit(2, f"uqenergy: error: {message} (see uqenergy --help)\n")


def _run(args) -> None:
    from uqenergy.analyses.inference import inference_groups
    from uqenergy.analyses.run import run_study, with_scheduler
    from uqenergy.config.closed_models import is_closed_model_study
    from uqenergy.config.study import load_study
    from uqenergy.outputs.files import write_atomically, write_inference, write_json, write_netcdf
    from uqenergy.outputs.progress import draw_progress
    from uqenergy.outputs.report import write_report

    if is_closed_model_study(args.study):
        for option, given in (("--set", args.set), ("--scheduler", args.scheduler)):
            if given:
                raise InputError(
                    args.study, option, "is not used by a closed-model study", "edit the study or its prior files"
                )
        _run_closed_models(args)
        return
    study = with_scheduler(
        load_study(args.study, draws=args.draws, seed=args.seed, overrides=_overrides(args.set)), args.scheduler
    )
    outer = study.intervals.outer_draws if study.intervals.two_level else 1  # two-level: draws are inner draws
    with draw_progress(study.draws * len(study.models) * outer, quiet=args.quiet) as progress:
        result = run_study(study, progress=progress)
    _warn(result.warnings, args)

    def fill(folder: Path) -> None:
        write_json(folder / "summary.json", result.records)
        write_netcdf(folder / "samples.nc", result.samples)
        groups = inference_groups(result.samples)  # its draws are read from samples.nc, not copied
        write_inference(folder / "inference.nc", groups, folder / "samples.nc", result.samples)
        write_report(folder)

    out = write_atomically(args.out, fill, force=args.force)
    if not args.quiet:
        _print_headline(result.records)
        print(
            f"wrote {out}/summary.json, samples.nc, inference.nc (ArviZ), report.md, report.html and figures/",
            file=sys.stderr,
        )


def _run_closed_models(args) -> None:
    """``uqenergy run`` on a closed-model study: energy per query of models known only by their size."""
    from uqenergy.analyses.closed_models import run_closed_models
    from uqenergy.outputs.files import write_atomically, write_json, write_netcdf
    from uqenergy.outputs.report import write_report

    result = run_closed_models(args.study, draws=args.draws, seed=args.seed)
    _warn(result.warnings, args)

    def fill(folder: Path) -> None:
        write_json(folder / "summary.json", result.records)
        write_netcdf(folder / "samples.nc", result.samples)
        write_report(folder)

    out = write_atomically(args.out, fill, force=args.force)
    if not args.quiet:
        for r in result.records:
            print(
                f"{r['series']:<22} {r['quantity']:<17} ({r['boundary']}) median {r['median']:.3g} Wh "
                f"(90% {r['p5']:.3g}-{r['p95']:.3g}), mean {r['mean']:.3g} Wh"
            )
        print(f"wrote {out}/summary.json, samples.nc, report.md, report.html and figures/", file=sys.stderr)


def _fit(args) -> None:
    from uqenergy.analyses.predictive import GOAL_LEVELS, fit_measured
    from uqenergy.config.errors import positive_int, require_seed
    from uqenergy.config.files import resolve
    from uqenergy.config.measured import read_measured
    from uqenergy.outputs.files import write_atomically, write_json
    from uqenergy.outputs.report import write_report

    draws, seed = positive_int(args.draws, None, "--draws"), require_seed(args.seed, None, "--seed")
    table = read_measured(resolve(args.data, "priors", suffix=".csv"))
    result = fit_measured(table, seed=seed, draws=draws)

    def fill(folder: Path) -> None:
        for form, idata in result.idatas.items():
            idata.to_netcdf(str(folder / f"posterior-{form}.nc"), engine="h5netcdf")
        write_json(folder / "coverage.json", result.records)
        write_json(folder / "loo.json", result.loo)
        write_json(folder / "coefficients.json", result.coefficients)
        write_json(folder / "held_out.json", result.held_out)
        write_json(folder / "fit.json", [result.attrs])
        write_report(folder)

    out = write_atomically(args.out, fill, force=args.force)
    if not args.quiet:
        for r in result.records:
            if r["gpu"] == "all" and r["nominal"] in GOAL_LEVELS:
                print(
                    f"{r['form']:<16} {r['level']:>4} interval: {100 * r['observed']:.0f}% of {r['n_points']} "
                    f"held-out configurations inside ({r['n_models']} models held out one at a time)"
                )
        for r in result.loo:
            print(
                f"{r['form']:<16} PSIS-LOO elpd {r['elpd_loo']:.1f} ± {r['se']:.1f}, rank {r['rank']}, "
                f"Pareto k > 0.7: {r['k_bad'] + r['k_very_bad']} of {r['n_points']}"
            )
        print(
            f"wrote {out}/coverage.json, loo.json, coefficients.json, held_out.json, posterior-*.nc, report.md "
            "and figures/",
            file=sys.stderr,
        )


def _overrides(assignments: list[str] | None) -> dict[str, dict]:
    """``--set NAME.KEY=VALUE`` options as prior overrides ``{NAME: {KEY: VALUE}}`` (VALUE read as TOML)."""
    import tomllib

    overrides: dict[str, dict] = {}
    for text in assignments or []:
        target, equals, value = text.partition("=")
        name, dot, key = target.strip().partition(".")
        if not (equals and dot and name and key and value.strip()):
            raise InputError(None, "--set", f"{text!r} is not NAME.KEY=VALUE", "e.g. --set pue.p95=1.4")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()  # a bare word: text such as a distribution name
        overrides.setdefault(name, {})[key.strip()] = parsed
    return overrides


def _report(args) -> None:
    from uqenergy.outputs.report import rerender

    out = rerender(args.folder)
    if not args.quiet:
        print(f"wrote {out}/report.md, report.html and figures/", file=sys.stderr)


def _print_headline(records) -> None:
    baseline = [r for r in records if r["pathway"] == "baseline"]
    width = max([30, *(len(r["series"]) for r in baseline)])
    for r in baseline:
        what = "mean per query, epistemic: " if r["quantity"] == "mean_energy_wh" else ""
        print(
            f"{r['scenario']:<12} {_setting(r)}{r['series']:<{width}} {what}median {r['median']:.3g} "
            f"± {r['mcse_median']:.1g} Wh "
            f"(IQR {r['p25']:.3g}-{r['p75']:.3g}, 90% {r['p5']:.3g}-{r['p95']:.3g})"
        )


def _sobol(args) -> None:
    from uqenergy.analyses.sensitivity_study import run_sensitivity
    from uqenergy.outputs.files import write_atomically, write_json
    from uqenergy.outputs.report import write_report

    result = run_sensitivity(args.study, scheduler=args.scheduler)
    _warn(result.warnings, args)

    def fill(folder: Path) -> None:
        write_json(folder / f"{result.method}.json", result.records)
        if result.second_order:
            write_json(folder / f"{result.method}_second_order.json", result.second_order)
        if result.method == "sobol":  # the report and its bar chart read Sobol records
            write_report(folder)

    out = write_atomically(args.out, fill, force=args.force)
    if not args.quiet:
        _print_dominant(result.records, result.method)
        print(
            f"wrote {out}/{result.method}.json" + (" and the report" if result.method == "sobol" else ""),
            file=sys.stderr,
        )


def _print_dominant(records, method: str) -> None:
    from uqenergy.analyses.sensitivity import GROUP_PREFIX, MAIN_INDEX
    from uqenergy.analyses.sensitivity_study import dominant

    index = MAIN_INDEX[method]
    for factor, group in dominant(records, method):
        head = f"{factor['scenario']:<12} {_setting(factor)}"
        tops = [
            f"{kind} {r['factor'].removeprefix(GROUP_PREFIX)} {index} {r[index]:.2f} ± {r[index + '_conf']:.2f}"
            for kind, r in (("factor", factor), ("pathway", group))
            if r is not None
        ]
        status = "converged" if factor["converged"] else "NOT converged"
        print(
            f"{head}{factor['series']:<30} {factor['target']:<14} dominant {'; '.join(tops)} "
            f"(N = {factor['base_samples']}, {status})"
        )


def _setting(record: dict) -> str:
    return f"{record['setting']:<18} " if "setting" in record else ""


def _warn(messages, args) -> None:
    """Warnings on stderr, each (file, prior) once per command however many settings or files repeat it."""
    warned = args.__dict__.setdefault("warned", set())
    for message in messages:
        where = ": ".join(message.split(": ")[:2])
        if not getattr(args, "quiet", False) and where not in warned:
            print(f"uqenergy: warning: {message}", file=sys.stderr)
        warned.add(where)


def _library_warning(args):
    """A :func:`warnings.showwarning` for the libraries' warnings (a glyph missing from the figures' font, a
    numpy RuntimeWarning): one line on stderr, once per place it comes from, nothing with ``--quiet``."""
    shown = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if getattr(args, "quiet", False) or (filename, lineno) in shown:
            return
        shown.add((filename, lineno))
        text = " ".join(str(message).split())
        print(f"uqenergy: warning: {category.__name__}: {text}", file=sys.stderr)

    return show


def _compare(args) -> None:
    from uqenergy.analyses.compare import format_table, run_compare
    from uqenergy.outputs.files import write_atomically, write_json
    from uqenergy.outputs.report import write_report

    result = run_compare(args.study, draws=args.draws, seed=args.seed)
    _warn(result.warnings, args)

    def fill(folder: Path) -> None:
        if result.records:
            write_json(folder / "compare.json", result.records)
            write_json(folder / "estimates.json", result.estimates)
        if result.drift:
            write_json(folder / "drift.json", result.drift)
        if result.overstatement:
            write_json(folder / "summary.json", result.overstatement)
        write_report(folder)

    out = write_atomically(args.out, fill, force=args.force)
    if not args.quiet:
        print(format_table(result))
        print(f"wrote {out}/", file=sys.stderr)


def _fleet(args) -> None:
    from uqenergy.analyses.fleet import headline, run_fleet, work_draws
    from uqenergy.config.fleet import load_fleet
    from uqenergy.outputs.files import write_atomically, write_json, write_netcdf
    from uqenergy.outputs.progress import draw_progress
    from uqenergy.outputs.report import write_report

    fleet = load_fleet(args.study, draws=args.draws, seed=args.seed)
    with draw_progress(work_draws(fleet), quiet=args.quiet) as progress:
        result = run_fleet(fleet, progress=progress)
    _warn(result.warnings, args)

    def fill(folder: Path) -> None:
        write_json(folder / "fleet.json", result.records)
        write_netcdf(folder / "samples.nc", result.samples)
        write_report(folder)

    out = write_atomically(args.out, fill, force=args.force)
    if not args.quiet:
        print("\n".join(headline(result.records)))
        print(f"wrote {out}/fleet.json, samples.nc, report.md, report.html and figures/", file=sys.stderr)


def _validate(args) -> None:
    from uqenergy.config.validate import validate_file

    for name in args.files:
        kind, messages = validate_file(name)
        _warn(messages, args)
        if not args.quiet:
            print(f"ok: {name} ({kind})")


def _priors(args) -> None:
    from uqenergy.config.catalogue import list_prior_sets, show

    print(list_prior_sets() if args.action == "list" else show(args.name))


def _import_mlenergy(args) -> None:
    from importlib import resources

    from uqenergy.config.measured import import_mlenergy, measured_csv, written_by_importer
    from uqenergy.outputs.files import write_file_atomically

    out = Path(args.out_file)
    if out.resolve().is_relative_to(Path(str(resources.files("uqenergy"))).resolve()):
        raise InputError(
            out, "--out", "is inside the installed uqenergy package", "a file of your own; set measured.table to it"
        )
    configurations, messages = import_mlenergy(args.files)
    names = ", ".join(Path(f).name for f in args.files)
    source = f"ML.ENERGY Leaderboard task files ({names}) imported by uqenergy {__version__}"
    write_file_atomically(out, measured_csv(configurations, source), may_replace=written_by_importer)
    _warn(messages, args)
    if not args.quiet:
        groups = {c.group for c in configurations}
        tasks = ", ".join(sorted({c.task for c in configurations}))
        print(f"wrote {out}: {len(configurations)} configurations in {len(groups)} groups ({tasks})", file=sys.stderr)


def _serve(args) -> None:
    try:
        from uqenergy.web.app import serve
    except ModuleNotFoundError as exc:  # installed without the web extra
        raise InputError(None, "serve", f"needs the package {exc.name}", "pip install 'uqenergy[web]'") from None
    serve(args.study, host=args.host, port=args.port)


def _studies(args) -> None:
    from uqenergy.config.catalogue import study_catalogue

    rows = study_catalogue()
    width = max(len(name) for name, _, _ in rows)
    for name, command, description in rows:
        print(f"uqenergy {command:<7} {name:<{width}}  {description}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="uqenergy",
        description="Monte Carlo uncertainty for the energy of LLM inference. "
        "`uqenergy studies` lists the bundled studies; each command writes its own folder under "
        f"./{DEFAULT_ROOT}/ unless given --out.",
    )
    parser.add_argument("--version", action="version", version=f"uqenergy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    run = _study_command(
        sub,
        "run",
        _run,
        "run a study and write summary.json, samples.nc and a report",
        f"study file or bundled name (default {DEFAULT_STUDY})",
        default=DEFAULT_STUDY,
        draws="draws per model (overrides the study)",
        scheduler=True,
    )
    run.add_argument(
        "--set",
        action="append",
        metavar="PRIOR.KEY=VALUE",
        help="override one key of a prior for every model, e.g. --set pue.p95=1.4 (repeatable; docs/priors.md)",
    )
    _study_command(
        sub,
        "compare",
        _compare,
        "place published per-query estimates on our distributions",
        "compare study file or bundled name (e.g. public_estimates)",
        draws="draws per model (overrides the compare study)",
    )
    report = sub.add_parser(
        "report",
        help="rebuild report.md, report.html and figures of an output folder",
        description="Rebuild report.md, report.html and figures/ of a finished output folder from its files alone.",
    )
    report.add_argument(
        "folder", help=f"an output folder written by uqenergy, e.g. {default_out('run', DEFAULT_STUDY)}"
    )
    report.add_argument("--quiet", action="store_true", help="print nothing but errors")
    report.set_defaults(handler=_report)
    _study_command(
        sub,
        "sobol",
        _sobol,
        "sensitivity indices of a study's energy; write sobol.json and a bar chart",
        "study file or bundled name, with an optional [sobol] section (e.g. sobol_traditional)",
        scheduler=True,
    )
    _study_command(
        sub,
        "fleet",
        _fleet,
        "fleet totals (GWh/day, water, carbon) of a workload mix; write fleet.json",
        "fleet study file or bundled name (e.g. paper_fleet)",
        draws="draws per model, and queries per state of knowledge (overrides the study)",
    )

    fit = sub.add_parser(
        "fit",
        help="fit the size regression to measured data; write the posterior, coverage.json and a report",
        description="Fit GPU energy per output token against model size, concurrency and hardware to a measured "
        "table, in three forms; compare them by PSIS-LOO and check each by leave-one-model-out coverage. "
        "Writes coverage.json, loo.json, coefficients.json, held_out.json, posterior-FORM.nc (ArviZ), figures and "
        "a report (docs/predictive.md).",
    )
    fit.add_argument(
        "--data", default="mlenergy_v3", help="measured table (CSV path or bundled name; default mlenergy_v3)"
    )
    fit.add_argument("--draws", type=int, default=1000, help="posterior draws per chain (default 1000, 4 chains)")
    fit.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    _output_options(fit, "fit")
    fit.set_defaults(handler=_fit)

    validate = sub.add_parser(
        "validate",
        help="check study, prior, estimates and benchmark files without running",
        description="Check study, prior, estimates and benchmark (.csv) files without running anything; "
        "prints 'ok: FILE (what it is)' for each.",
    )
    validate.add_argument("files", nargs="+", metavar="FILE", help="a file path or the name of a bundled file")
    validate.add_argument("--quiet", action="store_true", help="print nothing but errors")
    validate.set_defaults(handler=_validate)

    data = sub.add_parser(
        "data",
        help="import measured data tables",
        description="Data tables the measured studies use: `uqenergy data import-mlenergy` builds one from "
        "ML.ENERGY Leaderboard task files (docs/measured.md).",
    )
    data_sub = data.add_subparsers(
        dest="data_command", required=True, parser_class=_Parser, help="import-mlenergy: build a measured table"
    )
    mlenergy = data_sub.add_parser(
        "import-mlenergy",
        help="build a measured table from ML.ENERGY Leaderboard task files (public/data/tasks/*.json)",
        description="Build a measured table from ML.ENERGY Leaderboard task files (public/data/tasks/*.json); "
        "repeat runs are averaged, single-point groups left out with a warning (docs/measured.md).",
    )
    mlenergy.add_argument("files", nargs="+", metavar="FILE.json", help="task files of one leaderboard build")
    mlenergy.add_argument(
        "--out", dest="out_file", default="mlenergy.csv", help="the table to write (default ./mlenergy.csv)"
    )
    mlenergy.add_argument("--quiet", action="store_true", help="print nothing but errors")
    mlenergy.set_defaults(handler=_import_mlenergy)

    priors = sub.add_parser(
        "priors",
        help="list the bundled prior sets or show one prior set or prior",
        description="`uqenergy priors list` lists the bundled prior sets; `uqenergy priors show NAME` shows a prior "
        "set (bundled name or file) or one prior of joule2026, with distribution, unit, bounds, kind and source.",
    )
    priors.add_argument("action", choices=["list", "show"], nargs="?", default="list", help="list or show")
    priors.add_argument("name", nargs="?", default="joule2026", help="a prior set or prior name (default joule2026)")
    priors.set_defaults(handler=_priors)

    studies = sub.add_parser(
        "studies",
        help="list the bundled studies, the command that runs each and what it does",
        description="List the bundled studies with the command that runs each and its one-line description.",
    )
    studies.set_defaults(handler=_studies)
    serve = sub.add_parser(
        "serve",
        help="a what-if page in the browser: move a prior, see the distribution and its drivers change",
        description="Serve a what-if page in the browser: move a prior, see the distribution and its drivers change.",
    )
    serve.add_argument(
        "study", nargs="?", default=DEFAULT_STUDY, help=f"the study the page opens (default {DEFAULT_STUDY})"
    )
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this computer only)"
    )
    serve.set_defaults(handler=_serve)
    return parser


def _study_command(
    sub,
    name: str,
    handler,
    help_text: str,
    study_help: str,
    *,
    default: str | None = None,
    draws: str | None = None,
    scheduler: bool = False,
) -> argparse.ArgumentParser:
    """A subcommand that runs a study into an output folder."""
    command = sub.add_parser(name, help=help_text, description=help_text[0].upper() + help_text[1:] + ".")
    command.add_argument("study", help=study_help, **({"nargs": "?", "default": default} if default else {}))
    _output_options(command, name)
    if draws:
        command.add_argument("--draws", type=int, help=draws)
        command.add_argument("--seed", type=int, help="random seed (overrides the study)")
    if scheduler:
        _scheduler_option(command)
    command.set_defaults(handler=handler)
    return command


def _output_options(parser, command: str) -> None:
    parser.add_argument(
        "--out",
        type=Path,
        help=f"output folder (default ./{DEFAULT_ROOT}/{command}-STUDY, e.g. "
        f"{default_out(command, 'paper_traditional' if command == 'run' else 'NAME')})",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace a previous uqenergy output whose own files were edited or removed (never your files)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")


def _scheduler_option(parser) -> None:
    parser.add_argument(
        "--scheduler",
        help="where chunks run: local, threads, processes, synchronous (Dask) or a "
        "dask.distributed address tcp://HOST:PORT (overrides the study)",
    )


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one-line error for an optional dependency that is not installed, or None if it is not optional."""
    top = (exc.name or "").partition(".")[0]
    if top not in EXTRAS:
        return None
    extra = EXTRAS[top]
    return f"uqenergy: error: this needs the optional package {top!r}: pip install 'uqenergy[{extra}]'"


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # usage errors (already printed on one line), --help, --version
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if hasattr(args, "out"):
            from uqenergy.config.catalogue import check_command
            from uqenergy.outputs.files import check_output_dir

            if hasattr(args, "study"):  # uqenergy fit reads a measured table (--data), not a study
                check_command(args.study, args.command)
            if args.out is None:
                args.out = default_out(args.command, getattr(args, "study", None) or args.data)
            check_output_dir(args.out, force=args.force)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.showwarning = _library_warning(args)
            args.handler(args)
        sys.stdout.flush()
    except InputError as exc:
        print(f"uqenergy: error: {exc.message}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        if (message := _missing_extra(exc)) is None:
            raise
        print(message, file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (uqenergy priors show | head): stop quietly
        try:  # Python's own flush at exit must not fail again
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is not a file (captured)
            pass
        return 141  # 128 + SIGPIPE, as a shell reports a command ended by a closed pipe
    except KeyboardInterrupt:
        print("uqenergy: error: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
