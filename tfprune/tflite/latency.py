"""A measured cost model of the deployment target: the LiteRT interpreter on this machine, at
a thread count, a quantization and with XNNPACK on or off (``Target``).

``kernels_of(model)`` cuts a Keras functional model into the kernels the interpreter runs
(cost.py: a layer and what the converter and XNNPACK fuse into it); each is timed as a small
``.tflite`` model built from the layer's own class and config at its own input shapes (random
weights), all of one batch timed interleaved in shuffled rounds (measure.interleaved_times),
the interpreter's per-invoke overhead taken off each and counted once per model. Times are
kept in a ``Table``, one JSON file per target under the cache directory (``TFPRUNE_CACHE``,
else ~/.cache/tfprune), reused across runs and extended lazily: only kernels it has not timed
are measured. ``CostModel`` fits each kind's curve (cost.fit) and predicts a model's latency
at any channel counts of its groups (pruning/groups.py): the dense model's, a shrunk model's,
or one the latency-aware selection (pruning/budget.py) is weighing.
"""

import dataclasses
import hashlib
import json
import os
import platform
import time

import numpy as np

from tfprune import io
from tfprune.errors import TfpruneError
from tfprune.keras import keras, tf
from tfprune.pruning import groups as groups_lib
from tfprune.tflite import cost, evaluate, measure

L = keras.layers

# What a table can time: the converter's quantizations (int4 and mixed are rewritten by
# ai-edge-quantizer from the float32 file, and their kernels cannot be built one by one).
TIMEABLE = ("float32", "float16", "dynamic", "int8")
TABLE_VERSION = 3
# Layers that cost nothing at inference (removed by the converter, or a view of the data).
FREE = (L.InputLayer, L.Dropout, L.AlphaDropout, L.SpatialDropout1D, L.SpatialDropout2D,
        L.GaussianNoise, L.GaussianDropout, L.ActivityRegularization, L.Flatten, L.Reshape)
# Followers fused into the kernel before them (BatchNorm folded, ReLU/ReLU6 a fused
# activation) when that kernel's output has no other reader.
FUSED_ACTIVATIONS = ("relu", "relu6", "linear")
# The roles that set a layer's input and its output channels (groups.Member.role).
IN_ROLES = ("in", "channel", "pass", "norm", "query", "key", "value")
OUT_ROLES = ("out", "channel", "pass", "norm")
REDUCED = (0.25, 0.5, 0.75)  # the fractions of a kind's largest kernels timed for its curve
SAMPLED_PER_KIND = 3


@dataclasses.dataclass(frozen=True)
class Target:
    """Where the latency is meant: this machine's CPU, its LiteRT version, ``quantization``
    (TIMEABLE), ``threads`` and ``xnnpack``. ``key`` names its table file."""

    quantization: str = "float32"
    threads: int = 1
    xnnpack: bool = True

    def __post_init__(self):
        check_target(self.quantization, self.threads)

    def describe(self):
        import ai_edge_litert
        return {"cpu": _cpu(), "cores": os.cpu_count(),
                "litert": getattr(ai_edge_litert, "__version__", "unknown"),
                "quantization": self.quantization, "threads": self.threads,
                "xnnpack": self.xnnpack}

    def key(self):
        text = json.dumps(self.describe(), sort_keys=True)
        return f"{self.quantization}-t{self.threads}-" + \
            ("xnnpack" if self.xnnpack else "builtin") + "-" + \
            hashlib.sha1(text.encode()).hexdigest()[:10]


def check_target(quantization, threads):
    """The cheap checks of a target (no TensorFlow needed): a timeable quantization, threads
    an integer >= 1."""
    if quantization not in TIMEABLE:
        raise TfpruneError(f"latency quantization {quantization!r} cannot be timed by the cost "
                           f"model (its kernels are made from the whole float32 file); "
                           f"allowed: {', '.join(TIMEABLE)}")
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise TfpruneError(f"latency threads must be an integer >= 1, got {threads!r}")


def _cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cache_dir():
    return os.path.join(os.environ.get("TFPRUNE_CACHE") or
                        os.path.join(os.path.expanduser("~"), ".cache", "tfprune"), "latency")


