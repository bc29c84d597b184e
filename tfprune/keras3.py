"""Keras 3 <-> tf_keras: a functional or Sequential model translated layer by layer.

tensorflow-model-optimization prunes only Keras 2 (tf_keras) models, while most models people
have were built and saved with Keras 3. ``from_keras3`` rebuilds a Keras 3 model's graph with
the tf_keras layer of the same class, copies every weight, and checks the outputs of the two
models against each other on the inputs it is given (refused above a tolerance);
``to_keras3`` does the same the other way, so a pruned or shrunk model goes back to the user as
a Keras 3 model that plain ``import keras`` loads.

Only layers whose meaning is the same in both libraries are translated (``LAYERS``); an option
that one library does not have is dropped only at a value where dropping it is exact
(``DROPPABLE``), otherwise the layer is refused by name and class. What Keras 3 has and tf_keras
lacks (the activations ``hard_sigmoid`` / ``hard_silu``, ConvNeXt's ``LayerScale``,
Inception-ResNet's ``CustomScaleLayer``, depthwise-shaped grouped ``Conv2D``, ``x + 3.0``-style
operations, ``keras.ops.gelu``) is rebuilt from built-in tf_keras layers of the same meaning, op
for op (``keras3_compositions``, the one table of them); those layers come back to Keras 3 as
the same built-in layers, so no file written needs tfprune to load. Nested functional and
Sequential models are inlined. Subclassed models (their own ``call``) have no graph to read
and are refused with what to do instead.

This is the one module that imports Keras 3 (``import keras``), and only when it is used.
"""

import dataclasses
import inspect
import os
import warnings
import zipfile

import numpy as np

from tfprune import io, keras3_compositions as compositions
from tfprune.errors import InternalError, TfpruneError, TranslationError
from tfprune.keras import is_keras3_model, keras as tf_keras, subclassed_message

# Layer classes translated, by their class name (the same in both libraries).
LAYERS = (
    "Activation", "Add", "Average", "AveragePooling1D", "AveragePooling2D", "BatchNormalization",
    "Concatenate", "Conv1D", "Conv2D", "Conv2DTranspose", "Cropping1D", "Cropping2D", "Dense",
    "DepthwiseConv1D", "DepthwiseConv2D",
    "Dropout", "ELU", "Embedding", "Flatten", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "LayerNormalization",
    "LeakyReLU", "MaxPooling1D", "MaxPooling2D", "Maximum", "Minimum", "MultiHeadAttention",
    "Multiply", "Normalization", "Permute", "ReLU", "Rescaling", "Reshape", "Resizing",
    "SeparableConv1D", "SeparableConv2D", "Softmax", "SpatialDropout1D", "SpatialDropout2D",
    "Subtract", "UpSampling1D", "UpSampling2D", "ZeroPadding1D", "ZeroPadding2D",
)
# tfprune's own layers (tfprune/layers.py), translated to their twin of the same registered
# name, config and weights: tf_keras's in tfprune.layers, Keras 3's built here (``own_layers``).
OWN_LAYERS = ("PositionEmbedding",)
# Options one library has and the other does not: the values at which leaving them out is
# exact. Any other value stops the translation with the layer's name.
DROPPABLE = {
    "lora_rank": (None,), "lora_alpha": (None,), "quantization_config": (None,),
    "synchronized": (False,), "use_gate": (False,), "sliding_window": (None,),
    "rms_scaling": (False,), "pad_to_aspect_ratio": (False,), "fill_mode": ("constant",),
    "fill_value": (0.0, 0), "antialias": (False,), "softmax_robust_masking": (False,),
    "flash_attention": (None, False), "input_length": (None,), "fused": (None, True, False),
    "renorm": (False,), "renorm_clipping": (None,), "renorm_momentum": "any",
    "query_shape": "any", "key_shape": "any", "value_shape": "any",  # tf_keras MHA: rebuilt
    "batch_input_shape": "any", "batch_shape": "any",  # a first layer's input: the Input's
    "sparse": (False,), "ragged": (False,), "optional": (False,), "seed": "any",
    "trainable": "any",  # only where the target layer has no weights to freeze
    "noise_shape": (None,),
    "input_axes": (None,), "output_axes": (None,), "virtual_batch_size": (None,),
    "adjustment": (None,), "moving_mean_constraint": (None,), "groups": (1,),
    "moving_variance_constraint": (None,),
}
# Option names that differ: (Keras 3 name, tf_keras name) per class.
RENAMES = {"LeakyReLU": (("negative_slope", "alpha"),)}
# Weight names that differ: {class: {Keras 3 name: tf_keras name}}.
WEIGHT_NAMES = {"DepthwiseConv1D": {"kernel": "depthwise_kernel"},
                "DepthwiseConv2D": {"kernel": "depthwise_kernel"}}
