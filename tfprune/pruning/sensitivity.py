"""Sensitivity curves: the accuracy of a model with one layer (or one channel group) pruned
one-shot over a range of sparsities, the others untouched; and the whole model's one-shot
curve. Measured on the arrays given (a validation sample), with the model's own ``predict``.

The curves feed layer-wise sparsity (pruning/allocation.py); jobs/sensitivity.py writes them.
"""

import numpy as np

from tfprune.pruning import channels as channels_lib
from tfprune.pruning import core, method_objects, oneshot
from tfprune.pruning.allocation import check_grid


def accuracy(model, x, y, batch_size=256):
    """Top-1 accuracy of ``model`` on arrays (x, y)."""
    predictions = model.predict(x, batch_size=batch_size, verbose=0)
    return float(np.mean(np.argmax(predictions, axis=-1) == np.asarray(y).ravel()))


def layer_curves(model, granularity, layers, sparsities, x, y, log=None):
    """{layer: [accuracy at each sparsity]}: each of ``layers`` alone pruned one-shot (weight or
    unit), the rest of the model as it is. ``model`` is not changed (a copy is masked and
    restored after every point)."""
    sparsities = check_grid(sparsities)
    copy = core._copy(model)
    base = accuracy(copy, x, y)
    curves = {}
    for i, name in enumerate(layers):
        values = []
        for sparsity in sparsities:
            if sparsity == 0:
                values.append(base)
                continue
            restore = oneshot.mask_layer(copy, name, granularity, sparsity)
            values.append(accuracy(copy, x, y))
            restore()
        curves[name] = values
        if log:
            log(f"sensitivity {granularity} {name} ({i + 1}/{len(layers)}): accuracy "
                + " ".join(f"{s:g}:{a:.3f}" for s, a in zip(sparsities, values)))
    return curves


def group_label(group):
    """A channel group by the layers whose outputs it holds: 'g3 conv1+bn1'; an attention's
    heads by the attention: 'g4 block1_attention heads'."""
    outputs = group.layers("out")
    if not outputs and group.layers("head"):
        return f"g{group.id} " + "+".join(group.layers("head")) + " heads"
    return f"g{group.id} " + "+".join(outputs)


def group_curves(model, sparsities, x, y, criterion="l2", log=None):
    """{group label: [accuracy at each sparsity]}: each prunable channel group alone pruned
    (its lowest-``criterion`` channels zeroed in every layer it touches)."""
    sparsities = check_grid(sparsities)
    copy = core._copy(model)
    saved = copy.get_weights()
    groups = core.prunable_groups(copy)
    scores = channels_lib.importance(copy, groups, criterion)
    base = accuracy(copy, x, y)
    curves = {}
    candidates = channels_lib.prunable(groups)
    for i, group in enumerate(candidates):
        values = []
        for sparsity in sparsities:
            if sparsity == 0:
                values.append(base)
                continue
            keep = channels_lib.select([group], scores, sparsity)
            channels_lib.apply_masks(copy, [group], keep)
            values.append(accuracy(copy, x, y))
            copy.set_weights(saved)
        curves[group_label(group)] = values
        if log:
            log(f"sensitivity channel group {group_label(group)} ({i + 1}/{len(candidates)})")
    return curves


def model_curve(model, method, sparsities, x, y, log=None, **options):
    """[accuracy at each sparsity] of the whole model pruned one-shot by ``method`` (weight,
    unit or channel; ``options``: fields of the method's options, method_objects.prune_once)."""
    sparsities = check_grid(sparsities)
    copy = core._copy(model)
    saved = copy.get_weights()
    values = []
    for sparsity in sparsities:
        method_objects.prune_once(copy, method, sparsity, in_place=True, **options)
        values.append(accuracy(copy, x, y))
        copy.set_weights(saved)
        if log:
            log(f"one-shot {method} {sparsity:g}: accuracy {values[-1]:.4f}")
    return values
