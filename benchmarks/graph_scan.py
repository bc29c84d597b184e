"""A quick scan of the channel graph on keras.applications models (issue 31): each model built by
Keras 3 (weights=None), translated to tf_keras, its groups found, one-shot L2 uniform selection at
``ratio``, shrunk and checked against the masked model on 2 random images. No job, no export, no
int8: the full benchmark is benchmarks/applications.py. Prints one line per model.

    .venv/bin/python -m benchmarks.graph_scan ResNet50,EfficientNetB0 96 0.3
"""

import sys
import time

import numpy as np


def scan(name, size, ratio):
    import keras as keras3_lib

    from tfprune import keras3
    from tfprune.pruning import channels, stats
    from tfprune.pruning import groups as groups_lib

    start = time.time()
    keras3_lib.utils.set_random_seed(0)
    original = getattr(keras3_lib.applications, name)(weights=None, input_shape=(size, size, 3),
                                                      classes=10)
    x = np.random.default_rng(0).random((4, size, size, 3)).astype(np.float32) * 255
    model = keras3.from_keras3(original, x).model
    graph = groups_lib.analyze(model)
    groups = graph.groups
    keep = channels.select(groups, channels.importance(model, groups, "l2"), ratio)
    result = channels.shrink(model, groups, keep, check_inputs=x[:2])
    flops = stats.summarize(result.model)["flops"] / stats.summarize(model)["flops"]
    opaque = sorted({why for why in graph.opaque.values()})
    return (f"{name}: groups {len(groups)}, prunable {len(channels.prunable(groups))}, FLOPs "
            f"{flops:.3f}x, max |shrunk - masked| {result.max_abs_diff:.2g}, opaque layers "
            f"{len(graph.opaque)} {opaque[:2]}, {time.time() - start:.0f} s")


def main(argv):
    names = argv[1].split(",")
    size = int(argv[2]) if len(argv) > 2 else 96
    ratio = float(argv[3]) if len(argv) > 3 else 0.3
    for name in names:
        try:
            print(scan(name, size, ratio), flush=True)
        except Exception as e:  # noqa: BLE001  (a scan reports every model)
            print(f"{name}: {type(e).__name__}: {str(e)[:300]}", flush=True)


if __name__ == "__main__":
    main(sys.argv)
