"""Keras dtype policies: mixed precision is a training-time choice, saved models are float32.

Under ``mixed_float16`` a layer computes in float16 and keeps float32 weights. A model is
trained under it by copying a float32 model with ``mixed_copy`` (every layer float16 but the
layers producing the model's outputs, which stay float32 for a numerically safe softmax and
loss) and copied back with ``float32_copy`` before it is saved, so every .keras file, and what
reads them (TFLite conversion, sweeps, measurements), is float32. The global policy decides the
policy of layers and models created without one (and so whether ``compile`` adds loss scaling);
jobs that change it restore it (``restores_policy``), so later steps of a sweep and other code
in the same process see float32 again.
"""

import contextlib
import functools

from tfprune.errors import TfpruneError
from tfprune.keras import keras

MIXED = "mixed_float16"
FLOAT32 = "float32"


def set_mixed_precision(enabled):
    """Set the global policy: mixed_float16 (a speed-up on GPUs with tensor cores; slower on
    CPU, which emulates float16) or float32."""
    keras.mixed_precision.set_global_policy(MIXED if enabled else FLOAT32)


def global_policy():
    return keras.mixed_precision.global_policy().name


@contextlib.contextmanager
def policy_scope(name):
    """The global policy ``name`` inside the block, the previous one restored after it."""
    previous = global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def restores_policy(function):
    """Decorate a job: whatever policy it sets, the global policy is restored when it returns
    or raises."""
    @functools.wraps(function)
    def wrapped(*args, **kwargs):
        with policy_scope(global_policy()):
            return function(*args, **kwargs)
    return wrapped


def output_layers(model):
    """Names of the layers producing ``model``'s outputs."""
    return {tensor._keras_history.layer.name for tensor in model.outputs}


def policies(model):
    """{layer name: policy name} of ``model``'s layers (input layers left out)."""
    return {layer.name: layer.dtype_policy.name for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer)}


def trained_under(model):
    """How ``model`` (compiled) trains: {"policy": its policy, "loss_scaling": whether its
    optimizer scales the loss}, what the jobs record with their metrics."""
    return {"policy": model.dtype_policy.name,
            "loss_scaling": isinstance(getattr(model, "optimizer", None),
                                       keras.mixed_precision.LossScaleOptimizer)}


def is_float32(model):
    return all(name == FLOAT32 for name in policies(model).values())


def with_policy(model, policy, keep_outputs_float32=True):
    """A copy of functional or Sequential ``model`` (weights copied) whose layers run under
    ``policy``; with ``keep_outputs_float32`` the layers producing the outputs stay float32.
    The copy is made under ``policy`` as the global policy, so the model's own policy (which
    makes ``compile`` wrap the optimizer for loss scaling under mixed_float16) is ``policy``."""
    if not (getattr(model, "_is_graph_network", False) or isinstance(model, keras.Sequential)):
        raise TfpruneError(f"{model.name!r} is a subclassed model: its layers' policies cannot "
                           "be changed by copying; build it under the policy instead")
    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise TfpruneError(f"model {model.name!r} holds models as layers ({', '.join(nested)}): "
                           "copying under another policy handles flat models only")
    keep = output_layers(model) if keep_outputs_float32 else set()

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = FLOAT32 if layer.name in keep else policy
        return layer.__class__.from_config(config)

    with policy_scope(policy):
        copy = keras.models.clone_model(model, clone_function=clone)
    copy.set_weights(model.get_weights())
    return copy


def mixed_copy(model):
    """``model`` copied under mixed_float16, its output layers float32."""
    return with_policy(model, MIXED)


def float32_copy(model):
    """``model`` itself when every layer is float32; otherwise a float32 copy (the weights are
    float32 already: nothing is rounded)."""
    return model if is_float32(model) else with_policy(model, FLOAT32)
