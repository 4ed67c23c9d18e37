"""``uqenergy priors``: what the bundled prior sets hold, with units, bounds and sources."""

from __future__ import annotations

from pathlib import Path

from uqenergy.config.errors import InputError
from uqenergy.config.files import bundled, read_toml, resolve
from uqenergy.config.priors import Prior, PriorSet, load_prior_files


def list_prior_sets() -> str:
    lines = []
    for name in bundled("priors"):
        doc = read_toml(resolve(name, "priors"))
        if "priors" not in doc:
            continue
        meta = doc.get("meta", {})
        lines.append(f"{name}: {meta.get('description', '')}")
        lines += [f"    {prior}" for prior in doc["priors"]]
    return "\n".join(lines)


def _describe(prior: Prior, model: str | None = None) -> str:
    outside = prior.mass_outside_bounds()
    return "\n".join(
        [
            f"{prior.name}{f' [{model}]' if model else ''}: {prior.describe()}",
            f"    bounds {list(prior.bounds)}, {prior.kind}"
            + (f", {100 * outside:.2g}% of its mass outside the bounds" if outside > 1e-9 else ""),
            f"    source: {prior.source}",
            *([f"    note: {prior.note}"] if prior.note else []),
        ]
    )


def prior_records(priors: PriorSet, names, models) -> list[dict]:
    """Flat records of the priors ``names`` as used for ``models``: the base prior, then each model override."""
    records = []
    for name in names:
        used = [("all", priors.get(name))] + [(m, p) for m, p in priors.by_model.get(name, {}).items() if m in models]
        records += [
            {
                "prior": name,
                "model": model,
                "distribution": prior.describe(),
                "unit": prior.unit,
                "bounds": str(list(prior.bounds)),
                "kind": prior.kind,
                "mass_outside_bounds": prior.mass_outside_bounds(),
                "source": prior.source,
                "file": Path(prior.file).name,
            }
            for model, prior in used
        ]
    return records


def show(name: str) -> str:
    """A prior set (bundled name or file) in full, or one prior of the default set by name."""
    path = resolve(name, "priors")
    if path.exists() or name.endswith(".toml"):
        priors = load_prior_files([path])
        selected = priors.names()
    else:
        priors = load_prior_files([resolve("joule2026", "priors")])
        priors.require([name], resolve("joule2026", "priors"), "priors show")
        selected = [name]
    blocks = []
    for prior_name in selected:
        blocks.append(_describe(priors.get(prior_name)))
        blocks += [_describe(p, m) for m, p in priors.by_model.get(prior_name, {}).items()]
    return "\n".join(blocks)


#: What each kind of study file is run with, and the section that makes a file that kind.
COMMANDS = {"compare": "compare", "fleet": "fleet", "sobol": "sobol"}


def command_for(doc: dict) -> str:
    """The command that runs a study document: compare, fleet or sobol by its section, else run (a
    two-level study with a ``[sobol]`` section is run by ``run``; the section is for ``uqenergy sobol``)."""
    two_level = doc.get("intervals", {}).get("design") == "two-level"
    return next(
        (command for section, command in COMMANDS.items() if section in doc and not (two_level and section == "sobol")),
        "run",
    )


def study_catalogue() -> list[tuple[str, str, str]]:
    """Every bundled study as (name, the command that runs it, its one-line description)."""
    rows = []
    for name in bundled("studies"):
        doc = read_toml(resolve(name, "studies"))
        table = doc.get("compare") or doc.get("study") or doc.get("closed_models") or {}
        rows.append((name, command_for(doc), table.get("description", "")))
    return rows


def check_command(study: str | Path, command: str) -> None:
    """Refuse a study file given to a command that cannot run it, naming the command that can."""
    path = resolve(study, "studies")
    if not path.is_file():
        return  # the loader reports the missing file
    doc = read_toml(path)
    kind = command_for(doc)
    runs = {"run": ("run", "sobol", "fleet"), "sobol": ("run", "sobol", "fleet"), "fleet": ("fleet",)}
    if kind not in runs.get(command, (command,)):
        raise InputError(
            path,
            None,
            f"is a {kind} study, not a {command} study",
            f"uqenergy {kind} {study}; `uqenergy studies` lists what runs each bundled study",
        )
