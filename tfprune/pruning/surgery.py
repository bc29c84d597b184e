"""Physically remove pruned units: rebuild a thinner dense model with the same outputs.

A channel (a Dense unit, a Conv2D filter, and the channel it feeds through BatchNorm, ReLU,
pooling, Flatten, ...) can be removed when it is provably zero for every input and every layer
that touches it can drop it. Channels that are tied together (through channel-wise layers and
residual Adds) form a group, and a group drops only the channels that are zero in all its
tensors. Whatever cannot be removed safely is left in place and explained in ``notes``; the
result is checked against the original model's outputs.
"""

import dataclasses

import numpy as np

from tfprune.errors import InternalError, TfpruneError
from tfprune.keras import check_model, keras, tf
from tfprune.pruning.unit import is_wrapped

L = keras.layers

# Layers that act on each channel separately and keep the channel count.
_CHANNELWISE = (L.ReLU, L.Activation, L.Dropout, L.MaxPooling2D, L.AveragePooling2D,
                L.GlobalAveragePooling2D, L.GlobalMaxPooling2D, L.ZeroPadding2D,
                L.BatchNormalization, L.DepthwiseConv2D, L.Resizing, L.UpSampling2D,
                L.SpatialDropout2D, L.GaussianNoise, L.LeakyReLU)
_ELEMENTWISE_ACTIVATIONS = {"linear", "relu", "relu6", "tanh", "elu", "selu", "gelu", "swish",
                            "silu", "sigmoid", "hard_sigmoid", "softplus", "softsign",
                            "exponential", "leaky_relu", "hard_silu", "hard_swish", "mish"}


@dataclasses.dataclass
class ShrinkResult:
    model: keras.Model
    removed: dict          # layer name -> (units before, units after), for thinned layers
    notes: list            # why zero units were left in place
    params_before: int
    params_after: int
    max_abs_diff: float = None  # against the masked model on the check inputs

    @property
    def param_reduction(self):
        return self.params_before / max(self.params_after, 1)


class _UnionFind:
    def __init__(self):
        self.parent = {}

    def find(self, x):
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a, b):
        self.parent[self.find(a)] = self.find(b)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _activation_name(layer):
    fn = getattr(layer, "activation", None)
    return getattr(fn, "__name__", "") if fn is not None else "linear"


def _maps_zero_to_zero(fn):
    return float(np.max(np.abs(fn(tf.zeros((1, 1))).numpy()))) == 0.0


def _is_channelwise(layer):
    if isinstance(layer, L.Activation):
        return _activation_name(layer) in _ELEMENTWISE_ACTIVATIONS
    if isinstance(layer, L.DepthwiseConv2D):
        return layer.depth_multiplier == 1
    return isinstance(layer, _CHANNELWISE)


def _zero_out_channelwise(layer, zero_in):
    """Which output channels are zero, given which input channels are."""
    if isinstance(layer, L.BatchNormalization):
        gamma, beta, mean, var = _bn_params(layer)
        return zero_in & (beta - gamma * mean / np.sqrt(var + layer.epsilon) == 0)
    if isinstance(layer, L.DepthwiseConv2D):
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(zero_in.shape)
        return zero_in & (bias == 0) & _maps_zero_to_zero(layer.activation)
    if isinstance(layer, (L.Activation, L.ReLU, L.LeakyReLU)):
        return zero_in & _maps_zero_to_zero(layer)
    return zero_in.copy()


def _bn_params(layer):
    channels = layer.moving_mean.shape[-1]
    gamma = layer.gamma.numpy() if layer.scale else np.ones(channels)
    beta = layer.beta.numpy() if layer.center else np.zeros(channels)
    return gamma, beta, layer.moving_mean.numpy(), layer.moving_variance.numpy()


def _zero_units(layer):
    """Output units of a Dense/Conv2D layer that are zero for every input."""
    kernel = layer.kernel.numpy()
    zero = ~np.any(kernel.reshape(-1, kernel.shape[-1]) != 0, axis=0)
    if layer.use_bias:
        zero &= layer.bias.numpy() == 0
    return zero & _maps_zero_to_zero(layer.activation)


def _is_producer(layer):
    return type(layer) in (L.Dense, L.Conv2D)


