"""The pruning job: ``PruneConfig`` and ``run_prune`` (baseline -> prune -> fine-tune -> strip ->
shrink -> evaluate) into a run directory.

Writes config.json, metrics.json (last), layers.csv, pruned.keras (stripped, sparse),
shrunk.keras (units physically removed, when any were), tokenizer.json (text data),
plots/fine_tune.png,
plots/layer_sparsity.png and, for methods that decide for themselves, decisions.jsonl,
plots/sparsity_over_training.png (and pq_index.json for adaptive). A finished run directory is
reused as it is. ``run_prune`` returns the models in memory too, so a sweep variant or a tuning
trial converts them without saving and reloading.

Everything that can be checked without training is checked first (``PruneConfig`` on
construction, ``preflight`` against the data and the model's layers), before a baseline trains.
"""

import dataclasses
import os
import shutil
import time

from tfprune import distribute, io, keras3, precision, quiet, training
from tfprune.jobs.configs.prune import PruneConfig  # noqa: F401  (jobs.prune.PruneConfig)
from tfprune.jobs import runlock
from tfprune.jobs.rundir import inside, prepare_run_dir, read_marker
from tfprune.jobs.train import model_path, train_baseline
from tfprune.keras import keras
from tfprune.models import (CHECK_INPUTS, Imported, build_model, check_fits, import_checked,
                            load_model)
from tfprune.optimizers import make_optimizer
from tfprune.jobs.configs.parts import MeasureFields, field_defaults, stage_options
from tfprune.pipeline import check_stage, compress_model, fine_tune_optimizer
from tfprune.pruning import allocation, core, method_objects, oneshot, sensitivity, stats
from tfprune.results import plots
from tfprune.compression.stages import STAGES
from tfprune.tflite import latency, measure
from tfprune.results.tables import write_csv

LAYER_COLUMNS = ["layer", "type", "pruned", "target_sparsity", "weights", "nonzeros", "sparsity",
                 "units", "units_kept", "units_after_shrink", "flops", "nonzero_flops"]


PRUNED_LAYERS_IN = "layers.csv, metrics.json pruned_layers"  # a long list's whole, in the log


def method(config, layer_sparsity=None):
    """The method object of ``config`` (pruning/method_objects.py), with the per-layer targets
    ``resolve_layer_sparsity`` found."""
    return method_objects.make_method(config.method, config.method_options(layer_sparsity),
                                      cost_builder=latency.cost_model)


def preflight(config, data, model=None):
    """Check what needs the data and the model's layers, before any training: the schedule's
    steps against the fine-tuning steps, and the layers (or channel groups) the method prunes
    against the model (the untrained zoo architecture when the baseline is still to be
    trained)."""
    pruning = method(config)
    pruning.check(steps_per_epoch=data.steps_per_epoch, epochs=config.fine_tune_epochs)
    if model is None:
        model = build_model(config.model, data.input_shape, data.num_classes,
                            dataset=data.name, vocabulary_size=data.vocabulary_size)
    if config.keras3_output:  # the Keras 3 export must not fail after the fine-tuning
        keras3.to_keras3(model, data.numpy("test", limit=8)[0], name=f"model {config.model!r}")
    pruning.check(model)
    if config.stage:  # something to cluster, something tfmot can quantize
        check_stage(model, config.stage, stage_options(config))
    if config.layer_targets:
        allocation.check_layers(config.layer_targets,
                                core.prunable_layers(model, config.granularity()), model.name,
                                f"`layer_sparsity` file {config.layer_sparsity!r}")


