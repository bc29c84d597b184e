"""experiments/prune.py run as a user runs it, and the pruning acceptance figures (slow)."""

import json

import pytest

from test_experiments_train import assert_clean_error, assert_same_outcome, script_cases

BAD_INPUT = [
    (["--target_sparsity=1.3"], "`target_sparsity` must be in [0, 1), got 1.3"),
    (["--target_sparsity=-0.5"], "`target_sparsity` must be in [0, 1), got -0.5"),
    (["--method=random"], "--method=random"),
    (["--schedule=cubic"], "--schedule=cubic"),
    (["--begin_step=50", "--end_step=10"], "`begin_step` must be before `end_step`"),
    (["--baseline=/nope.keras"], "`baseline` must be 'train' or the path"),
    (["--method=adaptive", "--pq_p=1", "--pq_q=0.5"], "PQ index needs 0 < p < q, got p=1.0, q=0.5"),
    (["--method=dynamic", "--norm_tolerance=1.5"], "`norm_tolerance` must be in (0, 1), got 1.5"),
    (["--method=dynamic", "--accuracy_tolerance=-0.1"], "`accuracy_tolerance` must be in (0, 1)"),
    (["--method=weight", "--patience=3"], "`dynamic` options apply to the methods"),
    # Found before any baseline trains (they used to surface after up to 60 epochs):
    (["--method=unit", "--sparsity_m_by_n=2:4", "--target_sparsity=0.5"],
     "`sparsity_m_by_n` applies to weight pruning, not 'unit'"),
    (["--layers=conv2,nope"], "`layers` names layers that cannot be pruned by weight pruning: nope"),
    (["--schedule=polynomial", "--begin_step=5", "--end_step=12", "--frequency=5"],
     "`end_step - begin_step` (7) must be a multiple of `frequency` (5)"),
    (["--initial_sparsity=0.95", "--target_sparsity=0.9"],
     "`initial_sparsity` (0.95) must not exceed `target_sparsity` (0.9)"),
]


@pytest.fixture(scope="module")
def bad_input(tmp_path_factory):
    """Every BAD_INPUT command line through experiments.prune in one interpreter: (results,
    the directory of their output_dirs)."""
    base = tmp_path_factory.mktemp("bad_input")
    argvs = [[f"--output_dir={base}/{i}/run"] + flags for i, (flags, _) in enumerate(BAD_INPUT)]
    return script_cases("prune", argvs, base / "results.json"), base


@pytest.mark.parametrize("flags, fragment", BAD_INPUT)
def test_bad_input_is_a_clean_error(python, tmp_path, bad_input, flags, fragment):
    batched, base = bad_input
    index = BAD_INPUT.index((flags, fragment))
    if index == 0:  # one as a real run, which the batched one must match
        result = python(["-m", "experiments.prune", f"--output_dir={tmp_path}/run"] + flags)
        assert_same_outcome(result, batched[0])
        assert not (tmp_path / "run").exists()
    else:
        result = batched[index]
    assert_clean_error(result, fragment)
    assert not (base / str(index) / "run").exists()


@pytest.fixture(scope="module")
def cnn_baseline(tmp_path_factory):
    from conftest import run_python

    out = tmp_path_factory.mktemp("baseline")
    result = run_python(["-m", "experiments.train", "--model=cnn", f"--output_dir={out}"])
    assert result.returncode == 0, result.stderr
    return out / "model.keras", json.loads((out / "metrics.json").read_text())["test_accuracy"]


def prune_run(python, out, baseline, *flags):
    result = python(["-m", "experiments.prune", f"--baseline={baseline}", f"--output_dir={out}"]
                    + list(flags))
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.slow
def test_weight_pruning_90_percent_holds_accuracy(python, tmp_path, cnn_baseline):
    path, baseline_accuracy = cnn_baseline
    metrics = prune_run(python, tmp_path / "w90", path, "--method=weight",
                        "--schedule=polynomial", "--target_sparsity=0.9")
    for layer, sparsity in metrics["layer_sparsity"].items():
        assert abs(sparsity - 0.9) <= 0.01, (layer, sparsity)
    assert metrics["accuracy"] >= baseline_accuracy - 0.015, metrics


@pytest.mark.slow
def test_unit_pruning_half_the_units_shrinks_2x(python, tmp_path, cnn_baseline):
    path, baseline_accuracy = cnn_baseline
    metrics = prune_run(python, tmp_path / "u50", path, "--method=unit", "--schedule=constant",
                        "--target_sparsity=0.5")
    for layer, sparsity in metrics["layer_sparsity"].items():
        assert abs(sparsity - 0.5) <= 0.01, (layer, sparsity)
    assert metrics["accuracy"] >= baseline_accuracy - 0.015, metrics
    assert metrics["shrink"]["param_reduction"] >= 2.0
    assert metrics["shrink"]["max_abs_diff"] <= 1e-4
    assert (tmp_path / "u50" / "shrunk.keras").exists()
