"""The options of the pruning methods, checkable without TensorFlow (what the job configs
validate on construction): one typed object per kind of method, ``options_type(spec)`` says
which, ``make_options`` builds it from its fields:

- ``LayerOptions`` (weight, unit): target, schedule, the layers pruned, m:n, per-layer targets;
- ``ChannelOptions`` (channel): target, schedule and the channel selection (``CRITERIA``: names
  here, the scores in channels.py, loaded on first use; ``SELECTIONS``, max per group, rounding);
- ``DecidingOptions`` (dynamic, incremental, adaptive): target (incremental), the layers pruned
  at weight or unit granularity, and ``DynamicConfig``, the deciding pruners' parameters.

Field-level rules are checked on construction; the rules that combine a field with the method
(``methods.check_options`` and the others) when a method object is made
(pruning/method_objects.py)."""

import dataclasses

from tfprune import checks, declare
from tfprune.declare import option
from tfprune.errors import TfpruneError
from tfprune.pruning import adaptive
from tfprune.pruning.methods import GRANULARITIES, METHODS
from tfprune.pruning.schedules import SCHEDULES, check_step_options
from tfprune.registry import Registry

CRITERIA = Registry("channel criterion")
for _name in ("l2", "l1", "bn_scale", "taylor", "gate"):
    CRITERIA.register_lazy(_name, f"tfprune.pruning.channels:{_name}_importance")
# The criteria that score channels from gradients on training batches.
DATA_CRITERIA = ("taylor", "gate")
SELECTIONS = ("uniform", "global", "latency")
# What the channel graph does at a LayerNormalization over the channels: end the groups (the
# shrunk model equals the masked one), or prune through it, its statistics then spanning the
# kept channels only (close to the masked model, not equal; what Torch-Pruning does).
LAYER_NORM = ("block", "renormalize")


@dataclasses.dataclass
class DynamicConfig:
    """Parameters of the deciding methods (flags of prune and sweep, unset there: these
    defaults); validated on construction."""

    granularity: str = option(
        None, "Deciding methods: prune channel groups (removed from every layer they touch, "
        "through residual Adds), per-layer units, or single weights: {choices} (default: "
        "weight for adaptive, channel otherwise; methods.Method.default_granularity).",
        choices=GRANULARITIES)
    interval: int = option(1, "dynamic: epochs between checks", lower=1)
    norm_tolerance: float = option(
        0.05, "dynamic: relative change of the mean column norm counted as stable")
    patience: int = option(2, "dynamic: stable checks in a row before pruning a layer", lower=1)
    # digits' 180 validation images: 0.02 is ~4 images.
    accuracy_tolerance: float = option(0.02, "dynamic: allowed drop of validation accuracy "
                                       "from the best seen")
    norm_fraction: float = option(
        0.8, "dynamic: prune units below this fraction of the layer's mean column norm")
    max_step: float = option(0.125, "dynamic: most of a layer pruned per event")
    max_sparsity: float = option(0.9, "dynamic/adaptive: per-layer ceiling")
    every: int = option(2, "incremental/adaptive: epochs between pruning rounds", lower=1)
    prune_fraction: float = option(
        None, "incremental: fraction of the remaining pruned per round (default: fitted to "
        "reach the target by 70% of the epochs)")
    p: float = option(0.5, "adaptive: PQ index p, p < q", flag="pq_p")
    q: float = option(1.0, "adaptive: PQ index q", flag="pq_q")
    eta: float = option(0.0, "adaptive: eta")
    gamma: float = option(1.0, "adaptive: gamma")
    beta: float = option(0.9, "adaptive: beta, most of a layer pruned per round")

    def __post_init__(self):
        declare.check_declared(self)
        for name in ("norm_tolerance", "accuracy_tolerance", "norm_fraction", "max_step",
                     "max_sparsity", "prune_fraction", "beta"):
            if not (name == "prune_fraction" and self.prune_fraction is None):
                checks.check_fraction(name, getattr(self, name))
        adaptive.check_pq(self.p, self.q)
        checks.check_non_negative("eta", self.eta)
        checks.check_positive("gamma", self.gamma)


def make_config(options=None):
    """A DynamicConfig from a dict of its fields (or one already made); validated."""
    if isinstance(options, DynamicConfig):
        return options
    unknown = sorted(set(options or {}) - {f.name for f in dataclasses.fields(DynamicConfig)})
    if unknown:
        raise TfpruneError(f"unknown dynamic option(s) {', '.join(unknown)}; known: "
                           f"{', '.join(f.name for f in dataclasses.fields(DynamicConfig))}")
    return DynamicConfig(**(options or {}))


SELECTION_FIELDS = ("criterion", "mode", "max_per_group", "round_to")
# What the latency cost model can time (tflite/latency.py TIMEABLE; here without TensorFlow).
LATENCY_QUANTIZATIONS = ("float32", "float16", "dynamic", "int8")


