"""Keras Tuner search over sparsity, method, schedule, fine-tuning and quantization.

keras-tuner 1.4.8 imports Keras 3 and rejects tf_keras models in its default build-and-fit
path, so ``PruningTuner`` subclasses ``BaseTuner`` and overrides ``run_trial``: a trial prunes
the baseline with the hyperparameters (pruning.pipeline.run_prune), converts the deployable model
to the chosen quantization and measures it on the LiteRT interpreter. The oracles
(RandomSearch, BayesianOptimization, Hyperband), resuming from the project directory and the
chief/worker distributed mode (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP,
KERASTUNER_ORACLE_PORT) are keras-tuner's own.

Objective ("score", maximised): ``accuracy`` = TFLite accuracy, where a trial over the size or
latency budget scores its accuracy minus 1 (below every trial within budget, still ranked by
accuracy among themselves, and kept in the table); ``weighted`` = accuracy - size_weight x
size / dense float32 size - latency_weight x latency / dense float32 latency.
"""

import dataclasses
import glob
import os

import keras_tuner

from tfprune import deploy, io
from tfprune import train as train_lib
from tfprune.data import DATASETS, load_data
from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import MODELS
from tfprune.pruning import METHODS, SCHEDULES, schedules
from tfprune.pruning.core import DYNAMIC_METHODS, TARGETLESS_METHODS
from tfprune.pruning.pipeline import PruneConfig, run_prune
from tfprune.registry import Registry

ORACLES = Registry("tuner")
ORACLES.register("random", lambda objective, trials, seed, max_epochs: keras_tuner.oracles.RandomSearchOracle(
    objective=objective, max_trials=trials, seed=seed))
ORACLES.register("bayesian", lambda objective, trials, seed, max_epochs: keras_tuner.oracles.BayesianOptimizationOracle(
    objective=objective, max_trials=trials, seed=seed))
ORACLES.register("hyperband", lambda objective, trials, seed, max_epochs: keras_tuner.oracles.HyperbandOracle(
    objective=objective, max_epochs=max_epochs, factor=3, hyperband_iterations=1, seed=seed))
OBJECTIVES = ("accuracy", "weighted")
SIZE_MEASURES = ("gzip", "raw")
TRIAL_COLUMNS = ["trial_id", "tuner_id", "method", "schedule", "target_sparsity",
                 "learning_rate", "fine_tune_epochs", "quantization", "achieved_sparsity",
                 "keras_accuracy", "tflite_accuracy", "size_bytes", "gzip_bytes", "size_kb",
                 "latency_ms_median", "within_budget", "score", "tflite_file"]