class Table:
    """Measured kernel times of one Target: {"entries": {signature: {"seconds", "kind",
    "work", "elements", "ratio_of": the full-width entry a reduced-width one is relative to,
    or None}}, "steps": {"gemm", "depthwise"}, "overhead": seconds, "memory": the memory
    curve [(bytes, seconds per byte)] (cost.py)}, in
    ``path`` (written atomically after every batch of measurements)."""

    def __init__(self, target, directory=None):
        self.target = target
        self.path = os.path.join(directory or cache_dir(), target.key() + ".json")
        self.data = {"version": TABLE_VERSION, "target": target.describe(), "entries": {},
                     "steps": None, "overhead": None}
        if os.path.exists(self.path):
            try:
                loaded = io.read_json(self.path)
            except (OSError, ValueError):
                loaded = None  # a damaged table is measured again
            if isinstance(loaded, dict) and loaded.get("version") == TABLE_VERSION:
                self.data.update(loaded)

    @property
    def entries(self):
        return self.data["entries"]

    def save(self):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        io.write_json(self.path, self.data)


# -- the model's kernels ---------------------------------------------------------------------

def _producer(tensor):
    return tensor._keras_history.layer


def _family(layer):
    if isinstance(layer, (L.SeparableConv1D, L.SeparableConv2D)):
        return "separable"
    if isinstance(layer, (L.DepthwiseConv1D, L.DepthwiseConv2D)) or \
            groups_lib.is_grouped_depthwise(layer):
        return "depthwise"
    if isinstance(layer, (L.Conv1DTranspose, L.Conv2DTranspose)):
        return "transpose"
    if isinstance(layer, (L.Conv1D, L.Conv2D)):
        return "conv"
    if isinstance(layer, L.Dense):
        return "dense"
    if isinstance(layer, (L.MaxPooling1D, L.MaxPooling2D, L.AveragePooling1D,
                          L.AveragePooling2D)):
        return "pool"
    return "other"


def _activation_name(layer):
    if isinstance(layer, L.ReLU):
        config = layer.get_config()
        if float(config.get("negative_slope") or 0) or float(config.get("threshold") or 0):
            return "relu_other"
        top = config.get("max_value")
        return "relu" if top is None else "relu6" if float(top) == 6.0 else "relu_clipped"
    if isinstance(layer, L.Activation):
        return getattr(layer.activation, "__name__", "activation")
    return None


def _fusable(previous, layer):
    if isinstance(layer, L.BatchNormalization):
        return _family(previous) in ("conv", "depthwise", "separable", "dense", "transpose")
    name = _activation_name(layer)
    return name in FUSED_ACTIVATIONS and (
        _family(previous) != "other" or isinstance(previous, (L.Add, L.BatchNormalization)))


def _prod(shape):
    return int(np.prod([d for d in shape if d is not None])) if shape else 1


def _shape_of(family, first, core, last):
    """The non-channel sizes of a kernel (cost.features' ``shape``)."""
    in_shape = tuple(first.input.shape) if not isinstance(first.input, list) else \
        tuple(first.input[0].shape)
    out_shape = tuple(last.output.shape)
    shape = {"hw_in": _prod(in_shape[1:-1]), "hw_out": _prod(out_shape[1:-1])}
    config = core.get_config()
    if family in ("conv", "depthwise", "separable", "transpose"):
        shape["k"] = _prod(config["kernel_size"])
        shape["multiplier"] = int(config.get("depth_multiplier", 1) or 1)
    elif family == "pool":
        shape["k"] = _prod(config["pool_size"])
    return shape


def _channels(tensors):
    return int(sum(int(t.shape[-1]) if t.shape.rank else 1 for t in tensors))


