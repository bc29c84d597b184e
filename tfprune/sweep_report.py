"""The sweep's results: results.csv / results.json, report.md and plots, from variant rows.

Everything here is derived from the rows the variants wrote, so the report's numbers are exactly
the per-variant numbers (means and spreads over seeds where there are several).
"""

import os
import platform

import numpy as np

from tfprune import io, report
from tfprune.keras import keras, tf

plt = report.plt
KEY = ("method", "schedule", "target_sparsity", "quantization")
AGGREGATED = ["keras_accuracy", "tflite_accuracy", "achieved_sparsity", "params",
              "nonzero_params", "flops", "nonzero_flops", "compression_ratio",
              "theoretical_speedup", "size_bytes", "gzip_bytes", "sparse_bytes",
              "latency_ms_median", "latency_ms_p90", "fine_tune_time_s", "convert_time_s",
              "evaluate_time_s", "train_time_s"]
QUANT_MARKERS = {"float32": "o", "float16": "s", "dynamic": "^", "int8": "D"}
METHOD_COLORS = {"dense": "black", "weight": "tab:blue", "unit": "tab:orange",
                 "dynamic": "tab:green", "incremental": "tab:purple", "adaptive": "tab:brown"}
SCHEDULE_STYLES = {"constant": "--", "polynomial": "-"}


