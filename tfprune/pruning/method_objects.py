"""A pruning method as an object that knows how to prune: ``make_method(method, options)``.

Every question "which method is this" is answered here, once, by the class ``make_method`` picks from
the method's spec (methods.Method):

- ``LayerMethod`` (weight, unit): tfmot wrappers under a schedule (core._wrap_model);
- ``ChannelMethod`` (channel): no wrappers, the groups' masks selected by ``GroupPruner``;
- ``DecidingMethod`` (dynamic, incremental, adaptive): a callback that decides, over channel
  groups (``GroupSlot``) or wrapped layers (``LayerSlot``).

A method is made from its spec and its ONE options object (options.py: ``LayerOptions``,
``ChannelOptions``, ``DecidingOptions``), checked together on construction. ``check(model)``
checks it against a model's layers before any training; ``attach(model, ...)`` returns an
``Attached`` (a copy of the model, wrapped or with masks, and the callbacks fit needs; with
``epochs=0``, pruned once, nothing to fit); ``Attached.finish(check_inputs)`` returns a
``Finished``: the pruned model (plain, float32), the shrunk one (``channels.shrink`` or
``surgery.shrink``), the statistics the method owns, its figures, files and events.
"""

import dataclasses
import os

import tensorflow_model_optimization as tfmot

from tfprune import checks, precision, quiet, summaries
from tfprune.errors import TfpruneError
from tfprune.keras import check_model
from tfprune.pruning import budget
from tfprune.pruning import channels as channels_lib
from tfprune.pruning import core
from tfprune.pruning import dynamic as dynamic_lib
from tfprune.pruning import kernels
from tfprune.pruning import methods as methods_lib
from tfprune.pruning import oneshot
from tfprune.pruning import options as options_lib
from tfprune.pruning import schedules as schedules_lib
from tfprune.pruning import stats, surgery
from tfprune.pruning.schedules import ScheduleSteps
from tfprune.pruning.unit import PruneLowMagnitude

ONE_SHOT_STEPS = ScheduleSteps(0, 0, 1)


@dataclasses.dataclass(frozen=True)
class Figure:
    """A plot a method owns: ``results.plots.<plot>(data, plots/<file>, title=title)``."""

    plot: str
    file: str
    data: object
    title: str


@dataclasses.dataclass
class Finished:
    """A pruned model and what the method says about it."""

    pruned: object                  # float32, the original shapes, the pruned weights zero
    shrink: surgery.ShrinkResult    # the pruned units or channels physically removed
    summary: dict                   # stats.summarize(pruned, pruned layers); "layers": rows
    statistics: dict                # the method's own entries of the run's metrics
    figures: list = dataclasses.field(default_factory=list)
    files: dict = dataclasses.field(default_factory=dict)  # {file name: JSON-able content}
    decisions: list = None          # a deciding pruner's decisions (TensorBoard text)

    @property
    def shrunk(self):
        return self.shrink.model

    def write_events(self, log_dir):
        """The method's own TensorBoard events under ``log_dir`` (a deciding pruner's)."""
        if self.decisions is not None:
            summaries.write_decisions(log_dir, self.decisions)


@dataclasses.dataclass
class Attached:
    """A copy of a model prepared for one method: fit ``model`` with ``callbacks`` (nothing to
    fit after one-shot pruning), then ``finish``."""

    method: object                  # the method object that made it
    model: object                   # wrapped (weight, unit) or plain, not compiled
    callbacks: list
    pruned_layers: list
    skipped_layers: dict            # name -> why it was not pruned
    steps: ScheduleSteps
    one_shot: bool = False
    pruner: object = None           # the callback that decides or selects (None: tfmot's own)
    masks: object = None            # channels.GroupMasks: the kept channels shrink removes

    @property
    def target_sparsity(self):
        return self.method.target_sparsity

    @property
    def schedule(self):
        return self.method.schedule

    @property
    def targets(self):
        """{pruned layer: its target} (None for a method that chooses its sparsity)."""
        return {name: self.method.layer_target(name) for name in self.pruned_layers}

    def describe(self, where=None):
        """One line for a log: method, schedule, the pruned layers (a long list shortened,
        ``where`` naming where the whole list is)."""
        return self.method.describe(self, quiet.names(self.pruned_layers, where))

    def finish(self, check_inputs=None):
        """The pruned model (plain, float32), shrunk, with the method's statistics."""
        return self.method.finish(self, check_inputs)


