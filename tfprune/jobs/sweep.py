"""The main job: compare every method, schedule, sparsity and quantization in one run.

For each seed a baseline is trained (or reused); for each variant it is pruned and fine-tuned,
stripped and shrunk, converted to each quantization and measured on the LiteRT interpreter
(jobs/variant.py). Every variant writes its own directory and, last, its ``variant.json``; a
rerun skips variants whose file holds their rows, so an interrupted sweep loses only the
variant in progress. When every variant is done, all deployed .tflite files are timed together,
interleaved in shuffled rounds (latency.json), so latencies compare like with like.
results.csv / results.json / report.md are rebuilt from those files after every variant, the plots
at most once a minute while variants run and always at the end.
"""

import dataclasses
import functools
import itertools
import json
import math
import os
import platform
import time

from tfprune import checks, distribute, io, precision, training
from tfprune.data import apply_dataset_defaults, check_dataset, load_data
from tfprune.errors import TfpruneError
from tfprune.jobs import deployer as deployer_lib
from tfprune.jobs import variant as variant_lib
from tfprune.jobs.export import MIXED_NAMES
from tfprune.jobs.prune import check_dynamic_options, preflight
from tfprune.jobs.rundir import inside, prepare_run_dir, read_marker, resolve
from tfprune.jobs.train import TrainConfig, model_path, train_baseline
from tfprune.jobs.visualize import SWEEP_SUBDIR as VISUALIZE_DIR
from tfprune.jobs.visualize import VisualizeConfig, run_visualize
from tfprune.keras import keras, tf
from tfprune.models import MODELS, build_model, load_model
from tfprune.pruning import METHODS, SCHEDULES, allocation, stats
from tfprune.results import plots, report, tables
from tfprune.results import rows as rows_lib
from tfprune.tflite import export, measure
from tfprune.tflite import mixed as mixed_lib

VariantKey = rows_lib.VariantKey
# The hybrid recipe's additions: layer-wise pruning from sensitivity curves, and the quantizations
# it is compared at (all-int8 dynamic range, all-int4, mixed int4/int8 by importance).
HYBRID_LAYER_SPARSITY = (rows_lib.UNIFORM, "auto")
HYBRID_QUANTIZATIONS = ("dynamic", "int4", "mixed")
# While variants run, the plots are drawn again at most this often (seconds); at the end always.
PLOT_INTERVAL_S = 60
# From this many variants to run on, conversions overlap fine-tuning (overlaps()).
OVERLAP_MIN_VARIANTS = 4