def kernels_of(model):
    """The kernels of a functional ``model`` in order: [cost.Kernel], each with ``layers``
    (names), its first layer's inputs and its last layer's output channels."""
    layers = [layer for layer in model.layers]
    readers = {layer.name: 0 for layer in layers}
    nodes = {}
    for layer in layers:
        node = groups_lib.model_node(model, layer)
        if node is None and not isinstance(layer, L.InputLayer):
            raise TfpruneError(f"layer {layer.name!r} is called more than once in "
                               f"{model.name!r}: the latency cost model needs one call per "
                               "layer")
        nodes[layer.name] = node
        if node is not None:
            for t in node.keras_inputs:
                readers[_producer(t).name] = readers.get(_producer(t).name, 0) + 1
    for t in model.outputs:
        readers[_producer(t).name] = readers.get(_producer(t).name, 0) + 1
    consumer = {}
    for layer in layers:
        node = nodes[layer.name]
        if node is not None and len(node.keras_inputs) == 1:
            consumer.setdefault(_producer(node.keras_inputs[0]).name, []).append(layer)
    kernels, taken = [], set()
    for layer in layers:
        if layer.name in taken or isinstance(layer, FREE):
            continue
        chain = [layer]
        if isinstance(layer, L.ZeroPadding2D) and readers[layer.name] == 1 and \
                len(consumer.get(layer.name, [])) == 1 and \
                _family(consumer[layer.name][0]) in ("conv", "depthwise", "separable", "pool"):
            chain.append(consumer[layer.name][0])  # XNNPACK folds the pad into the next op
        while readers[chain[-1].name] == 1 and len(consumer.get(chain[-1].name, [])) == 1 \
                and _fusable(chain[-1], consumer[chain[-1].name][0]):
            chain.append(consumer[chain[-1].name][0])
        taken.update(item.name for item in chain)
        core = chain[1] if isinstance(chain[0], L.ZeroPadding2D) and len(chain) > 1 else chain[0]
        family = _family(core)
        if family == "other":
            name = _activation_name(core)
            kind = type(core).__name__ + (f":{name}" if name else "")
        else:
            prefix = type(core).__name__ if family == "pool" else family
            kind = f"{prefix}_k{_shape_of(family, chain[0], core, chain[-1]).get('k', 1)}"
        node = nodes[chain[0].name]
        cin = _channels(node.keras_inputs)
        if isinstance(chain[0], MERGE_SAME):
            cin = int(node.keras_inputs[0].shape[-1])
        kernels.append(cost.Kernel(
            name=chain[0].name if len(chain) == 1 else f"{core.name}+{len(chain) - 1}",
            layers=tuple(item.name for item in chain), family=family, kind=kind, cin=cin,
            cout=int(chain[-1].output.shape[-1]),
            shape=_shape_of(family, chain[0], core, chain[-1]),
            params=int(sum(item.count_params() for item in chain))))
    return kernels


MERGE_SAME = (L.Add, L.Subtract, L.Multiply, L.Average, L.Maximum, L.Minimum)


# -- channel counts from the groups ------------------------------------------------------------

class Widths:
    """Every kernel's (cin, cout) at given kept counts of the channel ``groups``: a kernel's
    input loses the dropped channels of every group on its first layer's input roles (a Dense
    after a Flatten: each times its spatial positions), its output those of its last layer's
    output roles; each (group, offset) once (an Add reads the same group twice)."""

    def __init__(self, kernels, groups):
        self.kernels = list(kernels)
        self.groups = {g.id: g for g in groups}
        sides = {}
        for group in groups:
            for member in group.members:
                for side, roles in (("in", IN_ROLES), ("out", OUT_ROLES)):
                    if member.role in roles:
                        sides.setdefault((member.layer, side), {})[
                            (group.id, member.offset)] = member.repeat
        self.terms = {}
        self.touching = {}   # group id -> names of the kernels it changes
        for kernel in self.kernels:
            terms_in = list(sides.get((kernel.layers[0], "in"), {}).items())
            terms_out = list(sides.get((kernel.layers[-1], "out"), {}).items())
            self.terms[kernel.name] = (terms_in, terms_out)
            for (gid, _), _ in terms_in + terms_out:
                self.touching.setdefault(gid, set()).add(kernel.name)

    def of(self, kernel, counts):
        terms_in, terms_out = self.terms[kernel.name]
        cin = kernel.cin - sum((self.groups[g].width - counts.get(g, self.groups[g].width)) * r
                               for (g, _), r in terms_in)
        cout = kernel.cout - sum((self.groups[g].width - counts.get(g, self.groups[g].width))
                                 * r for (g, _), r in terms_out)
        return max(1, int(cin)), max(1, int(cout))

    def all(self, counts):
        return {k.name: self.of(k, counts) for k in self.kernels}


# -- micro-models ------------------------------------------------------------------------------

_NOT_TIME = ("name", "trainable", "dtype")


def _clean(config):
    return {k: v for k, v in config.items() if k not in _NOT_TIME and not k.endswith(
        ("_initializer", "_regularizer", "_constraint"))}


