"""Physically remove channels: rebuild a thinner model with the same outputs. The one shrink of
every structured method, over the channel groups of pruning/groups.py.

- ``remove(model, groups, keep, reference=...)``: the rebuild. Every layer is cloned from its
  config (with its call arguments: a MultiHeadAttention keeps its query, value and key), the
  configs that depend on a width rewritten (units, filters, a depthwise Conv2D's groups, a
  Reshape's target shape, Rescaling's per-channel constants), and every parameter sliced along
  the axes ``groups.parameters`` names, so what masking zeroes is exactly what is removed. The
  result is checked against ``reference`` on the check inputs and refused when it differs
  (measured only, with ``atol=None``: channels.shrink through renormalized LayerNormalizations).
- ``shrink(model)``: unit pruning's shrink. A channel goes when it is provably zero for every
  input in every tensor of its group (its producers' kernel columns and biases are zero and
  their activations keep zero at zero, and so does every layer it passes through: a BatchNorm
  with beta - gamma * mean / sqrt(var) = 0, ...), so a group of one layer's own channels loses
  that layer's zero units, and channels tied through a residual Add go only when they are zero
  in every producer. What cannot be removed is kept and explained in ``notes``.
"""

import dataclasses

import numpy as np

from tfprune.errors import InternalError, TfpruneError
from tfprune.keras import check_model, keras, tf
from tfprune.pruning import groups as groups_lib
from tfprune.pruning.unit import is_wrapped

L = keras.layers

TOLERANCE = 1e-4  # largest |shrunk - reference| output difference accepted


@dataclasses.dataclass
class ShrinkResult:
    model: keras.Model
    removed: dict          # layer name -> (units before, units after), for thinned layers
    notes: list            # why channels were left in place
    params_before: int
    params_after: int
    max_abs_diff: float = None  # against the reference model on the check inputs
    renormalized: list = dataclasses.field(default_factory=list)  # LayerNormalizations whose
    #                 statistics now span fewer channels (channels.shrink, layer_norm option)
    heads: dict = dataclasses.field(default_factory=dict)  # attention layer -> (heads before,
    #                 heads after), for MultiHeadAttentions that lost heads

    @property
    def changed(self):
        """Whether anything was removed (channels or attention heads)."""
        return bool(self.removed or self.heads)

    @property
    def param_reduction(self):
        return self.params_before / max(self.params_after, 1)


def fresh_copy(model):
    """A clone with the same weights: one inbound node per layer (a stripped or reused layer
    may have several)."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _kept_along(members, keep, groups_by_id, role, full):
    """Kept indices along a layer's ``role`` axis (all of ``full`` where nothing is pruned)."""
    drop = [member.indices(groups_by_id[gid].dropped(keep[gid]))
            for gid, member in members if member.role == role and gid in keep]
    return np.setdiff1d(np.arange(full), np.concatenate(drop)) if drop else np.arange(full)


def _slice_constant(value, kept, width):
    """A per-channel constant of a config (a list of ``width`` numbers) at ``kept``."""
    array = np.asarray(value)
    if array.ndim and array.shape[-1] == width:
        return np.take(array, kept, axis=-1).tolist()
    return value


def _thinned(layer, members, keep, groups_by_id):
    """(config, weights) of ``layer`` without the channels ``keep`` leaves out."""
    config, weights = layer.get_config(), layer.get_weights()
    position = {id(v): i for i, v in enumerate(layer.weights)}
    kept = {}
    for role in {m.role for _, m in members}:
        pairs = groups_lib.parameters(layer, role, statistics=True)
        # Along the role's axis of its first parameter; a "pass" member has none: along the
        # output's channels.
        full = int(pairs[0][0].shape[pairs[0][1]]) if pairs else int(layer.output.shape[-1])
        kept[role] = _kept_along(members, keep, groups_by_id, role, full)
        for variable, axis in pairs:
            i = position[id(variable)]
            weights[i] = np.take(weights[i], kept[role], axis=axis)
    if isinstance(layer, L.MultiHeadAttention):
        _thinned_attention(layer, config, kept)
    elif "out" in kept:
        config["units" if isinstance(layer, L.Dense) else
               "output_dim" if isinstance(layer, L.Embedding) else "filters"] = \
            int(kept["out"].size)
    if "channel" in kept and groups_lib.is_grouped_depthwise(layer):
        config["filters"] = config["groups"] = int(kept["channel"].size)
    if "pass" in kept:
        width, new = int(layer.output.shape[-1]), kept["pass"]
        if isinstance(layer, L.Reshape):
            target = list(config["target_shape"])
            config["target_shape"] = tuple(target[:-1] + [int(new.size)]) if \
                int(layer.input.shape[-1]) == width else (-1,)
        elif isinstance(layer, L.Rescaling):
            config["scale"] = _slice_constant(config["scale"], new, width)
            config["offset"] = _slice_constant(config["offset"], new, width)
    return config, weights


