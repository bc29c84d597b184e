"""The channel dependency graph of a Keras functional model: which channels must go together.

Channels are coupled when removing one from a layer forces removing it elsewhere: a residual Add
sums channel i of each of its inputs, so the producers of both inputs must drop channel i
together; a BatchNormalization or a depthwise convolution carries channel i through with
parameters of its own; a squeeze-and-excitation branch (global pooling, a Reshape adding unit
axes, a Dense or 1x1 convolution, a Multiply broadcasting over the map) ends in a producer whose
channel i scales channel i of the map, so both are one group; a Concatenate places its inputs'
channels side by side, so channel i of its second input is channel (width of the first) + i
downstream; a Flatten (or a Reshape to one axis) turns channel c of an (H, W, C) map into the
rows p * C + c of the next Dense kernel.

``channel_groups(model)`` walks the graph once and returns the groups: each is a set of channels
(``width`` of them) and every place they occur, as ``Member(layer, role, offset, stride,
repeat)``: role "out" (the layer's output channels: the last kernel axis and bias of a Dense,
Conv or SeparableConv, the kernel's third axis of a Conv2DTranspose), "in" (the layer's input
channels: the kernel's input axis, and the depthwise kernel of a SeparableConv), "channel"
(per-channel parameters of a channel-preserving layer: BatchNorm, DepthwiseConv2D, a Conv2D with
one group per channel, PReLU), "norm" (a LayerNormalization over the channels, taken only with
``layer_norm="renormalize"``: its gamma and beta are sliced, but its mean and variance then span
the kept channels alone, so the shrunk model is close to the masked one, not equal), for a
MultiHeadAttention "query", "key", "value" (the input rows of that projection) and "head" (one
attention head: its query, key and value columns and the output projection's rows; the heads
of one attention are a group of their own, removed by rebuilding it with fewer heads), or "pass" (a layer the channels pass through
without parameters: activations, pooling, padding, merges, Reshape, Rescaling; recorded so the
shrink can rewrite shape-dependent configs and unit pruning can check that zero stays zero).
``parameters(layer, role)`` names each member's variables and axes: the one answer masking,
scoring and shrinking share.

An Embedding is a producer of its output channels (its ids are not channels). Where the graph
meets an op it cannot see through (an unknown layer, a LayerNormalization, whose statistics span the channels, unless ``layer_norm="renormalize"``,
a model input or output), the groups
touching it are ``blocked`` with the reason, never guessed; ``opaque_layers`` lists such layers.
"""

import dataclasses

import numpy as np

from tfprune import checks
from tfprune.errors import InternalError
from tfprune.keras import keras
from tfprune.layers import PositionEmbedding
from tfprune.pruning.options import LAYER_NORM

L = keras.layers

PRODUCERS = (L.Dense, L.Conv1D, L.Conv2D, L.SeparableConv1D, L.SeparableConv2D,
             L.Conv1DTranspose, L.Conv2DTranspose)
MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
# Channel-preserving layers without per-channel parameters.
PASS_THROUGH = (L.ReLU, L.LeakyReLU, L.ELU, L.ThresholdedReLU, L.Dropout, L.AlphaDropout,
                L.SpatialDropout1D, L.SpatialDropout2D, L.GaussianNoise, L.GaussianDropout,
                L.ActivityRegularization,
                L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D,
                L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D,
                L.GlobalMaxPooling2D, L.ZeroPadding1D, L.ZeroPadding2D, L.Cropping1D,
                L.Cropping2D, L.UpSampling1D, L.UpSampling2D, L.Resizing, L.Rescaling)
# Channel-preserving layers with per-channel parameters of their own.
CHANNELWISE = (L.BatchNormalization, L.DepthwiseConv1D, L.DepthwiseConv2D, L.PReLU,
               L.Normalization)

# Activations known to act on each value alone; any other (softmax, a user's function) is
# treated as mixing channels.
ELEMENTWISE = {"linear", "relu", "relu6", "tanh", "elu", "selu", "gelu", "swish", "silu",
               "sigmoid", "hard_sigmoid", "softplus", "softsign", "exponential", "leaky_relu",
               "hard_silu", "hard_swish", "mish"}


def _elementwise(fn):
    return fn is None or getattr(fn, "__name__", "") in ELEMENTWISE


