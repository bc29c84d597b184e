"""The tuning job's config: ``TuneConfig``, validated on construction (every corner of the
search space a valid pruning configuration), and ``ORACLES``, keras-tuner's search
algorithms by name (keras-tuner, which imports TensorFlow, is imported when one is made)."""

import dataclasses

from tfprune import checks, distribute
from tfprune.data import check_dataset, load_data
from tfprune.errors import TfpruneError
from tfprune.jobs.configs.export import MixedFields
from tfprune.jobs.configs.train import resolve_augmentation
from tfprune.models import MODELS
from tfprune.pruning.methods import METHODS, check_options
from tfprune.pruning.schedules import SCHEDULES
from tfprune.registry import Registry
from tfprune.tflite.quantizations import validate_quantizations


def _random(objective, trials, seed, max_epochs):
    import keras_tuner  # imports TensorFlow: only when a search starts

    return keras_tuner.oracles.RandomSearchOracle(objective=objective, max_trials=trials,
                                                  seed=seed)


def _bayesian(objective, trials, seed, max_epochs):
    import keras_tuner

    return keras_tuner.oracles.BayesianOptimizationOracle(objective=objective,
                                                          max_trials=trials, seed=seed)


def _hyperband(objective, trials, seed, max_epochs):
    import keras_tuner

    return keras_tuner.oracles.HyperbandOracle(objective=objective, max_epochs=max_epochs,
                                               factor=3, hyperband_iterations=1, seed=seed)


ORACLES = Registry("tuner")
ORACLES.register("random", _random)
ORACLES.register("bayesian", _bayesian)
ORACLES.register("hyperband", _hyperband)
OBJECTIVES = ("accuracy", "weighted")
SIZE_MEASURES = ("gzip", "raw")


@dataclasses.dataclass
class TuneConfig(MixedFields):
    baseline: str = None                # saved Keras baseline model
    dataset: str = "digits"
    model: str = "cnn"
    data_dir: str = None
    split_seed: int = 0
    tuner: str = "random"
    max_trials: int = 10
    seed: int = 0
    methods: tuple = ("weight", "unit")
    schedules: tuple = ("constant", "polynomial")
    min_sparsity: float = 0.5
    max_sparsity: float = 0.95
    learning_rates: tuple = (1e-3, 3e-3)
    epochs: tuple = (10, 20)
    quantizations: tuple = ("int8",)
    objective: str = "accuracy"
    max_size_kb: float = None
    size_measure: str = "gzip"
    max_latency_ms: float = None
    size_weight: float = 0.1
    latency_weight: float = 0.1
    latency_runs: int = 100
    image_size: tuple = None            # folder: data sets only
    mixed_budget_kb: float = None       # quantization "mixed": a size budget (KB), or
    mixed_int4_fraction: float = None   # the share of weights at int4 (default 0.5)
    strategy: str = "default"           # each trial's fine-tuning: default or mirrored
    mixed_precision: bool = False       # fine-tune trials under mixed_float16 (models saved
    #                                     float32)

    def __post_init__(self):
        self.image_size = check_dataset(self.dataset, self.image_size)
        MODELS.validate(self.model)
        ORACLES.validate(self.tuner)
        self.methods = METHODS.validate_list("methods", self.methods)
        self.schedules = SCHEDULES.validate_list("schedules", self.schedules)
        for name in ("learning_rates", "epochs"):
            checks.check_not_empty(name, getattr(self, name),
                                   "the search space needs a value")
        self.quantizations = tuple(validate_quantizations(self.quantizations))
        checks.check_sparsity("min_sparsity", self.min_sparsity)
        checks.check_sparsity("max_sparsity", self.max_sparsity)
        if self.min_sparsity > self.max_sparsity:
            raise TfpruneError(f"`min_sparsity` ({self.min_sparsity}) must not exceed "
                               f"`max_sparsity` ({self.max_sparsity})")
        for lr in self.learning_rates:
            checks.check_positive("learning_rates", lr)
        for epochs in self.epochs:
            checks.check_int("epochs", epochs, 1)
        for name, minimum in (("max_trials", 1), ("seed", 0), ("split_seed", 0),
                              ("latency_runs", 1)):
            checks.check_int(name, getattr(self, name), minimum)
        checks.check_choice("objective", self.objective, OBJECTIVES)
        checks.check_choice("size_measure", self.size_measure, SIZE_MEASURES)
        checks.check_optional_positive("max_size_kb", self.max_size_kb)
        for name in ("size_weight", "latency_weight"):
            checks.check_non_negative(name, getattr(self, name))
        checks.check_optional_positive("max_latency_ms", self.max_latency_ms)
        checks.check_file("baseline", self.baseline, "a saved Keras model file")
        if self.strategy == "multi_worker":
            raise TfpruneError(
                "`strategy` of a tuning run is 'default' or 'mirrored' (each trial on this "
                "machine's devices); to tune on several machines run keras-tuner's distributed "
                "mode, one chief and workers that each run trials (README: Training at scale)")
        distribute.check_strategy(self.strategy)
        self.mixed_spec()
        # Every corner of the space is a valid pruning configuration.
        for method in self.methods:
            for schedule in self.schedules:
                for target in (self.min_sparsity, self.max_sparsity):
                    check_options(method, schedule, target)

    def to_dict(self):
        return dataclasses.asdict(self)

    def load_data(self):
        return load_data(self.dataset, seed=self.seed, data_dir=self.data_dir,
                         split_seed=self.split_seed, image_size=self.image_size,
                         augment=resolve_augmentation("auto", self.dataset, self.model,
                                                      self.image_size))
