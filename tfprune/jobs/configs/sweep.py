"""The sweep's config: ``SweepConfig``, validated whole on construction, every variant's
PruneConfig included; its variants (``VariantKey``s), baselines and data."""

import dataclasses
import itertools

from tfprune import checks, distribute
from tfprune.declare import option
from tfprune.errors import TfpruneError
from tfprune.jobs.configs.base import JobConfig
from tfprune.jobs.configs.parts import (BatchFields, DatasetFields, DeviceFields, FineTuneFields,
                                        LatencyFields, MeasureFields, MixedFields, ModelFields,
                                        StageFields, check_zoo_model, latency_fields,
                                        resolve_augmentation, resolve_dataset_defaults)
from tfprune.jobs.configs.prune import check_dynamic_options, check_stage_options, prune_config
from tfprune.jobs.configs.train import BaselineEpochsFields, TrainConfig
from tfprune.compression.stages import STAGES, stages_help
from tfprune.pruning import allocation
from tfprune.pruning.methods import METHODS, latency_methods
from tfprune.pruning.options import format_target_latency
from tfprune.pruning.schedules import SCHEDULES
from tfprune.results import rows as rows_lib
from tfprune.tflite.quantizations import QUANTIZATIONS, validate_quantizations


VariantKey = rows_lib.VariantKey


# The hybrid recipe's additions: layer-wise pruning from sensitivity curves, and the quantizations
# it is compared at (all-int8 dynamic range, all-int4, mixed int4/int8 by importance).
HYBRID_LAYER_SPARSITY = (rows_lib.UNIFORM, "auto")


HYBRID_QUANTIZATIONS = ("dynamic", "int4", "mixed")


@dataclasses.dataclass
class SweepRunFields:
    """How a sweep runs, not what it measures: flags of `tfprune sweep` outside its config (so
    changing them keeps a run directory's results)."""

    visualize: bool = option(
        False, "Then look at what the models attend to (tfprune visualize on the sweep): "
        "saliency and Grad-CAM grids, class models and their drift from the dense model, into "
        "DIR/visualize and report.md.")
    overlap_deploy: bool = option(
        True, "Convert and measure each finished variant in a second process while the next "
        "one fine-tunes (same results; used with 2+ CPUs, 4+ variants to run and no "
        "--strategy).")


