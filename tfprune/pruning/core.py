"""What the pruning methods are built from (pruning/method_objects.py puts them together):
which layers a method prunes (``select_layers``, cheap enough for configs to run on an untrained
model before training; ``prunable_layers``, ``prunable_groups``), a copy of a model with layers
wrapped (``_wrap_model``: cloned, because tfmot's wrappers share the wrapped layers' weights, so
the model given is never changed), the BatchNorms tied to a unit, and ``strip``.
"""

import tensorflow_model_optimization as tfmot

from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.pruning import channels as channels_lib
from tfprune.pruning import surgery
from tfprune.pruning import wrapper as wrapper_lib
from tfprune.pruning import groups as groups_lib
from tfprune.pruning import kernels
from tfprune.pruning.kernels import is_weight_prunable
from tfprune.pruning.unit import PruneLowMagnitude, UnitPruneLowMagnitude, is_unit_prunable


_PRUNABLE = {"weight": is_weight_prunable, "unit": is_unit_prunable}
_WRAPPED = {"weight": kernels.WEIGHT_PRUNABLE, "unit": "Dense, Conv2D"}
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


def prunable_layers(model, granularity):
    """Names of the layers ``granularity`` (weight or unit) pruning can wrap."""
    return [layer.name for layer in model.layers if _PRUNABLE[granularity](layer)]


def _holds_matrices(layer):
    """A layer with matrices of weights (not a BatchNormalization's vectors): when it is no
    candidate, what stays dense is named (a transposed convolution subclasses Conv1D or Conv2D,
    so the class alone does not say)."""
    return not isinstance(layer, keras.layers.BatchNormalization) and \
        any(len(w.shape) >= 2 for w in layer.weights)


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
        elif not layers and layer.name not in candidates and _holds_matrices(layer):
            # What stays dense is named: attention, embeddings, transposed convolutions, ...
            skipped[layer.name] = (f"{type(layer).__name__}: not a layer {granularity} pruning "
                                   f"wraps ({_WRAPPED[granularity]})")
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
            problem = kernels.m_by_n_problem(model.get_layer(name), m_by_n)
            if problem:
                selected.remove(name)
                skipped[name] = problem
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


def prunable_graph(model, layer_norm="block"):
    """The model's channel graph (groups_lib.analyze); a TfpruneError when no group can be
    pruned."""
    graph = groups_lib.analyze(model, layer_norm)
    if not channels_lib.prunable(graph.groups):
        raise TfpruneError(f"no channel group of {model.name!r} can be pruned: "
                           + "; ".join(g.describe() for g in graph.groups))
    return graph


def prunable_groups(model, layer_norm="block"):
    """The model's channel groups; a TfpruneError when none can be pruned."""
    return prunable_graph(model, layer_norm).groups


def _copy(model):
    return surgery.fresh_copy(model)  # the one clone-with-weights


def _channel_layers(graph, model):
    """(pruned layer names, {skipped name: why}) of ``model``'s channel ``graph``: pruned, the
    producers of prunable groups and the attentions with prunable heads; skipped, the other
    producers of blocked groups, and the layers with weights the graph cannot see through."""
    groups = graph.groups
    pruned = sorted({m.layer for g in channels_lib.prunable(groups) for m in g.members
                     if m.role in ("out", "head")})
    skipped = {name: g.blocked for g in groups if g.blocked for name in g.layers("out")
               if name not in pruned}
    for name, why in graph.opaque.items():
        if name not in pruned and model.get_layer(name).weights:
            skipped.setdefault(name, f"{type(model.get_layer(name)).__name__}, {why}")
    return pruned, skipped


def strip(model):
    """Remove pruning wrappers; the returned model holds the masked (sparse) weights."""
    return tfmot.sparsity.keras.strip_pruning(model)

