"""Structured pruning of whole channel groups (pruning/groups.py): importance, selection,
masking and physical removal.

- ``importance``: one score per channel of every prunable group, by a registered criterion
  (CRITERIA: group L1 / L2 norm over every parameter the channel touches, BatchNorm scale as in
  network slimming, first-order Taylor |w * dL/dw| over a few batches, the gate gradient of
  Michel et al. 2019 for attention heads and neurons).
- ``select``: which channels each group keeps, for a ``ratio``: uniform (every group loses the
  same fraction), global (one threshold over all groups' mean-normalised scores) or latency
  (``ratio`` of the predicted latency saved, each group's count chosen by importance lost per
  second saved: pruning/budget.py, with a tflite.latency.CostModel) with ``max_per_group`` so
  no group is emptied, and ``round_to`` so kept counts are multiples of N.
- ``apply_masks``: zero a model's pruned channels in place, in every member of their group,
  including the consumers' input rows, so the masked model computes what the shrunk one will.
- ``shrink``: rebuild the model without them; the result is checked against the masked model.
"""

import math

import numpy as np

from tfprune import checks
from tfprune.errors import TfpruneError
from tfprune.keras import keras, tf
from tfprune.pruning import budget as budget_lib
from tfprune.pruning import schedules, step_hooks, surgery, wrapper
from tfprune.pruning.groups import ATTENTION_INPUTS, parameters
from tfprune.pruning.masks import kept_units
from tfprune.pruning.options import CRITERIA, SELECTIONS, check_channel_options

L = keras.layers


def _set_along(array, axis, index, values):
    """A copy of ``array`` with ``values`` at ``index`` along ``axis``."""
    moved = np.moveaxis(np.array(array), axis, 0)
    moved[index] = values
    return np.moveaxis(moved, 0, axis)


def _per_channel(model, group, reduce, arrays=None):
    """Sum over every member of ``reduce`` applied to each channel's slice of its parameters
    (or of ``arrays``: {variable ref: array of the variable's shape}, e.g. Taylor scores)."""
    total = np.zeros(group.width)
    for member in group.members:
        layer = model.get_layer(member.layer)
        for variable, axis in parameters(layer, member.role):
            array = arrays[variable.ref()] if arrays is not None else variable.numpy()
            moved = np.moveaxis(array, axis, 0)
            for c in range(group.width):
                total[c] += reduce(moved[member.indices([c])])
    return total


def l2_importance(model, group, data=None, memo=None):
    return np.sqrt(_per_channel(model, group, lambda w: float(np.sum(np.square(w)))))


def l1_importance(model, group, data=None, memo=None):
    return _per_channel(model, group, lambda w: float(np.sum(np.abs(w))))


def bn_scale_importance(model, group, data=None, memo=None):
    """|gamma| summed over the group's BatchNorms (Liu et al. 2017); L2 where it has none."""
    scale = np.zeros(group.width)
    found = False
    for member in group.members:
        layer = model.get_layer(member.layer)
        if member.role == "channel" and isinstance(layer, L.BatchNormalization) and layer.scale:
            scale += np.abs(layer.gamma.numpy()[member.indices(np.arange(group.width))])
            found = True
    return scale if found else l2_importance(model, group)


def taylor_importance(model, group, data=None, memo=None):
    """First-order Taylor: |w * dL/dw| summed over the channel's parameters and ``data``'s
    batches (Molchanov et al. 2019). The gradients are computed once per ``memo`` (one
    ``importance`` call), not once per group."""
    if data is None:
        raise TfpruneError("criterion 'taylor' needs `data` (batches of (inputs, labels))")
    memo = {} if memo is None else memo
    if "taylor" not in memo:
        variables = model.trainable_variables
        memo["taylor"] = {v.ref(): score for v, score in
                          zip(variables, taylor_contributions(model, data, variables))}
    return _per_channel(model, group, lambda w: float(np.sum(w)), memo["taylor"])


def gate_importance(model, group, data=None, memo=None):
    """The gradient score of Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"):
    for a gate g_c multiplying channel c where it is read (an attention head's output, an MLP
    neuron's activation), |dL/dg_c| at g = 1, summed over ``data``'s batches (absolute value
    per batch, as their code takes it per batch). A gate on what a linear layer reads is that
    layer's input rows scaled by g_c, so dL/dg_c = sum(w * dL/dw) over those rows (a head's:
    the output projection's rows). Computed for every group at once per ``memo``."""
    if data is None:
        raise TfpruneError("criterion 'gate' needs `data` (batches of (inputs, labels))")
    memo = {} if memo is None else memo
    if "gate" not in memo:
        memo["gate"] = _gate_scores(model, memo.get("groups") or [group], data)
    return memo["gate"][group.id]


