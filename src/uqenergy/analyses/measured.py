"""What the measured table says about the paper's test-time assumptions: reasoning against chat output lengths.

Oviedo et al. (Joule 2026, arXiv:2509.20241) assume long (test-time scaling)
queries of median 5,000 output tokens against 300 for traditional ones, and their
fleet analysis about 15x the tokens of a typical query (``output_token_multiplier``
in ``priors/fleet.toml``). ML.ENERGY v3 measured the same families on a reasoning
task (GPQA Diamond) and on chat (LM Arena prompts): :func:`length_ratios` gives the
ratio of their mean output lengths, for a reasoning model against the chat model
of its family (:data:`FAMILY_PAIRS`) and for each model measured on both tasks.
These are means over one request mix per task (a hard benchmark for reasoning),
not medians of production traffic.
"""

from __future__ import annotations

from uqenergy.config.measured import MeasuredTable

REASONING_TASK, CHAT_TASK = "gpqa", "lm-arena-chat"
#: (reasoning model, chat model of the same family): a thinking build against its instruct build
FAMILY_PAIRS = (
    ("Qwen/Qwen3-235B-A22B-Thinking-2507", "Qwen/Qwen3-235B-A22B-Instruct-2507"),
    ("Qwen/Qwen3-235B-A22B-Thinking-2507-FP8", "Qwen/Qwen3-235B-A22B-Instruct-2507-FP8"),
    ("Qwen/Qwen3-30B-A3B-Thinking-2507", "Qwen/Qwen3-30B-A3B-Instruct-2507"),
    ("deepseek-ai/DeepSeek-R1-0528", "deepseek-ai/DeepSeek-V3.1"),
)
PAPER_LONG_TOKENS = 5000  # Oviedo et al.: median output tokens of a long (test-time scaling) query
PAPER_TRADITIONAL_TOKENS = 300  # ... and of a traditional one
PAPER_FLEET_MULTIPLIER = 15  # Oviedo et al., fleet analysis: tokens of a reasoning query / a typical one


def mean_output_tokens(table: MeasuredTable, task: str) -> dict[str, float]:
    """Model id -> mean output length over all its configurations (every GPU, count and batch) on ``task``."""
    lengths: dict[str, list[float]] = {}
    for c in table.configurations:
        if c.task == task:
            lengths.setdefault(c.model_id, []).append(c.mean_output_tokens)
    return {model: sum(values) / len(values) for model, values in lengths.items()}


def length_ratios(table: MeasuredTable) -> list[dict]:
    """Reasoning / chat mean output lengths: family pairs, then each model measured on both tasks.

    Parameters
    ----------
    table : MeasuredTable
        A measured table with the ``gpqa`` and ``lm-arena-chat`` tasks.

    Returns
    -------
    list of dict
        One record per pair present in the table: ``reasoning_model``, ``chat_model``, ``pair``
        (``family`` or ``same model``), ``reasoning_tokens``, ``chat_tokens``, ``ratio``, and the ratio
        against the paper's 5,000 / 300 long-query regime and its fleet multiplier of 15.
    """
    reasoning, chat = mean_output_tokens(table, REASONING_TASK), mean_output_tokens(table, CHAT_TASK)
    pairs = [(r, c, "family") for r, c in FAMILY_PAIRS] + [(m, m, "same model") for m in reasoning if m in chat]
    nickname = {c.model_id: c.nickname for c in table.configurations}
    return [
        {
            "reasoning_model": nickname[r],
            "chat_model": nickname[c],
            "pair": kind,
            "reasoning_tokens": reasoning[r],
            "chat_tokens": chat[c],
            "ratio": reasoning[r] / chat[c],
            "reasoning_tokens_vs_paper_long": reasoning[r] / PAPER_LONG_TOKENS,
            "ratio_vs_paper_fleet_multiplier": reasoning[r] / chat[c] / PAPER_FLEET_MULTIPLIER,
        }
        for r, c, kind in pairs
        if r in reasoning and c in chat
    ]
