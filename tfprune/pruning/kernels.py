"""What weight pruning zeroes in a layer: its kernels, and which of their axes are its inputs.

The one owner of "which variables of this layer does weight pruning mask": a Dense's or a
convolution's kernel, an Embedding's table, a MultiHeadAttention's four projection kernels
(query, key, value: (width, heads, key_dim); output: (heads, value_dim, width)), the weights
tfmot's prune registry names for those classes. The one-shot masks, the wrappers' m:n masks,
the per-layer statistics and the allocations read them from here.

m:n sparsity (2:4) zeroes m of every n consecutive weights along a kernel's input (reduction)
axis, as sparse tensor cores and tfmot's own m:n masks do. tfmot builds them for kernels of rank
2 and 4 only; here a kernel of any rank is seen as the matrix (inputs, outputs) its input axes
make (``as_matrix``), which for a Dense or Conv2D kernel is tfmot's own layout, so the masks are
tfmot's; a Conv1D kernel (width, in, out) and an attention projection get the same rule.
"""

import numpy as np

from tfprune.keras import keras


def _projections(layer):
    from tfprune.pruning.groups import attention_projections  # groups is heavier; keep it lazy
    return attention_projections(layer)


WEIGHT_PRUNABLE = "Dense, Conv1D, Conv2D, Embedding, MultiHeadAttention"


def is_weight_prunable(layer):
    """A Dense, Conv1D, Conv2D (not a transposed or depthwise one: Conv1DTranspose is in no
    tfmot registry, so wrapping it fails; DepthwiseConv2D registers no prunable weight),
    Embedding or MultiHeadAttention (exactly the class: a subclass may compute otherwise)."""
    if type(layer) is keras.layers.MultiHeadAttention or isinstance(layer, keras.layers.Embedding):
        return True
    return isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)) \
        and not isinstance(layer, (keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose,
                                   keras.layers.DepthwiseConv2D))


def pruned_weights(layer):
    """[(variable, input axes)] that weight pruning masks in ``layer``: the number of leading
    axes of the variable that are its inputs (None for an Embedding table, which is looked up,
    not multiplied)."""
    if isinstance(layer, keras.layers.MultiHeadAttention):
        dense = _projections(layer)
        return [(dense[name].kernel, 1) for name in ("query", "key", "value")] + \
            [(dense["output"].kernel, 2)]
    if isinstance(layer, keras.layers.Embedding):
        return [(layer.embeddings, None)]
    return [(layer.kernel, len(layer.kernel.shape) - 1)]


def size(layer):
    """The number of weights weight pruning masks in ``layer``."""
    return int(sum(np.prod(w.shape) for w, _ in pruned_weights(layer)))


def m_by_n_problem(layer, m_by_n):
    """Why ``layer`` cannot be pruned m:n (a sentence), or None: an Embedding has no product to
    speed up; every kernel's innermost input axis must divide into groups of n."""
    if isinstance(layer, keras.layers.Embedding):
        return "an embedding table is looked up, not multiplied: m:n sparsity does not apply"
    for weight, axes in pruned_weights(layer):
        if not axes or int(weight.shape[axes - 1]) % m_by_n[1]:
            return f"input depth not divisible by {m_by_n[1]} (needed for {m_by_n[0]}:{m_by_n[1]})"
    return None


def as_matrix(shape, input_axes):
    """The 2-D shape (inputs, outputs) of a kernel of ``shape`` whose ``input_axes`` leading
    axes are its inputs; None where tfmot takes the kernel as it is (rank 2 or 4)."""
    if len(shape) in (2, 4):
        return None
    shape = [int(d) for d in shape]
    return [int(np.prod(shape[:input_axes])), int(np.prod(shape[input_axes:]))]


def kernel_arrays(model, prefix=""):
    """{name: NumPy array} of every kernel weight pruning masks in ``model`` (``pruned_weights``
    of each weight-prunable layer; a nested model's as "inner/layer", an attention's four as
    "layer/query" ...; a layer inside a wrapper, pruning's or tfmot's, read through it): what
    the compression stages count non-zeros and unique values of."""
    arrays = {}
    for layer in model.layers:
        inner = layer
        while not is_weight_prunable(inner) and hasattr(inner, "layer"):
            inner = inner.layer  # a wrapper: the layer it wraps
        if isinstance(inner, keras.Model):
            arrays.update(kernel_arrays(inner, f"{prefix}{inner.name}/"))
        elif is_weight_prunable(inner):
            weights = pruned_weights(inner)
            names = ("query", "key", "value", "output") if len(weights) == 4 else ("",)
            for (weight, _), part in zip(weights, names):
                arrays[prefix + layer.name + (f"/{part}" if part else "")] = \
                    np.asarray(weight.numpy())
    return arrays
