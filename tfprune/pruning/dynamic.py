"""Pruners that decide during training: the mean-column-norm pruner, incremental Taylor-contribution
pruning and PQ-index adaptive pruning.

All three run as Keras callbacks over "slots", each a kernel-like matrix with a mask the callback
writes: at granularity "channel" (the default of dynamic and incremental) a slot is a channel
group (channels.GroupSlot: removed from every layer it touches, through residual Adds, BatchNorm,
depthwise convolutions and Concatenates) and its masks are applied after every optimizer step;
at "unit" or "weight" a slot is one layer under a tfmot pruning wrapper whose schedule never
fires after step 1 (``method_objects.DecidingMethod``), so the wrapper applies the mask every
step. Every decision is recorded (``decisions``) and written as JSON lines; sparsity per layer is recorded at
every check (``history``) for the plot.
"""

import itertools
import json
import math

import numpy as np

from tfprune import io
from tfprune.errors import InternalError, TfpruneError
from tfprune.keras import keras, tf
from tfprune.pruning import adaptive, step_hooks
from tfprune.pruning.channels import taylor_contributions
from tfprune.pruning.masks import (kept_and_total, kept_magnitudes, kept_units, layer_sparsity,
                                   low_norm_prune, lowest_scores_mask, mean_column_norm)


# --- the one rule of its own (the norm and mask math is in masks.py) ---------------------------

def is_stable(norm_history, tolerance, patience):
    """True when the last ``patience`` relative changes are all below ``tolerance``."""
    if len(norm_history) < patience + 1:
        return False
    recent = norm_history[-(patience + 1):]
    changes = [abs(b - a) / a if a else math.inf for a, b in zip(recent, recent[1:])]
    return max(changes) < tolerance


# --- the callbacks -----------------------------------------------------------------------------

class LayerSlot:
    """One layer under a tfmot pruning wrapper, as a slot: its kernel and mask, and (for unit
    wrappers) the per-unit variables tied to it, such as the following BatchNorm's gamma/beta."""

    def __init__(self, wrapper):
        self.wrapper = wrapper
        self.name = wrapper.layer.name

    def _tied(self):
        """Per-unit variables restored with a unit: bias, tied BatchNorm parameters and its
        moving statistics."""
        wrapper = self.wrapper
        tied = wrapper._per_unit_variables() if hasattr(wrapper, "_per_unit_variables") else []
        return tied + list(getattr(wrapper, "tied_statistics", []))

    def variables(self):
        return [self.wrapper.pruning_vars[0][0]]

    def matrix(self, arrays):
        return arrays[self.variables()[0].ref()]

    def kernel_and_mask(self):
        weight, mask, _ = self.wrapper.pruning_vars[0]
        return weight.numpy(), mask.numpy()

    def set_mask(self, new_mask):
        _, mask, _ = self.wrapper.pruning_vars[0]
        mask.assign(tf.cast(new_mask, mask.dtype))
        self.wrapper.pruning_obj.weight_mask_op()  # apply now, not only at the next step

    def save(self):
        weight, mask, _ = self.wrapper.pruning_vars[0]
        return {"mask": mask.numpy(), "kernel": weight.numpy(),
                "tied": [v.numpy() for v in self._tied()]}

    def rollback(self, saved):
        """Restore the weights pruned since ``saved`` and its mask."""
        weight, mask, _ = self.wrapper.pruning_vars[0]
        revived = (saved["mask"] > 0) & (mask.numpy() == 0)
        weight.assign(np.where(revived, saved["kernel"], weight.numpy()))
        units = np.isin(np.arange(revived.shape[-1]), kept_units(revived))
        for variable, old in zip(self._tied(), saved["tied"]):
            variable.assign(np.where(units, old, variable.numpy()))
        mask.assign(saved["mask"])


