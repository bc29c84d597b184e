"""Keras 3 models through tfprune: import -> prune -> shrink -> Keras 3 and int8 TFLite.

    .venv/bin/python -m benchmarks.keras3 --dataset=fashion_mnist --output_dir=/work/bench/keras3

Three models are built and trained with Keras 3 itself (``import keras``) and saved as .keras
files: a CNN, a ResNet-style functional model (BatchNorm, projection shortcut, Add) and
``keras.applications.MobileNetV2(weights=None)`` nested behind a 2-pixel padding (28x28 -> 32x32).
Each file then goes through experiments.prune's job as a user's ``--baseline`` (translated to
tf_keras, outputs checked on 256 test images) under weight pruning at 0.8 and unit pruning at
0.5, is shrunk, saved back as Keras 3, and its deployed model converted to int8 TFLite through
experiments.export_tflite's job. A separate process that imports only ``keras`` then loads the
Keras 3 exports and measures their test accuracy. Every step's output difference is in
results.json / results.md. Runs are reused when finished.
"""

import os

from absl import flags

from benchmarks.keras_only import keras_only_accuracy
from tfprune.cli import common
from tfprune import io, keras3
from tfprune.data import load_data
from tfprune.jobs.export import ExportConfig, run_export
from tfprune.jobs.prune import PruneConfig, run_prune

FLAGS = flags.FLAGS
flags.DEFINE_string("dataset", "fashion_mnist", "Data set (28x28x1 images).")
flags.DEFINE_integer("epochs", 3, "Keras 3 training epochs of each model.")
flags.DEFINE_integer("fine_tune_epochs", 2, "Fine-tuning epochs under pruning.")
flags.DEFINE_float("alpha", 0.35, "MobileNetV2 width multiplier.")
flags.DEFINE_string("output_dir", "benchmarks/keras3", "Where the models and runs go.")
flags.DEFINE_list("models", ["cnn", "resnet", "mobilenetv2"], "Keras 3 models to run.")
flags.DEFINE_string("stage", None, "A compression stage after pruning (qat, cluster, cqat): "
                    "its int8 .tflite and Keras 3's own Model.quantize beside it.")
flags.DEFINE_integer("stage_epochs", 1, "Epochs of the compression stage.")

# What each Keras 3 model stands in for in the zoo (augmentation and naming only).
ZOO = {"cnn": "cnn", "resnet": "resnet20", "mobilenetv2": "mobilenetv2"}
PRUNINGS = (("weight", 0.8), ("unit", 0.5))


def build(name, input_shape, classes, alpha):
    """A Keras 3 model (plain ``keras``, never tfprune's tf_keras)."""
    keras = keras3.keras3()
    layers = keras.layers
    keras.utils.set_random_seed(0)
    inputs = keras.Input(input_shape, name="image")
    if name == "cnn":
        x = inputs
        for filters in (32, 64):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            x = layers.BatchNormalization()(x)
            x = layers.ReLU()(x)
            x = layers.MaxPooling2D(2)(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.2)(layers.Dense(128, activation="relu")(x))
    elif name == "resnet":
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(16, 3, padding="same")(inputs)))
        for filters, stride in ((16, 1), (16, 1), (32, 2), (32, 1), (64, 2), (64, 1)):
            shortcut = x
            y = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
            y = layers.ReLU()(layers.BatchNormalization()(y))
            y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same",
                                                          use_bias=False)(y))
            if stride != 1 or shortcut.shape[-1] != filters:
                shortcut = layers.BatchNormalization()(
                    layers.Conv2D(filters, 1, strides=stride, use_bias=False)(shortcut))
            x = layers.ReLU()(layers.Add()([y, shortcut]))
        x = layers.GlobalAveragePooling2D()(x)
    elif name == "mobilenetv2":
        padded = layers.ZeroPadding2D(2, name="pad_to_32")(inputs)
        size = (input_shape[0] + 4, input_shape[1] + 4, input_shape[2])
        net = keras.applications.MobileNetV2(weights=None, input_shape=size, alpha=alpha,
                                             include_top=False, pooling="avg")
        # keras.applications builds its BatchNorms with momentum 0.999: after 3 epochs (1,266
        # steps) the moving statistics are still mostly their initial values and inference is
        # at chance (10.0% measured: training accuracy 84%, validation 10%). 0.9 fits a short run.
        for layer in net.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = 0.9
        x = layers.Dropout(0.2)(net(padded))
    else:
        raise ValueError(f"unknown model {name!r}")
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"keras3_{name}")


def train(name, data, path, epochs, alpha):
    """Train with Keras 3 and save ``path``; reused when there."""
    if os.path.isfile(path):
        return
    model = build(name, data.input_shape, data.num_classes, alpha)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    x, y = data.numpy("train")
    xv, yv = data.numpy("validation")
    common.log(f"[{name}] Keras 3 training: {model.count_params():,} parameters, {epochs} epochs")
    model.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=128, verbose=2)
    keras3.save(model, path)


