"""Sparsity, non-zeros, FLOPs, compression ratio and theoretical speedup.

Definitions follow ShrinkBench (Blalock et al. 2020): compression ratio = parameters / non-zero
parameters; theoretical speedup = FLOPs / non-zero FLOPs. FLOPs here are the multiply-accumulates
of the Dense and convolution kernels (out_h x out_w x kernel size for a convolution; both kernels
of a separable one; in_h x in_w x kernel size for a transposed one), the layers that hold nearly
all of the compute; and of a MultiHeadAttention: its four projections at the positions they read
(query and output at the query's, key and value at the key's) plus its two products, the scores
QK^T (query positions x key positions x heads x key_dim) and the weighted sum of the values
(query positions x key positions x heads x value_dim). The non-zero FLOPs count only non-zero
kernel weights (and the products whole: they have no weights).
"""

import numpy as np

from tfprune.keras import check_model, keras
from tfprune.pruning import masks
from tfprune.pruning.unit import PruneLowMagnitude

L = keras.layers
_KERNEL_LAYERS = (L.Dense, L.Conv1D, L.Conv2D, L.DepthwiseConv1D, L.DepthwiseConv2D,
                  L.SeparableConv1D, L.SeparableConv2D, L.Conv1DTranspose, L.Conv2DTranspose)


def _positions(shape):
    shape = shape[0] if isinstance(shape, list) else shape
    return int(np.prod(shape[1:-1])) if len(shape) > 2 else 1


def _attention_parts(layer):
    """[(kernel, positions)] of a MultiHeadAttention's projections and the MACs of its two
    products (scores and the weighted values), per example."""
    from tfprune.pruning.groups import attention_projections

    dense = attention_projections(layer)
    queries, keys = _positions(layer._query_shape), _positions(layer._key_shape)
    heads, key_dim = layer._num_heads, layer._key_dim
    value_dim = layer._value_dim or key_dim
    parts = [(dense["query"].kernel, queries), (dense["key"].kernel, keys),
             (dense["value"].kernel, keys), (dense["output"].kernel, queries)]
    return parts, queries * keys * heads * (key_dim + value_dim)