def resolve_layer_sparsity(config, model, data, output_dir, log, curves_cache=None):
    """{layer: target} for ``config.layer_sparsity`` (None for uniform), written to
    layer_sparsity.json (and, for auto, the curves to sensitivity.csv). ``curves_cache`` (a dict
    a sweep keeps across its variants) saves measuring one baseline's curves again."""
    if config.layer_sparsity == "uniform":
        return None
    granularity = config.granularity()
    if config.layer_targets:
        targets = dict(config.layer_targets)
    else:
        layers, _ = core.select_layers(model, granularity, config.layers,
                                       config.prune_classifier, config.prune_first_conv)
        weights = oneshot.layer_weights(model, layers)
        if config.layer_sparsity == "global":
            targets = allocation.global_magnitude(oneshot.layer_kernels(model, layers),
                                                  config.target_sparsity, granularity)
        else:
            key = (id(model), granularity, tuple(layers), config.sensitivity_samples)
            curves = (curves_cache or {}).get(key)
            if curves is None:
                x, y = data.numpy("validation", limit=config.sensitivity_samples)
                curves = sensitivity.layer_curves(model, granularity, layers, allocation.GRID,
                                                  x, y, log=log)
                if curves_cache is not None:
                    curves_cache[key] = curves
            write_csv(os.path.join(output_dir, "sensitivity.csv"),
                      [{"layer": name, "sparsity": s, "accuracy": a}
                       for name, values in curves.items()
                       for s, a in zip(allocation.GRID, values)],
                      ["layer", "sparsity", "accuracy"])
            targets = allocation.equalize(curves, allocation.GRID, weights,
                                          config.target_sparsity)
    targets = {name: float(s) for name, s in targets.items()}
    overall = allocation.global_sparsity(targets, oneshot.layer_weights(model, list(targets)))
    log(f"layer sparsity ({config.layer_sparsity}): "
        + quiet.names([f"{name} {s:.3f}" for name, s in targets.items()], "layer_sparsity.json")
        + f"; {overall:.4f} of these layers' weights (target_sparsity {config.target_sparsity:g}"
        + (", not used: the file sets every layer's target)" if config.layer_targets else ")"))
    io.write_json(os.path.join(output_dir, "layer_sparsity.json"),
                  {"layer_sparsity": targets, "source": config.layer_sparsity,
                   "target_sparsity": config.target_sparsity, "global_sparsity": overall})
    return targets


@dataclasses.dataclass
class PruneRun:
    """What run_prune produced: its metrics and its models (in memory; loaded on reuse)."""

    metrics: dict
    output_dir: str
    _models: dict = dataclasses.field(default_factory=dict, repr=False)

    def complete(self):
        """True when the metrics know their deployed model and its file is there."""
        kind = self.metrics.get("deployed", {}).get("kind")
        return kind is not None and os.path.isfile(os.path.join(self.output_dir, f"{kind}.keras"))

    @property
    def deployed_kind(self):
        """'shrunk' when units were removed, else 'pruned': the model to deploy."""
        return self.metrics["deployed"]["kind"]

    def model(self, kind=None):
        kind = kind or self.deployed_kind
        if kind not in self._models:
            self._models[kind] = load_model(os.path.join(self.output_dir, f"{kind}.keras"),
                                            f"{kind} model of {self.output_dir}")
        return self._models[kind]


def load_baseline(config, output_dir, data, log=print):
    """The baseline as an ``Imported``: trained into output_dir/baseline, or loaded from a path
    (a Keras 3 file translated to tf_keras, its outputs checked on 256 test images)."""
    if config.baseline == "train":
        metrics = train_baseline(config.baseline_config(), os.path.join(output_dir, "baseline"),
                                 log=log)
        path = model_path(os.path.join(output_dir, "baseline"), metrics)
        baseline = Imported(load_model(path, "baseline"), path)
        check_fits(baseline.model, data.input_shape, data.num_classes,
                   f"baseline {path!r}", data.name)
        return baseline
    return import_checked(config.baseline, "baseline", data, log)


def _keras3_exports(models, output_dir, data, check_inputs, log):
    """Each model saved as a Keras 3 .keras file in output_dir/keras3/, its outputs checked
    against the tf_keras model and its test accuracy measured with Keras 3."""
    x_test, y_test = data.numpy("test")
    exports = {}
    for kind, model in models.items():
        path = os.path.join(output_dir, "keras3", f"{kind}.keras")
        translation = keras3.save_as_keras3(model, path, inputs=check_inputs,
                                            name=f"the {kind} model")
        accuracy = keras3.accuracy(translation.model, x_test, y_test)
        # Keras 3's own weight quantization of the same model, beside tfprune's int8 .tflite.
        own = {mode: keras3.quantized(path, mode, x_test, y_test)
               for mode in keras3.KERAS_QUANTIZE_MODES}
        exports[kind] = dict(translation.summary(), path=inside(output_dir, path),
                             accuracy=accuracy, keras_quantize=own)
        log("Keras 3 Model.quantize of the " + kind + " model: " + "; ".join(
            f"{m} accuracy {q['accuracy']:.4f}, {q['weight_bytes'] / 1024:.1f} KB of weights "
            f"({len(q['quantized_layers'])} layers quantized, {q['float_layers']} float)"
            for m, q in own.items()))
        log(f"{kind} model saved for Keras 3: {path} (outputs differ from tf_keras's by at most "
            f"{translation.max_abs_diff:.2g}; Keras 3 test accuracy {accuracy:.4f})")
    return exports


