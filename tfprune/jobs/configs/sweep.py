"""The sweep's config: ``SweepConfig``, validated whole on construction, every variant's
PruneConfig included; its variants (``VariantKey``s), baselines and data."""

import dataclasses
import itertools

from tfprune import checks, distribute
from tfprune.data import apply_dataset_defaults, check_dataset, load_data
from tfprune.errors import TfpruneError
from tfprune.jobs.configs.export import MixedFields
from tfprune.jobs.configs.prune import check_dynamic_options, prune_config
from tfprune.jobs.configs.train import TrainConfig, resolve_augmentation
from tfprune.models import MODELS
from tfprune.pruning import allocation
from tfprune.pruning.methods import METHODS
from tfprune.pruning.schedules import SCHEDULES
from tfprune.results import rows as rows_lib
from tfprune.tflite.quantizations import validate_quantizations


VariantKey = rows_lib.VariantKey


# The hybrid recipe's additions: layer-wise pruning from sensitivity curves, and the quantizations
# it is compared at (all-int8 dynamic range, all-int4, mixed int4/int8 by importance).
HYBRID_LAYER_SPARSITY = (rows_lib.UNIFORM, "auto")


HYBRID_QUANTIZATIONS = ("dynamic", "int4", "mixed")


@dataclasses.dataclass
class SweepConfig(MixedFields):
    dataset: str = "digits"
    model: str = "cnn"
    methods: tuple = ("weight", "unit", "dynamic", "incremental", "adaptive")
    schedules: tuple = ("constant", "polynomial")
    sparsities: tuple = (0.5, 0.75, 0.9, 0.95)
    quantizations: tuple = ("float32", "float16", "dynamic", "int8")
    seeds: tuple = (0,)
    baseline_epochs: int = None   # None: the data set's default (digits 60, 28x28 sets 15)
    fine_tune_epochs: int = None  # None: the data set's default (digits 15, 28x28 sets 3)
    learning_rate: float = 3e-3
    batch_size: int = None        # None: the data set's default (digits 32, 28x28 sets 128)
    split_seed: int = 0
    data_dir: str = None
    representative_count: int = 200
    num_threads: int = 1
    latency_runs: int = 200
    dynamic: dict = None   # options of the methods that decide (DynamicConfig fields)
    image_size: tuple = None  # folder: data sets only
    from_scratch: bool = False  # structured variants: also train their thinner architecture
                                # from scratch for the same total epochs (scratch_accuracy)
    layer_sparsity: tuple = (rows_lib.UNIFORM,)  # weight, unit: uniform, auto, global
    hybrid: bool = False  # the hybrid recipe: layer-wise (auto) pruning + fine-tuning + mixed
    #                       int4/int8, next to uniform pruning at int8 and int4
    mixed_budget_kb: float = None     # mixed quantization: a size budget (KB), or
    mixed_int4_fraction: float = None  # the share of weights at int4 (default 0.5)
    strategy: str = "default"  # distribute.STRATEGIES; batch_size is per replica
    mixed_precision: bool = False  # baselines and fine-tuning under mixed_float16 (the saved
    #                                models, and so the .tflite files, float32)

    def __post_init__(self):
        self.image_size = check_dataset(self.dataset, self.image_size)
        apply_dataset_defaults(self, fine_tune_epochs=("fine_tune_epochs", 15),
                               baseline_epochs=("epochs", 60), batch_size=("batch_size", 32))
        MODELS.validate(self.model)
        self.methods = METHODS.validate_list("methods", self.methods)
        self.schedules = SCHEDULES.validate_list("schedules", self.schedules)
        checks.check_not_empty("sparsities", self.sparsities, "give values in [0, 1)")
        self.sparsities = tuple(sorted(set(checks.check_sparsity("sparsities", s)
                                           for s in self.sparsities)))
        self.layer_sparsity, self.quantizations = tuple(self.layer_sparsity), \
            tuple(self.quantizations)
        checks.check_not_empty("layer_sparsity", self.layer_sparsity,
                               f"give one or more of {', '.join(allocation.LAYER_SPARSITY)}")
        for value in self.layer_sparsity:
            checks.check_choice("layer_sparsity", value, allocation.LAYER_SPARSITY)
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
        self.mixed_spec()  # the budget or fraction checked now; the budget against the
        #                    all-int4 size in run_sweep's preflight, before any training
        checks.check_not_empty("seeds", self.seeds, "give one or more integers >= 0")
        for seed in self.seeds:
            checks.check_int("seeds", seed, 0)
        self.seeds = tuple(dict.fromkeys(self.seeds))
        for name, minimum in (("baseline_epochs", 1), ("fine_tune_epochs", 0), ("batch_size", 1),
                              ("split_seed", 0), ("representative_count", 1),
                              ("num_threads", 1), ("latency_runs", 1)):
            checks.check_int(name, getattr(self, name), minimum)
        checks.check_positive("learning_rate", self.learning_rate)
        distribute.check_strategy(self.strategy)
        self.dynamic = check_dynamic_options(self.methods, self.dynamic)
        if self.from_scratch and not any(self.prune_config(key).structured()
                                         for key in self.variants() if key.method != rows_lib.DENSE):
            raise TfpruneError(f"`from_scratch` applies to structured methods (unit, channel, or "
                               f"a deciding method at unit or channel granularity); none of "
                               f"{', '.join(self.methods)} is one")
        for key in self.variants():  # every combination, checked before anything trains
            if key.method != rows_lib.DENSE:
                self.prune_config(key)

    def to_dict(self):
        return dataclasses.asdict(self)

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
            keys = (VariantKey.of(seed, name, schedule, target, layers) for schedule, target, layers
                    in itertools.product(schedules, targets, self.layer_sparsity))
            result.extend(dict.fromkeys(keys))  # layer_sparsity dropped: one variant
        return result

    def train_config(self, seed):
        return TrainConfig(dataset=self.dataset, model=self.model, epochs=self.baseline_epochs,
                           batch_size=self.batch_size, seed=seed, split_seed=self.split_seed,
                           data_dir=self.data_dir, image_size=self.image_size,
                           strategy=self.strategy,
                           mixed_precision=self.mixed_precision)

    def prune_config(self, key, baseline="train"):
        return prune_config(
            key, dataset=self.dataset, model=self.model, fine_tune_epochs=self.fine_tune_epochs,
            learning_rate=self.learning_rate, batch_size=self.batch_size,
            split_seed=self.split_seed, data_dir=self.data_dir, baseline=baseline,
            baseline_epochs=self.baseline_epochs, dynamic=self.dynamic,
            image_size=self.image_size, from_scratch=self.from_scratch, strategy=self.strategy,
            mixed_precision=self.mixed_precision)

    def load_data(self, seed, log=None):
        return load_data(self.dataset,
                         batch_size=distribute.global_batch(self.batch_size, self.strategy),
                         seed=seed,
                         data_dir=self.data_dir, split_seed=self.split_seed,
                         augment=resolve_augmentation("auto", self.dataset, self.model,
                                                      self.image_size),
                         image_size=self.image_size, log=log)