@dataclasses.dataclass(frozen=True)
class Member:
    """Where a group's channels sit in one layer: along ``role``'s axis, channel c of the group
    is index ``offset + c`` (and, after a Flatten, ``offset + c + p * stride`` for each of the
    ``repeat`` spatial positions p)."""

    layer: str
    role: str            # "out", "in", "channel", "norm" or "pass"
    offset: int = 0
    stride: int = 0
    repeat: int = 1

    def indices(self, channels):
        """Indices along the member's axis of the group's ``channels`` (an int array)."""
        channels = np.asarray(channels, dtype=np.int64)
        positions = np.arange(self.repeat, dtype=np.int64)[:, None] * self.stride
        return np.sort((positions + self.offset + channels[None, :]).ravel())


@dataclasses.dataclass
class Group:
    id: int
    width: int
    members: list
    blocked: str = None   # why these channels cannot be removed, or None

    def layers(self, role=None):
        return [m.layer for m in self.members if role is None or m.role == role]

    def dropped(self, kept):
        """The channels not in ``kept``."""
        return np.setdiff1d(np.arange(self.width), kept)

    def renormalized(self):
        """The LayerNormalizations whose statistics span these channels ("norm" members):
        removing any of them changes what they compute for the others."""
        return self.layers("norm")

    def describe(self):
        places = ", ".join(f"{m.layer}:{m.role}" + (f"@{m.offset}" if m.offset else "")
                           + (f"x{m.repeat}" if m.repeat > 1 else "")
                           for m in self.members if m.role != "pass")
        state = f"blocked: {self.blocked}" if self.blocked else "prunable"
        return f"group {self.id}: {self.width} channels, {state}; {places}"


def is_grouped_depthwise(layer):
    """A Conv2D/Conv1D with one group per input channel and one filter per group (ConvNeXt's
    depthwise convolution): per-channel parameters, like a DepthwiseConv2D."""
    groups = getattr(layer, "groups", 1) or 1
    return type(layer) in (L.Conv1D, L.Conv2D) and groups > 1 \
        and layer.filters == groups and int(layer.kernel.shape[-2]) == 1


def parameters(layer, role, statistics=False):
    """[(variable, axis)] of ``layer``'s parameters along ``role``'s channel axis: what masking
    zeroes and scoring reads; with ``statistics``, also the per-channel state that is not
    trained (BatchNorm's moving statistics), which a shrink
    slices and a rollback restores but a mask never zeroes."""
    if role == "pass":
        return []
    if isinstance(layer, L.MultiHeadAttention):
        return _attention_parameters(layer, role)
    if isinstance(layer, L.Embedding):
        return [(layer.embeddings, -1)] if role == "out" else []
    if isinstance(layer, PositionEmbedding):
        return [(layer.embeddings, -1)] if role == "channel" else []
    bias = [(layer.bias, 0)] if getattr(layer, "use_bias", False) and \
        getattr(layer, "bias", None) is not None else []
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        if role == "out":
            return [(layer.pointwise_kernel, -1)] + bias
        return [(layer.depthwise_kernel, -2), (layer.pointwise_kernel, -2)]
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose)):
        return [(layer.kernel, -2)] + bias if role == "out" else [(layer.kernel, -1)]
    if role == "out":
        return [(layer.kernel, -1)] + bias
    if role == "in":
        return [(layer.kernel, -2)]
    if isinstance(layer, L.BatchNormalization):
        found = [(v, 0) for v in (layer.gamma, layer.beta) if v is not None]
        return found + ([(layer.moving_mean, 0), (layer.moving_variance, 0)]
                        if statistics else [])
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)):
        return [(layer.depthwise_kernel, -2)] + bias
    if is_grouped_depthwise(layer):
        return [(layer.kernel, -1)] + bias
    if isinstance(layer, L.PReLU):
        return [(layer.alpha, -1)]
    if role == "norm":
        return [(v, 0) for v in (layer.gamma, layer.beta) if v is not None]
    return []


ATTENTION_INPUTS = ("query", "key", "value")  # a MultiHeadAttention's input roles


def attention_projections(layer):
    """{"query", "key", "value", "output"}: a MultiHeadAttention's EinsumDense projections
    (query, key, value kernels (width, heads, key_dim); output (heads, value_dim, width))."""
    return {"query": layer._query_dense, "key": layer._key_dense,
            "value": layer._value_dense, "output": layer._output_dense}


