"""The one place that imports Keras.

Keras 2 (the ``tf_keras`` package), set up by ``tfprune.environ.use_keras2`` (environ.py says
why and when) again here, right before TensorFlow is imported. Every tfprune module takes Keras
from here (``from tfprune.keras import keras``), never from ``tf.keras``.

Import order: if user code imported TensorFlow *and already touched tf.keras* (so tf.keras is
Keras 3), tfprune still works, because it uses ``tf_keras`` directly; only models built with
``tf.keras`` layers cannot be pruned. A warning says so, and ``check_model`` raises a clear
error when such a model reaches the library.
"""

import sys
import warnings

from tfprune.environ import use_keras2

use_keras2()

_tf_already_imported = "tensorflow" in sys.modules

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

KERAS_VERSION = keras.__version__


def _tf_keras_is_keras3():
    """True when tf.keras has already been resolved to Keras 3 in this process."""
    # Until first use, tf.keras is a lazy loader; once resolved, TensorFlow replaces it with the
    # chosen module. Read the module name without touching the loader's attributes.
    loader = vars(tf).get("keras")
    name = vars(loader).get("__name__", "") if loader is not None else ""
    return name.startswith("keras.") or name == "keras"


TF_KERAS_IS_KERAS3 = _tf_already_imported and _tf_keras_is_keras3()
if TF_KERAS_IS_KERAS3:
    warnings.warn(
        "tensorflow was imported and tf.keras resolved to Keras 3 before tfprune was imported. "
        "tfprune uses Keras 2 (tf_keras) and still works, but models built with tf.keras layers "
        "cannot be pruned: build them with `from tfprune.keras import keras` (or `import tf_keras`),"
        " or import tfprune before tensorflow, or set TF_USE_LEGACY_KERAS=1 in the environment.",
        stacklevel=2,
    )


def is_keras3_model(model):
    """True for a Keras 3 model (Keras 3 is not imported to find out: such a model means it is)."""
    keras3 = sys.modules.get("keras")
    model_class = getattr(keras3, "Model", None)
    return isinstance(model_class, type) and isinstance(model, model_class) \
        and not isinstance(model, keras.Model)


def subclassed_message(what, model, library="tf_keras"):
    """The one wording for a subclassed model where tfprune needs the layer graph."""
    return (f"{what} is a subclassed {library} model ({type(model).__module__}."
            f"{type(model).__name__}, with its own call()): tfprune reads the layer graph, which "
            "a subclassed model does not have. Build it as a functional or Sequential model (the "
            "same layers, called on keras.Input), or prune the functional / Sequential models it "
            "is made of one by one; the Dense / Conv sublayers of a tf_keras one can be weight-"
            "pruned in place with tfprune.pruning.subclassed.prune_sublayers")


def check_model(model, argument="model", graph=True):
    """Raise a clear ModelTypeError (a TfpruneError and a TypeError) unless ``model`` is a
    Keras 2 (tf_keras) model; with ``graph``, a functional or Sequential one (pruning reads the
    layer graph, which a subclassed model does not have)."""
    from tfprune.errors import ModelTypeError

    if isinstance(model, keras.Model):
        if graph and not getattr(model, "_is_graph_network", False) \
                and not isinstance(model, keras.Sequential):
            raise ModelTypeError(subclassed_message(f"`{argument}`", model))
        return model
    kind = f"{type(model).__module__}.{type(model).__name__}"
    if is_keras3_model(model):
        raise ModelTypeError(
            f"`{argument}` is a Keras 3 model ({kind}); tfprune and tensorflow-model-optimization "
            "work on tf_keras models: translate it with tfprune.keras3.from_keras3(model, "
            "inputs) (or save it as .keras and give the scripts its path)")
    raise ModelTypeError(f"`{argument}` must be a tf_keras Model, got {kind}")


__all__ = ["tf", "keras", "KERAS_VERSION", "TF_KERAS_IS_KERAS3", "check_model",
           "is_keras3_model", "subclassed_message"]
