"""Channel counts chosen by the time they cost (no TensorFlow): the latency-aware selection.

Given each prunable group's channel scores and a cost model that predicts the latency of the
model at any kept counts (tflite/latency.py: ``seconds(counts)``; ``kernel_seconds(names,
counts, at)`` for the kernels a group touches, in the same units, in the model at the counts
``at``, ``widths.touching``),
``latency_counts`` lowers one group at a time to its next allowed count, always the move that
loses the least importance per second saved (HALP, Shen et al. 2022, as a greedy over the step
boundaries; NetAdapt's tables as the costs), until the predicted latency is at most the
target; once single moves reach it, the last is the one of them losing the least importance
(the greedy's usual fix for a covering budget: a coarse step would overshoot it). A move's
saving is taken from every kernel of the group, on both sides (its producers' outputs and its
consumers' inputs), and recomputed after every move for the groups sharing kernels with it.
Importance is the group's scores over their mean (as the global selection ranks them), so
groups of different sizes and scales compare.

Allowed counts: multiples of ``round_to`` (given), else of the cost model's step (the counts
the kernels run fast on) for groups at least twice that wide, else of a quarter of the
group; never fewer than ``max_per_group`` allows.
"""

import heapq
import math

import numpy as np

from tfprune.errors import TfpruneError


def format_time(seconds):
    """A latency as people read it: "31.4 us" below a millisecond, "2.345 ms" above."""
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-3 else f"{seconds * 1e3:.3f} ms"


def granularity(width, round_to, step):
    if round_to > 1:
        return round_to
    if step > 1 and width >= 2 * step:
        return step
    return max(1, width // 4)


def lowest_count(width, max_per_group, quantum):
    """The fewest channels a group of ``width`` may keep: at least (1 - max_per_group) of it
    (and 1), rounded up to a multiple of ``quantum`` (at most the width)."""
    floor = max(1, width - int(math.floor(max_per_group * width)))
    return min(width, int(math.ceil(floor / quantum) * quantum))


def smallest_counts(widths, max_per_group, round_to, step):
    """{group id: its lowest count}: the smallest model the selection may reach."""
    return {gid: lowest_count(w, max_per_group, granularity(w, round_to, step))
            for gid, w in widths.items()}


def _next_count(count, low, quantum):
    below = ((count - 1) // quantum) * quantum
    return below if below >= low else None


def latency_counts(widths, scores, cost, target_seconds, max_per_group=0.9, round_to=1,
                   step=1, log=None):
    """{group id: kept count} whose predicted latency is at most ``target_seconds``: see the
    module docstring. ``widths`` {group id: width}; ``scores`` {group id: per-channel
    scores}. A TfpruneError when even the smallest allowed model is predicted slower."""
    counts = dict(widths)
    quanta = {g: granularity(w, round_to, step) for g, w in widths.items()}
    lows = {g: lowest_count(w, max_per_group, quanta[g]) for g, w in widths.items()}
    smallest = cost.seconds(lows)
    if smallest > target_seconds:
        raise TfpruneError(
            f"latency budget {format_time(target_seconds)} is below what the smallest allowed "
            f"model reaches ({format_time(smallest)} predicted, every group at its fewest "
            f"channels: max_per_group={max_per_group:g}, multiples of "
            f"{round_to if round_to > 1 else step}); "
            f"allowed: a target above {smallest / cost.seconds({}):.3f} of the dense latency")
    # Importance lost by keeping the top k: prefix sums of each group's normalized scores.
    prefix = {}
    for g in widths:
        s = np.asarray(scores[g], np.float64)
        mean = s.mean() if s.size and s.mean() > 0 else 1.0
        prefix[g] = np.concatenate([[0.0], np.cumsum(np.sort(s / mean)[::-1])])
    touching = {g: set(cost.widths.touching.get(g, ())) for g in widths}
    neighbours = {g: [h for h in widths if h != g and touching[g] & touching[h]]
                  for g in widths}

    def move(g):
        new = _next_count(counts[g], lows[g], quanta[g])
        if new is None:
            return None
        before = cost.kernel_seconds(touching[g], counts)
        after = cost.kernel_seconds(touching[g], {**counts, g: new}, at=counts)
        saved = before - after
        lost = prefix[g][counts[g]] - prefix[g][new]
        return (lost / saved if saved > 0 else math.inf, new, saved, lost)

    version = {g: 0 for g in widths}
    heap = []
    current = {}  # group -> its next move (ratio, new count, seconds saved, importance lost)

    def push(g):
        version[g] += 1
        found = move(g)
        current.pop(g, None)
        if found is not None:
            current[g] = found
            heapq.heappush(heap, (found[0], g, version[g], found[1]))

    for g in widths:
        push(g)
    total = cost.seconds(counts)
    moves = 0
    while total > target_seconds and heap:
        # The last move: of those that reach the target alone, the one losing the least
        # importance, not the best per second (which may overshoot the budget by a coarse step).
        finishing = [g for g, m in current.items() if total - m[2] <= target_seconds]
        if finishing:
            g = min(finishing, key=lambda h: (current[h][3], h))
            new = current[g][1]
        else:
            ratio, g, seen, new = heapq.heappop(heap)
            if seen != version[g] or math.isinf(ratio):
                continue  # stale (a neighbour moved since), or saving nothing
        counts[g] = new
        moves += 1
        total = cost.seconds(counts)
        for h in [g] + neighbours[g]:
            push(h)
    if log:
        log(f"latency selection: {moves} move(s), predicted {format_time(total)} "
            f"(target {format_time(target_seconds)})")
    return counts