def _attention_parameters(layer, role):
    """A MultiHeadAttention's members: "query", "key", "value" (the input channels: axis 0 of
    that projection's kernel), "head" (one attention head: axis 1 of the query, key and value
    kernels, axis 0 of their biases and of the output kernel) and "out" (the output channels:
    the output kernel's last axis and its bias)."""
    dense = attention_projections(layer)
    bias = {name: d.bias for name, d in dense.items() if getattr(d, "bias", None) is not None}
    if role in ATTENTION_INPUTS:
        return [(dense[role].kernel, 0)]
    if role == "head":
        found = []
        for name in ATTENTION_INPUTS:
            found.append((dense[name].kernel, 1))
            if name in bias:
                found.append((bias[name], 0))
        return found + [(dense["output"].kernel, 0)]
    if role == "out":
        return [(dense["output"].kernel, -1)] + ([(bias["output"], 0)] if "output" in bias
                                                 else [])
    return []


class _Graph:
    """Groups under construction: union-find over group ids, members and reasons."""

    def __init__(self, layer_norm="block"):
        self.layer_norm = layer_norm
        self.parent, self.width, self.members, self.blocked = [], [], [], []
        self.opaque = {}   # layer name -> why the graph cannot see through it
        self.tensors = {}  # tensor id -> _Tensor, every tensor seen so far

    def new(self, width, blocked=None):
        self.parent.append(len(self.parent))
        self.width.append(int(width))
        self.members.append([])
        self.blocked.append(blocked)
        return len(self.parent) - 1

    def find(self, g):
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a, b):
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.members[a] += self.members[b]
            self.blocked[a] = self.blocked[a] or self.blocked[b]
        return a

    def split(self, g, at):
        """Cut group ``g`` into its first ``at`` channels and the rest (a new group), in every
        member and every tensor holding it: where two merged tensors cut their channels into
        groups at different places, both are cut at every place either does."""
        r = self.find(g)
        rest = self.new(self.width[r] - at, self.blocked[r])
        self.width[r] = at
        self.members[rest] = [dataclasses.replace(m, offset=m.offset + at)
                              for m in self.members[r]]
        for tensor in self.tensors.values():
            segments = []
            for gid, width in tensor.segments:
                segments += [(r, at), (rest, width - at)] if self.find(gid) == r \
                    else [(gid, width)]
            tensor.segments = segments

    def block(self, g, reason):
        g = self.find(g)
        self.blocked[g] = self.blocked[g] or reason

    def add(self, g, member):
        self.members[self.find(g)].append(member)


@dataclasses.dataclass
class _Tensor:
    segments: list           # [(group id, width)] along the channel axis
    flat: tuple = None       # (spatial positions, channels) when a Flatten made it

    @property
    def width(self):
        return sum(w for _, w in self.segments)


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _structure(graph, tensor):
    return [(graph.find(g), w) for g, w in tensor.segments]


def model_node(model, layer):
    """The one node of ``layer`` in ``model`` (None when the model calls it more than once)."""
    nodes = [node for index, node in enumerate(layer._inbound_nodes)
             if f"{layer.name}_ib-{index}" in model._network_nodes]
    return nodes[0] if len(nodes) == 1 else None


@dataclasses.dataclass
class Graph:
    """The groups of a model and the layers the graph could not see through."""

    groups: list
    opaque: dict     # layer name -> reason