def _gate_parameters(layer, role):
    """[(variable, axis)] a gate on the group's channels scales: where the channels are read
    by a linear map (the first input parameter of a consumer: a separable convolution's
    depthwise kernel, not also its pointwise one), a head's output-projection rows, a
    renormalized LayerNormalization's gamma and beta."""
    pairs = parameters(layer, role)
    if role in ("in",) + ATTENTION_INPUTS:
        return pairs[:1]
    if role == "head":
        return pairs[-1:]
    return pairs if role == "norm" else []


def _gate_scores(model, groups, batches):
    parts = {}
    for group in groups:
        found = [(m, v, axis) for m in group.members
                 for v, axis in _gate_parameters(model.get_layer(m.layer), m.role)]
        # No reader to gate (the model's output): gate the producers' outputs.
        parts[group.id] = found or [(m, v, axis) for m in group.members if m.role == "out"
                                    for v, axis in parameters(model.get_layer(m.layer), "out")]
    variables = list({v.ref(): v for entries in parts.values() for _, v, _ in entries}.values())
    totals = {group.id: np.zeros(group.width) for group in groups}
    for x, y in batches:
        products = {v.ref(): v.numpy() * tf.convert_to_tensor(g).numpy()
                    for v, g in zip(variables, _gradients(model, x, y, variables))
                    if g is not None}
        for group in groups:
            derivative = np.zeros(group.width)
            for member, variable, axis in parts[group.id]:
                if variable.ref() not in products:
                    continue
                moved = np.moveaxis(products[variable.ref()], axis, 0)
                for c in range(group.width):
                    derivative[c] += float(np.sum(moved[member.indices([c])]))
            totals[group.id] += np.abs(derivative)
    return totals


def taylor_contributions(model, batches, variables):
    """[|w * dL/dw| summed over ``batches``] for each of ``variables`` (sparse categorical
    cross-entropy of ``model``'s outputs, inference mode). Under a distribution strategy (a
    deciding pruner's callback runs outside the replicas) each batch goes whole to every replica
    and the first replica's gradients count: the same scores on every replica and worker."""
    totals = [np.zeros(v.shape) for v in variables]
    for x, y in batches:
        for total, v, g in zip(totals, variables, _gradients(model, x, y, variables)):
            if g is not None:
                total += np.abs(v.numpy() * tf.convert_to_tensor(g).numpy())
    return totals


def _gradients(model, x, y, variables):
    def gradients():
        with tf.GradientTape() as tape:
            # Reduced here: a Keras loss object's own reduction is refused under a strategy.
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                y, model(x, training=False)))
        return tape.gradient(loss, variables)

    if not (tf.distribute.has_strategy() and tf.distribute.in_cross_replica_context()):
        return gradients()
    strategy = tf.distribute.get_strategy()
    return [None if g is None else strategy.experimental_local_results(g)[0]
            for g in strategy.run(gradients)]


def prunable(groups):
    return [g for g in groups if g.blocked is None and g.width > 1]


def importance(model, groups, criterion="l2", data=None):
    """{group id: score per channel} for every prunable group."""
    score = CRITERIA.get(criterion)
    memo = {"groups": prunable(groups)}  # a criterion may score them all at once
    return {g.id: np.asarray(score(model, g, data, memo), np.float64) for g in prunable(groups)}


def _rounded_keep(width, keep, round_to):
    keep = max(1, min(width, keep))
    if round_to > 1:
        keep = min(width, int(math.ceil(keep / round_to) * round_to))
    return keep


