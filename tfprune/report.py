"""Tables (CSV / JSON / Markdown) and matplotlib plots. Every file is written atomically."""

import os

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402,F401

from tfprune import io  # noqa: E402


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
        if key in history:
            ax.plot(epochs, history[key], label=f"train {key}")
        if f"val_{key}" in history:
            ax.plot(epochs, history[f"val_{key}"], label=f"validation {key}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.set_title(f"{key} per epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    return save_figure(fig, path)


def write_csv(path, rows, columns=None):
    """Rows (dicts) as CSV; columns default to the keys of the first row, in order."""
    import csv
    import io as _io

    columns = columns or (list(rows[0]) if rows else [])
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    io.write_text(path, buffer.getvalue())
    return path


def _csv_value(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return "" if value is None else value


def plot_layer_sparsity(rows, path, target=None, title="sparsity per layer"):
    """Bar chart of each layer's achieved weight sparsity (and units kept), target marked."""
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(rows) + 2), 4))
    names = [r["layer"] for r in rows]
    values = [r["sparsity"] for r in rows]
    bars = ax.bar(range(len(rows)), values, color=["tab:blue" if r.get("pruned", True) else
                                                   "tab:gray" for r in rows])
    for bar, row in zip(bars, rows):
        ax.annotate(f"{row['units_kept']}/{row['units']}", (bar.get_x() + bar.get_width() / 2,
                    bar.get_height()), ha="center", va="bottom", fontsize=7)
    if target is not None:
        ax.axhline(target, color="tab:red", linestyle="--", label=f"target {target:g}")
        ax.legend(loc="upper left")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("layer (grey: left dense; label: units kept / units)")
    ax.set_ylabel("weight sparsity")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def markdown_table(rows, columns, formats=None):
    """A GitHub Markdown table; ``formats`` maps a column to a format spec or a callable."""
    formats = formats or {}

    def cell(column, value):
        spec = formats.get(column)
        if value is None:
            return ""
        if callable(spec):
            return spec(value)
        if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, spec)
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(c, row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def plot_sparsity_history(history, path, title="sparsity per layer over training"):
    """Lines of each layer's sparsity at every check of a dynamic pruner."""
    fig, ax = plt.subplots(figsize=(7, 4))
    layers = list(history[0]["sparsity"]) if history else []
    epochs = [h["epoch"] for h in history]
    for layer in layers:
        ax.plot(epochs, [h["sparsity"][layer] for h in history], marker="o", markersize=3,
                label=layer, drawstyle="steps-post")
    ax.set_xlabel("epoch (0: before fine-tuning)")
    ax.set_ylabel("sparsity (fraction of units / weights pruned)")
    ax.set_ylim(-0.02, 1.0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if layers:
        ax.legend(fontsize=8)
    return save_figure(fig, path)