def parse_target_latency(value, name="target_latency"):
    """("ratio", r) or ("ms", t) from ``--target_latency`` (or the option ``name``): a ratio of
    the dense model's predicted latency, in (0, 1), or milliseconds ("2.5ms"), > 0."""
    text = str(value).strip().lower()
    unit = "ms" if text.endswith("ms") else "ratio"
    try:
        number = float(text[:-2] if unit == "ms" else text)
    except ValueError:
        raise TfpruneError(f"{name} must be a ratio of the dense model's latency in "
                           f"(0, 1), or milliseconds such as '2.5ms'; got {value!r}") from None
    if unit == "ratio" and not 0.0 < number < 1.0:
        raise TfpruneError(f"{name} must be a ratio of the dense model's latency in "
                           f"(0, 1) (or milliseconds such as '2.5ms'), got {value!r}")
    if unit == "ms" and not number > 0:
        raise TfpruneError(f"{name} in milliseconds must be > 0, got {value!r}")
    return unit, number


def format_target_latency(value):
    """The one text form of a latency target: "0.5" (a ratio) or "2.5ms"; checked."""
    unit, number = parse_target_latency(value)
    return f"{number:g}ms" if unit == "ms" else f"{number:g}"


def check_channel_options(options):
    """The channel method's selection (criterion, mode, max_per_group, round_to) given as a
    dict (or None), validated; returned as the dict."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(SELECTION_FIELDS))
    if unknown:
        raise TfpruneError(f"unknown channel option(s) {', '.join(unknown)}; known: "
                           f"{', '.join(SELECTION_FIELDS)}")
    CRITERIA.validate(options.get("criterion", "l2"))
    checks.check_choice("mode", options.get("mode", "uniform"), SELECTIONS)
    checks.check_fraction("max_per_group", options.get("max_per_group", 0.9))
    checks.check_int("round_to", options.get("round_to", 1), 1)
    return options


@dataclasses.dataclass(frozen=True)
class ScheduleOptions:
    """What the methods under a tfmot schedule share: the target and the schedule's steps
    (None: derived from the fine-tuning steps, schedules.derive_steps). Each field declared
    once (tfprune.declare): the prune job's flags and config fields are made from these."""

    target_sparsity: float = option(
        0.5, "Fraction of weights (weight) or units / channels (unit, channel) to prune in "
        "each pruned layer, in [0, 1); ignored by dynamic and adaptive, which choose their own.")
    schedule: str = option(
        "polynomial", "Pruning schedule: {choices} (weight and unit; the other methods decide "
        "themselves).", choices=SCHEDULES, enforce=False)  # methods.check_options
    begin_step: int = option(None, "First pruning step (default 0).")
    end_step: int = option(
        None, "Last pruning step (default: constant, the last step; polynomial, the end of the "
        "ramp, ramp_fraction of the steps).")
    frequency: int = option(None, "Steps between mask updates (default: 1/4 epoch).")
    initial_sparsity: float = option(0.0, "Polynomial schedule's starting sparsity.")
    power: int = option(3, "Polynomial schedule's exponent.", flag=False)
    ramp_fraction: float = option(0.6, "Polynomial: fraction of the steps spent ramping up.")

    def __post_init__(self):
        declare.check_declared(self)
        check_step_options(self.begin_step, self.end_step, self.frequency, self.ramp_fraction)


@dataclasses.dataclass(frozen=True)
class LayerOptions(ScheduleOptions):
    """Weight and unit pruning: ``layers`` (None: every prunable layer but the classifier and
    the first convolution, unless ``prune_classifier`` / ``prune_first_conv``), m:n blocks
    (weight), ``layer_sparsity`` ({layer: target}: each layer its own, naming the layers)."""

    layers: tuple = option(
        None, "Layers to prune (default: all but the classifier and the first convolution).")
    prune_classifier: bool = option(False, "Also prune the last Dense (classifier) layer.")
    prune_first_conv: bool = option(False, "Also prune the first convolution.")
    sparsity_m_by_n: str = option(
        None, "Weight pruning in m:n blocks, e.g. 2:4 (needs --target_sparsity=0.5).")
    layer_sparsity: dict = option(None, "{layer: target}: each layer its own target.",
                                  flag=False)


