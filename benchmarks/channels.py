"""Channel groups on a residual net: criteria, uniform vs global ratio at the same FLOPs, and the
deciding methods at channel vs unit granularity, all from one baseline.

    .venv/bin/python -m benchmarks.channels --dataset=fashion_mnist --model=resnet20 \\
        --output_dir=benchmarks/channels

Trains (or reuses) the baseline, then runs each configuration with experiments.prune's job into
<output_dir>/<name>/ (a finished run is reused on a rerun) and writes results.json and
results.md. The global ratio is chosen so that its one-shot FLOPs on the baseline match the
uniform ratio's (bisection over the ratio); since the global selection moves during fine-tuning,
a second uniform run is then made at the uniform ratio whose FLOPs come closest to what the
global run ended with, so the two are also compared at the FLOPs actually reached.
"""

import os

from absl import flags

from tfprune.cli import common
from tfprune import io
from tfprune.jobs.prune import PruneConfig, run_prune
from tfprune.jobs.train import TrainConfig, model_path, train_baseline
from tfprune.models import load_model
from tfprune.pruning import channels, stats
from tfprune.pruning.groups import channel_groups

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "fashion_mnist", "Data set.")
flags.DEFINE_string("model", "resnet20", "Model from the zoo.")
flags.DEFINE_float("sparsity", 0.5, "Channel sparsity of the uniform runs.")
flags.DEFINE_string("output_dir", "benchmarks/channels", "Where the runs and results go.")
flags.DEFINE_list("runs", None, "Names of the runs to do (default: all).")


def one_shot_flops(model, ratio, mode, criterion="l2"):
    """FLOPs of ``model`` shrunk at ``ratio`` in one shot, over its dense FLOPs."""
    groups = channel_groups(model)
    keep = channels.select(groups, channels.importance(model, groups, criterion), ratio, mode)
    thin = channels.shrink(model, groups, keep).model
    return stats.summarize(thin)["flops"] / stats.summarize(model)["flops"]


def matching_global_ratio(model, target_flops, low=0.05, high=0.95, steps=14):
    """The global ratio whose one-shot FLOPs come closest to ``target_flops`` (bisection)."""
    for _ in range(steps):
        middle = (low + high) / 2
        if one_shot_flops(model, middle, "global") > target_flops:
            low = middle
        else:
            high = middle
    return round((low + high) / 2, 4)


def matching_uniform_ratio(model, target_flops):
    """The uniform ratio (grid of 0.005) whose FLOPs come closest to ``target_flops``."""
    grid = [round(0.3 + 0.005 * i, 3) for i in range(101)]
    return min(grid, key=lambda r: abs(one_shot_flops(model, r, "uniform") - target_flops))


def runs(sparsity, global_ratio):
    channel = dict(method="channel", schedule="polynomial", target_sparsity=sparsity)
    # In the order they are worth waiting for.
    return {
        "l2-global-same-flops": dict(channel, selection="global", target_sparsity=global_ratio),
        "l2-uniform-same-flops": None,  # made right after the global run, at its final FLOPs
        "taylor-uniform": dict(channel, criterion="taylor"),
        "incremental-channel": dict(method="incremental", schedule="-", target_sparsity=sparsity,
                                    dynamic={"granularity": "channel"}),
        "dynamic-channel": dict(method="dynamic", schedule="-", target_sparsity=0.0,
                                dynamic={"granularity": "channel"}),
        "l2-uniform": dict(channel),
        "incremental-unit": dict(method="incremental", schedule="-", target_sparsity=sparsity,
                                 dynamic={"granularity": "unit"}),
        "dynamic-unit": dict(method="dynamic", schedule="-", target_sparsity=0.0,
                             dynamic={"granularity": "unit"}),
        "bn_scale-uniform": dict(channel, criterion="bn_scale"),
    }


def row(name, metrics):
    return {"run": name, "baseline_accuracy": metrics["baseline_accuracy"],
            "accuracy": metrics["accuracy"], "change": metrics["accuracy"] - metrics["baseline_accuracy"],
            "sparsity": metrics["pruned_sparsity"],
            "flops": metrics["shrink"]["flops_after"] / metrics["flops"],
            "params": metrics["shrink"]["params_after"],
            "max_abs_diff": metrics["shrink"]["max_abs_diff"],
            "events": metrics.get("pruning_events"),
            "fine_tune_s": metrics["fine_tune_time_s"]}


def markdown(rows):
    lines = ["| run | dense % | pruned % | change | pruned | FLOPs | params | max diff | events | fine-tune s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['run']} | {100 * r['baseline_accuracy']:.2f} | {100 * r['accuracy']:.2f} | "
                     f"{100 * r['change']:+.2f} | {r['sparsity']:.3f} | {r['flops']:.3f} | "
                     f"{r['params']:,} | {r['max_abs_diff']:.1e} | {r['events'] or '-'} | "
                     f"{r['fine_tune_s']:.0f} |")
    return "\n".join(lines) + "\n"


def save(out, global_ratio, uniform_flops, results):
    io.write_json(os.path.join(out, "results.json"),
                  {"global_ratio": global_ratio, "uniform_one_shot_flops": uniform_flops,
                   "rows": results})
    io.write_text(os.path.join(out, "results.md"), markdown(results))
    common.log(markdown(results[-1:]))


def main(argv):
    del argv
    out = FLAGS.output_dir
    base = train_baseline(TrainConfig(dataset=FLAGS.dataset, model=FLAGS.model),
                          os.path.join(out, "baseline"), log=common.log)
    base["model_path"] = model_path(os.path.join(out, "baseline"), base)
    common.log(f"baseline {FLAGS.model} on {FLAGS.dataset}: {base['test_accuracy']:.4f}")
    model = load_model(base["model_path"], "baseline")
    uniform_flops = one_shot_flops(model, FLAGS.sparsity, "uniform")
    global_ratio = matching_global_ratio(model, uniform_flops)
    common.log(f"uniform {FLAGS.sparsity:g}: one-shot FLOPs {uniform_flops:.3f}x; global ratio "
               f"{global_ratio:g} gives {one_shot_flops(model, global_ratio, 'global'):.3f}x")
    results = []
    planned = runs(FLAGS.sparsity, global_ratio)
    for name in list(planned):
        if name == "l2-uniform-same-flops":
            continue
        fields = planned[name]
        if FLAGS.runs and name not in FLAGS.runs:
            continue
        common.log(f"run {name}")
        config = PruneConfig(dataset=FLAGS.dataset, model=FLAGS.model,
                             baseline=base["model_path"], **fields)
        metrics = run_prune(config, os.path.join(out, name), log=common.log).metrics
        results.append(row(name, metrics))
        save(out, global_ratio, uniform_flops, results)
        if name == "l2-global-same-flops" and (not FLAGS.runs or "l2-uniform-same-flops" in FLAGS.runs):
            ratio = matching_uniform_ratio(model, results[-1]["flops"])
            common.log(f"global run ended at {results[-1]['flops']:.3f}x FLOPs; uniform ratio "
                       f"{ratio:g} gives {one_shot_flops(model, ratio, 'uniform'):.3f}x")
            config = PruneConfig(dataset=FLAGS.dataset, model=FLAGS.model,
                                 baseline=base["model_path"], method="channel",
                                 schedule="polynomial", target_sparsity=ratio)
            metrics = run_prune(config, os.path.join(out, "l2-uniform-same-flops"),
                                log=common.log).metrics
            results.append(row("l2-uniform-same-flops", metrics))
            save(out, global_ratio, uniform_flops, results)


if __name__ == "__main__":
    common.run(main)
