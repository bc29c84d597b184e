"""Mixed int4/int8 weight quantization of a float32 .tflite, chosen by layer importance.

Dynamic-range quantization (weights int8 or int4 per output channel, activations float, integer
compute), made by ai-edge-quantizer from the float32 .tflite the converter wrote: the TFLite
converter has no int4. Which layers get int4 is measured, not guessed:

- ``weighted_ops``: the CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED ops and the Keras layer
  each came from, read from the converter's tensor names ("<model>/<layer path>/<TF op>",
  ";"-joined where it fused ops; a nested model's layer has the path "inner/conv").
- ``layer_costs``: each layer alone at int4 (all else float) on the interpreter over a
  validation sample: its accuracy drop and mean softmax change against the float32 .tflite.
- ``plan`` (pure arithmetic): int4 for the least important layers first, until a size budget or
  an int4 share of the weights is met. ``mixed``: all of it, the size checked after
  quantizing; ``all_int4``: the same path with every layer int4.

A layer that is not exactly one weighted op (called twice, lowered to another op, or fused so
that its name is ambiguous) is never made int4: it keeps the all-int8 recipe and ``kept_int8``
says why.
"""

import contextlib
import dataclasses
import io as _io
import re
import time

import numpy as np

from tfprune import checks
from tfprune.errors import TfpruneError
from tfprune.lazy import keras
from tfprune.tflite import evaluate

OP_TYPES = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
KB = 1024  # as tune's max_size_kb and the reports: KB are KiB
DEFAULT_INT4_FRACTION = 0.5
# Validation images the layers are ranked on (each alone at int4): enough to tell a costly layer
# from a cheap one, few enough that ranking a 50-layer model takes seconds.
RANK_SAMPLES = 1000
# The TF op a kernel's tensor name ends in ("cnn/fc1/MatMul", ".../block_1_depthwise/depthwise"):
# how a layer is found in the names when no Keras layer names are given.
_KERNEL_OP = re.compile(r"^(Conv1D|Conv2D|conv1d|depthwise|MatMul|BiasAdd|convolution)(_?\d+)?$")


# ---- The ops of a .tflite and the layers they came from -----------------------------------

@dataclasses.dataclass(frozen=True)
class WeightedOp:
    layer: str        # Keras layer path ("fc1"; "inner/conv" in a nested model); None: not one
    tensor: str       # its output tensor name(s), ";"-joined: what ai-edge-quantizer matches
    op_type: str      # CONV_2D, DEPTHWISE_CONV_2D or FULLY_CONNECTED
    params: int       # weights in its kernel tensor
    weight_type: str  # FLOAT32 as converted; INT8 or INT4 once quantized
    candidates: tuple = ()  # every weighted layer its tensor names mention
    # Its kernel's stored values (int8 once quantized; None where the buffer is not in the file).
    values: object = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def regex(self):
        # ai-edge-quantizer searches the op's output names joined by ";" plus a trailing ";"
        # (its get_op_scope); anchored at both ends, "conv1" can never select "conv10".
        return "^" + re.escape(self.tensor) + ";$"


def keras_layers(model, prefix=""):
    """Paths of the Dense/Conv layers of a Keras model, nested models' as "inner/conv"."""
    paths = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            paths += keras_layers(layer, f"{prefix}{layer.name}/")
        elif isinstance(layer, kernel_layers()):
            paths.append(prefix + layer.name)
    return paths


def weighted_ops(content, layer_names=None):
    """Every CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED op of a .tflite, in graph order,
    with its kernel's values (what the compression stages' counts read from the file).

    ``layer_names``: the Keras layer paths (``keras_layers(model)``); an op belongs to the one
    whose path follows the model name in its tensor names. Without them the layer is read from
    the name piece that ends in a kernel op (Conv2D, depthwise, MatMul): right for the zoo,
    but only a guess for layers with inner scopes, so tfprune always passes the names.
    """
    from ai_edge_quantizer import qtyping
    from ai_edge_quantizer.utils import tfl_flatbuffer_utils as flatbuffer

    content, _ = evaluate.read_tflite(content)
    model = flatbuffer.read_model(content)
    kinds = {getattr(qtyping.BuiltinOperator, name): name for name in OP_TYPES}
    types = {value: name for name, value in vars(qtyping.TensorType).items()
             if isinstance(value, int)}
    paths = None if layer_names is None else [tuple(name.split("/")) for name in layer_names]
    ops = []
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            kind = kinds.get(max(code.builtinCode, code.deprecatedBuiltinCode))
            if kind is None:
                continue
            outputs = [flatbuffer.get_tensor_name(subgraph.tensors[i]) for i in op.outputs
                       if i >= 0]
            kernel = subgraph.tensors[op.inputs[1]]
            names = outputs + [flatbuffer.get_tensor_name(kernel)]
            found = _layers_in(names, paths)
            ops.append(WeightedOp(found[0] if len(found) == 1 else None, ";".join(outputs), kind,
                                  int(np.prod(kernel.shape)), types.get(kernel.type, "?"),
                                  tuple(found), _values(flatbuffer, kernel, model.buffers)))
    return ops


