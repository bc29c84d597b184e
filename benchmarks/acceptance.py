"""Issue 31's benchmark over keras.applications, the pure part: which runs each model gets, the
acceptance criteria, pass / miss per criterion with the reason of a miss, and the Markdown
table. No TensorFlow: every function reads the per-run records benchmarks/applications.py writes
(one JSON per model and run; see ``record`` for the fields)."""

import collections
import re

from benchmarks.tables import table

# The smallest member of every keras.applications family, as its constructor is named.
MODELS = ("ConvNeXtTiny", "DenseNet121", "EfficientNetB0", "EfficientNetV2B0",
          "InceptionResNetV2", "InceptionV3", "MobileNet", "MobileNetV2", "MobileNetV3Small",
          "MobileNetV3Large", "NASNetMobile", "ResNet50", "ResNet50V2", "VGG16", "Xception")

# (method, target sparsity) of every run; all one-shot (fine_tune_epochs=0).
RUNS = (("channel", 0.3), ("channel", 0.5), ("weight", 0.5))

# Largest shrunk / dense FLOPs a channel run may leave, by target.
MAX_FLOPS_RATIO = {0.3: 0.55, 0.5: 0.30}
MAX_SHRINK_DIFF = 1e-5       # max |shrunk - masked| over the check images
SPARSITY_TOLERANCE = 5e-4    # weight 50% "reaches 0.50": at least 0.4995 on the pruned layers

CRITERIA = ("flops", "shrink_diff", "sparsity", "keras3", "int8")
HEADINGS = {"flops": "FLOPs shrunk / dense", "shrink_diff": "max abs(shrunk - masked)",
            "sparsity": "sparsity of pruned layers", "keras3": "Keras 3 files load alone",
            "int8": "int8 .tflite"}
ERROR_CHARS = 300


def run_name(method, target):
    return f"{method}-{target:g}"


