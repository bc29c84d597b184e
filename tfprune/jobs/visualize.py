"""The visualize job: what a dense model and its pruned variants look at, side by side.

The models come from a list (``models``: "name=path", the first the reference, normally the
dense baseline) or from a sweep's output (``run_dir``: every seed's baseline is the reference of
that seed's finished variants, deployed models as the sweep deployed them: shrunk where units or
channels were removed). ``run_visualize`` picks test images (the first ``per_class`` of every
class, plus up to ``misclassified`` that some model gets wrong) and writes plots/saliency.png
(SmoothGrad), plots/grad_cam.png (when the models have convolutions), plots/class_models.png
(the first seed's models), plots/drift_vs_sparsity.png, and the drift of every model's maps from
its reference's over ``drift_sample`` test images: drift.csv and drift.json (last: the finished
marker). The grids and the drift plot also go to TensorBoard (tensorboard/ under the output).
"""

import os
import time

import numpy as np

from tfprune import io, summaries
from tfprune.jobs.configs.visualize import (  # noqa: F401  (jobs.visualize.VisualizeConfig, ...)
    SWEEP_SUBDIR, VisualizeConfig, sweep_entries)
from tfprune.jobs import runlock
from tfprune.jobs.rundir import prepare_run_dir
from tfprune.models import import_checked
from tfprune.pruning import stats
from tfprune.results import attribution, plots
from tfprune.results.tables import write_csv

DRIFT_COLUMNS = ["model", "seed", "method", "schedule", "target_sparsity", "layer_sparsity",
                 "params_removed", "accuracy", "prediction_change", "saliency_spearman", "saliency_top_k_overlap",
                 "grad_cam_spearman", "grad_cam_top_k_overlap", "target_latency"]


def pick_images(labels, predictions, per_class, misclassified):
    """Indices: the first ``per_class`` test images of every class, then up to
    ``misclassified`` that some model predicts wrongly."""
    labels = np.asarray(labels)
    chosen = [int(i) for c in np.unique(labels) for i in np.flatnonzero(labels == c)[:per_class]]
    wrong = np.flatnonzero(np.any(np.asarray(predictions) != labels[None, :], axis=0))
    chosen += [int(i) for i in wrong if i not in chosen][:misclassified]
    return chosen


def _maps(kind, model, x, classes, layer, config):
    """Grad-CAM, or saliency: SmoothGrad for the grids (``config`` given), vanilla gradients for
    the drift over many images."""
    if kind == "grad_cam":
        return attribution.grad_cam(model, x, classes, layer=layer)
    if config is not None:
        return attribution.smoothgrad(model, x, classes, samples=config.smoothgrad_samples,
                                      seed=config.seed)
    return attribution.saliency(model, x, classes)


def _predict(model, x, batch_size=1024):
    """Class probabilities, eagerly in batches: no new tf.function (and retracing warnings) for
    every model of a long list."""
    return np.concatenate([np.asarray(model(x[i:i + batch_size], training=False))
                           for i in range(0, len(x), batch_size)])


def _params_removed(model, reference):
    """The fraction of the reference's parameters a model no longer has: zeroed or, in a shrunk
    model, removed (one measure for both)."""
    return 1.0 - stats.summarize(model)["nonzero_params"] / max(stats.summarize(
        reference)["params"], 1)


def run_visualize(config, output_dir, overwrite=False, log=print, wait=False):
    """Grids, class models and the drift table for ``config``'s models into ``output_dir``,
    holding its lock (runlock.py; ``wait``: wait for another job holding it)."""
    with runlock.hold(output_dir, "visualize", wait=wait, log=log):
        return _run_visualize(config, output_dir, overwrite, log)