@dataclasses.dataclass
class TuneConfig:
    baseline: str                       # saved Keras baseline model
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

    def __post_init__(self):
        DATASETS.validate(self.dataset)
        MODELS.validate(self.model)
        ORACLES.validate(self.tuner)
        self.methods = METHODS.validate_list("methods", self.methods)
        self.schedules = SCHEDULES.validate_list("schedules", self.schedules)
        for name in ("learning_rates", "epochs", "quantizations"):
            if not tuple(getattr(self, name)):
                raise TfpruneError(f"`{name}` must not be empty: the search space needs a value")
        self.quantizations = tuple(deploy.validate_quantizations(list(self.quantizations)))
        schedules.check_sparsity("min_sparsity", self.min_sparsity)
        schedules.check_sparsity("max_sparsity", self.max_sparsity)
        if self.min_sparsity > self.max_sparsity:
            raise TfpruneError(f"`min_sparsity` ({self.min_sparsity}) must not exceed "
                               f"`max_sparsity` ({self.max_sparsity})")
        for lr in self.learning_rates:
            if not lr > 0:
                raise TfpruneError(f"`learning_rates` must be > 0, got {lr}")
        for epochs in self.epochs:
            train_lib._check_int("epochs", epochs, 1)
        train_lib._check_int("max_trials", self.max_trials, 1)
        if self.objective not in OBJECTIVES:
            raise TfpruneError(f"`objective` must be one of {', '.join(OBJECTIVES)}, got "
                               f"{self.objective!r}")
        if self.size_measure not in SIZE_MEASURES:
            raise TfpruneError(f"`size_measure` must be one of {', '.join(SIZE_MEASURES)}, got "
                               f"{self.size_measure!r}")
        for name in ("max_size_kb", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise TfpruneError(f"`{name}` must be > 0, got {value}")
        if not os.path.isfile(self.baseline):
            raise TfpruneError(f"`baseline` must be a saved Keras model file, got "
                               f"{self.baseline!r}, which is not a file")

    def to_dict(self):
        return dataclasses.asdict(self)


def declare(hp, config):
    """The search space, declared on a keras-tuner HyperParameters object."""
    hp.Choice("method", list(config.methods))
    hp.Choice("schedule", list(config.schedules))
    if config.min_sparsity < config.max_sparsity:
        hp.Float("target_sparsity", config.min_sparsity, config.max_sparsity, step=0.05)
    else:
        hp.Fixed("target_sparsity", config.min_sparsity)
    hp.Choice("learning_rate", list(config.learning_rates))
    hp.Choice("fine_tune_epochs", list(config.epochs))
    hp.Choice("quantization", list(config.quantizations))


class _SpaceModel(keras_tuner.HyperModel):
    """A stand-in hypermodel: declares the space, builds nothing (run_trial does the work)."""

    def __init__(self, config):
        super().__init__(name="tfprune_space")
        self.config = config

    def build(self, hp):
        declare(hp, self.config)

    def declare_hyperparameters(self, hp):
        declare(hp, self.config)


class PruningTuner(keras_tuner.engine.base_tuner.BaseTuner):
    def __init__(self, config, oracle, directory, project_name, overwrite=False, log=print):
        self.config = config
        self.log = log
        self.reference = None
        super().__init__(oracle=oracle, hypermodel=_SpaceModel(config), directory=directory,
                         project_name=project_name, overwrite=overwrite)

    def _reference(self, data):
        """Dense float32 .tflite size and latency: the scale of the weighted objective."""
        if self.reference is None:
            path = os.path.join(self.project_dir, "reference.json")
            if os.path.exists(path):
                self.reference = io.read_json(path)
            else:
                model = keras.models.load_model(self.config.baseline, compile=False)
                x, y = data.numpy("test")
                (row,) = deploy.convert_and_measure(
                    model, x, y, None, ["float32"], [False], os.path.join(self.project_dir, "reference"),
                    stem="dense", latency_runs=self.config.latency_runs, log=lambda _: None)
                self.reference = {"size_bytes": row["size_bytes"], "gzip_bytes": row["gzip_bytes"],
                                  "latency_ms_median": row["latency_ms_median"],
                                  "tflite_accuracy": row["tflite_accuracy"]}
                io.write_json(path, self.reference)
        return self.reference

    def run_trial(self, trial, *args, **kwargs):
        config, hp = self.config, trial.hyperparameters
        epochs = int(hp.values.get("tuner/epochs", hp.get("fine_tune_epochs")))
        method = hp.get("method")
        trial_dir = self.get_trial_dir(trial.trial_id)
        data = load_data(config.dataset, seed=config.seed, data_dir=config.data_dir,
                         split_seed=config.split_seed,
                         augment=train_lib.resolve_augmentation("auto", config.dataset, config.model))
        reference = self._reference(data)
        target = 0.0 if method in TARGETLESS_METHODS else float(hp.get("target_sparsity"))
        prune_config = PruneConfig(
            dataset=config.dataset, model=config.model, method=method,
            schedule="-" if method in DYNAMIC_METHODS else hp.get("schedule"),
            target_sparsity=target, fine_tune_epochs=epochs,
            learning_rate=float(hp.get("learning_rate")), seed=config.seed,
            split_seed=config.split_seed, data_dir=config.data_dir, baseline=config.baseline)
        metrics = run_prune(prune_config, os.path.join(trial_dir, "prune"), overwrite=True,
                            log=lambda _: None, data=data)
        kind = "shrunk" if metrics["models"]["shrunk"] else "pruned"
        model = keras.models.load_model(metrics["models"][kind], compile=False)
        x, y = data.numpy("test")
        (row,) = deploy.convert_and_measure(
            model, x, y, data.representative_sample(200), [hp.get("quantization")], [False],
            trial_dir, stem=kind, latency_runs=config.latency_runs,
            keras_accuracy=metrics["accuracy"], log=lambda _: None)
        size = row["gzip_bytes"] if config.size_measure == "gzip" else row["size_bytes"]
        within = True
        if config.max_size_kb is not None and size / 1024 > config.max_size_kb:
            within = False
        if config.max_latency_ms is not None and row["latency_ms_median"] > config.max_latency_ms:
            within = False
        accuracy = row["tflite_accuracy"]
        if config.objective == "weighted":
            ref_size = reference["gzip_bytes"] if config.size_measure == "gzip" else reference["size_bytes"]
            score = (accuracy - config.size_weight * size / ref_size
                     - config.latency_weight * row["latency_ms_median"] / reference["latency_ms_median"])
        else:
            score = accuracy
        if not within:
            score -= 1.0  # fails the constraint: ranked after every trial within budget
        result = {
            "trial_id": trial.trial_id, "tuner_id": self.tuner_id, "method": method,
            "schedule": prune_config.schedule, "target_sparsity": target,
            "learning_rate": prune_config.learning_rate, "fine_tune_epochs": epochs,
            "quantization": hp.get("quantization"), "achieved_sparsity": metrics["pruned_sparsity"],
            "keras_accuracy": metrics["accuracy"], "tflite_accuracy": accuracy,
            "size_bytes": row["size_bytes"], "gzip_bytes": row["gzip_bytes"], "size_kb": size / 1024,
            "latency_ms_median": row["latency_ms_median"], "within_budget": within, "score": score,
            "tflite_file": row["file"]}
        io.write_json(os.path.join(trial_dir, "tfprune_trial.json"), result)
        self.log(f"trial {trial.trial_id} ({self.tuner_id}): {method} {prune_config.schedule} "
                 f"{target:.2f} lr {prune_config.learning_rate:g} {epochs} epochs "
                 f"{result['quantization']}: tflite accuracy {accuracy:.4f}, "
                 f"{size / 1024:.1f} KB {config.size_measure}, "
                 f"{row['latency_ms_median'] * 1e3:.1f} us{'' if within else ' (over budget)'}")
        return {"score": score}

    def save_model(self, trial_id, model, step=0):
        pass  # run_trial writes the trial's models and .tflite itself

    def load_model(self, trial):
        return keras.models.load_model(
            glob.glob(os.path.join(self.get_trial_dir(trial.trial_id), "prune", "*.keras"))[0])


def make_tuner(config, directory, project_name="tune", overwrite=False, log=print):
    objective = keras_tuner.Objective("score", direction="max")
    oracle = ORACLES.get(config.tuner)(objective, config.max_trials, config.seed, max(config.epochs))
    return PruningTuner(config, oracle, directory, project_name, overwrite=overwrite, log=log)


def collect_trials(directory, project_name="tune"):
    rows = [io.read_json(p) for p in glob.glob(os.path.join(directory, project_name, "trial_*",
                                                            "tfprune_trial.json"))]
    return sorted(rows, key=lambda r: r["trial_id"])


def write_results(config, directory, project_name="tune"):
    """trials.csv / trials.json, the accuracy-vs-size plot, and the best trial's .tflite."""
    from tfprune import report

    rows = collect_trials(directory, project_name)
    report.write_csv(os.path.join(directory, "trials.csv"), rows, TRIAL_COLUMNS)
    feasible = [r for r in rows if r["within_budget"]]
    best = max(feasible or rows, key=lambda r: r["score"]) if rows else None
    summary = {"config": config.to_dict(), "trials": rows, "best": best,
               "budget_met": bool(feasible)}
    io.write_json(os.path.join(directory, "trials.json"), summary)
    if rows:
        plot_trials(rows, best, config, os.path.join(directory, "trials.png"))
    if best:
        with open(best["tflite_file"], "rb") as f:
            io.write_bytes(os.path.join(directory, "best.tflite"), f.read())
    return summary


def plot_trials(rows, best, config, path):
    from tfprune import report

    plt = report.plt
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for within, marker, name in ((True, "o", "within budget"), (False, "x", "over budget")):
        chosen = [r for r in rows if r["within_budget"] == within]
        if chosen:
            ax.scatter([r["size_kb"] for r in chosen], [100 * r["tflite_accuracy"] for r in chosen],
                       marker=marker, s=40, label=f"trials {name}")
    if best:
        ax.scatter([best["size_kb"]], [100 * best["tflite_accuracy"]], s=250, facecolors="none",
                   edgecolors="tab:red", linewidths=2, label=f"best: trial {best['trial_id']}")
    if config.max_size_kb:
        ax.axvline(config.max_size_kb, color="tab:red", linestyle="--",
                   label=f"budget {config.max_size_kb:g} KB")
    ax.set_xlabel(f"{config.size_measure} size of the .tflite (KB)")
    ax.set_ylabel("test accuracy on the TFLite interpreter (%)")
    ax.set_title(f"{config.tuner} search: accuracy vs size over {len(rows)} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return report.save_figure(fig, path)