# Training examples a quantization-aware stage's int8 conversion is calibrated on: the
# sweep's default (MeasureFields.representative_count).
STAGE_REPRESENTATIVE = dict(field_defaults(MeasureFields))["representative_count"]


def _stage(config, model, data, output_dir, log):
    """The compression stage ``config.stage`` on the deployed ``model`` (sparsity-preserving
    where it keeps pruned zeros: weight granularity, as in the sweep): trained, then a
    quantization-aware model converted to stage_int8.tflite and measured on the interpreter (it
    is not saved as .keras: tfmot cannot load it back), a clustered one saved as stage.keras.
    What it did, for metrics.json."""
    spec = STAGES.get(config.stage)
    training.set_seed(config.seed, config.deterministic)
    start = time.perf_counter()
    result = compress_model(model, data, config.stage, stage_options(config),
                            preserve_sparsity=not config.structured(), log=log)
    seconds = time.perf_counter() - start
    loss, accuracy = training.evaluate(result.model, data.test)
    info = dict(result.record(), time_s=seconds, keras_accuracy=accuracy, keras_loss=loss)
    if spec.quantize:
        x_test, y_test = data.numpy("test")
        row, = measure.convert_and_measure(
            result.model, x_test, y_test, data.representative_sample(STAGE_REPRESENTATIVE),
            ["int8"], [False], output_dir, stem="stage", latency_runs=50, keras_accuracy=accuracy,
            log=log)
        info.update(tflite_file=inside(output_dir, row["file"]), tflite=dict(
            row, file=inside(output_dir, row["file"])))
        log(f"{result.stage}: int8 .tflite {row['file']}: TFLite test accuracy "
            f"{row['tflite_accuracy']:.4f}, {row['gzip_bytes'] / 1024:.1f} KB gzip")
    else:
        path = os.path.join(output_dir, "stage.keras")
        training.save_model(result.model, path)
        info["model"] = inside(output_dir, path)
        log(f"{result.stage}: {path}: Keras test accuracy {accuracy:.4f}, at most "
            f"{result.max_unique()} values per clustered kernel")
    return info


def _from_scratch(config, architecture, output_dir, log):
    """The pruned architecture trained from scratch for the baseline's and the fine-tuning's
    epochs together (Liu et al., "Rethinking the value of network pruning"), its optimizer the
    baseline's: the honest comparison for a structured result. Fresh pipelines, checkpointed
    every epoch (an interrupted run resumes exactly)."""
    training.set_seed(config.seed, config.deterministic)
    data = config.load_data(log)
    epochs = config.baseline_epochs + config.fine_tune_epochs
    baseline = config.baseline_config()
    with distribute.current().scope():  # as the baseline was trained
        model = keras.models.clone_model(architecture)  # fresh initial weights
        if config.mixed_precision:
            precision.set_mixed_precision(True)
            model = precision.mixed_copy(model)
        training.compile_model(model, make_optimizer(
            baseline.optimizer, baseline.learning_rate, baseline.momentum,
            baseline.weight_decay, baseline.lr_schedule,
            decay_steps=epochs * data.steps_per_epoch))
    start = time.perf_counter()
    backup_dir = os.path.join(output_dir, "scratch_backup")
    training.fit(model, data, epochs, log=log, prefix="[from scratch] ", backup_dir=backup_dir,
                 tensorboard_dir=os.path.join(output_dir, "tensorboard", "from_scratch"))
    precision.set_mixed_precision(False)
    loss, accuracy = training.evaluate(model, data.test)
    shutil.rmtree(backup_dir, ignore_errors=True)
    return {"accuracy": accuracy, "loss": loss, "epochs": epochs,
            "params": int(model.count_params()), "train_time_s": time.perf_counter() - start}


@precision.restores_policy
def run_prune(config, output_dir, overwrite=False, log=print, data=None, baseline=None,
              curves_cache=None, draw=None, wait=False):
    """Run one pruning configuration into ``output_dir``; return a PruneRun.

    ``data`` and ``baseline`` (a (model, path) pair) may be passed in by a caller that already
    holds them (a sweep); otherwise the data is loaded and the baseline trained or loaded.
    ``draw(plot, *args, **kwargs)`` draws the run's plots (results/plots.py functions with
    picklable arguments); by default now, a sweep hands them to its deploying process.
    Under ``config.strategy`` the baseline trains, and the pruned model fine-tunes, on every
    replica; under multi_worker only the chief writes ``output_dir`` (distribute.py; the
    returned run of another worker points at its twin, removed on return). The job holds
    ``output_dir``'s lock (runlock.py; ``wait``: wait for another job holding it).
    """
    with runlock.job(config.strategy, output_dir, "prune", wait, log) as (strategy, own_dir):
        return _run_prune(config, own_dir, strategy, overwrite, log, data, baseline,
                          curves_cache, draw or _draw_now)


