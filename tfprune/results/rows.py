"""The row schema: one row per (seed, variant, quantization) of a sweep. Defined once, here.

Every column is a field of ``Row``, in results.csv order; its metadata says whether it is
averaged over seeds and how report.md's table shows it. ``make_row`` fills a row from the dicts
a variant produced (identity, statistics, the .tflite measurement, the pruner's decisions),
taking each column from the first source that has it. Adding a column is a change to this file:
a new field (with ``table=`` to show it in report.md, ``aggregate=True`` to average it), filled
from whichever source already carries a value of that name.

``VariantKey`` names a variant: its directory name, its progress label and its report label are
built here and nowhere else.
"""

import dataclasses

from tfprune.errors import InternalError
from tfprune.pruning.methods import METHODS
from tfprune.pruning.options import format_target_latency

DENSE = "dense"
NO_SCHEDULE = "-"
UNIFORM = "uniform"
KEY = ("method", "schedule", "target_sparsity", "layer_sparsity", "target_latency", "stage",
       "quantization")


def _column(aggregate=False, title=None, kind="ratio", timed=False, carry=False,
            optional=False):
    """aggregate: averaged over seeds; title/kind: shown in report.md's table (kind: text,
    sparsity, percent, kb, us, count, ratio); timed: filled by the sweep's joint timing of all
    .tflite files; carry: copied as it is into the aggregated entry; optional: the table shows
    it only when some entry has a value (an opt-in measurement)."""
    return dataclasses.field(default=None, metadata={
        "aggregate": aggregate, "title": title, "kind": kind, "timed": timed, "carry": carry,
        "optional": optional})


@dataclasses.dataclass
class Row:
    seed: int = _column()
    method: str = _column(title="method", kind="text")
    schedule: str = _column(title="schedule", kind="text")           # "-": the method has none
    target_sparsity: float = _column(title="sparsity", kind="sparsity")  # None: chosen by it
    # How the target is spread over the layers: uniform, auto, global (pruning/allocation.py).
    layer_sparsity: str = _column(title="layers", kind="text")
    # channel: a latency target ("0.5" of the dense model's predicted latency, or "2ms"); the
    # selection chose the channels by the time they cost, so target_sparsity is None.
    target_latency: str = _column(title="latency target", kind="text", optional=True)
    # A compression stage after pruning (compression/stages.py) as it ran: qat / pqat, cluster /
    # sparse-cluster, cqat / pcqat; None: the model as pruned, quantized after training (PTQ).
    stage: str = _column(title="stage", kind="text", optional=True)
    quantization: str = _column(title="quant", kind="text")
    achieved_sparsity: float = _column(True, "achieved")
    keras_accuracy: float = _column(True, "Keras acc %", "percent")
    tflite_accuracy: float = _column(True, "TFLite acc %", "percent")
    # The shrunk architecture trained from scratch for the same total epochs (--from_scratch).
    scratch_accuracy: float = _column(True, "scratch acc %", "percent", optional=True)
    tflite_loss: float = _column()
    params: int = _column(True, "params", "count")
    nonzero_params: int = _column(True, "non-zeros", "count")
    flops: int = _column(True, "FLOPs", "count")
    nonzero_flops: int = _column(True)
    # Non-zero weights of the .tflite's convolution and fully connected kernels as stored (int8
    # values once quantized): what pruning-preserving QAT keeps; report.stage_lines shows it.
    kernel_nonzeros: int = _column(True)
    compression_ratio: float = _column(True, "compression")
    theoretical_speedup: float = _column(True, "theor. speedup")
    size_bytes: int = _column(True, "KB", "kb")
    gzip_bytes: int = _column(True, "gzip KB", "kb")
    sparse_bytes: int = _column(True, "sparse KB", "kb")
    latency_ms_median: float = _column(True, "latency us", "us", timed=True)
    latency_ms_p90: float = _column(True, timed=True)
    latency_vs_dense: float = _column(True, "vs dense")
    # Latency targets: the cost model's prediction for the shrunk model, as a ratio of the
    # dense model's (tflite/latency.py), beside the measured "vs dense".
    predicted_latency_ratio: float = _column(True, "predicted vs dense", optional=True)
    num_threads: int = _column(timed=True)
    delegate: str = _column(timed=True, carry=True)
    train_time_s: float = _column(True)
    fine_tune_time_s: float = _column(True, "fine-tune s")
    convert_time_s: float = _column(True)
    evaluate_time_s: float = _column(True)
    deployed: str = _column()
    tflite_file: str = _column()
    pruning_events: int = _column()
    rollbacks: int = _column()
    chosen_sparsity: dict = _column()  # layer -> sparsity a deciding method left it at
    # Clustering stages: the most unique values in one clustered kernel of the Keras model.
    max_unique: int = _column(True, "unique/kernel", "count", optional=True)
    # Mixed int4/int8 quantization (tflite/mixed.py): its int4 share of the weights and layers.
    int4_fraction: float = _column(True, "int4 %", "percent", optional=True)
    int4_layers: list = _column(carry=True)


