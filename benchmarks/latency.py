"""Issue 34: prune to a latency budget, predicted against measured.

    .venv/bin/python -m benchmarks.latency --output_dir=benchmarks/latency \\
        [--models=zoo:resnet20,app:MobileNetV2] [--target_latency=0.5] [--quantization=float32]

Each model is pruned one-shot by the channel method at ``--target_latency`` through the public
interface (method_objects.make_method with tflite.latency.cost_model, then
latency.add_measured). ``zoo:NAME`` is the zoo's model for 28x28x1 inputs (Fashion-MNIST's
shape). ``app:NAME`` is keras.applications' NAME built by Keras 3 (weights=None, 96x96x3, 10
classes, seed 0) and translated. Recorded per model: the kernels' raw sum and the dense model
timed whole (the calibration), the pruned model's prediction, and the dense and shrunk .tflite
timed together (their ratio against the target). One JSON per model and target in
<output_dir>, and results.md with the table. The cost model's table is the usual one
($TFPRUNE_CACHE or ~/.cache/tfprune).
"""

import os
import time

import numpy as np
from absl import app, flags

from tfprune import io

FLAGS = flags.FLAGS


def define_flags():
    """The flags (defined when run as a script: other benchmarks define "models" too, and the
    tests import this module beside them)."""
    flags.DEFINE_list("models", ["zoo:resnet20", "zoo:mobilenetv2", "app:MobileNetV2",
                                 "app:DenseNet121"], "zoo:NAME or app:NAME, one-shot each.")
    flags.DEFINE_string("output_dir", "benchmarks/latency", "Where the records go.")
    flags.DEFINE_string("target_latency", "0.5", "--target_latency of every run.")
    flags.DEFINE_string("quantization", "float32", "--latency_quantization of every run.")

def build(name):
    kind, model = name.split(":", 1)
    if kind == "zoo":
        from tfprune.models import build_model
        return build_model(model, (28, 28, 1), 10, seed=0)
    if kind == "app":
        from tfprune import keras3
        k3 = keras3.keras3()
        k3.utils.set_random_seed(0)
        built = getattr(k3.applications, model)(weights=None, input_shape=(96, 96, 3),
                                                classes=10)
        return keras3.from_keras3(built).model
    raise ValueError(f"model {name!r}: zoo:NAME or app:NAME")


def run_one(name, target, quantization):
    from tfprune.pruning import method_objects, stats
    from tfprune.tflite import latency

    model = build(name)
    method = method_objects.make_method("channel", target_latency=target,
                                        latency_quantization=quantization,
                                        cost_builder=latency.cost_model)
    start = time.perf_counter()
    method.check(model)
    attached = method.prune_once(model)
    x = np.random.default_rng(0).standard_normal((4,) + tuple(model.inputs[0].shape[1:]))
    finished = method.finish(attached, check_inputs=x.astype(np.float32))
    report = latency.add_measured(finished, model, print)
    report.update(model=name, seconds=time.perf_counter() - start,
                  channel_sparsity=finished.statistics["channel"]["channel_sparsity"],
                  flops_ratio=stats.summarize(finished.shrink.model)["flops"]
                  / stats.summarize(model)["flops"])
    report["dense_raw_error"] = report["dense_predicted_raw_ms"] / report["dense_measured_ms"] - 1
    return report


def table(records):
    lines = ["| model | kernels | raw sum / dense measured | calibration | predicted ratio | "
             "measured ratio | shrunk predicted ms | shrunk measured ms | error | channels cut | "
             "FLOPs ratio |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in records:
        lines.append(
            f"| {r['model']} | {r['kernels']} | {r['dense_predicted_raw_ms']:.3f} / "
            f"{r['dense_measured_ms']:.3f} ({r['dense_raw_error']:+.1%}) | "
            f"{r['calibration']:.3f} | {r['predicted_ratio']:.3f} | {r['measured_ratio']:.3f} | "
            f"{r['pruned_predicted_ms']:.3f} | {r['shrunk_measured_ms']:.3f} | "
            f"{r['shrunk_prediction_error']:+.1%} | {r['channel_sparsity']:.3f} | "
            f"{r['flops_ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    records = []
    for name in FLAGS.models:
        path = os.path.join(FLAGS.output_dir, f"{name.replace(':', '_')}_"
                            f"{FLAGS.target_latency}_{FLAGS.quantization}.json")
        if os.path.exists(path):
            records.append(io.read_json(path))
            continue
        record = io.to_jsonable(run_one(name, FLAGS.target_latency, FLAGS.quantization))
        io.write_json(path, record)
        records.append(record)
        io.write_text(os.path.join(FLAGS.output_dir, "results.md"), table(records))
    io.write_text(os.path.join(FLAGS.output_dir, "results.md"), table(records))
    print(table(records))


if __name__ == "__main__":
    define_flags()
    app.run(main)