@dataclasses.dataclass
class SweepConfig:
    dataset: str = "digits"
    model: str = "cnn"
    methods: tuple = ("weight", "unit", "dynamic", "incremental", "adaptive")
    schedules: tuple = ("constant", "polynomial")
    sparsities: tuple = (0.5, 0.75, 0.9, 0.95)
    quantizations: tuple = ("float32", "float16", "dynamic", "int8")
    seeds: tuple = (0,)
    baseline_epochs: int = None   # None: the data set's default (digits 60, 28x28 sets 15)
    fine_tune_epochs: int = None  # None: the data set's default (digits 15, 28x28 sets 3)
    learning_rate: float = 3e-3
    batch_size: int = None        # None: the data set's default (digits 32, 28x28 sets 128)
    split_seed: int = 0
    data_dir: str = None
    representative_count: int = 200
    num_threads: int = 1
    latency_runs: int = 200
    dynamic: dict = None   # options of the methods that decide (DynamicConfig fields)
    image_size: tuple = None  # folder: data sets only
    from_scratch: bool = False  # structured variants: also train their thinner architecture
                                # from scratch for the same total epochs (scratch_accuracy)
    layer_sparsity: tuple = (rows_lib.UNIFORM,)  # weight, unit: uniform, auto, global
    hybrid: bool = False  # the hybrid recipe: layer-wise (auto) pruning + fine-tuning + mixed
    #                       int4/int8, next to uniform pruning at int8 and int4
    mixed_budget_kb: float = None     # mixed quantization: a size budget (KB), or
    mixed_int4_fraction: float = None  # the share of weights at int4 (default 0.5)
    strategy: str = "default"  # distribute.STRATEGIES; batch_size is per replica
    mixed_precision: bool = False  # baselines and fine-tuning under mixed_float16 (the saved
    #                                models, and so the .tflite files, float32)

    def __post_init__(self):
        self.image_size = check_dataset(self.dataset, self.image_size)
        apply_dataset_defaults(self, fine_tune_epochs=("fine_tune_epochs", 15),
                               baseline_epochs=("epochs", 60), batch_size=("batch_size", 32))
        MODELS.validate(self.model)
        self.methods = METHODS.validate_list("methods", self.methods)
        self.schedules = SCHEDULES.validate_list("schedules", self.schedules)
        checks.check_not_empty("sparsities", self.sparsities, "give values in [0, 1)")
        self.sparsities = tuple(sorted(set(checks.check_sparsity("sparsities", s)
                                           for s in self.sparsities)))
        self.layer_sparsity, self.quantizations = tuple(self.layer_sparsity), \
            tuple(self.quantizations)
        checks.check_not_empty("layer_sparsity", self.layer_sparsity,
                               f"give one or more of {', '.join(allocation.LAYER_SPARSITY)}")
        for value in self.layer_sparsity:
            checks.check_choice("layer_sparsity", value, allocation.LAYER_SPARSITY)
        if self.hybrid:
            self.layer_sparsity += HYBRID_LAYER_SPARSITY
            self.quantizations += HYBRID_QUANTIZATIONS
        self.layer_sparsity = tuple(dict.fromkeys(self.layer_sparsity))
        self.quantizations = tuple(dict.fromkeys(self.quantizations))
        self.quantizations = tuple(measure.validate_quantizations(self.quantizations))
        if self.layer_sparsity != (rows_lib.UNIFORM,) and not any(
                METHODS.get(m).takes_layer_sparsity for m in self.methods):
            per_layer = [m.name for m in METHODS.entries() if m.takes_layer_sparsity]
            raise TfpruneError(
                f"`layer_sparsity`{' (which `hybrid` sets to uniform, auto)' if self.hybrid else ''}"
                f" applies to the methods {', '.join(per_layer)}; none of "
                f"{', '.join(self.methods)} is one")
        self.mixed_spec()  # the budget or fraction checked now; the budget against the
        #                    all-int4 size in run_sweep's preflight, before any training
        checks.check_not_empty("seeds", self.seeds, "give one or more integers >= 0")
        for seed in self.seeds:
            checks.check_int("seeds", seed, 0)
        self.seeds = tuple(dict.fromkeys(self.seeds))
        for name, minimum in (("baseline_epochs", 1), ("fine_tune_epochs", 0), ("batch_size", 1),
                              ("split_seed", 0), ("representative_count", 1),
                              ("num_threads", 1), ("latency_runs", 1)):
            checks.check_int(name, getattr(self, name), minimum)
        checks.check_positive("learning_rate", self.learning_rate)
        distribute.check_strategy(self.strategy)
        self.dynamic = check_dynamic_options(self.methods, self.dynamic)
        if self.from_scratch and not any(self.prune_config(key).structured()
                                         for key in self.variants() if key.method != rows_lib.DENSE):
            raise TfpruneError(f"`from_scratch` applies to structured methods (unit, channel, or "
                               f"a deciding method at unit or channel granularity); none of "
                               f"{', '.join(self.methods)} is one")
        for key in self.variants():  # every combination, checked before anything trains
            if key.method != rows_lib.DENSE:
                self.prune_config(key)

    def to_dict(self):
        return dataclasses.asdict(self)

    def mixed_spec(self):
        return mixed_lib.spec_for(self.quantizations, self.mixed_budget_kb,
                                  self.mixed_int4_fraction, MIXED_NAMES)

    def variants(self):
        """Every VariantKey, dense ones first. Methods without a schedule run once per target;
        methods that choose their sparsity run once per seed; a method that decides but takes
        a target needs one above 0."""
        result = [VariantKey.of(seed, rows_lib.DENSE) for seed in self.seeds]
        for seed, name in itertools.product(self.seeds, self.methods):
            method = METHODS.get(name)
            schedules = self.schedules if method.takes_schedule else (None,)
            if self.fine_tune_epochs == 0 and method.takes_schedule:
                schedules = ("constant",)  # one-shot: pruned to the target at once
            targets = [None] if not method.takes_target else [
                s for s in self.sparsities if s > 0 or not method.decides]
            keys = (VariantKey.of(seed, name, schedule, target, layers) for schedule, target, layers
                    in itertools.product(schedules, targets, self.layer_sparsity))
            result.extend(dict.fromkeys(keys))  # layer_sparsity dropped: one variant
        return result

    def train_config(self, seed):
        return TrainConfig(dataset=self.dataset, model=self.model, epochs=self.baseline_epochs,
                           batch_size=self.batch_size, seed=seed, split_seed=self.split_seed,
                           data_dir=self.data_dir, image_size=self.image_size,
                           strategy=self.strategy,
                           mixed_precision=self.mixed_precision)

    def prune_config(self, key, baseline="train"):
        return variant_lib.prune_config(
            key, dataset=self.dataset, model=self.model, fine_tune_epochs=self.fine_tune_epochs,
            learning_rate=self.learning_rate, batch_size=self.batch_size,
            split_seed=self.split_seed, data_dir=self.data_dir, baseline=baseline,
            baseline_epochs=self.baseline_epochs, dynamic=self.dynamic,
            image_size=self.image_size, from_scratch=self.from_scratch, strategy=self.strategy,
            mixed_precision=self.mixed_precision)

    def load_data(self, seed):
        return load_data(self.dataset,
                         batch_size=distribute.global_batch(self.batch_size, self.strategy),
                         seed=seed,
                         data_dir=self.data_dir, split_seed=self.split_seed,
                         augment=training.resolve_augmentation("auto", self.dataset, self.model,
                                                               self.image_size),
                         image_size=self.image_size)


