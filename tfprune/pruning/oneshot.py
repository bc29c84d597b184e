"""One-shot pruning: masks applied once, at a sparsity, with no fine-tuning.

The one home of "zero this layer (or this channel group) to sparsity s now", shared by
``prune_once`` (a whole model: ``fine_tune_epochs=0`` in the jobs) and the sensitivity curves
(pruning/sensitivity.py: one layer at a time, restored after each point).

- weight: per layer, the ``round(s x size)`` kernel weights of lowest magnitude (tfmot's rule:
  its threshold is the k-th largest magnitude).
- unit: per layer, the ``round(s x units)`` units of lowest L2 norm (masks.unit_mask, the rule the
  unit wrapper applies during fine-tuning), with their bias and the gamma/beta of a BatchNorm that
  directly follows, so the unit outputs exactly zero and shrink can remove it.
- channel: coupled channel groups (pruning/groups.py) by a criterion, ``channels.select``.
"""

import numpy as np

from tfprune import checks
from tfprune.errors import TfpruneError
from tfprune.keras import check_model
from tfprune.pruning import channels as channels_lib
from tfprune.pruning import core
from tfprune.pruning import masks as masks_lib
from tfprune.pruning import methods as methods_lib
from tfprune.pruning.options import check_channel_options
from tfprune.pruning.schedules import ScheduleSteps

def magnitude_mask(kernel, sparsity):
    """0/1 array keeping the ``size - round(sparsity x size)`` largest magnitudes (at least
    one); ties are broken by position, so exactly that many survive."""
    kernel = np.asarray(kernel)
    flat = np.abs(kernel).ravel()
    keep = max(1, int(round(flat.size * (1.0 - float(sparsity)))))
    mask = np.zeros(flat.size, kernel.dtype)
    mask[np.argsort(-flat, kind="stable")[:keep]] = 1
    return mask.reshape(kernel.shape)


def _unit_vector(kernel, sparsity):
    _, mask = masks_lib.unit_mask(kernel, sparsity)
    return np.asarray(masks_lib.units_of_mask(mask))


def mask_layer(model, name, granularity, sparsity):
    """Zero layer ``name`` of ``model`` in place to ``sparsity`` (weight or unit); return a
    function that restores every variable it changed."""
    layer = model.get_layer(name)
    kernel = layer.kernel.numpy()
    saved = [(layer.kernel, kernel)]
    if granularity == "weight":
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


def prune_once(model, method="weight", target_sparsity=0.5, *, layers=None, layer_sparsity=None,
               prune_classifier=False, prune_first_conv=False, channel=None, train_data=None,
               in_place=False):
    """A copy of ``model`` pruned once to ``target_sparsity`` (or, for weight and unit, to the
    per-layer ``layer_sparsity`` {layer: sparsity}, which then names the layers pruned) with no
    fine-tuning: a ``core.PruneResult`` whose model is plain (no wrappers, nothing to compile)
    and whose ``callbacks`` are empty. Channel granularity returns its ``channel_masks``, which
    shrink removes. ``in_place=True`` masks ``model`` itself (the caller restores it: the
    sensitivity curves reuse one model and its traced predict function)."""
    check_model(model)
    spec = methods_lib.check_one_shot(method)
    target_sparsity = checks.check_sparsity("target_sparsity", target_sparsity)
    steps = ScheduleSteps(0, 0, 1)
    copy = model if in_place else core._copy(model)
    if spec.granularity == "channel":
        if layer_sparsity:
            # refuses channel
            methods_lib.check_layer_sparsity(spec, layer_sparsity=layer_sparsity)
        methods_lib.check_channel_granularity(spec.name, layers, None, prune_first_conv,
                                              prune_classifier)
        options = check_channel_options(channel)
        if options.get("criterion") == "taylor" and train_data is None:
            raise TfpruneError("criterion 'taylor' needs `train_data` to score channels")
        groups = core.prunable_groups(copy)
        keep = channels_lib.choose(copy, groups, target_sparsity, data=train_data, **options)
        group_masks = channels_lib.GroupMasks(groups, copy)
        group_masks.set_keep(keep)
        pruned, skipped = core._channel_layers(groups)
        return core.PruneResult(model=copy, callbacks=[], pruned_layers=pruned,
                                skipped_layers=skipped, steps=steps, method=spec,
                                schedule="constant", target_sparsity=target_sparsity,
                                channel_masks=group_masks)
    if layer_sparsity:
        layers = methods_lib.check_layer_sparsity(spec, layers, None, layer_sparsity)
    selected, skipped = core.select_layers(copy, spec.granularity, layers, prune_classifier,
                                           prune_first_conv)
    targets = dict(layer_sparsity) if layer_sparsity else {n: target_sparsity for n in selected}
    for name in selected:
        if targets[name] > 0:
            mask_layer(copy, name, spec.granularity, targets[name])
    return core.PruneResult(model=copy, callbacks=[], pruned_layers=selected,
                            skipped_layers=skipped, steps=steps, method=spec,
                            schedule="constant", target_sparsity=target_sparsity)

