"""The sensitivity job: which layers can take more pruning, and which can take int4 weights.

``run_sensitivity`` loads (or trains) a baseline, then, with no fine-tuning anywhere:

- one-shot curves of the whole model, every method in ``methods`` over ``sparsities``, on the
  test split (oneshot.csv, plots/oneshot.png): what pruning costs before any retraining;
- per-layer curves (sensitivity.csv, plots/sensitivity_<method>.png): each layer alone pruned
  (weight, unit), or each channel group alone (``channel_groups``), on a validation sample;
- the layer-wise targets those curves give at each of ``targets`` (pruning/allocation.py,
  equalised accuracy loss): layer_sparsity_<method>_<target>.json, ready for
  ``experiments.prune --layer_sparsity=FILE``, with the uniform and global-threshold targets
  beside them;
- per-layer int4 cost (``quantization``): each layer's weights alone at int4, the rest float, on
  the LiteRT interpreter (quantization.csv, plots/quantization.png): what mixed int4/int8
  quantization ranks by;
- report.md; sensitivity.json last (the finished marker). Each stage is saved as it finishes
  (parts/), so an interrupted run resumes after the last finished stage.
"""

import os
import time

from tfprune import io, training
from tfprune.errors import TfpruneError
from tfprune.jobs.prune import load_baseline
from tfprune.jobs.configs.sensitivity import SensitivityConfig  # noqa: F401  (jobs.sensitivity.*)
from tfprune.jobs import runlock
from tfprune.jobs.rundir import prepare_run_dir, read_marker
from tfprune.models import build_model
from tfprune.pruning import allocation, core, oneshot, sensitivity
from tfprune.pruning.options import taken_by
from tfprune.results import plots
from tfprune.results.tables import markdown_table, write_csv
from tfprune.tflite import export, mixed


def _stage(output_dir, name, compute, log):
    """A stage's result from parts/<name>.json, or computed and saved there."""
    path = os.path.join(output_dir, "parts", f"{name}.json")
    found = read_marker(path, log)
    if found is not None:
        log(f"{name}: reused from {path}")
        return found["value"]
    value = io.to_jsonable(compute())
    io.write_json(path, {"value": value})
    return value


def _table(rows, columns, formats):
    return markdown_table(rows, columns, formats) if rows else "(none)\n"


def run_sensitivity(config, output_dir, overwrite=False, log=print, wait=False):
    """Run (or resume) the sensitivity analysis into ``output_dir``; return its summary. The
    job holds ``output_dir``'s lock (runlock.py; ``wait``: wait for another job holding it)."""
    with runlock.hold(output_dir, "sensitivity", wait=wait, log=log):
        return _run_sensitivity(config, output_dir, overwrite, log)