class _Method:
    """What every method shares; the subclasses own how they attach and finish."""

    def __init__(self, spec, options):
        self.spec, self.options = spec, options
        self.name = spec.name

    @property
    def target_sparsity(self):
        return self.options.target_sparsity

    @property
    def schedule(self):
        return getattr(self.options, "schedule", None)

    def layer_target(self, name):
        return self.target_sparsity

    def granularity(self):
        return self.spec.granularity

    def check(self, model=None, steps_per_epoch=None, epochs=0):
        """What can be checked against the fine-tuning's steps (``epochs`` > 0) and ``model``'s
        layers (when given) before any training; raises a TfpruneError."""
        raise NotImplementedError

    def attach(self, model, *, steps_per_epoch=None, epochs, train_data=None,
               decisions_path=None, log=None):
        """A copy of ``model`` ready to fine-tune for ``epochs`` (call it inside a strategy's
        scope when training under one); ``epochs=0``: pruned once, nothing to fit."""
        check_model(model)
        if epochs == 0:
            return self.prune_once(model, train_data)
        return self._attach(model, steps_per_epoch, epochs, train_data, decisions_path, log)

    def prune_once(self, model, train_data=None, in_place=False):
        raise TfpruneError(f"one-shot pruning (`fine_tune_epochs=0`) applies to the methods "
                           f"{', '.join(methods_lib.ONE_SHOT)}, not {self.name!r}: it decides "
                           "while training")

    def _steps(self, steps_per_epoch, epochs):
        o = self.options
        return schedules_lib.derive_steps(o.schedule, steps_per_epoch, epochs, o.begin_step,
                                          o.end_step, o.frequency, o.ramp_fraction)

    def _schedule(self, target, steps):
        o = self.options
        return schedules_lib.make_schedule(o.schedule, target, steps,
                                           min(o.initial_sparsity, target), o.power)

    def describe(self, attached, layers):
        steps = attached.steps
        return (f"({self.name}, {self.schedule}, target {self.target_sparsity:g}) layers "
                f"{layers}; schedule steps begin {steps.begin_step}, "
                f"end {steps.end_step}, every {steps.frequency}")

    def _finish(self, attached, plain, check_inputs):
        """(pruned, summary): ``plain`` as float32 and its statistics."""
        pruned = precision.float32_copy(plain)
        return pruned, stats.summarize(pruned, attached.pruned_layers)

    def _schedule_statistics(self, attached):
        return {"schedule_steps": dataclasses.asdict(attached.steps)}


class LayerMethod(_Method):
    """Weight and unit pruning: each selected layer wrapped under its schedule."""

    def __init__(self, spec, options):
        super().__init__(spec, options)
        schedule, target, self.m_by_n = methods_lib.check_options(
            spec, options.schedule, options.target_sparsity, options.initial_sparsity,
            options.sparsity_m_by_n)
        self.layers = options.layers
        if options.layer_sparsity:
            self.layers = methods_lib.check_layer_sparsity(spec, options.layers, self.m_by_n,
                                                           options.layer_sparsity)
        self.options = dataclasses.replace(options, schedule=schedule, target_sparsity=target)

    def layer_target(self, name):
        return (self.options.layer_sparsity or {}).get(name, self.target_sparsity)

    def _select(self, model):
        o = self.options
        return core.select_layers(model, self.spec.granularity, self.layers, o.prune_classifier,
                                  o.prune_first_conv, self.m_by_n)

    def check(self, model=None, steps_per_epoch=None, epochs=0):
        if epochs:
            self._steps(steps_per_epoch, epochs)
        if model is not None:
            self._select(model)

    def _attach(self, model, steps_per_epoch, epochs, train_data, decisions_path, log):
        steps = self._steps(steps_per_epoch, epochs)
        selected, skipped = self._select(model)
        if self.options.layer_sparsity:
            # A layer at target 0 stays in the pruned layers (its sparsity counts in the global
            # figure, as in one-shot) but is not wrapped: nothing to prune.
            wrap = [name for name in selected if self.layer_target(name) > 0]
            schedule = {name: self._schedule(self.layer_target(name), steps) for name in wrap}
        else:
            wrap, schedule = selected, self._schedule(self.target_sparsity, steps)
        wrapped = core._wrap_model(model, self.spec.granularity, schedule, wrap, self.m_by_n)
        return Attached(self, wrapped, [tfmot.sparsity.keras.UpdatePruningStep()], selected,
                        skipped, steps)

    def prune_once(self, model, train_data=None, in_place=False):
        copy = model if in_place else core._copy(model)
        selected, skipped = self._select(copy)
        for name in selected:
            if self.layer_target(name) > 0:
                oneshot.mask_layer(copy, name, self.spec.granularity, self.layer_target(name),
                                   self.m_by_n)
        return Attached(self, copy, [], selected, skipped, ONE_SHOT_STEPS, one_shot=True)

    def finish(self, attached, check_inputs=None):
        pruned, summary = self._finish(attached, core.strip(attached.model), check_inputs)
        return Finished(pruned, surgery.shrink(pruned, check_inputs=check_inputs), summary,
                        self._schedule_statistics(attached))