# Activation names whose function differs between the libraries.
DIFFERENT_ACTIVATIONS = {
    "hard_sigmoid": "Keras 3 computes relu6(x + 3) / 6, tf_keras clip(0.2 x + 0.5, 0, 1)",
}
TOLERANCE = 1e-4  # outputs may differ by this much times max(1, largest |output|)
SAMPLE_SIZE = 32


def keras3():
    """The Keras 3 package (``import keras``), imported here only."""
    import keras

    if int(keras.__version__.split(".")[0]) < 3:
        raise TfpruneError(f"`import keras` gives Keras {keras.__version__}; the Keras 3 "
                           "translation needs Keras 3 (pip install 'keras>=3')")
    return keras


_OWN_KERAS3 = {}


def own_layers():
    """{class name: Keras 3 class} of tfprune's own layers' Keras 3 twins (tfprune/layers.py
    holds the tf_keras ones): built on first use and registered with Keras 3 under the same
    names ("tfprune>PositionEmbedding"), so a Keras 3 file holding them loads."""
    if _OWN_KERAS3:
        return _OWN_KERAS3
    keras = keras3()
    from tfprune import layers as own

    @keras.saving.register_keras_serializable(package=own.PACKAGE)
    class PositionEmbedding(keras.layers.Layer):
        """Keras 3 twin of tfprune.layers.PositionEmbedding: inputs (batch, T, width) + a
        learned (sequence_length, width) ``embeddings``[:T]."""

        def __init__(self, sequence_length, initializer=None, **kwargs):
            super().__init__(**kwargs)
            self.sequence_length = own.check_sequence_length(sequence_length)
            self.initializer = keras.initializers.get(
                own.DEFAULT_INITIALIZER if initializer is None else initializer)

        def build(self, input_shape):
            width = own.check_input_shape(input_shape, self.sequence_length, self.name)
            self.embeddings = self.add_weight(name="embeddings",
                                              shape=(self.sequence_length, width),
                                              initializer=self.initializer, trainable=True)

        def call(self, inputs):
            positions = inputs.shape[1]
            if positions is None:
                positions = keras.ops.shape(inputs)[1]
            return inputs + keras.ops.cast(self.embeddings[:positions], inputs.dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "sequence_length": self.sequence_length,
                    "initializer": keras.initializers.serialize(self.initializer)}

    PositionEmbedding.__module__, PositionEmbedding.__qualname__ = __name__, "PositionEmbedding"
    _OWN_KERAS3.update(PositionEmbedding=PositionEmbedding)
    return _OWN_KERAS3


def __getattr__(name):
    """``tfprune.keras3.PositionEmbedding``: the Keras 3 twins of tfprune's own layers."""
    if name in OWN_LAYERS:
        return own_layers()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def library(model):
    """'keras3', 'tf_keras', or None for an object that is neither model."""
    if isinstance(model, tf_keras.Model):
        return "tf_keras"
    return "keras3" if is_keras3_model(model) else None


def saved_version(path):
    """The Keras version recorded in a saved ``.keras`` file (None when it records none)."""
    import json

    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read("metadata.json")).get("keras_version")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def is_keras3_file(path):
    """True for a ``.keras`` file saved by Keras 3."""
    version = saved_version(path)
    return bool(version) and version.split(".")[0].isdigit() and int(version.split(".")[0]) >= 3