def _scaled(channels, full, new):
    return max(1, int(round(channels * new / full))) if full else channels


def _resized_config(layer, cin, cout):
    config = layer.get_config()
    family = _family(layer)
    if family == "depthwise" and "groups" in config and config.get("groups", 1) > 1:
        config["filters"] = config["groups"] = cin
    elif family in ("conv", "separable", "transpose"):
        config["filters"] = cout
    elif family == "dense":
        config["units"] = cout
    return config


def signature(model, kernel, cin, cout):
    """The table's key of ``kernel`` at (cin, cout): its layers' classes and configs (names,
    initializers left out) and its input shapes."""
    node = groups_lib.model_node(model, model.get_layer(kernel.layers[0]))
    shapes = [list(t.shape[1:-1]) + [_scaled(int(t.shape[-1]), kernel.cin, cin)]
              for t in node.keras_inputs]
    parts = [[type(model.get_layer(n)).__name__,
              _clean(_resized_config(model.get_layer(n), cin, cout))] for n in kernel.layers]
    text = json.dumps([parts, shapes, cin, cout], sort_keys=True, default=str)
    return kernel.kind + ":" + hashlib.sha1(text.encode()).hexdigest()[:16]


def micro_model(model, kernel, cin, cout):
    """A Keras model of ``kernel`` alone at (cin, cout) channels (random weights)."""
    first = model.get_layer(kernel.layers[0])
    node = groups_lib.model_node(model, first)
    inputs, mapping = [], {}
    for t in node.keras_inputs:
        shape = tuple(t.shape[1:-1]) + (_scaled(int(t.shape[-1]), kernel.cin, cin),)
        mapping[id(t)] = keras.Input(shape, batch_size=1, dtype=t.dtype)
        inputs.append(mapping[id(t)])

    def swap(value):
        return mapping.get(id(value), value)

    args = tf.nest.map_structure(swap, node.call_args)
    kwargs = tf.nest.map_structure(swap, node.call_kwargs)
    x = None
    for name in kernel.layers:
        layer = model.get_layer(name)
        config = _resized_config(layer, cin, cout)
        config.pop("name", None)
        clone = type(layer).from_config(config)
        x = clone(*args, **kwargs) if x is None else clone(x)
    return keras.Model(inputs, x)


def _convert(micro, quantization, seed):
    specs = [tf.TensorSpec(tuple(i.shape), i.dtype) for i in micro.inputs]
    function = tf.function(lambda *xs: micro(list(xs) if len(xs) > 1 else xs[0]))
    concrete = function.get_concrete_function(*specs)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], micro)
    if quantization != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        rng = np.random.default_rng(seed)

        def representative():
            for _ in range(4):
                yield [rng.standard_normal(tuple(i.shape)).astype(np.float32)
                       for i in micro.inputs]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def _fill_inputs(loaded, seed):
    rng = np.random.default_rng(seed)
    interpreter = loaded.interpreter
    for detail in interpreter.get_input_details():
        shape = tuple(int(d) for d in detail["shape"])
        if np.issubdtype(detail["dtype"], np.integer):
            value = rng.integers(-64, 64, shape).astype(detail["dtype"])
        else:
            value = rng.standard_normal(shape).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], value)


def time_contents(contents, target, rounds=5, budget_s=0.002, warmup=5, seed=0):
    """{key: median seconds per invoke} of .tflite ``contents`` {key: bytes}, timed
    interleaved: ``rounds`` shuffled rounds, each key invoked for about ``budget_s`` a round."""
    loaded = {}
    for key, content in contents.items():
        loaded[key] = evaluate.load(content, num_threads=target.threads, xnnpack=target.xnnpack)
        _fill_inputs(loaded[key], seed)
    calls, runs = {}, {}
    for key, model in loaded.items():
        invoke = model.interpreter.invoke
        for _ in range(warmup):
            invoke()
        start = time.perf_counter()
        invoke()
        once = max(time.perf_counter() - start, 1e-7)
        runs[key] = int(min(200, max(3, budget_s / once)))  # each key's runs by its speed
        calls[key] = invoke
    times = measure.interleaved_times(calls, rounds, runs, seed)
    return {key: float(np.median(t)) for key, t in times.items()}


# -- the cost model ---------------------------------------------------------------------------

