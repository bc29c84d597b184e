"""Pruning methods as objects: what each one prunes, whether it takes a schedule and a target,
and how it is applied. Every place that used to ask "is this a dynamic method?" asks the Method.

- weight: tfmot magnitude pruning of single weights, under a schedule, to a target.
- unit: whole Dense neurons / Conv2D filters by L2 norm, under a schedule, to a target.
- channel: groups of coupled channels (pruning/groups.py) by a criterion, under a schedule.
- dynamic, adaptive: a callback decides when, where and how much; they choose their sparsity.
- incremental: a callback prunes in rounds up to a target; no schedule.
  The deciding methods prune channel groups by default (dynamic, incremental: the structure that
  shrink removes, through residual Adds), or per-layer units or single weights on request; the
  paper's adaptive pruning is over weights.

``check_options`` is the one check of the combinations (schedule, target, initial sparsity,
m:n blocks) that configs run before any training and the method objects run again; with
``check_layer_sparsity``, ``check_channel_granularity`` and ``check_one_shot`` (the methods
one-shot pruning applies to) the checks of a method's options that need no model. No
TensorFlow here: the scripts' flags and the job configs read this module before it is imported.
"""

import dataclasses

from tfprune import checks
from tfprune.errors import TfpruneError
from tfprune.pruning.schedules import SCHEDULES
from tfprune.registry import Registry

GRANULARITIES = ("channel", "unit", "weight")


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    description: str
    takes_schedule: bool          # False: a callback decides when to prune
    takes_target: bool            # False: the method chooses its own sparsity
    granularity: str = None       # "weight", "unit" or "channel"; None: chosen per run
                                  # (DynamicConfig.granularity)
    default_granularity: str = None
    supports_m_by_n: bool = False
    pruner: str = None            # name of the deciding callback in pruning/dynamic.py

    @property
    def decides(self):
        """True for methods whose callback writes the masks (no tfmot schedule)."""
        return self.pruner is not None

    @property
    def takes_layer_sparsity(self):
        """Per-layer targets (pruning/allocation.py): weight and unit pruning, whose layers
        each get their own schedule; channel groups span layers, deciding methods decide."""
        return self.takes_schedule and not self.decides and self.granularity in ("weight", "unit")

    @property
    def takes_latency(self):
        """A latency target (--target_latency, pruning/budget.py): channel pruning under a
        schedule, whose channel counts the latency selection chooses."""
        return self.takes_schedule and not self.decides and self.granularity == "channel"

    def resolve_granularity(self, granularity=None):
        if self.granularity is not None:
            return self.granularity
        return checks.check_choice("granularity", granularity or self.default_granularity,
                                   GRANULARITIES)


METHODS = Registry("pruning method")
for _method in (
    Method("weight", "tfmot magnitude pruning of single weights", takes_schedule=True,
           takes_target=True, granularity="weight", supports_m_by_n=True),
    Method("unit", "whole Dense neurons / Conv2D filters with the lowest L2 norm",
           takes_schedule=True, takes_target=True, granularity="unit"),
    Method("channel", "coupled channel groups (residual Adds, depthwise, BatchNorm, "
           "Concatenate) by group importance; removed from every layer they touch",
           takes_schedule=True, takes_target=True, granularity="channel"),
    Method("dynamic", "mean-column-norm pruner: decides when, where and how much",
           takes_schedule=False, takes_target=False, default_granularity="channel",
           pruner="MeanColumnNormPruner"),
    Method("incremental", "Taylor-contribution rounds up to the target", takes_schedule=False,
           takes_target=True, default_granularity="channel", pruner="TaylorPruner"),
    # The paper's PQ index is over weights.
    Method("adaptive", "PQ-index adaptive pruning (Diao et al. 2023)", takes_schedule=False,
           takes_target=False, default_granularity="weight", pruner="PQIndexPruner"),
):
    METHODS.register(_method.name, _method)