def select(groups, scores, ratio, mode="uniform", max_per_group=0.9, round_to=1, cost=None,
           log=None):
    """{group id: sorted indices of the channels it keeps} for pruning ``ratio`` of the channels.

    uniform: each prunable group drops round(ratio x width) of its lowest-scored channels.
    global: channels of all groups are ranked by score / the group's mean score and the lowest
    ``ratio`` of all channels go, no group losing more than ``max_per_group`` of its own.
    Kept counts are then rounded up to multiples of ``round_to``.
    latency: ``ratio`` is the fraction of the dense model's predicted latency to save (``cost``,
    a tflite.latency.CostModel of this model and these groups); budget.latency_counts chooses
    the counts (multiples of ``round_to``, else of the cost model's step).
    """
    checks.check_sparsity("ratio", ratio)
    checks.check_choice("mode", mode, SELECTIONS)
    checks.check_fraction("max_per_group", max_per_group)
    checks.check_int("round_to", round_to, 1)
    candidates = {g.id: g for g in prunable(groups)}
    if mode == "latency":
        if cost is None:
            raise TfpruneError("selection 'latency' needs a cost model (tflite.latency."
                               "CostModel) of the model")
        widths = {gid: g.width for gid, g in candidates.items()}
        counts = dict(widths)
        for _ in range(3 if ratio > 0 else 0):  # choose, time what was chosen, choose again
            counts = budget_lib.latency_counts(widths, scores, cost,
                                               (1.0 - ratio) * cost.seconds(), max_per_group,
                                               round_to, cost.steps.get("gemm", 1), log)
            if not cost.refine(counts, log):
                break
        return {gid: np.sort(np.argsort(-scores[gid], kind="stable")[:counts[gid]])
                for gid in candidates}
    if mode == "uniform":
        counts = {gid: g.width - int(round(ratio * g.width)) for gid, g in candidates.items()}
    else:
        pool = []
        for gid, g in candidates.items():
            s = scores[gid]
            normalized = s / (s.mean() if s.mean() > 0 else 1.0)
            pool += [(value, gid) for value in normalized]
        pool.sort()
        total = sum(g.width for g in candidates.values())
        drop = {gid: 0 for gid in candidates}
        limit = {gid: int(math.floor(max_per_group * g.width)) for gid, g in candidates.items()}
        budget = int(round(ratio * total))
        for _, gid in pool:
            if budget <= 0:
                break
            if drop[gid] < limit[gid]:
                drop[gid] += 1
                budget -= 1
        counts = {gid: candidates[gid].width - drop[gid] for gid in candidates}
    keep = {}
    for gid, g in candidates.items():
        n = _rounded_keep(g.width, counts[gid], round_to)
        keep[gid] = np.sort(np.argsort(-scores[gid], kind="stable")[:n])
    return keep


def choose(model, groups, sparsity, criterion="l2", mode="uniform", max_per_group=0.9,
           round_to=1, data=None, cost=None, log=None):
    """{group id: kept channels} for pruning ``sparsity`` of the channels now (of the
    predicted latency, for mode "latency" with its ``cost`` model): scored by ``criterion``
    (taylor on 8 batches of ``data``), selected by ``mode``. The channel method's callback and
    one-shot pruning both choose this way."""
    if data is not None and hasattr(data, "take"):
        data = list(data.take(8))
    scores = importance(model, groups, criterion, data)
    return select(groups, scores, float(sparsity), mode, max_per_group, round_to, cost, log)


def apply_masks(model, groups, keep):
    """Zero, in place, every parameter of the channels not in ``keep`` (group id -> kept
    indices): producers' output channels, per-channel parameters and consumers' input rows."""
    for group in groups:
        if group.id not in keep:
            continue
        dropped = group.dropped(keep[group.id])
        if not dropped.size:
            continue
        for member in group.members:
            layer = model.get_layer(member.layer)
            for variable, axis in parameters(layer, member.role):
                variable.assign(_set_along(variable.numpy(), axis, member.indices(dropped), 0))


def shrink(model, groups, keep, check_inputs=None, atol=surgery.TOLERANCE, masked=False):
    """A thinner copy of ``model`` (a surgery.ShrinkResult) without the channels ``keep`` leaves
    out, every group removed from every layer it touches (surgery.remove). With
    ``check_inputs``, the outputs are compared with the model masked the same way (the caller's
    model is not changed), or with ``model`` itself when it claims to be ``masked`` already
    (after fine-tuning under masks: then a mask that did not hold during training is caught
    here). Where channels a LayerNormalization normalizes together go (``layer_norm=
    "renormalize"``), its statistics change: the difference is measured and noted, not
    refused."""
    reference = model
    if check_inputs is not None and not masked:
        reference = surgery.fresh_copy(model)
        apply_masks(reference, groups, keep)
    notes = [f"{', '.join(g.layers('out')) or 'group ' + str(g.id)}: {g.width} channels kept "
             f"({g.blocked})" for g in groups if g.blocked and g.layers("out")]
    renormalized = sorted({name for g in groups if g.id in keep and g.dropped(keep[g.id]).size
                           for name in g.renormalized()})
    against = "trained" if masked else "masked"
    result = surgery.remove(model, groups, keep, check_inputs, reference,
                            None if renormalized else atol, notes, against=against)
    if renormalized:
        result.renormalized = renormalized
        measured = "" if result.max_abs_diff is None else \
            f"; outputs differ from the {against} model's by " \
            f"{result.max_abs_diff:.3g}"
        result.notes.append(f"{len(renormalized)} LayerNormalization(s) now normalize over "
                            f"the kept channels only (layer_norm='renormalize'), so the shrunk "
                            f"model is not the masked one{measured}: "
                            + ", ".join(renormalized[:3]) + (", ..." if len(renormalized) > 3
                                                             else ""))
    return result