FIELDS = dataclasses.fields(Row)
COLUMNS = [f.name for f in FIELDS]
AGGREGATED = [f.name for f in FIELDS if f.metadata["aggregate"]]
TABLE = [(f.name, f.metadata["title"], f.metadata["kind"]) for f in FIELDS if f.metadata["title"]]
OPTIONAL = [f.name for f in FIELDS if f.metadata["optional"]]
TIMED = [f.name for f in FIELDS if f.metadata["timed"]]
CARRIED = [f.name for f in FIELDS if f.metadata["carry"]]


def make_row(*sources):
    """A row (a dict in column order) taking each column from the first source that has it."""
    values = {}
    for column in COLUMNS:
        for source in sources:
            if column in source:
                values[column] = source[column]
                break
    missing = [c for c in KEY if c not in values]
    if missing:
        raise InternalError(f"a result row lacks its key column(s) {', '.join(missing)}")
    return dataclasses.asdict(Row(**values))


@dataclasses.dataclass(frozen=True)
class VariantKey:
    """One variant of a sweep: the dense baseline, or a method with its schedule and target
    (a sparsity, or for channel pruning a latency)."""

    seed: int
    method: str
    schedule: str = None          # None: the method takes no schedule
    target_sparsity: float = None  # None: chosen by the method, or by a latency target
    layer_sparsity: str = UNIFORM  # auto, global: per-layer targets (weight and unit only)
    target_latency: str = None    # "0.5" or "2ms" (options.format_target_latency)
    stage: str = None             # a compression stage as it runs here (Stage.applied): "pqat"

    @classmethod
    def of(cls, seed, method, schedule=None, target_sparsity=None, layer_sparsity=UNIFORM,
           target_latency=None, stage=None):
        """The key with what the method does not take dropped; a latency target replaces the
        sparsity target."""
        if method == DENSE:
            return cls(seed, DENSE, stage=stage)
        spec = METHODS.get(method)
        if target_latency is not None and spec.takes_latency:
            return cls(seed, method, schedule, None, UNIFORM,
                       format_target_latency(target_latency), stage)
        return cls(seed, method, schedule if spec.takes_schedule else None,
                   float(target_sparsity) if spec.takes_target else None,
                   layer_sparsity if spec.takes_layer_sparsity else UNIFORM, stage=stage)

    def with_stage(self, stage):
        """This variant followed by the compression ``stage`` (None: as pruned)."""
        return dataclasses.replace(self, stage=stage)

    @classmethod
    def from_identity(cls, identity):
        """The key whose ``identity()`` columns are ``identity`` (a result row's, say)."""
        schedule = identity.get("schedule")
        return cls.of(identity["seed"], identity["method"],
                      None if schedule == NO_SCHEDULE else schedule,
                      identity.get("target_sparsity"), identity.get("layer_sparsity", UNIFORM),
                      identity.get("target_latency"), identity.get("stage"))

    @property
    def kind(self):
        """What the time a variant takes depends on: its method, and its compression stage."""
        return self.method + (f"+{self.stage}" if self.stage else "")

    def slug(self):
        """Directory name: dense, dynamic, incremental-0.5, weight-constant-0.5,
        channel-constant-latency0.5."""
        parts = [self.method]
        if self.schedule:
            parts.append(self.schedule)
        if self.target_sparsity is not None:
            parts.append(f"{self.target_sparsity:g}")
        if self.target_latency is not None:
            parts.append(f"latency{self.target_latency}")
        if self.layer_sparsity != UNIFORM:
            parts.append(self.layer_sparsity)
        return "-".join(parts) + (f"+{self.stage}" if self.stage else "")

    def title(self):
        """Progress label: 'seed 0 unit constant 0.5', 'seed 0 dynamic (chooses its sparsity)',
        'seed 0 channel constant latency 0.5', 'seed 0 weight constant 0.8 + pqat'."""
        if self.stage:
            return f"{self.with_stage(None).title()} + {self.stage}"
        if self.method == DENSE:
            return f"seed {self.seed} dense baseline"
        if self.target_latency is not None:
            return " ".join([f"seed {self.seed}", self.method] + (
                [self.schedule] if self.schedule else []) + [f"latency {self.target_latency}"])
        if self.target_sparsity is None:
            return f"seed {self.seed} {self.method} (chooses its sparsity)"
        return " ".join([f"seed {self.seed}", self.method] + ([self.schedule] if self.schedule
                        else []) + [f"{self.target_sparsity:g}"] + (
                            [f"layer-wise {self.layer_sparsity}"]
                            if self.layer_sparsity != UNIFORM else []))

    def identity(self):
        """The key columns of this variant's rows."""
        return {"seed": self.seed, "method": self.method,
                "schedule": self.schedule or NO_SCHEDULE, "target_sparsity": self.target_sparsity,
                "layer_sparsity": self.layer_sparsity, "target_latency": self.target_latency,
                "stage": self.stage}