@dataclasses.dataclass(frozen=True)
class ChannelOptions(ScheduleOptions):
    """The channel method: every prunable channel group, chosen by ``criterion`` (``CRITERIA``),
    ``selection`` (uniform per group, or one global ratio with at most ``max_per_group`` of a
    group), kept channels a multiple of ``round_to``; ``layer_norm`` (``LAYER_NORM``): whether
    channels a LayerNormalization normalizes together are pruned ("renormalize") or kept
    ("block")."""

    criterion: str = option(
        "l2", "channel: group importance, {choices} (l1/l2: norm of every parameter of a "
        "channel; bn_scale: BatchNorm |gamma|; taylor: |w * dL/dw|; gate: |dL/d gate| on each "
        "channel or attention head where it is read, Michel et al. 2019).", choices=CRITERIA)
    selection: str = option(
        "uniform", "channel: {choices}: the same fraction from every group, one global "
        "ratio, or by importance lost per microsecond saved (--target_latency sets it).",
        choices=SELECTIONS)
    max_per_group: float = option(
        0.9, "channel, global selection: at most this fraction of one group pruned.",
        validator=checks.check_fraction)
    round_to: int = option(1, "channel: keep a multiple of N channels per group.", lower=1)
    layer_norm: str = option(
        "block", "channel: at a LayerNormalization over the channels, block (keep those "
        "channels: the shrunk model equals the masked one) or renormalize (prune through it; "
        "its statistics then span the kept channels, so the shrunk model differs from the "
        "masked one by the reported max_abs_diff).", choices=LAYER_NORM)
    target_latency: str = option(
        None, "channel: prune to this latency, a ratio of the dense model's predicted latency "
        "in (0, 1) or milliseconds ('2.5ms'), measured on the LiteRT interpreter "
        "(tflite/latency.py); selects channels by latency and sets --target_sparsity to the "
        "fraction of latency saved.")
    latency_quantization: str = option(
        "float32", "channel, --target_latency: the quantization the latency is meant for, "
        "{choices}.", choices=LATENCY_QUANTIZATIONS)
    latency_threads: int = option(1, "channel, --target_latency: interpreter threads.",
                                  lower=1)
    latency_xnnpack: bool = option(True, "channel, --target_latency: time with XNNPACK "
                                   "(the interpreter's default) or the built-in kernels.")

    def __post_init__(self):
        super().__post_init__()
        if self.target_latency is None:
            if self.selection == "latency":
                raise TfpruneError("selection 'latency' needs --target_latency (a ratio of the "
                                   "dense model's latency in (0, 1), or '2.5ms')")
            return
        unit, number = parse_target_latency(self.target_latency)
        if self.selection not in ("uniform", "latency"):
            raise TfpruneError(f"--target_latency chooses channels by latency; selection "
                               f"{self.selection!r} cannot be combined with it (leave "
                               "--selection unset or set it to latency)")
        object.__setattr__(self, "selection", "latency")
        if unit == "ratio":  # the schedules ramp the latency saved as they ramp sparsity
            object.__setattr__(self, "target_sparsity", 1.0 - number)

    def latency_target(self):
        """("ratio", r) or ("ms", t), or None."""
        return None if self.target_latency is None else \
            parse_target_latency(self.target_latency)

    def choice(self):
        """{criterion, mode, max_per_group, round_to}: how channels are chosen, as the
        functions of channels.py take it (``selection`` is their ``mode``)."""
        return {"criterion": self.criterion, "mode": self.selection,
                "max_per_group": self.max_per_group, "round_to": self.round_to}


@dataclasses.dataclass(frozen=True)
class DecidingOptions:
    """The methods that decide (dynamic, incremental, adaptive): ``target_sparsity`` (the
    incremental rounds' target; the others choose theirs), the layers pruned at weight or unit
    granularity (as ``LayerOptions``), and ``dynamic`` (a DynamicConfig, or a dict of its
    fields; its ``granularity`` None: the method's default)."""

    target_sparsity: float = None
    layers: tuple = None
    prune_classifier: bool = False
    prune_first_conv: bool = False
    dynamic: DynamicConfig = None

    def __post_init__(self):
        object.__setattr__(self, "dynamic", make_config(self.dynamic))


def options_type(method):
    """The options class of ``method`` (a name or a methods.Method)."""
    spec = METHODS.get(method) if isinstance(method, str) else method
    if spec.decides:
        return DecidingOptions
    return ChannelOptions if spec.granularity == "channel" else LayerOptions


def taken_by(method, fields):
    """The entries of ``fields`` that are options of ``method`` (a job's layer options given to
    every method it runs, the channel method taking none of them)."""
    names = {f.name for f in dataclasses.fields(options_type(method))}
    return {name: value for name, value in fields.items() if name in names}


def make_options(method, options=None, **fields):
    """``method``'s options: ``options`` (its options object) with ``fields`` replaced, or an
    object made from ``fields``; a field the method does not take is a TfpruneError."""
    spec = METHODS.get(method) if isinstance(method, str) else method
    cls = options_type(spec)
    if options is not None and not isinstance(options, cls):
        raise TfpruneError(f"method {spec.name!r} takes {cls.__name__}, got "
                           f"{type(options).__name__}")
    known = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise TfpruneError(f"unknown option(s) {', '.join(unknown)} for method {spec.name!r} "
                           f"({cls.__name__}); known: {', '.join(known)}")
    return dataclasses.replace(options, **fields) if options is not None else cls(**fields)
