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

import functools
import json
import math
import os
import platform
import time

from tfprune import io, precision, training
from tfprune.jobs import deployer as deployer_lib
from tfprune.jobs import variant as variant_lib
from tfprune.jobs.prune import preflight
from tfprune.jobs.configs.parts import stage_options
from tfprune.jobs.configs.sweep import SweepConfig  # noqa: F401  (jobs.sweep.SweepConfig)
from tfprune.jobs import runlock
from tfprune.jobs.rundir import inside, prepare_run_dir, read_marker, resolve
from tfprune.jobs.train import model_path, train_baseline
from tfprune.jobs.visualize import SWEEP_SUBDIR as VISUALIZE_DIR
from tfprune.jobs.visualize import VisualizeConfig, run_visualize
from tfprune.keras import keras, tf
from tfprune.compression.stages import STAGES
from tfprune.models import build_model, load_model
from tfprune.pipeline import check_stage as compress_check
from tfprune.pipeline import compress_model
from tfprune.pruning import stats
from tfprune.results import plots, report, tables
from tfprune.results import rows as rows_lib
from tfprune.tflite import export, measure

# While variants run, the plots are drawn again at most this often (seconds); at the end always.
PLOT_INTERVAL_S = 60
# From this many variants to run on, conversions overlap fine-tuning (overlaps()).
OVERLAP_MIN_VARIANTS = 4


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
             if r["method"] == rows_lib.DENSE and not r.get("stage")}
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
        return ("time left unknown until one variant of each of these has finished: "
                f"{', '.join(unknown)}")
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
    if key.stage:
        return _prepare_stage(config, output_dir, key, data, baseline, log, curves_cache,
                              options, loader)
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


def _prepare_stage(config, output_dir, key, data, baseline, log, curves_cache, options,
                   loader):
    """(Deployment, model in memory) of a compression stage after variant ``key.with_stage(None)``
    (the dense baseline, or the pruned variant, reused from its directory): the stage trained,
    its counts in stage.json, a clustered float model saved as stage.keras, a
    quantization-aware one deployed from memory (tfmot cannot load it back whole)."""
    model, base_metrics, base_stats = baseline
    base, out = key.with_stage(None), variant_dir(output_dir, key)
    extra = {"train_time_s": base_metrics["train_time_s"]}
    if base.method == rows_lib.DENSE:
        source, measured = model, dict(
            keras_accuracy=base_metrics["test_accuracy"], dense_stats=base_stats,
            deployed_stats=base_stats, extra=dict(extra, achieved_sparsity=base_stats["sparsity"],
                                                 fine_tune_time_s=0.0), sources=())
    else:
        run, measured = variant_lib.prune_variant(
            config.prune_config(base, base_metrics["model_path"]), variant_dir(output_dir, base),
            data, (model, base_metrics["model_path"]), base_stats, extra=extra,
            curves_cache=curves_cache, draw=lambda *args, **kwargs: None)
        source = run.model()
    stage = STAGES.get(config.stage_of(key))
    start = time.perf_counter()
    compressed = compress_model(source, data, stage.name, stage_options(config),
                                preserve_sparsity=key.stage == stage.applied(True),
                                log=lambda line: log(f"{key.title()}: {line}"))
    seconds = time.perf_counter() - start
    os.makedirs(out, exist_ok=True)
    _, accuracy = training.evaluate(compressed.model, data.split("test"))
    io.write_json(os.path.join(out, "stage.json"), dict(
        compressed.record(), time_s=seconds, keras_accuracy=accuracy,
        history=compressed.history))
    deployed = measured["deployed_stats"]
    if not stage.quantize:  # a float model: counted again (clustering may zero weights)
        deployed = {k: v for k, v in stats.summarize(compressed.model).items() if k != "layers"}
    measured = dict(measured, keras_accuracy=accuracy, deployed_stats=deployed, extra=dict(
        measured["extra"], fine_tune_time_s=seconds, max_unique=compressed.max_unique()))
    path = None
    if not stage.quantize:
        path = os.path.join(out, "stage.keras")
        training.save_model(compressed.model, path)
    return deployer_lib.Deployment(
        path, "stage", out, key, loader,
        dict(options, quantizations=stage.quantizations(config.quantizations), **measured),
        in_process=stage.quantize), compressed.model


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
        f"{', '.join(config.quantizations)}.{dynamic_options}" + (
            f" Latency targets (channel): {', '.join(config.target_latencies)}, on "
            f"{config.latency_quantization}, {config.latency_threads} thread(s), XNNPACK "
            f"{'on' if config.latency_xnnpack else 'off'}." if config.target_latencies else "")
        + (f" Compression stages after every variant: {', '.join(config.stages)}, "
           f"{config.stage_epochs} epoch(s) each, Adam {config.stage_learning_rate:g} with cosine "
           f"decay" + (f", {config.clusters} clusters per kernel ({config.centroids})"
                       if any(STAGES.get(s).clusters for s in config.stages) else "") + "."
           if config.stages else ""),
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
        return tuple(row.get(k) for k in ("seed",) + rows_lib.KEY[:-1])

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
        "config": config.record(), "variants_done": done, "variants_total": total,
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
def run_sweep(config, output_dir, overwrite=False, log=print, visualize=False, overlap=True,
              wait=False):
    """Run (or resume) the sweep into ``output_dir``; return the result rows. With
    ``visualize``, then the visualize job on it (``output_dir``/visualize: saliency and
    Grad-CAM grids, class models, drift), which report.md shows. With ``overlap`` (where
    ``overlaps``), each finished variant is converted and measured in a second process while the
    next fine-tunes (jobs/deployer.py; the same rows). Under ``config.strategy`` every baseline
    and fine-tuning trains on all replicas; under multi_worker only the chief writes
    ``output_dir`` (distribute.py). The sweep holds ``output_dir``'s lock while it runs
    (runlock.py): a second sweep there is refused, or with ``wait`` waits and then resumes."""
    with runlock.job(config.strategy, output_dir, "sweep", wait, log) as (_, own_dir):
        return _run_sweep(config, own_dir, overwrite, log, visualize, overlap)


def _run_sweep(config, output_dir, overwrite, log, visualize, overlap):
    # Cheap checks first: the steps of every schedule and the layers, before any baseline trains.
    data = config.load_data(config.seeds[0], log)
    architecture = build_model(config.model, data.input_shape, data.num_classes,
                               dataset=data.name, vocabulary_size=data.vocabulary_size)
    for key in config.variants():
        if key.method != rows_lib.DENSE and not key.stage:
            preflight(config.prune_config(key), data, architecture)
    for stage in config.stages:  # something to cluster, something tfmot can quantize
        compress_check(architecture, stage, stage_options(config))
    if "mixed" in config.quantizations:  # a budget below the dense all-int4 size: refused now
        export.check_float32("mixed", export.to_tflite(architecture, "float32"), architecture,
                             config.mixed_spec())
    prepare_run_dir(output_dir, config.record(), overwrite=overwrite)  # a new config: emptied
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