def _thinned_attention(layer, config, kept):
    """A MultiHeadAttention's config with fewer heads ("head"), narrower inputs ("query",
    "key", "value": the shapes it is built from) or outputs ("out": ``output_shape``)."""
    if "head" in kept:
        config["num_heads"] = int(kept["head"].size)
    for role in groups_lib.ATTENTION_INPUTS:
        shape = config.get(f"{role}_shape")
        if role in kept and shape is not None:
            config[f"{role}_shape"] = list(shape)[:-1] + [int(kept[role].size)]
    width = int(layer.output.shape[-1])
    out = int(kept["out"].size) if "out" in kept else width
    query = int(kept["query"].size) if "query" in kept else int(layer._query_shape[-1])
    if config.get("output_shape") is not None or out != query:
        config["output_shape"] = out


def remove(model, groups, keep, check_inputs=None, reference=None, atol=TOLERANCE,
           notes=(), against="masked"):
    """A thinner copy of ``model`` (a ShrinkResult) without the channels ``keep`` (group id ->
    kept indices) leaves out, each group removed from every layer it touches. With
    ``check_inputs``, its outputs are compared with ``reference``'s (``against`` names it in
    the error) and refused above ``atol`` (None: measured only)."""
    check_model(model)
    return _remove(fresh_copy(model), model, groups, keep, check_inputs, reference, atol, notes,
                   against)


def _remove(source, model, groups, keep, check_inputs, reference, atol, notes, against):
    """``remove`` on ``source``, a fresh copy of ``model`` (one inbound node per layer)."""
    groups_by_id = {g.id: g for g in groups}
    per_layer = {}
    for group in groups:
        if group.id in keep:
            for member in group.members:
                per_layer.setdefault(member.layer, []).append((group.id, member))
    thinned = {name: _thinned(source.get_layer(name), members, keep, groups_by_id)
               for name, members in per_layer.items()}

    def clone(layer):
        config = thinned[layer.name][0] if layer.name in thinned else layer.get_config()
        return type(layer).from_config(config)

    thin = keras.models.clone_model(source, clone_function=clone)
    for layer in source.layers:
        if isinstance(layer, L.InputLayer) or not layer.weights:
            continue
        values = thinned[layer.name][1] if layer.name in thinned else layer.get_weights()
        thin.get_layer(layer.name).set_weights(values)
    removed = {}
    for name, members in per_layer.items():
        if any(m.role == "out" for _, m in members):
            before = int(source.get_layer(name).output.shape[-1])
            after = int(thin.get_layer(name).output.shape[-1])
            if after < before:
                removed[name] = (before, after)
    heads = {}
    for name, members in per_layer.items():
        layer = source.get_layer(name)
        if isinstance(layer, L.MultiHeadAttention) and \
                thin.get_layer(name)._num_heads < layer._num_heads:
            heads[name] = (int(layer._num_heads), int(thin.get_layer(name)._num_heads))
    result = ShrinkResult(thin, removed, list(notes), int(model.count_params()),
                          int(thin.count_params()), heads=heads)
    if check_inputs is not None:
        expected = _outputs(reference if reference is not None else model, check_inputs)
        got = _outputs(thin, check_inputs)
        result.max_abs_diff = max(float(np.max(np.abs(e - g))) if e.size else 0.0
                                  for e, g in zip(expected, got))
        if atol is not None and not result.max_abs_diff <= atol:
            raise InternalError(f"shrunk model differs from the {against} model by "
                                f"{result.max_abs_diff:.3g} (> {atol}); refusing to return it")
    return result