def latency_methods():
    """The methods that take a latency target (``Method.takes_latency``), by name."""
    return [m.name for m in METHODS.entries() if m.takes_latency]


def check_options(method, schedule=None, target_sparsity=None, initial_sparsity=0.0,
                  sparsity_m_by_n=None):
    """Validate a method's options together; return (schedule, target, m_by_n) normalised:
    schedule None for methods without one, target None for methods that choose their own."""
    method = METHODS.get(method) if isinstance(method, str) else method
    m_by_n = checks.parse_m_by_n(sparsity_m_by_n)
    if method.takes_schedule:
        SCHEDULES.validate(schedule)
    else:
        schedule = None
    if method.takes_target:
        target_sparsity = checks.check_sparsity("target_sparsity", target_sparsity,
                                                allow_zero=not method.decides)
    else:
        target_sparsity = None
    if m_by_n:
        if not method.supports_m_by_n:
            raise TfpruneError(f"`sparsity_m_by_n` applies to weight pruning, not "
                               f"{method.name!r}")
        if abs(target_sparsity - m_by_n[0] / m_by_n[1]) > 1e-9:
            raise TfpruneError(
                f"`target_sparsity` must be {m_by_n[0] / m_by_n[1]} with sparsity_m_by_n="
                f"{m_by_n[0]}:{m_by_n[1]}, got {target_sparsity}")
    initial_sparsity = checks.check_sparsity("initial_sparsity", initial_sparsity)
    if schedule == "polynomial" and initial_sparsity > target_sparsity:
        raise TfpruneError(
            f"`initial_sparsity` ({initial_sparsity}) must not exceed `target_sparsity` "
            f"({target_sparsity})")
    return schedule, target_sparsity, m_by_n


def check_layer_sparsity(method, layers=None, m_by_n=None, layer_sparsity=None):
    """Per-layer targets apply to weight and unit pruning under a schedule, without `layers`
    (they name the layers) or m:n blocks; returns the layers they name."""
    method = METHODS.get(method) if isinstance(method, str) else method
    if not method.takes_layer_sparsity:
        raise TfpruneError(f"`layer_sparsity` applies to the methods "
                           f"{', '.join(m.name for m in METHODS.entries() if m.takes_layer_sparsity)}"
                           f", not {method.name!r}")
    if isinstance(layer_sparsity, dict) and layer_sparsity and not any(layer_sparsity.values()):
        raise TfpruneError("`layer_sparsity` must prune some layer, got every target 0")
    if layers:
        raise TfpruneError("give `layers` or `layer_sparsity`, not both: the per-layer "
                           "sparsities name the layers they prune")
    if m_by_n:
        raise TfpruneError("`layer_sparsity` does not combine with `sparsity_m_by_n` (m:n "
                           "blocks fix every layer's sparsity at m/n)")
    return list(layer_sparsity) if isinstance(layer_sparsity, dict) else None


def check_channel_granularity(method, layers=None, m_by_n=None, prune_first_conv=False,
                              prune_classifier=False):
    """The layer options that channel granularity refuses (it prunes every prunable group);
    configs run it before any training, ``prune`` again."""
    if layers or m_by_n or prune_first_conv or prune_classifier:
        raise TfpruneError(f"`layers`, `sparsity_m_by_n`, `prune_first_conv` and "
                           f"`prune_classifier` do not apply to channel pruning (method "
                           f"{method!r}): it prunes every prunable channel group, the first "
                           "convolution's too; the classifier's outputs are the model's and "
                           "never pruned")


ONE_SHOT = ("weight", "unit", "channel")  # the methods one-shot pruning applies to


def check_one_shot(method):
    """The Method, when one-shot pruning applies to it (a deciding method needs training)."""
    spec = METHODS.get(method) if isinstance(method, str) else method
    if spec.name not in ONE_SHOT:
        raise TfpruneError(f"one-shot pruning (`fine_tune_epochs=0`) applies to the methods "
                           f"{', '.join(ONE_SHOT)}, not {spec.name!r}: it decides while training")
    return spec
