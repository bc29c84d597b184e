"""Keras 3 pieces with no tf_keras layer of their own, rebuilt from built-in tf_keras layers.

Used by ``keras3.from_keras3`` (the Keras 3 -> tf_keras direction) before the one-to-one
translation. Each composition computes what Keras 3's TensorFlow backend computes, operation for
operation, so the translation is exact (the tests compare bit for bit where the operations are
the same, and to float rounding where only the summation order differs):

- activation ``hard_sigmoid`` (Keras 3: ``relu6(x + 3) / 6``; tf_keras's own differs):
  ``Rescaling(1, offset=3)`` -> ``ReLU(max_value=6)`` -> ``Normalization(mean=0, variance=36)``
  (which divides by ``sqrt(36) = 6``; multiplying by 1/6 would be one rounding off);
- activation ``hard_silu`` / ``hard_swish``: ``Multiply([x, hard_sigmoid(x)])``;
- any other layer whose ``activation`` option is one of these: the layer with ``linear``, then
  the composition;
- ``LayerScale`` (ConvNeXt, ``x * gamma`` per channel): ``DepthwiseConv2D(1, use_bias=False)``
  on 4-D inputs, ``DepthwiseConv1D(1, use_bias=False)`` on 3-D ones, kernel ``gamma``;
- ``CustomScaleLayer`` (Inception-ResNet, ``x + r * scale``): ``Rescaling(scale)`` on ``r``,
  then ``Add``;
- ``Conv2D`` with ``groups == filters == input channels``: ``DepthwiseConv2D`` (kernel
  ``(k, k, 1, C)`` -> ``(k, k, C, 1)``), so the graph and TFLite see a depthwise conv. Keras 3
  runs a grouped conv through XLA on CPU, so the sums differ in order: a few float ulps;
- operations called on symbolic tensors outside any layer (``x + 3.0``, ``x * (1 / 6)``):
  ``add`` / ``subtract`` / ``multiply`` by a constant -> ``Rescaling``; ``divide`` by a
  positive constant -> ``Normalization``; ``add`` / ``subtract`` / ``multiply`` of two tensors
  -> ``Add`` / ``Subtract`` / ``Multiply``;
- ``keras.ops.gelu`` (an operation; its default is the tanh approximation, while the
  ``gelu`` activation is exact): exact -> ``Activation("gelu")``; approximate -> tf_keras's
  ``TFOpLambda`` of ``tf.nn.gelu(x, approximate=True)``, the very function Keras 3 calls (no
  composition of layers is exact: ``pow(x, 3)`` and ``x * x * x`` differ by an ulp). Going back
  (``compose_back``) it becomes the Keras 3 operation again.

The composed layers are named after the original: the last one takes the original's name (so
the output a user looks up by name is the same tensor), the others ``<name>_<part>`` (e.g.
``<name>_hard_sigmoid_offset``). They are built-in layers, so ``to_keras3`` returns them as the
same built-in Keras 3 layers and no written file needs tfprune to load.
"""

import numpy as np

from tfprune.errors import TranslationError
from tfprune.keras import keras as tf_keras, tf

# Keras 3 activation names composed from layers (wherever they appear: Activation or option).
ACTIVATIONS = ("hard_sigmoid", "hard_silu", "hard_swish")
# Keras 3 layer classes composed from layers, by module path.
LAYERS = ("keras.src.applications.convnext.LayerScale",
          "keras.src.applications.inception_resnet_v2.CustomScaleLayer")
# Keras 3 operations (keras.ops.*, outside any layer) composed from layers, by module path.
OPERATIONS = ("keras.src.ops.numpy.Add", "keras.src.ops.numpy.Subtract",
              "keras.src.ops.numpy.Multiply", "keras.src.ops.numpy.Divide",
              "keras.src.ops.numpy.TrueDivide", "keras.src.ops.nn.Gelu")


def class_path(layer):
    return f"{type(layer).__module__}.{type(layer).__name__}"


def compose(parts, layer, args):
    """The target tensors computing ``layer`` on ``args`` (mapped) from built-in layers; None
    when ``layer`` translates one-to-one."""
    path = class_path(layer)
    if path == "keras.src.ops.nn.Gelu":
        if not layer.approximate:
            return [parts.new("Activation", None, activation="gelu")(args[0])]
        return [parts.new(tf_keras.src.layers.TFOpLambda, None, function=tf.nn.gelu)(
            args[0], approximate=True)]
    if path in OPERATIONS:
        return [_operation(parts, layer, args)]
    if path == LAYERS[0]:
        return [_layer_scale(parts, layer, args[0])]
    if path == LAYERS[1]:
        x, residual = args[0]
        return [parts.new("Add", None)([x, parts.new("Rescaling", "scale",
                                                     scale=float(layer.scale))(residual)])]
    if type(layer).__module__.split(".")[0] != "keras" or not hasattr(layer, "get_config"):
        return None  # a custom layer is never composed: refused by name (make_layer)
    config = layer.get_config()
    activation = _activation_name(config.get("activation"))
    depthwise = _is_depthwise(layer, config, args)
    if activation not in ACTIVATIONS and not depthwise:
        return None
    if type(layer).__name__ == "Activation":
        return [_activation(parts, activation, args[0], last=None)]
    changes = {"activation": "linear"} if activation in ACTIVATIONS else {}
    if depthwise:
        kernel, *rest = layer.get_weights()
        target = parts.translate("DepthwiseConv2D", changes=dict(changes, **_DEPTHWISE))
        output = target(*args)
        parts.weights(target, [kernel.reshape(kernel.shape[:2] + (kernel.shape[3], 1))] + rest)
    else:
        output = parts.translate(None, changes=changes, copy_weights=True)(*args)
    if activation in ACTIVATIONS:
        output = _activation(parts, activation, output, last=activation)
    return [output]