def analyze(model, layer_norm="block"):
    """The ``Graph`` of a functional ``model``: its channel groups, in order of first
    appearance, and the layers that end them. ``layer_norm`` (``LAYER_NORM``): a
    LayerNormalization over the channel axis ends the groups ("block", exact) or is a "norm"
    member of its group ("renormalize")."""
    checks.check_choice("layer_norm", layer_norm, LAYER_NORM)
    graph = _Graph(layer_norm)
    tensors, pending = graph.tensors, []
    for t in _as_list(model.inputs):
        tensors[id(t)] = _Tensor([(graph.new(t.shape[-1], "the model input"), int(t.shape[-1]))])
    for layer in model.layers:
        if isinstance(layer, L.InputLayer):
            continue
        node = model_node(model, layer)
        if node is not None and not isinstance(node.outputs, (list, tuple)) \
                and isinstance(layer, L.MultiHeadAttention):
            tensors[id(node.outputs)] = _attention(graph, layer, node)
            continue
        if node is not None and not isinstance(node.outputs, (list, tuple)):
            tensors[id(node.outputs)] = _visit(graph, layer,
                                               [tensors[id(t)] for t in node.keras_inputs])
            continue
        # Called more than once (shared weights) or with several outputs: every input blocked,
        # every output a new blocked group.
        nodes = [node] if node is not None else layer._inbound_nodes
        why = "which has several outputs" if node is not None else \
            "which the model calls more than once (shared weights)"
        pending.append((layer, [t for n in nodes for t in n.keras_inputs], why))
        for t in (t for n in nodes for t in _as_list(n.outputs)):
            tensors[id(t)] = _fresh(graph, layer, t, why)
    for layer, inputs, why in pending:  # a shared layer's later calls read later tensors
        _block(graph, layer, [tensors[id(t)] for t in inputs if id(t) in tensors], why)
    for t in _as_list(model.outputs):
        for g, _ in tensors[id(t)].segments:
            graph.block(g, "the model output")
    roots = sorted({graph.find(g) for g in range(len(graph.parent))})
    groups = [Group(i, graph.width[r], list(graph.members[r]), graph.blocked[r])
              for i, r in enumerate(roots)]
    return Graph(groups, dict(graph.opaque))


def channel_groups(model, layer_norm="block"):
    """The groups of coupled channels of a functional ``model``, in order of first appearance."""
    return analyze(model, layer_norm).groups


def _fresh(graph, layer, tensor, why):
    width = int(tensor.shape[-1]) if tensor.shape.rank else 1
    return _Tensor([(graph.new(width, f"made by {type(layer).__name__} {layer.name!r}, {why}"),
                     width)])


def _feed(graph, layer, tensor, role):
    """Record ``layer`` as a member of every group of ``tensor``."""
    offset = 0
    for g, width in tensor.segments:
        if tensor.flat:
            graph.add(g, Member(layer.name, role, offset, stride=tensor.width,
                                repeat=tensor.flat[0]))
        else:
            graph.add(g, Member(layer.name, role, offset))
        offset += width


def _through(graph, layer, tensor, role="pass"):
    """``tensor``'s channels, unchanged, through ``layer`` (recorded as ``role``); a layer
    that works channels first, or changes the channel count, ends the groups instead."""
    if getattr(layer, "data_format", "channels_last") not in ("channels_last", None):
        return _opaque(graph, layer, [tensor], f"working {layer.data_format}")
    if not tensor.flat and int(layer.output.shape[-1]) != tensor.width:
        return _opaque(graph, layer, [tensor], "which changes the channel count")
    _feed(graph, layer, tensor, role)
    return _Tensor(list(tensor.segments), tensor.flat)


def _block(graph, layer, inputs, why):
    graph.opaque.setdefault(layer.name, why)
    for tensor in inputs:
        for g, _ in tensor.segments:
            graph.block(g, f"consumed by {type(layer).__name__} {layer.name!r}, {why}")


def _opaque(graph, layer, inputs, why):
    _block(graph, layer, inputs, why)
    return _fresh(graph, layer, layer.output, why)


def _last_axis(axis, rank):
    return any(a in (-1, rank - 1) for a in _as_list(axis)) and len(_as_list(axis)) == 1