def _run_visualize(config, output_dir, overwrite, log):
    start = time.perf_counter()
    entries = config.entries()
    data = config.data()
    models = {e.name: import_checked(e.path, "models", data, log).model for e in entries}
    cam_layers = {}
    for name, model in models.items():  # cheap checks before any maps are computed
        if attribution.conv_layers(model) or config.layer:
            cam_layers[name] = attribution.check_cam_layer(model, config.layer)
    prepare_run_dir(output_dir, config.record(), overwrite=overwrite, marker="drift.json")
    x, y = data.numpy("test")
    probabilities = {n: _predict(m, x) for n, m in models.items()}
    predictions = {n: p.argmax(-1) for n, p in probabilities.items()}
    kinds = ["saliency"] + (["grad_cam"] if len(cam_layers) == len(models) else [])
    first_seed = [e.name for e in entries if e.seed == entries[0].seed]
    made = _grids(config, data, x, y, models, first_seed, probabilities, cam_layers, kinds,
                  output_dir, log)

    sample = len(x) if config.drift_sample == 0 else min(config.drift_sample, len(x))
    drift_rows = []
    for seed in dict.fromkeys(e.seed for e in entries):
        group = [e for e in entries if e.seed == seed]
        reference = models[group[0].name]
        classes = predictions[group[0].name][:sample]  # every model asked about the same class
        base = {kind: _maps(kind, reference, x[:sample], classes, cam_layers.get(group[0].name),
                            None) for kind in kinds}
        for entry in group:
            model = models[entry.name]
            row = {"model": entry.name, "seed": entry.seed, "method": entry.method,
                   "schedule": entry.schedule, "target_sparsity": entry.target_sparsity,
                   "layer_sparsity": entry.layer_sparsity,
                   "target_latency": entry.target_latency,
                   "params_removed": _params_removed(model, reference),
                   "accuracy": float(np.mean(predictions[entry.name] == y))}
            for kind in kinds:
                maps = _maps(kind, model, x[:sample], classes, cam_layers.get(entry.name), None)
                d = attribution.drift(base[kind], maps, classes,
                                      predictions[entry.name][:sample], config.top_k)
                row["prediction_change"] = d["prediction_change"]
                row[f"{kind}_spearman"] = d["spearman"]
                row[f"{kind}_top_k_overlap"] = d["top_k_overlap"]
            drift_rows.append(row)
            log(f"{entry.name}: accuracy {row['accuracy']:.4f}, prediction change "
                f"{row['prediction_change']:.4f}, saliency Spearman "
                f"{row['saliency_spearman']:.3f}" + (
                    f", Grad-CAM Spearman {row['grad_cam_spearman']:.3f}"
                    if "grad_cam" in kinds else ""))
    made.append(plots.plot_drift_vs_sparsity(
        drift_rows, os.path.join(output_dir, "plots", "drift_vs_sparsity.png"),
        f"Drift of the maps from the dense model's ({sample} {config.dataset} test images, "
        f"top {config.top_k:.0%} pixels)"))
    summaries.write_images(os.path.join(output_dir, "tensorboard"), made)
    write_csv(os.path.join(output_dir, "drift.csv"), drift_rows, DRIFT_COLUMNS)
    result = {"reference": entries[0].name, "drift_sample": sample, "top_k": config.top_k,
              "kinds": kinds, "rows": drift_rows,
              "images": [os.path.relpath(p, output_dir) for p in made],
              "time_s": time.perf_counter() - start}
    io.write_json(os.path.join(output_dir, "drift.json"), io.to_jsonable(result))
    return result


def _grids(config, data, x, y, models, names, probabilities, cam_layers, kinds, output_dir,
           log):
    """The saliency and Grad-CAM grids and the class-model images of the models ``names``;
    returns the PNG paths."""
    rows_index = pick_images(y, [probabilities[n].argmax(-1) for n in names], config.per_class,
                             config.misclassified)
    images, labels = x[rows_index], y[rows_index]
    made = []
    for kind in kinds:
        columns = {}
        for name in names:
            maps = _maps(kind, models[name], images, None, cam_layers.get(name), config)
            p = probabilities[name][rows_index]
            columns[name] = (maps, p.argmax(-1), p.max(-1))
        what = "SmoothGrad saliency" if kind == "saliency" else "Grad-CAM"
        made.append(plots.plot_attribution_grid(
            images, labels, columns, os.path.join(output_dir, "plots", f"{kind}.png"),
            title=f"{what} on {config.dataset} test images (predicted class and confidence "
                  "under each map; red: wrong)", class_names=data.class_names))
        log(f"{what} grid: {made[-1]}")
    classes = list(range(data.num_classes))
    class_images = {name: attribution.class_model(models[name], classes,
                                                  steps=config.class_model_steps,
                                                  seed=config.seed) for name in names}
    made.append(plots.plot_class_models(
        class_images, os.path.join(output_dir, "plots", "class_models.png"),
        title=f"class-model images ({config.class_model_steps} steps, seed {config.seed})",
        class_names=data.class_names))
    return made

