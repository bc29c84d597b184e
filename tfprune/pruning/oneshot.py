"""One-shot pruning: masks applied once, at a sparsity, with no fine-tuning.

The one home of "zero this layer to sparsity s now", shared by one-shot pruning of a whole model
(``method_objects.prune_once``: ``fine_tune_epochs=0`` in the jobs) and the sensitivity curves
(pruning/sensitivity.py: one layer at a time, restored after each point).

- weight: per layer, the ``round(s x size)`` kernel weights of lowest magnitude (tfmot's rule:
  its threshold is the k-th largest magnitude); with m:n, the m of lowest magnitude in every n
  consecutive input channels (tfmot's own m:n mask, the one fine-tuning applies).
- unit: per layer, the ``round(s x units)`` units of lowest L2 norm (masks.unit_mask, the rule the
  unit wrapper applies during fine-tuning), with their bias and the gamma/beta of a BatchNorm that
  directly follows, so the unit outputs exactly zero and shrink can remove it.
- channel (in method_objects.ChannelMethod): coupled channel groups (pruning/groups.py) by a
  criterion, ``channels.choose``.
"""

import numpy as np

from tfprune.errors import TfpruneError
from tfprune.pruning import core
from tfprune.pruning import kernels
from tfprune.pruning import wrapper
from tfprune.pruning import masks as masks_lib

def magnitude_mask(kernel, sparsity):
    """0/1 array keeping the ``size - round(sparsity x size)`` largest magnitudes (at least
    one); ties are broken by position, so exactly that many survive."""
    kernel = np.asarray(kernel)
    flat = np.abs(kernel).ravel()
    keep = max(1, int(round(flat.size * (1.0 - float(sparsity)))))
    mask = np.zeros(flat.size, kernel.dtype)
    mask[np.argsort(-flat, kind="stable")[:keep]] = 1
    return mask.reshape(kernel.shape)


def m_by_n_mask(kernel, m_by_n, input_axes=None):
    """0/1 array zeroing the ``m`` smallest magnitudes of every ``n`` consecutive inputs
    (``m_by_n`` = (m, n)) of ``kernel`` (its ``input_axes`` leading axes; by default all but the
    last), the mask the fine-tuning wrapper applies (wrapper.m_by_n_mask)."""
    kernel = np.asarray(kernel)
    axes = kernel.ndim - 1 if input_axes is None else input_axes
    return np.asarray(wrapper.m_by_n_mask(kernel, m_by_n, axes), dtype=kernel.dtype)


def _unit_vector(kernel, sparsity):
    _, mask = masks_lib.unit_mask(kernel, sparsity)
    return np.asarray(masks_lib.units_of_mask(mask))


def mask_layer(model, name, granularity, sparsity, m_by_n=None):
    """Zero layer ``name`` of ``model`` in place to ``sparsity`` (weight or unit; weight in
    ``m_by_n`` blocks, given); return a function that restores every variable it changed."""
    layer = model.get_layer(name)
    if granularity == "weight":
        # Each kernel to the sparsity on its own, as tfmot's wrapper masks each of its weights.
        saved = []
        for variable, input_axes in kernels.pruned_weights(layer):
            value = variable.numpy()
            saved.append((variable, value))
            variable.assign(value * (m_by_n_mask(value, m_by_n, input_axes) if m_by_n
                                     else magnitude_mask(value, sparsity)))
    elif granularity == "unit":
        kernel = layer.kernel.numpy()
        saved = [(layer.kernel, kernel)]
        unit = _unit_vector(kernel, sparsity).astype(kernel.dtype)
        layer.kernel.assign(kernel * unit)
        tied = [layer.bias] if getattr(layer, "bias", None) is not None else []
        for bn in core._following_batchnorm(model, name):
            tied += [v for v in (bn.gamma, bn.beta) if v is not None]
        for variable in tied:
            value = variable.numpy()
            saved.append((variable, value))
            variable.assign(value * unit.astype(value.dtype))
    else:
        raise TfpruneError(f"`granularity` must be weight or unit for a layer, got "
                           f"{granularity!r}")

    def restore():
        for variable, value in saved:
            variable.assign(value)

    return restore


def layer_kernels(model, names):
    """{layer: [its pruned kernels as arrays]} (what allocation.global_magnitude ranks)."""
    return {name: [v.numpy() for v, _ in kernels.pruned_weights(model.get_layer(name))]
            for name in names}


def layer_weights(model, names):
    """{layer: the size of its pruned kernels}: what a layer's sparsity is a fraction of."""
    return {name: kernels.size(model.get_layer(name)) for name in names}