def _overhead(table, log):
    if table.data.get("overhead") is None:
        i = keras.Input((1,), batch_size=1)
        micro = keras.Model(i, L.ReLU()(i))
        seconds = time_contents({"empty": _convert(micro, "float32", 0)}, table.target,
                                rounds=5)["empty"]
        table.data["overhead"] = seconds
        log(f"latency table: the interpreter's per-invoke overhead is {seconds * 1e6:.2f} us")
    return table.data["overhead"]


STEP_COUNTS = {"gemm": (64, 65, 68, 72, 76, 80, 84, 88, 96, 97, 100, 112, 128),
               "depthwise": (32, 33, 36, 40, 44, 48, 56, 64, 65, 68, 72, 80, 96)}


def _steps(table, log):
    """The output-channel steps of a 1x1 convolution and a 3x3 depthwise convolution on this
    target (cost.detect_step over a sweep of counts)."""
    if table.data.get("steps") is None:
        steps = {}
        for name, counts in STEP_COUNTS.items():
            contents = {}
            for c in counts:
                if name == "gemm":
                    i = keras.Input((14, 14, 128), batch_size=1)
                    micro = keras.Model(i, L.Conv2D(c, 1)(i))
                else:
                    i = keras.Input((28, 28, c), batch_size=1)
                    micro = keras.Model(i, L.DepthwiseConv2D(3, padding="same")(i))
                contents[c] = _convert(micro, table.target.quantization, c)
            times = time_contents(contents, table.target, rounds=7, budget_s=0.003)
            steps[name] = cost.detect_step(times)
        table.data["steps"] = steps
        table.save()
        log(f"latency table: output channels step at {steps['gemm']} (convolutions, dense) "
            f"and {steps['depthwise']} (depthwise) on {table.target.quantization}")
    return table.data["steps"]


MEMORY_UNIT_BYTES = 256 * 1024  # one layer of the memory chains: inside the L2 cache
MEMORY_LAYERS = (1, 2, 4, 8, 16, 32, 64, 128)  # chains of 256 KiB .. 32 MiB of weights


def bytes_per_weight(quantization):
    """A weight's bytes as the interpreter reads it: float16 weights are unpacked to float32
    when the model is loaded; dynamic-range and int8 keep one byte."""
    return 1 if quantization in ("dynamic", "int8") else 4


def _memory(table, log):
    """The memory curve of this target (cost.py): chains of 1..128 Dense layers of
    MEMORY_UNIT_BYTES weights each (batch 1: a matrix-vector product reads every weight once),
    timed interleaved; r(W) = (time - overhead) / W at W = layers x unit bytes."""
    if table.data.get("memory") is None:
        overhead = _overhead(table, log)
        n = int(round((MEMORY_UNIT_BYTES / bytes_per_weight(table.target.quantization)) ** 0.5))
        contents = {}
        for layers in MEMORY_LAYERS:
            i = keras.Input((n,), batch_size=1)
            x = i
            for _ in range(layers):
                x = L.Dense(n, activation="relu", use_bias=False)(x)
            contents[layers] = _convert(keras.Model(i, x), table.target.quantization, 0)
        times = time_contents(contents, table.target, rounds=7, budget_s=0.01)
        unit = n * n * bytes_per_weight(table.target.quantization)
        table.data["memory"] = cost.monotone_curve(
            [(layers * unit, max(times[layers] - overhead, 0.0) / (layers * unit))
             for layers in MEMORY_LAYERS])
        table.save()
        curve = table.data["memory"]
        if curve:
            log(f"latency table: weights stream at {1e-9 / curve[0][1]:.1f} GB/s from "
                f"{curve[0][0] / 2**20:.2f} MiB and {1e-9 / curve[-1][1]:.1f} GB/s from "
                f"{curve[-1][0] / 2**20:.0f} MiB of them")
    return table.data["memory"]


def _reduced(width, fraction, step):
    """``fraction`` of ``width`` channels, a multiple of ``step`` where the width allows (the
    counts the latency selection keeps)."""
    if step > 1 and width >= 2 * step:
        return max(step, int(round(width * fraction / step)) * step)
    return max(1, int(round(width * fraction)))


