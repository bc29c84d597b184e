"""The maths of the latency cost model (no TensorFlow): what a kernel's time depends on, and
how the measured times are fitted and summed.

A *kernel* is what the interpreter runs as one unit: a layer and the layers the converter and
XNNPACK fuse into it (a BatchNormalization and a ReLU after a convolution, a ZeroPadding2D
before one). Its time at ``cin`` input and ``cout`` output channels is modelled per kind as

    T(cin, cout) = a + b * work(cin, cout) + c * elements(cin, cout)

where ``work`` counts multiply-accumulates with the output channels rounded up to the
kernel's channel ``step`` (XNNPACK computes whole tiles of output channels; the step, the
multiple of channels the kernels run fast on, is detected by timing: ``detect_step``), and
``elements`` counts the values read and written. (a, b, c) are non-negative and fitted per kind
to measured micro-models by least squares on the relative error; each kernel measured at full
width also keeps its own correction factor (measured / fitted), so that a kernel the table has
timed is predicted at full width as measured and elsewhere along its kind's curve.

A kernel timed alone runs with its weights in cache; in the whole model they are evicted by
the other kernels' weights once the model's working set outgrows the caches, and are read
from further away on every invoke. The table measures that per target as a *memory curve*:
``r(W)``, the seconds per weight byte of chains of matrix-vector products whose weights total
``W`` bytes (how fast weights stream from where a working set of W bytes lives). A kernel with
``w`` weight bytes in a model of ``W`` bytes takes at least ``w * r(W)`` (a roofline: the
weights must arrive; a kernel that computes longer than that hides the reading), so its time
in the model is ``max(T, w * r(W))`` (``Costs.kernel_seconds``).
"""

import dataclasses
import math

import numpy as np

# Kinds whose time is multiply-accumulates (with rounded output channels), not only traffic.
COMPUTE_FAMILIES = ("conv", "depthwise", "separable", "dense", "transpose", "pool")


def round_up(n, step):
    return int(math.ceil(n / step) * step) if step > 1 else int(n)


@dataclasses.dataclass
class Kernel:
    """One unit of work: ``layers`` (the Keras layers it is made of, the first one's inputs,
    the last one's output), its ``family`` (COMPUTE_FAMILIES or another named kind),
    ``kind`` (the fit it shares), the full ``cin``/``cout``, and ``shape``: the sizes its cost
    depends on besides the channels ({"hw_in", "hw_out", "k", "multiplier"})."""

    name: str
    layers: tuple
    family: str
    kind: str
    cin: int
    cout: int
    shape: dict
    key: str = ""            # the table's key of its full-width signature
    params: int = 0          # its layers' weights at full width (Keras count_params)

    def features(self, cin, cout, steps):
        """(work, elements) at ``cin`` input and ``cout`` output channels."""
        return features(self.family, self.shape, cin, cout, steps)

    def weights(self, cin, cout):
        """Its weights at (cin, cout): ``params`` scaled as the family's weight count scales
        (k*cin*cout for a convolution or dense layer, k*cin for a depthwise one; for other
        layers cin*cout where they hold at least that many, else the output channels)."""
        if not self.params:
            return 0.0
        full = weight_count(self.family, self.shape, self.cin, self.cout, self.params)
        return self.params * weight_count(self.family, self.shape, cin, cout, self.params) \
            / full if full else float(self.params)


def features(family, shape, cin, cout, steps):
    """(work, elements) of a kernel of ``family`` with ``shape`` at (cin, cout): see the module
    docstring; ``steps`` = {"gemm": n, "depthwise": n} output-channel tiles."""
    hw_in, hw_out = shape.get("hw_in", 1), shape.get("hw_out", 1)
    k, multiplier = shape.get("k", 1), shape.get("multiplier", 1)
    gemm, depthwise = steps.get("gemm", 1), steps.get("depthwise", 1)
    elements = hw_in * cin + hw_out * cout
    if family in ("conv", "dense"):
        work = hw_out * k * cin * round_up(cout, gemm)
    elif family == "transpose":
        work = hw_in * k * cin * round_up(cout, gemm)
    elif family == "depthwise":
        work = hw_out * k * round_up(cin * multiplier, depthwise)
    elif family == "separable":
        work = hw_out * (k * round_up(cin * multiplier, depthwise)
                         + cin * multiplier * round_up(cout, gemm))
    elif family == "pool":
        work = hw_out * k * cout
    else:
        work = 0
    return float(work), float(elements)


