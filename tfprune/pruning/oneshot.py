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
from tensorflow_model_optimization.python.core.sparsity.keras import pruning_utils

from tfprune.errors import TfpruneError
from tfprune.keras import tf
from tfprune.pruning import core
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


def m_by_n_mask(kernel, m_by_n):
    """0/1 array zeroing the ``m`` smallest magnitudes of every ``n`` consecutive input channels
    (``m_by_n`` = (m, n)), by tfmot's pruning_utils as its wrapper does."""
    weights = tf.convert_to_tensor(kernel)
    mask = pruning_utils.generate_m_by_n_mask(pruning_utils.weights_rearrange(weights),
                                              tuple(m_by_n))
    return np.asarray(pruning_utils.m_by_n_sparsity_mask_prepare(mask, weights.shape),
                      dtype=np.asarray(kernel).dtype)


def _unit_vector(kernel, sparsity):
    _, mask = masks_lib.unit_mask(kernel, sparsity)
    return np.asarray(masks_lib.units_of_mask(mask))


def mask_layer(model, name, granularity, sparsity, m_by_n=None):
    """Zero layer ``name`` of ``model`` in place to ``sparsity`` (weight or unit; weight in
    ``m_by_n`` blocks, given); return a function that restores every variable it changed."""
    layer = model.get_layer(name)
    kernel = layer.kernel.numpy()
    saved = [(layer.kernel, kernel)]
    if granularity == "weight" and m_by_n:
        layer.kernel.assign(kernel * m_by_n_mask(kernel, m_by_n))
    elif granularity == "weight":
        layer.kernel.assign(kernel * magnitude_mask(kernel, sparsity))
    elif granularity == "unit":
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


def layer_weights(model, names):
    """{layer: kernel size}: what a layer's sparsity is a fraction of."""
    return {name: int(np.prod(model.get_layer(name).kernel.shape)) for name in names}
