"""Every plot tfprune draws (matplotlib, Agg), each written atomically to the path it is given."""

import os

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401

from tfprune import io  # noqa: E402
from tfprune.results import rows as rows_lib  # noqa: E402
from tfprune.results.tables import pareto_front  # noqa: E402


def save_figure(fig, path):
    with io.atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_history(history, path, title="training"):
    """Loss and accuracy per epoch, training vs validation."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = range(1, len(history.get("loss", [])) + 1)
    for key, ax in (("loss", ax_loss), ("accuracy", ax_acc)):
        # Markers, as in plot_sparsity_history: a one-epoch run is a point, which a bare line
        # does not draw.
        if key in history:
            ax.plot(epochs, history[key], marker="o", markersize=3, label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], marker="o", markersize=3,
                    label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(f"{key} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return save_figure(fig, path)


def touched_layers(rows, structured=False):
    """Per layers.csv row, whether pruning changed the layer: chosen for pruning, or (for a
    structured method) shrunk as a member of a pruned group, like a depthwise conv or a
    LayerScale between pruned producers. The rest were left untouched."""
    return [bool(r.get("pruned", True)) or
            (structured and r.get("units_after_shrink", r["units"]) < r["units"]) for r in rows]


def plot_layer_sparsity(rows, path, target=None, title="sparsity per layer", structured=False):
    """Bar chart per layer, target marked: the fraction of weights pruned, or for a structured
    method (``structured``) the fraction of units / channels removed by shrink, which is what
    its target counts (a layer that also loses input channels is sparser than that in weights).
    Labels: units kept / units."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(rows) + 2), 4))
    names = [r["layer"] for r in rows]
    if structured:
        kept = [r["units_after_shrink"] for r in rows]
        values = [1.0 - k / r["units"] if r["units"] else 0.0 for k, r in zip(kept, rows)]
    else:
        kept = [r["units_kept"] for r in rows]
        values = [r["sparsity"] for r in rows]
    bars = ax.bar(range(len(rows)), values, color=["tab:blue" if t else "tab:gray"
                                                   for t in touched_layers(rows, structured)])
    for bar, row, k in zip(bars, rows, kept):
        ax.annotate(f"{k}/{row['units']}", (bar.get_x() + bar.get_width() / 2,
                    bar.get_height()), ha="center", va="bottom", fontsize=7)
    if target is not None:
        ax.axhline(target, color="tab:red", linestyle="--", label=f"target {target:g}")
        ax.legend(loc="upper left")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("layer (grey: untouched; label: units kept / units)")
    ax.set_ylabel("units / channels removed (fraction)" if structured else "weight sparsity")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def _short_label(name, limit=32):
    """A legend label: a channel group named by its producers ('a+b+c') is shown as its first
    producer and how many more share it."""
    parts = name.split("+")
    if len(name) <= limit or len(parts) == 1:
        return name
    return f"{parts[0]} +{len(parts) - 1} (group)"


