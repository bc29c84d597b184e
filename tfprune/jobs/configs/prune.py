"""The pruning job's config: ``PruneConfig``, every field and combination validated on
construction (``preflight`` in jobs/prune.py checks what needs the data and the model), and
``prune_config``, the PruneConfig of one sweep or tuning variant."""

import dataclasses

from tfprune import checks, distribute
from tfprune.declare import option
from tfprune.errors import TfpruneError
from tfprune.jobs.configs.base import JobConfig
from tfprune.jobs.configs.parts import (BatchFields, ChannelFields, DatasetFields,
                                        DeterministicFields, DeviceFields, FineTuneFields,
                                        LayerFields, MByNFields, ModelFields, ScheduleFields,
                                        SeedFields, StageFields, check_zoo_model, field_defaults,
                                        resolve_augmentation, resolve_dataset_defaults)
from tfprune.jobs.configs.train import BaselineFields
from tfprune.compression.stages import STAGES, stages_help
from tfprune.pruning import allocation, schedules
from tfprune.pruning.methods import (METHODS, check_channel_granularity, check_layer_sparsity,
                                     check_one_shot, check_options)
from tfprune.pruning.options import (make_config, make_options, options_type,
                                     parse_target_latency)


# Options that only mean something for the channel method, or under a schedule: (field,
# default), read from their declarations.
CHANNEL_OPTIONS = field_defaults(ChannelFields)
SCHEDULE_OPTIONS = tuple(o for o in field_defaults(ScheduleFields)
                         if o[0] not in ("schedule", "target_sparsity"))
POLYNOMIAL_OPTIONS = tuple(o for o in SCHEDULE_OPTIONS
                           if o[0] in ("initial_sparsity", "ramp_fraction"))


def deciding_methods():
    return [m.name for m in METHODS.entries() if m.decides]


def check_dynamic_options(methods, options):
    """The deciding methods' options: valid, and given only where a deciding method uses them."""
    if not options:
        return None
    make_config(options)
    if not any(METHODS.get(m).decides for m in methods):
        raise TfpruneError(f"`dynamic` options apply to the methods "
                           f"{', '.join(deciding_methods())}, not "
                           f"{', '.join(repr(m) for m in methods)}")
    return dict(options)


