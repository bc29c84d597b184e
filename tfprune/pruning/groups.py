"""The channel dependency graph of a Keras functional model: which channels must go together.

Channels are coupled when removing one from a layer forces removing it elsewhere: a residual Add
sums channel i of each of its inputs, so the producers of both inputs must drop channel i
together; a BatchNormalization or a DepthwiseConv2D (depth multiplier 1) carries channel i
through with parameters of its own; a Concatenate places its inputs' channels side by side, so
channel i of its second input is channel (width of the first) + i downstream; a Flatten turns
channel c of an (H, W, C) map into the rows p * C + c of the next Dense kernel.

``channel_groups(model)`` walks the graph once and returns the groups: each is a set of channels
(``width`` of them) and every place they occur, as ``Member(layer, role, offset, stride,
repeat)``: role "out" (the layer's output channels: last kernel axis and bias), "in" (the
layer's input channels: the kernel's input axis) or "channel" (per-channel parameters of a
channel-preserving layer: BatchNorm, DepthwiseConv2D). Where the graph meets an op it cannot see
through (a Reshape, an unknown layer, a model input or output), the groups touching it are
``blocked`` with the reason, never guessed.
"""

import dataclasses

import numpy as np

from tfprune.keras import keras

L = keras.layers

PRODUCERS = (L.Dense, L.Conv1D, L.Conv2D)
MERGES = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)
# Channel-preserving layers without per-channel parameters.
PASS_THROUGH = (L.ReLU, L.LeakyReLU, L.ELU, L.Dropout,
                L.SpatialDropout1D, L.SpatialDropout2D, L.GaussianNoise, L.GaussianDropout,
                L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D, L.AveragePooling2D,
                L.GlobalAveragePooling1D, L.GlobalAveragePooling2D, L.GlobalMaxPooling1D,
                L.GlobalMaxPooling2D, L.ZeroPadding1D, L.ZeroPadding2D, L.Cropping1D,
                L.Cropping2D, L.UpSampling1D, L.UpSampling2D, L.Resizing, L.Rescaling)

_CROSS_CHANNEL = {"softmax", "log_softmax"}


@dataclasses.dataclass(frozen=True)
class Member:
    """Where a group's channels sit in one layer: along ``role``'s axis, channel c of the group
    is index ``offset + c`` (and, after a Flatten, ``offset + c + p * stride`` for each of the
    ``repeat`` spatial positions p)."""

    layer: str
    role: str            # "out", "in" or "channel"
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

    def describe(self):
        places = ", ".join(f"{m.layer}:{m.role}" + (f"@{m.offset}" if m.offset else "")
                           + (f"x{m.repeat}" if m.repeat > 1 else "") for m in self.members)
        state = f"blocked: {self.blocked}" if self.blocked else "prunable"
        return f"group {self.id}: {self.width} channels, {state}; {places}"


class _Graph:
    """Groups under construction: union-find over group ids, members and reasons."""

    def __init__(self):
        self.parent, self.width, self.members, self.blocked = [], [], [], []

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

    def block(self, g, reason):
        g = self.find(g)
        self.blocked[g] = self.blocked[g] or reason

    def add(self, g, member):
        self.members[self.find(g)].append(member)


@dataclasses.dataclass
class _Tensor:
    segments: list           # [(group id, width)] along the channel axis
    flat: tuple = None       # (spatial positions, channels) when a Flatten made it


def _as_list(x):
    return list(x) if isinstance(x, (list, tuple)) else [x]


def _structure(graph, tensor):
    return [(graph.find(g), w) for g, w in tensor.segments]


def channel_groups(model):
    """The groups of coupled channels of a functional ``model``, in order of first appearance."""
    graph = _Graph()
    tensors = {}
    for t in _as_list(model.inputs):
        tensors[id(t)] = _Tensor([(graph.new(t.shape[-1], "the model input"), int(t.shape[-1]))])
    for layer in model.layers:
        if isinstance(layer, L.InputLayer):
            continue
        inputs = [tensors[id(t)] for t in _as_list(layer.input)]
        tensors[id(layer.output)] = _visit(graph, layer, inputs)
    for t in _as_list(model.outputs):
        for g, _ in tensors[id(t)].segments:
            graph.block(g, "the model output")
    roots = sorted({graph.find(g) for g in range(len(graph.parent))})
    return [Group(i, graph.width[r], list(graph.members[r]), graph.blocked[r])
            for i, r in enumerate(roots)]


