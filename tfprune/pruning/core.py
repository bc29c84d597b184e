"""One entry point for pruning: ``prune(model, method, schedule, target_sparsity, ...)``.

It never changes the model it is given: the model is cloned (clone_model + set_weights) first,
because tfmot's wrappers share the wrapped layers' weights. It returns the wrapped model, ready
to compile and fine-tune, with the callbacks the fine-tuning needs.
"""

import dataclasses

import tensorflow_model_optimization as tfmot

from tfprune.errors import TfpruneError
from tfprune.keras import check_model, keras
from tfprune.pruning import schedules as schedules_lib
from tfprune.pruning.unit import PruneLowMagnitude, UnitPruneLowMagnitude, is_unit_prunable
from tfprune.registry import Registry

METHODS = Registry("pruning method")


@dataclasses.dataclass
class PruneResult:
    model: keras.Model          # wrapped, not compiled
    callbacks: list             # pass to fit(): UpdatePruningStep
    pruned_layers: list         # names of the wrapped layers
    skipped_layers: dict        # name -> why it was not pruned
    steps: schedules_lib.ScheduleSteps
    method: str
    schedule: str
    target_sparsity: float
    pruner: object = None       # the deciding callback of a dynamic method


def _is_weight_prunable(layer):
    return isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
                              keras.layers.DepthwiseConv2D)) and not isinstance(
        layer, keras.layers.Conv2DTranspose)


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


