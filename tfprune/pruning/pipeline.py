"""Prune a baseline end to end: load or train it, prune and fine-tune, strip, shrink, evaluate.

``run_prune`` is the library side of experiments/prune.py (and one variant of a sweep). It
writes into its run directory: config.json, metrics.json, layers.csv, pruned.keras (stripped,
sparse), shrunk.keras (unit pruning: physically thinner), plots/fine_tune.png and
plots/layer_sparsity.png. A finished run directory is reused as it is.
"""

import dataclasses
import os
import time

from tfprune import io
from tfprune import train as train_lib
from tfprune.data import DATASETS, load_data
from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import MODELS
from tfprune.pruning import core, schedules, stats, surgery

LAYER_COLUMNS = ["layer", "type", "pruned", "target_sparsity", "weights", "nonzeros", "sparsity",
                 "units", "units_kept", "units_after_shrink", "flops", "nonzero_flops"]


@dataclasses.dataclass
class PruneConfig:
    dataset: str = "digits"
    model: str = "cnn"
    method: str = "weight"
    schedule: str = "polynomial"
    target_sparsity: float = 0.9
    fine_tune_epochs: int = 20
    learning_rate: float = 3e-3
    batch_size: int = 32
    seed: int = 0
    split_seed: int = 0
    augment: str = "auto"
    data_dir: str = None
    baseline: str = "train"     # "train" or the path of a saved Keras model
    baseline_epochs: int = 60
    begin_step: int = None
    end_step: int = None
    frequency: int = None
    initial_sparsity: float = 0.0
    ramp_fraction: float = 0.6
    sparsity_m_by_n: str = None
    layers: tuple = None
    prune_classifier: bool = False
    prune_first_conv: bool = False
    deterministic: bool = True
    dynamic: dict = None         # DynamicConfig fields for the dynamic / incremental / adaptive methods

    def __post_init__(self):
        DATASETS.validate(self.dataset)
        MODELS.validate(self.model)
        core.METHODS.validate(self.method)
        if self.method not in core.DYNAMIC_METHODS or self.schedule != "-":
            schedules.SCHEDULES.validate(self.schedule)  # "-": no schedule (dynamic methods)
        schedules.check_sparsity("target_sparsity", self.target_sparsity)
        schedules.check_sparsity("initial_sparsity", self.initial_sparsity)
        core.parse_m_by_n(self.sparsity_m_by_n)
        for name in ("fine_tune_epochs", "batch_size", "baseline_epochs"):
            train_lib._check_int(name, getattr(self, name), 1)
        for name in ("seed", "split_seed"):
            train_lib._check_int(name, getattr(self, name), 0)
        if not self.learning_rate > 0:
            raise TfpruneError(f"`learning_rate` must be > 0, got {self.learning_rate}")
        if (self.begin_step is not None and self.end_step is not None and self.end_step != -1
                and self.begin_step >= self.end_step):
            raise TfpruneError(
                f"`begin_step` must be before `end_step`, got begin_step={self.begin_step}, "
                f"end_step={self.end_step}")
        if self.baseline != "train":
            if not os.path.isfile(self.baseline):
                raise TfpruneError(
                    f"`baseline` must be 'train' or the path of a saved Keras model (.keras or "
                    f".h5), got {self.baseline!r}, which is not a file")
        if self.method in core.DYNAMIC_METHODS:
            from tfprune.pruning.dynamic import DynamicConfig

            DynamicConfig(**(self.dynamic or {}))  # validates
            if self.method == "incremental":
                schedules.check_sparsity("target_sparsity", self.target_sparsity, allow_zero=False)
        elif self.dynamic:
            raise TfpruneError(f"`dynamic` options apply to the methods "
                               f"{', '.join(core.DYNAMIC_METHODS)}, not {self.method!r}")
        self.augment = train_lib.resolve_augmentation(self.augment, self.dataset, self.model)
        self.layers = tuple(self.layers) if self.layers else None

    def to_dict(self):
        return dataclasses.asdict(self)

    def baseline_config(self):
        return train_lib.TrainConfig(
            dataset=self.dataset, model=self.model, epochs=self.baseline_epochs,
            batch_size=self.batch_size, seed=self.seed, split_seed=self.split_seed,
            augment=self.augment, data_dir=self.data_dir, deterministic=self.deterministic)