def _channel_statistics(masks, summary, selection=None, events=None):
    """The channel groups' entry of the statistics; the pruned sparsity is the channels'."""
    summary["pruned_sparsity"] = channels_lib.channel_sparsity(masks.groups, masks.keep)
    return {"channel": dict(
        selection or {}, groups=len(masks.groups),
        prunable_groups=len(channels_lib.prunable(masks.groups)),
        channel_sparsity=summary["pruned_sparsity"], events=events,
        kept={str(g): len(k) for g, k in masks.keep.items()})}


def _channel_shrink(pruned, masks, check_inputs):
    # masked: the (fine-tuned) model itself is the reference: did its masks hold?
    return channels_lib.shrink(pruned, masks.groups, masks.keep, check_inputs, masked=True)


class ChannelMethod(_Method):
    """Channel groups (pruning/groups.py) selected under a schedule by ``GroupPruner``; no
    wrappers: the groups' ``GroupMasks`` is what shrink removes."""

    def __init__(self, spec, options):
        super().__init__(spec, options)
        schedule, target, _ = methods_lib.check_options(
            spec, options.schedule, options.target_sparsity, options.initial_sparsity)
        self.options = dataclasses.replace(options, schedule=schedule, target_sparsity=target)

    def check(self, model=None, steps_per_epoch=None, epochs=0, log=None):
        if epochs:
            self._steps(steps_per_epoch, epochs)
        if model is not None:
            core.prunable_groups(model, self.options.layer_norm)
            if self.options.selection == "latency":  # the budget against the smallest model
                self._cost_model(model, core.prunable_graph(model, self.options.layer_norm),
                                 log or print)

    def _cost_model(self, model, graph, log):
        """The latency cost model of ``model`` (made by ``cost_builder``, tflite.latency.
        cost_model, once per method and architecture; its table reused across runs); a
        target in milliseconds becomes the fraction of the predicted latency to save, and a
        budget below the smallest allowed model (every group at its fewest channels) is
        refused here, before any training."""
        key = tuple((layer.name, tuple(layer.output.shape)) for layer in model.layers)
        if getattr(self, "_cost", None) is not None and self._cost[0] == key:
            return self._cost[1]
        if self.cost_builder is None:
            raise TfpruneError("selection 'latency' needs a latency cost model: make the method "
                               "with cost_builder=tfprune.tflite.latency.cost_model (the prune "
                               "job and pipeline.prune_model do)")
        o = self.options
        cost = self.cost_builder(model, graph.groups, quantization=o.latency_quantization,
                                 threads=o.latency_threads, xnnpack=o.latency_xnnpack, log=log)
        self._resolve_ms(cost)
        o, dense = self.options, cost.seconds()
        widths = {g.id: g.width for g in channels_lib.prunable(graph.groups)}
        smallest = cost.seconds(budget.smallest_counts(widths, o.max_per_group, o.round_to,
                                                       cost.steps.get("gemm", 1)))
        wanted = (1.0 - self.options.target_sparsity) * dense
        if smallest > wanted:
            raise TfpruneError(
                f"--target_latency={o.target_latency} asks for {budget.format_time(wanted)}, "
                f"below what the smallest allowed model reaches ({budget.format_time(smallest)} "
                f"predicted, {smallest / dense:.3f} of the dense {budget.format_time(dense)}, "
                f"every channel group "
                f"at its fewest channels under max_per_group={o.max_per_group:g}); allowed: a "
                f"target above {smallest / dense:.3f}")
        log(f"latency budget: {budget.format_time(wanted)} of the dense model's "
            f"{budget.format_time(dense)} "
            f"predicted on {cost.target.quantization}, {cost.target.threads} thread(s); "
            f"channels kept in multiples of {o.round_to if o.round_to > 1 else cost.steps['gemm']}"
            f" where the groups are wide enough")
        self._cost = (key, cost)
        return cost

    def _graph(self, copy, train_data):
        if self.options.criterion in options_lib.DATA_CRITERIA and train_data is None:
            raise TfpruneError(f"criterion {self.options.criterion!r} needs `train_data` to "
                               "score channels")
        return core.prunable_graph(copy, self.options.layer_norm)

    def _attach(self, model, steps_per_epoch, epochs, train_data, decisions_path, log):
        steps = self._steps(steps_per_epoch, epochs)
        copy = core._copy(model)
        graph = self._graph(copy, train_data)
        cost = self._latency(copy, graph, log)
        pruner = channels_lib.GroupPruner(graph.groups,
                                          self._schedule(self.target_sparsity, steps),
                                          data=train_data, log=log, cost=cost,
                                          **self.options.choice())
        pruned, skipped = core._channel_layers(graph, copy)
        return Attached(self, copy, [pruner], pruned, skipped, steps, pruner=pruner,
                        masks=pruner.masks)

    cost_builder = None  # selection "latency": makes its cost model (tflite.latency.cost_model)

    def prune_once(self, model, train_data=None, in_place=False):
        copy = model if in_place else core._copy(model)
        graph = self._graph(copy, train_data)
        cost = self._latency(copy, graph, print)
        keep = channels_lib.choose(copy, graph.groups, self.target_sparsity, data=train_data,
                                   cost=cost, log=print if cost else None,
                                   **self.options.choice())
        masks = channels_lib.GroupMasks(graph.groups, copy)
        masks.set_keep(keep)
        pruned, skipped = core._channel_layers(graph, copy)
        return Attached(self, copy, [], pruned, skipped, ONE_SHOT_STEPS, one_shot=True,
                        masks=masks)

    def _resolve_ms(self, cost):
        """A target in milliseconds as the fraction of the predicted latency to save."""
        o, dense = self.options, cost.seconds()
        unit, number = o.latency_target()
        if unit == "ms":
            if number >= dense * 1e3:
                raise TfpruneError(f"--target_latency={o.target_latency} is not below the dense "
                                   f"model's predicted latency ({budget.format_time(dense)}); "
                                   "allowed: a budget below it")
            self.options = dataclasses.replace(o, target_sparsity=1.0 - number * 1e-3 / dense)

    def _latency(self, copy, graph, log):
        """The cost model of the latency selection (None for the other selections), its
        calibration timed on ``copy``, the model to prune (trained, where check saw the
        untrained architecture); its groups are ``graph``'s, the copy's."""
        if self.options.selection != "latency":
            return None
        cost = self._cost_model(copy, graph, log or print)
        if cost.calibrated_on != id(copy):
            cost.calibrate(copy, log or print)
            self._resolve_ms(cost)
        return cost

    def finish(self, attached, check_inputs=None):
        pruned, summary = self._finish(attached, attached.model, check_inputs)
        shrink = _channel_shrink(pruned, attached.masks, check_inputs)
        trained = attached.pruner is not None  # the schedule's selection, with its events
        statistics = dict(
            _channel_statistics(attached.masks, summary,
                                self.options.choice() if trained else None,
                                attached.pruner.history if trained else None),
            **self._schedule_statistics(attached))
        if self.options.selection == "latency":
            statistics["latency"] = self._latency_report(attached, pruned, shrink)
        return Finished(pruned, shrink, summary, statistics)

    def _latency_report(self, attached, pruned, shrink):
        """The cost model's prediction for the dense and the pruned model (the caller that
        can time .tflite files adds the measured latencies: tflite.latency.add_measured)."""
        cost = self._cost[1]
        counts = {gid: len(k) for gid, k in attached.masks.keep.items()}
        return dict(cost.summary(), target_latency=self.options.target_latency,
                    target_ratio=1.0 - self.options.target_sparsity,
                    dense_predicted_ms=cost.seconds() * 1e3,
                    pruned_predicted_ms=cost.seconds(counts) * 1e3,
                    predicted_ratio=cost.seconds(counts) / cost.seconds())


