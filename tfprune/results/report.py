"""The sweep's report.md, as text, from aggregated entries and rows: best trade-offs, the
decisions of the methods that choose their own sparsity, plots, the results table.

Everything is derived from the rows the variants wrote, so the report's numbers are exactly the
per-variant numbers (means and spreads over seeds where there are several).
"""

from tfprune.compression.stages import STAGES
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
    dense = [e for e in entries if e["method"] == rows_lib.DENSE and not e.get("stage")]
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
                cells.append("-" if e.get(column) is None else str(e[column]))
            elif kind == "sparsity":
                cells.append("latency" if e.get("target_latency") is not None else
                             "auto" if rows_lib.chooses_sparsity(e) else
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
        return r["seed"], r["method"], schedule, r["target_sparsity"], r.get("target_latency")

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


def _accuracy_quantization(entries):
    """The quantization layer-wise and uniform pruning are compared at: float32 when measured."""
    quantizations = [e["quantization"] for e in entries]
    return "float32" if "float32" in quantizations else (quantizations[0] if quantizations else None)


def layer_sparsity_lines(entries):
    """Per method, schedule and target: the accuracy of each way of spreading the target over
    the layers (uniform, auto, global), side by side, and which won."""
    quantization = _accuracy_quantization(entries)
    groups = {}
    for e in entries:
        if e["method"] != rows_lib.DENSE and e["quantization"] == quantization \
                and e["target_sparsity"] is not None:
            groups.setdefault((e["method"], e["schedule"], e["target_sparsity"]), {})[
                e.get("layer_sparsity") or rows_lib.UNIFORM] = e
    groups = {k: v for k, v in groups.items() if len(v) > 1}
    if not groups:
        return []
    kinds = [k for k in ("uniform", "auto", "global") if any(k in v for v in groups.values())]
    lines = [f"TFLite accuracy ({quantization}) at the same global sparsity of the pruned layers' "
             "weights; in brackets the achieved sparsity and the deployed model's non-zero "
             "parameters (for unit pruning they differ between the ways: a layer's pruned units "
             "also remove the next layer's inputs). auto: per-layer targets from one-shot "
             "sensitivity curves (equal accuracy loss); global: one magnitude threshold.", "",
             "| method | schedule | sparsity | " + " | ".join(kinds) + " | best |",
             "|---" * (4 + len(kinds)) + "|"]
    for (method, schedule, target), by_kind in groups.items():
        cells = []
        for kind in kinds:
            e = by_kind.get(kind)
            cells.append("n/a" if e is None else f"{_fmt(e, 'tflite_accuracy', '.2f', 100)}% "
                         f"({_fmt(e, 'achieved_sparsity', '.3f')}; "
                         f"{_fmt(e, 'nonzero_params', ',.0f')} nz)")
        best = max(by_kind, key=lambda k: by_kind[k]["tflite_accuracy"])
        margin = by_kind[best]["tflite_accuracy"] - by_kind.get(
            rows_lib.UNIFORM, by_kind[best])["tflite_accuracy"]
        verdict = best if best == rows_lib.UNIFORM else f"{best} (+{100 * margin:.2f} vs uniform)"
        lines.append(f"| {method} | {schedule} | {target:g} | " + " | ".join(cells)
                     + f" | {verdict} |")
    return lines


def _interpolated(others, latency):
    """The accuracy of the sparsity-targeted variants ``others`` at measured ``latency``, linear
    between the two that bracket it; None outside their range."""
    points = sorted((o["latency_vs_dense"], o["tflite_accuracy"]) for o in others)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= latency <= x1:
            return y0 if x1 == x0 else y0 + (y1 - y0) * (latency - x0) / (x1 - x0)
    return None


def latency_lines(entries):
    """Each latency target's variant against the same method by sparsity (same schedule and
    quantization): the variant nearest in measured latency, and the accuracy of those variants
    interpolated to the same measured latency; the prediction beside the measurement."""
    quantization = _accuracy_quantization(entries)
    ours = [e for e in entries if e.get("target_latency") is not None
            and e["quantization"] == quantization]
    if not ours:
        return []
    lines = [f"TFLite accuracy ({quantization}) of channel pruning to a latency target (channels "
             "chosen by importance lost per microsecond saved, on the measured cost model of "
             "docs/latency.md) against the same method by sparsity (the same fraction of every "
             "group). 'vs dense': measured latency over the dense model's, all .tflite files "
             "timed together; 'predicted': the cost model's ratio for the shrunk model. 'nearest': "
             "the variant by sparsity nearest in measured latency; 'at the same latency': the "
             "variants by sparsity interpolated linearly to the latency target's measured "
             "latency (n/a outside their range); the difference is against it where there is "
             "one, else against the nearest.", "",
             "| method | schedule | latency target | predicted | vs dense | TFLite acc % "
             "| nearest by sparsity | its vs dense | its TFLite acc % | by sparsity at the same "
             "latency, acc % | difference |",
             "|---" * 11 + "|"]
    for e in ours:
        others = [o for o in entries if o["method"] == e["method"]
                  and o["schedule"] == e["schedule"] and o["quantization"] == quantization
                  and o.get("target_latency") is None and o["target_sparsity"] is not None
                  and o.get("latency_vs_dense") is not None]
        mine = [e["method"], e["schedule"], e["target_latency"],
                _fmt(e, "predicted_latency_ratio", ".3f"), _fmt(e, "latency_vs_dense", ".3f"),
                _fmt(e, "tflite_accuracy", ".2f", 100)]
        if e.get("latency_vs_dense") is None or not others:
            lines.append("| " + " | ".join(mine + ["n/a"] * 5) + " |")
            continue
        near = min(others, key=lambda o: abs(o["latency_vs_dense"] - e["latency_vs_dense"]))
        same = _interpolated(others, e["latency_vs_dense"])
        reference = near["tflite_accuracy"] if same is None else same
        lines.append("| " + " | ".join(mine + [
            f"{near['target_sparsity']:g}", _fmt(near, "latency_vs_dense", ".3f"),
            _fmt(near, "tflite_accuracy", ".2f", 100),
            "n/a" if same is None else f"{100 * same:.2f}",
            f"{100 * (e['tflite_accuracy'] - reference):+.2f} points"]) + " |")
    return lines


def stage_lines(entries):
    """Every variant with compression stages (compression/stages.py): its float32 and
    post-training int8 models beside each stage's int8 model (and a clustered model's float32):
    TFLite accuracy, raw and gzip size, non-zeros, unique values per kernel; where int8 PTQ
    loses more than STAGE_LOSS_POINTS against float32, how much of that loss each
    quantization-aware stage recovers, and that it recovered less than half where it did."""
    by_variant = {}
    for e in entries:
        key = tuple(e.get(k) for k in rows_lib.KEY[:-2])  # the variant without stage and quant
        by_variant.setdefault(key, {})[(e.get("stage"), e["quantization"])] = e
    lines = []
    for found in by_variant.values():
        if not any(stage for stage, _ in found):
            continue
        name = rows_lib.label(dict(next(iter(found.values())), stage=None,
                                   quantization="")).strip()
        float32, ptq = found.get((None, "float32")), found.get((None, "int8"))
        lines += [f"**{name}**", "",
                  "| model | TFLite acc % | KB | gzip KB | kernel non-zeros in the .tflite | "
                  "unique/kernel | vs int8 PTQ |", "| --- | --- | --- | --- | --- | --- | --- |"]
        order = sorted(found, key=lambda k: (STAGE_ORDER.index(k[0]) if k[0] in STAGE_ORDER
                                             else -1, k[1] != "float32", k[1]))
        for stage, quantization in order:
            e = found[(stage, quantization)]
            versus = "" if ptq is None or e is ptq or quantization != "int8" else \
                f"{100 * (e['tflite_accuracy'] - ptq['tflite_accuracy']):+.2f} points"
            lines.append(
                f"| {(stage or 'PTQ') + ' ' + quantization} | "
                f"{_fmt(e, 'tflite_accuracy', '.2f', 100)} | {_fmt(e, 'size_bytes', '.1f', 1 / 1024)}"
                f" | {_fmt(e, 'gzip_bytes', '.1f', 1 / 1024)} | {_fmt(e, 'kernel_nonzeros', '.0f')}"
                f" | {_fmt(e, 'max_unique', '.0f')} | {versus} |")
        lines.append("")
        if float32 is not None and ptq is not None:
            loss = float32["tflite_accuracy"] - ptq["tflite_accuracy"]
            if 100 * loss <= STAGE_LOSS_POINTS:
                lines.append(f"int8 PTQ {_change(loss)} against float32 (at most "
                             f"{STAGE_LOSS_POINTS:g} lost): nothing for QAT to recover.")
            for stage, quantization in order:
                if stage not in QUANTIZE_AWARE or quantization != "int8" \
                        or 100 * loss <= STAGE_LOSS_POINTS:
                    continue
                gained = found[(stage, quantization)]["tflite_accuracy"] - ptq["tflite_accuracy"]
                share = gained / loss
                lines.append(
                    f"int8 PTQ loses {100 * loss:.2f} points against float32; {stage} int8 "
                    f"recovers {100 * gained:+.2f} ({share:.0%} of the loss)"
                    + ("." if share >= 0.5 else ": **less than half**."))
            lines.append("")
    return lines


def _change(loss):
    return f"loses {100 * loss:.2f} points" if loss > 0 else \
        f"loses nothing ({100 * -loss:+.2f} points)"


# The stages in report order: as registered, each plain before its sparsity-preserving twin.
STAGE_ORDER = [name for stage in STAGES.entries() for name in stage.names]
QUANTIZE_AWARE = [name for stage in STAGES.entries() if stage.quantize for name in stage.names]
# Where int8 PTQ loses more than this against float32 (points), the report says how much of it
# each quantization-aware stage recovers.
STAGE_LOSS_POINTS = 0.5


def mixed_lines(entries):
    """Mixed int4/int8 next to all-int8 (dynamic range) and all-int4 for every variant that has
    it: accuracy, raw and gzip size, and which layers got int4; says where mixed is not both
    smaller than int8 and more accurate than int4."""
    by_variant = {}
    for e in entries:
        key = tuple(e.get(k) for k in rows_lib.KEY[:-1])
        by_variant.setdefault(key, {})[e["quantization"]] = e
    lines = []
    for key, q in by_variant.items():
        if "mixed" not in q:
            continue
        name = rows_lib.label(dict(q["mixed"], quantization="")).strip()
        parts = []
        for kind in ("dynamic", "int8", "int4", "mixed"):
            if kind in q:
                e = q[kind]
                parts.append(f"{kind} {_fmt(e, 'tflite_accuracy', '.2f', 100)}%, "
                             f"{e['size_bytes'] / 1024:.1f} KB ({e['gzip_bytes'] / 1024:.1f} KB "
                             "gzip)")
        mixed = q["mixed"]
        layers = mixed.get("int4_layers") or []
        notes = []
        int8 = q.get("dynamic") or q.get("int8")
        if int8 and mixed["size_bytes"] >= int8["size_bytes"]:
            notes.append("NOT smaller than int8")
        if "int4" in q and mixed["tflite_accuracy"] <= q["int4"]["tflite_accuracy"]:
            notes.append("NOT more accurate than all-int4")
        lines.append(f"- {name}: " + "; ".join(parts) + f". int4 layers "
                     f"({_fmt(mixed, 'int4_fraction', '.0%') if mixed.get('int4_fraction') is not None else 'n/a'} "
                     f"of the weights): {', '.join(layers) or 'none'}"
                     + (f". **{'; '.join(notes)}.**" if notes else "."))
    return lines


def hybrid_lines(entries):
    """The hybrid recipe (layer-wise auto pruning + fine-tuning + mixed int4/int8) against uniform
    pruning at int8 (dynamic range) and at int4, per method, schedule and target."""
    index = {(e["method"], e["schedule"], e["target_sparsity"], e.get("layer_sparsity"),
              e["quantization"]): e for e in entries}
    lines = []
    for (method, schedule, target, layers, quantization), hybrid in index.items():
        if layers != "auto" or quantization != "mixed":
            continue
        parts = [f"hybrid {_fmt(hybrid, 'tflite_accuracy', '.2f', 100)}% at "
                 f"{hybrid['gzip_bytes'] / 1024:.1f} KB gzip"]
        for kind in ("dynamic", "int4"):
            other = index.get((method, schedule, target, rows_lib.UNIFORM, kind))
            if other:
                parts.append(f"uniform {kind} {_fmt(other, 'tflite_accuracy', '.2f', 100)}% at "
                             f"{other['gzip_bytes'] / 1024:.1f} KB gzip")
        lines.append(f"- {method} {schedule} {target:g}: " + "; ".join(parts) + ".")
    return lines


def render(title, status, setup, entries, rows, plot_files, stage_times, seeds, drift=None):
    """report.md's text. ``setup``: lines describing the run; ``plot_files``: names under plots/;
    ``drift``: the visualize job's result, when there is one."""
    decisions = decision_lines(rows)
    plain = [e for e in entries if not e.get("stage")]  # the sections of pruning alone
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
    layer_wise = layer_sparsity_lines(plain)
    if layer_wise:
        text += ["## Layer-wise vs uniform sparsity", "", *layer_wise, ""]
    latency = latency_lines(plain)
    if latency:
        text += ["## Latency targets vs sparsity targets", "", *latency, ""]
    staged = stage_lines(entries)
    if staged:
        text += ["## Compression stages: QAT, clustering and PTQ of the same model", "",
                 "Each stage trains the finished model further (docs/compression.md); "
                 "PTQ is the model as pruned, quantized after training.", "", *staged]
    mixed = mixed_lines(plain)
    if mixed:
        text += ["## Mixed int4/int8 quantization", "",
                 "dynamic: int8 weights (TFLite converter); int4 and mixed: ai-edge-quantizer "
                 "dynamic-range weights from the float32 .tflite, mixed keeping the layers whose "
                 "int4 cost per weight saved is highest at int8. Accuracy on the LiteRT "
                 "interpreter, whole test split.", "", *mixed, ""]
    hybrid = hybrid_lines(plain)
    if hybrid:
        text += ["## Hybrid recipe: layer-wise pruning + mixed int4/int8", "",
                 "Layer-wise (auto) pruning, fine-tuned as every variant is (Setup), then mixed "
                 "int4/int8; against uniform pruning at int8 (dynamic range) and at int4.", "",
                 *hybrid, ""]
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
