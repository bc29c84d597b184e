"""The compression stages after pruning, by name, and their options (no TensorFlow).

A stage trains a finished (stripped or shrunk) model a few more epochs under tfmot's wrappers:

- ``qat``: quantization-aware training (tfmot's Default8BitQuantizeScheme); on a pruned model
  pruning-preserving QAT, PQAT (Default8BitPrunePreserveQuantizeScheme), which keeps its zeros;
- ``cluster``: weight clustering (``cluster_weights``: each kernel's weights shared among
  ``clusters`` values), sparsity-preserving on a pruned model (the zero kept as a centroid);
- ``cqat``: clustering, then cluster-preserving QAT (Default8BitClusterPreserveQuantizeScheme);
  on a pruned model both sparsity-preserving: PCQAT, the whole deep-compression chain.

``qat`` and ``cqat`` make a model for full-integer int8 (their ``quantizations``); ``cluster``
makes a float model that every post-training quantization can take.
"""

import dataclasses

from tfprune import checks
from tfprune.declare import check_declared, option
from tfprune.registry import Registry


@dataclasses.dataclass(frozen=True)
class Stage:
    name: str
    description: str
    clusters: bool      # clusters the weights first
    quantize: bool      # then quantization-aware training
    names: tuple        # (the name on a dense model, the name on a pruned one)

    def applied(self, preserve_sparsity):
        """What it is called where it runs: 'qat' on a dense model, 'pqat' on a pruned one."""
        return self.names[1] if preserve_sparsity else self.names[0]

    def quantizations(self, asked):
        """The quantizations its model is deployed at: int8 for a quantization-aware model
        (what it was trained for), the ``asked`` ones for a clustered float model."""
        return ("int8",) if self.quantize else tuple(asked)


STAGES = Registry("compression stage")
STAGES.register("qat", Stage(
    "qat", "quantization-aware training (int8); on a pruned model pruning-preserving (PQAT)",
    clusters=False, quantize=True, names=("qat", "pqat")))
STAGES.register("cluster", Stage(
    "cluster", "weight clustering (shared values per kernel); on a pruned model "
    "sparsity-preserving", clusters=True, quantize=False, names=("cluster", "sparse-cluster")))
STAGES.register("cqat", Stage(
    "cqat", "clustering, then cluster-preserving QAT (int8); on a pruned model both keep the "
    "zeros (PCQAT)", clusters=True, quantize=True, names=("cqat", "pcqat")))

# Where the clusters' centroids start (tfmot's CentroidInitialization).
CENTROIDS = ("kmeans++", "density", "linear", "random")


def stages_help():
    return "; ".join(f"{s.name}: {s.description}" for s in map(STAGES.get, STAGES.names()))


@dataclasses.dataclass(frozen=True)
class StageOptions:
    """How a stage trains: epochs, learning rate, and for clustering the number of clusters
    per kernel and where their centroids start."""

    stage_epochs: int = option(2, "Compression stages: epochs of training under the stage's "
                               "wrappers (at least 1).", lower=1)
    stage_learning_rate: float = option(
        1e-4, "Compression stages: Adam's learning rate, cosine-decayed over the stage's "
        "epochs (lower than fine-tuning's: the model is trained already).",
        validator=checks.check_positive)
    clusters: int = option(16, "cluster, cqat: shared values per kernel (at least 2).",
                           lower=2)
    centroids: str = option("kmeans++", "cluster, cqat: where the centroids start, {choices}.",
                            choices=CENTROIDS)

    def __post_init__(self):
        check_declared(self)

