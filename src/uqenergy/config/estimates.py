"""Published per-query energy figures: read and validate the estimates file, keeping every source.

An estimates file (``priors/public_estimates.toml``) is a versioned registry of
claims: TOML with an optional ``[meta]`` table and one ``[estimates.ID]`` table
per published figure: its value in Wh, what it is (``kind``), which statistic
over queries it is (``statistic``: ``mean``, ``median`` or ``unspecified``),
what it counts (``boundary``, a rung of the ladder in
:mod:`uqenergy.config.boundaries`), which of our scenarios it speaks to
(``query_type``), its date, the claim it is a version of (``claim``, default
its id) and that version (``version``), a citation and URL, whether the figure
was seen in the cited source (``verified``), the assumptions the source
states (``[estimates.ID.assumptions]``: tokens, hardware, ...), which the
assumption audit substitutes into our energy core, and optionally the closed
model of a closed-model study (``closed_model``) whose prediction the figure is
also set against (:mod:`uqenergy.config.compare`, ``closed_models``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from uqenergy.config.boundaries import BOUNDARIES
from uqenergy.config.errors import InputError, check_keys, require_number
from uqenergy.config.files import read_toml, resolve

KINDS = ("measurement", "disclosure", "estimate")
#: What a figure is over queries. ``unspecified``: the source does not say.
STATISTICS = ("mean", "median", "unspecified")
#: The statistic of ours an ``unspecified`` figure is compared with. A per-query figure that does not say
#: which statistic it is is nearly always an energy total divided by a count of queries, or one query
#: standing for all of them in such a division; either way it is used to scale up to totals, which only
#: the mean does.
UNSPECIFIED_RULE = "mean"
QUERY_TYPES = ("traditional", "test-time")
REQUIRED_KEYS = (
    "value_wh",
    "kind",
    "statistic",
    "boundary",
    "subject",
    "query_type",
    "date",
    "citation",
    "url",
    "verified",
)
TEXT_KEYS = (
    "kind",
    "statistic",
    "boundary",
    "subject",
    "model",
    "query_type",
    "date",
    "citation",
    "url",
    "note",
    "claim",
    "version",
    "closed_model",
)
ESTIMATE_KEYS = frozenset(REQUIRED_KEYS + TEXT_KEYS + ("value_low_wh", "value_high_wh", "assumptions"))
META_KEYS = frozenset({"description", "checked"})
#: Stated assumptions: name -> (lowest allowed, highest allowed, what is allowed).
NUMERIC_ASSUMPTIONS = {
    "input_tokens": (0.0, None, "a number of tokens >= 0"),
    "output_tokens": (0.0, None, "a number of tokens > 0"),
    "pue": (1.0, None, "a PUE >= 1"),
    "power_utilisation": (0.0, 1.0, "a fraction in (0, 1]"),
    "node_power_kw": (0.0, None, "a power > 0 in kW"),
    "tokens_per_s": (0.0, None, "a node throughput > 0 in tokens/s"),
    "batch_size": (0.0, None, "a batch size > 0"),
}
TEXT_ASSUMPTIONS = ("hardware",)
DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")


@dataclass(frozen=True)
class PublicEstimate:
    """One published per-query figure with its source and stated assumptions."""

    id: str
    value_wh: float
    kind: str
    statistic: str
    boundary: str
    subject: str
    model: str
    query_type: str
    date: str
    citation: str
    url: str
    verified: bool
    note: str = ""
    claim: str = ""  # the claim this figure is a version of (default: its id)
    version: str = ""
    closed_model: str = ""  # a model of the compare study's closed-model study, compared as a second comparator
    value_low_wh: float | None = None
    value_high_wh: float | None = None
    assumptions: dict = field(default_factory=dict, hash=False, compare=False)

    def record(self) -> dict:
        """The estimate's metadata as a flat record (``estimates.json``)."""
        return {
            "estimate_id": self.id,
            "value_wh": self.value_wh,
            "value_low_wh": self.value_low_wh,
            "value_high_wh": self.value_high_wh,
            "kind": self.kind,
            "statistic": self.statistic,
            "boundary": self.boundary,
            "claim": self.claim,
            "version": self.version,
            "closed_model": self.closed_model,
            "subject": self.subject,
            "model": self.model,
            "query_type": self.query_type,
            "date": self.date,
            "citation": self.citation,
            "url": self.url,
            "verified": self.verified,
            "note": self.note,
        }


def _choice(table: dict, key: str, choices: tuple[str, ...], file, prefix: str) -> str:
    value = table[key]
    if value not in choices:
        raise InputError(file, f"{prefix}{key}", f"unknown {key} {value!r}", "one of " + ", ".join(choices))
    return value


