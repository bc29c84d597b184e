"""One entry point for pruning: ``prune(model, method, schedule, target_sparsity, ...)``.

It never changes the model it is given: the model is cloned (clone_model + set_weights) first,
because tfmot's wrappers share the wrapped layers' weights. It returns the wrapped model, ready
to compile and fine-tune, with the callbacks the fine-tuning needs. ``select_layers`` is the
check of a layer list, cheap enough for configs to run on an untrained model before training.
"""

import dataclasses

import tensorflow_model_optimization as tfmot

from tfprune.errors import TfpruneError
from tfprune.keras import check_model, keras
from tfprune.pruning import channels as channels_lib
from tfprune.pruning import dynamic as dynamic_lib
from tfprune.pruning import methods as methods_lib
from tfprune.pruning import options as options_lib
from tfprune.pruning import schedules as schedules_lib
from tfprune.pruning import wrapper as wrapper_lib
from tfprune.pruning.methods import check_channel_granularity, check_layer_sparsity
from tfprune.pruning.groups import channel_groups
from tfprune.pruning.unit import PruneLowMagnitude, UnitPruneLowMagnitude, is_unit_prunable

METHODS = methods_lib.METHODS


@dataclasses.dataclass
class PruneResult:
    model: keras.Model          # wrapped, not compiled
    callbacks: list             # pass to fit(): UpdatePruningStep (and the deciding callback)
    pruned_layers: list         # names of the wrapped layers
    skipped_layers: dict        # name -> why it was not pruned
    steps: schedules_lib.ScheduleSteps
    method: methods_lib.Method
    schedule: str               # None for methods without a schedule
    target_sparsity: float      # None for methods that choose their sparsity
    pruner: object = None       # the deciding callback of a method that decides
    channel_pruner: object = None  # channels.GroupPruner of the channel method
    channel_masks: object = None   # channels.GroupMasks of any channel-granularity method:
                                   # its groups and kept channels are what shrink removes


def is_weight_prunable(layer):
    return isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)) \
        and not isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.DepthwiseConv2D))


_PRUNABLE = {"weight": is_weight_prunable, "unit": is_unit_prunable}
# tfmot registers no prunable weight for a DepthwiseConv2D: wrapped, it would stay dense while
# listed as pruned. Left out, with the reason.
_NOT_PRUNED = {"weight": ((keras.layers.DepthwiseConv2D,),
                          "DepthwiseConv2D: tfmot prunes none of its weights")}


def classifier_layer(model):
    """The last Dense layer: the classifier, left unpruned by default."""
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    return dense[-1].name if dense else None


def first_conv_layer(model):
    """The first convolution: it sees the raw image and holds few weights, so it stays dense by
    default (as in Gale et al. 2019); at 90% sparsity pruning it cost the digits cnn 10 points."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            return layer.name
    return None


def _m_by_n_compatible(layer, m_by_n):
    # tfmot groups n consecutive input channels (TFLite layout); the input depth must divide.
    in_channels = layer.kernel.shape[-2] if len(layer.kernel.shape) > 1 else 0
    return isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)) and in_channels % m_by_n[1] == 0


def prunable_layers(model, granularity):
    """Names of the layers ``granularity`` (weight or unit) pruning can wrap."""
    return [layer.name for layer in model.layers if _PRUNABLE[granularity](layer)]


def select_layers(model, granularity, layers=None, prune_classifier=False,
                  prune_first_conv=False, m_by_n=None):
    """(selected layer names, {skipped name: why}) for pruning ``model`` at ``granularity``.

    ``layers`` names the layers to prune; by default every prunable layer but the classifier
    and the first convolution. A name that is not a prunable layer is a TfpruneError.
    """
    candidates = prunable_layers(model, granularity)
    skipped = {}
    kinds, why = _NOT_PRUNED.get(granularity, ((), None))
    for layer in model.layers:
        if kinds and isinstance(layer, kinds) and (not layers or layer.name in layers):
            skipped[layer.name] = why
    if layers:
        unknown = [name for name in layers if name not in candidates]
        if unknown:
            raise TfpruneError(
                f"`layers` names layers that cannot be pruned by {granularity} pruning: "
                f"{', '.join(unknown)}; prunable layers of {model.name!r}: "
                f"{', '.join(candidates)}")
        selected = list(layers)
    else:
        selected = list(candidates)
        for name, why in ((classifier_layer(model), None if prune_classifier else
                           "classifier (prune_classifier=True prunes it)"),
                          (first_conv_layer(model), None if prune_first_conv else
                           "first convolution (prune_first_conv=True prunes it)")):
            if why and name in selected:
                selected.remove(name)
                skipped[name] = why
    if m_by_n:
        for name in list(selected):
            if not _m_by_n_compatible(model.get_layer(name), m_by_n):
                selected.remove(name)
                skipped[name] = (f"input depth not divisible by {m_by_n[1]} (needed for "
                                 f"{m_by_n[0]}:{m_by_n[1]})")
    if not selected:
        raise TfpruneError(f"no layer of {model.name!r} can be pruned by {granularity} pruning"
                           + (f" (skipped: {', '.join(skipped)})" if skipped else ""))
    return selected, skipped


def _wrap(granularity, layer, schedule, m_by_n):
    if granularity == "unit":
        return UnitPruneLowMagnitude(layer, pruning_schedule=schedule)
    params = {"pruning_schedule": schedule}
    if m_by_n:
        params["sparsity_m_by_n"] = m_by_n
    return wrapper_lib.PruneLowMagnitude(layer, **params)


def _following_batchnorm(model, layer_name):
    """The BatchNormalization layers that consume ``layer_name``'s output directly."""
    tied = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            inbound = [node.inbound_layers for node in layer._inbound_nodes]
            names = {l.name for item in inbound for l in (item if isinstance(item, list) else [item])}
            if layer_name in names:
                tied.append(layer)
    return tied


