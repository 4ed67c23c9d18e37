"""Exact order statistics, mean and highest-density interval of draws, in memory or streamed.

Every summary of a distribution reads it through an object with ``count``,
``values(ranks)`` (order statistics, 0 = smallest), ``rank_below(v)`` and
``rank_upto(v)`` (how many draws are < v and <= v), ``hdi(level)``, ``mean`` and
``mean_mcse``. Two kinds exist:

- :class:`SelectedDraws`: the draws in memory, each wanted order statistic selected
  (partitioned into place, O(n)) rather than all of them sorted.
- :class:`StreamedDraws`: draws too many to hold, read in passes over chunks that
  can be drawn again (the block-seeded streams of :mod:`uqenergy.engine.sampling`). Pass 1
  counts the draws in a histogram of their float64 bit patterns (2^20 bins: sign,
  exponent and 8 mantissa bits, so a bin spans 0.4% of its values) and records
  each block's moments. Every wanted order statistic falls in a known bin; the
  next pass keeps only the draws of those bins and picks the exact value. A bin
  too full for the memory budget is first split 4,096-fold by an extra pass.
  Asking for a value that is not yet known raises :class:`Pending` after
  noting what the next pass must keep, so the summary code is the same for
  both kinds; a driver runs passes until nothing is pending.

Both give the same numbers bit for bit: quantiles interpolate between the same
two order statistics as ``numpy.quantile`` (its default, linear method); the
mean sums each block of :data:`SEGMENT_DRAWS` draws with ``numpy.sum`` and the
block sums with ``math.fsum`` (exactly rounded, so the order in which chunks
arrive does not matter); the HDI is ``arviz.hdi``'s shortest interval holding
floor(level n) + 1 draws, found among the start ranks that bin bounds cannot
rule out.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

SEGMENT_DRAWS = 2**16  # = sampling.BLOCK_DRAWS: moments are summed per block of draws
TOP_BITS = 20  # pass-1 histogram: bins are the top bits of the sortable key
SPLIT_BITS = 12  # a bin too full to keep is split into 2^12 sub-bins
MAX_SPLITS = 256  # bins split in one pass at most
_SIGN = np.uint64(1 << 63)
RUN_GAP = 2**14  # in-memory draws: wanted ranks closer than this are settled by sorting the draws between them
HDI_BINS = 64  # in-memory HDI: bins of start ranks, each ruled out or sorted
SORT_WHOLE = 2**17  # in-memory draws up to this many are sorted once: cheaper than settling ranks one run at a time


class Pending(Exception):
    """A value needs another pass over the draws (what to keep has been noted)."""


def sortable_keys(values: np.ndarray) -> np.ndarray:
    """uint64 keys ordered as the float64 values: the sign bit flipped for x >= 0, every bit for x < 0."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    return bits ^ ((bits.view(np.int64) >> 63).view(np.uint64) | _SIGN)


def key_values(keys: np.ndarray) -> np.ndarray:
    """The float64 values of sortable keys (inverse of :func:`sortable_keys`)."""
    keys = np.asarray(keys, dtype=np.uint64)
    negative = (keys >> np.uint64(63)) == 0
    return np.where(negative, ~keys, keys ^ _SIGN).view(np.float64)


