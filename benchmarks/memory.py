"""Peak memory: training (process peak RSS) dense vs pruned; the interpreter's footprint."""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_TRAIN = """
import json, resource, sys
import numpy as np
import tfprune
from tfprune.keras import keras
from tfprune.models import build_model
from tfprune.pruning import prune
model_name, variant, shape = sys.argv[1], sys.argv[2], tuple(json.loads(sys.argv[3]))
rng = np.random.default_rng(0)
x = rng.random((1024,) + shape, dtype=np.float32); y = rng.integers(0, 10, 1024)
model = build_model(model_name, shape, 10, seed=0)
callbacks = []
if variant != "dense":
    r = prune(model, variant, "constant", 0.5, steps_per_epoch=16, epochs=2)
    model, callbacks = r.model, r.callbacks
model.compile("adam", "sparse_categorical_crossentropy")

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB -> MB

# Importing TensorFlow peaks above a small model's training; reset the high-water mark (Linux
# clear_refs 5) so the peak is the training's own.
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
model.fit(x, y, batch_size=64, epochs=2, verbose=0, callbacks=callbacks)
print(json.dumps({"peak_rss_mb": status("VmHWM"), "growth_mb": status("VmHWM") - before,
                  "process_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""

_INTERPRETER = """
import json, sys
import numpy as np, psutil
proc = psutil.Process()
from ai_edge_litert.interpreter import Interpreter, OpResolverType
before = proc.memory_info().rss
delegate = "default (XNNPACK)"
try:
    it = Interpreter(model_path=sys.argv[1], num_threads=1)
    it.allocate_tensors()
except RuntimeError:  # XNNPACK refuses sparse-encoded models: the same fallback as evaluate.load
    delegate = "none (built-in kernels)"
    it = Interpreter(model_path=sys.argv[1], num_threads=1,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    it.allocate_tensors()
d = it.get_input_details()[0]
it.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
it.invoke()
print(json.dumps({"interpreter_rss_mb": (proc.memory_info().rss - before) / 2**20,
                  "file_kb": __import__("os").path.getsize(sys.argv[1]) / 1024,
                  "delegate": delegate}))
"""


def _run(code, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                            env=env, cwd=ROOT, timeout=1200)
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def training_peak(model_name, shape):
    return {variant: _run(_TRAIN, model_name, variant, json.dumps(list(shape)))
            for variant in ("dense", "weight", "unit")}


def interpreter_footprint(paths):
    return {os.path.basename(p): _run(_INTERPRETER, p) for p in paths}
