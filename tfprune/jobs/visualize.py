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

import dataclasses
import glob
import os
import time

import numpy as np

from tfprune import checks, io, summaries
from tfprune.data import check_dataset, load_data
from tfprune.errors import TfpruneError
from tfprune.jobs.rundir import prepare_run_dir, read_marker
from tfprune.jobs.train import model_path
from tfprune.models import import_checked
from tfprune.pruning import stats
from tfprune.results import attribution, plots
from tfprune.results import rows as rows_lib
from tfprune.results.tables import write_csv

DRIFT_COLUMNS = ["model", "seed", "method", "schedule", "target_sparsity", "layer_sparsity",
                 "params_removed", "accuracy", "prediction_change", "saliency_spearman", "saliency_top_k_overlap",
                 "grad_cam_spearman", "grad_cam_top_k_overlap"]
SWEEP_LAYOUT = ("a sweep's output directory (config.json, baselines/seed<k>/metrics.json and "
                "model.keras, variants/seed<k>/<variant>/variant.json beside its pruned.keras "
                "or shrunk.keras)")
SWEEP_DATA_FIELDS = ("dataset", "data_dir", "split_seed", "image_size")
SWEEP_SUBDIR = "visualize"  # the output's place in a sweep's directory (report.md links it)


@dataclasses.dataclass(frozen=True)
class Entry:
    """One model to look at; ``seed`` groups a reference (the first of its seed) with the
    models compared to it."""

    name: str
    path: str
    seed: int = None
    method: str = None
    schedule: str = None
    target_sparsity: float = None
    layer_sparsity: str = None  # a sweep's variants: uniform, auto, global


@dataclasses.dataclass
class VisualizeConfig:
    models: tuple = ()            # "name=path" or paths; the first is the reference
    run_dir: str = None           # or a sweep's output: its baselines and finished variants
    dataset: str = "digits"       # with run_dir: the sweep's data set, whatever is given here
    data_dir: str = None
    split_seed: int = 0
    image_size: tuple = None      # folder: data sets only
    per_class: int = 1            # test images per class in the grids
    misclassified: int = 2        # extra images some model gets wrong
    drift_sample: int = 500       # test images the drift is measured on (0: all)
    top_k: float = 0.1            # fraction of pixels compared by the top-k overlap
    layer: str = None             # Grad-CAM layer (default: each model's last convolution)
    smoothgrad_samples: int = 16
    class_model_steps: int = 100
    seed: int = 0

    def __post_init__(self):
        self.models = tuple(self.models or ())
        if bool(self.models) == bool(self.run_dir):
            raise TfpruneError("give either `models` (saved models, the reference first, e.g. "
                               "dense=baseline.keras,w90=pruned.keras) or `run_dir` (" +
                               SWEEP_LAYOUT + "), not " + ("both" if self.models else "neither"))
        if self.run_dir:
            sweep = _sweep_config(self.run_dir)
            for name in SWEEP_DATA_FIELDS:
                setattr(self, name, sweep.get(name, getattr(self, name)))
            if isinstance(self.image_size, list):
                self.image_size = tuple(self.image_size)
        self.image_size = check_dataset(self.dataset, self.image_size)
        names = [self.parse(m)[0] for m in self.models]
        if len(set(names)) != len(names):
            raise TfpruneError(f"`models` names must differ, got {', '.join(names)}")
        for name in ("per_class", "smoothgrad_samples", "class_model_steps"):
            checks.check_int(name, getattr(self, name), 1)
        for name in ("misclassified", "drift_sample", "seed", "split_seed"):
            checks.check_int(name, getattr(self, name), 0)
        checks.check_fraction("top_k", self.top_k)
        for _, path in map(self.parse, self.models):
            checks.check_file("models", path, "a saved Keras model file")
        self.entries()  # a sweep without finished models fails here, before any work

    @staticmethod
    def parse(entry):
        """(name, path) of a "name=path" entry; a bare path is named by its file stem."""
        if "=" in entry:
            name, path = entry.split("=", 1)
            return name, path
        return os.path.splitext(os.path.basename(entry))[0], entry

    def entries(self):
        """The models to look at, each seed's reference first."""
        if self.models:
            return [Entry(name, path, method=name)
                    for name, path in map(self.parse, self.models)]
        return sweep_entries(self.run_dir)

    def to_dict(self):
        return dataclasses.asdict(self)


def _sweep_config(run_dir):
    path = os.path.join(run_dir, "config.json")
    if not os.path.isdir(run_dir) or read_marker(path) is None:
        raise TfpruneError(f"`run_dir` {run_dir!r} is not {SWEEP_LAYOUT}: "
                           f"{'no config.json in it' if os.path.isdir(run_dir) else 'no such directory'}")
    return read_marker(path)


def sweep_entries(run_dir):
    """Every seed's baseline, then its finished variants' deployed models, from a sweep's
    output; a TfpruneError saying what was expected when there is no baseline or no variant."""
    entries = []
    for base_dir in sorted(glob.glob(os.path.join(run_dir, "baselines", "seed*"))):
        metrics = read_marker(os.path.join(base_dir, "metrics.json"))
        seed = os.path.basename(base_dir)[len("seed"):]
        if metrics is None or not seed.isdigit() or not os.path.isfile(
                model_path(base_dir, metrics)):
            continue
        seed = int(seed)
        entries.append(Entry(f"seed{seed}/dense" if entries else "dense",
                             model_path(base_dir, metrics), seed, rows_lib.DENSE))
        found = []
        for marker in glob.glob(os.path.join(run_dir, "variants", f"seed{seed}", "*",
                                             "variant.json")):
            variant = read_marker(marker) or {}
            rows = variant.get("rows") or [{}]
            path = os.path.join(os.path.dirname(marker), f"{rows[0].get('deployed')}.keras")
            if variant.get("method") in (None, rows_lib.DENSE) or not os.path.isfile(path):
                continue
            key = rows_lib.VariantKey.of(seed, variant["method"], variant.get("schedule"),
                                         variant.get("target_sparsity"),
                                         variant.get("layer_sparsity", rows_lib.UNIFORM))
            found.append(Entry(key.slug() if len(entries) == 1 else f"seed{seed}/{key.slug()}",
                               path, seed, key.method, key.schedule, key.target_sparsity,
                               key.layer_sparsity))
        entries.extend(sorted(found, key=lambda e: (e.method, e.schedule or "",
                                                    e.target_sparsity or 0.0,
                                                    e.layer_sparsity != rows_lib.UNIFORM,
                                                    e.layer_sparsity or "")))
    if not any(e.method != rows_lib.DENSE for e in entries):
        found = ("a baseline but no finished variant" if entries else "no trained baseline")
        raise TfpruneError(f"`run_dir` {run_dir!r} has no models to compare: expected "
                           f"{SWEEP_LAYOUT}; found {found}")
    return entries


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


def run_visualize(config, output_dir, overwrite=False, log=print):
    """Grids, class models and the drift table for ``config``'s models into ``output_dir``."""
    start = time.perf_counter()
    entries = config.entries()
    data = load_data(config.dataset, data_dir=config.data_dir, split_seed=config.split_seed,
                     image_size=config.image_size)
    models = {e.name: import_checked(e.path, "models", data, log).model for e in entries}
    cam_layers = {}
    for name, model in models.items():  # cheap checks before any maps are computed
        if attribution.conv_layers(model) or config.layer:
            cam_layers[name] = attribution.check_cam_layer(model, config.layer)
    prepare_run_dir(output_dir, config.to_dict(), overwrite=overwrite, marker="drift.json")
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