def variant_dir(output_dir, key):
    return os.path.join(output_dir, "variants", f"seed{key.seed}", key.slug())


def _read_variant(output_dir, key, log=None):
    """The rows of a finished variant, or None when it has not finished, or its variant.json
    is damaged (does not parse, is not this variant's, has no rows): then it is reported
    through ``log`` and runs again."""
    def matches(value):
        rows = value.get("rows")
        return ({k: value.get(k) for k in key.identity()} == key.identity()
                and isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows))

    found = read_marker(os.path.join(variant_dir(output_dir, key), "variant.json"), log, matches)
    return found["rows"] if found else None


def collect_rows(output_dir, config):
    """Every finished variant's rows, with the interleaved latencies merged in (when measured)."""
    rows = []
    for key in config.variants():
        rows.extend(_read_variant(output_dir, key) or [])
    return merge_latency(rows, _read_latency(output_dir))


def _read_latency(output_dir, field="files", default=None):
    """A field of latency.json (the timings of every file by default); ``default`` when the
    file is missing or damaged (then the timing runs again)."""
    found = read_marker(os.path.join(output_dir, "latency.json")) or {}
    return found.get(field, {} if default is None else default)


def merge_latency(rows, timings):
    """Rows with latency from ``timings`` ({tflite file: figures}) and the ratio to the dense
    model of the same seed and quantization, timed in the same rounds."""
    merged = []
    for row in rows:
        timing = timings.get(row["tflite_file"])
        if timing:
            row = dict(row, **{k: timing[k] for k in rows_lib.TIMED})
        merged.append(row)
    dense = {(r["seed"], r["quantization"]): r["latency_ms_median"] for r in merged
             if r["method"] == rows_lib.DENSE}
    for row in merged:
        reference = dense.get((row["seed"], row["quantization"]))
        row["latency_vs_dense"] = (row["latency_ms_median"] / reference
                                   if reference and row["latency_ms_median"] is not None else None)
    return merged


