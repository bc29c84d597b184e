"""Layer-wise sparsity: per-layer targets that together meet one global sparsity.

``LAYER_SPARSITY`` names the ways (the value of ``--layer_sparsity``; anything else is the path of
a file of per-layer targets):

- uniform: every pruned layer at the target (what tfmot does).
- auto: from one-shot sensitivity curves (pruning/sensitivity.py): every layer is pruned as far
  as it can go at one common accuracy loss, the loss chosen so that the layers' sparsities,
  weighted by their kernel sizes, meet the global target (``equalize``; the library call takes
  any weights, FLOPs for a FLOPs target); or each layer as far as an allowed loss
  (``within_loss``, a library call).
- global: one magnitude threshold over all pruned layers (weights by |w|; units by their RMS
  norm, so wide and narrow layers compare), read off as per-layer targets.

The per-layer targets are then applied by the existing methods and schedules (weight and unit
pruning; ``LayerOptions.layer_sparsity``). Pure functions of arrays and dicts, except
``read_file``.
"""

import csv
import json
import os

import numpy as np

from tfprune import checks
from tfprune.errors import TfpruneError

LAYER_SPARSITY = ("uniform", "auto", "global")

# 0-99%: the grid of the sensitivity curves (pruning/sensitivity.py), of the sensitivity job
# and of ``layer_sparsity="auto"``.
GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.99)


def check_grid(sparsities):
    """Sorted, distinct sparsities in [0, 1), starting at 0 (the unpruned reference)."""
    checks.check_not_empty("sparsities", sparsities, "give values in [0, 1)")
    values = sorted({checks.check_sparsity("sparsities", s) for s in sparsities} | {0.0})
    if len(values) < 2:
        raise TfpruneError(f"`sparsities` must hold a value above 0, got {list(sparsities)}")
    return tuple(values)


def is_named(value):
    return value in LAYER_SPARSITY


def monotone_losses(accuracies, base=None):
    """Accuracy loss at each grid point, made non-decreasing (a sparser layer never counts as
    better: noise of a few images must not make 0.9 look safer than 0.8)."""
    accuracies = np.asarray(accuracies, np.float64)
    base = accuracies[0] if base is None else base
    return np.maximum.accumulate(np.maximum(base - accuracies, 0.0))


def sparsity_at_loss(sparsities, losses, level):
    """The largest sparsity whose (interpolated) loss is at most ``level``."""
    sparsities = np.asarray(sparsities, np.float64)
    losses = np.asarray(losses, np.float64)
    within = np.nonzero(losses <= level + 1e-12)[0]
    if not within.size:
        return float(sparsities[0])
    i = int(within[-1])
    if i == len(sparsities) - 1:
        return float(sparsities[-1])
    step = losses[i + 1] - losses[i]
    fraction = 0.0 if step <= 0 else min(1.0, (level - losses[i]) / step)
    return float(sparsities[i] + fraction * (sparsities[i + 1] - sparsities[i]))


def global_sparsity(layer_sparsity, weights):
    """The sparsity over all the layers' kernels of per-layer ``layer_sparsity`` ({layer:
    sparsity}), each layer weighted by ``weights`` (kernel sizes, or FLOPs)."""
    total = sum(weights[name] for name in layer_sparsity)
    return sum(s * weights[name] for name, s in layer_sparsity.items()) / total if total else 0.0


def within_loss(curves, sparsities, max_loss):
    """{layer: sparsity}: each layer as sparse as it can be within ``max_loss`` accuracy."""
    checks.check_non_negative("max_loss", max_loss)
    return {name: sparsity_at_loss(sparsities, monotone_losses(acc), max_loss)
            for name, acc in curves.items()}


def equalize(curves, sparsities, weights, target):
    """{layer: sparsity} meeting ``target`` (weighted by ``weights``: each layer's kernel size or
    FLOPs) at one common accuracy loss, found by bisection. Where the layers take more than
    the target at no measured loss at all, that free room is shared in proportion."""
    target = checks.check_sparsity("target_sparsity", target)
    missing = sorted(set(curves) - set(weights))
    if missing:
        raise TfpruneError(f"no weight count for the layers {', '.join(missing)}")
    losses = {name: monotone_losses(acc) for name, acc in curves.items()}

    def at(level):
        return {name: sparsity_at_loss(sparsities, loss, level) for name, loss in losses.items()}

    top = max(float(loss[-1]) for loss in losses.values())
    if global_sparsity(at(top), weights) < target - 1e-9:
        raise TfpruneError(
            f"`target_sparsity` {target:g} cannot be met layer-wise: every layer at the grid's "
            f"largest sparsity ({max(sparsities):g}) gives {global_sparsity(at(top), weights):.4f}")
    free = at(0.0)
    achieved = global_sparsity(free, weights)
    if achieved >= target:
        return {name: s * target / achieved if achieved else 0.0 for name, s in free.items()}
    low, high = 0.0, top
    for _ in range(60):
        middle = (low + high) / 2
        if global_sparsity(at(middle), weights) < target:
            low = middle
        else:
            high = middle
    allocation = at(high)
    # At a flat stretch of a curve the sparsity jumps at one loss level, so the level found can
    # overshoot the target; trim every layer alike to the exact target.
    scale = target / global_sparsity(allocation, weights)
    return {name: min(s * scale, max(sparsities)) for name, s in allocation.items()}