def _assumptions(table, file, prefix: str, boundary: str) -> dict:
    if not isinstance(table, dict):
        raise InputError(file, prefix.rstrip("."), "expected a table", "[estimates.ID.assumptions]")
    check_keys(table, frozenset(NUMERIC_ASSUMPTIONS) | frozenset(TEXT_ASSUMPTIONS), file, prefix)
    parsed: dict[str, float | str] = {}
    for key, value in table.items():
        if key in TEXT_ASSUMPTIONS:
            if not isinstance(value, str) or not value.strip():
                raise InputError(file, f"{prefix}{key}", f"expected text, got {value!r}", "a non-empty string")
            parsed[key] = value
            continue
        low, high, allowed = NUMERIC_ASSUMPTIONS[key]
        number = require_number(value, file, f"{prefix}{key}")
        strict = key not in ("input_tokens", "pue")
        if number < low or (strict and number == low) or (high is not None and number > high):
            raise InputError(file, f"{prefix}{key}", f"{number:g} is out of range", allowed)
        parsed[key] = number
    if "pue" in parsed and boundary != "facility":
        raise InputError(
            file,
            f"{prefix}pue",
            f"a PUE is stated but the boundary is {boundary!r}",
            "a PUE only for boundary = 'facility'",
        )
    return parsed


def parse_estimate(estimate_id: str, table, file) -> PublicEstimate:
    """Validate one ``[estimates.ID]`` table."""
    prefix = f"estimates.{estimate_id}."
    if not isinstance(table, dict):
        raise InputError(
            file, prefix.rstrip("."), "expected a table", "[estimates.ID] with value_wh, kind, boundary, ..."
        )
    check_keys(table, ESTIMATE_KEYS, file, prefix)
    for key in REQUIRED_KEYS:
        if key not in table:
            raise InputError(file, f"{prefix}{key}", "missing", "every estimate needs " + ", ".join(REQUIRED_KEYS))
    for key in TEXT_KEYS:
        if key in table and not isinstance(table[key], str):
            raise InputError(file, f"{prefix}{key}", f"expected text, got {table[key]!r}", "a string")
    for key in ("subject", "citation"):
        if not table[key].strip():
            raise InputError(file, f"{prefix}{key}", "is empty", "a non-empty string")
    if not DATE.match(table["date"]):
        raise InputError(file, f"{prefix}date", f"{table['date']!r} is not a date", "YYYY, YYYY-MM or YYYY-MM-DD")
    if not table["url"].startswith(("https://", "http://")):
        raise InputError(
            file, f"{prefix}url", f"{table['url']!r} is not a web address", "an http(s) URL or https://doi.org/..."
        )
    if not isinstance(table["verified"], bool):
        raise InputError(file, f"{prefix}verified", f"expected true or false, got {table['verified']!r}", "a boolean")
    value = require_number(table["value_wh"], file, f"{prefix}value_wh", positive=True)
    if ("value_low_wh" in table) != ("value_high_wh" in table):
        raise InputError(
            file,
            f"{prefix}value_low_wh",
            "only one end of the range is given",
            "both value_low_wh and value_high_wh, or neither",
        )
    low = high = None
    if "value_low_wh" in table:
        low = require_number(table["value_low_wh"], file, f"{prefix}value_low_wh", positive=True)
        high = require_number(table["value_high_wh"], file, f"{prefix}value_high_wh", positive=True)
        if not low <= value <= high:
            raise InputError(
                file,
                f"{prefix}value_wh",
                f"{value:g} is outside its range [{low:g}, {high:g}]",
                "value_low_wh <= value_wh <= value_high_wh",
            )
    boundary = _choice(table, "boundary", BOUNDARIES, file, prefix)
    return PublicEstimate(
        id=estimate_id,
        value_wh=value,
        kind=_choice(table, "kind", KINDS, file, prefix),
        statistic=_choice(table, "statistic", STATISTICS, file, prefix),
        boundary=boundary,
        subject=table["subject"],
        model=table.get("model", ""),
        query_type=_choice(table, "query_type", QUERY_TYPES, file, prefix),
        date=table["date"],
        citation=table["citation"],
        url=table["url"],
        verified=table["verified"],
        note=table.get("note", ""),
        claim=table.get("claim", estimate_id),
        version=table.get("version", ""),
        closed_model=table.get("closed_model", ""),
        value_low_wh=low,
        value_high_wh=high,
        assumptions=_assumptions(table.get("assumptions", {}), file, f"{prefix}assumptions.", boundary),
    )


def load_estimates(path: str | Path) -> list[PublicEstimate]:
    """Read and validate an estimates file (a path or a bundled name such as ``public_estimates``)."""
    path = resolve(path, "priors")
    return estimates_from_document(path, read_toml(path))


def estimates_from_document(path: Path, doc: dict) -> list[PublicEstimate]:
    """Validate an estimates document read from ``path``.

    Parameters
    ----------
    path : Path
        The estimates file, for error messages.
    doc : dict
        The file as read from TOML.

    Returns
    -------
    list of PublicEstimate
        The estimates, in file order.
    """
    check_keys(doc, {"meta", "estimates"}, path)
    meta = doc.get("meta", {})
    if not isinstance(meta, dict):
        raise InputError(path, "meta", "expected a table", "[meta] with description, checked")
    check_keys(meta, META_KEYS, path, "meta.")
    tables = doc.get("estimates")
    if not isinstance(tables, dict) or not tables:
        raise InputError(path, "estimates", "no estimates", "one or more [estimates.ID] tables")
    return [parse_estimate(estimate_id, table, path) for estimate_id, table in tables.items()]