class CostModel:
    """The latency of ``model`` on ``target`` at any kept counts of its channel ``groups``:
    ``predict(counts)`` (a cost.Prediction; ``counts`` {group id: kept channels}, default all).
    Built by ``build``, which times what the table lacks."""

    def __init__(self, model, kernels, groups, costs, overhead, target, table_path,
                 measured=0, calibration=1.0, measured_dense=None):
        self.model_name = model.name
        self.kernels, self.costs, self.overhead = kernels, costs, overhead
        self._by_name = {kernel.name: kernel for kernel in kernels}
        self.widths = Widths(kernels, groups or [])
        self.target, self.table_path, self.measured = target, table_path, measured
        self.steps = costs.steps
        self.calibration = calibration  # measured / summed for the dense model (1: none)
        self.measured_dense = measured_dense
        self.calibrated_on = None  # id() of the model timed whole for the calibration

    def raw(self, counts=None):
        """The uncalibrated Prediction: the kernels' sum and one invoke's overhead."""
        prediction = self.costs.predict(self.widths.all(counts or {}))
        prediction.seconds += self.overhead
        return prediction

    def predict(self, counts=None):
        """The Prediction at ``counts``, scaled by the dense model's calibration: what the
        kernels timed alone miss in the whole model (activations out of cache between
        kernels) is taken to scale with the model's time."""
        prediction = self.raw(counts)
        prediction.seconds *= self.calibration
        prediction.per_kernel = {k: v * self.calibration
                                 for k, v in prediction.per_kernel.items()}
        return prediction

    def summary(self):
        return {"target": self.target.describe(), "table": self.table_path,
                "kernels": len(self.kernels), "kernels_timed_now": self.measured,
                "steps": dict(self.steps), "overhead_us": self.overhead * 1e6,
                "calibration": self.calibration,
                "dense_predicted_raw_ms": self.raw().seconds * 1e3,
                "dense_alone_ms": (self.costs.predict(alone=True).seconds + self.overhead) * 1e3,
                "weight_mib": self.costs.total_weight_bytes() / 2**20,
                "dense_measured_ms": self.measured_dense}

    def seconds(self, counts=None):
        return self.predict(counts).seconds

    def calibrate(self, model, log=None):
        """Time ``model`` (this architecture, its own weights: a trained model's activations
        are not an untrained one's) whole and scale the predictions by measured / summed."""
        example = np.random.default_rng(self._seed).standard_normal(
            tuple(model.inputs[0].shape[1:])).astype(np.float32)
        content = _convert_model(model, self.target.quantization, example, self._seed)
        dense = time_contents({"dense": content}, self.target, rounds=7, budget_s=0.02,
                              warmup=10, seed=self._seed)["dense"]
        self.measured_dense = dense * 1e3
        self.calibration = dense / self.raw().seconds
        self.calibrated_on = id(model)
        if log:
            log(f"latency model of {model.name!r}: dense {dense * 1e3:.3f} ms measured, "
                f"{self.raw().seconds * 1e3:.3f} ms the kernels' sum (calibration "
                f"{self.calibration:.3f})")

    def refine(self, counts, log=None):
        """Time the kernels at the widths ``counts`` gives them that the table lacks (NetAdapt's
        measured lookup, at the counts a selection chose), so predictions there are measured
        ones; how many were timed."""
        wanted = {}
        for kernel in self.kernels:
            cin, cout = self.widths.of(kernel, counts)
            if (cin, cout) != (kernel.cin, kernel.cout):
                wanted.setdefault(signature(self._model, kernel, cin, cout),
                                  (kernel, cin, cout, kernel.key))
        timed = _time_missing(self._model, self._table, wanted, self.steps, self.overhead,
                              log or (lambda _: None), self._seed)
        if timed:
            self.costs = fit_costs(self.kernels, self._table, self.steps)
            self.measured += timed
        return timed

    def kernel_seconds(self, names, counts, at=None):
        """Sum over the kernels ``names`` at ``counts``, calibrated (the units of
        ``seconds``), in the model at the counts ``at`` (default ``counts``: its working set
        sets how fast the weights stream). The selection's hot path: kernels are looked up by
        name, the model's stream rate kept for the last counts asked."""
        rate = self._rate(counts if at is None else at)
        total = 0.0
        for kernel in filter(None, map(self._by_name.get, names)):
            cin, cout = self.widths.of(kernel, counts)
            total += self.costs.kernel_seconds(kernel, cin, cout, rate) or 0.0
        return total * self.calibration

    def _rate(self, counts):
        key = tuple(sorted(counts.items()))
        if getattr(self, "_rate_key", None) != key:
            self._rate_key = key
            self._rate_value = self.costs.model_rate(self.widths.all(counts))
        return self._rate_value

    @classmethod
    def build(cls, model, groups=None, target=None, directory=None, log=None, seed=0,
              calibrate=True):
        """The CostModel of ``model`` (its ``groups``' counts to predict at) on ``target``,
        timing the kernels its table (in ``directory``, default ``cache_dir()``) lacks; with
        ``calibrate``, the dense model is timed whole too and the predictions scaled by
        measured / summed (``calibration``; 1 without)."""
        target = target or Target()
        log = log or (lambda _: None)
        table = Table(target, directory)
        kernels = kernels_of(model)
        steps = _steps(table, log)
        overhead = _overhead(table, log)
        _memory(table, log)
        # What to time: every kernel at full width, and the largest of each kind at REDUCED.
        wanted = {}
        for kernel in kernels:
            key = signature(model, kernel, kernel.cin, kernel.cout)
            kernel.key = key
            wanted.setdefault(key, (kernel, kernel.cin, kernel.cout, None))
        by_kind = {}
        for kernel in kernels:
            by_kind.setdefault(kernel.kind, []).append(kernel)
        for kind, members in by_kind.items():
            distinct = list({k.key: k for k in sorted(
                members, key=lambda k: -sum(k.features(k.cin, k.cout, steps)))}.values())
            picks = sorted({int(i) for i in np.linspace(0, len(distinct) - 1,
                                                        SAMPLED_PER_KIND)})
            for kernel in (distinct[i] for i in picks):  # the largest, the smallest, between
                for fraction in REDUCED:
                    cin = _reduced(kernel.cin, fraction, steps["gemm"])
                    cout = _reduced(kernel.cout, fraction, steps["gemm"])
                    if kernel.family in ("other", "depthwise", "pool") and \
                            kernel.cin == kernel.cout:
                        cout = cin
                    if (cin, cout) != (kernel.cin, kernel.cout):
                        wanted.setdefault(signature(model, kernel, cin, cout),
                                          (kernel, cin, cout, kernel.key))
        missing = _time_missing(model, table, wanted, steps, overhead, log, seed)
        costs = fit_costs(kernels, table, steps)
        built = cls(model, kernels, groups, costs, overhead, target, table.path,
                    measured=missing)
        built._model, built._table, built._seed = model, table, seed
        if calibrate:
            built.calibrate(model, log)
        return built