def _parts(layer):
    """(the layer, [(kernel, positions it is applied at)], its units' axis) of a kernel layer,
    or (layer, None, None): a separable convolution has two kernels; a transposed one is
    applied at every input position."""
    inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
    if not isinstance(inner, _KERNEL_LAYERS):
        return inner, None, None
    out = _positions(layer.output_shape)
    if isinstance(inner, (L.SeparableConv1D, L.SeparableConv2D)):
        return inner, [(inner.depthwise_kernel, out), (inner.pointwise_kernel, out)], -1
    if isinstance(inner, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        return inner, [(inner.depthwise_kernel, out)], -2
    if isinstance(inner, (L.Conv1DTranspose, L.Conv2DTranspose)):
        return inner, [(inner.kernel, _positions(layer.input_shape))], -2
    return inner, [(inner.kernel, out)], -1


def layer_table(model):
    """One row per Dense/convolution layer: weights, non-zeros, sparsity, units, FLOPs."""
    rows = []
    for layer in model.layers:
        unwrapped = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        if isinstance(unwrapped, L.MultiHeadAttention):
            rows.append(_attention_row(unwrapped))
            continue
        if isinstance(unwrapped, L.Embedding):
            rows.append(_embedding_row(unwrapped))
            continue
        inner, parts, axis = _parts(layer)
        if parts is None:
            continue
        kernels = [np.asarray(kernel.numpy()) for kernel, _ in parts]
        size = sum(k.size for k in kernels)
        nonzero = sum(int(np.count_nonzero(k)) for k in kernels)
        last = np.moveaxis(kernels[-1], axis, -1)
        units = int(last.shape[-1])
        depthwise = isinstance(inner, (L.DepthwiseConv1D, L.DepthwiseConv2D))
        kept = units if depthwise else masks.units_kept(last)
        rows.append({
            "layer": inner.name,
            "type": type(inner).__name__,
            "weights": int(size),
            "nonzeros": nonzero,
            "sparsity": 1.0 - nonzero / size,
            "units": units,
            "units_kept": int(kept),
            "flops": int(sum(p * k.size for (_, p), k in zip(parts, kernels))),
            "nonzero_flops": int(sum(p * np.count_nonzero(k) for (_, p), k in zip(parts, kernels))),
        })
    return rows


def _attention_row(layer):
    """The table row of a MultiHeadAttention: its four kernels, its heads as units (a head is
    kept while any of its weights is non-zero), its projections' and products' FLOPs."""
    parts, products = _attention_parts(layer)
    kernels = [np.asarray(kernel.numpy()) for kernel, _ in parts]
    size = sum(k.size for k in kernels)
    nonzero = sum(int(np.count_nonzero(k)) for k in kernels)
    per_head = np.stack([np.moveaxis(k, 1, 0).reshape(k.shape[1], -1).any(axis=1)
                         for k in kernels[:3]] +
                        [kernels[3].reshape(kernels[3].shape[0], -1).any(axis=1)]).any(axis=0)
    return {
        "layer": layer.name, "type": type(layer).__name__, "weights": int(size),
        "nonzeros": nonzero, "sparsity": 1.0 - nonzero / size,
        "units": int(layer._num_heads), "units_kept": int(per_head.sum()),
        "flops": int(sum(p * k.size for (_, p), k in zip(parts, kernels)) + products),
        "nonzero_flops": int(sum(p * np.count_nonzero(k) for (_, p), k in zip(parts, kernels))
                             + products),
    }


def _embedding_row(layer):
    """The table row of an Embedding: its table, its output channels as units; no FLOPs (a
    lookup multiplies nothing)."""
    table = np.asarray(layer.embeddings.numpy())
    nonzero = int(np.count_nonzero(table))
    return {"layer": layer.name, "type": type(layer).__name__, "weights": int(table.size),
            "nonzeros": nonzero, "sparsity": 1.0 - nonzero / table.size,
            "units": int(table.shape[-1]), "units_kept": int(masks.units_kept(table)),
            "flops": 0, "nonzero_flops": 0}


def _all_weights(model):
    """Every weight tensor of the model once (not the pruning masks/thresholds/steps)."""
    tensors = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        tensors.extend(w.numpy() for w in inner.weights)
    return tensors


def summarize(model, pruned_layers=None):
    """Totals for the model, plus the per-layer table under "layers".

    ``pruned_layers`` names the layers that were pruned; their sparsity is reported as
    "pruned_sparsity" (the figure a target sparsity refers to).
    """
    check_model(model)
    rows = layer_table(model)
    weights = _all_weights(model)
    params = int(sum(w.size for w in weights))
    nonzero_params = int(sum(np.count_nonzero(w) for w in weights))
    flops = sum(r["flops"] for r in rows)
    nonzero_flops = sum(r["nonzero_flops"] for r in rows)
    summary = {
        "params": params,
        "nonzero_params": nonzero_params,
        "kernel_weights": sum(r["weights"] for r in rows),
        "kernel_nonzeros": sum(r["nonzeros"] for r in rows),
        "flops": int(flops),
        "nonzero_flops": int(nonzero_flops),
        "compression_ratio": params / max(nonzero_params, 1),
        "theoretical_speedup": flops / max(nonzero_flops, 1),
        "layers": rows,
    }
    summary["sparsity"] = 1.0 - summary["kernel_nonzeros"] / max(summary["kernel_weights"], 1)
    if pruned_layers is not None:
        chosen = [r for r in rows if r["layer"] in set(pruned_layers)]
        total = sum(r["weights"] for r in chosen)
        summary["pruned_sparsity"] = (1.0 - sum(r["nonzeros"] for r in chosen) / total) if total else 0.0
    return summary