def _wrap_model(model, granularity, pruning_schedules, selected, m_by_n):
    """A clone of ``model`` with ``selected`` layers wrapped (weights copied, never shared);
    ``pruning_schedules``: one schedule for every layer, or {layer: its own schedule}."""
    copy = _copy(model)
    selected_set = set(selected)

    def clone_function(layer):
        if layer.name in selected_set:
            schedule = pruning_schedules.get(layer.name) if isinstance(pruning_schedules, dict) \
                else pruning_schedules
            return _wrap(granularity, layer, schedule, m_by_n)
        return layer

    wrapped = keras.models.clone_model(copy, clone_function=clone_function)
    if granularity == "unit":
        for name in selected:
            wrapper = next(l for l in wrapped.layers
                           if isinstance(l, PruneLowMagnitude) and l.layer.name == name)
            for bn in _following_batchnorm(copy, name):
                wrapper.tie([v for v in (bn.gamma, bn.beta) if v is not None])
                wrapper.tied_layers.append(bn.name)
                # Not masked, but restored with a unit on a rollback (they decay meanwhile).
                wrapper.tied_statistics = getattr(wrapper, "tied_statistics", []) + [
                    bn.moving_mean, bn.moving_variance]
    return wrapped


def prune(model, method="weight", schedule="polynomial", target_sparsity=0.5, *,
          steps_per_epoch, epochs, begin_step=None, end_step=None, frequency=None,
          initial_sparsity=0.0, power=3, layers=None, prune_classifier=False,
          prune_first_conv=False, sparsity_m_by_n=None, ramp_fraction=0.6, dynamic=None,
          decisions_path=None, train_data=None, log=None, channel=None, layer_sparsity=None):
    """Wrap a copy of ``model`` for ``method`` pruning under ``schedule``.

    Call it inside a distribution strategy's scope when training under one. Methods that decide
    for themselves (``Method.decides``) ignore ``schedule``, take their parameters from
    ``dynamic`` (a DynamicConfig or a dict of its fields), write their decisions to
    ``decisions_path``, and "incremental" scores on ``train_data`` (batched, unshuffled).
    The channel method, and deciding methods at granularity "channel", prune every prunable
    channel group (``layers`` and m:n do not apply); ``channel`` holds the channel method's
    options (criterion, mode, max_per_group, round_to). ``layer_sparsity`` ({layer: target},
    weight and unit pruning under a schedule) gives each layer its own target and names the
    layers pruned (pruning/allocation.py makes one); a layer at 0 stays unwrapped.
    """
    check_model(model)
    method = METHODS.get(method) if isinstance(method, str) else method
    schedule, target_sparsity, m_by_n = methods_lib.check_options(
        method, schedule, target_sparsity, initial_sparsity, sparsity_m_by_n)
    config = None
    if method.decides:
        config = options_lib.make_config(dynamic)
        config = dataclasses.replace(
            config, granularity=method.resolve_granularity(config.granularity))
        if method.name == "incremental" and train_data is None:
            raise TfpruneError("method 'incremental' needs `train_data` to score contributions")
        # Masks start full and the schedule never fires after step 1: the callback owns them.
        steps = schedules_lib.ScheduleSteps(0, 1, 1)
        pruning_schedule = schedules_lib.make_schedule("constant", 0.0, steps)
        granularity = config.granularity
    else:
        granularity = method.granularity
        steps = schedules_lib.derive_steps(schedule, steps_per_epoch, epochs, begin_step,
                                           end_step, frequency, ramp_fraction)
        pruning_schedule = schedules_lib.make_schedule(schedule, target_sparsity, steps,
                                                       initial_sparsity, power)
    if channel and method.granularity != "channel":
        raise TfpruneError(f"channel options (criterion, mode, max_per_group, round_to) apply "
                           f"to method 'channel', not {method.name!r}")
    if granularity == "channel":
        check_channel_granularity(method.name, layers, m_by_n, prune_first_conv,
                                  prune_classifier)
        if method.decides:
            return _decide_channels(model, method, target_sparsity, steps, config, train_data,
                                    decisions_path, log)
        return _prune_channels(model, method, schedule, target_sparsity, steps, pruning_schedule,
                               channel, train_data, log)
    if layer_sparsity:
        layers = check_layer_sparsity(method, layers, m_by_n, layer_sparsity)
    selected, skipped = select_layers(model, granularity, layers, prune_classifier,
                                      prune_first_conv, m_by_n)
    wrap = selected
    if layer_sparsity:
        # A layer at target 0 stays in the pruned layers (its sparsity counts in the global
        # figure, as in one-shot) but is not wrapped: nothing to prune.
        wrap = [name for name in selected if layer_sparsity[name] > 0]
        pruning_schedule = {name: schedules_lib.make_schedule(
            schedule, layer_sparsity[name], steps, min(initial_sparsity, layer_sparsity[name]),
            power) for name in wrap}
    wrapped = _wrap_model(model, granularity, pruning_schedule, wrap, m_by_n)
    result = PruneResult(
        model=wrapped, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        pruned_layers=selected, skipped_layers=skipped, steps=steps, method=method,
        schedule=schedule, target_sparsity=target_sparsity)
    if method.decides:
        slots = [dynamic_lib.LayerSlot(l) for l in wrapped.layers
                 if isinstance(l, PruneLowMagnitude)]
        result.pruner = _make_pruner(method, slots, config, target_sparsity, train_data,
                                     decisions_path, log)
        result.callbacks.append(result.pruner)
    return result