class DecidingMethod(_Method):
    """The methods whose callback decides (dynamic.PRUNERS): over channel groups or over the
    wrapped layers' units or weights (``DynamicConfig.granularity``)."""

    def __init__(self, spec, options):
        super().__init__(spec, options)
        _, target, _ = methods_lib.check_options(spec, None, options.target_sparsity)
        config = dataclasses.replace(
            options.dynamic, granularity=spec.resolve_granularity(options.dynamic.granularity))
        self.options = dataclasses.replace(options, target_sparsity=target, dynamic=config)
        self.config = config
        if config.granularity == "channel":
            methods_lib.check_channel_granularity(spec.name, options.layers, None,
                                                  options.prune_first_conv,
                                                  options.prune_classifier)

    def granularity(self):
        return self.config.granularity

    def check(self, model=None, steps_per_epoch=None, epochs=0):
        if model is None:
            return
        if self.granularity() == "channel":
            core.prunable_groups(model)
        else:
            self._select(model)

    def _select(self, model):
        o = self.options
        selected, skipped = core.select_layers(model, self.granularity(), o.layers,
                                               o.prune_classifier, o.prune_first_conv)
        # A deciding pruner's slot is one kernel and its mask (dynamic.LayerSlot).
        several = [name for name in selected
                   if len(kernels.pruned_weights(model.get_layer(name))) > 1]
        for name in several:
            selected.remove(name)
            skipped[name] = (f"{type(model.get_layer(name)).__name__}: the deciding methods "
                             "read one kernel per layer (weight and channel pruning prune its "
                             "projections)")
        if not selected:
            raise TfpruneError(f"no layer of {model.name!r} can be pruned by {self.name!r}: "
                               + "; ".join(f"{n}: {why}" for n, why in skipped.items()))
        return selected, skipped

    def _pruner(self, slots, train_data, decisions_path, log, masks=None):
        cls = dynamic_lib.PRUNERS[self.spec.pruner]
        if self.spec.takes_target:
            return cls(slots, self.config, self.target_sparsity, train_data, decisions_path,
                       log, masks)
        return cls(slots, self.config, decisions_path, log, masks)

    def _attach(self, model, steps_per_epoch, epochs, train_data, decisions_path, log):
        if self.name == "incremental" and train_data is None:
            raise TfpruneError("method 'incremental' needs `train_data` to score contributions")
        # Masks start full and the schedule never fires after step 1: the callback owns them.
        steps = ScheduleSteps(0, 1, 1)
        if self.granularity() == "channel":
            copy = core._copy(model)
            graph = core.prunable_graph(copy)
            masks = channels_lib.GroupMasks(graph.groups, copy)
            slots = [channels_lib.GroupSlot(masks, g)
                     for g in channels_lib.prunable(graph.groups)]
            pruner = self._pruner(slots, train_data, decisions_path, log, masks)
            pruned, skipped = core._channel_layers(graph, copy)
            return Attached(self, copy, [pruner], pruned, skipped, steps, pruner=pruner,
                            masks=masks)
        selected, skipped = self._select(model)
        schedule = schedules_lib.make_schedule("constant", 0.0, steps)
        wrapped = core._wrap_model(model, self.granularity(), schedule, selected, None)
        slots = [dynamic_lib.LayerSlot(l) for l in wrapped.layers
                 if isinstance(l, PruneLowMagnitude)]
        pruner = self._pruner(slots, train_data, decisions_path, log)
        return Attached(self, wrapped, [tfmot.sparsity.keras.UpdatePruningStep(), pruner],
                        selected, skipped, steps, pruner=pruner)

    def describe(self, attached, layers):
        return f"with the {self.name} pruner ({self.granularity()}s) on layers {layers}"

    def finish(self, attached, check_inputs=None):
        pruner, masks = attached.pruner, attached.masks
        plain = attached.model if masks is not None else core.strip(attached.model)
        pruned, summary = self._finish(attached, plain, check_inputs)
        statistics = {"schedule_steps": None}
        if masks is not None:
            shrink = _channel_shrink(pruned, masks, check_inputs)
            statistics.update(_channel_statistics(masks, summary))
        else:
            shrink = surgery.shrink(pruned, check_inputs=check_inputs)
        statistics.update(dynamic_lib.summarize_decisions(pruner),
                          dynamic_config=dataclasses.asdict(pruner.config))
        if pruner.decisions_path:
            statistics["decisions_path"] = os.path.basename(pruner.decisions_path)
        files = {}
        if getattr(pruner, "pqi", None):
            files["pq_index.json"] = pruner.pqi
            statistics["pq_index_path"] = "pq_index.json"
        figures = [Figure("plot_sparsity_history", "sparsity_over_training.png", pruner.history,
                          f"{self.name} pruner: sparsity per layer ({self.granularity()}s)")]
        return Finished(pruned, shrink, summary, statistics, figures, files, pruner.decisions)


