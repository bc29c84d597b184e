"""Keras Tuner search over sparsity, method, schedule, fine-tuning and quantization.

keras-tuner 1.4.8 imports Keras 3 and rejects tf_keras models in its default build-and-fit
path, so ``PruningTuner`` subclasses ``BaseTuner`` and overrides ``run_trial``: a trial prunes
the baseline with the hyperparameters and deploys the result through the same path as a sweep
variant (jobs/variant.py): converted to the chosen quantization, measured on the interpreter. The oracles
(RandomSearch, BayesianOptimization, Hyperband), resuming from the project directory and the
chief/worker distributed mode (KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP,
KERASTUNER_ORACLE_PORT) are keras-tuner's own.

Objective ("score", maximised): ``accuracy`` = TFLite accuracy, where a trial over the size or
latency budget scores its accuracy minus 1 (below every trial within budget, still ranked by
accuracy among themselves, and kept in the table); ``weighted`` = accuracy - size_weight x
size / dense float32 size - latency_weight x latency / dense float32 latency.

A user error inside a trial (TfpruneError) stops the whole search with that error: it is
raised through keras-tuner as a FatalError, so no traceback is printed and no further trial runs.
"""

import glob
import os

import keras_tuner

from tfprune import distribute, io, precision, training
from tfprune.errors import TfpruneError
from tfprune.jobs import runlock
from tfprune.jobs import variant as variant_lib
from tfprune.jobs.prune import PruneRun
from tfprune.jobs.configs.parts import latency_fields
from tfprune.jobs.configs.prune import prune_config
from tfprune.jobs.configs.tune import ORACLES, TuneConfig  # noqa: F401  (jobs.tune.TuneConfig)
from tfprune.jobs.rundir import inside, resolve
from tfprune.models import import_checked
from tfprune.pruning import stats
from tfprune.results import plots
from tfprune.results.rows import VariantKey
from tfprune.results.tables import write_csv
from tfprune.tflite import export, measure

TRIAL_COLUMNS = ["trial_id", "tuner_id", "method", "schedule", "target_sparsity",
                 "target_latency", "predicted_latency_ratio",
                 "learning_rate", "fine_tune_epochs", "quantization", "achieved_sparsity",
                 "keras_accuracy", "tflite_accuracy", "size_bytes", "gzip_bytes", "size_kb",
                 "latency_ms_median", "within_budget", "score", "tflite_file"]
REPRESENTATIVE_COUNT = 200


def declare(hp, config):
    """The search space, declared on a keras-tuner HyperParameters object."""
    hp.Choice("method", list(config.methods))
    hp.Choice("schedule", list(config.schedules))
    low, high, name = ((config.min_latency, config.max_latency, "target_latency")
                       if config.searches_latency() else
                       (config.min_sparsity, config.max_sparsity, "target_sparsity"))
    if low < high:
        hp.Float(name, low, high, step=0.05)
    else:
        hp.Fixed(name, low)
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