def _values(flatbuffer, tensor, buffers):
    try:
        return flatbuffer.get_tensor_data(tensor, buffers)
    except (KeyError, TypeError, ValueError):  # a type NumPy has no dtype for (int4)
        return None


def kernel_nonzeros(content):
    """Non-zero weights in the kernels of a .tflite's weighted ops, as stored (int8 values once
    quantized: what a pruning-preserving stage must keep); None when a kernel's values cannot
    be read (one computed by another op, a packed int4 buffer)."""
    total = 0
    for op in weighted_ops(content):
        if op.values is None:
            return None
        total += int(np.count_nonzero(op.values))
    return total


def _layers_in(names, paths):
    """The layers the tensor ``names`` mention, in order of first mention."""
    found = []
    for name in names:
        for piece in filter(None, name.split(";")):
            parts = piece.split("/")
            if paths is None:
                hits = ["/".join(parts[1:-1])] if len(parts) >= 3 and _KERNEL_OP.match(
                    parts[-1]) else []
            else:  # "<model>/<layer path>/<op...>": the path right after the model's name
                hits = ["/".join(p) for p in paths
                        if len(parts) >= len(p) + 2 and tuple(parts[1:1 + len(p)]) == p]
            found += [hit for hit in hits if hit not in found]
    return found


def layer_map(ops, layer_names=None):
    """({layer: its one op}, {layer or op tensor: why it stays int8})."""
    grouped, kept = {}, {}
    for op in ops:
        if op.layer is None:
            named = f" (they name {', '.join(op.candidates)})" if op.candidates else ""
            kept[op.tensor] = f"its tensor names name no single weighted layer{named}"
        else:
            grouped.setdefault(op.layer, []).append(op)
    for layer, its in grouped.items():
        if len(its) > 1:
            kept[layer] = (f"it is {len(its)} ops, not one (a layer called more than once?); "
                           "ai-edge-quantizer quantizes ops, so it stays int8")
    for name in layer_names or ():
        if name not in grouped and name not in kept:
            kept[name] = (f"no {', '.join(OP_TYPES)} op carries its name (the converter made "
                          "it another op); it stays as the all-int8 recipe makes it")
    return {layer: its[0] for layer, its in grouped.items() if len(its) == 1}, kept


def check_layers(argument, names, layers, kept):
    """``names`` as a list of layers that can be int4; a clear error naming the valid ones."""
    names = [names] if isinstance(names, str) else list(names)
    for name in names:
        if name in kept:
            raise TfpruneError(f"`{argument}` must name layers that can be int4, got {name!r}: "
                               f"{kept[name]}")
        if name not in layers:
            raise TfpruneError(f"`{argument}` must name weighted layers of the model "
                               f"({', '.join(layers)}), got {name!r}")
    return list(dict.fromkeys(names))


# ---- ai-edge-quantizer ---------------------------------------------------------------------

def _quantize(content, recipe):
    """Dynamic-range quantization by ``recipe``: (regex, bits) pairs, a later pair overriding
    earlier ones for the ops it matches; ops no pair matches stay float."""
    from ai_edge_quantizer import quantizer

    engine = quantizer.Quantizer(content)
    for regex, bits in recipe:
        engine.add_dynamic_config(regex, "*", bits)
    # It prints a size report (stdout) and, on larger models, progress bars (stderr) whatever
    # it is asked; the caller reports what matters.
    try:
        with contextlib.redirect_stdout(_io.StringIO()), \
                contextlib.redirect_stderr(_io.StringIO()):
            result = engine.quantize(enable_progress_bar=False, enable_progress_report=False)
    except (RuntimeError, ValueError) as err:
        raise TfpruneError(f"ai-edge-quantizer cannot quantize this model: "
                           f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
                           ) from None
    return bytes(result.quantized_model)


