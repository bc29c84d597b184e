"""What TensorFlow reads from the environment when it is imported, set by tfprune first.

tensorflow-model-optimization works only with Keras 2 (tf_keras); TensorFlow chooses the Keras
behind ``tf.keras`` from ``TF_USE_LEGACY_KERAS`` when tf.keras is first touched. ``use_keras2``
runs on ``import tfprune`` (which imports no TensorFlow, so ``import tfprune; import tensorflow``
gets Keras 2) and again in tfprune.keras, right before TensorFlow is imported.

It also quietens TensorFlow before it is imported: its C++ INFO and WARNING lines off
(``TF_CPP_MIN_LOG_LEVEL=2`` unless the user chose a level; ERRORs stay), and the Python
warnings of TensorFlow, Keras, tfmot and LiteRT hidden unless ``TFPRUNE_VERBOSE=1``
(tfprune/quiet.py: what is hidden, and what a command hides on top).
"""

import os

from tfprune import quiet


def use_keras2():
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not quiet.verbose():
        quiet.hide_library_warnings()