def _fresh_copy(model):
    # After strip_pruning a layer can have several inbound nodes; a clone has exactly one.
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def shrink(model, check_inputs=None, atol=1e-4):
    """Rebuild ``model`` without its provably-zero units.

    ``check_inputs`` (a batch of inputs) verifies the result: the outputs must match the input
    model's within ``atol``, else TfpruneError (a wrong model is never returned).
    """
    check_model(model)
    if is_wrapped(model):
        raise TfpruneError("`model` still has pruning wrappers; call tfprune.pruning.strip first")
    source = _fresh_copy(model)
    layers = [layer for layer in source.layers if not isinstance(layer, L.InputLayer)]
    inputs = {id(t) for t in _as_list(source.inputs)}
    outputs = {id(t) for t in _as_list(source.outputs)}
    width = {}          # tensor id -> channel count (last axis)
    zero = {}           # tensor id -> bool array over channels
    producer = {}       # tensor id -> producing layer
    consumers = {}      # tensor id -> consuming layers
    for t in _as_list(source.inputs):
        width[id(t)] = int(t.shape[-1])
        zero[id(t)] = np.zeros(width[id(t)], bool)
    groups = _UnionFind()
    blocked = {}        # group root -> reason nothing in it can be removed
    flatten_edges = []  # (input tensor id, output tensor id, spatial size)
    adds = {}           # tensor id -> Add layer name, for notes

    for layer in layers:
        ins, out = _as_list(layer.input), layer.output
        producer[id(out)] = layer
        width[id(out)] = int(out.shape[-1])
        for t in ins:
            consumers.setdefault(id(t), []).append(layer)
        groups.find(id(out))
        if _is_producer(layer):
            zero[id(out)] = _zero_units(layer)
        elif _is_channelwise(layer):
            zero[id(out)] = _zero_out_channelwise(layer, zero[id(ins[0])])
            groups.union(id(ins[0]), id(out))
        elif isinstance(layer, L.Add):
            zero[id(out)] = np.logical_and.reduce([zero[id(t)] for t in ins])
            for t in ins:
                groups.union(id(t), id(out))
                adds[id(t)] = layer.name
        elif isinstance(layer, L.Flatten) and len(ins[0].shape) >= 2:
            spatial = int(np.prod(ins[0].shape[1:-1]))
            zero[id(out)] = np.tile(zero[id(ins[0])], spatial)
            flatten_edges.append((id(ins[0]), id(out), spatial))
        else:
            zero[id(out)] = np.zeros(width[id(out)], bool)
            for t in ins:
                blocked.setdefault(id(t), f"consumed by {type(layer).__name__} {layer.name!r}, "
                                          "which shrink does not thin")

    members = {}
    for tid in zero:
        members.setdefault(groups.find(tid), []).append(tid)
    # A group can drop channels only if every tensor in it can.
    group_block = {}
    for root, tids in members.items():
        for tid in tids:
            reason = None
            if tid in inputs:
                reason = "the model input"
            elif tid in outputs:
                reason = "the model output"
            elif tid in blocked:
                reason = blocked[tid]
            if reason:
                group_block[root] = reason
                break
    # Flatten: its input channels go only if every feature they become can go.
    for in_id, out_id, _ in flatten_edges:
        if groups.find(out_id) in group_block:
            group_block.setdefault(groups.find(in_id), group_block[groups.find(out_id)])

    removable = {}
    notes = []
    for root, tids in members.items():
        common = np.logical_and.reduce([zero[t] for t in tids])
        if root in group_block:
            common = np.zeros_like(common)
        removable[root] = common
        for tid in tids:
            layer = producer.get(tid)
            extra = int(np.count_nonzero(zero[tid] & ~common))
            if not extra or layer is None or not _is_producer(layer):
                continue
            if root in group_block:
                why = group_block[root]
            elif any(t in adds for t in tids):
                why = "tied by a residual Add to channels that are not zero"
            else:
                why = "tied to channels that are not zero"
            notes.append(f"{layer.name}: {extra} zero unit(s) kept ({why})")

    def keep_of(tid):
        return np.flatnonzero(~removable[groups.find(tid)])

    for in_id, out_id, spatial in flatten_edges:
        # Flatten cannot drop a feature without dropping its channel upstream.
        removable[groups.find(out_id)] = np.tile(removable[groups.find(in_id)], spatial)

    # Rebuild layer by layer with thinned configs and sliced weights.
    new_tensors = {}
    new_inputs = []
    for t in _as_list(source.inputs):
        new = keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name.split(":")[0])
        new_tensors[id(t)] = new
        new_inputs.append(new)
    removed = {}
    for layer in layers:
        ins, out = _as_list(layer.input), layer.output
        in_keep = keep_of(id(ins[0]))
        out_keep = keep_of(id(out))
        config = layer.get_config()
        weights = layer.get_weights()
        if _is_producer(layer):
            key = "units" if isinstance(layer, L.Dense) else "filters"
            config[key] = len(out_keep)
            kernel = weights[0][..., in_keep, :][..., out_keep]
            weights = [kernel] + ([weights[1][out_keep]] if layer.use_bias else [])
            if len(out_keep) != width[id(out)]:
                removed[layer.name] = (width[id(out)], len(out_keep))
        elif isinstance(layer, L.BatchNormalization):
            weights = [w[out_keep] for w in weights]
        elif isinstance(layer, L.DepthwiseConv2D):
            weights = [weights[0][:, :, out_keep, :]] + [w[out_keep] for w in weights[1:]]
        new_layer = type(layer).from_config(config)
        args = [new_tensors[id(t)] for t in ins]
        new_out = new_layer(args if isinstance(layer.input, (list, tuple)) else args[0])
        new_layer.set_weights(weights)
        new_tensors[id(out)] = new_out
    new_outputs = [new_tensors[id(t)] for t in _as_list(source.outputs)]
    thin = keras.Model(new_inputs if len(new_inputs) > 1 else new_inputs[0],
                       new_outputs if len(new_outputs) > 1 else new_outputs[0], name=model.name)
    result = ShrinkResult(thin, removed, notes, int(model.count_params()), int(thin.count_params()))
    if check_inputs is not None:
        expected = model(check_inputs, training=False)
        got = thin(check_inputs, training=False)
        result.max_abs_diff = float(np.max(np.abs(np.asarray(expected) - np.asarray(got))))
        if not result.max_abs_diff <= atol:
            raise InternalError(
                f"shrunk model differs from the masked model by {result.max_abs_diff:.3g} "
                f"(> {atol}); refusing to return it")
    return result