def load(path, argument="model_path"):
    """A Keras 3 model from a ``.keras`` file saved by Keras 3, uncompiled; one clear error for a
    file Keras 3 cannot read (corrupt, a class it does not know, a lambda in safe mode)."""
    keras = keras3()
    own_layers()  # tfprune's own layers, registered with Keras 3
    try:
        return keras.saving.load_model(os.fspath(path), compile=False)
    except Exception as err:  # noqa: BLE001  (Keras raises many kinds for a bad file)
        text = " ".join(str(err).split())
        first = text[:300] + ("..." if len(text) > 300 else "") or type(err).__name__
        raise TfpruneError(f"cannot load Keras 3 model {os.fspath(path)!r} (`{argument}`): "
                           f"{type(err).__name__}: {first}") from None


def save(model, path):
    """Save a Keras 3 model to ``path`` (.keras) atomically."""
    if not os.fspath(path).endswith(".keras"):
        raise TfpruneError(f"a Keras 3 model is saved as a .keras file, got {os.fspath(path)!r}")
    with io.atomic_path(path, suffix=".keras") as tmp:
        model.save(tmp)
    return path


def accuracy(model, x, y, batch_size=256):
    """Top-1 accuracy of a Keras 3 (or tf_keras) classifier on arrays, predicted in batches."""
    predictions = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    return float(np.mean(np.argmax(predictions, axis=-1) == np.asarray(y).reshape(-1)))


# Keras 3's own weight quantization (Model.quantize): what it covers in the installed Keras.
KERAS_QUANTIZE_MODES = ("int8", "int4")


def quantized(path, mode, x, y):
    """Keras 3's ``Model.quantize(mode)`` on the Keras 3 model saved at ``path`` (a fresh
    copy): its test accuracy on (x, y) with Keras 3, its weights' bytes as Keras holds them,
    and the layers it quantized (Dense, EinsumDense, Embedding: what Keras implements it for;
    the others stay float32, counted as ``float_layers``)."""
    model = load(path)
    before = _weight_bytes(model)
    with warnings.catch_warnings():  # "Layer Conv2D does not have a `quantize` method"
        warnings.simplefilter("ignore", UserWarning)
        model.quantize(mode)
    layers = [layer.name for layer in model._flatten_layers(include_self=False)
              if getattr(layer, "quantization_mode", None)]
    weighted = [layer.name for layer in model._flatten_layers(include_self=False)
                if layer.weights and not isinstance(layer, keras3().Model)]
    return {"mode": mode, "accuracy": accuracy(model, x, y), "weight_bytes": _weight_bytes(model),
            "float32_weight_bytes": before, "quantized_layers": layers,
            "float_layers": len([name for name in weighted if name not in layers])}


def _weight_bytes(model):
    return int(sum(np.asarray(w.numpy()).nbytes for w in model.weights))


@dataclasses.dataclass
class Translation:
    """A translated model and how closely it matches the original."""

    model: object
    source: str           # 'keras3' or 'tf_keras'
    layers: int           # layers translated (inputs included)
    max_abs_diff: float   # largest |output difference| on the check inputs
    check_inputs: int     # how many inputs the outputs were compared on
    synthetic_inputs: bool

    def summary(self):
        kind = "random" if self.synthetic_inputs else "given"
        return {"source": self.source, "layers": self.layers,
                "max_abs_diff": self.max_abs_diff, "check_inputs": self.check_inputs,
                "check_inputs_kind": kind}


def from_keras3(model, inputs=None, tolerance=TOLERANCE, name="model"):
    """The tf_keras model equivalent to Keras 3 ``model``: a Translation, outputs checked on
    ``inputs`` (a batch of real inputs; random ones when None)."""
    return _translate(model, _Keras3(keras3()), _TfKeras(), inputs, tolerance, name)


def to_keras3(model, inputs=None, tolerance=TOLERANCE, name="model"):
    """The Keras 3 model equivalent to tf_keras ``model``: a Translation (see ``from_keras3``)."""
    return _translate(model, _TfKeras(), _Keras3(keras3()), inputs, tolerance, name)


def save_as_keras3(model, path, inputs=None, tolerance=TOLERANCE, name="model"):
    """Translate tf_keras ``model`` to Keras 3 and save it to ``path``; the Translation."""
    translation = to_keras3(model, inputs, tolerance, name)
    save(translation.model, path)
    return translation