def _draw_now(plot, *args, **kwargs):
    return plot(*args, **kwargs)


def _run_prune(config, output_dir, strategy, overwrite, log, data, baseline, curves_cache,
               draw):
    if data is None:
        training.set_seed(config.seed, config.deterministic)  # the pipelines' seeds depend on it
        data = config.load_data(log)
    if baseline is not None and not isinstance(baseline, Imported):
        baseline = Imported(*baseline)
    if baseline is None and config.baseline != "train":
        baseline = load_baseline(config, output_dir, data, log=log)
    preflight(config, data, baseline.model if baseline else None)
    same_run = prepare_run_dir(output_dir, config.record(), overwrite=overwrite,
                               marker="metrics.json")
    metrics_path = os.path.join(output_dir, "metrics.json")
    metrics = read_marker(metrics_path, log) if same_run else None
    if metrics is not None:
        finished = PruneRun(metrics, output_dir)
        if finished.complete():
            log(f"{output_dir} already holds this finished run; reusing it")
            return finished
        log(f"{output_dir}: metrics.json without its models (or of an older version); "
            "running again")
    training.set_seed(config.seed, config.deterministic)
    if baseline is None:
        baseline = load_baseline(config, output_dir, data, log=log)
    baseline_model, baseline_path = baseline.model, baseline.path
    baseline_loss, baseline_accuracy = training.evaluate(baseline_model, data.test)
    training.set_seed(config.seed, config.deterministic)

    layer_targets = resolve_layer_sparsity(config, baseline_model, data, output_dir, log,
                                           curves_cache)
    mixed = config.mixed_precision and not config.one_shot  # one-shot trains nothing
    precision.set_mixed_precision(mixed)  # the wrapped model's own policy: loss scaling
    tuned = precision.mixed_copy(baseline_model) if mixed else baseline_model
    with strategy.scope():
        attached = method(config, layer_targets).attach(
            tuned, steps_per_epoch=data.steps_per_epoch, epochs=config.fine_tune_epochs,
            train_data=data.split("train"), log=log,
            decisions_path=os.path.join(output_dir, "decisions.jsonl"))
        if not config.one_shot:
            training.compile_model(attached.model, fine_tune_optimizer(
                config.learning_rate, config.fine_tune_epochs, data.steps_per_epoch))
    subject = config.model if config.baseline == "train" else os.path.basename(baseline_path)
    log(f"pruning {subject} {attached.describe(PRUNED_LAYERS_IN)}; baseline test accuracy "
        f"{baseline_accuracy:.4f}")
    # Checkpointed every epoch: the model's variables (with tfmot's masks, thresholds and
    # pruning step), the optimizer, and the state of the channel and deciding pruners'
    # callbacks (kept channels, decisions, norm histories); a killed run resumes exactly.
    backup_dir = os.path.join(output_dir, "backup")
    tensorboard_dir = os.path.join(output_dir, "tensorboard")
    start = time.perf_counter()
    history = None if config.one_shot else training.fit(
        attached.model, data, config.fine_tune_epochs, callbacks=attached.callbacks, log=log,
        prefix="[fine-tune] ", backup_dir=backup_dir, tensorboard_dir=tensorboard_dir,
        sparsity_summaries=True)
    fine_tune_time = time.perf_counter() - start
    shutil.rmtree(backup_dir, ignore_errors=True)
    precision.set_mixed_precision(False)

    # Everything from here on (evaluation, shrink, the saved files) is float32.
    check_inputs = data.numpy("test", limit=CHECK_INPUTS)[0]
    finished = attached.finish(check_inputs)
    latency.add_measured(finished, baseline_model, log)  # the latency selection's, measured
    pruned, shrunk, summary = finished.pruned, finished.shrink, finished.summary
    loss, accuracy = training.evaluate(pruned, data.test)
    rows = summary.pop("layers")
    shrunk_summary = stats.summarize(shrunk.model)
    after = {row["layer"]: row["units"] for row in shrunk_summary.pop("layers")}
    shrunk_loss, shrunk_accuracy = training.evaluate(shrunk.model, data.test)
    shrink_metrics = {
        "params_before": shrunk.params_before, "params_after": shrunk.params_after,
        "param_reduction": shrunk.param_reduction, "max_abs_diff": shrunk.max_abs_diff,
        "accuracy": shrunk_accuracy, "loss": shrunk_loss, "removed": shrunk.removed,
        "heads": shrunk.heads,
        "notes": shrunk.notes, "flops_after": shrunk_summary["flops"],
        "renormalized": shrunk.renormalized,
    }
    targets = attached.targets
    for row in rows:
        row["pruned"] = row["layer"] in targets
        # Empty for a method that chooses its sparsity: it had no target.
        row["target_sparsity"] = targets[row["layer"]] if row["pruned"] else 0.0
        row["units_after_shrink"] = after.get(row["layer"], row["units"])

    models = {"pruned": pruned}
    training.save_model(pruned, os.path.join(output_dir, "pruned.keras"))
    if shrunk.changed:
        models["shrunk"] = shrunk.model
        training.save_model(shrunk.model, os.path.join(output_dir, "shrunk.keras"))
    kind = "shrunk" if shrunk.changed else "pruned"
    deployed = shrunk_summary if shrunk.changed else summary
    write_csv(os.path.join(output_dir, "layers.csv"), rows, LAYER_COLUMNS)
    tokenizer_file = data.save_tokenizer(output_dir)
    target_text = "chosen by the method" if attached.target_sparsity is None else \
        f"target {attached.target_sparsity:g}"
    if history is not None:
        draw(plots.plot_history, history.history,
             os.path.join(output_dir, "plots", "fine_tune.png"),
             title=f"fine-tuning under {config.method} pruning "
                   f"({config.schedule or 'no schedule'}, {target_text})")
    for figure in finished.figures:
        draw(getattr(plots, figure.plot), figure.data,
             os.path.join(output_dir, "plots", figure.file), title=figure.title)
    finished.write_events(tensorboard_dir)
    for name, content in finished.files.items():
        io.write_json(os.path.join(output_dir, name), content)
    draw(plots.plot_layer_sparsity, rows, os.path.join(output_dir, "plots", "layer_sparsity.png"),
         target=attached.target_sparsity,
         title=f"{subject}: {config.method} pruning, {config.schedule or 'no'} schedule",
         structured=config.structured())
    extra_metrics = {}
    if config.keras3_output or baseline.keras3:
        extra_metrics["keras3"] = dict(
            _keras3_exports(models, output_dir, data, check_inputs, log),
            baseline=baseline.translation.summary() if baseline.keras3 else None)
    if config.from_scratch:
        extra_metrics["from_scratch"] = _from_scratch(config, shrunk.model, output_dir, log)
    if config.stage:
        extra_metrics["stage"] = _stage(config, models[kind], data, output_dir, log)
    metrics = dict(
        summary, **finished.statistics, **extra_metrics,
        baseline_path=inside(output_dir, baseline_path), baseline_accuracy=baseline_accuracy,
        baseline_loss=baseline_loss, accuracy=accuracy, loss=loss,
        accuracy_drop=baseline_accuracy - accuracy,
        layer_sparsity={r["layer"]: r["sparsity"] for r in rows if r["pruned"]},
        pruned_layers=attached.pruned_layers, skipped_layers=attached.skipped_layers,
        fine_tune_time_s=fine_tune_time, shrink=shrink_metrics,
        precision=None if config.one_shot else precision.trained_under(attached.model),
        replicas=strategy.num_replicas_in_sync, global_batch_size=data.batch_size,
        one_shot=config.one_shot, layer_targets=layer_targets,
        deployed={"kind": kind, **deployed},  # the deployed model's own statistics
        # Paths relative to the run directory, so it can be copied or moved.
        models={"pruned": "pruned.keras", "shrunk": "shrunk.keras" if shrunk.changed else None},
        tokenizer=tokenizer_file,  # text data: the vocabulary and sequence length fed
    )
    metrics = io.to_jsonable(metrics)  # what a rerun reads back
    io.write_json(metrics_path, metrics)
    log(f"pruned test accuracy {accuracy:.4f} (baseline {baseline_accuracy:.4f}); sparsity of "
        f"pruned layers {summary['pruned_sparsity']:.4f}; params {summary['params']:,} -> "
        f"{shrunk.params_after:,} after shrink")
    return PruneRun(metrics, output_dir, models)
