"""Does XNNPACK's sparse inference path run from Python? MobileNetV2 at 32x32x3 with its 1x1
convolutions 75% / 90% zero, and the smallest net the path accepts, dense vs sparse.

    .venv/bin/python -m benchmarks.xnnpack_sparse --output_dir=benchmarks/xnnpack_sparse

XNNPACK switches a float32 subgraph to sparse (NCHW, SpMM) kernels only when: its weights come
through DENSIFY (the converter's EXPERIMENTAL_SPARSITY encoding), it starts with a 3x3 stride-2
convolution on 3 channels padded 1 on every side, it ends in a spatial mean, everything between
is NCHW-capable (1x1 convolutions, 3x3/5x5 depthwise padded symmetrically, add, multiply,
unary activations), at least 2/3 of the 1x1 weights are zero, and the CPU is not x86 with AVX
(XNNPACK's `xnn_is_chw_compatible_config`: "on processors with AVX ISA dense inference is
expected to be faster than sparse"). The benchmark records which of these hold here and times
the files interleaved (`time_together`, the project's default interpreter) and the "probe" net
under every Python runtime there is. Weights are random (seed 0, no training): latency only.
Writes results.json and results.md into --output_dir.
"""

import os

import numpy as np
from absl import flags

from tfprune.cli import common
from tfprune import io
from tfprune.keras import keras, tf
from tfprune.models import build_model
from tfprune.pruning.oneshot import magnitude_mask
from tfprune.tflite import export, measure

FLAGS = flags.FLAGS


def define_flags():
    """The script's flags, defined only when it runs (importing it, as the tests do, next to
    another benchmark script that defines --output_dir must not clash)."""
    flags.DEFINE_string("output_dir", "benchmarks/xnnpack_sparse", "Where the files and results go.")
    flags.DEFINE_list("sparsities", ["0.75", "0.9"], "Sparsities of MobileNetV2's 1x1 convolutions.")
    flags.DEFINE_float("probe_sparsity", 0.99, "Sparsity of the probe net's 1x1 convolutions.")
    flags.DEFINE_integer("rounds", 10, "Shuffled rounds of the interleaved timing.", lower_bound=1)
    flags.DEFINE_integer("runs_per_round", 20, "Invocations per file and round.", lower_bound=1)
    flags.DEFINE_string("qemu_cpu", None, "Also run each dense/sparse-encoded pair under "
                        "`qemu-x86_64 -cpu <this>` (a CPU model without AVX, e.g. Nehalem), where "
                        "XNNPACK allows its sparse path: emulated times, for the ratio only.")


INPUT_SHAPE = (32, 32, 3)


def cpu_has_avx(cpuinfo="/proc/cpuinfo"):
    """True/False from the CPU's flags; None when they cannot be read (not Linux x86)."""
    try:
        with open(cpuinfo) as f:
            for line in f:
                if line.startswith("flags"):
                    return "avx" in line.split(":", 1)[1].split()
    except OSError:
        pass
    return None