@dataclasses.dataclass
class PruneConfig(JobConfig, StageFields, DeterministicFields, DeviceFields, ChannelFields,
                  MByNFields,
                  LayerFields, ScheduleFields, FineTuneFields, BaselineFields, ModelFields,
                  SeedFields, BatchFields, DatasetFields):
    """One pruning run; every field and combination is validated on construction. For methods
    without a schedule ``schedule`` becomes None; for methods that choose their own sparsity
    ``target_sparsity`` becomes None; one-shot runs (fine_tune_epochs=0) use 'constant'."""

    method: str = option("weight", lambda: "; ".join(
        f"{m.name}: {m.description}" for m in METHODS.entries()) + ".", choices=METHODS)
    from_scratch: bool = option(
        False, "Also train the shrunk architecture from scratch for the baseline's plus the "
        "fine-tuning's epochs, and report it beside the pruned model (Liu et al.).")
    stage: str = option(
        None, lambda: "Then a compression stage on the deployed model, trained --stage_epochs: "
        + stages_help() + "; a quantization-aware stage writes stage_int8.tflite (measured on "
        "the interpreter), clustering stage.keras.", choices=STAGES)
    keras3_output: bool = option(
        False, "Also save the pruned and shrunk models as Keras 3 .keras files in DIR/keras3/ "
        "(always when --baseline is a Keras 3 file).")
    layer_sparsity: str = option(
        "uniform", "weight, unit: per-layer targets meeting --target_sparsity over the pruned "
        "layers. uniform: every layer at the target; auto: from one-shot sensitivity curves on "
        "the validation split (each layer pruned as far as one common accuracy loss allows); "
        "global: one magnitude threshold over all pruned layers; or a JSON ({\"layer\": "
        "sparsity}) / CSV (layer, sparsity) file, e.g. a sensitivity run's "
        "layer_sparsity_*.json.")
    sensitivity_samples: int = option(
        1000, "--layer_sparsity=auto: validation images for the sensitivity curves.", lower=1)
    dynamic: dict = option(None, "The deciding methods' options (DynamicConfig fields).",
                           flag=False)
    layer_targets: dict = option(
        None, "A layer_sparsity file's targets, read on construction (so a changed file is a "
        "different run).", flag=False)

    def resolve(self):
        self.resolve_dataset()
        resolve_dataset_defaults(self, fine_tune_epochs="fine_tune_epochs",
                                 baseline_epochs="epochs", batch_size="batch_size")
        method = METHODS.get(self.method)
        schedules.check_step_options(self.begin_step, self.end_step, self.frequency,
                                     self.ramp_fraction)
        if not method.takes_schedule:
            for name, default in SCHEDULE_OPTIONS:
                if getattr(self, name) != default:
                    raise TfpruneError(
                        f"`{name}` applies to methods with a schedule (weight, unit), not "
                        f"{self.method!r}, which decides when to prune itself")
        elif self.schedule == "constant":
            for name, default in POLYNOMIAL_OPTIONS:
                if getattr(self, name) != default:
                    raise TfpruneError(f"`{name}` applies to the polynomial schedule, not "
                                       "'constant' (which prunes to the target at once)")
        if self.one_shot:
            check_one_shot(method)
            for name, default in SCHEDULE_OPTIONS:
                if getattr(self, name) != default:
                    raise TfpruneError(f"`{name}` applies to fine-tuning under a schedule, not "
                                       "to one-shot pruning (`fine_tune_epochs=0`)")
            self.schedule = "constant"  # one-shot prunes to the target at once
        self.schedule, self.target_sparsity, m_by_n = check_options(
            method, self.schedule, self.target_sparsity, self.initial_sparsity,
            self.sparsity_m_by_n)
        if self.layer_sparsity != "uniform":
            check_layer_sparsity(method, self.layers, m_by_n, {})
        if allocation.is_named(self.layer_sparsity):
            self.layer_targets = None
        else:  # values checked now, layer names in preflight
            self.layer_targets = allocation.read_file(self.layer_sparsity)
            check_layer_sparsity(method, self.layers, m_by_n, self.layer_targets)
        if self.layer_sparsity == "auto" and self.target_sparsity > allocation.GRID[-1]:
            raise TfpruneError(f"`target_sparsity` must be at most {allocation.GRID[-1]} with "
                               f"layer_sparsity='auto' (the sensitivity curves end there), got "
                               f"{self.target_sparsity}")
        if self.baseline != "train":
            checks.check_file("baseline", self.baseline,
                              "'train' or the path of a saved Keras model (.keras or .h5)")
        else:
            check_zoo_model(self.model, self.dataset, self.image_size)
        self.dynamic = check_dynamic_options([self.method], self.dynamic)
        if self.from_scratch and not self.structured():
            raise TfpruneError(f"`from_scratch` trains the thinner architecture a structured "
                               f"method leaves (unit, channel, or a deciding method at unit or "
                               f"channel granularity); {self.method!r} at "
                               f"{self.granularity()!r} granularity keeps the architecture")
        if self.granularity() == "channel":
            check_channel_granularity(self.method, self.layers, self.sparsity_m_by_n,
                                      self.prune_first_conv, self.prune_classifier)
        if self.target_latency is not None and method.granularity == "channel":
            unit, number = parse_target_latency(self.target_latency)  # before TensorFlow
            if unit == "ratio":  # the fraction of the dense model's latency to save
                self.target_sparsity = 1.0 - number
        if method.granularity != "channel":
            for name, default in CHANNEL_OPTIONS:
                if getattr(self, name) != default:
                    raise TfpruneError(f"`{name}` applies to method 'channel', not "
                                       f"{self.method!r}")
        self.augment = resolve_augmentation(self.augment, self.dataset, self.model,
                                            self.image_size)
        if isinstance(self.layers, str):
            self.layers = [name.strip() for name in self.layers.split(",") if name.strip()]
        self.layers = tuple(self.layers) if self.layers else None
        distribute.check_strategy(self.strategy)
        check_stage_options(self, [self.stage] if self.stage else [])

    @property
    def one_shot(self):
        """No fine-tuning: pruned once, to the target, and evaluated as it is."""
        return self.fine_tune_epochs == 0

    @property
    def method_spec(self):
        return METHODS.get(self.method)

    def method_options(self, layer_sparsity=None):
        """The method's one options object (pruning/options.py: LayerOptions, ChannelOptions
        or DecidingOptions) from this config's fields of the same names; ``layer_sparsity``:
        the per-layer targets the job resolved (jobs/prune.py: resolve_layer_sparsity), not
        this config's ``layer_sparsity`` (uniform, auto, global or a file)."""
        cls = options_type(self.method)
        mine = {f.name for f in dataclasses.fields(self)}
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(cls)
                  if f.name in mine and f.name != "layer_sparsity"}
        if "layer_sparsity" in {f.name for f in dataclasses.fields(cls)}:
            fields["layer_sparsity"] = layer_sparsity
        return make_options(self.method, **fields)

    def structured(self):
        """True when the method removes whole units or channels (shrink makes a thinner net)."""
        return self.granularity() in ("unit", "channel")

    def granularity(self):
        spec = self.method_spec
        options = make_config(self.dynamic) if spec.decides else None
        return spec.resolve_granularity(options.granularity if options else None)


def check_stage_options(config, stages):
    """The compression stages' options given only where a stage of ``stages`` uses them."""
    clustering = any(STAGES.get(s).clusters for s in stages)
    for name, default in field_defaults(StageFields):
        if getattr(config, name) == default:
            continue
        if not stages:
            raise TfpruneError(f"`{name}` applies to a compression stage (--stage"
                               f"{'s' if hasattr(config, 'stages') else ''}: "
                               f"{', '.join(STAGES.names())}); none is given")
        if name in ("clusters", "centroids") and not clustering:
            raise TfpruneError(f"`{name}` applies to the clustering stages (cluster, cqat), "
                               f"not {', '.join(stages)}")


# The schedule's target of a latency target in milliseconds until the dense model's predicted
# latency turns it into a ratio (method_objects: _resolve_ms); a ratio target replaces it.
LATENCY_PLACEHOLDER_SPARSITY = 0.5


def prune_config(key, dynamic=None, from_scratch=False, latency=None, **fields):
    """The PruneConfig of a variant: its method, schedule, target (a sparsity or a latency) and
    seed from ``key``; the deciding methods' options (``dynamic``) only for the methods that
    decide; ``from_scratch`` only for the structured ones (what shrink makes thinner);
    ``latency`` (LatencyFields' values) only for a latency target."""
    decides = METHODS.get(key.method).decides
    if key.target_latency is not None:
        fields = dict(fields, **(latency or {}), target_latency=key.target_latency)
    config = PruneConfig(method=key.method, schedule=key.schedule,
                         target_sparsity=LATENCY_PLACEHOLDER_SPARSITY
                         if key.target_latency is not None else key.target_sparsity,
                         seed=key.seed, layer_sparsity=key.layer_sparsity,
                         dynamic=dynamic if decides else None, **fields)
    if from_scratch and config.structured():
        config.from_scratch = True
    return config