def weight_count(family, shape, cin, cout, params_full=0):
    """What a kernel's weight count is proportional to at (cin, cout) (``Kernel.weights``)."""
    k, multiplier = shape.get("k", 1), shape.get("multiplier", 1)
    if family in ("conv", "dense", "transpose"):
        return float(k * cin * cout + cout)
    if family == "depthwise":
        return float((k + 1) * cin * multiplier)
    if family == "separable":
        return float(k * cin * multiplier + cin * multiplier * cout + cout)
    if family == "pool":
        return 0.0
    return float(cin * cout) if params_full >= cin * cout else float(cout)


def stream_rate(curve, nbytes):
    """r(nbytes): seconds per weight byte at a working set of ``nbytes``, on the measured
    ``curve`` [(bytes, seconds per byte)] (sorted by bytes): its first value below its first
    point, linear in log(bytes) between points, its last value beyond (memory bandwidth);
    0 without a curve."""
    if not curve:
        return 0.0
    if nbytes <= curve[0][0]:
        return float(curve[0][1])
    for (b0, g0), (b1, g1) in zip(curve, curve[1:]):
        if nbytes <= b1:
            t = math.log(nbytes / b0) / math.log(b1 / b0) if b1 > b0 else 1.0
            return float(g0 + t * (g1 - g0))
    return float(curve[-1][1])


def monotone_curve(points):
    """A memory curve from measured [(bytes, seconds per byte)]: sorted, positive and
    non-decreasing (a larger working set never streams faster; what looks faster is noise)."""
    curve, top = [], 0.0
    for nbytes, rate in sorted(points):
        top = max(top, float(rate))
        curve.append((float(nbytes), top))
    return [(b, r) for b, r in curve if r > 0]


def fit(samples):
    """Non-negative (a, b, c) of r = a + b * w + c * e for ``samples`` [(w, e, r)], least
    squares on the relative error; without the constant a when fewer than three distinct
    (w, e) points pin it down. Columns that are zero in every sample get 0."""
    from scipy.optimize import nnls

    data = np.asarray(samples, np.float64)
    if not len(data):
        return (0.0, 0.5, 0.5)
    design = np.column_stack([np.ones(len(data)), data[:, 0], data[:, 1]])
    if len({(round(w, 6), round(e, 6)) for w, e, _ in data}) < 3:
        design[:, 0] = 0.0
    scale = np.maximum(np.abs(design).max(axis=0), 1e-30)
    weights = 1.0 / np.maximum(data[:, 2], 1e-9)
    solution, _ = nnls(design / scale * weights[:, None], data[:, 2] * weights)
    return tuple(float(s) for s in solution / scale)


def evaluate(coefficients, work, elements):
    a, b, c = coefficients
    return a + b * work + c * elements


@dataclasses.dataclass
class Prediction:
    """A model's predicted time: ``seconds`` in all, ``per_kernel`` {name: seconds}, and the
    kernels the table had no time for (``unmodelled``: counted as 0)."""

    seconds: float
    per_kernel: dict
    unmodelled: list