class _MaskPruner(keras.callbacks.Callback):
    """Shared machinery: read and write the masks of the slots, record decisions. With
    ``group_masks`` (channel granularity) the masks are applied again after every optimizer
    step, inside the compiled step (``GroupMasks.attach``). Nothing acts per batch: every
    decision is made at an epoch end, so fit runs a whole epoch per call (training.py)."""

    name = "dynamic"

    def __init__(self, slots, config, decisions_path=None, log=None, group_masks=None):
        super().__init__()
        if config.granularity is None:
            raise InternalError("DynamicConfig.granularity must be resolved before pruning")
        self.slots = list(slots)
        self.config = config
        self.decisions_path = decisions_path
        self.log = log or (lambda _: None)
        self.group_masks = group_masks
        self.decisions = []
        self.history = []  # [{"epoch": e, "step": s, "sparsity": {slot: x}}]

    def set_model(self, model):
        super().set_model(model)
        if self.group_masks is not None:
            self.group_masks.bind(model)
            self.group_masks.attach(model)

    # Saved by training.fit with every checkpoint, restored before a resume (LayerSlot masks
    # are model variables and come back with the checkpoint; channel masks do not).
    def get_state(self):
        state = {"decisions": list(self.decisions), "history": list(self.history)}
        if self.group_masks is not None:
            state["keep"] = dict(self.group_masks.keep)
        return state

    def set_state(self, state):
        self.decisions, self.history = list(state["decisions"]), list(state["history"])
        if "keep" in state:
            self.group_masks.restore(state["keep"])

    def sparsity(self, slot):
        return layer_sparsity(slot.kernel_and_mask()[1], self.config.granularity)

    def step(self):
        return int(keras.backend.get_value(self.model.optimizer.iterations))

    def record(self, epoch, slot, action, reason, before, after, val_accuracy, **extra):
        entry = {"method": self.name, "epoch": epoch + 1, "step": self.step(),
                 "layer": slot.name, "action": action, "reason": reason,
                 "sparsity_before": before, "sparsity_after": after,
                 "val_accuracy": val_accuracy, **extra}
        self.decisions.append(io.to_jsonable(entry))
        if action in ("prune", "rollback"):
            self.log(f"[{self.name}] epoch {epoch + 1} {entry['layer']}: {action} "
                     f"{before:.3f} -> {after:.3f} ({reason})")

    def snapshot(self, epoch):
        self.history.append({"epoch": epoch + 1, "step": self.step(),
                             "sparsity": {s.name: self.sparsity(s) for s in self.slots}})

    def write(self):
        if self.decisions_path:
            io.write_text(self.decisions_path,
                          "".join(json.dumps(d, sort_keys=True) + "\n" for d in self.decisions))

    def on_train_begin(self, logs=None):
        if not self.history:  # a resumed run has its history back (set_state)
            self.snapshot(-1)

    def on_train_end(self, logs=None):
        self.write()
        if self.group_masks is not None:
            self.group_masks.detach(self.model)

    def last_check(self, epoch, every):
        """True when no later check remains to judge a pruning event made now."""
        return epoch + 1 + every > self.params.get("epochs", epoch + 1)