def aggregate(rows, config=None):
    """Mean and (population) standard deviation over seeds for each variant and quantization,
    in the configuration's order (dense first)."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in KEY), []).append(row)
    result = []
    for key, members in groups.items():
        entry = dict(zip(KEY, key))
        entry["seeds"] = len(members)
        for column in AGGREGATED:
            values = np.array([m[column] for m in members], dtype=float)
            entry[column] = float(values.mean())
            entry[column + "_std"] = float(values.std())
        entry["delegate"] = members[0]["delegate"]
        result.append(entry)
    methods = ["dense"] + list(config.methods if config else [])
    quants = list(config.quantizations if config else [])

    def position(values, value):
        return values.index(value) if value in values else len(values)

    return sorted(result, key=lambda e: (position(methods, e["method"]), e["method"],
                                         e["schedule"], e["target_sparsity"],
                                         position(quants, e["quantization"]), e["quantization"]))


def pareto_front(entries, cost):
    """Entries not dominated in (lower ``cost``, higher tflite_accuracy)."""
    front, best = [], -1.0
    for entry in sorted(entries, key=lambda e: (e[cost], -e["tflite_accuracy"])):
        if entry["tflite_accuracy"] > best:
            front.append(entry)
            best = entry["tflite_accuracy"]
    return front


def label(entry):
    if entry["method"] == "dense":
        return f"dense {entry['quantization']}"
    if entry["schedule"] == "-":
        chosen = (f"auto->{entry['achieved_sparsity']:.2f}" if entry["target_sparsity"] == 0
                  else f"{entry['target_sparsity']:g}")
        return f"{entry['method']} {chosen} {entry['quantization']}"
    return (f"{entry['method']} {entry['schedule']} {entry['target_sparsity']:g} "
            f"{entry['quantization']}")


def _color(method):
    return METHOD_COLORS.get(method, f"C{abs(hash(method)) % 10}")


def plot_accuracy_vs_sparsity(entries, path, quantization):
    """One panel per schedule; x is the achieved sparsity of the pruned layers. Methods without
    a schedule (dynamic, incremental, adaptive) appear in every panel."""
    schedules = sorted({e["schedule"] for e in entries if e["method"] != "dense"} - {"-"}) or ["-"]
    dense = [e for e in entries if e["method"] == "dense" and e["quantization"] == quantization]
    fig, axes = plt.subplots(1, len(schedules), figsize=(6 * len(schedules), 4.5), sharey=True,
                             squeeze=False)
    for ax, schedule in zip(axes[0], schedules):
        for method in sorted({e["method"] for e in entries} - {"dense"}):
            points = sorted((e for e in entries if e["method"] == method and
                             e["schedule"] in (schedule, "-") and e["quantization"] == quantization),
                            key=lambda e: e["achieved_sparsity"])
            if points:
                auto = points[0]["schedule"] == "-"
                ax.errorbar([p["achieved_sparsity"] for p in points],
                            [100 * p["tflite_accuracy"] for p in points],
                            xerr=[p["achieved_sparsity_std"] for p in points],
                            yerr=[100 * p["tflite_accuracy_std"] for p in points],
                            marker="*" if auto else "o", markersize=10 if auto else 6,
                            linestyle=":" if auto else "-", capsize=3, color=_color(method),
                            label=f"{method} pruning" + (" (no schedule)" if auto else ""))
        if dense:
            ax.axhline(100 * dense[0]["tflite_accuracy"], color="black", linestyle=":",
                       label="dense baseline")
        ax.set_title(f"{schedule} schedule" if schedule != "-" else "methods without a schedule")
        ax.set_xlabel("achieved sparsity of the pruned layers (weights or units)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    axes[0][0].set_ylabel(f"test accuracy on the TFLite interpreter, {quantization} (%)")
    fig.suptitle(f"Accuracy vs sparsity ({quantization} .tflite; error bars: std over seeds)")
    return report.save_figure(fig, path)


def plot_tradeoff(entries, cost, path, xlabel, title, scale=1.0, log_x=True):
    fig, ax = plt.subplots(figsize=(8, 5.5))
    seen = set()
    for e in entries:
        name = (e["method"], e["quantization"])
        ax.errorbar(e[cost] * scale, 100 * e["tflite_accuracy"],
                    yerr=100 * e["tflite_accuracy_std"], xerr=e.get(cost + "_std", 0) * scale,
                    marker=QUANT_MARKERS.get(e["quantization"], "o"), color=_color(e["method"]),
                    linestyle="none", alpha=0.8, markersize=6,
                    label=f"{e['method']}, {e['quantization']}" if name not in seen else None)
        seen.add(name)
    front = pareto_front(entries, cost)
    ax.plot([e[cost] * scale for e in front], [100 * e["tflite_accuracy"] for e in front],
            color="tab:red", linewidth=1.5, drawstyle="steps-post", label="Pareto front")
    for e in front:
        ax.annotate(label(e), (e[cost] * scale, 100 * e["tflite_accuracy"]), fontsize=6,
                    xytext=(4, -10), textcoords="offset points")
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(report.matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(report.matplotlib.ticker.FormatStrFormatter("%g"))
        ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy on the TFLite interpreter (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return report.save_figure(fig, path)


def _fmt(entry, column, spec, scale=1.0):
    mean = entry[column] * scale
    std = entry.get(column + "_std", 0.0) * scale
    if entry["seeds"] > 1:
        return f"{format(mean, spec)} ± {format(std, spec)}"
    return format(mean, spec)


def summary_lines(entries, tolerance=0.01):
    dense = {e["quantization"]: e for e in entries if e["method"] == "dense"}
    reference = dense.get("float32") or next(iter(dense.values()), None)
    if reference is None:
        return ["(the dense baseline has not finished yet)"]
    floor = reference["tflite_accuracy"] - tolerance
    good = [e for e in entries if e["tflite_accuracy"] >= floor]
    lines = [f"- Dense float32 reference: {100 * reference['tflite_accuracy']:.2f}% TFLite test "
             f"accuracy, {reference['size_bytes'] / 1024:.1f} KB ({reference['gzip_bytes'] / 1024:.1f}"
             f" KB gzip), {reference['latency_ms_median'] * 1e3:.1f} us median latency."]
    if good:
        small = min(good, key=lambda e: e["gzip_bytes"])
        fast = min(good, key=lambda e: e["latency_ms_median"])
        lines.append(
            f"- Smallest within {100 * tolerance:g} point of it: **{label(small)}**, "
            f"{small['gzip_bytes'] / 1024:.1f} KB gzip "
            f"({reference['size_bytes'] / small['gzip_bytes']:.1f}x below dense float32 raw), "
            f"{100 * small['tflite_accuracy']:.2f}%.")
        lines.append(
            f"- Fastest within {100 * tolerance:g} point: **{label(fast)}**, "
            f"{fast['latency_ms_median'] * 1e3:.1f} us "
            f"({reference['latency_ms_median'] / fast['latency_ms_median']:.2f}x faster), "
            f"{100 * fast['tflite_accuracy']:.2f}%.")
    for method in sorted({e["method"] for e in entries} - {"dense"}):
        held = [e for e in good if e["method"] == method]
        if held:
            top = max(held, key=lambda e: (e["target_sparsity"], e["tflite_accuracy"]))
            lines.append(f"- {method} pruning holds accuracy (within {100 * tolerance:g} point) up "
                         f"to sparsity {top['target_sparsity']:g} ({label(top)}: "
                         f"{100 * top['tflite_accuracy']:.2f}%).")
        else:
            lines.append(f"- {method} pruning: no variant within {100 * tolerance:g} point.")
    front = pareto_front(entries, "gzip_bytes")
    lines.append("- Pareto front (gzip size vs accuracy): " + "; ".join(
        f"{label(e)} ({e['gzip_bytes'] / 1024:.1f} KB, {100 * e['tflite_accuracy']:.2f}%)"
        for e in front) + ".")
    return lines


TABLE_COLUMNS = [
    ("method", "method"), ("schedule", "schedule"), ("target_sparsity", "sparsity"),
    ("quantization", "quant"), ("achieved_sparsity", "achieved"),
    ("keras_accuracy", "Keras acc %"), ("tflite_accuracy", "TFLite acc %"),
    ("params", "params"), ("nonzero_params", "non-zeros"), ("flops", "FLOPs"),
    ("compression_ratio", "compression"), ("theoretical_speedup", "theor. speedup"),
    ("size_bytes", "KB"), ("gzip_bytes", "gzip KB"), ("sparse_bytes", "sparse KB"),
    ("latency_ms_median", "latency us"), ("fine_tune_time_s", "fine-tune s")]


def markdown_results(entries):
    header = "| " + " | ".join(title for _, title in TABLE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * len(TABLE_COLUMNS)]
    for e in entries:
        cells = []
        for column, _ in TABLE_COLUMNS:
            if column in ("method", "schedule", "quantization"):
                cells.append(str(e[column]))
            elif column == "target_sparsity":
                auto = e["schedule"] == "-" and e[column] == 0 and e["method"] != "dense"
                cells.append("auto" if auto else f"{e[column]:g}")
            elif column.endswith("accuracy"):
                cells.append(_fmt(e, column, ".2f", 100))
            elif column.endswith("bytes"):
                cells.append(_fmt(e, column, ".1f", 1 / 1024))
            elif column == "latency_ms_median":
                cells.append(_fmt(e, column, ".1f", 1e3))
            elif column in ("params", "nonzero_params", "flops"):
                cells.append(f"{e[column]:,.0f}")
            else:
                cells.append(_fmt(e, column, ".2f"))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_results(output_dir, config, rows, wall_time_s=None):
    from tfprune.sweep import ROW_COLUMNS

    entries = aggregate(rows, config)
    report.write_csv(os.path.join(output_dir, "results.csv"), rows, ROW_COLUMNS)
    plots = os.path.join(output_dir, "plots")
    os.makedirs(plots, exist_ok=True)
    made = []
    if any(e["method"] != "dense" for e in entries):
        q = "float32" if "float32" in config.quantizations else config.quantizations[0]
        made.append(plot_accuracy_vs_sparsity(entries, os.path.join(plots, "accuracy_vs_sparsity.png"), q))
    if entries:
        made.append(plot_tradeoff(entries, "gzip_bytes", os.path.join(plots, "accuracy_vs_size.png"),
                                  "gzip size of the .tflite (KB, log scale)",
                                  "Accuracy vs size (every variant and quantization)", 1 / 1024))
        made.append(plot_tradeoff(entries, "latency_ms_median",
                                  os.path.join(plots, "accuracy_vs_latency.png"),
                                  f"median latency per image, {config.num_threads} thread(s) (us, log scale)",
                                  "Accuracy vs measured LiteRT latency", 1e3))
    total = len(config.variants())
    done = len({(r["seed"], r["method"], r["schedule"], r["target_sparsity"]) for r in rows})
    stage_times = {
        "train_s": sum({r["seed"]: r["train_time_s"] for r in rows}.values()),
        "prune_fine_tune_s": sum({(r["seed"], r["method"], r["schedule"], r["target_sparsity"]):
                                  r["fine_tune_time_s"] for r in rows}.values()),
        "convert_s": sum(r["convert_time_s"] for r in rows),
        "evaluate_s": sum(r["evaluate_time_s"] for r in rows),
    }
    io.write_json(os.path.join(output_dir, "results.json"), {
        "config": config.to_dict(), "variants_done": done, "variants_total": total,
        "wall_time_s": wall_time_s, "stage_times": stage_times, "rows": rows,
        "aggregated": entries})
    seeds = ", ".join(str(s) for s in config.seeds)
    status = ("complete" if done == total else f"in progress: {done} of {total} variants")
    text = [
        f"# tfprune sweep: {config.model} on {config.dataset}",
        "",
        f"Status: {status}." + (f" Wall time {wall_time_s:.0f} s." if wall_time_s else ""),
        "",
        "## Setup",
        "",
        f"- Baseline: {config.model}, {config.baseline_epochs} epochs, seeds {seeds} (split seed "
        f"{config.split_seed}); fine-tuning under pruning: {config.fine_tune_epochs} epochs, Adam "
        f"{config.learning_rate:g} with cosine decay.",
        f"- Methods: {', '.join(config.methods)}; schedules: {', '.join(config.schedules)}; "
        f"target sparsities: {', '.join(f'{s:g}' for s in config.sparsities)}; quantizations: "
        f"{', '.join(config.quantizations)}.",
        "- Accuracy is measured on the LiteRT interpreter over the whole test split; latency is "
        f"the median of {config.latency_runs} single-image invocations after warm-up on "
        f"{config.num_threads} thread(s); sizes are of the .tflite files, raw, gzip (level 9) "
        "and with the converter's sparse encoding. Unit-pruned models are deployed shrunk "
        "(pruned units physically removed).",
        "- Compression ratio = dense parameters / non-zero parameters; theoretical speedup = "
        "dense FLOPs / non-zero FLOPs (ShrinkBench).",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, tf_keras {keras.__version__}.",
        "",
        "## Best trade-offs",
        "",
        *summary_lines(entries),
        "",
        "## Plots",
        "",
        *[f"![{os.path.basename(p)}](plots/{os.path.basename(p)})" for p in made],
        "",
        "## Results",
        "",
        ("Mean ± standard deviation over seeds. " if len(config.seeds) > 1 else "")
        + "Per-seed rows: results.csv and results.json.",
        "",
        markdown_results(entries),
        "## Time by stage",
        "",
        ", ".join(f"{k[:-2].replace('_', ' ')} {v:.1f} s" for k, v in stage_times.items()) + ".",
        "",
    ]
    io.write_text(os.path.join(output_dir, "report.md"), "\n".join(text))