class Costs:
    """Each kernel's time at any (cin, cout): as timed there when the table has it
    (``exact``), else its own measured full-width time ``full``
    {kernel name: seconds} times its kind's ``curves`` {kind: (a, b, c)}: the time relative to
    full width as a + b * (work / full work) + c * (elements / full elements), normalised to 1
    at full width; fitted (``fit``) to the kind's kernels timed at reduced widths."""

    def __init__(self, kernels, curves, full, steps, exact=None, memory=None,
                 bytes_per_weight=4):
        self.kernels = list(kernels)
        self.curves = dict(curves)
        self.full = dict(full)
        self.steps = dict(steps)
        self.exact = dict(exact or {})  # {(kernel name, cin, cout): seconds} timed there
        self.memory = list(memory or [])  # the memory curve [(bytes, s/byte)]; [] = none
        self.bytes_per_weight = bytes_per_weight

    def weight_bytes(self, kernel, cin, cout):
        return kernel.weights(cin, cout) * self.bytes_per_weight

    def model_rate(self, widths=None):
        """r(W) of the model at ``widths`` {kernel name: (cin, cout)} (W: its weight bytes)."""
        return stream_rate(self.memory, self.total_weight_bytes(widths))

    def kernel_seconds(self, kernel, cin, cout, model_rate=None):
        """The kernel's time at (cin, cout): alone (as timed, or on its curve), and in a model
        whose weights stream at ``model_rate`` (r(W); None: alone) at least its weight bytes
        times that rate."""
        seconds = self._alone(kernel, cin, cout)
        if seconds is not None and model_rate:
            seconds = max(seconds, self.weight_bytes(kernel, cin, cout) * model_rate)
        return seconds

    def _alone(self, kernel, cin, cout):
        timed = self.exact.get((kernel.name, cin, cout))
        if timed is not None:
            return timed
        full = self.full.get(kernel.name)
        if full is None:
            return None
        if (cin, cout) == (kernel.cin, kernel.cout):
            return full
        return full * relative(self.curves.get(kernel.kind), kernel, cin, cout, self.steps)

    def predict(self, widths=None, alone=False):
        """The Prediction at ``widths`` {kernel name: (cin, cout)} (default: full width), each
        kernel at least its weights' streaming time at the model's working set (``alone``:
        each as timed by itself, the kernels' plain sum)."""
        widths = widths or {}
        per_kernel, missing = {}, []
        rate = None if alone else self.model_rate(widths)
        for kernel in self.kernels:
            cin, cout = widths.get(kernel.name, (kernel.cin, kernel.cout))
            seconds = self.kernel_seconds(kernel, cin, cout, rate)
            if seconds is None:
                missing.append(kernel.name)
                seconds = 0.0
            per_kernel[kernel.name] = seconds
        return Prediction(float(sum(per_kernel.values())), per_kernel, missing)

    def total_weight_bytes(self, widths=None):
        widths = widths or {}
        return float(sum(self.weight_bytes(k, *widths.get(k.name, (k.cin, k.cout)))
                         for k in self.kernels))


def ratios(kernel, cin, cout, steps):
    """(work, elements) at (cin, cout) relative to full width (0 where the full one is 0)."""
    work, elements = kernel.features(cin, cout, steps)
    full_work, full_elements = kernel.features(kernel.cin, kernel.cout, steps)
    return (work / full_work if full_work else 0.0,
            elements / full_elements if full_elements else 0.0)


def relative(curve, kernel, cin, cout, steps):
    """A kernel's time at (cin, cout) over its full-width time, on ``curve`` (None: the mean
    of the work and element ratios)."""
    rw, re = ratios(kernel, cin, cout, steps)
    computes = bool(kernel.features(kernel.cin, kernel.cout, steps)[0])
    at_full = evaluate(curve, 1.0 if computes else 0.0, 1.0) if curve is not None else 0.0
    if at_full <= 0:
        return (rw + re) / 2 if computes else re
    return evaluate(curve, rw, re) / at_full


def detect_step(times, candidates=(64, 32, 16, 8, 4), tolerance=0.04):
    """The channel step of a kernel from ``times`` {channels: seconds}: the largest candidate n
    such that rounding any measured count up to a multiple of n costs at most ``tolerance``
    more (where both were measured, for at least two different multiples): multiples of n are the counts the kernel
    runs fast on. (XNNPACK's float32 GEMM and depthwise kernels on AVX-512 are slow on counts
    that are not multiples of 8: a 33-channel depthwise convolution takes longer than a
    40-channel one.) 1 when no candidate holds."""
    for n in candidates:
        pairs = [(c, round_up(c, n)) for c in times if c % n and round_up(c, n) in times]
        if len({up for _, up in pairs}) >= 2 and all(times[up] <= (1 + tolerance) * times[c] for c, up in pairs):
            return n
    return 1