class MeanColumnNormPruner(_MaskPruner):
    """Decides when, where and how much to prune from the layers' mean column norms.

    When: a layer whose mean column norm (mean L2 norm of its kept units) changed by less than
    ``norm_tolerance`` over ``patience`` checks, while validation accuracy is within
    ``accuracy_tolerance`` of the best seen. Where and how much: the units (or weights) below
    ``norm_fraction`` of that mean, at most ``max_step`` of the layer per event and never past
    ``max_sparsity``; layers with more low-norm units lose more. If validation accuracy then drops
    by more than the tolerance, the layer's previous mask and weights come back and the layer
    stops being pruned.
    """

    name = "dynamic"

    def __init__(self, slots, config, decisions_path=None, log=None, group_masks=None):
        super().__init__(slots, config, decisions_path, log, group_masks)
        self.norms = {slot.name: [] for slot in self.slots}
        self.frozen = {}
        self.best = -math.inf
        self.pending = None

    def get_state(self):
        pending = None
        if self.pending:
            pending = {"val_accuracy": self.pending["val_accuracy"],
                       "layers": [(self.slots.index(s), saved)
                                  for s, saved in self.pending["layers"]]}
        return dict(super().get_state(), norms=self.norms, frozen=self.frozen, best=self.best,
                    pending=pending)

    def set_state(self, state):
        super().set_state(state)
        self.norms, self.frozen, self.best = state["norms"], state["frozen"], state["best"]
        pending = state["pending"]
        self.pending = pending and {"val_accuracy": pending["val_accuracy"],
                                    "layers": [(self.slots[i], saved)
                                               for i, saved in pending["layers"]]}

    def on_epoch_end(self, epoch, logs=None):
        config = self.config
        if (epoch + 1) % config.interval:
            return
        logs = logs or {}
        if "val_accuracy" not in logs:
            raise TfpruneError("the dynamic pruner needs validation accuracy: pass validation "
                               "data to fit()")
        val = float(logs["val_accuracy"])
        if self.pending:
            before_accuracy = self.pending["val_accuracy"]
            # Newest first: a slot saved after an earlier one was pruned holds that one's zeros
            # where the two share a layer (a consumer's input rows and its own columns).
            for slot, saved in reversed(self.pending["layers"]):
                now = self.sparsity(slot)
                if val < before_accuracy - config.accuracy_tolerance:
                    slot.rollback(saved)
                    self.frozen[slot.name] = "rolled back"
                    self.record(epoch, slot, "rollback",
                                f"validation accuracy fell from {before_accuracy:.4f} to {val:.4f}, "
                                f"more than {config.accuracy_tolerance:g}; previous mask restored, "
                                "layer no longer pruned", now, self.sparsity(slot), val)
                else:
                    self.record(epoch, slot, "confirm",
                                f"validation accuracy {val:.4f} held within "
                                f"{config.accuracy_tolerance:g} of {before_accuracy:.4f}", now, now, val)
            self.pending = None
        self.best = max(self.best, val)
        events = []
        for slot in self.slots:
            name = slot.name
            kernel, mask = slot.kernel_and_mask()
            mcn = mean_column_norm(kernel, mask)
            history = self.norms[name]
            history.append(mcn)
            before = layer_sparsity(mask, config.granularity)
            change = abs(history[-1] - history[-2]) / history[-2] if len(history) > 1 and history[-2] else None
            extra = {"mean_column_norm": mcn, "relative_change": change}
            if name in self.frozen:
                continue
            if before >= config.max_sparsity - 1e-9:
                self.frozen[name] = "at max_sparsity"
                self.record(epoch, slot, "stop", f"reached max_sparsity {config.max_sparsity:g}",
                            before, before, val, **extra)
                continue
            if not is_stable(history, config.norm_tolerance, config.patience):
                self.record(epoch, slot, "wait", f"mean column norm not yet stable (relative "
                            f"change {change if change is not None else float('nan'):.4f}, need < "
                            f"{config.norm_tolerance:g} for {config.patience} checks)",
                            before, before, val, **extra)
                continue
            if val < self.best - config.accuracy_tolerance:
                self.record(epoch, slot, "wait", f"validation accuracy {val:.4f} more than "
                            f"{config.accuracy_tolerance:g} below the best {self.best:.4f}",
                            before, before, val, **extra)
                continue
            if self.last_check(epoch, config.interval):
                self.record(epoch, slot, "wait", "no check left to verify a pruning event",
                            before, before, val, **extra)
                continue
            new_mask, candidates = low_norm_prune(kernel, mask, config.granularity,
                                                  config.norm_fraction, config.max_step,
                                                  config.max_sparsity)
            after = layer_sparsity(new_mask, config.granularity)
            if after <= before:
                self.record(epoch, slot, "wait", f"no {config.granularity}s below "
                            f"{config.norm_fraction:g} x the mean column norm {mcn:.4f}",
                            before, before, val, candidates=candidates, **extra)
                continue
            events.append((slot, slot.save()))
            slot.set_mask(new_mask)
            self.record(epoch, slot, "prune",
                        f"mean column norm stable (relative change {change:.4f} < "
                        f"{config.norm_tolerance:g} for {config.patience} checks) and validation "
                        f"accuracy {val:.4f} within {config.accuracy_tolerance:g} of the best "
                        f"{self.best:.4f}; {candidates} {config.granularity}s below "
                        f"{config.norm_fraction:g} x mean norm {mcn:.4f}, capped at "
                        f"{config.max_step:g} per event", before, after, val, candidates=candidates,
                        **extra)
        if events:
            self.pending = {"val_accuracy": val, "layers": events}
        self.snapshot(epoch)
        self.write()