# -- the two libraries, seen the same way ----------------------------------------------------

class _Keras3:
    name = "Keras 3"
    key = "keras3"

    def __init__(self, keras):
        self.keras = keras
        from keras.src.models.functional import Functional

        self.functional = Functional

    def owns(self, model):
        return library(model) == "keras3"

    def graph(self, model):
        """(inputs, nodes in call order, outputs) of a functional or Sequential model; None for
        a subclassed one."""
        if isinstance(model, self.keras.Sequential):
            model = getattr(model, "_functional", None)
            if model is None:
                return None
        if not isinstance(model, self.functional):
            return None
        nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True)
                 for node in model._nodes_by_depth[depth]]
        return list(model.inputs), nodes, list(model.outputs)

    def is_model(self, layer):
        return isinstance(layer, self.keras.Model)

    @staticmethod
    def node(node):
        """(layer, args, kwargs, outputs as a list) of one node."""
        return node.operation, node.arguments.args, node.arguments.kwargs, list(node.outputs)

    def is_tensor(self, value):
        return isinstance(value, self.keras.KerasTensor)

    def is_input_layer(self, layer):
        return isinstance(layer, self.keras.layers.InputLayer)

    def weight_names(self, layer):
        return [w.path.split("/")[-1] for w in layer.weights]

    def layer_class(self, name):
        if name in OWN_LAYERS:
            return own_layers()[name]
        return getattr(self.keras.layers, name, None)

    def make_input(self, tensor, name):
        shape = tuple(tensor.shape)
        return self.keras.Input(shape=shape[1:], batch_size=shape[0], dtype=tensor.dtype,
                                name=name)

    def make_model(self, inputs, outputs, name):
        return self.keras.Model(inputs, outputs, name=name)

    def objects(self, kind):
        return getattr(self.keras, kind)

    def activation_known(self, name):
        return hasattr(self.keras.activations, name)

    @staticmethod
    def dtype_name(layer):
        return layer.dtype_policy.name

    @staticmethod
    def run(model, inputs):
        out = model(inputs[0] if len(inputs) == 1 else inputs, training=False)
        return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


class _TfKeras(_Keras3):
    name = "tf_keras"
    key = "tf_keras"

    def __init__(self):  # noqa: D107  (no Keras 3 needed)
        self.keras = tf_keras

    def owns(self, model):
        return isinstance(model, tf_keras.Model)

    def graph(self, model):
        if not getattr(model, "_is_graph_network", False):
            return None
        nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True)
                 for node in model._nodes_by_depth[depth]]
        return list(model.inputs), nodes, list(model.outputs)

    @staticmethod
    def node(node):
        outputs = node.outputs
        return (node.layer, tuple(node.call_args), dict(node.call_kwargs),
                list(outputs) if isinstance(outputs, (list, tuple)) else [outputs])

    def is_tensor(self, value):
        return hasattr(value, "_keras_history") and not isinstance(value, (list, tuple, dict))

    def weight_names(self, layer):
        return [w.name.split("/")[-1].split(":")[0] for w in layer.weights]

    def layer_class(self, name):
        if name in OWN_LAYERS:
            from tfprune import layers as own

            return getattr(own, name)
        return getattr(self.keras.layers, name, None)

    def activation_known(self, name):
        try:
            tf_keras.activations.get(name)
        except ValueError:
            return False
        return True


# -- the translation -------------------------------------------------------------------------

def _class_path(layer):
    return f"{type(layer).__module__}.{type(layer).__name__}"


def subclassed_error(model, name, lib):
    return TranslationError(subclassed_message(name, model, lib))