def global_magnitude(layer_kernels, target, granularity):
    """{layer: sparsity} of one threshold over the layers of ``layer_kernels`` ({layer: [its
    pruned kernels as arrays]}, oneshot.layer_kernels; a unit-pruned layer has one, its units
    on the last axis): the lowest-magnitude weights (or lowest-RMS-norm units, each counting
    its kernel weights) of all layers together, up to ``target`` of their weights; every layer
    keeps at least one weight (unit), which can leave the total a little under the target when
    a whole layer falls below the threshold."""
    target = checks.check_sparsity("target_sparsity", target)
    scores, counts, owners, sizes, limits = [], [], [], [], []
    layers = list(layer_kernels)
    for index, name in enumerate(layers):
        arrays = [np.asarray(k, np.float64) for k in layer_kernels[name]]
        if granularity == "weight":
            values, per_item = np.concatenate([np.abs(k).ravel() for k in arrays]), 1.0
        else:
            kernel, = arrays
            columns = kernel.reshape(-1, kernel.shape[-1])
            values, per_item = np.sqrt(np.mean(columns ** 2, axis=0)), float(columns.shape[0])
        total = sum(k.size for k in arrays)
        scores.append(values)
        counts.append(np.full(values.size, per_item))
        owners.append(np.full(values.size, index))
        sizes.append(total)
        limits.append(total - per_item)
    scores, counts, owners = map(np.concatenate, (scores, counts, owners))
    order = np.argsort(scores, kind="stable")
    spent = np.cumsum(counts[order])
    # Items whose cumulative count, half of their own included, is within the budget.
    taken = order[spent - counts[order] / 2 <= target * counts.sum()]
    removed = np.bincount(owners[taken], weights=counts[taken], minlength=len(layers))
    return {name: float(min(removed[i], limits[i]) / sizes[i]) for i, name in enumerate(layers)}


def read_file(path):
    """{layer: sparsity} from a JSON object ({"conv2": 0.8, ...}; a sensitivity job's
    layer_sparsity_*.json holds one under "layer_sparsity") or a CSV with columns layer,
    sparsity. Values are checked; layer names are checked against the model by the caller."""
    checks.check_file("layer_sparsity", path, f"one of {', '.join(LAYER_SPARSITY)} or a JSON / "
                      "CSV file of per-layer sparsities")
    try:
        if path.endswith(".csv"):
            with open(path, newline="") as handle:
                rows = list(csv.DictReader(handle))
            if rows and not {"layer", "sparsity"} <= set(rows[0]):
                raise ValueError(f"columns {', '.join(rows[0])}; expected layer, sparsity")
            values = {row["layer"]: float(row["sparsity"]) for row in rows}
        else:
            with open(path) as handle:
                values = json.load(handle)
            if isinstance(values, dict) and isinstance(values.get("layer_sparsity"), dict):
                values = values["layer_sparsity"]
            if not isinstance(values, dict):
                raise ValueError("expected a JSON object of layer: sparsity")
    except (ValueError, OSError, KeyError) as error:
        raise TfpruneError(f"`layer_sparsity` file {path!r} cannot be read: {error}") from None
    if not values:
        raise TfpruneError(f"`layer_sparsity` file {path!r} names no layer")
    return {str(name): checks.check_sparsity(f"layer_sparsity[{name!r}] in {os.path.basename(path)}",
                                             value) for name, value in values.items()}


def check_layers(layer_sparsity, prunable, model_name, source):
    """Every layer named in ``layer_sparsity`` is one of ``prunable``, or a clear error."""
    unknown = [name for name in layer_sparsity if name not in prunable]
    if unknown:
        raise TfpruneError(f"{source} names layers that model {model_name!r} does not have or "
                           f"cannot prune: {', '.join(unknown)}; prunable layers: "
                           f"{', '.join(prunable)}")
