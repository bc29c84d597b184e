"""Optimizers and learning-rate schedules by name (``OPTIMIZERS``, ``LR_SCHEDULES``): what the
scripts' flags and the job configs choose from, without importing TensorFlow; ``make_optimizer``
builds one (Keras is imported then)."""

from tfprune import checks
from tfprune.errors import TfpruneError
from tfprune.lazy import keras
from tfprune.registry import Registry

OPTIMIZERS = Registry("optimizer")
OPTIMIZERS.register("adam", lambda lr, momentum, weight_decay: keras.optimizers.Adam(
    lr, weight_decay=weight_decay or None))
OPTIMIZERS.register("sgd", lambda lr, momentum, weight_decay: keras.optimizers.SGD(
    lr, momentum=momentum, nesterov=momentum > 0, weight_decay=weight_decay or None))

LR_SCHEDULES = ("constant", "cosine")


def make_optimizer(name="adam", learning_rate=1e-3, momentum=0.9, weight_decay=0.0,
                   lr_schedule="constant", decay_steps=None):
    factory = OPTIMIZERS.get(name)
    checks.check_positive("learning_rate", learning_rate)
    checks.check_choice("lr_schedule", lr_schedule, LR_SCHEDULES)
    lr = learning_rate
    if lr_schedule == "cosine":
        if not decay_steps or decay_steps < 1:
            raise TfpruneError(f"`decay_steps` must be >= 1 for a cosine schedule, got {decay_steps}")
        lr = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps)
    return factory(lr, momentum, weight_decay)
