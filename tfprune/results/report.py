"""The sweep's report.md, as text, from aggregated entries and rows: best trade-offs, the
decisions of the methods that choose their own sparsity, plots, the results table.

Everything is derived from the rows the variants wrote, so the report's numbers are exactly the
per-variant numbers (means and spreads over seeds where there are several).
"""

from tfprune.results import rows as rows_lib
from tfprune.results.tables import pareto_front


def _fmt(entry, column, spec, scale=1.0):
    if entry.get(column) is None:
        return "n/a"
    mean = entry[column] * scale
    std = (entry.get(column + "_std") or 0.0) * scale
    if entry.get("seeds", 1) > 1:
        return f"{format(mean, spec)} ± {format(std, spec)}"
    return format(mean, spec)


def reference_entry(entries):
    """The dense baseline entry the summary compares against: float32 if measured, else the
    first quantization there is."""
    dense = [e for e in entries if e["method"] == rows_lib.DENSE]
    for entry in dense:
        if entry["quantization"] == "float32":
            return entry
    return dense[0] if dense else None


def summary_lines(entries, tolerance=0.01):
    reference = reference_entry(entries)
    if reference is None:
        return ["(the dense baseline has not finished yet)"]
    name = f"dense {reference['quantization']}"
    floor = reference["tflite_accuracy"] - tolerance
    good = [e for e in entries if e["tflite_accuracy"] >= floor]
    timed = reference.get("latency_ms_median") is not None
    lines = [f"- Reference, the {name} model: {100 * reference['tflite_accuracy']:.2f}% TFLite "
             f"test accuracy, {reference['size_bytes'] / 1024:.1f} KB "
             f"({reference['gzip_bytes'] / 1024:.1f} KB gzip)"
             + (f", {reference['latency_ms_median'] * 1e3:.1f} us median latency." if timed
                else "; latency not measured yet.")]
    if good:
        small = min(good, key=lambda e: e["gzip_bytes"])
        lines.append(
            f"- Smallest within {100 * tolerance:g} point of it: **{rows_lib.label(small)}**, "
            f"{small['gzip_bytes'] / 1024:.1f} KB gzip "
            f"({reference['size_bytes'] / small['gzip_bytes']:.1f}x below {name} raw), "
            f"{100 * small['tflite_accuracy']:.2f}%.")
        timed_good = [e for e in good if e.get("latency_ms_median") is not None]
        if timed and timed_good:
            fast = min(timed_good, key=lambda e: e["latency_ms_median"])
            lines.append(
                f"- Fastest within {100 * tolerance:g} point: **{rows_lib.label(fast)}**, "
                f"{fast['latency_ms_median'] * 1e3:.1f} us "
                f"({reference['latency_ms_median'] / fast['latency_ms_median']:.2f}x faster than "
                f"{name}, timed in the same interleaved rounds), "
                f"{100 * fast['tflite_accuracy']:.2f}%.")
    for method in sorted({e["method"] for e in entries} - {rows_lib.DENSE}):
        held = [e for e in good if e["method"] == method]
        if not held:
            lines.append(f"- {method} pruning: no variant within {100 * tolerance:g} point.")
            continue
        top = max(held, key=lambda e: (rows_lib.sparsity_of(e), e["tflite_accuracy"]))
        kind = "achieved sparsity" if rows_lib.chooses_sparsity(top) else "sparsity"
        lines.append(f"- {method} pruning holds accuracy (within {100 * tolerance:g} point) up "
                     f"to {kind} {rows_lib.sparsity_of(top):.2f} ({rows_lib.label(top)}: "
                     f"{100 * top['tflite_accuracy']:.2f}%).")
    front = pareto_front(entries, "gzip_bytes")
    lines.append("- Pareto front (gzip size vs accuracy): " + "; ".join(
        f"{rows_lib.label(e)} ({e['gzip_bytes'] / 1024:.1f} KB, {100 * e['tflite_accuracy']:.2f}%)"
        for e in front) + ".")
    return lines


def decision_lines(rows):
    """One line per variant of a method that decided for itself: events, rollbacks, and the
    sparsity it chose in each layer."""
    seen, lines = set(), []
    for row in rows:
        if row.get("pruning_events") is None:
            continue
        key = (row["seed"], row["method"], row["target_sparsity"])
        if key in seen:
            continue
        seen.add(key)
        chosen = ", ".join(f"{layer} {value:.2f}" for layer, value in
                           (row.get("chosen_sparsity") or {}).items())
        target = ("chose its sparsity" if row["target_sparsity"] is None else
                  f"target {row['target_sparsity']:g}")
        lines.append(f"- seed {row['seed']} {row['method']} ({target}): {row['pruning_events']} "
                     f"pruning events, {row['rollbacks']} rollbacks; achieved "
                     f"{row['achieved_sparsity']:.3f}; per layer: {chosen or 'none'}.")
    return lines