def _visit(graph, layer, inputs):
    if not inputs:
        return _opaque(graph, layer, inputs, "which has no tensor input")
    first = inputs[0]
    if isinstance(layer, L.Embedding) and len(inputs) == 1:
        return _embedding(graph, layer)
    if type(layer) in PRODUCERS and len(inputs) == 1:
        if first.flat and not isinstance(layer, L.Dense):
            return _opaque(graph, layer, inputs, "which reads a Flatten other than as a Dense")
        if getattr(layer, "groups", 1) not in (1, None):
            if first.flat or not is_grouped_depthwise(layer):
                return _opaque(graph, layer, inputs, f"a convolution in {layer.groups} groups")
            return _through(graph, layer, first, "channel")
        if getattr(layer, "depth_multiplier", 1) != 1:
            return _opaque(graph, layer, inputs, "a separable convolution with depth "
                                                 f"multiplier {layer.depth_multiplier}")
        _feed(graph, layer, first, "in")
        width = int(layer.output.shape[-1])
        g = graph.new(width, None if _elementwise(getattr(layer, "activation", None)) else
                      f"made by {type(layer).__name__} {layer.name!r}, whose activation mixes "
                      "channels")
        graph.add(g, Member(layer.name, "out"))
        return _Tensor([(g, width)])
    if any(t.flat for t in inputs) and not isinstance(layer, (L.Dropout, L.Activation, L.ReLU)
                                                       + MERGES):
        # Only a Dense reads a flattened map channel by channel.
        return _opaque(graph, layer, inputs, "after a Flatten (only a Dense can follow one)")
    if len(inputs) == 1 and isinstance(layer, PositionEmbedding) and not first.flat:
        return _through(graph, layer, first, "channel")  # a per-channel (and position) bias
    if len(inputs) == 1 and isinstance(layer, CHANNELWISE):
        return _channelwise(graph, layer, inputs)
    if len(inputs) == 1 and isinstance(layer, L.Activation):
        if not _elementwise(layer.activation):
            return _opaque(graph, layer, inputs, "which mixes channels")
        return _through(graph, layer, first)
    if len(inputs) == 1 and isinstance(layer, L.Softmax):
        rank = len(layer.input.shape)
        if any(a in (-1, rank - 1) for a in _as_list(layer.axis)):
            return _opaque(graph, layer, inputs, "which mixes channels")
        return _through(graph, layer, first)
    if len(inputs) == 1 and isinstance(layer, PASS_THROUGH):
        return _through(graph, layer, first)
    if isinstance(layer, MERGES):
        return _merge(graph, layer, inputs)
    if isinstance(layer, L.Concatenate):
        if not _last_axis(layer.axis, len(layer.output.shape)):
            return _opaque(graph, layer, inputs, f"concatenating along axis {layer.axis}")
        out = _Tensor([segment for tensor in inputs for segment in tensor.segments])
        _feed(graph, layer, out, "pass")
        return out
    if len(inputs) == 1 and isinstance(layer, L.Flatten):
        return _flatten(graph, layer, first)
    if len(inputs) == 1 and isinstance(layer, L.Reshape):
        return _reshape(graph, layer, first)
    if len(inputs) == 1 and isinstance(layer, L.Permute):
        if layer.dims[-1] != len(layer.dims):
            return _opaque(graph, layer, inputs, "which moves the channel axis")
        return _through(graph, layer, first)
    if isinstance(layer, L.LayerNormalization) and len(inputs) == 1:
        if graph.layer_norm == "renormalize" and not first.flat \
                and _last_axis(layer.axis, len(layer.input.shape)):
            return _through(graph, layer, first, "norm")
        return _opaque(graph, layer, inputs, "whose mean and variance span the channels "
                                             "(removing one would change every other; "
                                             "layer_norm='renormalize' prunes through it)")
    return _opaque(graph, layer, inputs, "which the graph cannot see through")


def _attention(graph, layer, node):
    """A MultiHeadAttention: its query, key and value tensors' channels are the input rows of
    those projections; its heads are a group of their own (each head's query, key and value
    columns and the output projection's rows); its output channels are a new group, as a
    producer's."""
    names = ("query", "value", "key", "attention_mask")
    bound = dict(zip(names, node.call_args))
    bound.update({k: v for k, v in node.call_kwargs.items() if k in names})
    if bound.get("key") is None:
        bound["key"] = bound.get("value")
    tensors = graph.tensors
    inputs = [tensors[id(t)] for t in node.keras_inputs if id(t) in tensors]
    if any(bound.get(name) is None or id(bound[name]) not in tensors
           for name in ATTENTION_INPUTS):
        return _opaque(graph, layer, inputs, "whose query, key and value were not found")
    mask = bound.get("attention_mask")
    if mask is not None and id(mask) in tensors:  # its axes are tokens, not channels
        for g, _ in tensors[id(mask)].segments:
            graph.block(g, f"the attention mask of {layer.name!r}")
    roles = [(tensors[id(bound[name])], name) for name in ATTENTION_INPUTS]
    if any(t.flat for t, _ in roles):
        return _opaque(graph, layer, inputs, "after a Flatten (only a Dense can follow one)")
    for tensor, role in roles:
        _feed(graph, layer, tensor, role)
    heads = graph.new(layer._num_heads)
    graph.add(heads, Member(layer.name, "head"))
    width = int(node.outputs.shape[-1])
    out = graph.new(width)
    graph.add(out, Member(layer.name, "out"))
    return _Tensor([(out, width)])