def _format_duration(seconds):
    seconds = int(round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def estimate_left(durations, remaining):
    """(seconds, unknown kinds): time left from the mean duration of finished variants of the
    same kind; kinds with no finished variant yet are unknown."""
    seconds, unknown = 0.0, []
    for key in remaining:
        done = durations.get(key.kind)
        if done:
            seconds += sum(done) / len(done)
        elif key.kind not in unknown:
            unknown.append(key.kind)
    return seconds, unknown


def _left_text(durations, remaining):
    seconds, unknown = estimate_left(durations, remaining)
    if not remaining:
        return "0s left"
    if unknown and not seconds:
        return f"time left unknown until a {', '.join(unknown)} variant has finished"
    if unknown:
        return (f"~{_format_duration(seconds)} left, plus the {', '.join(unknown)} variants "
                "(none finished yet, time unknown)")
    return f"~{_format_duration(seconds)} left"


def _baseline(config, seed, output_dir, log):
    base_dir = os.path.join(output_dir, "baselines", f"seed{seed}")
    log(f"baseline seed {seed}: {base_dir}")
    metrics = train_baseline(config.train_config(seed), base_dir, overwrite=True,
                             log=lambda _: None)
    model = load_model(model_path(base_dir, metrics), "baseline")
    # The dense reference for every variant of this seed: loaded and counted once.
    base_stats = stats.summarize(model)
    base_stats.pop("layers")
    log(f"baseline seed {seed}: test accuracy {metrics['test_accuracy']:.4f} "
        f"({metrics['train_time_s']:.1f}s)")
    return model, dict(metrics, model_path=model_path(base_dir, metrics)), base_stats


def _prepare_variant(config, output_dir, key, data, baseline, log, curves_cache=None):
    """(Deployment, model in memory) of a variant: the dense baseline as it is, or pruned and
    fine-tuned into its directory."""
    model, base_metrics, base_stats = baseline
    out = variant_dir(output_dir, key)
    options = dict(quantizations=config.quantizations,
                   representative_count=config.representative_count,
                   num_threads=config.num_threads, latency_runs=0, mixed=config.mixed_spec())
    extra = {"train_time_s": base_metrics["train_time_s"]}
    loader = functools.partial(config.load_data, key.seed)
    if key.method == rows_lib.DENSE:
        os.makedirs(out, exist_ok=True)
        return deployer_lib.Deployment(
            base_metrics["model_path"], "baseline", out, key, loader, dict(
                options, keras_accuracy=base_metrics["test_accuracy"], dense_stats=base_stats,
                deployed_stats=base_stats, extra=dict(
                    extra, achieved_sparsity=base_stats["sparsity"], fine_tune_time_s=0.0))), model
    plots = []  # the prune run's plots, drawn where the variant is deployed

    def prune():
        return variant_lib.prune_variant(
            config.prune_config(key, base_metrics["model_path"]), out, data,
            (model, base_metrics["model_path"]), base_stats, extra=extra,
            curves_cache=curves_cache,
            draw=lambda plot, *args, **kwargs: plots.append((plot, args, kwargs)))

    run, measured = prune()
    if not plots and not os.path.exists(os.path.join(out, "plots", "layer_sparsity.png")):
        # Fine-tuned before an interruption but not deployed, so its plots were never drawn
        # (they are drawn with the deployment): fine-tuned again (the same result) to draw them.
        os.remove(os.path.join(out, "metrics.json"))
        run, measured = prune()
    return deployer_lib.Deployment(
        os.path.join(run.output_dir, f"{run.deployed_kind}.keras"), run.deployed_kind, out, key,
        loader, dict(options, **measured), plots), run.model()


def overlaps(config, variants):
    """True when a sweep of ``config`` may convert and measure each of ``variants`` (those to
    run) in a second process while the next fine-tunes: two or more CPUs, no distribution
    strategy (whose workers each run the whole job in step), and enough variants to pay for the
    process's start (importing TensorFlow, about 5 s of a core)."""
    return ((os.cpu_count() or 1) >= 2 and config.strategy == "default"
            and variants >= OVERLAP_MIN_VARIANTS)


def latency_plan(config):
    """(rounds, invocations per file per round): about ``latency_runs`` per file in all."""
    rounds = min(10, config.latency_runs)
    return rounds, math.ceil(config.latency_runs / rounds)


def time_deployed(config, output_dir, rows, log):
    """Time every deployed .tflite together (interleaved shuffled rounds) into latency.json,
    unless it already holds exactly these files."""
    files = sorted({r["tflite_file"] for r in rows})
    path = os.path.join(output_dir, "latency.json")
    if sorted(_read_latency(output_dir)) == files:
        return
    rounds, runs_per_round = latency_plan(config)
    example = config.load_data(config.seeds[0]).numpy("test", limit=1)[0][0]
    log(f"timing {len(files)} .tflite files together: {rounds} shuffled rounds x "
        f"{runs_per_round} invocations each, {config.num_threads} thread(s)")
    start = time.perf_counter()
    timings = measure.time_together([resolve(output_dir, f) for f in files], example,
                                    rounds=rounds, runs_per_round=runs_per_round,
                                    num_threads=config.num_threads, seed=0)
    timings = dict(zip(files, (timings[resolve(output_dir, f)] for f in files)))
    io.write_json(path, {"rounds": rounds, "runs_per_round": runs_per_round,
                         "num_threads": config.num_threads,
                         "seconds": time.perf_counter() - start, "files": timings})


def _setup_lines(config):
    seeds = ", ".join(str(s) for s in config.seeds)
    rounds, runs_per_round = latency_plan(config)
    dynamic_options = (f" Options of the deciding methods: "
                       f"{json.dumps(config.dynamic, sort_keys=True)}." if config.dynamic else "")
    return [
        f"- Baseline: {config.model}, {config.baseline_epochs} epochs, seeds {seeds} (split seed "
        f"{config.split_seed}); fine-tuning under pruning: {config.fine_tune_epochs} epochs, Adam "
        f"{config.learning_rate:g} with cosine decay.",
        f"- Methods: {', '.join(config.methods)}; schedules: {', '.join(config.schedules)}; "
        f"target sparsities: {', '.join(f'{s:g}' for s in config.sparsities)}; quantizations: "
        f"{', '.join(config.quantizations)}.{dynamic_options}",
        "- Accuracy is measured on the LiteRT interpreter over the whole test split; latency is "
        f"the median of {rounds} rounds x {runs_per_round} single-image invocations after "
        f"warm-up on {config.num_threads} thread(s), every .tflite of the sweep timed together "
        "in interleaved, shuffled rounds at the end; sizes are of the .tflite files, raw, gzip "
        "(level 9) and with the converter's sparse encoding. Unit-pruned models are deployed "
        "shrunk (pruned units physically removed).",
        "- Compression ratio = dense parameters / non-zero parameters; theoretical speedup = "
        "dense FLOPs / non-zero FLOPs (ShrinkBench).",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, tf_keras {keras.__version__}.",
    ]


def write_results(output_dir, config, rows, wall_time_s=None, draw=True):
    """results.csv / results.json / report.md and the plots, from the rows. With ``draw``
    False the plots are not drawn again (report.md names those already drawn)."""
    entries = tables.aggregate(rows, config.methods, config.quantizations)
    tables.write_csv(os.path.join(output_dir, "results.csv"), rows, rows_lib.COLUMNS)
    plot_dir = os.path.join(output_dir, "plots")
    wanted = []  # (path, how to draw it)
    if any(e["method"] != rows_lib.DENSE for e in entries):
        q = "float32" if "float32" in config.quantizations else config.quantizations[0]
        wanted.append((os.path.join(plot_dir, "accuracy_vs_sparsity.png"),
                       lambda path: plots.plot_accuracy_vs_sparsity(entries, path, q)))
    if entries:
        wanted.append((os.path.join(plot_dir, "accuracy_vs_size.png"),
                       lambda path: plots.plot_tradeoff(
                           entries, "gzip_bytes", path, "gzip size of the .tflite (KB, log scale)",
                           "Accuracy vs size (every variant and quantization)", 1 / 1024)))
    if any(e.get("latency_ms_median") is not None for e in entries):
        wanted.append((os.path.join(plot_dir, "accuracy_vs_latency.png"),
                       lambda path: plots.plot_tradeoff(
                           entries, "latency_ms_median", path,
                           f"median latency per image, {config.num_threads} thread(s) "
                           "(us, log scale)",
                           "Accuracy vs measured LiteRT latency (timed together)", 1e3)))
    made = [draw_plot(path) if draw else path for path, draw_plot in wanted
            if draw or os.path.exists(path)]
    total = len(config.variants())
    def variant(row):
        return tuple(row[k] for k in ("seed",) + rows_lib.KEY[:-1])

    done = len({variant(r) for r in rows})
    per_variant = {variant(r): r["fine_tune_time_s"] for r in rows}
    stage_times = {
        "train_s": sum({r["seed"]: r["train_time_s"] for r in rows}.values()),
        "prune_fine_tune_s": sum(per_variant.values()),
        "convert_s": sum(r["convert_time_s"] for r in rows),
        "evaluate_s": sum(r["evaluate_time_s"] for r in rows),
        "latency_s": float(_read_latency(output_dir, "seconds", 0.0)),
    }
    io.write_json(os.path.join(output_dir, "results.json"), {
        "config": config.to_dict(), "variants_done": done, "variants_total": total,
        "wall_time_s": wall_time_s, "stage_times": stage_times, "rows": rows,
        "aggregated": entries})
    status = ("complete." if done == total else f"in progress: {done} of {total} variants.")
    if wall_time_s:
        status += f" Wall time {wall_time_s:.0f} s."
    drift = read_marker(os.path.join(output_dir, VISUALIZE_DIR, "drift.json"))
    io.write_text(os.path.join(output_dir, "report.md"), report.render(
        f"tfprune sweep: {config.model} on {config.dataset}", status, _setup_lines(config),
        entries, rows, [os.path.basename(p) for p in made], stage_times, len(config.seeds),
        drift=drift))


@precision.restores_policy
def run_sweep(config, output_dir, overwrite=False, log=print, visualize=False, overlap=True):
    """Run (or resume) the sweep into ``output_dir``; return the result rows. With
    ``visualize``, then the visualize job on it (``output_dir``/visualize: saliency and
    Grad-CAM grids, class models, drift), which report.md shows. With ``overlap`` (where
    ``overlaps``), each finished variant is converted and measured in a second process while the
    next fine-tunes (jobs/deployer.py; the same rows). Under ``config.strategy`` every baseline
    and fine-tuning trains on all replicas; under multi_worker only the chief writes
    ``output_dir`` (distribute.py)."""
    with distribute.job(config.strategy, output_dir) as (_, own_dir):
        return _run_sweep(config, own_dir, overwrite, log, visualize, overlap)


def _run_sweep(config, output_dir, overwrite, log, visualize, overlap):
    # Cheap checks first: the steps of every schedule and the layers, before any baseline trains.
    data = config.load_data(config.seeds[0])
    architecture = build_model(config.model, data.input_shape, data.num_classes)
    for key in config.variants():
        if key.method != rows_lib.DENSE:
            preflight(config.prune_config(key), data, architecture)
    if "mixed" in config.quantizations:  # a budget below the dense all-int4 size: refused now
        export.check_float32("mixed", export.to_tflite(architecture, "float32"), architecture,
                             config.mixed_spec())
    prepare_run_dir(output_dir, config.to_dict(), overwrite=overwrite)  # a new config: emptied
    start = time.perf_counter()
    baselines = {seed: _baseline(config, seed, output_dir, log) for seed in config.seeds}
    variants = config.variants()
    todo = [key for key in variants if _read_variant(output_dir, key, log) is None]
    if len(todo) < len(variants):
        log(f"resuming: {len(variants) - len(todo)} of {len(variants)} variants already done")
    if todo and os.path.exists(os.path.join(output_dir, "latency.json")):
        os.remove(os.path.join(output_dir, "latency.json"))  # new files: time them all again
    durations = {}
    curves_cache = {}  # layer_sparsity=auto: each baseline's sensitivity curves measured once
    progress = {"last": time.perf_counter(), "drawn": None}

    def finished(deployment, rows):
        """A variant's rows are in: its variant.json, the tables, progress."""
        key = deployment.key
        rows = [dict(r, tflite_file=inside(output_dir, r["tflite_file"])) for r in rows]
        io.write_json(os.path.join(variant_dir(output_dir, key), "variant.json"),
                      {**key.identity(), "rows": rows})
        # The tables after every variant; the plots (~2 s) at most every PLOT_INTERVAL_S.
        now = time.perf_counter()
        draw = progress["drawn"] is None or now - progress["drawn"] >= PLOT_INTERVAL_S
        write_results(output_dir, config, collect_rows(output_dir, config), draw=draw)
        progress["drawn"] = time.perf_counter() if draw else progress["drawn"]
        # A variant's time: since the one before it finished (the pipeline's pace when
        # conversions overlap the next fine-tuning).
        durations.setdefault(key.kind, []).append(now - progress["last"])
        progress["last"] = now
        index = sum(map(len, durations.values()))  # variants finished in this run
        best = max(rows, key=lambda r: r["tflite_accuracy"])
        log(f"[{index}/{len(todo)}] {key.title()}: tflite accuracy {best['tflite_accuracy']:.4f} "
            f"({best['quantization']}), done in {durations[key.kind][-1]:.1f}s; elapsed "
            f"{_format_duration(now - start)}, {_left_text(durations, todo[index:])}")

    second = overlap and overlaps(config, len(todo))
    if second:
        log("converting and measuring each finished variant in a second process while the "
            "next one fine-tunes")
    with deployer_lib.Deployer(processes=second, log=log) as deployer:
        for key in todo:
            # Fresh pipelines per variant: a seeded shuffle's order depends on how many epochs
            # its dataset object has served, so sharing one would make results depend on grid
            # order.
            training.set_seed(key.seed)
            data = config.load_data(key.seed)
            deployment, model = _prepare_variant(config, output_dir, key, data,
                                                 baselines[key.seed], log, curves_cache)
            deployer.submit(deployment, finished, model=model, data=data)
    time_deployed(config, output_dir, collect_rows(output_dir, config), log)
    if visualize:
        result = run_visualize(VisualizeConfig(run_dir=output_dir),
                               os.path.join(output_dir, VISUALIZE_DIR), overwrite=True,
                               log=lambda _: None)
        log(f"visualize: {len(result['rows'])} models, grids, class models and drift in "
            f"{result['time_s']:.1f}s ({os.path.join(output_dir, VISUALIZE_DIR)})")
    rows = collect_rows(output_dir, config)
    write_results(output_dir, config, rows, wall_time_s=time.perf_counter() - start)
    return rows