def main(argv):
    del argv
    out = FLAGS.output_dir
    data = load_data(FLAGS.dataset)
    arrays = os.path.join(out, "test.npz")
    if not os.path.isfile(arrays):
        import numpy as np

        os.makedirs(out, exist_ok=True)
        x, y = data.numpy("test")
        np.savez(arrays, x=x, y=y)
    results = []
    for name in FLAGS.models:
        path = os.path.join(out, f"{name}.keras")
        train(name, data, path, FLAGS.epochs, FLAGS.alpha)
        for method, sparsity in PRUNINGS:
            run_dir = os.path.join(out, f"{name}-{method}-{sparsity:g}")
            metrics = run_prune(PruneConfig(
                dataset=FLAGS.dataset, model=ZOO[name], method=method,
                schedule="polynomial", target_sparsity=sparsity,
                fine_tune_epochs=FLAGS.fine_tune_epochs, baseline=os.path.abspath(path),
                **(dict(stage=FLAGS.stage, stage_epochs=FLAGS.stage_epochs) if FLAGS.stage
                   else {})), run_dir, log=common.log).metrics
            kind = metrics["deployed"]["kind"]
            k3 = metrics["keras3"]
            measured = run_export(ExportConfig(
                model_path=os.path.join(run_dir, f"{kind}.keras"), dataset=FLAGS.dataset,
                quantizations=("float32", "int8"), latency_runs=50, warmup=10),
                os.path.join(run_dir, "tflite"), log=common.log)
            rows = {r["quantization"]: r for r in measured if not r["sparse"]}
            exported = [os.path.join(run_dir, k3[k]["path"]) for k in ("pruned", "shrunk")
                        if k3.get(k)]
            plain = keras_only_accuracy(exported, arrays)
            results.append({
                "model": name, "method": method, "target": sparsity,
                "params": metrics["params"], "layers": k3["baseline"]["layers"],
                "import_max_abs_diff": k3["baseline"]["max_abs_diff"],
                "baseline_accuracy": metrics["baseline_accuracy"],
                "pruned_accuracy": metrics["accuracy"],
                "pruned_sparsity": metrics["pruned_sparsity"],
                "shrink_max_abs_diff": metrics["shrink"]["max_abs_diff"],
                "params_after_shrink": metrics["shrink"]["params_after"],
                "deployed": kind,
                "keras3_export_max_abs_diff": max(k3[k]["max_abs_diff"] for k in k3
                                                  if k != "baseline" and k3[k]),
                "keras_only_accuracy": {os.path.basename(p): a for p, a in plain.items()},
                "int8_accuracy": rows["int8"]["tflite_accuracy"],
                "int8_accuracy_delta": rows["int8"]["accuracy_delta"],
                "int8_bytes": rows["int8"]["size_bytes"],
                "float32_bytes": rows["float32"]["size_bytes"],
                "stage": metrics.get("stage"),
                "keras_quantize": {k: k3[k]["keras_quantize"] for k in ("pruned", "shrunk")
                                   if k3.get(k)},
            })
            io.write_json(os.path.join(out, "results.json"), results)
    lines = ["| model | method | import diff | baseline acc | pruned acc | shrink diff | "
             "params after | Keras 3 export diff | keras-only acc (pruned / shrunk) | "
             "int8 acc | int8 KB |", "|" + " --- |" * 11]
    for r in results:
        plain = " / ".join(f"{a:.4f}" for a in r["keras_only_accuracy"].values())
        lines.append(
            f"| {r['model']} | {r['method']} {r['target']:g} | {r['import_max_abs_diff']:.1e} | "
            f"{r['baseline_accuracy']:.4f} | {r['pruned_accuracy']:.4f} | "
            f"{r['shrink_max_abs_diff']:.1e} | {r['params_after_shrink']:,} / {r['params']:,} | "
            f"{r['keras3_export_max_abs_diff']:.1e} | {plain} | {r['int8_accuracy']:.4f} | "
            f"{r['int8_bytes'] / 1024:.0f} |")
    staged = [r for r in results if r["stage"]]
    if staged:
        lines += ["", "| model | method | stage | stage int8 acc | KB | gzip KB | kernel "
                  "non-zeros | Keras 3 quantize int8 acc / KB of weights | int4 acc / KB |",
                  "|" + " --- |" * 9]
    for r in staged:
        stage, tflite = r["stage"], r["stage"].get("tflite") or {}
        own = r["keras_quantize"][r["deployed"]]
        lines.append(
            f"| {r['model']} | {r['method']} {r['target']:g} | {stage['stage']} | "
            f"{tflite.get('tflite_accuracy', float('nan')):.4f} | "
            f"{tflite.get('size_bytes', 0) / 1024:.0f} | {tflite.get('gzip_bytes', 0) / 1024:.0f}"
            f" | {tflite.get('kernel_nonzeros')} | {own['int8']['accuracy']:.4f} / "
            f"{own['int8']['weight_bytes'] / 1024:.0f} | {own['int4']['accuracy']:.4f} / "
            f"{own['int4']['weight_bytes'] / 1024:.0f} |")
    io.write_text(os.path.join(out, "results.md"), "\n".join(lines) + "\n")
    common.log("\n".join(lines))


if __name__ == "__main__":
    common.run(main)
