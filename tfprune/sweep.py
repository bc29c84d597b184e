"""The main job: compare every method, schedule, sparsity and quantization in one run.

For each seed a baseline is trained (or reused); for each (method, schedule, sparsity) it is
pruned and fine-tuned (pruning.pipeline.run_prune), stripped and shrunk, then converted to each
quantization and measured on the LiteRT interpreter. Every variant writes its own directory and,
last, its ``variant.json``; a rerun skips variants whose file exists, so an interrupted sweep
loses only the variant in progress. results.csv / results.json / report.md / plots are rebuilt
from the variant files after every variant, so the report's numbers are the variants' numbers.
"""

import dataclasses
import itertools
import os
import shutil
import time

from tfprune import deploy, io
from tfprune import train as train_lib
from tfprune.data import DATASETS, load_data
from tfprune.errors import TfpruneError
from tfprune.keras import keras
from tfprune.models import MODELS
from tfprune.pruning import METHODS, SCHEDULES, schedules, stats
from tfprune.pruning.core import DYNAMIC_METHODS, TARGETLESS_METHODS
from tfprune.pruning.pipeline import PruneConfig, run_prune

DENSE = "dense"
ROW_COLUMNS = [
    "seed", "method", "schedule", "target_sparsity", "quantization", "achieved_sparsity",
    "keras_accuracy", "tflite_accuracy", "tflite_loss", "params", "nonzero_params", "flops",
    "nonzero_flops", "compression_ratio", "theoretical_speedup", "size_bytes", "gzip_bytes",
    "sparse_bytes", "latency_ms_median", "latency_ms_p90", "num_threads", "delegate",
    "train_time_s", "fine_tune_time_s", "convert_time_s", "evaluate_time_s", "deployed",
    "tflite_file"]


@dataclasses.dataclass
class SweepConfig:
    dataset: str = "digits"
    model: str = "cnn"
    methods: tuple = ("weight", "unit", "dynamic", "incremental", "adaptive")
    schedules: tuple = ("constant", "polynomial")
    sparsities: tuple = (0.5, 0.75, 0.9, 0.95)
    quantizations: tuple = ("float32", "float16", "dynamic", "int8")
    seeds: tuple = (0,)
    baseline_epochs: int = 60
    fine_tune_epochs: int = 15
    learning_rate: float = 3e-3
    batch_size: int = 32
    split_seed: int = 0
    data_dir: str = None
    representative_count: int = 200
    num_threads: int = 1
    latency_runs: int = 200

    def __post_init__(self):
        DATASETS.validate(self.dataset)
        MODELS.validate(self.model)
        self.methods = METHODS.validate_list("methods", self.methods)
        self.schedules = SCHEDULES.validate_list("schedules", self.schedules)
        if not tuple(self.sparsities):
            raise TfpruneError("`sparsities` must not be empty; give values in [0, 1)")
        self.sparsities = tuple(sorted(set(schedules.check_sparsity("sparsities", s)
                                           for s in self.sparsities)))
        self.quantizations = tuple(deploy.validate_quantizations(list(self.quantizations)))
        if not tuple(self.seeds):
            raise TfpruneError("`seeds` must not be empty")
        for seed in self.seeds:
            train_lib._check_int("seeds", seed, 0)
        self.seeds = tuple(dict.fromkeys(self.seeds))
        for name, minimum in (("baseline_epochs", 1), ("fine_tune_epochs", 1), ("batch_size", 1),
                              ("split_seed", 0), ("representative_count", 1),
                              ("num_threads", 1), ("latency_runs", 1)):
            train_lib._check_int(name, getattr(self, name), minimum)
        if not self.learning_rate > 0:
            raise TfpruneError(f"`learning_rate` must be > 0, got {self.learning_rate}")

    def to_dict(self):
        return dataclasses.asdict(self)

    def variants(self):
        """(seed, method, schedule, sparsity) for every variant, dense ones first. The dynamic
        methods take no schedule ("-"); "dynamic" and "adaptive" choose their own sparsity (0.0
        stands for "auto"); "incremental" runs at every non-zero target sparsity."""
        result = [(seed, DENSE, "-", 0.0) for seed in self.seeds]
        for seed, method in itertools.product(self.seeds, self.methods):
            if method in TARGETLESS_METHODS:
                result.append((seed, method, "-", 0.0))
            elif method in DYNAMIC_METHODS:
                result.extend((seed, method, "-", p) for p in self.sparsities if p > 0)
            else:
                result.extend((seed, method, s, p) for s, p in itertools.product(
                    self.schedules, self.sparsities))
        return result