class StepTaylor:
    """First-order Taylor contributions |w * dL/dw| of ``variables`` summed over the training
    steps, from the optimizer's own gradients: ``attach`` hooks the model optimizer's
    ``apply_gradients`` (step_hooks.py), so scoring costs no extra pass over the data.

    Under a distribution strategy the gradients are summed over the replicas first (what the
    optimizer applies), each replica adds its share, and a read sums the replicas (and the
    workers): every replica and worker reads the sums one device would. Steps whose gradients
    are not all finite (skipped by loss scaling) add nothing.
    """

    def __init__(self, variables):
        self.variables = list(variables)
        self._sums = self._optimizer = None
        self._restored = None

    def attach(self, model):
        if self._sums is None:
            with model.distribute_strategy.scope():
                self._sums = [tf.Variable(tf.zeros(v.shape, tf.float32), trainable=False,
                                          synchronization=tf.VariableSynchronization.ON_READ,
                                          aggregation=tf.VariableAggregation.SUM)
                              for v in self.variables]
                self._steps = tf.Variable(0.0, trainable=False,
                                          synchronization=tf.VariableSynchronization.ON_READ,
                                          aggregation=tf.VariableAggregation.SUM)
        if self._restored is not None:
            self.restore(self._restored)
        index = {v.ref(): i for i, v in enumerate(self.variables)}

        def apply_gradients(original, grads_and_vars, *args, **kwargs):
            grads_and_vars = [(g, v) for g, v in grads_and_vars if g is not None]
            share = 1.0
            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                # The batch's gradient (summed over the replicas, as the optimizer would), so
                # the sums do not depend on how many replicas share the batch; each replica
                # adds its share of it. The optimizer then skips its own aggregation.
                summed = context.all_reduce(tf.distribute.ReduceOp.SUM,
                                            [g for g, _ in grads_and_vars])
                grads_and_vars = list(zip(summed, (v for _, v in grads_and_vars)))
                kwargs["skip_gradients_aggregation"] = True
                share = 1.0 / context.num_replicas_in_sync
            # A step whose gradients are not all finite (one loss scaling skips) adds nothing.
            finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(g)))
                                    for g, _ in grads_and_vars])
            for gradient, variable in grads_and_vars:
                i = index.get(variable.ref())
                if i is None:
                    continue
                contribution = share * tf.abs(
                    tf.cast(tf.convert_to_tensor(variable), tf.float32)
                    * tf.cast(tf.convert_to_tensor(gradient), tf.float32))
                self._sums[i].assign_add(tf.where(finite, contribution, 0.0))
            self._steps.assign_add(share * tf.cast(finite, tf.float32))
            return original(grads_and_vars, *args, **kwargs)

        self._optimizer = step_hooks.add(model, self, apply_gradients)

    def detach(self, model):
        if self._optimizer is not None:
            step_hooks.remove(model, self._optimizer, self)
            self._optimizer = None

    def steps(self):
        return 0.0 if self._sums is None else float(self._steps.read_value().numpy())

    def read(self):
        """{variable ref: summed contributions} since the last ``reset``."""
        return {v.ref(): s.read_value().numpy().astype(np.float64)
                for v, s in zip(self.variables, self._sums)}

    def reset(self):
        for total in self._sums:
            total.assign(tf.zeros(total.shape, tf.float32))
        self._steps.assign(0.0)

    def state(self):
        if self._sums is None:
            return self._restored
        return {"sums": [s.read_value().numpy() for s in self._sums], "steps": self.steps()}

    def restore(self, state):
        """Set the sums (as of a checkpoint); before ``attach`` they wait for it."""
        if self._sums is None or state is None:
            self._restored = state
            return
        for total, value in zip(self._sums, state["sums"]):
            total.assign(value)
        self._steps.assign(state["steps"])
        self._restored = None