def _make_pruner(method, slots, config, target_sparsity, train_data, decisions_path, log,
                 group_masks=None):
    cls = dynamic_lib.PRUNERS[method.pruner]
    if method.takes_target:
        return cls(slots, config, target_sparsity, train_data, decisions_path, log, group_masks)
    return cls(slots, config, decisions_path, log, group_masks)


def prunable_groups(model):
    """The model's channel groups; a TfpruneError when none can be pruned."""
    groups = channel_groups(model)
    if not channels_lib.prunable(groups):
        raise TfpruneError(f"no channel group of {model.name!r} can be pruned: "
                           + "; ".join(g.describe() for g in groups))
    return groups


def _copy(model):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _channel_layers(groups):
    """(pruned layer names, {skipped name: why}) of a model's channel groups."""
    pruned = sorted({m.layer for g in channels_lib.prunable(groups) for m in g.members
                     if m.role == "out"})
    skipped = {name: g.blocked for g in groups if g.blocked for name in g.layers("out")}
    return pruned, skipped


def _decide_channels(model, method, target_sparsity, steps, config, train_data, decisions_path,
                     log):
    """A deciding method over channel groups: one slot per prunable group."""
    copy = _copy(model)
    groups = prunable_groups(copy)
    masks = channels_lib.GroupMasks(groups, copy)
    slots = [channels_lib.GroupSlot(masks, g) for g in channels_lib.prunable(groups)]
    pruner = _make_pruner(method, slots, config, target_sparsity, train_data, decisions_path,
                          log, masks)
    pruned, skipped = _channel_layers(groups)
    return PruneResult(model=copy, callbacks=[pruner], pruned_layers=pruned,
                       skipped_layers=skipped, steps=steps, method=method, schedule=None,
                       target_sparsity=target_sparsity, pruner=pruner, channel_masks=masks)


def _prune_channels(model, method, schedule, target_sparsity, steps, pruning_schedule, channel,
                    train_data, log):
    options = options_lib.check_channel_options(channel)
    copy = _copy(model)
    groups = prunable_groups(copy)
    if options.get("criterion") == "taylor" and train_data is None:
        raise TfpruneError("criterion 'taylor' needs `train_data` to score channels")
    pruner = channels_lib.GroupPruner(groups, pruning_schedule, data=train_data, log=log,
                                      **options)
    pruned, skipped = _channel_layers(groups)
    return PruneResult(model=copy, callbacks=[pruner], pruned_layers=pruned,
                       skipped_layers=skipped, steps=steps, method=method, schedule=schedule,
                       target_sparsity=target_sparsity, channel_pruner=pruner,
                       channel_masks=pruner.masks)


def strip(model):
    """Remove pruning wrappers; the returned model holds the masked (sparse) weights."""
    return tfmot.sparsity.keras.strip_pruning(model)