def _outputs(model, x):
    out = model(x, training=False)
    return [np.asarray(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


# --- unit pruning: which channels are provably zero ---------------------------------------

def _maps_zero_to_zero(fn):
    if fn is None:
        return True
    return float(np.max(np.abs(np.asarray(fn(tf.zeros((1, 1, 1, 2))))))) == 0.0


def _zero_columns(layer, role):
    """Per channel of ``layer``'s ``role`` axis: are all its parameters there zero?"""
    pairs = groups_lib.parameters(layer, role)
    zero = None
    for variable, axis in pairs:
        moved = np.moveaxis(variable.numpy(), axis, 0)
        column = ~np.any(moved.reshape(moved.shape[0], -1) != 0, axis=1)
        zero = column if zero is None else zero & column
    return zero


def _keeps_zero(layer, role, size):
    """Per channel along the member's axis (``size`` of them): does ``layer`` output zero
    where that channel's input is zero?"""
    yes, no = np.ones(size, bool), np.zeros(size, bool)
    if role == "out":
        zero = _zero_columns(layer, "out")
        return zero & _maps_zero_to_zero(getattr(layer, "activation", None))
    if isinstance(layer, L.BatchNormalization):
        channels = layer.moving_mean.shape[-1]
        gamma = layer.gamma.numpy() if layer.scale else np.ones(channels)
        beta = layer.beta.numpy() if layer.center else np.zeros(channels)
        shift = beta - gamma * layer.moving_mean.numpy() / np.sqrt(
            layer.moving_variance.numpy() + layer.epsilon)
        return shift == 0
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)) or \
            groups_lib.is_grouped_depthwise(layer):
        bias = layer.bias.numpy() if layer.use_bias else np.zeros(size)
        return (bias == 0) & _maps_zero_to_zero(layer.activation)
    if isinstance(layer, groups_lib.PositionEmbedding):  # zero where every position's is
        return ~np.any(layer.embeddings.numpy() != 0, axis=0)
    if isinstance(layer, L.Normalization):  # one mean for every channel (groups.py)
        return yes if float(np.max(np.abs(np.asarray(layer.mean)))) == 0 else no
    if isinstance(layer, L.Rescaling):
        return np.broadcast_to(np.asarray(layer.offset).reshape(-1) == 0, (size,)).copy()
    if isinstance(layer, groups_lib.MERGES):
        widths = {int(t.shape[-1]) for t in layer.input}
        return yes if len(widths) == 1 or isinstance(layer, L.Multiply) else no
    if isinstance(layer, L.Activation):
        return yes if _maps_zero_to_zero(layer.activation) else no
    if isinstance(layer, L.PReLU):
        return yes  # x if x > 0 else alpha * x
    if isinstance(layer, (L.ReLU, L.LeakyReLU, L.ELU, L.ThresholdedReLU, L.Softmax)):
        return yes if _maps_zero_to_zero(layer) else no
    return yes


def _removable_zeros(model, group):
    """(channels of ``group`` zero in every tensor, {producer: its own zero channels},
    {layer: channels its producers leave zero that it does not keep at zero})."""
    own, keeps = {}, {}
    for member in group.members:
        if member.role in ("in",) + groups_lib.ATTENTION_INPUTS:  # readers of the group
            continue
        layer = model.get_layer(member.layer)
        size = int(layer.output.shape[-1])
        index = np.stack([member.indices([c]) for c in range(group.width)])  # (width, repeat)
        zero = _keeps_zero(layer, member.role, size)[index].all(axis=1)
        table = own if member.role == "out" else keeps
        table[member.layer] = table.get(member.layer, True) & zero  # a layer may hold it twice
    produced = np.logical_and.reduce(list(own.values())) if own else np.zeros(group.width, bool)
    breakers = {name: produced & ~zero for name, zero in keeps.items() if (produced & ~zero).any()}
    zero = np.logical_and.reduce([produced] + list(keeps.values()))
    return zero, own, breakers, produced


def shrink(model, check_inputs=None, atol=TOLERANCE):
    """Rebuild ``model`` without its provably-zero channels (unit pruning's shrink).

    ``check_inputs`` (a batch of inputs) verifies the result: the outputs must match the input
    model's within ``atol``, else InternalError (a wrong model is never returned).
    """
    check_model(model)
    if is_wrapped(model):
        raise TfpruneError("`model` still has pruning wrappers; call tfprune.pruning.strip first")
    source = fresh_copy(model)
    groups = groups_lib.channel_groups(source)
    keep, notes = {}, []
    for group in groups:
        if not group.layers("out"):
            continue
        zero, own, breakers, produced = _removable_zeros(source, group)
        if group.blocked or group.width < 2:
            zero[:] = False
        elif zero.all():
            zero[0] = False  # a layer keeps one channel
        if zero.any():
            keep[group.id] = np.flatnonzero(~zero)
        adds = [m.layer for m in group.members if m.role == "pass"
                and isinstance(source.get_layer(m.layer), L.Add)]
        for layer, own_zero in own.items():
            extra = int(np.count_nonzero(own_zero & ~zero))
            if not extra:
                continue
            tied = own_zero & ~produced
            if group.blocked:
                why = group.blocked
            elif not tied.any() and breakers:
                name = next(n for n, b in breakers.items() if (b & own_zero).any())
                why = f"{name!r} does not keep them at zero"
            elif adds:
                why = "tied by a residual Add to channels that are not zero"
            else:
                why = "tied to channels that are not zero"
            notes.append(f"{layer}: {extra} zero unit(s) kept ({why})")
    return _remove(source, model, groups, keep, check_inputs, reference=model, atol=atol,
                   notes=notes, against="input")