def probe_model(seed=0, widths=(128, 256, 256)):
    """The smallest net XNNPACK's sparse path accepts: ZeroPadding2D(1) + 3x3 stride-2 VALID
    convolution on 3 channels, pairs of 1x1 convolutions (ReLU6), a spatial mean, a classifier.
    Nearly all its work is in the 1x1 convolutions, so a switch to sparse kernels cannot hide."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = layers.ZeroPadding2D(1, name="stem_pad")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(layers.Conv2D(32, 3, 2, name="stem")(x))
    for i, width in enumerate(widths):
        for j in (1, 2):
            x = layers.Conv2D(width, 1, name=f"pw{i}_{j}")(x)
            x = layers.ReLU(6.0, name=f"pw{i}_{j}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="mean")(x)
    return keras.Model(inputs, layers.Dense(10, name="classifier")(x), name="xnnpack_probe")


def mobilenetv2_xnnpack(seed=0, num_classes=10):
    """MobileNetV2 (alpha 1, keras.applications' layers and widths) with the padding XNNPACK's
    sparse path needs: the stem and the stride-2 depthwise convolutions are ZeroPadding2D(1) +
    VALID (keras.applications pads them (0, 1): TensorFlow's SAME, refused by the NCHW check).
    Same output shapes at 32x32; a different function, so not the zoo's weights."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers

    def bn_relu(x, name, relu=True):
        x = layers.BatchNormalization(name=f"{name}_bn")(x)
        return layers.ReLU(6.0, name=f"{name}_relu")(x) if relu else x

    def depthwise(x, strides, name):
        if strides == 2:
            x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        return layers.DepthwiseConv2D(3, strides, "valid" if strides == 2 else "same",
                                      use_bias=False, name=name)(x)

    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = layers.ZeroPadding2D(1, name="stem_pad")(inputs)
    x = bn_relu(layers.Conv2D(32, 3, 2, use_bias=False, name="stem")(x), "stem")
    x = bn_relu(depthwise(x, 1, "block0_dw"), "block0_dw")
    x = bn_relu(layers.Conv2D(16, 1, use_bias=False, name="block0_project")(x), "block0_project",
                relu=False)
    block = 1
    for expansion, width, repeats, stride in ((6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                                               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)):
        for r in range(repeats):
            name, strides, shortcut = f"block{block}", stride if r == 0 else 1, x
            y = layers.Conv2D(x.shape[-1] * expansion, 1, use_bias=False,
                              name=f"{name}_expand")(x)
            y = bn_relu(y, f"{name}_expand")
            y = bn_relu(depthwise(y, strides, f"{name}_dw"), f"{name}_dw")
            y = layers.Conv2D(width, 1, use_bias=False, name=f"{name}_project")(y)
            y = bn_relu(y, f"{name}_project", relu=False)
            x = layers.Add(name=f"{name}_add")([shortcut, y]) if (
                strides == 1 and shortcut.shape[-1] == width) else y
            block += 1
    x = bn_relu(layers.Conv2D(1280, 1, use_bias=False, name="top")(x), "top")
    x = layers.GlobalAveragePooling2D(name="mean")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="classifier")(x)
    return keras.Model(inputs, outputs, name="mobilenetv2_xnnpack")


def policy_refusal(model):
    """None if tfmot's PruneForLatencyOnXNNPack accepts ``model``, else its message."""
    import tensorflow_model_optimization as tfmot

    try:
        tfmot.sparsity.keras.PruneForLatencyOnXNNPack().ensure_model_supports_pruning(model)
    except ValueError as err:
        return str(err)
    return None


def zero_pointwise(model, sparsity):
    """A copy of ``model`` whose 1x1 Conv2D kernels (the layers PruneForLatencyOnXNNPack
    wraps) keep only their largest magnitudes, layer by layer (tfmot's rule); the layer names
    and the fraction of their weights that is zero."""
    import tensorflow_model_optimization as tfmot

    policy = tfmot.sparsity.keras.PruneForLatencyOnXNNPack()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    names, zeros, total = [], 0, 0
    for layer in copy.layers:
        if policy.allow_pruning(layer):
            kernel = layer.kernel.numpy()
            masked = kernel * magnitude_mask(kernel, sparsity)
            layer.kernel.assign(masked)
            names.append(layer.name)
            zeros += int(np.sum(masked == 0))
            total += masked.size
    return copy, names, zeros / max(total, 1)


def _runtimes():
    """Ways to run a .tflite from Python, each {label: file -> invoke function}."""
    from ai_edge_litert import interpreter as litert

    def interpreter(make):
        def load(path):
            it = make(path)
            it.allocate_tensors()
            detail = it.get_input_details()[0]
            it.set_tensor(detail["index"], np.zeros(detail["shape"], np.float32))
            return it.invoke
        return load

    def compiled(path):
        from ai_edge_litert.compiled_model import CompiledModel
        from ai_edge_litert.cpu_options import CpuOptions
        from ai_edge_litert.hardware_accelerator import HardwareAccelerator
        from ai_edge_litert.options import Options

        model = CompiledModel.from_file(path, options=Options(
            HardwareAccelerator.CPU, cpu_options=CpuOptions(num_threads=1)))
        inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)
        inputs[0].write(np.zeros((1,) + INPUT_SHAPE, np.float32))
        return lambda: model.run_by_index(0, inputs, outputs)

    return {
        "ai_edge_litert Interpreter (default XNNPACK)": interpreter(
            lambda p: litert.Interpreter(model_path=p, num_threads=1)),
        "ai_edge_litert Interpreter, experimental_default_delegate_latest_features": interpreter(
            lambda p: litert.Interpreter(model_path=p, num_threads=1,
                                         experimental_default_delegate_latest_features=True)),
        "tf.lite.Interpreter (TensorFlow's own build)": interpreter(
            lambda p: tf.lite.Interpreter(model_path=p, num_threads=1)),
        "ai_edge_litert CompiledModel, CPU accelerator": compiled,
        "ai_edge_litert Interpreter, built-in kernels (no delegate)": interpreter(
            lambda p: litert.Interpreter(
                model_path=p, num_threads=1,
                experimental_op_resolver_type=litert.OpResolverType
                .BUILTIN_WITHOUT_DEFAULT_DELEGATES)),
    }


