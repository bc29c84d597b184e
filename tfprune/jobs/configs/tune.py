"""The tuning job's config: ``TuneConfig``, validated on construction (every corner of the
search space a valid pruning configuration), and ``ORACLES``, keras-tuner's search
algorithms by name (keras-tuner, which imports TensorFlow, is imported when one is made)."""

import dataclasses

from tfprune import checks, distribute
from tfprune.declare import option
from tfprune.errors import TfpruneError
from tfprune.jobs.configs.base import JobConfig
from tfprune.jobs.configs.parts import (DatasetFields, DeviceFields, LatencyFields, MixedFields,
                                        ModelFields, latency_fields)
from tfprune.tflite.quantizations import QUANTIZATIONS
from tfprune.models import MODELS
from tfprune.pruning.methods import METHODS, check_options, latency_methods
from tfprune.pruning.options import parse_target_latency
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
class TuneConfig(JobConfig, LatencyFields, MixedFields, DeviceFields, ModelFields, DatasetFields):
    baseline: str = option(None, "Saved Keras baseline model (from `tfprune train`; required).")
    model: str = option("cnn", "The baseline's zoo model (for its augmentation): {choices}.",
                        choices=MODELS)
    tuner: str = option("random", "Search algorithm: {choices}.", choices=ORACLES)
    max_trials: int = option(10, "Trials (random, bayesian).", lower=1)
    seed: int = option(0, "Seed of the search and the fine-tuning.", lower=0)
    methods: tuple = option(("weight", "unit"), "Methods to search: {choices}.", choices=METHODS)
    schedules: tuple = option(("constant", "polynomial"), "Schedules: {choices}.",
                              choices=SCHEDULES)
    min_sparsity: float = option(0.5, "Smallest target sparsity searched.")
    max_sparsity: float = option(0.95, "Largest target sparsity searched.")
    min_latency: float = option(
        None, "channel: search latency targets instead of sparsities, from this ratio of the "
        "dense model's predicted latency (with --max_latency; on the --latency_* target).")
    max_latency: float = option(None, "channel: the largest latency target searched (a ratio "
                                "in (0, 1)).")
    learning_rates: tuple = option((1e-3, 3e-3), "Fine-tuning learning rates.", items=float)
    epochs: tuple = option((10, 20), "Fine-tuning epochs.", items=int)
    # One quantization by default: each trial converts and measures its own .tflite.
    quantizations: tuple = option(("int8",), "Quantizations: {choices}.", choices=QUANTIZATIONS)
    objective: str = option("accuracy", "Objective: {choices}.", choices=OBJECTIVES)
    max_size_kb: float = option(None, "Size budget in KB (trials over it fail the constraint).")
    size_measure: str = option("gzip", "Size the budget applies to: {choices}.",
                               choices=SIZE_MEASURES)
    max_latency_ms: float = option(None, "Latency budget (median, 1 thread) in ms.")
    size_weight: float = option(0.1, "weighted objective: weight of size / dense size.")
    latency_weight: float = option(0.1, "weighted objective: weight of latency / dense "
                                   "latency.")
    # Fewer than export's: every trial is timed, not only the finished ones.
    latency_runs: int = option(100, "Timed invocations per trial's .tflite.", lower=1)
    strategy: str = option("default", "Each trial's fine-tuning: {choices} (one machine's "
                           "devices; several machines: keras-tuner's distributed mode, "
                           "docs/tune.md).", choices=("default", "mirrored"),
                           enforce=False)  # resolve: why not multi_worker

    def resolve(self):
        self.resolve_dataset()
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
        if (self.min_latency is None) != (self.max_latency is None):
            raise TfpruneError("give both `min_latency` and `max_latency` (a range of latency "
                               "targets, ratios in (0, 1)), or neither")
        if self.searches_latency():
            for name in ("min_latency", "max_latency"):
                parse_target_latency(getattr(self, name), name)
            if self.min_latency > self.max_latency:
                raise TfpruneError(f"`min_latency` ({self.min_latency}) must not exceed "
                                   f"`max_latency` ({self.max_latency})")
            others = [m for m in self.methods if not METHODS.get(m).takes_latency]
            if others:
                raise TfpruneError(f"a latency range (`min_latency`, `max_latency`) is searched "
                                   f"by the method(s) {', '.join(latency_methods())}; not by "
                                   f"{', '.join(others)} (search those by sparsity in another "
                                   "run)")
        for lr in self.learning_rates:
            checks.check_positive("learning_rates", lr)
        for epochs in self.epochs:
            checks.check_int("epochs", epochs, 1)
        checks.check_optional_positive("max_size_kb", self.max_size_kb)
        for name in ("size_weight", "latency_weight"):
            checks.check_non_negative(name, getattr(self, name))
        checks.check_optional_positive("max_latency_ms", self.max_latency_ms)
        checks.check_file("baseline", self.baseline, "a saved Keras model file")
        if self.strategy == "multi_worker":
            raise TfpruneError(
                "`strategy` of a tuning run is 'default' or 'mirrored' (each trial on this "
                "machine's devices); to tune on several machines run keras-tuner's distributed "
                "mode, one chief and workers that each run trials (docs/tune.md)")
        distribute.check_strategy(self.strategy)
        self.mixed_spec()
        # Every corner of the space is a valid pruning configuration (a latency target R is
        # the schedule's target sparsity 1 - R).
        corners = ((1.0 - self.max_latency, 1.0 - self.min_latency) if self.searches_latency()
                   else (self.min_sparsity, self.max_sparsity))
        for method in self.methods:
            for schedule in self.schedules:
                for target in corners:
                    check_options(method, schedule, target)

    def searches_latency(self):
        """True when the space holds latency targets (channel) instead of sparsities."""
        return self.min_latency is not None