def channel_sparsity(groups, keep):
    """Fraction of the prunable groups' channels that ``keep`` leaves out."""
    total = sum(g.width for g in prunable(groups))
    kept = sum(len(keep.get(g.id, range(g.width))) for g in prunable(groups))
    return 1.0 - kept / total if total else 0.0


class GroupMasks:
    """0/1 masks over every parameter a model's channel groups touch, held in variables and
    applied in place: the one home of channel masks during training, shared by GroupPruner and
    the deciding pruners (pruning/dynamic.py). ``keep``: group id -> kept channel indices."""

    def __init__(self, groups, model=None):
        self.groups = list(groups)
        self.keep = {}
        self.model = None
        self._optimizer = None  # whose steps apply the masks (attach)
        if model is not None:
            self.bind(model)

    def bind(self, model):
        if model is self.model:
            return
        self.model = model
        self._targets = []
        for group in prunable(self.groups):  # blocked groups are never masked
            for member in group.members:
                for variable, axis in parameters(model.get_layer(member.layer), member.role):
                    self._targets.append((group, member, variable, axis))
        self._masks = [tf.Variable(tf.ones_like(v), trainable=False) for _, _, v, _ in self._targets]
        self._apply = tf.function(self._apply_all)  # traced for this model's variables
        if self.keep:
            self._refresh()
            self.apply()

    def set_keep(self, keep):
        """Replace the kept channels of every group in ``keep`` and zero the rest now."""
        self.keep.update({gid: np.sort(np.asarray(k, np.int64)) for gid, k in keep.items()})
        self._refresh(set(keep))
        self.apply()

    def restore(self, keep):
        """Set every group's kept channels to ``keep`` (a saved state) and apply when bound."""
        self.keep = {gid: np.sort(np.asarray(k, np.int64)) for gid, k in keep.items()}
        if self.model is not None:
            self._refresh()
            self.apply()

    def kept(self, group):
        return self.keep.get(group.id, np.arange(group.width))

    def _refresh(self, group_ids=None):
        for (group, member, variable, axis), mask in zip(self._targets, self._masks):
            if group_ids is not None and group.id not in group_ids:
                continue
            ones = np.ones(variable.shape, np.float32)
            if group.id in self.keep:
                ones = _set_along(ones, axis, member.indices(group.dropped(self.keep[group.id])),
                                  0)
            mask.assign(ones)

    def _apply_all(self):
        for (_, _, variable, _), mask in zip(self._targets, self._masks):
            variable.assign(variable * tf.cast(mask, variable.dtype))

    def apply(self):
        if self.keep:
            self._apply()

    def attach(self, model):
        """Apply the masks after every step of ``model``'s optimizer, in its compiled step
        (step_hooks.py), so the optimizer never revives a pruned channel and no callback acts
        per batch. The same products as ``apply`` (x * 1 is x, so unpruned groups keep their
        values exactly), on the stored float32 variables under mixed precision. A model not
        compiled has no steps to hook (Keras also sets callbacks' model for predict)."""
        if getattr(model, "optimizer", None) is None:
            return
        pairs = [(wrapper.stored_variable(variable), mask)
                 for (_, _, variable, _), mask in zip(self._targets, self._masks)]

        def mask_all(distribution, pairs):
            return tf.group([distribution.extended.update(
                variable, lambda v, m: v.assign(v * tf.cast(m, v.dtype)), args=(mask,))
                for variable, mask in pairs])

        def apply_gradients(apply, *args, **kwargs):
            result = apply(*args, **kwargs)
            context = tf.distribute.get_replica_context()
            if context is not None:  # the optimizer's own updates are made this way too
                context.merge_call(mask_all, args=(pairs,))
            else:
                mask_all(tf.distribute.get_strategy(), pairs)
            return result

        self._optimizer = step_hooks.add(model, self, apply_gradients)

    def detach(self, model):
        if self._optimizer is not None:
            step_hooks.remove(model, self._optimizer, self)
            self._optimizer = None