class UserErrorInTrial(keras_tuner.errors.FatalError):
    """A TfpruneError inside a trial: ends the search (keras-tuner re-raises FatalErrors)."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


def load_baseline(config, log=None):
    """The baseline model, loaded and checked against the dataset, once, before any trial (a
    Keras 3 file translated, its outputs checked on test images)."""
    data = config.data()
    return import_checked(config.baseline, "baseline", data, log).model


class PruningTuner(keras_tuner.engine.base_tuner.BaseTuner):
    def __init__(self, config, oracle, directory, project_name, overwrite=False, log=print):
        self.config = config
        self.log = log
        self.reference = None
        self._baseline = None
        super().__init__(oracle=oracle, hypermodel=_SpaceModel(config), directory=directory,
                         project_name=project_name, overwrite=overwrite)

    def baseline(self):
        """(model, path, dense statistics), loaded once per process."""
        if self._baseline is None:
            model = load_baseline(self.config)
            dense = stats.summarize(model)
            dense.pop("layers")
            self._baseline = (model, self.config.baseline, dense)
        return self._baseline

    def _reference(self, data):
        """Dense float32 .tflite size and latency: the scale of the weighted objective."""
        if self.reference is None:
            path = os.path.join(self.project_dir, "reference.json")
            if os.path.exists(path):
                self.reference = io.read_json(path)
            else:
                x, y = data.numpy("test")
                (row,) = measure.convert_and_measure(
                    self.baseline()[0], x, y, None, ["float32"], [False],
                    os.path.join(self.project_dir, "reference"), stem="dense",
                    latency_runs=self.config.latency_runs, log=lambda _: None)
                self.reference = {"size_bytes": row["size_bytes"], "gzip_bytes": row["gzip_bytes"],
                                  "latency_ms_median": row["latency_ms_median"],
                                  "tflite_accuracy": row["tflite_accuracy"]}
                io.write_json(path, self.reference)
        return self.reference

    def run_trial(self, trial, *args, **kwargs):
        try:
            return self._run_trial(trial)
        except TfpruneError as err:
            # End the trial on the oracle first: a chief serving other workers must not wait
            # for it. Every worker that meets the same error stops the same way.
            trial.status = keras_tuner.engine.trial.TrialStatus.FAILED
            trial.message = str(err)
            self.oracle.end_trial(trial)
            raise UserErrorInTrial(err) from None

    def _run_trial(self, trial):
        config, hp = self.config, trial.hyperparameters
        epochs = int(hp.values.get("tuner/epochs", hp.get("fine_tune_epochs")))
        method = hp.get("method")
        trial_dir = self.get_trial_dir(trial.trial_id)
        model, path, dense = self.baseline()
        if config.searches_latency():
            key = VariantKey.of(config.seed, method, hp.get("schedule"),
                                target_latency=round(float(hp.get("target_latency")), 4))
        else:
            key = VariantKey.of(config.seed, method, hp.get("schedule"),
                                float(hp.get("target_sparsity")))
        trial_config = prune_config(
            key, **config.dataset_fields(), model=config.model, fine_tune_epochs=epochs,
            learning_rate=float(hp.get("learning_rate")), baseline=config.baseline,
            strategy=config.strategy, mixed_precision=config.mixed_precision,
            latency=latency_fields(config))
        # Seeded as a sweep variant is, so a trial's result does not depend on trial order.
        training.set_seed(trial_config.seed)
        data = trial_config.load_data()
        reference = self._reference(data)
        run, (row,) = variant_lib.prune_and_deploy(
            trial_config, key, os.path.join(trial_dir, "prune"), data, (model, path), dense,
            quantizations=[hp.get("quantization")], representative_count=REPRESENTATIVE_COUNT,
            latency_runs=config.latency_runs, mixed=config.mixed_spec())
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
            "schedule": row["schedule"], "target_sparsity": key.target_sparsity,
            "target_latency": key.target_latency,
            "predicted_latency_ratio": row["predicted_latency_ratio"],
            "learning_rate": trial_config.learning_rate, "fine_tune_epochs": epochs,
            "quantization": row["quantization"], "achieved_sparsity": row["achieved_sparsity"],
            "keras_accuracy": row["keras_accuracy"], "tflite_accuracy": accuracy,
            "size_bytes": row["size_bytes"], "gzip_bytes": row["gzip_bytes"], "size_kb": size / 1024,
            "latency_ms_median": row["latency_ms_median"], "within_budget": within, "score": score,
            # Relative to the tuning directory, so it can be copied or moved.
            "tflite_file": inside(self.directory, row["tflite_file"])}
        io.write_json(os.path.join(trial_dir, "tfprune_trial.json"), result)
        target = (f"latency {key.target_latency}" if key.target_latency is not None else
                  "auto" if key.target_sparsity is None else f"{key.target_sparsity:.2f}")
        self.log(f"trial {trial.trial_id} ({self.tuner_id}): {method} {row['schedule']} "
                 f"{target} lr {trial_config.learning_rate:g} {epochs} epochs "
                 f"{result['quantization']}: tflite accuracy {accuracy:.4f}, "
                 f"{size / 1024:.1f} KB {config.size_measure}, "
                 f"{row['latency_ms_median'] * 1e3:.1f} us{'' if within else ' (over budget)'}")
        return {"score": score}

    def save_model(self, trial_id, model, step=0):
        pass  # run_trial writes the trial's models and .tflite itself

    def load_model(self, trial):
        """The model the trial deployed (shrunk when units were removed, else pruned)."""
        prune_dir = os.path.join(self.get_trial_dir(trial.trial_id), "prune")
        return PruneRun(io.read_json(os.path.join(prune_dir, "metrics.json")), prune_dir).model()


def make_tuner(config, directory, project_name="tune", overwrite=False, log=print):
    objective = keras_tuner.Objective("score", direction="max")
    oracle = ORACLES.get(config.tuner)(objective, config.max_trials, config.seed, max(config.epochs))
    return PruningTuner(config, oracle, directory, project_name, overwrite=overwrite, log=log)


def search(tuner):
    """tuner.search(), with a user error inside a trial raised as the TfpruneError it is."""
    try:
        tuner.search()
    except UserErrorInTrial as fatal:
        raise fatal.error from None


def is_worker():
    """True in a process that keras-tuner's distributed mode runs as a worker (it runs trials;
    the chief serves the oracle and writes the results). keras-tuner's own rule."""
    from keras_tuner.src.distribute import utils as dist_utils

    return dist_utils.has_chief_oracle() and not dist_utils.is_chief_oracle()