def load_baseline(config, output_dir, data, log=print):
    """The baseline Keras model: trained into output_dir/baseline, or loaded from a path."""
    if config.baseline == "train":
        baseline_dir = os.path.join(output_dir, "baseline")
        metrics = train_lib.train_baseline(config.baseline_config(), baseline_dir, log=log)
        path = metrics["model_path"]
    else:
        path = config.baseline
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError) as err:
        raise TfpruneError(f"cannot load baseline model {path!r}: {err}") from None
    expected = tuple(data.input_shape)
    got = tuple(model.input_shape[1:])
    if got != expected or model.output_shape[-1] != data.num_classes:
        raise TfpruneError(
            f"baseline {path!r} takes {got} and predicts {model.output_shape[-1]} classes; "
            f"dataset {data.name!r} needs {expected} and {data.num_classes} classes")
    return model, path


def _compiled(model, learning_rate=1e-3):
    return train_lib.compile_model(model, keras.optimizers.Adam(learning_rate))


def run_prune(config, output_dir, overwrite=False, log=print, data=None):
    """Run one pruning configuration into ``output_dir``; return its metrics."""
    from tfprune import report

    same_run = io.prepare_run_dir(output_dir, config.to_dict(), overwrite=overwrite,
                                  marker="metrics.json")
    metrics_path = os.path.join(output_dir, "metrics.json")
    if same_run and os.path.exists(metrics_path):
        log(f"{output_dir} already holds this finished run; reusing it")
        return io.read_json(metrics_path)
    train_lib.set_seed(config.seed, config.deterministic)
    data = data or load_data(config.dataset, batch_size=config.batch_size, seed=config.seed,
                             data_dir=config.data_dir, augment=config.augment,
                             split_seed=config.split_seed)
    baseline, baseline_path = load_baseline(config, output_dir, data, log=log)
    baseline_loss, baseline_accuracy = train_lib.evaluate(_compiled(baseline), data.test)
    train_lib.set_seed(config.seed, config.deterministic)

    strategy = train_lib.get_strategy()
    with strategy.scope():
        result = core.prune(
            baseline, config.method, config.schedule, config.target_sparsity,
            steps_per_epoch=data.steps_per_epoch, epochs=config.fine_tune_epochs,
            begin_step=config.begin_step, end_step=config.end_step, frequency=config.frequency,
            initial_sparsity=config.initial_sparsity, layers=config.layers,
            prune_classifier=config.prune_classifier, prune_first_conv=config.prune_first_conv,
            sparsity_m_by_n=config.sparsity_m_by_n, ramp_fraction=config.ramp_fraction,
            dynamic=config.dynamic, decisions_path=os.path.join(output_dir, "decisions.jsonl"),
            train_data=data.split("train"), log=log)
        optimizer = train_lib.make_optimizer(
            "adam", config.learning_rate, lr_schedule="cosine",
            decay_steps=config.fine_tune_epochs * data.steps_per_epoch)
        train_lib.compile_model(result.model, optimizer)
    if result.pruner is None:
        log(f"pruning {config.model} ({config.method}, {config.schedule}, target "
            f"{config.target_sparsity:g}) layers {', '.join(result.pruned_layers)}; schedule "
            f"steps begin {result.steps.begin_step}, end {result.steps.end_step}, every "
            f"{result.steps.frequency}; baseline test accuracy {baseline_accuracy:.4f}")
    else:
        log(f"pruning {config.model} with the {config.method} pruner "
            f"({result.pruner.config.granularity}s) on layers {', '.join(result.pruned_layers)}; "
            f"baseline test accuracy {baseline_accuracy:.4f}")
    start = time.perf_counter()
    history = train_lib.fit(result.model, data, config.fine_tune_epochs,
                            callbacks=result.callbacks, log=log, prefix="[fine-tune] ")
    fine_tune_time = time.perf_counter() - start

    pruned = _compiled(core.strip(result.model))
    loss, accuracy = train_lib.evaluate(pruned, data.test)
    summary = stats.summarize(pruned, result.pruned_layers)
    rows = summary.pop("layers")
    x_check = data.numpy("test", limit=256)[0]
    shrunk = surgery.shrink(pruned, check_inputs=x_check)
    shrunk_summary = stats.summarize(shrunk.model)
    after = {row["layer"]: row["units"] for row in shrunk_summary["layers"]}
    shrunk_loss, shrunk_accuracy = train_lib.evaluate(_compiled(shrunk.model), data.test)
    shrink_metrics = {
        "params_before": shrunk.params_before, "params_after": shrunk.params_after,
        "param_reduction": shrunk.param_reduction, "max_abs_diff": shrunk.max_abs_diff,
        "accuracy": shrunk_accuracy, "loss": shrunk_loss, "removed": shrunk.removed,
        "notes": shrunk.notes, "flops_after": shrunk_summary["flops"],
    }
    for row in rows:
        row["pruned"] = row["layer"] in result.pruned_layers
        row["target_sparsity"] = (result.target_sparsity or 0.0) if row["pruned"] else 0.0
        row["units_after_shrink"] = after.get(row["layer"], row["units"])

    train_lib.save_model(pruned, os.path.join(output_dir, "pruned.keras"))
    if shrunk.removed:
        train_lib.save_model(shrunk.model, os.path.join(output_dir, "shrunk.keras"))
    report.write_csv(os.path.join(output_dir, "layers.csv"), rows, LAYER_COLUMNS)
    report.plot_history(history.history, os.path.join(output_dir, "plots", "fine_tune.png"),
                        title=f"fine-tuning under {config.method} pruning ({config.schedule}, "
                              f"target {config.target_sparsity:g})")
    dynamic_metrics = {}
    if result.pruner is not None:
        pruner = result.pruner
        report.plot_sparsity_history(
            pruner.history, os.path.join(output_dir, "plots", "sparsity_over_training.png"),
            title=f"{config.method} pruner: sparsity per layer ({pruner.config.granularity}s)")
        actions = [d["action"] for d in pruner.decisions]
        dynamic_metrics = {"dynamic_config": dataclasses.asdict(pruner.config),
                           "pruning_events": actions.count("prune"),
                           "rollbacks": actions.count("rollback"),
                           "decisions_path": os.path.join(output_dir, "decisions.jsonl")}
        if getattr(pruner, "pqi", None):
            io.write_json(os.path.join(output_dir, "pq_index.json"), pruner.pqi)
            dynamic_metrics["pq_index_path"] = os.path.join(output_dir, "pq_index.json")
    report.plot_layer_sparsity(rows, os.path.join(output_dir, "plots", "layer_sparsity.png"),
                               target=config.target_sparsity if result.target_sparsity else None,
                               title=f"{config.model}: {config.method} pruning, "
                                     f"{config.schedule} schedule")
    metrics = dict(
        summary,
        baseline_path=baseline_path, baseline_accuracy=baseline_accuracy,
        baseline_loss=baseline_loss, accuracy=accuracy, loss=loss,
        accuracy_drop=baseline_accuracy - accuracy,
        layer_sparsity={r["layer"]: r["sparsity"] for r in rows if r["pruned"]},
        pruned_layers=result.pruned_layers, skipped_layers=result.skipped_layers,
        schedule_steps=dataclasses.asdict(result.steps), fine_tune_time_s=fine_tune_time,
        shrink=shrink_metrics, **dynamic_metrics,
        models={"pruned": os.path.join(output_dir, "pruned.keras"),
                "shrunk": os.path.join(output_dir, "shrunk.keras") if shrunk.removed else None},
    )
    metrics = io.to_jsonable(metrics)  # what a rerun reads back
    io.write_json(metrics_path, metrics)
    log(f"pruned test accuracy {accuracy:.4f} (baseline {baseline_accuracy:.4f}); sparsity of "
        f"pruned layers {summary['pruned_sparsity']:.4f}; params {summary['params']:,} -> "
        f"{shrunk.params_after:,} after shrink")
    return metrics