def variant_dir(output_dir, seed, method, schedule, sparsity):
    if method in (DENSE,) + TARGETLESS_METHODS:
        name = method
    elif schedule == "-":
        name = f"{method}-{sparsity:g}"
    else:
        name = f"{method}-{schedule}-{sparsity:g}"
    return os.path.join(output_dir, "variants", f"seed{seed}", name)


def _deployed_rows(model, kind, data, config, out_dir, keras_accuracy, base_stats, extra):
    x_test, y_test = data.numpy("test")
    representative = data.representative_sample(config.representative_count)
    deployed_stats = stats.summarize(model)
    rows = deploy.convert_and_measure(
        model, x_test, y_test, representative, config.quantizations, [False],
        os.path.join(out_dir, "tflite"), stem=kind, num_threads=config.num_threads,
        latency_runs=config.latency_runs, keras_accuracy=keras_accuracy, log=lambda _: None,
        sparse_sizes=True)
    return [dict(
        extra, quantization=row["quantization"], keras_accuracy=keras_accuracy,
        tflite_accuracy=row["tflite_accuracy"], tflite_loss=row["tflite_loss"],
        params=deployed_stats["params"], nonzero_params=deployed_stats["nonzero_params"],
        flops=deployed_stats["flops"], nonzero_flops=deployed_stats["nonzero_flops"],
        compression_ratio=base_stats["params"] / max(deployed_stats["nonzero_params"], 1),
        theoretical_speedup=base_stats["flops"] / max(deployed_stats["nonzero_flops"], 1),
        size_bytes=row["size_bytes"], gzip_bytes=row["gzip_bytes"],
        sparse_bytes=row["sparse_bytes"], latency_ms_median=row["latency_ms_median"],
        latency_ms_p90=row["latency_ms_p90"], num_threads=row["num_threads"],
        delegate=row["delegate"], convert_time_s=row["convert_time_s"],
        evaluate_time_s=row["evaluate_time_s"], deployed=kind, tflite_file=row["file"])
        for row in rows]


def _run_variant(config, output_dir, seed, method, schedule, sparsity, data, baselines, log):
    out = variant_dir(output_dir, seed, method, schedule, sparsity)
    base_path, base_metrics, base_stats = baselines[seed]
    common = dict(seed=seed, method=method, schedule=schedule, target_sparsity=sparsity,
                  train_time_s=base_metrics["train_time_s"])
    if method == DENSE:
        os.makedirs(out, exist_ok=True)
        base_model = keras.models.load_model(base_path, compile=False)
        return _deployed_rows(base_model, "baseline", data, config, out,
                              base_metrics["test_accuracy"], base_stats,
                              dict(common, achieved_sparsity=base_stats["sparsity"],
                                   fine_tune_time_s=0.0))
    prune_config = PruneConfig(
        dataset=config.dataset, model=config.model, method=method, schedule=schedule,
        target_sparsity=sparsity, fine_tune_epochs=config.fine_tune_epochs,
        learning_rate=config.learning_rate, batch_size=config.batch_size, seed=seed,
        split_seed=config.split_seed, data_dir=config.data_dir, baseline=base_path)
    metrics = run_prune(prune_config, out, overwrite=True, log=lambda _: None, data=data)
    kind = "shrunk" if metrics["models"]["shrunk"] else "pruned"
    model = keras.models.load_model(metrics["models"][kind], compile=False)
    return _deployed_rows(model, kind, data, config, out, metrics["accuracy"], base_stats,
                          dict(common, achieved_sparsity=metrics["pruned_sparsity"],
                               fine_tune_time_s=metrics["fine_tune_time_s"]))


