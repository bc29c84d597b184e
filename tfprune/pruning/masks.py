"""Mask and norm math as plain functions over arrays: the one home of it.

A "unit" is an output neuron of a Dense layer or an output filter of a Conv2D layer: the last
axis of its kernel. A "channel" is a column of a channel group's matrix (channels.GroupSlot):
the same column math, so every ``granularity`` below is "weight" or a column granularity. ``unit_norms`` / ``unit_mask`` run inside the training graph (TensorFlow
ops); the NumPy functions below serve the deciding callbacks (pruning/dynamic.py), statistics and
tests. Free of Keras layers, so tests can use tiny hand-computed arrays.
"""

import math

import numpy as np

from tfprune.keras import tf


# --- in the graph (TensorFlow) ------------------------------------------------------------------

def unit_norms(kernel):
    """L2 norm of each unit's weights: over every axis of ``kernel`` but the last."""
    kernel = tf.convert_to_tensor(kernel)
    axes = list(range(len(kernel.shape) - 1))
    return tf.sqrt(tf.reduce_sum(tf.square(kernel), axis=axes))


def keep_count(total, sparsity):
    """How many of ``total`` items survive ``sparsity`` (rounded, at least one); a tensor."""
    total_f = tf.cast(total, tf.float32)
    keep = tf.math.round(total_f * (1.0 - tf.cast(sparsity, tf.float32)))
    return tf.cast(tf.maximum(keep, 1.0), tf.int32)


def unit_mask(kernel, sparsity):
    """(threshold, mask) keeping the units with the largest L2 norms.

    ``mask`` has the kernel's shape (1 for kept units, 0 for pruned ones); ``threshold`` is the
    smallest kept norm. Ties are broken by unit index, so exactly keep_count units survive.
    """
    kernel = tf.convert_to_tensor(kernel)
    norms = unit_norms(kernel)
    units = tf.size(norms)
    keep = keep_count(units, sparsity)
    values, indices = tf.math.top_k(norms, k=units)
    kept = tf.scatter_nd(tf.expand_dims(indices[:keep], 1), tf.ones([keep], kernel.dtype),
                         tf.shape(norms))
    mask = tf.broadcast_to(kept, tf.shape(kernel))
    return tf.gather(values, keep - 1), mask


def units_of_mask(mask):
    """Per-unit 0/1 vector from a kernel-shaped unit mask (a unit is kept if any weight is)."""
    mask = tf.convert_to_tensor(mask)
    axes = list(range(len(mask.shape) - 1))
    return tf.reduce_max(mask, axis=axes)


COLUMN_GRANULARITIES = ("unit", "channel")


def by_column(granularity):
    """True when ``granularity`` prunes whole columns (units, channels), False for weights."""
    return granularity in COLUMN_GRANULARITIES


# --- on NumPy arrays ------------------------------------------------------------------------------

def _columns(array):
    array = np.asarray(array)
    return array.reshape(-1, array.shape[-1])


def column_norms(kernel, mask=None):
    """Per-unit L2 norms of the (masked) kernel."""
    kernel = np.asarray(kernel, np.float64)
    if mask is not None:
        kernel = kernel * np.asarray(mask)
    return np.sqrt(np.sum(_columns(kernel) ** 2, axis=0))


def mean_column_norm(kernel, mask=None):
    """Mean over the kept units of their L2 norm (0 when nothing is kept)."""
    norms = column_norms(kernel, mask)
    kept = norms[norms > 0]
    return float(kept.mean()) if kept.size else 0.0


def kept_units(mask):
    """Indices of the units a kernel-shaped mask keeps (any weight of the unit non-zero)."""
    return np.flatnonzero(np.abs(_columns(mask)).max(axis=0) > 0)


def units_kept(kernel):
    """Number of units with at least one non-zero weight."""
    return int(kept_units(kernel).size)


def kept_and_total(mask, granularity):
    """(kept, total) units or weights of a kernel-shaped mask."""
    mask = np.asarray(mask)
    if by_column(granularity):
        return int(kept_units(mask).size), int(mask.shape[-1])
    return int(np.count_nonzero(mask)), int(mask.size)


def kept_magnitudes(kernel, mask, granularity):
    """The kept entries' magnitudes: unit L2 norms, or the weights themselves."""
    if by_column(granularity):
        norms = column_norms(kernel, mask)
        return norms[norms > 0]
    return (np.asarray(kernel) * mask)[np.asarray(mask) > 0]


def layer_sparsity(mask, granularity):
    """Fraction of units (``granularity='unit'``) or weights pruned by ``mask``."""
    mask = np.asarray(mask)
    if by_column(granularity):
        return 1.0 - kept_units(mask).size / mask.shape[-1]
    return 1.0 - float(mask.mean())


def low_norm_prune(kernel, mask, granularity, norm_fraction, max_step, max_sparsity):
    """(new mask, candidates) for one event: prune what falls below ``norm_fraction`` of the mean
    column norm, at most ``max_step`` of the layer, never above ``max_sparsity``.

    unit: a unit is a candidate when its norm < fraction x the layer's mean column norm.
    weight: a weight is a candidate when |w| < fraction x mean column norm / sqrt(fan-in), the
    magnitude each weight would have if the column's norm were spread evenly.
    """
    kernel = np.asarray(kernel, np.float64)
    mask = np.asarray(mask, np.float64).copy()
    mean = mean_column_norm(kernel, mask)
    if by_column(granularity):
        norms = column_norms(kernel, mask)
        kept = kept_units(mask)
        scores, total = norms[kept], mask.shape[-1]
        candidates = kept[scores < norm_fraction * mean]
        order = candidates[np.argsort(norms[candidates], kind="stable")]
        pruned_now = total - kept.size
    else:
        flat_w, flat_m = (kernel * mask).ravel(), mask.ravel()
        fan_in = int(np.prod(kernel.shape[:-1]))
        threshold = norm_fraction * mean / math.sqrt(fan_in)
        kept = np.flatnonzero(flat_m > 0)
        candidates = kept[np.abs(flat_w[kept]) < threshold]
        order = candidates[np.argsort(np.abs(flat_w[candidates]), kind="stable")]
        total, pruned_now = flat_m.size, flat_m.size - kept.size
    budget = min(int(math.floor(max_step * total)),
                 int(math.floor(max_sparsity * total)) - pruned_now)
    chosen = order[:max(budget, 0)]
    if by_column(granularity):
        mask[..., chosen] = 0
    else:
        flat = mask.ravel()
        flat[chosen] = 0
        mask = flat.reshape(mask.shape)
    return mask, int(candidates.size)


def lowest_scores_mask(scores, mask, granularity, count):
    """Zero the ``count`` kept entries (units or weights) with the lowest ``scores``."""
    mask = np.asarray(mask, np.float64).copy()
    scores = np.asarray(scores, np.float64)
    if by_column(granularity):
        unit_scores = _columns(scores).sum(axis=0)
        kept = kept_units(mask)
        chosen = kept[np.argsort(unit_scores[kept], kind="stable")[:count]]
        mask[..., chosen] = 0
        return mask
    flat_m = mask.ravel()
    kept = np.flatnonzero(flat_m > 0)
    chosen = kept[np.argsort(scores.ravel()[kept], kind="stable")[:count]]
    flat_m[chosen] = 0
    return flat_m.reshape(mask.shape)