def _time_missing(model, table, wanted, steps, overhead, log, seed):
    """Time the kernels of ``wanted`` {signature: (kernel, cin, cout, full signature or
    None)} the table lacks, add them and save it; how many were timed."""
    missing = {key: spec for key, spec in wanted.items() if key not in table.entries}
    if not missing:
        return 0
    start = time.perf_counter()
    log(f"latency table: timing {len(missing)} kernel(s) of {model.name!r} "
        f"({len(wanted) - len(missing)} already in {table.path})")
    contents, failed = {}, []
    for n, (key, (kernel, cin, cout, _)) in enumerate(missing.items()):
        try:
            contents[key] = _convert(micro_model(model, kernel, cin, cout),
                                     table.target.quantization, seed)
        except Exception as err:  # noqa: BLE001 - named and left out of the fit
            failed.append(f"{kernel.name} ({type(err).__name__}: {str(err)[:80]})")
        if (n + 1) % 50 == 0:
            log(f"latency table: converted {n + 1}/{len(missing)}")
    times = time_contents(contents, table.target, seed=seed)
    for key, seconds in times.items():
        kernel, cin, cout, ratio_of = missing[key]
        work, elements = kernel.features(cin, cout, steps)
        table.entries[key] = {"seconds": max(seconds - overhead, 0.0), "kind": kernel.kind,
                              "work": work, "elements": elements, "ratio_of": ratio_of,
                              "cin": cin, "cout": cout}
    table.save()
    log(f"latency table: {len(times)} kernel(s) timed in {time.perf_counter() - start:.0f} s"
        + (f"; not buildable alone (counted as 0): {', '.join(failed[:5])}" if failed else ""))
    return len(times)