def _feed(graph, layer, tensor, role):
    """Record ``layer`` as a member of every group of ``tensor`` (role "in" or "channel")."""
    offset = 0
    channels = sum(w for _, w in tensor.segments)
    for g, width in tensor.segments:
        if tensor.flat:
            graph.add(g, Member(layer.name, role, offset, stride=channels, repeat=tensor.flat[0]))
        else:
            graph.add(g, Member(layer.name, role, offset))
        offset += width


def _opaque(graph, layer, inputs, why):
    for tensor in inputs:
        for g, _ in tensor.segments:
            graph.block(g, f"consumed by {type(layer).__name__} {layer.name!r}, {why}")
    width = int(layer.output.shape[-1])
    return _Tensor([(graph.new(width, f"made by {type(layer).__name__} {layer.name!r}, {why}"),
                     width)])


def _visit(graph, layer, inputs):
    if type(layer) in PRODUCERS:
        if inputs[0].flat and not isinstance(layer, L.Dense):
            return _opaque(graph, layer, inputs, "which reads a Flatten other than as a Dense")
        _feed(graph, layer, inputs[0], "in")
        width = int(layer.output.shape[-1])
        g = graph.new(width)
        graph.add(g, Member(layer.name, "out"))
        return _Tensor([(g, width)])
    if inputs[0].flat:  # only a Dense reads a flattened map channel by channel
        return _opaque(graph, layer, inputs, "after a Flatten (only a Dense can follow one)")
    if isinstance(layer, L.DepthwiseConv2D):
        if layer.depth_multiplier != 1:
            return _opaque(graph, layer, inputs, "a depthwise convolution with depth multiplier "
                                                 f"{layer.depth_multiplier}")
        _feed(graph, layer, inputs[0], "channel")
        return _Tensor(list(inputs[0].segments))
    if isinstance(layer, L.BatchNormalization):
        if layer.axis not in ([-1], [len(layer.input.shape) - 1], -1):
            return _opaque(graph, layer, inputs, f"normalizing axis {layer.axis}")
        _feed(graph, layer, inputs[0], "channel")
        return _Tensor(list(inputs[0].segments))
    if isinstance(layer, L.Activation):
        if getattr(layer.activation, "__name__", "") in _CROSS_CHANNEL:
            return _opaque(graph, layer, inputs, "which mixes channels")
        return _Tensor(list(inputs[0].segments))
    if isinstance(layer, PASS_THROUGH):
        return _Tensor(list(inputs[0].segments))
    if isinstance(layer, MERGES):
        first = _structure(graph, inputs[0])
        if any([w for _, w in _structure(graph, t)] != [w for _, w in first] for t in inputs[1:]):
            return _opaque(graph, layer, inputs, "whose inputs arrange their channels differently")
        for tensor in inputs[1:]:
            for (a, _), (b, _) in zip(inputs[0].segments, tensor.segments):
                graph.union(a, b)
        return _Tensor(list(inputs[0].segments))
    if isinstance(layer, L.Concatenate):
        if layer.axis not in (-1, len(layer.output.shape) - 1):
            return _opaque(graph, layer, inputs, f"concatenating along axis {layer.axis}")
        return _Tensor([segment for tensor in inputs for segment in tensor.segments])
    if isinstance(layer, L.Flatten):
        shape = layer.input.shape
        if len(shape) <= 2:
            return _Tensor(list(inputs[0].segments))
        return _Tensor(list(inputs[0].segments), flat=(int(np.prod(shape[1:-1])), int(shape[-1])))
    return _opaque(graph, layer, inputs, "which the graph cannot see through")