def _translate(model, src, dst, inputs, tolerance, name):
    if not src.owns(model):
        raise TranslationError(f"{name} must be a {src.name} model, got "
                               f"{type(model).__module__}.{type(model).__name__}")
    if src.graph(model) is None:
        raise subclassed_error(model, name, src.name)
    builder = _Builder(src, dst)
    new_inputs = [builder.new_input(t) for t in src.graph(model)[0]]
    outputs = builder.inline(model, new_inputs)
    translated = dst.make_model(new_inputs if len(new_inputs) > 1 else new_inputs[0],
                                outputs if len(outputs) > 1 else outputs[0], model.name)
    for old, new in builder.pairs:
        _copy_weights(src, dst, old, new)
    for new, values in builder.assignments:
        new.set_weights(values)
    sample, synthetic = _check_inputs(model, src, inputs)
    try:
        want, got = src.run(model, sample), dst.run(translated, sample)
    except Exception as err:  # noqa: BLE001  (Keras raises many kinds for a bad input)
        first = " ".join(str(err).split())[:300]
        raise TranslationError(
            f"{name}: cannot run it on the check inputs of shape "
            f"{', '.join(str(tuple(x.shape)) for x in sample)} ({type(err).__name__}: {first}); "
            f"it takes {getattr(model, 'input_shape', '?')}") from None
    diff = max(float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
               for a, b in zip(want, got))
    scale = max([1.0] + [float(np.max(np.abs(a))) for a in want if a.size])
    if not np.isfinite(diff) or diff > tolerance * scale:
        culprit = _first_difference(model, translated, builder, src, dst, sample, tolerance)
        raise TranslationError(
            f"{name}: the {dst.name} translation's outputs differ from the {src.name} model's by "
            f"up to {diff:.3g} on {len(sample[0])} inputs (allowed {tolerance * scale:.3g}); "
            f"{culprit or 'a layer computes differently in the two libraries'}, so it is not "
            "translated")
    return Translation(translated, src.key, builder.count, diff, int(len(sample[0])), synthetic)


def _first_difference(model, translated, builder, src, dst, sample, tolerance):
    """'layer NAME (CLASS) computes differently' for the first layer of the outer graph whose
    output differs beyond the tolerance; None when it cannot be told."""
    pairs = [(layer, old, new) for layer, old, new in builder.trace
             if not src.is_model(layer)]
    try:
        want = src.run(src.make_model(src.graph(model)[0], [o for _, o, _ in pairs],
                                      "trace"), sample)
        got = dst.run(dst.make_model(translated.inputs, [n for _, _, n in pairs], "trace"), sample)
    except Exception:  # noqa: BLE001  (a diagnosis only; the error is raised anyway)
        return None
    for (layer, _, _), a, b in zip(pairs, want, got):
        if a.shape == b.shape and a.size:
            scale = max(1.0, float(np.max(np.abs(a))))
            if float(np.max(np.abs(a.astype(np.float64) - b))) > tolerance * scale:
                return f"layer {layer.name!r} ({type(layer).__name__}) computes differently"
    return None