def _run_sensitivity(config, output_dir, overwrite, log):
    training.set_seed(config.seed, config.deterministic)
    data = config.load_data(log)
    # Cheap checks before any training or writing: the layers and channel groups of the model
    # analysed (a baseline file is loaded now; the zoo architecture stands for one to train).
    loaded = None if config.baseline == "train" else load_baseline(config, output_dir, data, log)
    model = loaded.model if loaded else build_model(
        config.model, data.input_shape, data.num_classes, dataset=data.name,
        vocabulary_size=data.vocabulary_size)
    for method in config.layer_methods():
        config.selected(model, method)
    if "channel" in config.methods or config.channel_groups:
        core.prunable_groups(model)
    same_run = prepare_run_dir(output_dir, config.record(), overwrite=overwrite,
                               marker="sensitivity.json")
    summary_path = os.path.join(output_dir, "sensitivity.json")
    if same_run and read_marker(summary_path, log) is not None:
        log(f"{output_dir} already holds this finished run; reusing it")
        return io.read_json(summary_path)
    start = time.perf_counter()
    model = (loaded or load_baseline(config, output_dir, data, log)).model
    for method in config.layer_methods():  # the trained model has the zoo's layers
        config.selected(model, method)
    x_val, y_val = data.numpy("validation", limit=config.samples)
    x_test, y_test = data.numpy("test")
    grid = list(config.sparsities)
    base_val = sensitivity.accuracy(model, x_val, y_val)
    base_test = sensitivity.accuracy(model, x_test, y_test)
    log(f"baseline accuracy: validation sample {base_val:.4f} ({len(y_val)} images), test "
        f"{base_test:.4f}")
    plot_dir = os.path.join(output_dir, "plots")

    layer_options = dict(layers=config.layers, prune_classifier=config.prune_classifier,
                         prune_first_conv=config.prune_first_conv)
    oneshot_curves = {m: _stage(output_dir, f"oneshot_{m}", lambda m=m: sensitivity.model_curve(
        model, m, grid, x_test, y_test, log=log, **taken_by(m, layer_options)), log)
        for m in config.methods}
    write_csv(os.path.join(output_dir, "oneshot.csv"),
              [{"method": m, "sparsity": s, "test_accuracy": a, "accuracy_drop": base_test - a}
               for m, values in oneshot_curves.items() for s, a in zip(grid, values)])
    plots.plot_curves(oneshot_curves, grid, os.path.join(plot_dir, "oneshot.png"),
                      f"{config.model} on {config.dataset}: one-shot pruning, no fine-tuning "
                      f"({len(y_test)} test images)", "test accuracy", reference=base_test)

    layer_rows, layer_curves, allocations = [], {}, []
    for method in config.layer_methods() + (["channel"] if config.channel_groups else []):
        if method == "channel":
            curves = _stage(output_dir, "groups", lambda: sensitivity.group_curves(
                model, grid, x_val, y_val, log=log), log)
            weights = {}
        else:
            layers = config.selected(model, method)
            curves = _stage(output_dir, f"layers_{method}", lambda m=method, ls=layers:
                            sensitivity.layer_curves(model, m, ls, grid, x_val, y_val, log=log),
                            log)
            weights = oneshot.layer_weights(model, layers)
        layer_curves[method] = curves
        for name, values in curves.items():
            layer_rows += [{"method": method, "layer": name, "weights": weights.get(name),
                            "sparsity": s, "accuracy": a, "accuracy_drop": base_val - a}
                           for s, a in zip(grid, values)]
        plots.plot_curves(curves, grid, os.path.join(plot_dir, f"sensitivity_{method}.png"),
                          f"{config.model} on {config.dataset}: each "
                          f"{'channel group' if method == 'channel' else 'layer'} alone, "
                          f"{method} pruning, one-shot", "validation accuracy",
                          reference=base_val)
        if method == "channel":
            continue
        for target in config.targets:
            try:
                auto = allocation.equalize(curves, grid, weights, target)
            except TfpruneError as error:
                log(f"no layer-wise targets for {method} at {target:g}: {error}")
                continue
            path = os.path.join(output_dir, f"layer_sparsity_{method}_{target:g}.json")
            io.write_json(path, {"layer_sparsity": auto, "method": method,
                                 "target_sparsity": target, "source": "auto"})
            glob = allocation.global_magnitude(oneshot.layer_kernels(model, list(curves)),
                                               target, method)
            allocations += [{"method": method, "target": target, "layer": name,
                             "weights": weights[name], "auto": auto[name],
                             "global": glob[name], "uniform": target} for name in curves]
    write_csv(os.path.join(output_dir, "sensitivity.csv"), layer_rows,
              ["method", "layer", "weights", "sparsity", "accuracy", "accuracy_drop"])
    if allocations:
        write_csv(os.path.join(output_dir, "layer_sparsity.csv"), allocations)

    costs, int4_half = {}, []
    if config.quantization:
        float32 = export.to_tflite(model, "float32")
        names = mixed.keras_layers(model)
        costs = _stage(output_dir, "int4_costs", lambda: mixed.layer_costs(
            float32, x_val, y_val, layer_names=names), log)
        _, info = mixed.mixed(float32, mixed.MixedSpec(int4_fraction=0.5), x_val, y_val,
                              layer_names=names, costs=costs)
        int4_half = info["int4_layers"]
        write_csv(os.path.join(output_dir, "quantization.csv"),
                  [dict(layer=name, **value) for name, value in costs.items()])
        plots.plot_layer_costs(costs, os.path.join(plot_dir, "quantization.png"),
                               f"{config.model} on {config.dataset}: each layer alone at int4 "
                               "weights (hatched: int4 in a mixed model at half the weights)",
                               int4_half)
    summary = io.to_jsonable({
        "baseline_validation_accuracy": base_val, "baseline_test_accuracy": base_test,
        "validation_images": len(y_val), "test_images": len(y_test), "sparsities": grid,
        "oneshot": oneshot_curves, "layer_curves": layer_curves, "int4_costs": costs,
        "int4_layers_at_half": int4_half, "time_s": time.perf_counter() - start})
    io.write_text(os.path.join(output_dir, "report.md"),
                  _report(config, summary, allocations))
    io.write_json(summary_path, summary)
    log(f"sensitivity done in {summary['time_s']:.0f}s: {output_dir}/report.md")
    return summary