def plot_sparsity_history(history, path, title="sparsity per layer over training"):
    """Lines of each layer's (or channel group's) sparsity at every check of a deciding pruner;
    the legend beside the axes, so it never hides a line."""
    layers = list(history[0]["sparsity"]) if history else []
    fig, ax = plt.subplots(figsize=(9 if len(layers) > 6 else 7, 4))
    epochs = [h["epoch"] for h in history]
    for layer in layers:
        ax.plot(epochs, [h["sparsity"][layer] for h in history], marker="o", markersize=3,
                label=_short_label(layer), drawstyle="steps-post")
    ax.set_xlabel("epoch (0: before fine-tuning)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("fraction pruned (channels / units / weights)")
    ax.set_ylim(-0.02, 1.0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if layers:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    return save_figure(fig, path)


LAYER_MARKERS = {"auto": "^", "global": "s"}  # layer-wise variants in accuracy vs sparsity
QUANT_MARKERS = {"float32": "o", "float16": "s", "dynamic": "^", "int8": "D", "int4": "v",
                 "mixed": "P"}
METHOD_COLORS = {"dense": "black", "weight": "tab:blue", "unit": "tab:orange",
                 "dynamic": "tab:green", "incremental": "tab:purple", "adaptive": "tab:brown",
                 "channel": "tab:cyan", "channel latency": "tab:pink"}


def _color(method):
    return METHOD_COLORS.get(method, f"C{abs(hash(method)) % 10}")


def plot_accuracy_vs_sparsity(entries, path, quantization):
    """One panel per schedule; x is the achieved sparsity of the pruned layers. Methods without
    a schedule (dynamic, incremental, adaptive) appear in every panel."""
    schedules = sorted({e["schedule"] for e in entries if e["method"] != rows_lib.DENSE} - {rows_lib.NO_SCHEDULE}) or [rows_lib.NO_SCHEDULE]
    dense = [e for e in entries if e["method"] == rows_lib.DENSE and e["quantization"] == quantization
             and not e.get("stage")]
    fig, axes = plt.subplots(1, len(schedules), figsize=(6 * len(schedules), 4.5), sharey=True,
                             squeeze=False)
    for ax, schedule in zip(axes[0], schedules):
        # One line per method and per way of spreading the target over the layers: uniform,
        # auto and global variants of one method are different curves, not one zigzag.
        # A latency target's variants are a curve of their own ("channel latency").
        lines = sorted({(rows_lib.series(e), e.get("layer_sparsity") or rows_lib.UNIFORM)
                        for e in entries} - {(rows_lib.DENSE, rows_lib.UNIFORM)},
                       key=lambda line: (line[0], line[1] != rows_lib.UNIFORM, line[1]))
        for method, layers in lines:
            points = sorted((e for e in entries if rows_lib.series(e) == method and
                             (e.get("layer_sparsity") or rows_lib.UNIFORM) == layers and
                             e["schedule"] in (schedule, rows_lib.NO_SCHEDULE) and e["quantization"] == quantization),
                            key=lambda e: e["achieved_sparsity"])
            if points:
                auto = points[0]["schedule"] == rows_lib.NO_SCHEDULE
                uniform = layers == rows_lib.UNIFORM
                ax.errorbar([p["achieved_sparsity"] for p in points],
                            [100 * p["tflite_accuracy"] for p in points],
                            xerr=[p["achieved_sparsity_std"] for p in points],
                            yerr=[100 * p["tflite_accuracy_std"] for p in points],
                            marker="*" if auto else ("o" if uniform else LAYER_MARKERS[layers]),
                            markersize=10 if auto else 6,
                            linestyle=":" if auto else ("-" if uniform else "--"), capsize=3,
                            color=_color(method),
                            label=f"{points[0]['method']} pruning"
                            + (" to a latency target" if points[0].get("target_latency")
                               is not None else "")
                            + (" (no schedule)" if auto else "")
                            + ("" if uniform else f", layer-wise {layers}"))
        if dense:
            ax.axhline(100 * dense[0]["tflite_accuracy"], color="black", linestyle=":",
                       label="dense baseline")
        ax.set_title(f"{schedule} schedule" if schedule != rows_lib.NO_SCHEDULE else "methods without a schedule")
        ax.set_xlabel("achieved sparsity of the pruned layers (weights, units or channels)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    axes[0][0].set_ylabel(f"test accuracy on the TFLite interpreter, {quantization} (%)")
    fig.suptitle(f"Accuracy vs sparsity ({quantization} .tflite; error bars: std over seeds)")
    return save_figure(fig, path)


def plot_tradeoff(entries, cost, path, xlabel, title, scale=1.0, log_x=True):
    fig, ax = plt.subplots(figsize=(8, 5.5))
    seen = set()
    for e in (e for e in entries if e.get(cost) is not None):
        name = (rows_lib.series(e), e["quantization"])
        ax.errorbar(e[cost] * scale, 100 * e["tflite_accuracy"],
                    yerr=100 * e["tflite_accuracy_std"], xerr=e.get(cost + "_std", 0) * scale,
                    marker=QUANT_MARKERS.get(e["quantization"], "o"), color=_color(name[0]),
                    linestyle="none", alpha=0.8, markersize=6,
                    label=f"{name[0]}, {e['quantization']}" if name not in seen else None)
        seen.add(name)
    front = pareto_front(entries, cost)
    ax.plot([e[cost] * scale for e in front], [100 * e["tflite_accuracy"] for e in front],
            color="tab:red", linewidth=1.5, drawstyle="steps-post", label="Pareto front")
    for e in front:
        ax.annotate(rows_lib.label(e), (e[cost] * scale, 100 * e["tflite_accuracy"]), fontsize=6,
                    xytext=(4, -10), textcoords="offset points")
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy on the TFLite interpreter (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    return save_figure(fig, path)


def plot_trials(rows, best, path, size_measure="gzip", max_size_kb=None, tuner="random"):
    """Accuracy vs size over a search's trials, the best marked, the budget as a line."""
    fig, ax = plt.subplots(figsize=(7.5, 5))
    for within, marker, name in ((True, "o", "within budget"), (False, "x", "over budget")):
        chosen = [r for r in rows if r["within_budget"] == within]
        if chosen:
            ax.scatter([r["size_kb"] for r in chosen], [100 * r["tflite_accuracy"] for r in chosen],
                       marker=marker, s=40, label=f"trials {name}")
    if best:
        ax.scatter([best["size_kb"]], [100 * best["tflite_accuracy"]], s=250, facecolors="none",
                   edgecolors="tab:red", linewidths=2, label=f"best: trial {best['trial_id']}")
    if max_size_kb:
        ax.axvline(max_size_kb, color="tab:red", linestyle="--",
                   label=f"budget {max_size_kb:g} KB")
    ax.set_xlabel(f"{size_measure} size of the .tflite (KB)")
    ax.set_ylabel("test accuracy on the TFLite interpreter (%)")
    ax.set_title(f"{tuner} search: accuracy vs size over {len(rows)} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def _show_image(ax, image, cmap="gray"):
    """An image at a readable size: small inputs shown without smoothing."""
    image = image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image
    ax.imshow(image, cmap=cmap if image.ndim == 2 else None, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_attribution_grid(images, labels, columns, path, title, class_names=None):
    """Rows: the same images; columns: the image, then each model's map over it.

    ``columns`` maps a model's name to (maps (N, H, W), predicted classes (N,), confidences
    (N,)); under each map its prediction and confidence, red when it is not the label."""
    import numpy as np

    names = list(columns)
    n = len(images)
    fig, axes = plt.subplots(n, len(names) + 1, figsize=(1.6 * (len(names) + 1), 1.75 * n),
                             squeeze=False)
    name_of = (lambda c: class_names[c]) if class_names else str
    for row, image in enumerate(images):
        ax = axes[row, 0]
        _show_image(ax, np.asarray(image))
        ax.set_xlabel(f"label {name_of(int(labels[row]))}", fontsize=7)
        for col, name in enumerate(names, 1):
            maps, predicted, confidence = columns[name]
            ax = axes[row, col]
            _show_image(ax, np.asarray(image), cmap="gray")
            ax.imshow(maps[row], cmap="inferno", alpha=0.65, interpolation="nearest",
                      vmin=0.0, vmax=max(float(np.max(maps[row])), 1e-12))
            wrong = int(predicted[row]) != int(labels[row])
            ax.set_xlabel(f"{name_of(int(predicted[row]))} {confidence[row]:.0%}", fontsize=7,
                          color="tab:red" if wrong else "black")
    axes[0, 0].set_title("image", fontsize=8)
    for col, name in enumerate(names, 1):
        axes[0, col].set_title(_short_label(name, 18), fontsize=8)
    _grid_title(fig, title, len(names) + 1)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return save_figure(fig, path)


def _grid_title(fig, title, columns):
    """A title wrapped to the grid's width, kept clear of the column titles."""
    import textwrap

    lines = textwrap.wrap(title, max(24, 16 * columns))
    height = fig.get_size_inches()[1]
    fig.suptitle("\n".join(lines), fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 1 - (0.25 + 0.18 * len(lines)) / height))


def plot_class_models(models, path, title, class_names=None):
    """One row per model, one column per class: its class-model image (each scaled to its own
    range). ``models`` maps a model's name to a list of (H, W, C) images, one per class."""
    import numpy as np

    names = list(models)
    classes = len(next(iter(models.values())))
    fig, axes = plt.subplots(len(names), classes, figsize=(1.2 * classes, 1.35 * len(names)),
                             squeeze=False)
    for row, name in enumerate(names):
        for c, image in enumerate(models[name]):
            image = np.asarray(image, dtype=float)
            low, high = image.min(), image.max()
            _show_image(axes[row, c], (image - low) / (high - low) if high > low else image * 0)
            if row == 0:
                axes[row, c].set_title(class_names[c] if class_names else str(c), fontsize=7)
        axes[row, 0].set_ylabel(_short_label(name, 18), fontsize=7)
    _grid_title(fig, title, classes)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return save_figure(fig, path)


def plot_drift_vs_sparsity(rows, path, title):
    """How far each variant's maps moved from its dense model's, against the fraction of the
    dense model's parameters it no longer has: one panel per measure (saliency and Grad-CAM
    Spearman correlation, prediction change), one line per method and schedule (means over
    seeds; colour: method, dashed: polynomial schedule); a method that chooses its sparsity is
    a star. ``rows``: the visualize job's drift
    rows (references included: they are the point at 0 removed)."""
    import numpy as np

    panels = [("saliency_spearman", "saliency: Spearman with dense"),
              ("grad_cam_spearman", "Grad-CAM: Spearman with dense"),
              ("prediction_change", "predicted class changed (%)")]
    panels = [(k, t) for k, t in panels if any(r.get(k) is not None for r in rows)]
    groups = {}
    for r in rows:
        if r["method"] == rows_lib.DENSE:
            continue
        series = r["method"] if not r.get("schedule") else f"{r['method']} {r['schedule']}"
        groups.setdefault(series, {}).setdefault(r.get("target_sparsity"), []).append(r)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], panels):
        scale = 100 if key == "prediction_change" else 1
        for series, by_target in sorted(groups.items()):
            points = sorted((np.mean([r["params_removed"] for r in rs]),
                             np.mean([r[key] for r in rs]) * scale, target is None)
                            for target, rs in by_target.items())
            auto = all(p[2] for p in points)
            method, _, schedule = series.partition(" ")
            ax.plot([100 * p[0] for p in points], [p[1] for p in points],
                    marker="*" if auto else "o", markersize=11 if auto else 6,
                    linestyle="none" if auto else ("--" if schedule == "polynomial" else "-"),
                    label=series, color=_color(method))
        ax.plot([0], [scale if key != "prediction_change" else 0], marker="s", color="black",
                linestyle="none", label="dense (reference)")
        ax.set_xlabel("parameters removed vs dense (%)")
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return save_figure(fig, path)


def plot_curves(curves, sparsities, path, title, ylabel="accuracy", reference=None):
    """One line per curve over sparsity (sensitivity: one per layer or channel group; one-shot:
    one per method); ``reference`` (the unpruned accuracy) as a dashed line."""
    fig, ax = plt.subplots(figsize=(8, 5))
    cmap = plt.get_cmap("viridis" if len(curves) > 10 else "tab10")
    for i, (name, values) in enumerate(curves.items()):
        color = cmap(i / max(len(curves) - 1, 1)) if len(curves) > 10 else cmap(i)
        ax.plot([100 * s for s in sparsities], values, marker="o", markersize=3,
                color=color, label=_short_label(name, 28))
    if reference is not None:
        ax.axhline(reference, color="gray", linestyle="--", linewidth=1, label="unpruned")
    ax.set_xlabel("sparsity (%)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(curves) > 8:  # many layers: the legend beside the axes, not over the curves
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        ax.legend(fontsize=7, loc="lower left")
    return save_figure(fig, path)


def plot_layer_costs(costs, path, title, int4_layers=()):
    """Per layer, the cost of its weights alone at int4: accuracy drop (bars) and mean output
    error (line); layers a mixed model put at int4 hatched."""
    names = list(costs)
    fig, ax = plt.subplots(figsize=(max(6, 0.5 * len(names) + 2), 4.5))
    drops = [100 * costs[n]["accuracy_drop"] for n in names]
    bars = ax.bar(range(len(names)), drops, color="tab:orange", label="accuracy drop (points)")
    for bar, name in zip(bars, names):
        if name in int4_layers:
            bar.set_hatch("//")
    ax.set_ylabel("accuracy drop with this layer at int4 (points)")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([_short_label(n, 20) for n in names], rotation=60, ha="right", fontsize=7)
    other = ax.twinx()
    other.plot(range(len(names)), [costs[n]["output_error"] for n in names], color="tab:blue",
               marker="o", label="mean |softmax difference|")
    other.set_ylabel("mean |softmax difference| vs float")
    handles = [bars] + other.get_lines()
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper left")
    ax.set_title(title)
    ax.grid(alpha=0.3, axis="y")
    return save_figure(fig, path)
