"""Measure .tflite models on the LiteRT interpreter: accuracy, latency, sizes.

Numbers are measured, never assumed: accuracy runs the converted model on the interpreter
(quantizing int8 inputs and dequantizing outputs with the model's own scale and zero point);
latency is the median (and p90) of single-example invocations after warm-up, with the thread
count stated; sizes are raw bytes and gzip bytes.
"""

import dataclasses
import gzip
import os
import time

import numpy as np

from tfprune.errors import TfpruneError

# The XNNPACK delegate (the interpreter's default on CPU) refuses some sparse models; those run
# on the built-in kernels instead, and the result says so.
DELEGATE_DEFAULT = "default (XNNPACK)"
DELEGATE_NONE = "none (built-in kernels)"


@dataclasses.dataclass
class LoadedModel:
    interpreter: object
    delegate: str
    fallback_reason: str = None
    num_threads: int = 1


def read_tflite(path_or_bytes):
    """The bytes of a .tflite file (or pass bytes through), checked for the TFLite identifier."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        content, name = bytes(path_or_bytes), "<bytes>"
    else:
        name = os.fspath(path_or_bytes)
        if not os.path.isfile(name):
            raise TfpruneError(f"no .tflite file at {name!r}")
        with open(name, "rb") as f:
            content = f.read()
    if not content:
        raise TfpruneError(f"{name!r} is empty, not a .tflite model")
    if len(content) < 8 or content[4:8] != b"TFL3":
        raise TfpruneError(f"{name!r} is not a .tflite model (no TFL3 flatbuffer identifier)")
    return content, name


def load(path_or_bytes, num_threads=1, allow_fallback=True, xnnpack=True):
    """An allocated LiteRT interpreter; falls back to built-in kernels if XNNPACK refuses
    (``xnnpack=False``: on the built-in kernels from the start)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    if not isinstance(num_threads, int) or num_threads < 1:
        raise TfpruneError(f"`num_threads` must be an integer >= 1, got {num_threads!r}")
    content, name = read_tflite(path_or_bytes)
    reason = "XNNPACK turned off"
    try:
        if not xnnpack:
            raise ValueError(reason)
        interpreter = Interpreter(model_content=content, num_threads=num_threads)
        interpreter.allocate_tensors()
        return LoadedModel(interpreter, DELEGATE_DEFAULT, num_threads=num_threads)
    except (RuntimeError, ValueError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if not allow_fallback and xnnpack:
            raise TfpruneError(f"{name!r} cannot run on the interpreter: {reason}") from None
    try:
        interpreter = Interpreter(
            model_content=content, num_threads=num_threads,
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError) as err:
        raise TfpruneError(f"{name!r} cannot run on the interpreter: {err}") from None
    return LoadedModel(interpreter, DELEGATE_NONE, fallback_reason=reason, num_threads=num_threads)


def _quantize(x, detail):
    scale, zero_point = detail["quantization"]
    if detail["dtype"] == np.float32 or scale == 0:
        return x.astype(detail["dtype"])
    info = np.iinfo(detail["dtype"])
    return np.clip(np.round(x / scale + zero_point), info.min, info.max).astype(detail["dtype"])


def _dequantize(y, detail):
    scale, zero_point = detail["quantization"]
    if detail["dtype"] == np.float32 or scale == 0:
        return y.astype(np.float32)
    return (y.astype(np.float32) - zero_point) * scale


def predict(loaded, x, batch_size=64):
    """Model outputs for inputs ``x`` (float), in batches; int8 I/O handled."""
    interpreter = loaded.interpreter
    inp = interpreter.get_input_details()[0]
    expected = tuple(int(d) for d in inp["shape"][1:])
    x = np.asarray(x, dtype=np.float32)
    if tuple(x.shape[1:]) != expected:
        raise TfpruneError(f"inputs must have shape (N,) + {expected}, got {tuple(x.shape)}")
    outputs = []
    current = None
    for start in range(0, len(x), batch_size):
        batch = x[start:start + batch_size]
        if current != len(batch):
            interpreter.resize_tensor_input(inp["index"], [len(batch)] + list(expected))
            interpreter.allocate_tensors()
            current = len(batch)
        inp = interpreter.get_input_details()[0]
        out = interpreter.get_output_details()[0]
        interpreter.set_tensor(inp["index"], _quantize(batch, inp))
        interpreter.invoke()
        outputs.append(_dequantize(interpreter.get_tensor(out["index"]), out))
    return np.concatenate(outputs)


def accuracy(loaded, x, y, batch_size=64):
    """(accuracy, loss) of a classifier whose outputs are probabilities."""
    probs = predict(loaded, x, batch_size)
    y = np.asarray(y).astype(np.int64)
    acc = float(np.mean(np.argmax(probs, axis=1) == y))
    picked = np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0)
    return acc, float(-np.mean(np.log(picked)))


def prepare_single(loaded, example):
    """Resize the input to batch 1 and set ``example`` (one input, float) on it."""
    interpreter = loaded.interpreter
    inp = interpreter.get_input_details()[0]
    shape = [1] + list(inp["shape"][1:])
    if list(inp["shape"]) != shape:
        interpreter.resize_tensor_input(inp["index"], shape)
        interpreter.allocate_tensors()
        inp = interpreter.get_input_details()[0]
    interpreter.set_tensor(inp["index"], _quantize(np.asarray(example, np.float32)[None], inp))


def latency(loaded, example, warmup=20, runs=200):
    """Median and p90 milliseconds of single-example invocations after ``warmup`` runs."""
    if runs < 1 or warmup < 0:
        raise TfpruneError(f"`runs` must be >= 1 and `warmup` >= 0, got {runs}, {warmup}")
    interpreter = loaded.interpreter
    prepare_single(loaded, example)
    for _ in range(warmup):
        interpreter.invoke()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        interpreter.invoke()
        times[i] = time.perf_counter() - start
    return {"latency_ms_median": float(np.median(times) * 1e3),
            "latency_ms_p90": float(np.percentile(times, 90) * 1e3),
            "latency_runs": runs, "latency_warmup": warmup, "num_threads": loaded.num_threads}


def sizes(path_or_bytes, reference_bytes=None):
    """Raw and gzip bytes; with ``reference_bytes`` (the float32 .tflite size), the ratios."""
    content, _ = read_tflite(path_or_bytes)
    result = {"size_bytes": len(content), "gzip_bytes": len(gzip.compress(content, 9, mtime=0))}
    if reference_bytes:
        result["compression_vs_float32"] = reference_bytes / result["size_bytes"]
        result["gzip_compression_vs_float32"] = reference_bytes / result["gzip_bytes"]
    return result


def measure(path_or_bytes, x, y, num_threads=1, latency_runs=200, warmup=20,
            reference_bytes=None):
    """Accuracy, loss, latency and sizes of one .tflite model, in one dict."""
    loaded = load(path_or_bytes, num_threads=num_threads)
    acc, loss = accuracy(loaded, x, y)
    result = {"tflite_accuracy": acc, "tflite_loss": loss, "delegate": loaded.delegate,
              "delegate_fallback_reason": loaded.fallback_reason}
    if latency_runs:
        result.update(latency(loaded, x[0], warmup=warmup, runs=latency_runs))
    else:  # timed elsewhere (measure.time_together)
        result.update(latency_ms_median=None, latency_ms_p90=None, num_threads=num_threads)
    result.update(sizes(path_or_bytes, reference_bytes))
    return result