def one_line(error):
    """An exception as one line: its class and the first line of its message, cut short."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = f"{type(error).__name__}: {lines[0] if lines else '(no message)'}"
    return text if len(text) <= ERROR_CHARS else text[:ERROR_CHARS - 3] + "..."


def blocked_summary(skipped_layers, groups, prunable_groups, top=2):
    """"k of n groups not prunable: 30x <reason>; 5x <reason>" from a channel run's metrics: the
    reasons of its skipped layers (layer names in quotes replaced by '*', so one kind of block
    counts once per layer it stopped), the most frequent first. None when nothing is blocked."""
    if groups is None or prunable_groups is None or groups == prunable_groups:
        return None
    kinds = collections.Counter(re.sub(r"'[^']*'", "'*'", why)
                                for why in (skipped_layers or {}).values())
    text = f"{groups - prunable_groups} of {groups} groups not prunable"
    if kinds:
        text += ": " + "; ".join(f"{n}x {why}" for why, n in kinds.most_common(top))
        if len(kinds) > top:
            text += f"; {len(kinds) - top} other kinds"
    return text


def applies(criterion, method):
    """Whether ``criterion`` is asked of a run of ``method``."""
    if criterion in ("flops", "shrink_diff"):
        return method == "channel"
    if criterion == "sparsity":
        return method == "weight"
    return True


def verdicts(record):
    """{criterion: (mark, reason)}: mark "pass", "miss" or "n/a"; a miss has its reason (the
    run's error, the blocked groups, or the measured figure against its limit)."""
    method, target = record["method"], record["target"]
    out = {}
    for criterion in CRITERIA:
        if not applies(criterion, method):
            out[criterion] = ("n/a", None)
        elif record.get("error"):
            out[criterion] = ("miss", f"{record['stage']}: {record['error']}")
        else:
            out[criterion] = _verdict(criterion, record, target)
    return out


def _verdict(criterion, record, target):
    prune = record["prune"]
    if criterion == "flops":
        ratio, limit = prune["flops_ratio"], MAX_FLOPS_RATIO[target]
        if ratio <= limit:
            return "pass", None
        return "miss", prune.get("blocked") or f"{ratio:.3f}x > {limit}x"
    if criterion == "shrink_diff":
        diff = prune["max_abs_diff"]
        return ("pass", None) if diff <= MAX_SHRINK_DIFF else \
            ("miss", f"{diff:.1e} > {MAX_SHRINK_DIFF:.0e}")
    if criterion == "sparsity":
        sparsity = prune["pruned_sparsity"]
        return ("pass", None) if sparsity >= target - SPARSITY_TOLERANCE else \
            ("miss", f"{sparsity:.4f} < {target}")
    step = record.get(criterion) or {}
    if step.get("error"):
        return "miss", step["error"]
    return "pass", None


def misses(record):
    """The criteria a record misses, as "criterion: reason" lines (one line per distinct
    reason: an error that fails every criterion is said once)."""
    said, lines = set(), []
    for criterion, (mark, reason) in verdicts(record).items():
        if mark == "miss":
            lines.append(f"{criterion}: {reason}" if reason not in said else criterion)
            said.add(reason)
    return lines


def _figure(criterion, record):
    prune = record.get("prune") or {}
    if criterion == "flops" and "flops_ratio" in prune:
        return f"{prune['flops_ratio']:.3f}x"
    if criterion == "shrink_diff" and "max_abs_diff" in prune:
        return f"{prune['max_abs_diff']:.1e}"
    if criterion == "sparsity" and "pruned_sparsity" in prune:
        return f"{prune['pruned_sparsity']:.4f}"
    if criterion == "int8" and (record.get("int8") or {}).get("bytes"):
        return f"{record['int8']['bytes'] / 1024:,.0f} KB"
    return ""


def _latency(record):
    latency = record.get("latency") or {}
    if latency.get("error"):
        return "error"
    if "ratio" not in latency:
        return "-"
    return f"{latency['dense_ms']:.2f} / {latency['shrunk_ms']:.2f} ({latency['ratio']:.3f}x)"


def rows(records):
    """One table row per record, in MODELS x RUNS order; marks and figures per criterion."""
    order = {(m, run_name(*r)): i for i, (m, r) in enumerate(
        (m, r) for m in MODELS for r in RUNS)}
    rows_ = []
    for record in sorted(records, key=lambda r: order.get((r["model"], r["run"]), len(order))):
        marks = verdicts(record)
        cells = [record["model"], record["run"]]
        for criterion in CRITERIA:
            mark = marks[criterion][0]
            cells.append("-" if mark == "n/a" else f"{_figure(criterion, record)} {mark}".strip())
        cells += [_latency(record), f"{record['time_s']:.0f}" if record.get("time_s") else "",
                  "<br>".join(misses(record))]
        rows_.append(cells)
    return rows_


def model_summary(records, baselines):
    """{model: {"runs", "passed", "time_s", "missed"}} over the records: a run passes when it
    misses nothing; the time is the baseline's build, its translation (the last measured) and
    every run."""
    out = {}
    for record in records:
        base = baselines.get(record["model"]) or {}
        entry = out.setdefault(record["model"], {
            "runs": 0, "passed": 0, "missed": [],
            "time_s": base.get("build_time_s", 0.0) + base.get("import_time_s", 0.0)})
        entry["runs"] += 1
        entry["time_s"] += record.get("time_s") or 0.0
        if misses(record):
            entry["missed"].append(record["run"])
        else:
            entry["passed"] += 1
    return out


def markdown(records, baselines, latency_note):
    """The benchmark's tables: every run, then every model."""
    header = ["model", "run"] + [HEADINGS[c] for c in CRITERIA] + [
        "float32 latency dense / shrunk ms (ratio)", "run s", "misses: reason"]
    lines = [f"Acceptance: channel 30% <= {MAX_FLOPS_RATIO[0.3]}x dense FLOPs, 50% <= "
             f"{MAX_FLOPS_RATIO[0.5]}x; max abs(shrunk - masked) <= {MAX_SHRINK_DIFF:.0e}; weight "
             f"50% reaches 0.50 on the pruned layers (>= {0.5 - SPARSITY_TOLERANCE}); the Keras 3 "
             "files (pruned, shrunk) load in a fresh process that imports only `keras`; int8 "
             f"conversion of the deployed model succeeds. {latency_note}", ""]
    lines += table(header, rows(records))
    summary = model_summary(records, baselines)
    body = []
    for model in [m for m in MODELS if m in summary] + sorted(set(summary) - set(MODELS)):
        entry, base = summary[model], baselines.get(model) or {}
        body.append([model, "x".join(str(d) for d in base.get("input_shape", [])),
                     f"{base['params']:,}" if base.get("params") else "",
                     f"{entry['passed']} of {entry['runs']}",
                     ", ".join(entry["missed"]) or "-", f"{entry['time_s']:.0f}"])
    lines += table(["model", "input", "params", "runs passed", "runs missed",
                    "time s (build + translation + runs)"], body)
    return "\n".join(lines)


def failed(record):
    """True when the run, or any step after it, ended in an error (``--rerun_failed`` redoes it)."""
    return bool(record.get("error")) or any(
        (record.get(step) or {}).get("error") for step in ("keras3", "int8", "latency"))


def check_models(names):
    """``names`` when every one is in MODELS; else the one-line error listing them."""
    from tfprune.errors import TfpruneError

    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise TfpruneError(f"unknown model(s) {', '.join(unknown)} in `models`; choose from "
                           f"{', '.join(MODELS)}")
    return list(names)
