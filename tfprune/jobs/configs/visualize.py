"""The visualize job's config: ``VisualizeConfig`` (validated on construction), the models it
looks at (``Entry``) and how they are found in a sweep's output (``sweep_entries``)."""

import dataclasses
import glob
import os

from tfprune import checks
from tfprune.data import dataset_spec
from tfprune.declare import option
from tfprune.errors import TfpruneError
from tfprune.jobs.configs.base import JobConfig
from tfprune.jobs.configs.parts import DatasetFields
from tfprune.jobs.configs.train import model_path
from tfprune.jobs.rundir import read_marker
from tfprune.results import rows as rows_lib


SWEEP_LAYOUT = ("a sweep's output directory (config.json, baselines/seed<k>/metrics.json and "
                "model.keras, variants/seed<k>/<variant>/variant.json beside its pruned.keras "
                "or shrunk.keras)")
SWEEP_DATA_FIELDS = tuple(f.name for f in dataclasses.fields(DatasetFields))  # read from it
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
    target_latency: str = None  # a sweep's latency-target variants: "0.5", "2ms"


@dataclasses.dataclass
class VisualizeConfig(JobConfig, DatasetFields):
    """With ``run_dir`` the sweep's data fields replace the ones given."""

    models: tuple = option((), "Saved models, the reference first: name=path or path.")
    run_dir: str = option(None, "Or a sweep's output directory: its baselines and finished "
                          "variants (the sweep's data set is used, whatever --dataset says).")
    per_class: int = option(1, "Test images per class in the grids.", lower=1)
    misclassified: int = option(2, "Extra grid rows: images some model gets wrong.", lower=0)
    drift_sample: int = option(500, "Test images the drift is measured on (0: all).", lower=0)
    top_k: float = option(0.1, "Fraction of pixels compared by the top-k overlap.")
    layer: str = option(None, "Grad-CAM layer (default: each model's last convolution).")
    smoothgrad_samples: int = option(16, "SmoothGrad noisy copies.", lower=1)
    class_model_steps: int = option(100, "Gradient-ascent steps of each class-model image.",
                                    lower=1)
    seed: int = option(0, "Seed of SmoothGrad's noise and the class models.", lower=0)

    def resolve(self):
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
        self.resolve_dataset()
        if dataset_spec(self.dataset, self.image_size).kind == "text":
            raise TfpruneError(
                "visualize draws image maps (SmoothGrad, Grad-CAM, class models) and their "
                f"drift, which do not apply to token ids: dataset {self.dataset!r} is text; "
                "choose an image data set (token saliency for text models is not built yet)")
        names = [self.parse(m)[0] for m in self.models]
        if len(set(names)) != len(names):
            raise TfpruneError(f"`models` names must differ, got {', '.join(names)}")
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
            key = rows_lib.VariantKey.from_identity(dict(variant, seed=seed))
            found.append(Entry(key.slug() if len(entries) == 1 else f"seed{seed}/{key.slug()}",
                               path, seed, key.method, key.schedule, key.target_sparsity,
                               key.layer_sparsity, key.target_latency))
        entries.extend(sorted(found, key=lambda e: (e.method, e.schedule or "",
                                                    e.target_sparsity or 0.0,
                                                    e.target_latency or "",
                                                    e.layer_sparsity != rows_lib.UNIFORM,
                                                    e.layer_sparsity or "")))
    if not any(e.method != rows_lib.DENSE for e in entries):
        found = ("a baseline but no finished variant" if entries else "no trained baseline")
        raise TfpruneError(f"`run_dir` {run_dir!r} has no models to compare: expected "
                           f"{SWEEP_LAYOUT}; found {found}")
    return entries