def time_runtimes(files, rounds, runs_per_round, warmup=20, seed=0, log=print):
    """Median microseconds of every file under every runtime, interleaved in shuffled rounds
    like ``measure.time_together``: {runtime: {file: us or "error: ..."}}."""
    calls = {}
    result = {}
    for runtime, load in _runtimes().items():
        for path in files:
            try:
                invoke = load(path)
                for _ in range(warmup):
                    invoke()
                calls[(runtime, path)] = invoke
            except Exception as err:  # noqa: BLE001  (report what each runtime says)
                first = str(err).strip().splitlines()[0] if str(err).strip() else ""
                result.setdefault(runtime, {})[path] = f"error: {type(err).__name__} {first}"
                log(f"  {runtime}: {os.path.basename(path)}: {result[runtime][path]}")
    times = measure.interleaved_times(calls, rounds, runs_per_round, seed)
    for (runtime, path), t in times.items():
        result.setdefault(runtime, {})[path] = float(np.median(t) * 1e6)
    return result


_EMULATED_CHILD = """
import sys, time, numpy as np
from ai_edge_litert.interpreter import Interpreter
x = np.random.default_rng(0).random((1, 32, 32, 3), dtype=np.float32)
for path in sys.argv[2:]:
    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], x)
    it.invoke()
    t = []
    for _ in range(int(sys.argv[1])):
        s = time.perf_counter(); it.invoke(); t.append(time.perf_counter() - s)
    print(float(np.median(t) * 1e3))
"""


def emulated_pair(dense_path, sparse_path, qemu_cpu, runs=5):
    """Median ms of the two files under `qemu-x86_64 -cpu qemu_cpu` (user-mode emulation: only
    the ratio means anything). The child imports only ai_edge_litert and numpy."""
    import shutil
    import subprocess
    import sys

    qemu = shutil.which("qemu-x86_64")
    if qemu is None:
        return {"error": "qemu-x86_64 not found (Debian: apt-get install qemu-user)"}
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    result = subprocess.run([qemu, "-cpu", qemu_cpu, os.path.realpath(sys.executable), "-c",
                             _EMULATED_CHILD, str(runs), dense_path, sparse_path],
                            capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        return {"error": result.stderr.strip().splitlines()[-1] if result.stderr.strip()
                else f"exit {result.returncode}"}
    dense_ms, sparse_ms = (float(v) for v in result.stdout.split())
    return {"dense_encoded_ms": dense_ms, "sparse_encoded_ms": sparse_ms,
            "sparse_vs_dense": sparse_ms / dense_ms, "runs": runs}


def run(out, sparsities, probe_sparsity, rounds, runs_per_round, qemu_cpu=None,
        log=print):
    tflite_dir = os.path.join(out, "tflite")
    os.makedirs(tflite_dir, exist_ok=True)
    nets = {"mobilenetv2": build_model("mobilenetv2", INPUT_SHAPE, 10, seed=0),
            "mobilenetv2_xnnpack": mobilenetv2_xnnpack(seed=0), "probe": probe_model(seed=0)}
    plan = [(net, s) for net in ("mobilenetv2", "mobilenetv2_xnnpack")
            for s in [0.0] + list(sparsities)] + [("probe", 0.0), ("probe", probe_sparsity)]
    rows = []
    for net, sparsity in plan:
        model, names, zeros = zero_pointwise(nets[net], sparsity) if sparsity else (
            nets[net], [], 0.0)
        for sparse in ([False, True] if sparsity else [False]):
            path = os.path.join(tflite_dir, f"{net}-{int(round(sparsity * 100))}"
                                            f"{'-sparse' if sparse else ''}.tflite")
            content = export.to_tflite(model, "float32", sparse=sparse)
            export.save_tflite(content, path)
            ops = _op_names(path)
            rows.append({"net": net, "sparsity_1x1": sparsity, "zero_fraction_1x1": zeros,
                         "pruned_layers": len(names), "sparse_encoding": sparse, "file": path,
                         "size_bytes": len(content), "densify_ops": ops.count("DENSIFY"),
                         "delegate_partitions": ops.count("DELEGATE")})
            log(f"  {os.path.basename(path)}: {len(content):,} B, {ops.count('DENSIFY')} "
                f"DENSIFY, {ops.count('DELEGATE')} delegate partition(s)")
    example = np.random.default_rng(0).random(INPUT_SHAPE, dtype=np.float32)
    timed = measure.time_together([r["file"] for r in rows], example, rounds=rounds,
                                  runs_per_round=runs_per_round, num_threads=1)
    for row in rows:
        row.update(latency_us_median=timed[row["file"]]["latency_ms_median"] * 1e3,
                   latency_us_p90=timed[row["file"]]["latency_ms_p90"] * 1e3,
                   delegate=timed[row["file"]]["delegate"])
    for net in nets:
        dense = next(r for r in rows if r["net"] == net and not r["sparsity_1x1"])
        for row in rows:
            if row["net"] == net:
                row["latency_vs_dense"] = row["latency_us_median"] / dense["latency_us_median"]
    probe_files = [r["file"] for r in rows if r["net"] == "probe"]
    emulated = {}
    if qemu_cpu:
        for row in rows:
            if row["sparse_encoding"]:
                dense = next(r["file"] for r in rows if r["net"] == row["net"] and
                             r["sparsity_1x1"] == row["sparsity_1x1"] and not r["sparse_encoding"])
                emulated[os.path.basename(row["file"])] = emulated_pair(dense, row["file"],
                                                                        qemu_cpu)
                log(f"  under qemu -cpu {qemu_cpu}: {emulated[os.path.basename(row['file'])]}")
    return {"cpu_has_avx": cpu_has_avx(), "qemu_cpu": qemu_cpu, "emulated": emulated,
            "policy_refusal": {net: policy_refusal(m) for net, m in nets.items()},
            "rows": rows, "timing": {"rounds": rounds, "runs_per_round": runs_per_round,
                                     "threads": 1},
            "probe_runtimes": time_runtimes(probe_files, rounds, runs_per_round, log=log)}


def _op_names(path):
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=path, num_threads=1)
    it.allocate_tensors()
    return [op["op_name"] for op in it._get_ops_details()]