def _prepare(content, ops, layer_names):
    content, _ = evaluate.read_tflite(content)
    ops = weighted_ops(content, layer_names) if ops is None else ops
    quantized = [op for op in ops if op.weight_type != "FLOAT32"]
    if quantized:
        raise TfpruneError(f"`content` must be a float32 .tflite (ai-edge-quantizer quantizes "
                           f"float weights), got {quantized[0].weight_type} weights in "
                           f"{quantized[0].layer or quantized[0].tensor!r}")
    layers, kept = layer_map(ops, layer_names)
    return content, ops, layers, kept


def quantize(content, int4_layers=(), ops=None, layer_names=None):
    """int8 weights for every weighted op of a float32 .tflite, int4 for ``int4_layers``."""
    content, ops, layers, kept = _prepare(content, ops, layer_names)
    int4_layers = check_layers("int4_layers", int4_layers, layers, kept)
    return _quantize(content, [(".*", 8)] + [(layers[name].regex, 4) for name in int4_layers])


def layer_costs(content, x, y, layers=None, ops=None, layer_names=None, num_threads=1):
    """{layer: {"accuracy", "accuracy_drop", "output_error", "params"}}: each layer alone at
    int4 (every other op float) on the interpreter over (x, y), against the float32 .tflite
    on the same x. ``output_error`` is the mean absolute difference of the outputs."""
    content, ops, table, kept = _prepare(content, ops, layer_names)
    layers = list(table) if layers is None else check_layers("layers", layers, table, kept)
    x, y = check_sample(x, y)
    reference = evaluate.predict(evaluate.load(content, num_threads=num_threads), x)
    reference_accuracy = float(np.mean(np.argmax(reference, axis=1) == y))
    costs = {}
    for layer in layers:
        alone = _quantize(content, [(table[layer].regex, 4)])
        probs = evaluate.predict(evaluate.load(alone, num_threads=num_threads), x)
        accuracy = float(np.mean(np.argmax(probs, axis=1) == y))
        costs[layer] = {"accuracy": accuracy, "accuracy_drop": reference_accuracy - accuracy,
                        "output_error": float(np.mean(np.abs(probs - reference))),
                        "params": table[layer].params}
    return costs


def check_sample(x, y, argument="validation"):
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y).reshape(-1)
    if x.ndim < 2 or len(x) < 1 or len(y) != len(x):
        raise TfpruneError(f"`{argument}` must be (x, y) with as many labels as inputs (at "
                           f"least one), got x {tuple(x.shape)} and y {tuple(y.shape)}")
    return x, y.astype(np.int64)


# ---- Planning: pure arithmetic on measured costs -------------------------------------------

def saved_bytes(params):
    """Bytes int4 saves over int8 on a kernel of ``params`` weights: two weights per byte."""
    return params - (params + 1) // 2


def rank(costs):
    """The layers, least important first. Importance is cost per byte int4 saves: the accuracy
    drop (a negative drop, noise, counts as 0) over saved bytes; ties, zero drops included, by
    the output error over saved bytes; then by name, so the order is deterministic."""
    def key(layer):
        cost, saved = costs[layer], max(saved_bytes(costs[layer]["params"]), 1)
        return (max(cost["accuracy_drop"], 0.0) / saved, cost["output_error"] / saved, layer)
    return sorted(costs, key=key)


def _kb(size):
    return f"{size / KB:.1f} KB"


def check_budget(budget_bytes, int8_bytes, int4_bytes, argument="budget_bytes"):
    if budget_bytes < int4_bytes:
        raise TfpruneError(
            f"`{argument}` must be at least the all-int4 model's size, {_kb(int4_bytes)}, got "
            f"{_kb(budget_bytes)} (the all-int8 model is {_kb(int8_bytes)})")


def _not_both(names, budget, fraction):
    if budget is not None and fraction is not None:
        raise TfpruneError(f"`{names[0]}` and `{names[1]}` must not both be given (a size "
                           f"budget or an int4 share), got {budget} and {fraction}")