def fit_costs(kernels, table, steps):
    """cost.Costs of ``kernels`` from the table: each kernel's full-width time, and each kind's
    curve fitted over every reduced-width entry of that kind (relative to its kernel's
    full-width entry)."""
    samples = {}
    for entry in table.entries.values():
        if not entry.get("ratio_of"):  # full width: the curve passes through (1, 1, 1)
            samples.setdefault(entry["kind"], []).append(
                (1.0 if entry["work"] else 0.0, 1.0, 1.0))
            continue
        full = table.entries.get(entry["ratio_of"])
        if full is None or not full["seconds"] > 0:
            continue
        samples.setdefault(entry["kind"], []).append(
            (entry["work"] / full["work"] if full["work"] else 0.0,
             entry["elements"] / full["elements"] if full["elements"] else 0.0,
             entry["seconds"] / full["seconds"]))
    curves = {kind: cost.fit(s) for kind, s in samples.items()}
    measured = {k.name: table.entries[k.key]["seconds"] for k in kernels
                if k.key in table.entries}
    exact = {}
    by_key = {}
    for k in kernels:
        by_key.setdefault(k.key, []).append(k)
    for entry in table.entries.values():
        for k in by_key.get(entry.get("ratio_of") or "", ()):
            exact[(k.name, entry["cin"], entry["cout"])] = entry["seconds"]
    return cost.Costs(kernels, curves, measured, steps, exact, table.data.get("memory"),
                      bytes_per_weight(table.target.quantization))


def cost_model(model, groups=None, quantization="float32", threads=1, xnnpack=True, log=None,
               directory=None):
    """``CostModel.build`` on ``Target(quantization, threads, xnnpack)``: the cost builder the
    channel method's latency selection is given (method_objects.make_method)."""
    return CostModel.build(model, groups, Target(quantization, threads, xnnpack),
                           directory=directory, log=log)


def measured(models, example, target, rounds=10, seed=0):
    """{name: median ms} of Keras ``models`` {name: model} converted for ``target`` and timed
    together (measure.time_together: interleaved shuffled rounds), from a temporary
    directory."""
    directory = io.temp_dir("tfprune-latency-")
    try:
        paths = {}
        for name, model in models.items():
            paths[name] = os.path.join(directory, f"{name}.tflite")
            io.write_bytes(paths[name], _convert_model(model, target.quantization, example,
                                                       seed))
        timed = measure.time_together(list(paths.values()), example, rounds=rounds,
                                      num_threads=target.threads, seed=seed,
                                      xnnpack=target.xnnpack)
        return {name: timed[path]["latency_ms_median"] for name, path in paths.items()}
    finally:
        io.remove_temp(directory)


def add_measured(finished, dense, log=None):
    """Add to a latency-selected ``finished`` (method_objects.Finished) the measured latency
    of the ``dense`` model and of the shrunk one, timed together on the cost model's target,
    and the prediction's error; a no-op for the other selections."""
    report = finished.statistics.get("latency")
    if report is None:
        return None
    t = report["target"]
    target = Target(t["quantization"], t["threads"], t["xnnpack"])
    example = np.random.default_rng(0).standard_normal(
        tuple(dense.inputs[0].shape[1:])).astype(np.float32)
    times = measured({"dense": dense, "shrunk": finished.shrink.model}, example, target)
    report.update(dense_measured_together_ms=times["dense"], shrunk_measured_ms=times["shrunk"],
                  measured_ratio=times["shrunk"] / times["dense"],
                  shrunk_prediction_error=report["pruned_predicted_ms"] / times["shrunk"] - 1)
    if log:
        log(f"latency ({t['quantization']}, {t['threads']} thread(s)): target "
            f"{report['target_ratio']:.3f} of the dense model; predicted "
            f"{report['pruned_predicted_ms']:.3f} ms ({report['predicted_ratio']:.3f}), "
            f"measured {times['shrunk']:.3f} ms against the dense {times['dense']:.3f} ms timed "
            f"with it ({report['measured_ratio']:.3f}); prediction error "
            f"{report['shrunk_prediction_error']:+.1%}")
    return report


def _convert_model(model, quantization, example, seed):
    from tfprune.tflite import export
    representative = None
    if quantization == "int8":
        rng = np.random.default_rng(seed)
        representative = (np.asarray(example, np.float32)[None]
                          + 0.1 * rng.standard_normal((16,) + np.shape(example))).astype(
                              np.float32)
    return export.to_tflite(model, quantization, representative)
