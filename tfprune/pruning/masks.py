"""Mask math as plain functions over tensors (NumPy arrays work too): unit norms and masks.

A "unit" is an output neuron of a Dense layer or an output filter of a Conv2D layer: the last
axis of its kernel. Kept here, free of Keras layers, so tests can use tiny hand-computed arrays
and the dynamic pruners can share them.
"""

import numpy as np

from tfprune.keras import tf


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


def units_kept(kernel):
    """Number of units with at least one non-zero weight (NumPy)."""
    kernel = np.asarray(kernel)
    return int(np.count_nonzero(np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)))
