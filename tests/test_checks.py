import pytest

from tfprune import checks
from tfprune.errors import TfpruneError


@pytest.mark.parametrize("call, message", [
    (lambda: checks.check_int("epochs", 0, 1), r"`epochs` must be an integer >= 1, got 0"),
    (lambda: checks.check_int("epochs", True, 1), r"`epochs` must be an integer >= 1, got True"),
    (lambda: checks.check_int("epochs", 2.5, 1), r"`epochs` must be an integer >= 1, got 2.5"),
    (lambda: checks.check_positive("learning_rate", 0), r"`learning_rate` must be > 0, got 0"),
    (lambda: checks.check_sparsity("target_sparsity", 1.0), r"`target_sparsity` must be in \[0, 1\), got 1.0"),
    (lambda: checks.check_sparsity("t", 0.0, allow_zero=False), r"`t` must be in \(0, 1\), got 0.0"),
    (lambda: checks.check_fraction("beta", 1.5), r"`beta` must be in \(0, 1\), got 1.5"),
    (lambda: checks.check_unit_interval("momentum", 1.0), r"`momentum` must be in \[0, 1\), got 1.0"),
    (lambda: checks.check_choice("objective", "speed", ("accuracy", "weighted")),
     r"`objective` must be one of accuracy, weighted, got 'speed'"),
    (lambda: checks.check_not_empty("seeds", (), "give integers"), r"`seeds` must not be empty; give integers"),
    (lambda: checks.check_file("baseline", "/no/such.keras", "a saved model"),
     r"`baseline` must be a saved model, got '/no/such.keras', which is not a file"),
    (lambda: checks.parse_m_by_n("2-4"), r"`sparsity_m_by_n` must look like '2:4'"),
    (lambda: checks.parse_m_by_n("4:2"), r"`sparsity_m_by_n` must have 0 < m < n, got 4:2"),
])
def test_messages_name_argument_rule_and_value(call, message):
    with pytest.raises(TfpruneError, match=message):
        call()


def test_values_pass_through():
    assert checks.check_int("n", 3, 1) == 3
    assert checks.check_sparsity("s", 0) == 0.0
    assert checks.check_optional_int("n", None, 1) is None
    assert checks.parse_m_by_n("2:4") == (2, 4) and checks.parse_m_by_n(None) is None


def test_clip_to_caps_a_size_and_says_so():
    assert checks.clip_to("`n`", 5, 10, "the split (10 examples)") == (5, None)
    assert checks.clip_to("`n`", 10, 10, "the split (10 examples)") == (10, None)
    assert checks.clip_to("`n`", 11, 10, "the split (10 examples)") == (
        10, "`n` 11 is larger than the split (10 examples); using 10")
