"""The visualize job: what a dense model and its pruned variants look at, side by side.

``run_visualize`` loads the models (the first is the reference, normally the dense baseline),
picks test images (the first ``per_class`` of every class, plus up to ``misclassified`` that
some model gets wrong), and writes plots/saliency.png (SmoothGrad), plots/grad_cam.png (when the
models have convolutions), plots/class_models.png, and the drift of every model's maps from the
reference's over ``drift_sample`` test images: drift.csv and drift.json (last: the finished
marker).
"""

import dataclasses
import os
import time

import numpy as np

from tfprune import checks, io
from tfprune.data import check_dataset, load_data
from tfprune.errors import TfpruneError
from tfprune.jobs.rundir import prepare_run_dir
from tfprune.models import import_checked
from tfprune.results import attribution, plots
from tfprune.results.tables import write_csv

DRIFT_COLUMNS = ["model", "accuracy", "prediction_change", "saliency_spearman",
                 "saliency_top_k_overlap", "grad_cam_spearman", "grad_cam_top_k_overlap"]


@dataclasses.dataclass
class VisualizeConfig:
    models: tuple = ()            # "name=path" or paths; the first is the reference
    dataset: str = "digits"
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
        self.image_size = check_dataset(self.dataset, self.image_size)
        self.models = tuple(self.models or ())
        if not self.models:
            raise TfpruneError("`models` must name at least one saved model (the reference "
                               "first, e.g. dense=baseline.keras,w90=pruned.keras)")
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

    @staticmethod
    def parse(entry):
        """(name, path) of a "name=path" entry; a bare path is named by its file stem."""
        if "=" in entry:
            name, path = entry.split("=", 1)
            return name, path
        return os.path.splitext(os.path.basename(entry))[0], entry

    def to_dict(self):
        return dataclasses.asdict(self)


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


def run_visualize(config, output_dir, overwrite=False, log=print):
    """Grids, class models and the drift table for ``config.models`` into ``output_dir``."""
    start = time.perf_counter()
    data = load_data(config.dataset, data_dir=config.data_dir, split_seed=config.split_seed,
                     image_size=config.image_size)
    models = {}
    for entry in config.models:
        name, path = config.parse(entry)
        models[name] = import_checked(path, "models", data, log).model
    cam_layers = {}
    for name, model in models.items():  # cheap checks before any maps are computed
        if attribution.conv_layers(model) or config.layer:
            cam_layers[name] = attribution.check_cam_layer(model, config.layer)
    prepare_run_dir(output_dir, config.to_dict(), overwrite=overwrite, marker="drift.json")
    x, y = data.numpy("test")
    probabilities = {n: np.asarray(m.predict(x, batch_size=256, verbose=0))
                     for n, m in models.items()}
    predictions = {n: p.argmax(-1) for n, p in probabilities.items()}
    names = list(models)
    reference = names[0]

    rows_index = pick_images(y, [predictions[n] for n in names], config.per_class,
                             config.misclassified)
    images, labels = x[rows_index], y[rows_index]
    kinds = ["saliency"] + (["grad_cam"] if len(cam_layers) == len(models) else [])
    for kind in kinds:
        columns = {}
        for name, model in models.items():
            maps = _maps(kind, model, images, None, cam_layers.get(name), config)
            p = probabilities[name][rows_index]
            columns[name] = (maps, p.argmax(-1), p.max(-1))
        what = "SmoothGrad saliency" if kind == "saliency" else "Grad-CAM"
        plots.plot_attribution_grid(
            images, labels, columns, os.path.join(output_dir, "plots", f"{kind}.png"),
            title=f"{what} on {config.dataset} test images (predicted class and confidence "
                  "under each map; red: wrong)")
        log(f"{what} grid: {os.path.join(output_dir, 'plots', kind + '.png')}")

    sample = len(x) if config.drift_sample == 0 else min(config.drift_sample, len(x))
    xs = x[:sample]
    classes = predictions[reference][:sample]  # every model asked about the same class
    base = {kind: _maps(kind, models[reference], xs, classes, cam_layers.get(reference), None)
            for kind in kinds}
    drift_rows = []
    for name, model in models.items():
        row = {"model": name, "accuracy": float(np.mean(predictions[name] == y))}
        for kind in kinds:
            maps = _maps(kind, model, xs, classes, cam_layers.get(name), None)
            d = attribution.drift(base[kind], maps, classes, predictions[name][:sample],
                                  config.top_k)
            row["prediction_change"] = d["prediction_change"]
            row[f"{kind}_spearman"] = d["spearman"]
            row[f"{kind}_top_k_overlap"] = d["top_k_overlap"]
        drift_rows.append(row)
        log(f"{name}: accuracy {row['accuracy']:.4f}, prediction change "
            f"{row['prediction_change']:.4f}, saliency Spearman {row['saliency_spearman']:.3f}")

    class_images = {name: [attribution.class_model(model, c, steps=config.class_model_steps,
                                                   seed=config.seed)
                           for c in range(data.num_classes)] for name, model in models.items()}
    plots.plot_class_models(class_images, os.path.join(output_dir, "plots", "class_models.png"),
                            title=f"class-model images ({config.class_model_steps} steps, seed "
                                  f"{config.seed})")
    write_csv(os.path.join(output_dir, "drift.csv"), drift_rows, DRIFT_COLUMNS)
    result = {"reference": reference, "drift_sample": sample, "top_k": config.top_k,
              "rows": drift_rows, "images": [int(i) for i in rows_index],
              "time_s": time.perf_counter() - start}
    io.write_json(os.path.join(output_dir, "drift.json"), io.to_jsonable(result))
    return result