@precision.restores_policy
def run_tune(config, directory, overwrite=False, log=print, wait=False):
    """Check the baseline, search, and (except on a worker) write the results; return the
    summary (None on a worker). The chief holds ``directory``'s lock (runlock.py; ``wait``: wait
    for another job holding it); keras-tuner's workers share it."""
    with runlock.hold(directory, "tune", wait=wait, log=log, shared=is_worker()):
        return _run_tune(config, directory, overwrite, log)


def _run_tune(config, directory, overwrite, log):
    distribute.start(config.strategy)  # before any trial's data: the batch is per replica
    model = load_baseline(config, log)  # a damaged baseline is one clear error, not one a trial
    if "mixed" in config.quantizations:  # a budget below its all-int4 size: refused before trials
        export.check_float32("mixed", export.to_tflite(model, "float32"), model,
                             config.mixed_spec())
    search(make_tuner(config, directory, overwrite=overwrite, log=log))
    if is_worker():
        return None
    return write_results(config, directory)


def collect_trials(directory, project_name="tune"):
    rows = [io.read_json(p) for p in glob.glob(os.path.join(directory, project_name, "trial_*",
                                                            "tfprune_trial.json"))]
    return sorted(rows, key=lambda r: r["trial_id"])


def write_results(config, directory, project_name="tune"):
    """trials.csv / trials.json, the accuracy-vs-size plot, and the best trial's .tflite."""
    rows = collect_trials(directory, project_name)
    write_csv(os.path.join(directory, "trials.csv"), rows, TRIAL_COLUMNS)
    feasible = [r for r in rows if r["within_budget"]]
    best = max(feasible or rows, key=lambda r: r["score"]) if rows else None
    summary = {"config": config.record(), "trials": rows, "best": best,
               "budget_met": bool(feasible)}
    io.write_json(os.path.join(directory, "trials.json"), summary)
    if rows:
        plots.plot_trials(rows, best, os.path.join(directory, "trials.png"),
                          size_measure=config.size_measure, max_size_kb=config.max_size_kb,
                          tuner=config.tuner)
    if best:
        with open(resolve(directory, best["tflite_file"]), "rb") as f:
            io.write_bytes(os.path.join(directory, "best.tflite"), f.read())
    return summary