_KIND_FORMATS = {"percent": (".2f", 100), "kb": (".1f", 1 / 1024), "us": (".1f", 1e3),
                 "ratio": (".2f", 1)}


def markdown_results(entries):
    table = [(column, title, kind) for column, title, kind in rows_lib.TABLE
             if column not in rows_lib.OPTIONAL or any(e.get(column) is not None for e in entries)]
    header = "| " + " | ".join(title for _, title, _ in table) + " |"
    lines = [header, "|" + "---|" * len(table)]
    for e in entries:
        cells = []
        for column, _, kind in table:
            if kind == "text":
                cells.append(str(e[column]))
            elif kind == "sparsity":
                cells.append("auto" if rows_lib.chooses_sparsity(e) else
                             f"{e[column] or 0.0:g}")
            elif kind == "count":
                cells.append(f"{e[column]:,.0f}" if e.get(column) is not None else "n/a")
            else:
                spec, scale = _KIND_FORMATS[kind]
                cells.append(_fmt(e, column, spec, scale))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def visualize_lines(drift, rows, directory="visualize"):
    """The report's section on what the models look at, from the visualize job's drift.json
    (``drift``), its PNGs under ``directory``/plots; says so when variants finished after it."""
    def key(r):
        schedule = None if r["schedule"] in (None, rows_lib.NO_SCHEDULE) else r["schedule"]
        return r["seed"], r["method"], schedule, r["target_sparsity"]

    done = {key(r) for r in rows if r["method"] != rows_lib.DENSE}
    seen = {key(r) for r in drift["rows"]}
    lines = [f"Each variant's maps against its seed's dense model's on {drift['drift_sample']} "
             "test images, asked about the dense model's predicted class: Spearman rank "
             f"correlation and top-{drift['top_k']:.0%} pixel overlap of vanilla-gradient "
             "saliency and Grad-CAM (last convolution), and how often the predicted class "
             "changed. 'removed': the dense model's parameters the variant no longer has. "
             "Drift includes what fine-tuning alone changes.", ""]
    if done - seen:
        lines += [f"**Made before {len(done - seen)} variant(s) finished**: run "
                  "`python -m experiments.visualize --run_dir=<this directory> --overwrite` "
                  "again.", ""]
    grad_cam = "grad_cam" in drift.get("kinds", ())
    header = ["model", "removed %", "acc %", "pred. changed %", "saliency rho",
              "saliency top-k"] + (["Grad-CAM rho", "Grad-CAM top-k"] if grad_cam else [])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in drift["rows"]:
        cells = [r["model"], f"{100 * r['params_removed']:.1f}", f"{100 * r['accuracy']:.2f}",
                 f"{100 * r['prediction_change']:.1f}", f"{r['saliency_spearman']:.3f}",
                 f"{r['saliency_top_k_overlap']:.3f}"]
        if grad_cam:
            cells += [f"{r['grad_cam_spearman']:.3f}", f"{r['grad_cam_top_k_overlap']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [""] + [f"![{image}]({directory}/{image})" for image in drift.get("images", ())]
    return lines + ["", f"Visualize step: {drift['time_s']:.1f} s."]


def render(title, status, setup, entries, rows, plot_files, stage_times, seeds, drift=None):
    """report.md's text. ``setup``: lines describing the run; ``plot_files``: names under plots/;
    ``drift``: the visualize job's result, when there is one."""
    decisions = decision_lines(rows)
    text = [
        f"# {title}", "",
        f"Status: {status}", "",
        "## Setup", "", *setup, "",
        "## Best trade-offs", "", *summary_lines(entries), "",
    ]
    if decisions:
        text += ["## Decisions of the methods that prune by themselves", "",
                 "Per-layer sparsity as each method left it (channel groups, named by their "
                 "producers, units or weights, as it prunes); every decision is in the variant's "
                 "decisions.jsonl.", "", *decisions, ""]
    text += ["## Plots", "", *[f"![{name}](plots/{name})" for name in plot_files], ""]
    if drift:
        text += ["## What the models look at (saliency, Grad-CAM, class models)", "",
                 *visualize_lines(drift, rows), ""]
    text += [
        "## Results", "",
        ("Mean ± standard deviation over seeds. " if seeds > 1 else "")
        + "'vs dense': latency over the dense model's of the same quantization and seed, from "
        "the same interleaved rounds. Per-seed rows: results.csv and results.json.", "",
        markdown_results(entries),
        "## Time by stage", "",
        ", ".join(f"{k[:-2].replace('_', ' ')} {v:.1f} s" for k, v in stage_times.items()) + ".",
        "",
    ]
    return "\n".join(text)
