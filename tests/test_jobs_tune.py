import os

import pytest

from tfprune.errors import TfpruneError, UnknownNameError
from tfprune.models import build_model
from tfprune.jobs.tune import TuneConfig, collect_trials, make_tuner, write_results


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    path = tmp_path_factory.mktemp("baseline") / "mlp.keras"
    model = build_model("mlp", (8, 8, 1), 10, seed=0)
    model.save(path)
    return str(path)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(methods=()), TfpruneError, "`methods` must not be empty; choose from"),
    (dict(schedules=()), TfpruneError, "`schedules` must not be empty; choose from"),
    (dict(quantizations=()), TfpruneError, "`quantizations` must not be empty"),
    (dict(epochs=()), TfpruneError, "`epochs` must not be empty"),
    (dict(tuner="grid"), UnknownNameError, "unknown tuner 'grid'; registered: bayesian, hyperband, random"),
    (dict(min_sparsity=0.9, max_sparsity=0.5), TfpruneError, r"`min_sparsity` \(0.9\) must not exceed"),
    (dict(max_sparsity=1.0), TfpruneError, r"`max_sparsity` must be in \[0, 1\)"),
    (dict(max_size_kb=0), TfpruneError, "`max_size_kb` must be > 0, got 0"),
    (dict(objective="speed"), TfpruneError, "`objective` must be one of accuracy, weighted"),
    (dict(mixed_budget_kb=20), TfpruneError,
     "`mixed_budget_kb` must come with the 'mixed' quantization, got quantizations int8"),
    (dict(quantizations=("mixed",), mixed_int4_fraction=1.5), TfpruneError,
     r"`mixed_int4_fraction` must be in \[0, 1\], got 1.5"),
])
def test_config_validation(baseline, kwargs, error, message):
    with pytest.raises(error, match=message):
        TuneConfig(baseline=baseline, **kwargs)


def test_a_mixed_budget_below_all_int4_is_refused_before_any_trial(baseline, tmp_path):
    from tfprune.jobs.tune import run_tune

    config = TuneConfig(baseline=baseline, model="mlp", quantizations=("mixed",),
                        mixed_budget_kb=5)
    with pytest.raises(TfpruneError, match=r"`mixed_budget_kb` must be at least the all-int4 "
                                           r"model's size"):
        run_tune(config, str(tmp_path / "tune"), log=lambda _: None)
    assert not (tmp_path / "tune").exists()


def test_missing_baseline():
    with pytest.raises(TfpruneError, match="`baseline` must be a saved Keras model file"):
        TuneConfig(baseline="/nope.keras")


@pytest.mark.integration
def test_search_records_trials_over_budget_and_resumes(baseline, tmp_path):
    config = TuneConfig(baseline=baseline, model="mlp", max_trials=2, epochs=(1,),
                        max_size_kb=0.5, latency_runs=5)  # no model is under 0.5 KB
    tuner = make_tuner(config, str(tmp_path), log=lambda _: None)
    tuner.search()
    summary = write_results(config, str(tmp_path))
    assert len(summary["trials"]) == 2 and not summary["budget_met"]
    for row in summary["trials"]:
        assert not row["within_budget"] and row["score"] == pytest.approx(row["tflite_accuracy"] - 1)
        assert not os.path.isabs(row["tflite_file"]) and (tmp_path / row["tflite_file"]).exists()
    for name in ("trials.csv", "trials.json", "trials.png", "best.tflite"):
        assert (tmp_path / name).exists(), name
    best = tuner.oracle.get_best_trials(1)[0]
    assert tuner.load_model(best).count_params() > 0  # the model the trial deployed
    # Rerunning continues the same search (keras-tuner's project directory).
    more = TuneConfig(**dict(config.to_dict(), max_trials=3))
    make_tuner(more, str(tmp_path), log=lambda _: None).search()
    assert len(collect_trials(str(tmp_path))) == 3


def test_user_error_inside_a_trial_stops_the_search_with_that_error(baseline, tmp_path, monkeypatch):
    from tfprune.jobs import tune, variant

    attempts = []

    def bad_trial(*args, **kwargs):
        attempts.append(1)
        raise TfpruneError("`layers` names layers that cannot be pruned: nope")

    monkeypatch.setattr(variant, "prune_and_deploy", bad_trial)
    config = TuneConfig(baseline=baseline, model="mlp", max_trials=5, epochs=(1,), latency_runs=5)
    with pytest.raises(TfpruneError, match="cannot be pruned: nope"):
        tune.run_tune(config, str(tmp_path), log=lambda _: None)
    assert attempts == [1]  # not retried, not three keras-tuner tracebacks


def test_combinations_are_checked_before_the_search(baseline):
    with pytest.raises(TfpruneError, match=r"`target_sparsity` must be in \(0, 1\), got 0.0"):
        TuneConfig(baseline=baseline, methods=("incremental",), min_sparsity=0.0)


def test_a_baseline_that_does_not_fit_is_refused_before_any_trial(tmp_path):
    from tfprune.jobs import tune

    path = tmp_path / "cifar.keras"
    build_model("mlp", (32, 32, 3), 10).save(path)
    config = TuneConfig(baseline=str(path), model="mlp", max_trials=1, epochs=(1,))
    with pytest.raises(TfpruneError, match=r"takes \(32, 32, 3\).*needs \(8, 8, 1\)"):
        tune.run_tune(config, str(tmp_path / "out"), log=lambda _: None)
    assert not (tmp_path / "out").exists()
