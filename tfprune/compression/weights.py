"""What a compression stage is judged by, on plain arrays: per kernel its size, non-zeros and
unique values (clustering's promise: at most ``clusters`` values per kernel, the zero kept on a
pruned one), and whether a model is sparse enough to call pruned."""

import numpy as np

# A kernel with at least this share of exact zeros counts as pruned: a trained dense kernel
# has none, a pruned one has its target's share.
PRUNED_ZEROS = 0.05


def kernel_counts(kernels):
    """{name: {"size", "nonzero", "unique"}} of ``kernels`` {name: array}."""
    counts = {}
    for name, values in kernels.items():
        values = np.asarray(values)
        counts[name] = {"size": int(values.size), "nonzero": int(np.count_nonzero(values)),
                        "unique": int(np.unique(values).size)}
    return counts


def is_pruned(kernels):
    """True when some kernel of ``kernels`` {name: array} has PRUNED_ZEROS of exact zeros."""
    return any(np.asarray(v).size and np.mean(np.asarray(v) == 0) >= PRUNED_ZEROS
               for v in kernels.values())


def summary(counts):
    """Totals of ``kernel_counts``: kernels, weights, non-zeros, the most unique values in one
    kernel."""
    return {"kernels": len(counts), "weights": sum(c["size"] for c in counts.values()),
            "nonzero": sum(c["nonzero"] for c in counts.values()),
            "max_unique": max((c["unique"] for c in counts.values()), default=0)}