class _Builder:
    """Walks a source graph and calls the matching target layers on the mapped tensors."""

    def __init__(self, src, dst):
        self.src, self.dst = src, dst
        self.layers = {}   # id(source layer) -> target layer
        self.pairs = []    # (source layer, target layer) with weights to copy
        self.assignments = []  # (target layer, weights) of compositions
        self.composed = {}  # (id(source layer), part) -> target layer of a composition
        self.names = set()
        self.count = 0
        self.trace = []    # (source layer, source tensor, target tensor) of the outer graph

    def unique(self, name, prefix):
        if name in self.names:
            name = f"{prefix}_{name}"
        if name in self.names:
            raise TranslationError(f"two layers are named {name!r} after inlining nested models; "
                                   "rename one")
        self.names.add(name)
        return name

    def new_input(self, tensor):
        layer = tensor._keras_history[0]
        self.count += 1
        return self.dst.make_input(tensor, self.unique(layer.name, "input"))

    def inline(self, model, values, prefix=""):
        """Call ``model``'s graph on target tensors ``values``; its outputs as target tensors."""
        inputs, nodes, outputs = self.src.graph(model)
        if len(inputs) != len(values):
            raise TranslationError(f"nested model {model.name!r} takes {len(inputs)} inputs but "
                                   f"is called on {len(values)} tensors (inputs in a dict?); "
                                   "tfprune inlines nested models called on a tensor or a list")
        tensors = {id(t): v for t, v in zip(inputs, values)}
        for node in nodes:
            layer, args, kwargs, outs = self.src.node(node)
            if self.src.is_input_layer(layer):
                continue
            new_args = self.map(args, tensors, layer)
            if kwargs.get("training") is not None and self.src.key == "tf_keras":
                # tf_keras honours a recorded training=; Keras 3 overrides it with the outer
                # call's, so the two would differ while training (the check runs in inference).
                raise TranslationError(
                    f"cannot translate layer {layer.name!r} ({_class_path(layer)}): it is called "
                    f"with training={kwargs['training']!r}, which Keras 3 overrides with the "
                    "model's own training flag; freeze it with trainable=False instead")
            # Keras 3 replaces a recorded training= by the outer call's: dropped, as it does.
            new_kwargs = {k: self.map(v, tensors, layer) for k, v in kwargs.items()
                          if v is not None and k not in ("mask", "training")}
            if self.src.is_model(layer):
                if self.src.graph(layer) is None:
                    raise subclassed_error(layer, f"layer {layer.name!r} of {model.name!r}",
                                           self.src.name)
                flat = _flatten(new_args)
                results = self.inline(layer, flat, layer.name)
            else:
                if self.src.key == "keras3":
                    results = compositions.compose(_Parts(self, layer, prefix), layer, new_args)
                else:
                    results = compositions.compose_back(
                        self.dst.keras, layer, new_args, new_kwargs,
                        lambda: self.unique(layer.name, prefix or "layer"))
                if results is None:
                    target = self.layers.get(id(layer))
                    if target is None:
                        target = self.layers[id(layer)] = self.make_layer(layer, prefix)
                    result = target(*new_args, **new_kwargs)
                    results = list(result) if isinstance(result, (list, tuple)) else [result]
            if len(results) != len(outs):
                raise TranslationError(f"layer {layer.name!r} ({_class_path(layer)}) returns "
                                       f"{len(results)} tensors in {self.dst.name}, "
                                       f"{len(outs)} in {self.src.name}")
            tensors.update({id(t): v for t, v in zip(outs, results)})
            if not prefix:
                self.trace.extend((layer, t, v) for t, v in zip(outs, results))
        missing = [t for t in outputs if id(t) not in tensors]
        if missing:
            raise InternalError(f"{model.name}: outputs not reached by the walk")
        return [tensors[id(t)] for t in outputs]

    def map(self, value, tensors, layer):
        if self.src.is_tensor(value):
            if id(value) not in tensors:
                raise TranslationError(f"layer {layer.name!r} takes a tensor that is not "
                                       "computed by a layer of the model (an op outside layers?)")
            return tensors[id(value)]
        if isinstance(value, (list, tuple)):
            return type(value)(self.map(v, tensors, layer) for v in value)
        if isinstance(value, dict):
            return {k: self.map(v, tensors, layer) for k, v in value.items()}
        return value

    def make_layer(self, layer, prefix, target=None, changes=None, copy_weights=True):
        """The target layer translating ``layer``: of class ``target`` (default: the same),
        its translated config changed by ``changes`` ({key: value, None to drop, (new key,) to
        rename}); its weights copied unless ``copy_weights`` is False."""
        cls = type(layer).__name__
        where = f"layer {layer.name!r} ({_class_path(layer)})"
        if not isinstance(layer, self.src.keras.layers.Layer):
            raise TranslationError(
                f"cannot translate operation {layer.name!r} ({_class_path(layer)}): an op called "
                f"on symbolic tensors outside any layer (keras.ops.*); tfprune translates "
                "layers only: use the layer that does the same (e.g. keras.layers.Add, "
                "Activation, Rescaling)")
        if cls in OWN_LAYERS:
            known = type(layer) is self.src.layer_class(cls)
        else:
            known = cls in LAYERS and type(layer).__module__.split(".")[0] in ("keras",
                                                                               "tf_keras")
        target_class = self.dst.layer_class(target or cls) if known else None
        if target_class is None:
            composed = (f"; from Keras 3 also {', '.join(compositions.LAYERS)} and the "
                        f"activations {', '.join(compositions.ACTIVATIONS)}, as compositions "
                        "of these") if self.src.key == "keras3" else ""
            raise TranslationError(
                f"cannot translate {where} from {self.src.name} to {self.dst.name}: tfprune "
                f"translates the layers {', '.join(LAYERS)}, tfprune's own "
                f"{', '.join(OWN_LAYERS)} (tfprune.layers), and functional or Sequential "
                f"models of them{composed}")
        config = _translate_config(layer, target or cls, self.src, self.dst, where, changes)
        config["name"] = self.unique(layer.name, prefix or "layer")
        try:
            new = target_class(**config)
        except (TypeError, ValueError) as err:
            raise TranslationError(f"cannot translate {where}: {self.dst.name} refuses its "
                                   f"options ({' '.join(str(err).split())})") from None
        self.count += 1
        if layer.weights and copy_weights:
            self.pairs.append((layer, new))
        return new