def _format_duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def collect_rows(output_dir, config):
    rows = []
    for seed, method, schedule, sparsity in config.variants():
        path = os.path.join(variant_dir(output_dir, seed, method, schedule, sparsity),
                            "variant.json")
        if os.path.exists(path):
            rows.extend(io.read_json(path)["rows"])
    return rows


def run_sweep(config, output_dir, overwrite=False, log=print):
    """Run (or resume) the sweep into ``output_dir``; return the result rows."""
    from tfprune import sweep_report

    same = io.prepare_run_dir(output_dir, config.to_dict(), overwrite=overwrite)
    if not same:
        for stale in ("variants", "plots"):
            shutil.rmtree(os.path.join(output_dir, stale), ignore_errors=True)
    start = time.perf_counter()
    baselines = {}
    for seed in config.seeds:
        base_dir = os.path.join(output_dir, "baselines", f"seed{seed}")
        train_config = train_lib.TrainConfig(
            dataset=config.dataset, model=config.model, epochs=config.baseline_epochs,
            batch_size=config.batch_size, seed=seed, split_seed=config.split_seed,
            data_dir=config.data_dir)
        log(f"baseline seed {seed}: {base_dir}")
        metrics = train_lib.train_baseline(train_config, base_dir, overwrite=True,
                                           log=lambda _: None)
        # The dense reference for every variant of this seed: loaded and counted once.
        base_stats = stats.summarize(keras.models.load_model(metrics["model_path"], compile=False))
        baselines[seed] = (metrics["model_path"], metrics, base_stats)
        log(f"baseline seed {seed}: test accuracy {metrics['test_accuracy']:.4f} "
            f"({metrics['train_time_s']:.1f}s)")
    variants = config.variants()
    todo = [v for v in variants
            if not os.path.exists(os.path.join(variant_dir(output_dir, *v), "variant.json"))]
    if len(todo) < len(variants):
        log(f"resuming: {len(variants) - len(todo)} of {len(variants)} variants already done")
    durations = []
    for index, (seed, method, schedule, sparsity) in enumerate(todo, 1):
        label = (f"seed {seed} dense baseline" if method == DENSE else
                 f"seed {seed} {method} (chooses its sparsity)" if method in TARGETLESS_METHODS
                 else f"seed {seed} {method} {sparsity:g}" if schedule == "-" else
                 f"seed {seed} {method} {schedule} {sparsity:g}")
        variant_start = time.perf_counter()
        # Fresh pipelines per variant: a seeded shuffle's order depends on how many epochs its
        # dataset object has served, so sharing one would make results depend on grid order.
        train_lib.set_seed(seed)
        data = load_data(config.dataset, batch_size=config.batch_size, seed=seed,
                         data_dir=config.data_dir, split_seed=config.split_seed,
                         augment=train_lib.resolve_augmentation("auto", config.dataset,
                                                                config.model))
        rows = _run_variant(config, output_dir, seed, method, schedule, sparsity, data,
                            baselines, log)
        io.write_json(os.path.join(variant_dir(output_dir, seed, method, schedule, sparsity),
                                   "variant.json"),
                      {"seed": seed, "method": method, "schedule": schedule,
                       "target_sparsity": sparsity, "rows": rows})
        sweep_report.write_results(output_dir, config, collect_rows(output_dir, config))
        durations.append(time.perf_counter() - variant_start)
        pruned_left = sum(1 for v in todo[index:] if v[1] != DENSE)
        typical = [d for d, v in zip(durations, todo) if v[1] != DENSE] or durations
        left = sum(typical) / len(typical) * pruned_left
        best = max(rows, key=lambda r: r["tflite_accuracy"])
        log(f"[{index}/{len(todo)}] {label}: tflite accuracy {best['tflite_accuracy']:.4f} "
            f"({best['quantization']}), done in {durations[-1]:.1f}s; elapsed "
            f"{_format_duration(time.perf_counter() - start)}, ~{_format_duration(left)} left")
    rows = collect_rows(output_dir, config)
    sweep_report.write_results(output_dir, config, rows,
                               wall_time_s=time.perf_counter() - start)
    return rows