def chooses_sparsity(entry):
    """True when the run chose the sparsity: a method that decides, or a latency target."""
    return entry["method"] != DENSE and entry["target_sparsity"] is None


def series(entry):
    """The curve a row or entry belongs to in the plots: its method, with " latency" for a
    latency target (chosen by the time channels cost, beside the same method by sparsity), and
    " + pqat" for a compression stage after it."""
    return entry["method"] + (" latency" if entry.get("target_latency") is not None else "") \
        + (f" + {entry['stage']}" if entry.get("stage") else "")


def sparsity_of(entry):
    """The sparsity a row stands for: its target, or what the method chose (achieved)."""
    if chooses_sparsity(entry):
        return entry["achieved_sparsity"]
    return entry["target_sparsity"] or 0.0


def label(entry):
    """Report label of a row or aggregated entry: 'weight constant 0.9 int8', 'weight
    constant 0.9 pqat int8'."""
    if entry.get("stage"):
        return _label(dict(entry, quantization=f"{entry['stage']} {entry['quantization']}"))
    return _label(entry)


def _label(entry):
    if entry["method"] == DENSE:
        return f"dense {entry['quantization']}"
    schedule = "" if entry["schedule"] == NO_SCHEDULE else f" {entry['schedule']}"
    if entry.get("target_latency") is not None:
        return (f"{entry['method']}{schedule} latency {entry['target_latency']} "
                f"{entry['quantization']}")
    if chooses_sparsity(entry):
        return f"{entry['method']} auto->{entry['achieved_sparsity']:.2f} {entry['quantization']}"
    layers = "" if entry.get("layer_sparsity", UNIFORM) == UNIFORM else \
        f" {entry['layer_sparsity']}"
    return (f"{entry['method']}{schedule} {entry['target_sparsity']:g}{layers} "
            f"{entry['quantization']}")