class TaylorPruner(_MaskPruner):
    """Incremental contribution pruning: every ``every`` epochs prune ``prune_fraction`` of the
    remaining units (or weights) with the lowest first-order Taylor contribution |w * dL/dw|,
    summed over the training steps since the last round (the optimizer's own gradients:
    ``StepTaylor``). ``dataset`` (with ``max_batches``) scores instead, in one pass of its own,
    only when no step went through the model's optimizer (a custom loop)."""

    name = "incremental"

    def __init__(self, slots, config, target_sparsity, dataset, decisions_path=None, log=None,
                 group_masks=None, max_batches=None):
        super().__init__(slots, config, decisions_path, log, group_masks)
        self.target = target_sparsity
        self.dataset = dataset
        self.max_batches = max_batches
        self.fraction = config.prune_fraction
        self.taylor = StepTaylor(
            {v.ref(): v for slot in self.slots for v in slot.variables()}.values())

    def get_state(self):
        return dict(super().get_state(), fraction=self.fraction, taylor=self.taylor.state())

    def set_state(self, state):
        super().set_state(state)
        self.fraction = state["fraction"]
        self.taylor.restore(state.get("taylor"))

    def set_model(self, model):
        super().set_model(model)
        self.taylor.attach(model)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        if self.fraction is None:
            rounds = max(1, int(0.7 * self.params.get("epochs", 1)) // self.config.every)
            self.fraction = 1.0 - (1.0 - self.target) ** (1.0 / rounds)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self.taylor.detach(self.model)

    def scores(self):
        if self.taylor.steps():
            arrays = self.taylor.read()
            self.taylor.reset()
        else:
            batches = itertools.islice(self.dataset, self.max_batches) if self.max_batches \
                else self.dataset
            variables = self.taylor.variables
            arrays = dict(zip((v.ref() for v in variables),
                              taylor_contributions(self.model, batches, variables)))
        return [slot.matrix(arrays) for slot in self.slots]

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.config.every:
            return
        val = float((logs or {}).get("val_accuracy", float("nan")))
        scores = self.scores()
        for slot, score in zip(self.slots, scores):
            kernel, mask = slot.kernel_and_mask()
            before = layer_sparsity(mask, self.config.granularity)
            kept, total = kept_and_total(mask, self.config.granularity)
            allowed = int(math.floor(self.target * total + 1e-9)) - (total - kept)
            count = min(int(math.ceil(self.fraction * kept)), allowed)
            if count <= 0:
                self.record(epoch, slot, "stop", f"reached the target {self.target:g}",
                            before, before, val)
                continue
            new_mask = lowest_scores_mask(score, mask, self.config.granularity, count)
            slot.set_mask(new_mask)
            self.record(epoch, slot, "prune",
                        f"round every {self.config.every} epochs: {count} of {kept} remaining "
                        f"{self.config.granularity}s ({self.fraction:.3f}) with the lowest "
                        f"|w * dL/dw|", before, layer_sparsity(new_mask, self.config.granularity),
                        val, score_threshold=float(np.sort(score.ravel())[min(count, score.size) - 1]))
        self.snapshot(epoch)
        self.write()


class PQIndexPruner(_MaskPruner):
    """Sparsity-informed Adaptive Pruning: logs the PQ index of every layer each epoch and, every
    ``every`` epochs, prunes the amount the PQ index calls for (smallest magnitudes first)."""

    name = "adaptive"

    def __init__(self, slots, config, decisions_path=None, log=None, group_masks=None):
        super().__init__(slots, config, decisions_path, log, group_masks)
        self.pqi = []  # [{"epoch": e, layer: I}]

    def get_state(self):
        return dict(super().get_state(), pqi=list(self.pqi))

    def set_state(self, state):
        super().set_state(state)
        self.pqi = list(state["pqi"])

    def _vector(self, kernel, mask):
        return kept_magnitudes(kernel, mask, self.config.granularity)

    def on_epoch_end(self, epoch, logs=None):
        config = self.config
        val = float((logs or {}).get("val_accuracy", float("nan")))
        indices = {}
        for slot in self.slots:
            kernel, mask = slot.kernel_and_mask()
            indices[slot.name] = adaptive.pq_index(self._vector(kernel, mask), config.p,
                                                   config.q)
        self.pqi.append({"epoch": epoch + 1, **indices})
        if (epoch + 1) % config.every or self.last_check(epoch, 1):
            return
        for slot in self.slots:
            kernel, mask = slot.kernel_and_mask()
            before = layer_sparsity(mask, config.granularity)
            vector = self._vector(kernel, mask)
            d = vector.size
            index = indices[slot.name]
            total = kept_and_total(mask, config.granularity)[1]
            count = adaptive.prune_amount(d, index, config.p, config.q, config.eta, config.gamma,
                                          config.beta)
            count = min(count, int(math.floor(config.max_sparsity * total + 1e-9)) - (total - d))
            r = adaptive.keep_bound(d, index, config.p, config.q, config.eta)
            if count <= 0:
                self.record(epoch, slot, "wait", f"PQ index {index:.4f}: keep bound r={r:.1f} "
                            f"of d={d} leaves nothing to prune (or max_sparsity reached)",
                            before, before, val, pq_index=index)
                continue
            # Smallest magnitudes first: |w| per weight, squared L2 norm per unit or channel.
            kept_weights = kernel * mask
            scores = np.abs(kept_weights) if config.granularity == "weight" else kept_weights ** 2
            new_mask = lowest_scores_mask(scores, mask, config.granularity, count)
            slot.set_mask(new_mask)
            self.record(epoch, slot, "prune",
                        f"PQ index {index:.4f} (p={config.p:g}, q={config.q:g}): keep at least "
                        f"r={r:.1f} of d={d}; prune floor(d*min(gamma*(1-r/d), beta))={count}",
                        before, layer_sparsity(new_mask, config.granularity), val, pq_index=index)
        self.snapshot(epoch)
        self.write()


PRUNERS = {"MeanColumnNormPruner": MeanColumnNormPruner, "TaylorPruner": TaylorPruner,
           "PQIndexPruner": PQIndexPruner}


def summarize_decisions(pruner):
    """What a deciding callback did: events, rollbacks and the sparsity it left in each layer."""
    actions = [d["action"] for d in pruner.decisions]
    final = pruner.history[-1]["sparsity"] if pruner.history else {}
    return {"pruning_events": actions.count("prune"), "rollbacks": actions.count("rollback"),
            "chosen_sparsity": dict(final), "granularity": pruner.config.granularity}
