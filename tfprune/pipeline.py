"""One call from a model and its data to the pruned and shrunk models: ``prune_model``.

The library's way through what the pruning job does without a run directory: the method object
(pruning/method_objects.py) attaches to a copy of the model, the copy fine-tunes for ``epochs``
(0: pruned once, nothing trained), and the method finishes it into the pruned model, the shrunk
one and its statistics. Any method, with its one options object (pruning/options.py).
"""

from tfprune import training
from tfprune.models import CHECK_INPUTS
from tfprune.optimizers import make_optimizer
from tfprune.pruning import method_objects
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