def parse_m_by_n(value):
    """'2:4' or (2, 4) -> (2, 4); None stays None."""
    if value is None or value == "":
        return None
    try:
        m, n = (int(v) for v in (value.split(":") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        raise TfpruneError(f"`sparsity_m_by_n` must look like '2:4' (m zeros in every n), got {value!r}") from None
    if not 0 < m < n:
        raise TfpruneError(f"`sparsity_m_by_n` must have 0 < m < n, got {m}:{n}")
    return (m, n)


def _select_layers(model, prunable, layers, prune_classifier, prune_first_conv):
    candidates = [layer.name for layer in model.layers if prunable(layer)]
    skipped = {}
    if layers:
        unknown = [name for name in layers if name not in candidates]
        if unknown:
            raise TfpruneError(
                f"`layers` names layers that cannot be pruned by this method: "
                f"{', '.join(unknown)}; prunable layers: {', '.join(candidates)}")
        return list(layers), skipped
    classifier = classifier_layer(model)
    if classifier in candidates and not prune_classifier:
        candidates.remove(classifier)
        skipped[classifier] = "classifier (prune_classifier=True prunes it)"
    first_conv = first_conv_layer(model)
    if first_conv in candidates and not prune_first_conv:
        candidates.remove(first_conv)
        skipped[first_conv] = "first convolution (prune_first_conv=True prunes it)"
    return candidates, skipped


def _wrap_weight(layer, schedule, m_by_n):
    params = {"pruning_schedule": schedule}
    if m_by_n:
        params["sparsity_m_by_n"] = m_by_n
    return tfmot.sparsity.keras.prune_low_magnitude(layer, **params)


def _wrap_unit(layer, schedule, m_by_n):
    del m_by_n
    return UnitPruneLowMagnitude(layer, pruning_schedule=schedule)


METHODS.register("weight", (_is_weight_prunable, _wrap_weight))
METHODS.register("unit", (is_unit_prunable, _wrap_unit))
# Methods that decide during training (pruning/dynamic.py): they wrap layers as "weight" or "unit"
# (DynamicConfig.granularity) and prune from a callback. They take no schedule; "dynamic" and
# "adaptive" take no target either: they choose their sparsity.
METHODS.register("dynamic", None)
METHODS.register("incremental", None)
METHODS.register("adaptive", None)
DYNAMIC_METHODS = ("dynamic", "incremental", "adaptive")
TARGETLESS_METHODS = ("dynamic", "adaptive")


def _m_by_n_compatible(layer, m_by_n):
    # tfmot groups n consecutive input channels (TFLite layout); the input depth must divide.
    in_channels = layer.kernel.shape[-2] if len(layer.kernel.shape) > 1 else 0
    return isinstance(layer, (keras.layers.Dense, keras.layers.Conv2D)) and in_channels % m_by_n[1] == 0


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


def prune(model, method="weight", schedule="polynomial", target_sparsity=0.5, *,
          steps_per_epoch, epochs, begin_step=None, end_step=None, frequency=None,
          initial_sparsity=0.0, power=3, layers=None, prune_classifier=False,
          prune_first_conv=False, sparsity_m_by_n=None, ramp_fraction=0.6, dynamic=None,
          decisions_path=None, train_data=None, log=None):
    """Wrap a copy of ``model`` for ``method`` pruning under ``schedule``.

    Call it inside a distribution strategy's scope when training under one. ``layers`` names
    the layers to prune; by default every prunable layer but the classifier and the first
    convolution. The dynamic methods (``DYNAMIC_METHODS``) ignore ``schedule``, take their
    parameters from ``dynamic`` (a DynamicConfig), write their decisions to ``decisions_path``,
    and "incremental" scores on ``train_data`` (batched, unshuffled).
    """
    check_model(model)
    if METHODS.get(method) is None:
        return _prune_dynamic(model, method, target_sparsity, steps_per_epoch, epochs, layers,
                              prune_classifier, prune_first_conv, dynamic, decisions_path,
                              train_data, log)
    prunable, wrap = METHODS.get(method)
    target_sparsity = schedules_lib.check_sparsity("target_sparsity", target_sparsity)
    m_by_n = parse_m_by_n(sparsity_m_by_n)
    if m_by_n:
        if method != "weight":
            raise TfpruneError(f"`sparsity_m_by_n` applies to weight pruning, not {method!r}")
        if abs(target_sparsity - m_by_n[0] / m_by_n[1]) > 1e-9:
            raise TfpruneError(
                f"`target_sparsity` must be {m_by_n[0] / m_by_n[1]} with sparsity_m_by_n="
                f"{m_by_n[0]}:{m_by_n[1]}, got {target_sparsity}")
    policy = keras.mixed_precision.global_policy().name
    if policy != "float32":
        raise TfpruneError(
            f"pruning needs the float32 Keras policy, got {policy!r}: tfmot 0.8.1 fails in its "
            "mask multiply under mixed precision; fine-tune pruned models in float32")
    steps = schedules_lib.derive_steps(schedule, steps_per_epoch, epochs, begin_step, end_step,
                                       frequency, ramp_fraction)
    pruning_schedule = schedules_lib.make_schedule(schedule, target_sparsity, steps,
                                                   initial_sparsity, power)

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    selected, skipped = _select_layers(copy, prunable, layers, prune_classifier, prune_first_conv)
    if m_by_n:
        for name in list(selected):
            if not _m_by_n_compatible(copy.get_layer(name), m_by_n):
                selected.remove(name)
                skipped[name] = f"input depth not divisible by {m_by_n[1]} (needed for {m_by_n[0]}:{m_by_n[1]})"
    if not selected:
        raise TfpruneError(f"no layer of {model.name!r} can be pruned by method {method!r}")
    selected_set = set(selected)

    def clone_function(layer):
        if layer.name in selected_set:
            return wrap(layer, pruning_schedule, m_by_n)
        return layer

    wrapped = keras.models.clone_model(copy, clone_function=clone_function)
    if method == "unit":
        for name in selected:
            wrapper = next(l for l in wrapped.layers
                           if isinstance(l, PruneLowMagnitude) and l.layer.name == name)
            for bn in _following_batchnorm(copy, name):
                wrapper.tie([bn.gamma, bn.beta] if bn.scale and bn.center else
                            [v for v in (bn.gamma, bn.beta) if v is not None])
                wrapper.tied_layers.append(bn.name)
    return PruneResult(
        model=wrapped, callbacks=[tfmot.sparsity.keras.UpdatePruningStep()],
        pruned_layers=selected, skipped_layers=skipped, steps=steps, method=method,
        schedule=schedule, target_sparsity=target_sparsity)


def _prune_dynamic(model, method, target_sparsity, steps_per_epoch, epochs, layers,
                   prune_classifier, prune_first_conv, config, decisions_path, train_data, log):
    from tfprune.pruning import dynamic as dynamic_lib

    config = config or dynamic_lib.DynamicConfig()
    if not isinstance(config, dynamic_lib.DynamicConfig):
        config = dynamic_lib.DynamicConfig(**config)
    config = dynamic_lib.resolve_granularity(config, method)
    if method == "incremental":
        schedules_lib.check_sparsity("target_sparsity", target_sparsity, allow_zero=False)
        if train_data is None:
            raise TfpruneError("method 'incremental' needs `train_data` to score contributions")
    # Masks start full and the schedule never fires after step 1: the callback owns the masks.
    result = prune(model, config.granularity, "constant", 0.0, steps_per_epoch=steps_per_epoch,
                   epochs=epochs, begin_step=0, end_step=1, frequency=1, layers=layers,
                   prune_classifier=prune_classifier, prune_first_conv=prune_first_conv)
    wrappers = [l for l in result.model.layers if isinstance(l, PruneLowMagnitude)]
    if method == "dynamic":
        pruner = dynamic_lib.MeanColumnNormPruner(wrappers, config, decisions_path, log)
    elif method == "incremental":
        pruner = dynamic_lib.TaylorPruner(wrappers, config, target_sparsity, train_data,
                                          decisions_path, log)
    else:
        pruner = dynamic_lib.PQIndexPruner(wrappers, config, decisions_path, log)
    result.callbacks.append(pruner)
    result.pruner = pruner
    result.method = method
    result.schedule = "-"
    result.target_sparsity = target_sparsity if method == "incremental" else None
    return result


def strip(model):
    """Remove pruning wrappers; the returned model holds the masked (sparse) weights."""
    return tfmot.sparsity.keras.strip_pruning(model)


def is_wrapped(model):
    return any(isinstance(layer, PruneLowMagnitude) for layer in model.layers)
