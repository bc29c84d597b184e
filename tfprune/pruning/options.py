"""The options of the pruning methods, checkable without TensorFlow (what the job configs
validate on construction): ``DynamicConfig`` of the methods that decide (dynamic, incremental,
adaptive) and the channel method's criterion (``CRITERIA``: names here, the scores in
channels.py, loaded on first use), selection and rounding."""

import dataclasses

from tfprune import checks
from tfprune.errors import TfpruneError
from tfprune.pruning import adaptive
from tfprune.pruning.methods import GRANULARITIES
from tfprune.registry import Registry

CRITERIA = Registry("channel criterion")
for _name in ("l2", "l1", "bn_scale", "taylor"):
    CRITERIA.register_lazy(_name, f"tfprune.pruning.channels:{_name}_importance")
SELECTIONS = ("uniform", "global")


@dataclasses.dataclass
class DynamicConfig:
    """Parameters of the dynamic methods; validated on construction."""

    granularity: str = None            # "channel", "unit" or "weight"; None: the method's default
                                       # (methods.Method.default_granularity)
    interval: int = 1                  # epochs between checks
    norm_tolerance: float = 0.05       # relative change of the mean column norm that counts as stable
    patience: int = 2                  # consecutive stable checks before a layer may be pruned
    accuracy_tolerance: float = 0.02   # validation accuracy must be within this of the best seen
                                       # (digits' 180 validation images: 0.02 is ~4 images)
    norm_fraction: float = 0.8         # candidates: norm below this fraction of the layer's mean
    max_step: float = 0.125            # at most this fraction of a layer pruned per event
    max_sparsity: float = 0.9          # per-layer ceiling
    every: int = 2                     # incremental / adaptive: epochs between rounds
    prune_fraction: float = None       # incremental: fraction of the remaining pruned per round
                                       # (None: fitted to reach the target by 70% of the epochs)
    p: float = 0.5                     # adaptive: PQ index p < q
    q: float = 1.0
    eta: float = 0.0
    gamma: float = 1.0
    beta: float = 0.9

    def __post_init__(self):
        if self.granularity is not None:
            checks.check_choice("granularity", self.granularity, GRANULARITIES)
        for name in ("interval", "patience", "every"):
            checks.check_int(name, getattr(self, name), 1)
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


def check_channel_options(options):
    """The channel method's options (criterion, mode, max_per_group, round_to), validated."""
    options = dict(options or {})
    unknown = sorted(set(options) - {"criterion", "mode", "max_per_group", "round_to"})
    if unknown:
        raise TfpruneError(f"unknown channel option(s) {', '.join(unknown)}; known: criterion, "
                           "mode, max_per_group, round_to")
    CRITERIA.validate(options.get("criterion", "l2"))
    checks.check_choice("mode", options.get("mode", "uniform"), SELECTIONS)
    checks.check_fraction("max_per_group", options.get("max_per_group", 0.9))
    checks.check_int("round_to", options.get("round_to", 1), 1)
    return options