class GroupSlot:
    """One channel group seen as a kernel: a (parameters per channel, width) matrix whose column
    c holds every parameter of channel c in every member, so the column math of masks.py (norms,
    unit masks, lowest scores) serves groups as it serves a layer's units."""

    def __init__(self, masks, group):
        self.masks, self.group = masks, group
        outs = group.layers("out")
        self.name = "+".join(outs) if outs else f"group {group.id}"

    def _parts(self):
        for member in self.group.members:
            layer = self.masks.model.get_layer(member.layer)
            for variable, axis in parameters(layer, member.role):
                yield member, variable, axis

    def variables(self):
        return [variable for _, variable, _ in self._parts()]

    def matrix(self, arrays=None):
        """The group's parameters (or ``arrays``: {variable ref: array}) as columns."""
        width = self.group.width
        rows = []
        for member, variable, axis in self._parts():
            array = arrays[variable.ref()] if arrays is not None else variable.numpy()
            index = np.stack([member.indices([c]) for c in range(width)])  # (width, repeat)
            rows.append(np.moveaxis(array, axis, 0)[index].reshape(width, -1))
        return np.concatenate(rows, axis=1).T

    def kernel_and_mask(self):
        kernel = self.matrix()
        mask = np.zeros_like(kernel)
        mask[:, self.masks.kept(self.group)] = 1.0
        return kernel, mask

    def set_mask(self, mask):
        self.masks.set_keep({self.group.id: kept_units(mask)})

    def _restorable(self):
        """Every (member, variable, axis) a rollback restores: the parameters, and the
        per-channel statistics of the group's layers (BatchNorms' decay while a channel is
        pruned)."""
        for member in self.group.members:
            layer = self.masks.model.get_layer(member.layer)
            for variable, axis in parameters(layer, member.role, statistics=True):
                yield member, variable, axis

    def save(self):
        """The group's kept channels and values (picklable: values in ``_restorable`` order)."""
        return {"keep": self.masks.kept(self.group).copy(),
                "values": [v.numpy() for _, v, _ in self._restorable()]}

    def rollback(self, saved):
        """Restore the channels pruned since ``saved`` with the values they had then."""
        revived = np.setdiff1d(saved["keep"], self.masks.kept(self.group))
        for (member, variable, axis), saved_value in zip(self._restorable(), saved["values"]):
            index = member.indices(revived)
            variable.assign(_set_along(variable.numpy(), axis, index,
                                       np.moveaxis(saved_value, axis, 0)[index]))
        self.masks.set_keep({self.group.id: saved["keep"]})


class GroupPruner(keras.callbacks.Callback):
    """Prunes channel groups during fine-tuning under a tfmot schedule: before every step where
    the schedule prunes, channels are selected again at its sparsity (``select``); after every
    optimizer step the masks are applied again in the compiled step (``GroupMasks.attach``), so
    the optimizer cannot revive a pruned channel. Selection runs in Python, before a batch:
    ``next_batch_step`` names the steps it needs, and training.fit ends its calls of the train
    function there (a whole epoch per call between them)."""

    def __init__(self, groups, schedule, criterion="l2", mode="uniform", max_per_group=0.9,
                 round_to=1, data=None, log=None, cost=None):
        super().__init__()
        check_channel_options({"criterion": criterion, "mode": mode,
                               "max_per_group": max_per_group, "round_to": round_to})
        self.masks = GroupMasks(groups)
        self.groups, self.schedule = self.masks.groups, schedule
        self.criterion, self.mode = criterion, mode
        self.max_per_group, self.round_to = max_per_group, round_to
        self.data, self.cost = data, cost  # cost: the latency selection's model
        self.log = log or (lambda _: None)
        self.history = []   # [{"step", "sparsity", "channel_sparsity"}]

    @property
    def keep(self):
        return self.masks.keep

    def get_state(self):
        """What training.fit saves with each checkpoint: kept channels and pruning events."""
        return {"keep": dict(self.masks.keep), "history": list(self.history)}

    def set_state(self, state):
        self.masks.restore(state["keep"])
        self.history = list(state["history"])

    def set_model(self, model):
        super().set_model(model)
        self.masks.bind(model)
        self.masks.attach(model)

    def on_train_end(self, logs=None):
        self.masks.detach(self.model)

    def next_batch_step(self, step):
        """The first step after ``step`` at which the schedule prunes (None: none left)."""
        return schedules.next_pruning_step(self.schedule, step)

    def prune_now(self, sparsity):
        self.masks.set_keep(choose(self.model, self.groups, sparsity, self.criterion, self.mode,
                                   self.max_per_group, self.round_to, self.data, self.cost))

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.backend.get_value(self.model.optimizer.iterations))
        should_prune, sparsity = self.schedule(tf.constant(step, tf.int64))
        if bool(should_prune):
            self.prune_now(float(sparsity))
            self.history.append({"step": step, "sparsity": float(sparsity),
                                 "channel_sparsity": channel_sparsity(self.groups, self.keep)})