def compose_back(keras, layer, args, kwargs, name):
    """The Keras 3 tensors computing tf_keras ``layer`` where it is not a Keras 3 layer (the
    ``TFOpLambda`` of ``tf.nn.gelu`` above), named ``name()``; None when it translates
    one-to-one. ``keras``: the Keras 3 package, which ``keras3`` alone imports."""
    if type(layer).__name__ != "TFOpLambda" or layer.get_config().get("function") != "nn.gelu":
        return None
    approximate = kwargs.get("approximate", args[1] if len(args) > 1 else False)
    gelu = keras.src.ops.nn.Gelu  # the operation keras.ops.gelu records, here with a name
    return [gelu(approximate=bool(approximate), name=name())(args[0])]


# Conv2D options renamed for DepthwiseConv2D (None: dropped; depth_multiplier set).
_DEPTHWISE = {"filters": None, "groups": None, "depth_multiplier": 1,
              "kernel_initializer": ("depthwise_initializer",),
              "kernel_regularizer": ("depthwise_regularizer",),
              "kernel_constraint": ("depthwise_constraint",)}


def _is_depthwise(layer, config, args):
    if type(layer).__name__ != "Conv2D" or config.get("groups", 1) == 1:
        return False
    channels = args[0].shape[-1 if config.get("data_format") != "channels_first" else 1]
    return config["groups"] == config["filters"] == channels


def _activation_name(value):
    if isinstance(value, dict):
        value = value.get("config", {}).get("name") if value.get("class_name") == "function" \
            else value.get("class_name")
    return value if isinstance(value, str) else None


def _activation(parts, name, x, last):
    """``name`` on ``x``; the last layer is named ``<layer>_<last>`` (the layer's own name when
    ``last`` is None)."""
    if name == "hard_sigmoid":
        return _hard_sigmoid(parts, x, last)
    prefix = "hard_sigmoid" if last is None else f"{last}_hard_sigmoid"
    return parts.new("Multiply", last)([x, _hard_sigmoid(parts, x, prefix)])


def _hard_sigmoid(parts, x, last):
    prefix = "hard_sigmoid" if last is None else last
    x = parts.new("Rescaling", f"{prefix}_offset", scale=1.0, offset=3.0)(x)
    x = parts.new("ReLU", f"{prefix}_relu6", max_value=6.0)(x)
    return _divide(parts, x, 6.0, last)


def _divide(parts, x, divisor, part):
    """x / divisor, exactly: Normalization divides by sqrt(variance), and sqrt(d * d) == d."""
    return parts.new("Normalization", part, axis=None, mean=0.0, variance=divisor * divisor)(x)


def _layer_scale(parts, layer, x):
    gamma = layer.get_weights()[0]
    rank = len(x.shape)
    if rank not in (3, 4):
        raise TranslationError(f"cannot translate layer {layer.name!r} ({class_path(layer)}): "
                               f"it scales a rank-{rank} input; tfprune translates it on rank 3 "
                               "(tokens) and rank 4 (images) as a 1x1 depthwise conv")
    kind = "DepthwiseConv2D" if rank == 4 else "DepthwiseConv1D"
    target = parts.new(kind, None, kernel_size=1, use_bias=False)
    output = target(x)
    parts.weights(target, [gamma.reshape((1,) * (rank - 2) + (gamma.shape[0], 1))])
    return output


def _operation(parts, op, args):
    kind = type(op).__name__
    where = f"operation {op.name!r} ({class_path(op)})"
    if len(args) != 2:
        raise TranslationError(f"cannot translate {where}: it takes {len(args)} arguments")
    tensors = [parts.is_tensor(a) for a in args]
    if all(tensors):
        if kind in ("Divide", "TrueDivide"):
            raise TranslationError(f"cannot translate {where}: a division of two tensors has no "
                                   "tf_keras layer; tfprune translates division by a constant")
        return parts.new(kind, None)(list(args))
    constant = _constant(args[1] if tensors[0] else args[0], where)
    x = args[0] if tensors[0] else args[1]
    if not x.dtype.is_floating:
        raise TranslationError(f"cannot translate {where}: tfprune translates arithmetic on "
                               f"floating-point tensors, got {x.dtype.name}")
    if kind in ("Divide", "TrueDivide"):
        if not tensors[0] or not (constant > 0 and np.sqrt(np.float32(constant) ** 2)
                                  == np.float32(constant) and constant >= 1e-7):
            raise TranslationError(f"cannot translate {where}: tfprune translates a tensor "
                                   "divided by a positive constant (at least 1e-7)")
        return _divide(parts, x, float(constant), None)
    if kind == "Add":
        return parts.new("Rescaling", None, scale=1.0, offset=constant)(x)
    if kind == "Subtract":  # x - c == x + (-c), and c - x == (-1) x + c, exactly
        scale, offset = (1.0, -constant) if tensors[0] else (-1.0, constant)
        return parts.new("Rescaling", None, scale=scale, offset=offset)(x)
    return parts.new("Rescaling", None, scale=constant, offset=0.0)(x)


def _constant(value, where):
    array = np.asarray(value)
    if array.ndim != 0 or not np.issubdtype(array.dtype, np.number):
        raise TranslationError(f"cannot translate {where}: tfprune translates arithmetic on a "
                               f"tensor and a scalar constant, got {type(value).__name__}")
    return float(array)