def _report(config, summary, allocations):
    grid = summary["sparsities"]
    oneshot_rows = [dict({"sparsity": f"{100 * s:g}%"},
                         **{m: values[i] for m, values in summary["oneshot"].items()})
                    for i, s in enumerate(grid)]
    lines = [
        f"# Sensitivity: {config.model} on {config.dataset}", "",
        f"Baseline test accuracy {summary['baseline_test_accuracy']:.4f} "
        f"({summary['test_images']} images); validation-sample accuracy "
        f"{summary['baseline_validation_accuracy']:.4f} ({summary['validation_images']} images, "
        f"seed {config.seed}, split seed {config.split_seed}). No fine-tuning anywhere: these are "
        "the costs before retraining, which recovers much of them.", "",
        "## One-shot pruning of the whole model (test accuracy)", "",
        "![one-shot](plots/oneshot.png)", "",
        _table(oneshot_rows, ["sparsity"] + list(summary["oneshot"]),
               {m: ".4f" for m in summary["oneshot"]}),
        "## Each layer alone (validation accuracy)", ""]
    for method in summary["layer_curves"]:
        lines += [f"![{method}](plots/sensitivity_{method}.png)", ""]
    if allocations:
        lines += ["## Layer-wise targets from the curves", "",
                  "auto: every layer pruned as far as one common accuracy loss allows, meeting "
                  "the global target over the pruned layers' weights; global: one magnitude "
                  "threshold over all of them; uniform: every layer at the target. Files: "
                  "layer_sparsity_<method>_<target>.json (for `--layer_sparsity=FILE`).", "",
                  _table(allocations, ["method", "target", "layer", "weights", "uniform",
                                       "auto", "global"],
                         {"auto": ".3f", "global": ".3f", "uniform": "g", "target": "g"})]
    if summary["int4_costs"]:
        rows = [dict(layer=n, **v) for n, v in summary["int4_costs"].items()]
        lines += ["## Each layer alone at int4 weights (LiteRT interpreter, validation sample)",
                  "", "![int4](plots/quantization.png)", "",
                  _table(rows, ["layer", "params", "accuracy", "accuracy_drop", "output_error"],
                         {"accuracy": ".4f", "accuracy_drop": "+.4f", "output_error": ".2e",
                          "params": ","}),
                  "A mixed int4/int8 model at half its weights in int4 puts these layers at "
                  f"int4: {', '.join(summary['int4_layers_at_half']) or 'none'}.", ""]
    return "\n".join(lines) + "\n"