def _embedding(graph, layer):
    """An Embedding makes its output channels from ids: a producer whose input is not
    channels (its ids are not fed)."""
    width = int(layer.output_dim)
    g = graph.new(width)
    graph.add(g, Member(layer.name, "out"))
    return _Tensor([(g, width)])


def _channelwise(graph, layer, inputs):
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)) and layer.depth_multiplier != 1:
        return _opaque(graph, layer, inputs, "a depthwise convolution with depth multiplier "
                                             f"{layer.depth_multiplier}")
    rank = len(layer.input.shape)
    if isinstance(layer, L.Normalization):
        if not _as_list(layer.axis):
            return _through(graph, layer, inputs[0])  # one mean and variance for every channel
        return _opaque(graph, layer, inputs, "whose per-channel statistics are not sliced")
    if isinstance(layer, (L.BatchNormalization, L.Normalization)) \
            and not _last_axis(layer.axis, rank):
        return _opaque(graph, layer, inputs, f"normalizing axis {layer.axis}")
    if isinstance(layer, L.PReLU) and layer.alpha.shape[-1] != layer.input.shape[-1]:
        return _through(graph, layer, inputs[0])  # one alpha shared across the channels
    return _through(graph, layer, inputs[0], "channel")


def _merge(graph, layer, inputs):
    """Elementwise merges tie channel i of every input; an input of one channel broadcasts
    over the others (a spatial gate) and is not tied."""
    width = max(t.width for t in inputs)
    full = [t for t in inputs if t.width == width]
    if any(t.width not in (1, width) for t in inputs):
        return _opaque(graph, layer, inputs, "whose inputs have different channel counts")
    if any(t.flat != full[0].flat for t in full[1:]):
        return _opaque(graph, layer, inputs, "whose inputs arrange their channels differently")
    _align(graph, full)
    for tensor in full[1:]:
        for (a, wa), (b, wb) in zip(full[0].segments, tensor.segments):
            if wa != wb:
                raise InternalError(f"channel groups misaligned at {layer.name!r}")
            graph.union(a, b)
    out = _Tensor(list(full[0].segments), full[0].flat)
    _feed(graph, layer, out, "pass")
    return out


def _align(graph, tensors):
    """Cut the groups of ``tensors`` until all place their group boundaries alike (an Add of a
    Concatenate's output and one convolution's: the convolution's channels are cut where the
    Concatenate's inputs meet)."""
    while True:
        cuts = set()
        for tensor in tensors:
            cuts.update(np.cumsum([w for _, w in tensor.segments]).tolist())
        for tensor in tensors:
            start, cut = 0, None
            for g, width in tensor.segments:
                inner = [c - start for c in sorted(cuts) if start < c < start + width]
                if inner:
                    cut = (g, inner[0])
                    break
                start += width
            if cut:
                graph.split(*cut)
                break
        else:
            return


def _flatten(graph, layer, tensor):
    if getattr(layer, "data_format", "channels_last") not in ("channels_last", None):
        return _opaque(graph, layer, [tensor], f"flattening {layer.data_format}")
    shape = layer.input.shape
    if len(shape) <= 2:
        return _through(graph, layer, tensor)
    out = _Tensor(list(tensor.segments), flat=(int(np.prod(shape[1:-1])), int(shape[-1])))
    _feed(graph, layer, out, "pass")
    return out


def _reshape(graph, layer, tensor):
    """A Reshape keeping the channel axis last and whole (adding or removing unit axes, or
    merging spatial axes: tokens from a patch grid) passes it; one flattening everything into
    one axis is a Flatten."""
    in_shape, out_shape = layer.input.shape, layer.output.shape
    if in_shape[-1] == out_shape[-1] and all(d is not None for d in in_shape[1:]) \
            and np.prod(in_shape[1:-1]) == np.prod(out_shape[1:-1]):
        return _through(graph, layer, tensor)
    if len(out_shape) == 2 and len(in_shape) > 2:
        return _flatten(graph, layer, tensor)
    return _opaque(graph, layer, [tensor], "which does not keep the channel axis whole")
