"""What TensorFlow reads from the environment when it is imported, set by tfprune first.

tensorflow-model-optimization works only with Keras 2 (tf_keras); TensorFlow chooses the Keras
behind ``tf.keras`` from ``TF_USE_LEGACY_KERAS`` when tf.keras is first touched. ``use_keras2``
runs on ``import tfprune`` (which imports no TensorFlow, so ``import tfprune; import tensorflow``
gets Keras 2) and again in tfprune.keras, right before TensorFlow is imported.
"""

import os


def use_keras2():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    # Quieten TensorFlow's C++ INFO/WARNING chatter unless the user chose a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
