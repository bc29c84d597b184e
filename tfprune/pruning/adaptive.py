"""PQ index and Sparsity-informed Adaptive Pruning (Diao et al., ICLR 2023), as plain functions.

I_{p,q}(w) = 1 - d^(1/q - 1/p) * ||w||_p / ||w||_q over the d unpruned weights (0 < p < q); 0 for a
vector whose entries are all equal, approaching 1 as the mass concentrates in few entries. Each
round keeps at least r = d (1 + eta)^(-q/(q-p)) (1 - I)^(q p / (q - p)) weights and prunes
floor(d * min(gamma * (1 - r / d), beta)) of them.
"""

import math

import numpy as np

from tfprune.errors import TfpruneError


def check_pq(p, q):
    if not (isinstance(p, (int, float)) and isinstance(q, (int, float))) or not 0 < p < q:
        raise TfpruneError(f"PQ index needs 0 < p < q, got p={p!r}, q={q!r}")


def _norm(w, p):
    return float(np.sum(np.abs(w) ** p) ** (1.0 / p))


def pq_index(weights, p=0.5, q=1.0):
    """I_{p,q} of the non-zero entries of ``weights`` (0 for an empty or all-zero vector)."""
    check_pq(p, q)
    w = np.asarray(weights, dtype=np.float64).ravel()
    w = w[w != 0]
    d = w.size
    if d == 0:
        return 0.0
    return 1.0 - d ** (1.0 / q - 1.0 / p) * _norm(w, p) / _norm(w, q)


def keep_bound(d, index, p=0.5, q=1.0, eta=0.0):
    """r: the least number of weights the paper's bound says to keep."""
    check_pq(p, q)
    return d * (1.0 + eta) ** (-q / (q - p)) * (1.0 - index) ** (q * p / (q - p))


def prune_amount(d, index, p=0.5, q=1.0, eta=0.0, gamma=1.0, beta=0.9):
    """How many of ``d`` remaining weights to prune this round."""
    if d <= 0:
        return 0
    r = keep_bound(d, index, p, q, eta)
    return int(math.floor(d * min(gamma * (1.0 - r / d), beta) + 1e-9))  # 1e-9: float round-off
