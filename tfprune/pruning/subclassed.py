"""Weight pruning of a subclassed tf_keras model's Dense / Conv sublayers.

A subclassed model (its own ``call()``) has no layer graph: tfmot's ``prune_low_magnitude``
refuses the model, and what reads the graph (unit and channel pruning, the deciding pruners,
shrink, per-layer FLOPs) cannot run on it. tfmot's wrappers do allow wrapping the sublayers
themselves: ``prune_sublayers`` puts a pruning wrapper (tfprune's, wrapper.py) in place of every
prunable sublayer the model holds in an attribute (on the model or on the layers it is made
of, directly or in a list), so the model's own ``call()`` runs the wrappers; ``strip_sublayers``
puts the layers back, holding their pruned weights. The model is changed in place (a subclassed
model cannot be cloned from a config). Weight pruning only.
"""

import dataclasses

import numpy as np
import tensorflow_model_optimization as tfmot

from tfprune import checks
from tfprune.errors import TfpruneError
from tfprune.keras import check_model, keras, tf
from tfprune.pruning import schedules as schedules_lib
from tfprune.pruning import kernels
from tfprune.pruning.kernels import is_weight_prunable
from tfprune.pruning import wrapper as wrapper_lib
from tfprune.pruning.unit import PruneLowMagnitude


@dataclasses.dataclass
class SublayerPruning:
    model: keras.Model          # the same model, its sublayers wrapped
    callbacks: list             # pass to fit(): UpdateSublayerPruningStep
    pruned_layers: list         # names of the wrapped sublayers
    steps: schedules_lib.ScheduleSteps


class UpdateSublayerPruningStep(tfmot.sparsity.keras.UpdatePruningStep):
    """tfmot's UpdatePruningStep finding wrappers inside nested layers too (tfmot's own looks
    only into ``model.layers`` and nested models, so a wrapper inside a custom layer would never
    get its pruning step)."""

    def on_train_begin(self, logs=None):
        wrappers = [slot[3] for slot in _slots(
            self.model, lambda layer: isinstance(layer, PruneLowMagnitude))]
        if wrappers and int(wrappers[0].pruning_step.numpy()) == -1:
            for wrapper in wrappers:
                wrapper.pruning_step.assign(0)
        self.prunable_layers = wrappers


def _is_subclassed(model):
    return not getattr(model, "_is_graph_network", False) \
        and not isinstance(model, keras.Sequential)


def _slots(model, want):
    """(owner, key, layer) for every sublayer held in an attribute (or a list attribute) of the
    model or of its nested layers for which ``want(layer)`` holds."""
    found, seen, stack = [], {id(model)}, [model]
    while stack:
        owner = stack.pop()
        for name, value in list(vars(owner).items()):
            if name.startswith("_"):
                continue
            items = [(name, None, value)]
            if type(value).__name__ == "ListWrapper" or isinstance(value, list):
                items = [(name, i, v) for i, v in enumerate(value)]
            for attribute, index, layer in items:
                if not isinstance(layer, keras.layers.Layer) or id(layer) in seen:
                    continue
                seen.add(id(layer))
                if want(layer):
                    found.append((owner, attribute, index, layer))
                elif not isinstance(layer, PruneLowMagnitude):
                    stack.append(layer)
    return found


def _put(owner, attribute, index, layer):
    if index is None:
        setattr(owner, attribute, layer)
    else:
        getattr(owner, attribute)[index] = layer


def _call_once(model):
    """Call the model on one zero input of the shape it was built with."""
    spec = model.save_spec()
    if spec is None:
        raise TfpruneError(f"subclassed model {model.name!r} has never been called: call it on "
                           "a batch first, so its sublayers have weights")
    args, kwargs = spec
    zeros = tf.nest.map_structure(
        lambda s: tf.zeros([1 if d is None else d for d in s.shape], s.dtype), (args, kwargs))
    model(*zeros[0], **dict(zeros[1], training=False))


def _reset_compiled_functions(model):
    # fit/evaluate/predict trace call() once; a traced function would keep the old sublayers.
    for name in ("train_function", "test_function", "predict_function"):
        setattr(model, name, None)


def prune_sublayers(model, target_sparsity, schedule="polynomial", *, steps_per_epoch, epochs,
                    begin_step=None, end_step=None, frequency=None, initial_sparsity=0.0,
                    ramp_fraction=0.6, exclude=()):
    """Wrap every weight-prunable sublayer (kernels.WEIGHT_PRUNABLE) of subclassed ``model``
    (built: called once) for weight pruning to ``target_sparsity`` under ``schedule``;
    ``exclude`` names sublayers to leave dense (a classifier, say). Train with the returned
    callbacks, then ``strip_sublayers``."""
    check_model(model, graph=False)
    if not _is_subclassed(model):
        raise TfpruneError(f"{model.name!r} is a functional or Sequential model: prune it with "
                           "tfprune.pruning.prune, which also offers unit and channel pruning")
    if model.save_spec() is None:
        _call_once(model)  # the error: never called
    checks.check_sparsity("target_sparsity", target_sparsity)
    steps = schedules_lib.derive_steps(schedule, steps_per_epoch, epochs, begin_step, end_step,
                                       frequency, ramp_fraction)
    pruning_schedule = schedules_lib.make_schedule(schedule, target_sparsity, steps,
                                                   initial_sparsity)
    exclude = set(exclude or ())
    slots = _slots(model, lambda layer: is_weight_prunable(layer) and layer.name not in exclude)
    if not slots:
        raise TfpruneError(f"no {kernels.WEIGHT_PRUNABLE} sublayer of {model.name!r} found in its "
                           "attributes (or lists of them) to prune")
    found = {id(slot[3]) for slot in slots}
    unreachable = [layer.name for layer in model._flatten_layers(include_self=False)
                   if is_weight_prunable(layer) and layer.name not in exclude
                   and id(layer) not in found]
    if unreachable:
        raise TfpruneError(
            f"sublayers {', '.join(unreachable)} of {model.name!r} are held where tfprune cannot "
            "swap them for pruning wrappers (a private attribute, a dict or tuple, or inside a "
            "functional / Sequential model, which calls its own graph): hold them in public "
            "attributes or lists, prune the inner functional model with tfprune.pruning.prune, "
            "or name them in `exclude`")
    for owner, attribute, index, layer in slots:
        _put(owner, attribute, index,
             wrapper_lib.PruneLowMagnitude(layer, pruning_schedule=pruning_schedule))
    _call_once(model)  # builds the wrappers (their masks and pruning step)
    _reset_compiled_functions(model)
    return SublayerPruning(model, [UpdateSublayerPruningStep()],
                           [slot[3].name for slot in slots], steps)


def strip_sublayers(model):
    """Put the wrapped sublayers back (holding their pruned weights); the same model."""
    for owner, attribute, index, wrapper in _slots(
            model, lambda layer: isinstance(layer, PruneLowMagnitude)):
        _put(owner, attribute, index, wrapper.layer)
    _reset_compiled_functions(model)
    return model


def sublayer_sparsity(model, names=None):
    """{sublayer name: fraction of its kernel that is zero} for the prunable sublayers."""
    slots = _slots(model, lambda layer: is_weight_prunable(layer)
                   or isinstance(layer, PruneLowMagnitude))
    result = {}
    for _, _, _, layer in slots:
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        if names is None or inner.name in names:
            zeros = sum(int(np.sum(w.numpy() == 0)) for w, _ in kernels.pruned_weights(inner))
            result[inner.name] = zeros / kernels.size(inner)
    return result
