"""One call from a model and its data to the pruned and shrunk models: ``prune_model``; and one
from a finished model to its compression stage (QAT, PQAT, clustering, PCQAT): ``compress_model``.

The library's way through what the pruning job does without a run directory: the method object
(pruning/method_objects.py) attaches to a copy of the model, the copy fine-tunes for ``epochs``
(0: pruned once, nothing trained), and the method finishes it into the pruned model, the shrunk
one and its statistics. Any method, with its one options object (pruning/options.py).
"""

import dataclasses

from tfprune import training
from tfprune.compression import clustering, qat, weights
from tfprune.compression.stages import STAGES, StageOptions
from tfprune.models import CHECK_INPUTS
from tfprune.optimizers import make_optimizer
from tfprune.pruning import method_objects
from tfprune.pruning.kernels import kernel_arrays
from tfprune.tflite import latency


def fine_tune_optimizer(learning_rate, epochs, steps_per_epoch):
    """The fine-tuning's optimizer: Adam, its learning rate cosine-decayed over the steps."""
    return make_optimizer("adam", learning_rate, lr_schedule="cosine",
                          decay_steps=epochs * steps_per_epoch)


def prune_model(model, data, method="weight", epochs=0, options=None, *, learning_rate=3e-3,
                decisions_path=None, log=None, **fields):
    """``model`` (not changed) pruned by ``method`` and fine-tuned on ``data`` (a data.Data)
    for ``epochs`` (0: one-shot); a ``method_objects.Finished``: ``pruned`` (the original
    shapes, float32), ``shrunk`` (the pruned units or channels removed, checked against
    ``pruned`` on ``CHECK_INPUTS`` test images), ``summary`` (stats.summarize) and ``statistics`` (the
    method's own: channel groups, decisions, schedule steps).

    With ``target_latency`` (channel), the statistics' "latency" holds the cost model's
    prediction and the dense and shrunk models' latency measured together.

    ``options`` is the method's options object (pruning.options: LayerOptions for weight and
    unit, ChannelOptions for channel, DecidingOptions for dynamic, incremental, adaptive);
    ``fields`` replace its fields, or make it (``target_sparsity=0.3``)."""
    log = log or (lambda _: None)
    attached = method_objects.make_method(method, options, cost_builder=latency.cost_model,
                                          **fields).attach(
        model, steps_per_epoch=data.steps_per_epoch, epochs=epochs,
        train_data=data.split("train"), decisions_path=decisions_path, log=log)
    if epochs:
        training.compile_model(attached.model, fine_tune_optimizer(
            learning_rate, epochs, data.steps_per_epoch))
        training.fit(attached.model, data, epochs, callbacks=attached.callbacks, log=log,
                     prefix="[fine-tune] ")
    finished = attached.finish(data.numpy("test", limit=CHECK_INPUTS)[0])
    latency.add_measured(finished, model, log)  # --target_latency: the latency measured
    return finished


@dataclasses.dataclass
class Compressed:
    """A compression stage's result: ``model`` (for a quantization-aware stage tfmot's QAT
    model, which the int8 converter takes; for clustering the stripped float model), what it
    is called where it ran (``stage``: qat or pqat, cluster or sparse-cluster, cqat or pcqat),
    the layers it clustered and quantized, those it left as they were (``kept``: {layer:
    why}), and the kernels' counts before and after (``weights.kernel_counts``; "after" is
    before the quantization-aware training, whose int8 kernels exist only in the .tflite:
    ``tflite_counts`` counts them there)."""

    model: object
    stage: str
    preserve_sparsity: bool
    clustered: list
    quantized: list
    kept: dict
    counts_before: dict
    counts_after: dict
    history: dict  # {training: its Keras history}: cluster, then the QAT stage's name

    def max_unique(self):
        """The most unique values in one clustered kernel (None: nothing clustered)."""
        mine = [c["unique"] for name, c in self.counts_after.items()
                if name.split("/")[0] in self.clustered]
        return max(mine) if mine else None

    def record(self):
        """What the stage did, as the jobs record it."""
        return {"stage": self.stage, "preserve_sparsity": self.preserve_sparsity,
                "clustered": self.clustered, "quantized": self.quantized, "kept": self.kept,
                "counts_before": self.counts_before, "counts_after": self.counts_after,
                "max_unique": self.max_unique()}


def check_stage(model, stage, options=None):
    """The checks of ``stage`` on ``model`` before any training (an untrained architecture will
    do): something to cluster into ``options.clusters``, something tfmot can quantize, tfmot's
    wrappers applied once (no training, a few seconds); one-line errors."""
    spec, options = STAGES.get(stage), options or StageOptions()
    if spec.clusters:  # wrapped for real: tfmot fails on some layers only when it wraps them
        clustering.cluster(model, options.clusters)
    if spec.quantize:  # quantized for real (no training), with and without keeping zeros
        for preserve in (False, True):
            qat.quantize_aware(model, qat.scheme(preserve, clustered=spec.clusters))


def compress_model(model, data, stage="qat", options=None, *, preserve_sparsity=None,
                   log=None, **fields):
    """``model`` (not changed) through the compression ``stage`` (compression.stages.STAGES:
    qat, cluster, cqat), each of its trainings ``options.stage_epochs`` epochs on ``data``;
    a ``Compressed``. ``preserve_sparsity`` (default: whether the model's kernels hold
    pruned zeros, ``weights.is_pruned``) keeps the zeros: PQAT, sparsity-preserving
    clustering, PCQAT. ``fields`` replace fields of ``options`` (a StageOptions)."""
    log = log or (lambda _: None)
    spec = STAGES.get(stage)
    options = dataclasses.replace(options or StageOptions(), **fields)
    before = kernel_arrays(model)
    if preserve_sparsity is None:
        preserve_sparsity = weights.is_pruned(before)
    name = spec.applied(preserve_sparsity)
    history, clustered, quantized, kept, current = {}, [], [], {}, model

    def train(wrapped, what):
        training.compile_model(wrapped, fine_tune_optimizer(
            options.stage_learning_rate, options.stage_epochs, data.steps_per_epoch))
        history[what] = training.fit(wrapped, data, options.stage_epochs, log=log,
                                     prefix=f"[{what}] ").history

    if spec.clusters:
        wrapped, clustered, skipped = clustering.cluster(
            current, options.clusters, options.centroids, preserve_sparsity)
        kept.update(skipped)
        log(f"{name}: {len(clustered)} layers clustered into {options.clusters} values"
            + (f"; kept as they are: {', '.join(skipped)}" if skipped else ""))
        train(wrapped, "cluster")
        current = clustering.strip(wrapped)
    after = kernel_arrays(current)  # a QAT model's kernels are quantized in its graph
    if spec.quantize:
        wrapped, quantized, floats = qat.quantize_aware(
            current, qat.scheme(preserve_sparsity, clustered=spec.clusters))
        kept.update(floats)
        log(f"{name}: {len(quantized)} layers quantization-aware"
            + (f"; float: {', '.join(floats)}" if floats else ""))
        train(wrapped, name)
        current = wrapped
    return Compressed(current, name, bool(preserve_sparsity), clustered, quantized, kept,
                      weights.kernel_counts(before), weights.kernel_counts(after),
                      history)
