"""Issue 31's benchmark over keras.applications, the measuring part: the data, each model built
by plain Keras 3, one pruning run through the prune job, the Keras-only load, the int8
conversion and the float32 latency of dense and shrunk timed together. Each step that fails is
recorded as one line (``acceptance.one_line``) and the next step or run goes on."""

import os
import time
import traceback

import numpy as np

from benchmarks import acceptance
from benchmarks.keras_only import keras_only_accuracy
from tfprune import io, keras3
from tfprune.data import load_data
from tfprune.jobs.prune import PruneConfig, run_prune
from tfprune.models import import_checked
from tfprune.tflite import export, measure

DATA_SEED = 0       # which digits images are taken
MODEL_SEED = 0      # keras.utils.set_random_seed before each model is built
CLASSES = 10
REPRESENTATIVE = 32  # int8 calibration images


def write_data(path, size, train=240, test=120, seed=DATA_SEED):
    """An .npz for ``--dataset=npz:PATH``: real images, scikit-learn's 8x8 digits (the embedded
    data set), ``train`` + ``test`` of them drawn with ``seed``, upsampled by repetition to
    ``size`` x ``size`` and repeated over 3 channels, as uint8."""
    if os.path.isfile(path):
        return path
    data = load_data("digits")
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, count in (("train", train), ("test", test)):
        x, y = data.numpy(split)
        pick = rng.choice(len(x), size=min(count, len(x)), replace=False)
        x = x[pick]
        factor = -(-size // x.shape[1])  # ceil: 8 -> 96 is 12
        x = np.repeat(np.repeat(x, factor, axis=1), factor, axis=2)[:, :size, :size]
        arrays[f"x_{split}"] = np.round(np.repeat(x, 3, axis=-1) * 255).astype(np.uint8)
        arrays[f"y_{split}"] = y[pick]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with io.atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)
    return path


def keras_only_arrays(data, path):
    """The test split as ``x`` / ``y`` for the Keras-only process (benchmarks/keras_only.py)."""
    if not os.path.isfile(path):
        x, y = data.numpy("test")
        with io.atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, x=x, y=y)
    return path


def build_baseline(name, path, size, images):
    """``keras.applications.<name>(weights=None, input_shape=(size, size, 3), classes=10)`` by
    plain Keras 3, its BatchNorm statistics calibrated on ``images`` (``calibrate``), saved as
    ``path``; {"input_shape", "params", "layers", "batchnorms", "output_spread",
    "build_time_s"}."""
    start = time.perf_counter()
    keras = keras3.keras3()
    keras.utils.set_random_seed(MODEL_SEED)
    model = getattr(keras.applications, name)(weights=None, input_shape=(size, size, 3),
                                              classes=CLASSES)
    batchnorms = calibrate(model, images, keras)
    outputs = np.asarray(model.predict(images, verbose=0))
    keras3.save(model, path)
    info = {"input_shape": [size, size, 3], "params": int(model.count_params()),
            "layers": len(model.layers), "batchnorms": batchnorms,
            "output_spread": float(np.max(outputs.max(0) - outputs.min(0))),
            "build_time_s": time.perf_counter() - start}
    keras.backend.clear_session()
    return info