def make_method(method, options=None, cost_builder=None, **fields):
    """The method object of ``method`` (a name or a methods.Method) with its options object
    (options.make_options: ``options`` with ``fields`` replaced, or made from ``fields``),
    every combination checked. ``cost_builder``: what makes the latency selection's cost model
    (tflite.latency.cost_model; pruning/ does not time .tflite files itself)."""
    spec = methods_lib.METHODS.get(method) if isinstance(method, str) else method
    options = options_lib.make_options(spec, options, **fields)
    if spec.decides:
        return DecidingMethod(spec, options)
    if spec.granularity != "channel":
        return LayerMethod(spec, options)
    made = ChannelMethod(spec, options)
    made.cost_builder = cost_builder
    return made


def prune(model, method="weight", schedule=None, target_sparsity=None, *,
          steps_per_epoch=None, epochs, train_data=None, decisions_path=None, log=None,
          options=None, **fields):
    """A copy of ``model`` attached to ``method`` (``make_method(method, options, **fields)``,
    the schedule and target where the method takes them: given, they replace ``options``';
    neither given, polynomial to 0.5) for ``epochs`` of fine-tuning: an ``Attached`` (compile
    and fit its ``model`` with its ``callbacks``, then ``finish``). ``train_data`` (batched,
    unshuffled) is what the incremental method and the taylor criterion score on; a deciding
    method writes its decisions to ``decisions_path``."""
    spec = methods_lib.METHODS.get(method) if isinstance(method, str) else method
    given = []
    if spec.takes_schedule:
        given.append(("schedule", schedule, "polynomial"))
    if spec.takes_target:
        given.append(("target_sparsity", target_sparsity, 0.5))
    for name, value, default in given:
        if value is not None:
            fields.setdefault(name, value)
        elif options is None:
            fields.setdefault(name, default)
    return make_method(spec, options, **fields).attach(
        model, steps_per_epoch=steps_per_epoch, epochs=epochs, train_data=train_data,
        decisions_path=decisions_path, log=log)


def prune_once(model, method="weight", target_sparsity=0.5, *, train_data=None,
               in_place=False, **fields):
    """``model`` (a copy, or itself with ``in_place``: the caller restores it) pruned once to
    ``target_sparsity`` with no fine-tuning: an ``Attached`` with nothing to fit."""
    check_model(model)
    spec = methods_lib.check_one_shot(method)
    target_sparsity = checks.check_sparsity("target_sparsity", target_sparsity)
    return make_method(spec, target_sparsity=target_sparsity, schedule="constant",
                **fields).prune_once(model, train_data, in_place)