class _Parts:
    """What a composition (``keras3_compositions``) builds one source layer from: target
    layers named after it, weights set once the model is built."""

    def __init__(self, builder, layer, prefix):
        self.builder, self.layer, self.prefix = builder, layer, prefix

    def new(self, cls, part, **config):
        """A built-in target layer ``cls`` named ``<layer>_<part>`` (the layer's own name when
        ``part`` is None); the same one when a shared layer is called again."""
        key = (id(self.layer), part, cls)
        if key not in self.builder.composed:
            name = self.layer.name if part is None else f"{self.layer.name}_{part}"
            policy = getattr(self.layer, "dtype_policy", None)
            config.setdefault("dtype", policy.name if policy is not None else "float32")
            self.builder.count += 1
            klass = cls if isinstance(cls, type) else self.builder.dst.layer_class(cls)
            self.builder.composed[key] = klass(
                name=self.builder.unique(name, self.prefix or "layer"), **config)
        return self.builder.composed[key]

    def translate(self, target=None, changes=None, copy_weights=False):
        """The layer itself translated (see ``_Builder.make_layer``), once."""
        new = self.builder.layers.get(id(self.layer))
        if new is None:
            new = self.builder.layers[id(self.layer)] = self.builder.make_layer(
                self.layer, self.prefix, target, changes, copy_weights)
        return new

    def weights(self, target, values):
        if all(target is not t for t, _ in self.builder.assignments):
            self.builder.assignments.append((target, values))

    def is_tensor(self, value):
        return self.builder.dst.is_tensor(value)


def _flatten(value):
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _flatten(v)]
    return [value]


def _translate_config(layer, cls, src, dst, where, changes=None):
    config = {k: _plain(v) for k, v in layer.get_config().items()}
    config["dtype"] = src.dtype_name(layer)
    for key, value in (changes or {}).items():
        if value is None:
            config.pop(key, None)
        elif isinstance(value, tuple):
            if key in config:
                config[value[0]] = config.pop(key)
        else:
            config[key] = value
    if cls == "BatchNormalization" and isinstance(config.get("axis"), list):
        if len(config["axis"]) != 1:
            raise TranslationError(f"cannot translate {where}: it normalizes over several axes "
                                   f"{config['axis']}, which Keras 3 does not")
        config["axis"] = config["axis"][0]
    forward = src.key == "keras3"
    for k3_key, tfk_key in RENAMES.get(cls, ()):
        old, new = (k3_key, tfk_key) if forward else (tfk_key, k3_key)
        if old in config:
            config[new] = config.pop(old)
    signature = _accepted(dst.layer_class(cls))
    for key in list(config):
        value = config[key]
        if key.rsplit("_", 1)[-1] in ("initializer", "regularizer", "constraint"):
            config[key] = _object(key.rsplit("_", 1)[-1] + "s", value, src, dst, where, key)
        elif key == "activation":
            config[key] = _activation(value, dst, where)
        if signature is not None and key not in signature and (
                key.endswith("_initializer") or (
                    key.endswith(("_regularizer", "_constraint")) and value is None)):
            del config[key]  # weights are copied: an initializer the target lacks is unused
            continue
        if signature is not None and key not in signature and key in DROPPABLE:
            allowed = DROPPABLE[key]
            if allowed != "any" and not any(_same(value, a) for a in allowed):
                raise TranslationError(
                    f"cannot translate {where}: its option {key}={value!r} has no equivalent "
                    f"in {dst.name} (translated only at {', '.join(map(repr, allowed))})")
            del config[key]
    return config