def markdown(results):
    lines = [f"CPU has AVX: {results['cpu_has_avx']}. Interleaved timing: "
             f"{results['timing']['rounds']} shuffled rounds x "
             f"{results['timing']['runs_per_round']} single-image invocations, 1 thread.", "",
             "| net | 1x1 sparsity | encoding | bytes | DENSIFY ops | median us (p90) | "
             "vs dense |", "|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['net']} | {r['sparsity_1x1']:.2f} | "
                     f"{'sparse (DENSIFY)' if r['sparse_encoding'] else 'dense'} | "
                     f"{r['size_bytes']:,} | {r['densify_ops']} | {r['latency_us_median']:.1f} "
                     f"({r['latency_us_p90']:.1f}) | {r['latency_vs_dense']:.3f} |")
    names = [os.path.basename(f) for f in next(iter(results["probe_runtimes"].values()))]
    lines += ["", "| runtime | " + " | ".join(names) + " |",
              "|---" * (len(names) + 1) + "|"]
    for runtime, by_file in results["probe_runtimes"].items():
        cells = [v if isinstance(v, str) else f"{v:.1f} us" for v in by_file.values()]
        lines.append(f"| {runtime} | " + " | ".join(cells) + " |")
    if results.get("emulated"):
        lines += ["", f"Under `qemu-x86_64 -cpu {results['qemu_cpu']}` (no AVX; emulated ms, "
                  "compare within a row only):", "",
                  "| file | dense-encoded ms | sparse-encoded ms | sparse / dense |",
                  "|---|---|---|---|"]
        for name, e in results["emulated"].items():
            lines.append(f"| {name} | {e['error']} | | |" if "error" in e else
                         f"| {name} | {e['dense_encoded_ms']:.1f} | {e['sparse_encoded_ms']:.1f}"
                         f" | {e['sparse_vs_dense']:.3f} |")
    lines += ["", "PruneForLatencyOnXNNPack: " + "; ".join(
        f"{net}: {msg or 'accepted'}" for net, msg in results["policy_refusal"].items())]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    sparsities = [float(s) for s in FLAGS.sparsities]
    results = run(FLAGS.output_dir, sparsities, FLAGS.probe_sparsity, FLAGS.rounds,
                  FLAGS.runs_per_round, qemu_cpu=FLAGS.qemu_cpu, log=common.log)
    io.write_json(os.path.join(FLAGS.output_dir, "results.json"), results)
    io.write_text(os.path.join(FLAGS.output_dir, "results.md"), markdown(results))
    common.log(f"results: {os.path.join(FLAGS.output_dir, 'results.md')}")


if __name__ == "__main__":
    define_flags()
    common.run(main)