def check_fraction(argument, value):
    """A share in the closed interval [0, 1]: 0 is all-int8 and 1 all-int4, both meaningful."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise TfpruneError(f"`{argument}` must be in [0, 1], got {value!r}")
    return float(value)


def plan(costs, int8_bytes, budget_bytes=None, int4_fraction=None, int4_bytes=None,
         total_params=None, names=("budget_bytes", "int4_fraction")):
    """Which layers get int4: {"int4_layers" (in the order chosen), "int8_layers", "ranking",
    "predicted_bytes", "int4_fraction" (of ``total_params``, default all layers' weights),
    "note"}.

    ``costs``: ``layer_costs``' output (accuracy_drop, output_error, params per layer);
    ``int8_bytes``: the all-int8 model's size; ``int4_bytes``: the all-int4 model's size when
    measured (else predicted). Layers are taken in ``rank`` order until the predicted size
    (int8_bytes less ``saved_bytes`` of each int4 layer) fits ``budget_bytes``, or until the
    int4 share of the weights reaches ``int4_fraction``; then, most important first, each
    chosen layer the target is met without goes back to int8. ``names`` name the two options
    in errors.
    """
    _not_both(names, budget_bytes, int4_fraction)
    if budget_bytes is None and int4_fraction is None:
        raise TfpruneError(f"one of `{names[0]}` and `{names[1]}` must be given")
    order = rank(costs)
    params = {layer: int(costs[layer]["params"]) for layer in costs}
    total = total_params or sum(params.values()) or 1
    note = None
    if budget_bytes is not None:
        checks.check_positive(names[0], budget_bytes)
        predicted_int4 = int8_bytes - sum(saved_bytes(p) for p in params.values())
        check_budget(budget_bytes, int8_bytes,
                     predicted_int4 if int4_bytes is None else int4_bytes, names[0])
        if int8_bytes <= budget_bytes:
            note = (f"the all-int8 model ({_kb(int8_bytes)}) already fits the budget "
                    f"({_kb(budget_bytes)}): no layer needs int4")

        def met(layers):
            return int8_bytes - sum(saved_bytes(params[c]) for c in layers) <= budget_bytes
    else:
        int4_fraction = check_fraction(names[1], int4_fraction)

        def met(layers):
            return sum(params[c] for c in layers) / total >= int4_fraction
    chosen = []
    for layer in order:
        if met(chosen):
            break
        chosen.append(layer)
    # A large layer late in the order can meet the target alone: give back to int8, most
    # important first, every chosen layer the target no longer needs (costs add up, so this
    # only lowers the total cost).
    for layer in reversed(list(chosen)):
        rest = [c for c in chosen if c != layer]
        if met(rest):
            chosen = rest
    predicted = int8_bytes - sum(saved_bytes(params[c]) for c in chosen)
    return {"int4_layers": chosen, "int8_layers": [layer for layer in costs if layer not in chosen],
            "ranking": order, "predicted_bytes": predicted,
            "int4_fraction": sum(params[c] for c in chosen) / total, "note": note}


# ---- The one call ---------------------------------------------------------------------------

def check_options(budget_kb=None, int4_fraction=None, names=("budget_kb", "int4_fraction")):
    """(budget_kb, int4_fraction) checked; neither given: the default int4 share."""
    _not_both(names, budget_kb, int4_fraction)
    if budget_kb is not None:
        return checks.check_positive(names[0], budget_kb), None
    if int4_fraction is None:
        return None, DEFAULT_INT4_FRACTION
    return None, check_fraction(names[1], int4_fraction)


def spec_for(quantizations, budget_kb=None, int4_fraction=None,
             names=("budget_kb", "int4_fraction")):
    """The MixedSpec of a job whose quantizations are ``quantizations``: its options checked,
    and refused when given without the "mixed" quantization (they would be ignored)."""
    spec = MixedSpec(budget_kb, int4_fraction, names=names)
    given = [name for name, value in zip(names, (budget_kb, int4_fraction)) if value is not None]
    if given and "mixed" not in quantizations:
        raise TfpruneError(f"`{given[0]}` must come with the 'mixed' quantization, got "
                           f"quantizations {', '.join(quantizations)}")
    return spec


@dataclasses.dataclass
class MixedSpec:
    """What "mixed" aims for: the largest .tflite (``budget_kb``, KB = 1024 B) or the int4 share
    of the weights (``int4_fraction``, default 0.5 when neither is given); not both. ``names``
    are the options' names in the caller's errors (the export job's flags)."""

    budget_kb: float = None
    int4_fraction: float = None
    names: tuple = dataclasses.field(default=("budget_kb", "int4_fraction"), repr=False,
                                     compare=False)

    def __post_init__(self):
        self.budget_kb, self.int4_fraction = check_options(self.budget_kb, self.int4_fraction,
                                                           self.names)

    @property
    def budget_bytes(self):
        return None if self.budget_kb is None else self.budget_kb * KB


def _info(ops, layers, kept, int4_layers, content):
    total = sum(op.params for op in ops) or 1
    return {"int4_layers": list(int4_layers),
            "int8_layers": [layer for layer in layers if layer not in int4_layers] + list(kept),
            "int4_fraction": sum(layers[layer].params for layer in int4_layers) / total,
            "size_bytes": len(content), "kept_int8": dict(kept)}


def all_int4(content, ops=None, layer_names=None):
    """(bytes, info): every layer that can be int4 at int4 (the rest int8, ``kept_int8``)."""
    content, ops, layers, kept = _prepare(content, ops, layer_names)
    quantized = quantize(content, list(layers), ops, layer_names)
    return quantized, _info(ops, layers, kept, list(layers), quantized)


def extremes(content, spec, ops=None, layer_names=None):
    """(all-int8 bytes, all-int4 bytes); a budget below the all-int4 size is refused here, the
    cheap check (two quantizations, no interpreter) to run before anything is written."""
    content, ops, layers, kept = _prepare(content, ops, layer_names)
    int8 = quantize(content, (), ops, layer_names)
    int4 = quantize(content, list(layers), ops, layer_names)
    if spec.budget_kb is not None:
        check_budget(spec.budget_bytes, len(int8), len(int4), spec.names[0])
    return int8, int4


def mixed(content, spec, x, y, ops=None, layer_names=None, costs=None, num_threads=1):
    """(bytes, info) of the mixed int4/int8 model ``spec`` asks for.

    (x, y): a validation sample (never the test split) for ``layer_costs``, unless ``costs``
    were measured already. The plan's predicted size can be a few bytes off (alignment), so
    the quantized model is measured and, while over the budget, the next layer in rank order
    is made int4 too. info: int4_layers, int8_layers, int4_fraction (of the weights),
    predicted_bytes, size_bytes, int8_bytes, int4_bytes, budget_kb, target_int4_fraction,
    costs, ranking, kept_int8, note, costs_time_s.
    """
    spec = spec if spec is not None else MixedSpec()
    content, ops, layers, kept = _prepare(content, ops, layer_names)
    int8, int4 = extremes(content, spec, ops, layer_names)
    start = time.perf_counter()
    if costs is None:
        costs = layer_costs(content, x, y, ops=ops, layer_names=layer_names,
                            num_threads=num_threads)
    costs_time = time.perf_counter() - start
    chosen = plan(costs, len(int8), spec.budget_bytes,
                  None if spec.budget_kb is not None else spec.int4_fraction,
                  int4_bytes=len(int4), total_params=sum(op.params for op in ops),
                  names=spec.names)
    int4_layers = list(chosen["int4_layers"])
    quantized = quantize(content, int4_layers, ops, layer_names)
    for layer in chosen["ranking"]:
        if spec.budget_kb is None or len(quantized) <= spec.budget_bytes:
            break
        if layer not in int4_layers:
            int4_layers.append(layer)
            quantized = quantize(content, int4_layers, ops, layer_names)
    info = _info(ops, layers, kept, int4_layers, quantized)
    info.update(predicted_bytes=chosen["predicted_bytes"], int8_bytes=len(int8),
                int4_bytes=len(int4), budget_kb=spec.budget_kb,
                target_int4_fraction=None if spec.budget_kb is not None else spec.int4_fraction,
                costs=costs, ranking=chosen["ranking"], note=chosen["note"],
                costs_time_s=costs_time)
    return quantized, info


def kernel_layers():
    """The Keras layer classes whose kernel is one weighted op."""
    return (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
            keras.layers.DepthwiseConv2D)
