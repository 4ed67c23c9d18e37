"""The published-estimates file: every entry sourced, strict validation with one-line errors."""

from __future__ import annotations

import pytest

from uqenergy.analyses.compare import claim_drift
from uqenergy.config.boundaries import BOUNDARIES
from uqenergy.config.errors import InputError
from uqenergy.config.estimates import KINDS, QUERY_TYPES, STATISTICS, load_estimates

VALID = """
[meta]
description = "test"

[estimates.one]
value_wh = 0.5
value_low_wh = 0.4
value_high_wh = 0.6
kind = "estimate"
statistic = "mean"
boundary = "facility"
subject = "a chatbot"
model = "some model"
query_type = "traditional"
date = "2025-05"
citation = "Someone (2025). A paper."
url = "https://example.org/paper"
verified = true
note = "a note"

[estimates.one.assumptions]
output_tokens = 500
pue = 1.2
hardware = "8xH100"
"""


def test_bundled_estimates_are_complete_and_sourced():
    estimates = load_estimates("public_estimates")
    ids = {e.id for e in estimates}
    # the required figures are all present
    for required in (
        "devries_2023_chatgpt",
        "epri_2024_chatgpt",
        "google_2009_search",
        "epoch_2025_gpt4o",
        "openai_2025_chatgpt_average",
        "google_2025_gemini_median",
    ):
        assert required in ids
    assert any(i.startswith("jegham_2025") for i in ids) and any(i.startswith("ecologits_0_11_3") for i in ids)
    for e in estimates:
        assert e.url.startswith("https://") and e.citation.strip() and e.note.strip()
        assert e.kind in KINDS and e.boundary in BOUNDARIES and e.query_type in QUERY_TYPES
        assert e.statistic in STATISTICS
    assert {e.kind for e in estimates} == set(KINDS)  # measurements, disclosures and estimates are all marked
    by_id = {e.id: e for e in estimates}
    # what each headline figure is, and what it counts (docs/compare.md says why)
    assert (by_id["devries_2023_chatgpt"].statistic, by_id["devries_2023_chatgpt"].boundary) == ("mean", "provisioned")
    assert (by_id["openai_2025_chatgpt_average"].statistic, by_id["openai_2025_chatgpt_average"].boundary) == (
        "mean",
        "facility",
    )
    google = by_id["google_2025_gemini_median"], by_id["google_2025_gemini_median_accelerator_only"]
    assert [(g.statistic, g.boundary, g.value_wh) for g in google] == [
        ("median", "facility", 0.24),
        ("median", "accelerator", 0.10),
    ]


def test_registry_records_versions_of_a_claim():
    """Oviedo et al. v1 and v2 are two versions of one claim; the drift records follow them in date order."""
    drift = [r for r in claim_drift(load_estimates("public_estimates")) if r["claim"].startswith("oviedo/")]
    traditional = [r for r in drift if r["claim"] == "oviedo/frontier traditional median"]
    assert [r["version"] for r in traditional] == ["arXiv v1", "arXiv v2 (Joule 2026)"]
    assert [r["value_wh"] for r in traditional] == [0.34, 0.31]
    assert traditional[0]["change_from_first"] == 1.0
    assert traditional[1]["change_from_first"] == pytest.approx(0.31 / 0.34)


def test_epoch_stated_assumptions_reproduce_its_figure():
    """The Epoch entry's assumptions, put through the paper's equation, give its published 0.301 Wh."""
    epoch = next(e for e in load_estimates("public_estimates") if e.id == "epoch_2025_gpt4o")
    a = epoch.assumptions
    energy_wh = a["pue"] * a["node_power_kw"] * a["power_utilisation"] * a["output_tokens"] / a["tokens_per_s"] / 3.6
    assert energy_wh == pytest.approx(0.301, abs=0.0005)


def test_valid_file_loads(write):
    (one,) = load_estimates(write("e.toml", VALID))
    assert one.value_wh == 0.5 and one.value_low_wh == 0.4 and one.assumptions["pue"] == 1.2
    assert one.record()["estimate_id"] == "one" and one.record()["verified"] is True


@pytest.mark.parametrize(
    "old, new, key",
    [
        ('note = "a note"', 'note = "a note"\ncolour = "red"', "estimates.one.colour"),
        ("value_wh = 0.5", 'value_wh = "0.5"', "estimates.one.value_wh"),
        ("value_wh = 0.5", "value_wh = -1", "estimates.one.value_wh"),
        ('kind = "estimate"', 'kind = "guess"', "estimates.one.kind"),
        ('boundary = "facility"', 'boundary = "datacenter"', "estimates.one.boundary"),
        ('statistic = "mean"', 'statistic = "mode"', "estimates.one.statistic"),
        ('statistic = "mean"\n', "", "estimates.one.statistic"),
        ('query_type = "traditional"', 'query_type = "long"', "estimates.one.query_type"),
        ("verified = true", 'verified = "yes"', "estimates.one.verified"),
        ('date = "2025-05"', 'date = "May 2025"', "estimates.one.date"),
        ('url = "https://example.org/paper"', 'url = "example.org"', "estimates.one.url"),
        ('citation = "Someone (2025). A paper."', "citation = 3", "estimates.one.citation"),
        ("value_high_wh = 0.6", "value_high_wh = 0.45", "estimates.one.value_wh"),
        ("value_high_wh = 0.6\n", "", "estimates.one.value_low_wh"),
        ('url = "https://example.org/paper"\n', "", "estimates.one.url"),
        ("pue = 1.2", "pue = 0.9", "estimates.one.assumptions.pue"),
        ("pue = 1.2", "batch = 8", "estimates.one.assumptions.batch"),
        ("output_tokens = 500", 'output_tokens = "many"', "estimates.one.assumptions.output_tokens"),
        ("output_tokens = 500", "power_utilisation = 1.5", "estimates.one.assumptions.power_utilisation"),
        ('boundary = "facility"', 'boundary = "server"', "estimates.one.assumptions.pue"),
        ("[meta]", "[meta]\nauthor = 'x'", "meta.author"),
    ],
)
def test_bad_entries_are_input_errors(write, old, new, key):
    assert old in VALID
    path = write("bad.toml", VALID.replace(old, new, 1))
    with pytest.raises(InputError) as err:
        load_estimates(path)
    assert err.value.key == key
    assert "\n" not in err.value.message


def test_validate_cli_reports_one_line(cli, write):
    path = write("bad.toml", VALID.replace('kind = "estimate"', 'kind = "rumour"'))
    code, out, err = cli("validate", path)
    assert code == 2
    assert err.count("\n") == 1 and "estimates.one.kind: unknown kind 'rumour'" in err
    code, out, _ = cli("validate", write("good.toml", VALID))
    assert code == 0 and "estimates file, 1 estimate" in out and "1 estimates" not in out
