import pytest

from tfprune.errors import TfpruneError
from tfprune.pruning.methods import METHODS, check_options


def test_each_method_says_what_it_takes():
    takes = {m.name: (m.takes_schedule, m.takes_target, m.decides) for m in METHODS.entries()}
    assert takes == {"weight": (True, True, False), "unit": (True, True, False),
                     "channel": (True, True, False),
                     "dynamic": (False, False, True), "incremental": (False, True, True),
                     "adaptive": (False, False, True)}
    assert METHODS.get("adaptive").resolve_granularity() == "weight"
    assert METHODS.get("dynamic").resolve_granularity() == "channel"
    assert METHODS.get("dynamic").resolve_granularity("weight") == "weight"
    assert METHODS.get("unit").resolve_granularity("weight") == "unit"  # fixed by the method


def test_options_are_normalised():
    assert check_options("weight", "constant", 0.5) == ("constant", 0.5, None)
    assert check_options("dynamic", "polynomial", 0.0) == (None, None, None)
    assert check_options("incremental", "constant", 0.5) == (None, 0.5, None)
    assert check_options("weight", "polynomial", 0.5, sparsity_m_by_n="2:4") == ("polynomial", 0.5, (2, 4))


@pytest.mark.parametrize("args, kwargs, message", [
    (("unit", "constant", 0.5), dict(sparsity_m_by_n="2:4"), "`sparsity_m_by_n` applies to weight pruning, not 'unit'"),
    (("weight", "constant", 0.6), dict(sparsity_m_by_n="2:4"), r"`target_sparsity` must be 0.5 with sparsity_m_by_n=2:4, got 0.6"),
    (("weight", "polynomial", 0.5), dict(initial_sparsity=0.8), r"`initial_sparsity` \(0.8\) must not exceed `target_sparsity` \(0.5\)"),
    (("incremental", None, 0.0), {}, r"`target_sparsity` must be in \(0, 1\), got 0.0"),
    (("weight", "cubic", 0.5), {}, "unknown schedule 'cubic'; registered: constant, polynomial"),
    (("lottery", "constant", 0.5), {}, "unknown pruning method 'lottery'"),
])
def test_bad_combinations(args, kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        check_options(*args, **kwargs)