def calibrate(model, images, keras):
    """Set every BatchNormalization's moving mean and variance to the statistics of ``images``
    (one pass in training mode at momentum 0; momentum restored). Built with weights=None, the
    models keep mean 0 and variance 1, and the signal vanishes through their depth (MobileNetV2
    at 96x96: pooled features of standard deviation 3.7e-12, every softmax output exactly 0.1),
    so every output difference, shrink's included, would be 0 whatever the shrink did. The
    weights stay Keras's initial ones. Returns the number of BatchNorm layers."""
    layers = [layer for layer in model._flatten_layers()
              if isinstance(layer, keras.layers.BatchNormalization)]
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    model(images, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    return len(layers)


def config(dataset, baseline, method, target, options=None):
    """The prune job's config of one run: one-shot, Keras 3 files written; ``options``: more
    PruneConfig fields (the channel method's ``layer_norm``)."""
    return PruneConfig(dataset=dataset, baseline=os.path.abspath(baseline), method=method,
                       target_sparsity=target, fine_tune_epochs=0, keras3_output=True,
                       **(options or {}))


def import_baseline(dataset, baseline, log):
    """(data, Imported): the data and the translated baseline every run of a model shares."""
    first = config(dataset, baseline, *acceptance.RUNS[0])
    data = first.load_data(log)
    return data, import_checked(first.baseline, "baseline", data, log)


def prune_figures(metrics):
    """What the criteria read from a prune job's metrics.json."""
    channel = metrics.get("channel") or {}
    shrink = metrics["shrink"]
    return {"flops": metrics["flops"], "flops_after": shrink["flops_after"],
            "flops_ratio": shrink["flops_after"] / metrics["flops"],
            "max_abs_diff": shrink["max_abs_diff"], "pruned_sparsity": metrics["pruned_sparsity"],
            "params": metrics["params"], "params_after": shrink["params_after"],
            "groups": channel.get("groups"), "prunable_groups": channel.get("prunable_groups"),
            "blocked": acceptance.blocked_summary(metrics.get("skipped_layers"),
                                                  channel.get("groups"),
                                                  channel.get("prunable_groups")),
            "deployed": metrics["deployed"]["kind"]}


def _step(record, name, work):
    """record[name] = work(), or {"error": one line, "traceback"} when it raises; with the
    step's seconds, "time_s"."""
    start = time.perf_counter()
    try:
        record[name] = work()
    except Exception as err:  # noqa: BLE001  (recorded; the benchmark goes on)
        record[name] = {"error": acceptance.one_line(err), "traceback": traceback.format_exc()}
    record[name]["time_s"] = time.perf_counter() - start


def run(model_dir, dataset, data, baseline, method, target, arrays, latency, log,
        options=None):
    """One (model, run) record: prune (the job), Keras-only load, int8, latency."""
    name = acceptance.run_name(method, target)
    run_dir = os.path.join(model_dir, name)
    record = {"run": name, "method": method, "target": target, "error": None, "stage": None,
              "options": dict(options or {})}
    start = time.perf_counter()
    try:
        done = run_prune(config(dataset, baseline.path, method, target, options), run_dir,
                         data=data, baseline=baseline, log=log)
    except Exception as err:  # noqa: BLE001
        record.update(error=acceptance.one_line(err), stage="prune",
                      traceback=traceback.format_exc())
        return record
    metrics = done.metrics
    record["prune"] = dict(prune_figures(metrics), time_s=time.perf_counter() - start)
    kind = done.deployed_kind
    files = [os.path.join(run_dir, metrics["keras3"][k]["path"])
             for k in ("pruned", "shrunk") if metrics["keras3"].get(k)]
    _step(record, "keras3", lambda: {"files": [os.path.relpath(f, model_dir) for f in files],
                                     "accuracy": {os.path.basename(k): v for k, v in
                                                  keras_only_accuracy(files, arrays).items()}})
    deployed = done.model(kind)
    representative = data.representative_sample(REPRESENTATIVE)
    int8_path = os.path.join(run_dir, "tflite", f"{kind}-int8.tflite")
    _step(record, "int8", lambda: {"bytes": os.path.getsize(export.export(
        deployed, int8_path, "int8", representative)), "file": os.path.relpath(int8_path,
                                                                               model_dir)})
    if kind == "shrunk":
        _step(record, "latency", lambda: _latency(baseline.model, deployed, model_dir, run_dir,
                                                  data, latency))
    return record


def _latency(dense, shrunk, model_dir, run_dir, data, latency):
    """Float32 LiteRT latency of dense and shrunk, timed together (measure.time_together)."""
    dense_float32 = _dense_float32(dense, model_dir)
    path = export.export(shrunk, os.path.join(run_dir, "tflite", "shrunk-float32.tflite"))
    example = data.numpy("test", limit=1)[0][0]
    times = measure.time_together([dense_float32, path], example, **latency)
    dense, thin = times[dense_float32], times[path]
    return {"dense_ms": dense["latency_ms_median"], "shrunk_ms": thin["latency_ms_median"],
            "ratio": thin["latency_ms_median"] / dense["latency_ms_median"],
            "num_threads": dense["num_threads"], "runs": dense["latency_runs"],
            "warmup": dense["latency_warmup"], "rounds": dense["latency_rounds"],
            "delegate": f"{dense['delegate']} / {thin['delegate']}"}


def _dense_float32(dense, model_dir):
    """The dense model's float32 .tflite (converted once per model)."""
    path = os.path.join(model_dir, "tflite", "dense-float32.tflite")
    return path if os.path.isfile(path) else export.export(dense, path)


CALIBRATION = 64  # training images the BatchNorm statistics are set from


def calibration_images(dataset):
    """CALIBRATION training images of ``dataset``, scaled as the prune job's loader scales them."""
    return load_data(dataset).numpy("train", limit=CALIBRATION)[0]