def _plain(value):
    """Plain Python lists and dicts in place of TensorFlow's tracking wrappers."""
    if isinstance(value, dict) or type(value).__name__ == "_DictWrapper":
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list) or type(value).__name__ == "ListWrapper":
        return [_plain(v) for v in value]
    return value


def _accepted(klass):
    """The keyword names a layer class's constructor (and its bases') take; None if open."""
    names = set()
    for base in klass.__mro__:
        init = vars(base).get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters
        names.update(p for p in params if p not in ("self", "args", "kwargs"))
        if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return names
    return names | {"name", "dtype", "trainable", "activity_regularizer", "input_shape",
                    "batch_size", "autocast", "input_dim"}


def _same(value, allowed):
    return value is allowed if allowed is None or isinstance(allowed, bool) else value == allowed


def _object(kind, value, src, dst, where, key):
    """An initializer / regularizer / constraint rebuilt in the target library."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if not isinstance(value, dict):  # an object, not its config
        value = {"class_name": type(value).__name__, "config": value.get_config()}
    cls, config = value.get("class_name"), dict(value.get("config") or {})
    module = dst.objects(kind)
    klass = getattr(module, cls, None)
    if klass is None or not isinstance(klass, type):
        raise TranslationError(f"cannot translate {where}: its {key} {cls!r} has no "
                               f"{dst.name} equivalent")
    accepted = set(inspect.signature(klass.__init__).parameters)
    for name in [n for n in config if n not in accepted]:
        if config[name] is not None:
            raise TranslationError(f"cannot translate {where}: its {key} {cls} option "
                                   f"{name}={config[name]!r} has no {dst.name} equivalent")
        del config[name]
    return klass(**config)


def _activation(value, dst, where):
    if value is None or callable(value):
        return value
    if isinstance(value, dict):
        value = value.get("config", {}).get("name") if value.get("class_name") == "function" \
            else value.get("class_name")
    if not isinstance(value, str) or not dst.activation_known(value):
        raise TranslationError(f"cannot translate {where}: activation {value!r} is not a "
                               f"built-in {dst.name} activation")
    if value in DIFFERENT_ACTIVATIONS:
        raise TranslationError(f"cannot translate {where}: activation {value!r} differs between "
                               f"the libraries ({DIFFERENT_ACTIVATIONS[value]})")
    return value


def _copy_weights(src, dst, old, new):
    values = old.get_weights()
    names, new_names = src.weight_names(old), dst.weight_names(new)
    aliases = WEIGHT_NAMES.get(type(old).__name__, {})
    if src.key == "keras3":
        names = [aliases.get(n, n) for n in names]
    else:
        new_names = [aliases.get(n, n) for n in new_names]
    shapes = [tuple(v.shape) for v in values]
    new_shapes = [tuple(w.shape) for w in new.weights]
    if names != new_names or shapes != new_shapes:
        raise TranslationError(
            f"cannot translate layer {old.name!r} ({_class_path(old)}): its weights "
            f"{list(zip(names, shapes))} do not match {dst.name}'s "
            f"{list(zip(new_names, new_shapes))}")
    new.set_weights(values)
    if hasattr(new, "finalize_state"):  # Normalization: derive what call() uses from weights
        new.finalize_state()


def _check_inputs(model, src, inputs):
    """The inputs to compare outputs on: the given batch, or a seeded random one."""
    specs = src.graph(model)[0]
    if inputs is not None:
        sample = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if len(sample) != len(specs):
            raise TfpruneError(f"the model takes {len(specs)} inputs, got {len(sample)} arrays "
                               "to check it on")
        return [np.asarray(x) for x in sample], False
    rng = np.random.default_rng(0)
    sample = []
    for spec in specs:
        shape = (SAMPLE_SIZE,) + tuple(int(d) if d is not None else 8 for d in spec.shape[1:])
        dtype = np.dtype(getattr(spec.dtype, "name", spec.dtype))
        if np.issubdtype(dtype, np.integer):
            sample.append(rng.integers(0, 2, shape).astype(dtype))
        else:
            sample.append(rng.uniform(0.0, 1.0, shape).astype(dtype))
    return sample, True