@dataclasses.dataclass
class SweepConfig(JobConfig, StageFields, LatencyFields, DeviceFields, MixedFields,
                  MeasureFields, FineTuneFields, BaselineEpochsFields, ModelFields, BatchFields,
                  DatasetFields):
    methods: tuple = option(("weight", "unit", "dynamic", "incremental", "adaptive"),
                            "Pruning methods: {choices}.", choices=METHODS)
    schedules: tuple = option(("constant", "polynomial"), "Schedules: {choices}.",
                              choices=SCHEDULES)
    sparsities: tuple = option((0.5, 0.75, 0.9, 0.95), "Target sparsities in [0, 1).",
                               items=float)
    target_latencies: tuple = option(
        (), "channel: latency targets, each a variant beside the target sparsities: a ratio of "
        "the dense model's predicted latency in (0, 1) or milliseconds ('2.5ms'); channels "
        "chosen by importance lost per microsecond saved on the --latency_* target "
        "(docs/latency.md). Compared with channel pruning by sparsity at the measured latency.",
        items=str)
    stages: tuple = option(
        (), lambda: "Compression stages after pruning, each a variant beside post-training "
        "quantization of the same model (the dense baseline's too), trained --stage_epochs: "
        + stages_help() + ".", choices=STAGES)
    quantizations: tuple = option(("float32", "float16", "dynamic", "int8"),
                                  "Quantizations: {choices}.", choices=QUANTIZATIONS)
    seeds: tuple = option((0,), "Seeds; several give mean and spread.", items=int)
    dynamic: dict = option(None, "The deciding methods' options (DynamicConfig fields).",
                           flag=False)
    from_scratch: bool = option(
        False, "Structured variants (unit, channel, deciding methods at unit or channel "
        "granularity): also train their thinner architecture from scratch for the same total "
        "epochs; reported as 'scratch acc %' beside the pruned model.")
    layer_sparsity: tuple = option(
        (rows_lib.UNIFORM,), "weight, unit: how each target is spread over the layers, "
        "compared in one run: {choices} (auto: from one-shot sensitivity curves on the "
        "validation split; global: one magnitude threshold).",
        choices=allocation.LAYER_SPARSITY)
    hybrid: bool = option(
        False, "The hybrid recipe: layer-wise (auto) pruning + fine-tuning + mixed int4/int8 "
        "quantization, beside uniform pruning at int8 (dynamic) and int4; adds layer_sparsity "
        "auto and the quantizations dynamic, int4, mixed.")

    def resolve(self):
        self.resolve_dataset()
        check_zoo_model(self.model, self.dataset, self.image_size)
        resolve_dataset_defaults(self, fine_tune_epochs="fine_tune_epochs",
                                 baseline_epochs="epochs", batch_size="batch_size")
        self.methods = METHODS.validate_list("methods", self.methods)
        self.schedules = SCHEDULES.validate_list("schedules", self.schedules)
        try:
            self.target_latencies = tuple(dict.fromkeys(
                format_target_latency(t) for t in self.target_latencies))
        except TfpruneError as error:
            raise TfpruneError(f"`target_latencies`: {error}") from None
        if self.target_latencies and not any(METHODS.get(m).takes_latency
                                             for m in self.methods):
            raise TfpruneError(f"`target_latencies` apply to the method(s) "
                               f"{', '.join(latency_methods())}; "
                               f"none of {', '.join(self.methods)} is one")
        if not self.target_latencies or any(
                METHODS.get(m).takes_target and not METHODS.get(m).takes_latency
                for m in self.methods):
            checks.check_not_empty("sparsities", self.sparsities, "give values in [0, 1)")
        self.sparsities = tuple(sorted(set(checks.check_sparsity("sparsities", s)
                                           for s in self.sparsities)))
        self.layer_sparsity, self.quantizations = tuple(self.layer_sparsity), \
            tuple(self.quantizations)
        checks.check_not_empty("layer_sparsity", self.layer_sparsity,
                               f"give one or more of {', '.join(allocation.LAYER_SPARSITY)}")
        if self.hybrid:
            self.layer_sparsity += HYBRID_LAYER_SPARSITY
            self.quantizations += HYBRID_QUANTIZATIONS
        self.layer_sparsity = tuple(dict.fromkeys(self.layer_sparsity))
        self.quantizations = tuple(dict.fromkeys(self.quantizations))
        self.quantizations = tuple(validate_quantizations(self.quantizations))
        if self.layer_sparsity != (rows_lib.UNIFORM,) and not any(
                METHODS.get(m).takes_layer_sparsity for m in self.methods):
            per_layer = [m.name for m in METHODS.entries() if m.takes_layer_sparsity]
            raise TfpruneError(
                f"`layer_sparsity`{' (which `hybrid` sets to uniform, auto)' if self.hybrid else ''}"
                f" applies to the methods {', '.join(per_layer)}; none of "
                f"{', '.join(self.methods)} is one")
        self.stages = STAGES.validate_list("stages", self.stages) if self.stages else ()
        check_stage_options(self, self.stages)
        self.mixed_spec()  # the budget or fraction checked now; the budget against the
        #                    all-int4 size in run_sweep's preflight, before any training
        checks.check_not_empty("seeds", self.seeds, "give one or more integers >= 0")
        for seed in self.seeds:
            checks.check_int("seeds", seed, 0)
        self.seeds = tuple(dict.fromkeys(self.seeds))
        distribute.check_strategy(self.strategy)
        self.dynamic = check_dynamic_options(self.methods, self.dynamic)
        if self.from_scratch and not any(self.prune_config(key).structured()
                                         for key in self.variants() if key.method != rows_lib.DENSE):
            raise TfpruneError(f"`from_scratch` applies to structured methods (unit, channel, or "
                               f"a deciding method at unit or channel granularity); none of "
                               f"{', '.join(self.methods)} is one")
        for key in self.variants():  # every combination, checked before anything trains
            if key.method != rows_lib.DENSE:
                self.prune_config(key.with_stage(None))

    def variants(self):
        """Every VariantKey, dense ones first. Methods without a schedule run once per target;
        methods that choose their sparsity run once per seed; a method that decides but takes
        a target needs one above 0."""
        result = [VariantKey.of(seed, rows_lib.DENSE) for seed in self.seeds]
        for seed, name in itertools.product(self.seeds, self.methods):
            method = METHODS.get(name)
            schedules = self.schedules if method.takes_schedule else (None,)
            if self.fine_tune_epochs == 0 and method.takes_schedule:
                schedules = ("constant",)  # one-shot: pruned to the target at once
            targets = [None] if not method.takes_target else [
                s for s in self.sparsities if s > 0 or not method.decides]
            keys = [VariantKey.of(seed, name, schedule, target, layers) for schedule, target, layers
                    in itertools.product(schedules, targets, self.layer_sparsity)]
            if method.takes_latency:
                keys += [VariantKey.of(seed, name, schedule, target_latency=latency)
                         for schedule, latency in itertools.product(schedules,
                                                                    self.target_latencies)]
            result.extend(dict.fromkeys(keys))  # layer_sparsity dropped: one variant
        return result + [key.with_stage(self.stage_name(key, stage))
                         for key in result for stage in self.stages]

    def stage_name(self, key, stage):
        """What ``stage`` is called after variant ``key``: sparsity-preserving (pqat,
        sparse-cluster, pcqat) where the deployed model keeps pruned zeros (weight
        granularity), plain where it is dense or shrunk (unit, channel)."""
        pruned = key.method != rows_lib.DENSE and not self.prune_config(
            key.with_stage(None)).structured()
        return STAGES.get(stage).applied(pruned)

    def stage_of(self, key):
        """The registered stage of a stage variant's ``key`` (its ``stage`` is the applied
        name)."""
        return next(s for s in self.stages if key.stage in STAGES.get(s).names)

    def train_config(self, seed):
        return TrainConfig(**self.dataset_fields(), model=self.model,
                           epochs=self.baseline_epochs, batch_size=self.batch_size, seed=seed,
                           strategy=self.strategy, mixed_precision=self.mixed_precision)

    def prune_config(self, key, baseline="train"):
        return prune_config(
            key, **self.dataset_fields(), model=self.model,
            fine_tune_epochs=self.fine_tune_epochs, learning_rate=self.learning_rate,
            batch_size=self.batch_size, baseline=baseline, baseline_epochs=self.baseline_epochs,
            dynamic=self.dynamic, from_scratch=self.from_scratch, strategy=self.strategy,
            mixed_precision=self.mixed_precision, latency=latency_fields(self))

    def load_data(self, seed, log=None):
        """The data of seed ``seed``'s baseline and variants."""
        return self.data(self.batch_size, seed, resolve_augmentation(
            "auto", self.dataset, self.model, self.image_size), log, self.strategy)
