"""Keras 3 files loaded by a fresh process that imports ``keras`` alone (never tfprune, never
tf_keras): what a user of the exported files runs."""

import json
import os
import subprocess
import sys

KERAS_ONLY = """
import json, sys
import numpy as np
import keras
data = np.load(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    p = keras.saving.load_model(path).predict(data["x"], batch_size=256, verbose=0)
    out[path] = float(np.mean(np.argmax(p, -1) == data["y"]))
assert "tfprune" not in sys.modules, "the Keras-only process imported tfprune"
out["modules"] = sorted(m for m in ("tfprune", "tf_keras") if m in sys.modules)
print(json.dumps(out))
"""


class KerasOnlyError(RuntimeError):
    """The Keras-only process failed; the message is the last line it wrote to stderr."""


def keras_only_accuracy(paths, arrays):
    """{path: test accuracy} of Keras 3 files, measured by a process that imports only ``keras``;
    ``arrays``: an .npz holding ``x`` and ``y``. A failure raises KerasOnlyError with the
    process's own last line (the exception it ended on)."""
    env = dict(os.environ)
    env.pop("TF_USE_LEGACY_KERAS", None)
    done = subprocess.run([sys.executable, "-c", KERAS_ONLY, arrays, *paths], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise KerasOnlyError(f"the Keras-only process failed (exit {done.returncode}): "
                             f"{lines[-1] if lines else 'no output'}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result.pop("modules") != []:
        raise KerasOnlyError("the Keras-only process imported tf_keras")
    return result