def quantile_ranks(n: int, probs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ranks below and above each quantile among n sorted draws and the weight of the upper one,
    as ``numpy.quantile``'s linear method places them."""
    virtual = (n - 1) * np.asarray(probs, dtype=float)
    floor = np.floor(virtual)
    top = virtual >= n - 1
    below = np.where(top, n - 1, np.clip(floor, 0, n - 1)).astype(np.int64)
    above = np.where(top, n - 1, np.clip(floor + 1, 0, n - 1)).astype(np.int64)
    return below, above, virtual - floor


def interpolate(low: np.ndarray, high: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``numpy.quantile``'s interpolation between neighbouring order statistics (its ``_lerp``)."""
    diff = high - low
    return np.where(weight >= 0.5, high - diff * (1 - weight), low + diff * weight)


def segment_lengths(size: int, first: int = 0) -> np.ndarray:
    """Lengths of the blocks of :data:`SEGMENT_DRAWS` draws (by draw number from ``first``) in ``size`` draws."""
    cuts = np.arange((first // SEGMENT_DRAWS + 1) * SEGMENT_DRAWS, first + size, SEGMENT_DRAWS) - first
    return np.diff(np.concatenate([[0], cuts, [size]])).astype(np.int64)


@dataclass
class Moments:
    """Per segment: draws, sum and spread (the root of the sum of squared deviations from the segment's mean).

    Spreads are kept as roots and combined with :func:`math.hypot`, so that draws whose squares are beyond the
    float range (energies near 1e300 Wh) still give a finite standard error."""

    counts: list = field(default_factory=list)
    sums: list = field(default_factory=list)
    spreads: list = field(default_factory=list)

    @classmethod
    def of(cls, values: np.ndarray, lengths: np.ndarray) -> Moments:
        moments, start = cls(), 0
        for length in lengths[lengths > 0].tolist():
            segment = values[start : start + length]
            total = float(np.sum(segment))
            moments.counts.append(length)
            moments.sums.append(total)
            with np.errstate(invalid="ignore"):  # inf - inf: the mean is then not finite anyway
                moments.spreads.append(spread(segment - total / length))
            start += length
        return moments

    def add(self, other: Moments) -> None:
        self.counts += other.counts
        self.sums += other.sums
        self.spreads += other.spreads

    @property
    def count(self) -> int:
        return sum(self.counts)

    @property
    def mean(self) -> float:
        return math.fsum(self.sums) / self.count if self.counts else math.nan

    @property
    def mean_mcse(self) -> float:
        """Standard error of the mean of independent draws: sd (ddof = 1) / sqrt(n), from the segments (Chan et al.)."""
        n, mean = self.count, self.mean
        if n < 2 or not math.isfinite(mean):
            return math.nan
        between = (math.sqrt(c) * (s / c - mean) for c, s in zip(self.counts, self.sums))
        return math.hypot(*self.spreads, *between) / math.sqrt(n - 1) / math.sqrt(n)


def spread(deviations: np.ndarray) -> float:
    """sqrt(sum(deviations**2)) without overflow: the deviations are scaled by a power of two (exactly) first."""
    largest = float(np.max(np.abs(deviations))) if deviations.size else 0.0
    if not 0 < largest < math.inf:
        return largest  # all zero; or not finite (the mean is then not finite either)
    exponent = math.frexp(largest)[1]
    return math.ldexp(math.sqrt(float(np.sum(np.ldexp(deviations, -exponent) ** 2))), exponent)


def hdi_of_sorted(ordered: np.ndarray, level: float) -> tuple[float, float]:
    """``arviz.hdi`` of already sorted draws (its algorithm, without sorting again): among the intervals
    spanning floor(level n) consecutive draws, the narrowest."""
    span = int(np.floor(level * ordered.size))
    low = int(np.argmin(ordered[span:] - ordered[: ordered.size - span]))
    return float(ordered[low]), float(ordered[low + span])


class _Draws(ABC):
    """What both kinds share: quantiles, from order statistics and the kind's ``count`` and ``values``."""

    @property
    @abstractmethod
    def count(self) -> int:
        """How many (finite) draws."""

    @abstractmethod
    def values(self, ranks) -> np.ndarray:
        """The draws at 0-based ``ranks`` in sorted order."""

    def request(self, ranks=(), hdi_level: float | None = None) -> None:  # noqa: B027 (in memory: nothing to fetch)
        """Note order statistics (and an HDI) about to be read, so that one pass fetches them all."""

    def quantiles(self, probs, first: int = 0, count: int | None = None) -> np.ndarray:
        """``numpy.quantile`` of the draws ranked [first, first + count) (default: all)."""
        below, above, weight = quantile_ranks(self.count if count is None else count, probs)
        known = self.values(np.concatenate([below, above]) + first)
        return interpolate(known[: below.size], known[below.size :], weight)


class SelectedDraws(_Draws):
    """Draws held in memory, never sorted whole: each order statistic asked for is selected.

    The draws are a private copy, partitioned in place: ``settled`` lists the ranks
    whose draw is in its sorted place, every draw before it no greater and every
    draw after it no smaller. A new rank is settled by partitioning only the stretch
    between the settled ranks around it (``numpy.ndarray.partition``, O(n)); ranks
    close together are settled by partitioning at the two ends of their run and
    sorting the few draws between. Up to :data:`SORT_WHOLE` draws are sorted once
    instead. ``lengths``: segments for the mean (default: blocks of the flat array).
    """

    def __init__(self, values, lengths: np.ndarray | None = None):
        self.draws = np.array(values, dtype=float).ravel()  # a copy: it is reordered in place
        self.moments = Moments.of(self.draws, segment_lengths(self.draws.size) if lengths is None else lengths)
        self.settled = np.empty(0, np.int64)
        self.requested = np.empty(0, np.int64)

    @property
    def count(self) -> int:
        return self.draws.size

    def request(self, ranks=(), hdi_level: float | None = None) -> None:
        self.requested = np.union1d(self.requested, np.asarray(ranks, dtype=np.int64))

    def values(self, ranks) -> np.ndarray:
        ranks = np.asarray(ranks, dtype=np.int64)
        self._settle(np.union1d(ranks, self.requested))
        self.requested = np.empty(0, np.int64)
        return self.draws[ranks]

    def _settle(self, ranks: np.ndarray) -> None:
        """Put the draws of sorted, unique ``ranks`` in their sorted places."""
        if self.count <= SORT_WHOLE:
            self._sort_whole()
            return
        ranks = np.setdiff1d(ranks, self.settled, assume_unique=True)
        if not ranks.size:
            return
        breaks = np.flatnonzero(np.diff(ranks) > RUN_GAP) + 1  # runs of nearby ranks: partition at ends, sort between
        firsts, lasts = ranks[np.r_[0, breaks]], ranks[np.r_[breaks - 1, ranks.size - 1]]
        self._partition(np.union1d(firsts, lasts))
        for first, last in zip(firsts.tolist(), lasts.tolist()):
            if last - first > 1:
                self.draws[first + 1 : last].sort()
                self.settled = np.union1d(self.settled, np.arange(first + 1, last))

    def _partition(self, ranks: np.ndarray) -> None:
        """Settle sorted, unique, unsettled ``ranks``, each stretch between settled ranks partitioned once."""
        if self.count <= SORT_WHOLE:
            self._sort_whole()
            return
        stretch = np.searchsorted(self.settled, ranks)
        bounds = np.r_[-1, self.settled, self.count]
        for j in np.unique(stretch).tolist():
            start, stop = bounds[j] + 1, bounds[j + 1]
            self.draws[start:stop].partition(ranks[stretch == j] - start)
        self.settled = np.union1d(self.settled, ranks)

    def _sort_whole(self) -> None:
        """Settle every rank with one sort (few draws)."""
        if self.settled.size < self.count:
            self.draws.sort()
            self.settled = np.arange(self.count)

    def rank_below(self, value: float) -> int:
        return int(np.count_nonzero(self.draws < value))

    def rank_upto(self, value: float) -> int:
        return int(np.count_nonzero(self.draws <= value))

    def hdi(self, level: float) -> tuple[float, float]:
        """Exact ``arviz.hdi`` (first narrowest interval of floor(level n) + 1 consecutive draws) without a sort.

        The possible start ranks [0, n - span) are cut into :data:`HDI_BINS` bins at
        settled ranks. An interval starting in bin [a, b) is at least x[a + span] -
        x[b] wide; a bin whose bound exceeds the narrowest interval starting at a
        bin edge cannot hold the answer. Only the draws of the remaining bins (and
        of their ends, span ranks later) are sorted.
        """
        n = self.count
        span = int(np.floor(level * n))
        starts = n - span
        if starts <= 4 * HDI_BINS or span < 1 or not math.isfinite(self.mean):  # small or not finite: sort them all
            return hdi_of_sorted(np.sort(self.draws), level)
        edges = np.unique(np.linspace(0, starts, HDI_BINS + 1).astype(np.int64))
        ends = np.minimum(edges + span, n - 1)
        self._partition(np.setdiff1d(np.union1d(edges, ends), self.settled, assume_unique=True))
        x = self.draws
        exact = x[ends[:-1]] - x[edges[:-1]]  # intervals starting at bin edges
        least = x[ends[:-1]] - x[edges[1:]]  # lower bound of the width of any interval starting in a bin
        possible = np.flatnonzero(least <= exact.min())
        for j in possible.tolist():
            x[edges[j] + 1 : edges[j + 1]].sort()
            x[ends[j] + 1 : ends[j + 1]].sort()
        first = np.concatenate([np.arange(edges[j], edges[j + 1]) for j in possible.tolist()])
        best = int(first[np.argmin(x[first + span] - x[first])])
        return float(x[best]), float(x[best + span])

    @property
    def mean(self) -> float:
        return self.moments.mean

    @property
    def mean_mcse(self) -> float:
        return self.moments.mean_mcse


@dataclass(frozen=True)
class Plan:
    """What one pass does with one distribution's draws, chunk by chunk (pure data, sent to workers).

    ``keep`` and ``split`` are flat sorted [lo, hi, lo, hi, ...] key ranges (hi
    exclusive); ``shifts`` gives each split range's sub-bin width as a power of 2.
    """

    histogram: bool = False
    keep: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    split: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    shifts: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))

    def apply(self, values: np.ndarray, lengths: np.ndarray) -> Partial:
        """This pass's findings in one chunk's draws (``lengths``: its segments, for the moments)."""
        partial = Partial()
        if self.histogram:
            partial.moments = Moments.of(values, lengths)
        finite = values if np.isfinite(values).all() else values[np.isfinite(values)]
        partial.nonfinite = values.size - finite.size
        keys = sortable_keys(finite)
        if self.histogram and keys.size:
            partial.bins, partial.counts = _sparse_counts(keys >> np.uint64(64 - TOP_BITS))
            partial.low, partial.high = float(finite.min()), float(finite.max())
        if self.keep.size:
            partial.kept = finite[_inside(keys, self.keep)]
        if self.split.size:
            inside = _inside(keys, self.split)
            chosen = keys[inside]
            slot = np.searchsorted(self.split[::2], chosen, side="right") - 1
            sub = (chosen - self.split[::2][slot]) >> self.shifts[slot]
            partial.bins, partial.counts = _sparse_counts((slot.astype(np.uint64) << np.uint64(SPLIT_BITS)) | sub)
        return partial


@dataclass
class Partial:
    """One chunk's findings for one distribution; :meth:`StreamedDraws.absorb` merges them."""

    moments: Moments | None = None
    nonfinite: int = 0
    bins: np.ndarray | None = None
    counts: np.ndarray | None = None
    low: float = math.inf
    high: float = -math.inf
    kept: np.ndarray | None = None


def _sparse_counts(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ids (uint64) and how often each occurs."""
    if ids.size == 0:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    base = ids.min()
    counts = np.bincount((ids - base).astype(np.int64))
    present = np.flatnonzero(counts)
    return present.astype(np.uint64) + base, counts[present]


def _inside(keys: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Which keys fall in one of the flat sorted [lo, hi) ranges; a table of top bins screens first."""
    table = np.zeros(1 << TOP_BITS, dtype=bool)
    shift = np.uint64(64 - TOP_BITS)
    for lo, hi in ranges.reshape(-1, 2):
        table[int(lo >> shift) : int((hi - np.uint64(1)) >> shift) + 1] = True
    inside = table[keys >> shift]
    candidates = np.flatnonzero(inside)
    inside[candidates] = np.searchsorted(ranges, keys[candidates], side="right") % 2 == 1
    return inside


def _merge_counts(bins: list, counts: list) -> tuple[np.ndarray, np.ndarray]:
    if not bins:
        return np.empty(0, np.uint64), np.empty(0, np.int64)
    ids, where = np.unique(np.concatenate(bins), return_inverse=True)
    return ids, np.bincount(where, weights=np.concatenate(counts)).astype(np.int64)


class StreamedDraws(_Draws):
    """A distribution read in passes over chunks: see the module docstring. ``budget``: draws kept per pass."""

    def __init__(self, budget: int):
        self.budget = budget
        self.ready = False  # after the histogram pass
        self.wanted: set[int] = set()  # lo keys of bins whose draws the next pass must keep or split
        self.kept: dict[int, np.ndarray] = {}  # lo key -> draws of that bin, sorted
        self.moments, self.nonfinite, self.low, self.high = Moments(), 0, math.inf, -math.inf
        # this pass's findings so far
        self._bins: list[np.ndarray] = []
        self._counts: list[np.ndarray | None] = []
        self._kept: list = []
        self._count = 0

    @property
    def count(self) -> int:
        """Finite draws (non-finite ones are counted apart and make the mean NaN)."""
        self._ready()
        return self._count

    # --- passes ---------------------------------------------------------------------------------
    def plan(self) -> Plan | None:
        """What the next pass must do, or None when nothing is pending."""
        if not self.ready:
            return Plan(histogram=True)
        if not self.wanted:
            return None
        where = np.searchsorted(self.lo, np.array(sorted(self.wanted), dtype=np.uint64))
        counts = self.count_of[where]
        ranges = np.column_stack([self.lo[where], self.hi[where]])
        if counts.sum() <= self.budget:
            return Plan(keep=ranges.ravel())
        largest = np.sort(np.argsort(-counts, kind="stable")[:MAX_SPLITS])
        bits = np.ceil(np.log2((ranges[largest, 1] - ranges[largest, 0]).astype(float))).astype(np.int64)
        return Plan(split=ranges[largest].ravel(), shifts=np.maximum(bits - SPLIT_BITS, 0).astype(np.uint64))

    def absorb(self, partial: Partial) -> None:
        """Merge one chunk's findings (chunks may arrive in any order)."""
        if partial.moments is not None:
            self.moments.add(partial.moments)
            self.nonfinite += partial.nonfinite
            self.low, self.high = min(self.low, partial.low), max(self.high, partial.high)
        if partial.bins is not None:
            self._bins.append(partial.bins)
            self._counts.append(partial.counts)
            if len(self._bins) > 64:
                ids, counts = _merge_counts(self._bins, self._counts)
                self._bins, self._counts = [ids], [counts]
        if partial.kept is not None:
            self._kept.append(partial.kept)

    def finish(self, plan: Plan) -> None:
        """End a pass made with ``plan``: update the bins and what is known."""
        ids, counts = _merge_counts(self._bins, self._counts)
        if plan.histogram:
            shift = np.uint64(64 - TOP_BITS)
            self._set_bins(ids << shift, (ids + np.uint64(1)) << shift, counts)
            if self.low == self.high:  # every draw alike: one bin of one key
                key = sortable_keys(np.array([self.low]))
                self._set_bins(key, key + np.uint64(1), counts.sum(keepdims=True))
            self.ready = True
        if plan.keep.size:
            self._keep(plan.keep)
        if plan.split.size:
            self._split(plan, ids, counts)
        self._bins, self._counts, self._kept = [], [], []
        self.wanted = set()

    def _set_bins(self, lo: np.ndarray, hi: np.ndarray, counts: np.ndarray) -> None:
        order = np.argsort(lo, kind="stable")
        self.lo, self.hi, self.count_of = lo[order], hi[order], np.asarray(counts, dtype=np.int64)[order]
        self.ends = np.cumsum(self.count_of)
        self.starts = self.ends - self.count_of
        self._count = int(self.ends[-1]) if self.ends.size else 0
        self.single = (self.hi - self.lo) == 1
        self._update_known()

    def _update_known(self) -> None:
        self.known = self.single | np.isin(self.lo, np.fromiter(self.kept, np.uint64, len(self.kept)))

    def _keep(self, ranges: np.ndarray) -> None:
        keys = np.sort(sortable_keys(np.concatenate(self._kept))) if self._kept else np.empty(0, np.uint64)
        cuts = np.searchsorted(keys, ranges)
        values = key_values(keys)
        for lo, (a, b) in zip(ranges[::2].tolist(), cuts.reshape(-1, 2).tolist()):
            self.kept[lo] = values[a:b]
        self._update_known()

    def _split(self, plan: Plan, ids: np.ndarray, counts: np.ndarray) -> None:
        slot = (ids >> np.uint64(SPLIT_BITS)).astype(np.int64)
        sub = ids & np.uint64((1 << SPLIT_BITS) - 1)
        lo_split, hi_split = plan.split[::2], plan.split[1::2]
        new_lo = lo_split[slot] + (sub << plan.shifts[slot])
        new_hi = np.minimum(new_lo + (np.uint64(1) << plan.shifts[slot]), hi_split[slot])
        stay = ~np.isin(self.lo, lo_split)
        self._set_bins(
            np.concatenate([self.lo[stay], new_lo]),
            np.concatenate([self.hi[stay], new_hi]),
            np.concatenate([self.count_of[stay], counts]),
        )

    # --- reading --------------------------------------------------------------------------------
    def _ready(self) -> None:
        if not self.ready:
            raise Pending

    def _need(self, bins) -> None:
        self.wanted.update(int(k) for k in self.lo[np.unique(bins)])

    def request(self, ranks=(), hdi_level: float | None = None) -> None:
        if not self.ready or not self._count:
            return
        ranks = np.asarray(ranks, dtype=np.int64)
        bins = np.searchsorted(self.ends, ranks, side="right")
        self._need(bins[~self.known[bins]])
        if hdi_level is not None:
            self._need(self._hdi_candidates(hdi_level)[-1])

    def values(self, ranks) -> np.ndarray:
        self._ready()
        ranks = np.asarray(ranks, dtype=np.int64)
        if not self._count:
            return np.full(ranks.shape, math.nan)
        bins = np.searchsorted(self.ends, ranks, side="right")
        missing = bins[~self.known[bins]]
        if missing.size:
            self._need(missing)
            raise Pending
        out = np.empty(ranks.size)
        order = np.argsort(bins, kind="stable")
        groups, firsts = np.unique(bins[order], return_index=True)
        for j, a, b in zip(groups.tolist(), firsts.tolist(), [*firsts[1:].tolist(), order.size]):
            chosen = order[a:b]
            if self.single[j]:
                out[chosen] = key_values(self.lo[j : j + 1])[0]
            else:
                out[chosen] = self.kept[int(self.lo[j])][ranks[chosen] - self.starts[j]]
        return out

    def _rank(self, value: float, side: Literal["left", "right"]) -> int:
        self._ready()
        if not self._count:
            return 0
        key = sortable_keys(np.array([value]))[0]
        j = int(np.searchsorted(self.lo, key, side="right")) - 1
        if j < 0:
            return 0
        if key >= self.hi[j]:
            return int(self.ends[j])
        if self.single[j]:
            inside = value > key_values(self.lo[j : j + 1])[0] or (
                side == "right" and value == key_values(self.lo[j : j + 1])[0]
            )
            return int(self.ends[j] if inside else self.starts[j])
        if not self.known[j]:
            self._need([j])
            raise Pending
        return int(self.starts[j] + np.searchsorted(self.kept[int(self.lo[j])], value, side=side))

    def rank_below(self, value: float) -> int:
        return self._rank(value, "left")

    def rank_upto(self, value: float) -> int:
        return self._rank(value, "right")

    def _bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Lowest and highest value each bin can hold (its draws' own extremes when known)."""
        low = np.maximum(key_values(self.lo), self.low)
        high = np.minimum(key_values(self.hi - np.uint64(1)), self.high)
        for j in np.flatnonzero(self.known & ~self.single).tolist():
            kept = self.kept[int(self.lo[j])]
            low[j], high[j] = kept[0], kept[-1]
        return low, high

    def _hdi_candidates(self, level: float):
        """Runs [cut, stop) of start ranks that bin bounds cannot rule out for the HDI, the bins holding
        their low and high ends, the span, and the bins whose draws are still needed."""
        n = self._count
        span = int(np.floor(level * n))
        starts_possible = n - span
        cuts = np.unique(np.concatenate([[0], self.starts, self.starts - span]))
        cuts = cuts[(cuts >= 0) & (cuts < starts_possible)]
        stops = np.append(cuts[1:], starts_possible)
        low_bin = np.searchsorted(self.ends, cuts, side="right")
        high_bin = np.searchsorted(self.ends, cuts + span, side="right")
        low, high = self._bounds()
        least = np.maximum(low[high_bin] - high[low_bin], 0.0)
        most = high[high_bin] - low[low_bin]
        keep = least <= most.min()
        cuts, stops, low_bin, high_bin = cuts[keep], stops[keep], low_bin[keep], high_bin[keep]
        missing = np.concatenate([low_bin[~self.known[low_bin]], high_bin[~self.known[high_bin]]])
        return cuts, stops, low_bin, high_bin, span, missing

    def hdi(self, level: float) -> tuple[float, float]:
        """Exact ``arviz.hdi``: bin bounds rule out most start ranks; the draws of the bins that the
        remaining candidates touch are kept and their widths computed exactly."""
        self._ready()
        if not self._count:
            return math.nan, math.nan
        cuts, stops, low_bin, high_bin, span, missing = self._hdi_candidates(level)
        if missing.size:
            self._need(missing)
            raise Pending
        alike = self.single[low_bin] & self.single[high_bin]  # constant width: its first start suffices
        stops = np.where(alike, cuts + 1, stops)
        ranks = np.concatenate([np.arange(a, b) for a, b in zip(cuts.tolist(), stops.tolist())])
        widths = self.values(ranks + span) - self.values(ranks)
        best = int(ranks[np.argmin(widths)])
        low_value, high_value = self.values([best, best + span])
        return float(low_value), float(high_value)

    @property
    def mean(self) -> float:
        self._ready()
        return self.moments.mean if not self.nonfinite else math.nan

    @property
    def mean_mcse(self) -> float:
        self._ready()
        return self.moments.mean_mcse
