import os

import pytest

from tfprune import io
from tfprune.errors import RunDirectoryError, TfpruneError
from tfprune.jobs.prune import PruneConfig, PruneRun, run_prune

TINY = dict(model="mlp", method="unit", schedule="polynomial", target_sparsity=0.5,
            fine_tune_epochs=2, baseline_epochs=2, batch_size=128)


@pytest.mark.parametrize("kwargs, message", [
    (dict(target_sparsity=1.0), r"`target_sparsity` must be in \[0, 1\), got 1.0"),
    (dict(fine_tune_epochs=-1), r"`fine_tune_epochs` must be an integer >= 0, got -1"),
    (dict(fine_tune_epochs=0, method="dynamic"),
     r"one-shot pruning \(`fine_tune_epochs=0`\) applies to the methods weight, unit, channel, "
     r"not 'dynamic'"),
    (dict(fine_tune_epochs=0, frequency=5),
     r"`frequency` applies to fine-tuning under a schedule, not to one-shot pruning"),
    (dict(layer_sparsity="auto", method="channel", schedule="constant"),
     r"`layer_sparsity` applies to the methods weight, unit, not 'channel'"),
    (dict(layer_sparsity="auto", layers="fc1"), r"give `layers` or `layer_sparsity`, not both"),
    (dict(layer_sparsity="auto", target_sparsity=0.995),
     r"`target_sparsity` must be at most 0.99 with layer_sparsity='auto' \(the sensitivity "
     r"curves end there\), got 0.995"),
    (dict(layer_sparsity="/no/such/targets.json"),
     r"`layer_sparsity` must be one of uniform, auto, global or a JSON / CSV file"),
    (dict(learning_rate=0), r"`learning_rate` must be > 0, got 0"),
    (dict(begin_step=100, end_step=50), r"`begin_step` must be before `end_step`"),
    (dict(baseline="/no/such/model.keras"), r"`baseline` must be 'train' or the path of a saved Keras model"),
    (dict(method="lottery"), r"unknown pruning method 'lottery'; registered: adaptive, channel, dynamic, incremental, unit, weight"),
    (dict(schedule="step"), r"unknown schedule 'step'; registered: constant, polynomial"),
    (dict(stage="pqat"), r"unknown compression stage 'pqat'; registered: cluster, cqat, qat"),
    (dict(clusters=8), r"^`clusters` applies to a compression stage \(--stage: cluster, cqat, "
                       r"qat\); none is given$"),
    (dict(stage="qat", clusters=8),
     r"^`clusters` applies to the clustering stages \(cluster, cqat\), not qat$"),
    (dict(stage="qat", stage_epochs=0), r"`stage_epochs` must be an integer >= 1, got 0"),
    (dict(stage="cluster", clusters=1), r"`clusters` must be an integer >= 2, got 1"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        PruneConfig(**kwargs)


@pytest.mark.integration
@pytest.mark.smoke  # the pruning job end to end: in make test-fast too
def test_run_prune_writes_everything_and_reuses(tmp_path):
    out = str(tmp_path / "run")
    lines = []
    metrics = run_prune(PruneConfig(**TINY), out, log=lines.append).metrics
    for name in ("config.json", "metrics.json", "layers.csv", "pruned.keras", "shrunk.keras",
                 "plots/fine_tune.png", "plots/layer_sparsity.png", "baseline/model.keras"):
        assert os.path.exists(os.path.join(out, name)), name
    assert metrics["layer_sparsity"] == {"fc1": 0.5, "fc2": 0.5}
    assert metrics["shrink"]["removed"] == {"fc1": [300, 150], "fc2": [100, 50]}
    assert metrics["shrink"]["max_abs_diff"] <= 1e-4
    assert metrics["shrink"]["accuracy"] == pytest.approx(metrics["accuracy"], abs=1e-6)
    assert metrics["theoretical_speedup"] > 1.5
    assert any(line.startswith("[fine-tune] epoch 2/2") for line in lines)
    header = open(os.path.join(out, "layers.csv")).readline().strip()
    assert header.startswith("layer,type,pruned,target_sparsity,weights,nonzeros,sparsity")
    again = run_prune(PruneConfig(**TINY), out, log=lines.append)  # reused: models from disk
    assert again.metrics == metrics and again.deployed_kind == "shrunk"
    assert again.model().count_params() == metrics["shrink"]["params_after"]
    assert again.model("pruned").count_params() == metrics["params"]
    with pytest.raises(RunDirectoryError, match="differs in: target_sparsity"):
        run_prune(PruneConfig(**dict(TINY, target_sparsity=0.6)), out)
    assert io.read_json(os.path.join(out, "metrics.json")) == metrics


def test_baseline_of_another_dataset_refused(tmp_path):
    from tfprune.keras import keras
    from tfprune.models import build_model

    path = str(tmp_path / "cifar.keras")
    build_model("mlp", (32, 32, 3), 10).save(path)
    with pytest.raises(TfpruneError, match=r"takes \(32, 32, 3\).*needs \(8, 8, 1\)"):
        run_prune(PruneConfig(**dict(TINY, baseline=path)), str(tmp_path / "run"))
    assert keras.models.load_model(path) is not None


@pytest.mark.integration
@pytest.mark.parametrize("method", ["dynamic", "adaptive"])
def test_run_prune_dynamic_methods_write_decisions(tmp_path, method):
    out = str(tmp_path / method)
    config = PruneConfig(**dict(TINY, method=method, schedule="-", target_sparsity=0.0,
                                fine_tune_epochs=4,
                                dynamic=dict(norm_tolerance=0.5, patience=1, every=1,
                                             accuracy_tolerance=0.5, norm_fraction=0.95)))
    metrics = run_prune(config, out, log=lambda _: None).metrics
    assert os.path.exists(os.path.join(out, "decisions.jsonl"))
    assert os.path.exists(os.path.join(out, "plots", "sparsity_over_training.png"))
    assert metrics["pruning_events"] >= 1 and metrics["pruned_sparsity"] > 0
    lines = open(os.path.join(out, "decisions.jsonl")).read().splitlines()
    assert sum('"action": "prune"' in line for line in lines) == metrics["pruning_events"]
    if method == "adaptive":
        assert len(io.read_json(os.path.join(out, "pq_index.json"))) == 4


def test_dynamic_options_only_for_dynamic_methods():
    with pytest.raises(TfpruneError, match="`dynamic` options apply to the methods dynamic, incremental, adaptive, not 'weight'"):
        PruneConfig(method="weight", dynamic={"patience": 3})
    with pytest.raises(TfpruneError, match="PQ index needs 0 < p < q"):
        PruneConfig(method="adaptive", schedule="-", dynamic={"p": 1.0, "q": 0.5})


# The four configuration errors that used to surface only after the baseline had trained.
@pytest.mark.parametrize("kwargs, message", [
    (dict(method="unit", sparsity_m_by_n="2:4", target_sparsity=0.5),
     "`sparsity_m_by_n` applies to weight pruning, not 'unit'"),
    (dict(method="weight", layers=("fc1", "nope")),
     "`layers` names layers that cannot be pruned by weight pruning: nope; prunable layers of 'mlp': fc1, fc2, classifier"),
    (dict(method="weight", schedule="polynomial", end_step=100000),
     r"`end_step` \(100000\) must be at most the fine-tuning steps \(20\)"),
    (dict(method="weight", schedule="polynomial", begin_step=1, end_step=8, frequency=5),
     r"`end_step - begin_step` \(7\) must be a multiple of `frequency` \(5\)"),
    (dict(method="weight", schedule="polynomial", begin_step=500),
     r"`begin_step` \(500\) must be below the fine-tuning steps \(20 = 2 epochs x 10 steps\)"),
    (dict(method="weight", schedule="polynomial", initial_sparsity=0.8, target_sparsity=0.5),
     r"`initial_sparsity` \(0.8\) must not exceed `target_sparsity` \(0.5\)"),
    (dict(method="weight", stage="cluster", clusters=100000),
     r"`clusters` must be fewer than the weights of a layer tfmot can cluster .* got 100000"),
])
def test_late_errors_fail_before_the_baseline_trains(tmp_path, monkeypatch, kwargs, message):
    from tfprune.jobs import prune as prune_job

    monkeypatch.setattr(prune_job, "train_baseline", lambda *a, **k: pytest.fail("trained"))
    out = tmp_path / "run"
    with pytest.raises(TfpruneError, match=message):
        run_prune(PruneConfig(**dict(TINY, **kwargs)), str(out))
    assert not out.exists()


def test_a_sparsity_file_with_unknown_layers_fails_before_the_baseline_trains(tmp_path,
                                                                             monkeypatch):
    from tfprune.jobs import prune as prune_job

    monkeypatch.setattr(prune_job, "train_baseline", lambda *a, **k: pytest.fail("trained"))
    targets = tmp_path / "targets.json"
    targets.write_text('{"fc1": 0.5, "conv9": 0.9, "flatten": 0.3}')
    out = tmp_path / "run"
    with pytest.raises(TfpruneError, match=r"`layer_sparsity` file '.*targets.json' names layers "
                                           r"that model 'mlp' does not have or cannot prune: "
                                           r"conv9, flatten; prunable layers: fc1, fc2, classifier"):
        run_prune(PruneConfig(**dict(TINY, layer_sparsity=str(targets))), str(out))
    assert not out.exists()


@pytest.mark.integration
def test_one_shot_prunes_without_fine_tuning_and_shrinks(tmp_path):
    config = PruneConfig(**dict(TINY, fine_tune_epochs=0))
    assert config.one_shot and config.schedule == "constant"  # pruned to the target at once
    metrics = run_prune(config, str(tmp_path / "run"), log=lambda _: None).metrics
    assert metrics["one_shot"] and metrics["fine_tune_time_s"] < 1.0
    assert metrics["pruned_sparsity"] == pytest.approx(0.5, abs=0.01)
    assert metrics["deployed"]["kind"] == "shrunk" and metrics["shrink"]["params_after"] < \
        metrics["shrink"]["params_before"]
    assert not (tmp_path / "run" / "plots" / "fine_tune.png").exists()


@pytest.mark.integration
@pytest.mark.parametrize("layer_sparsity", ["auto", "global"])
def test_layer_wise_targets_meet_the_global_sparsity(tmp_path, layer_sparsity):
    config = PruneConfig(**dict(TINY, method="weight", target_sparsity=0.8,
                                layer_sparsity=layer_sparsity, sensitivity_samples=64))
    out = tmp_path / "run"
    metrics = run_prune(config, str(out), log=lambda _: None).metrics
    targets = io.read_json(str(out / "layer_sparsity.json"))["layer_sparsity"]
    assert set(targets) == {"fc1", "fc2"} and metrics["layer_targets"] == targets
    assert targets["fc1"] != pytest.approx(targets["fc2"], abs=0.01)  # not uniform
    weights = {"fc1": 64 * 300, "fc2": 300 * 100}
    overall = sum(targets[n] * w for n, w in weights.items()) / sum(weights.values())
    assert overall == pytest.approx(0.8, abs=1e-3)
    for name, target in targets.items():  # each layer reached its own target
        assert metrics["layer_sparsity"][name] == pytest.approx(target, abs=0.01)
    assert (out / "sensitivity.csv").exists() == (layer_sparsity == "auto")


def test_polynomial_options_refused_for_the_constant_schedule():
    with pytest.raises(TfpruneError, match="`initial_sparsity` applies to the polynomial schedule, not 'constant'"):
        PruneConfig(schedule="constant", initial_sparsity=0.95, target_sparsity=0.9)
    assert PruneConfig(layers="fc1, fc2").layers == ("fc1", "fc2")  # a comma-separated string


def test_schedule_options_refused_for_methods_without_a_schedule():
    with pytest.raises(TfpruneError, match="`frequency` applies to methods with a schedule"):
        PruneConfig(method="dynamic", frequency=5)
    config = PruneConfig(method="adaptive", schedule="constant", target_sparsity=0.7)
    assert config.schedule is None and config.target_sparsity is None  # it takes neither


def test_a_damaged_baseline_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "model.keras"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(TfpruneError, match=r"cannot load Keras model .*model.keras.*\(`baseline`\)"):
        run_prune(PruneConfig(**dict(TINY, baseline=str(bad))), str(tmp_path / "run"))
    assert not (tmp_path / "run").exists()


@pytest.mark.integration
def test_channel_method_prunes_groups_shrinks_and_trains_from_scratch(tmp_path):
    config = PruneConfig(**dict(TINY, model="cnn", method="channel", schedule="constant",
                                target_sparsity=0.5, fine_tune_epochs=1, from_scratch=True))
    run = run_prune(config, str(tmp_path / "run"), log=lambda _: None)
    metrics = run.metrics
    assert metrics["pruned_sparsity"] == 0.5 and metrics["channel"]["criterion"] == "l2"
    assert metrics["shrink"]["max_abs_diff"] <= 1e-5
    assert metrics["shrink"]["removed"] == {"conv1": [32, 16], "conv2": [64, 32], "fc1": [128, 64]}
    assert metrics["skipped_layers"]["classifier"].startswith("consumed by Activation 'softmax'")
    scratch = metrics["from_scratch"]
    assert scratch["epochs"] == 3 and scratch["params"] == metrics["shrink"]["params_after"]
    assert run.deployed_kind == "shrunk" and run.model().count_params() == scratch["params"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(method="unit", criterion="taylor"), "`criterion` applies to method 'channel', not 'unit'"),
    (dict(method="channel", criterion="random"), "unknown channel criterion 'random'"),
    (dict(method="channel", selection="best"),
     "`selection` must be one of uniform, global, latency, got 'best'"),
    (dict(method="channel", layers=("fc1",)),
     r"`sparsity_m_by_n`, `prune_first_conv` and `prune_classifier` do not apply to channel pruning \(method 'channel'\)"),
    (dict(method="incremental", schedule="-", prune_first_conv=True),
     r"do not apply to channel pruning \(method 'incremental'\)"),
    (dict(method="dynamic", schedule="-", target_sparsity=0.0, layers=("fc1",)),
     r"do not apply to channel pruning \(method 'dynamic'\)"),
    (dict(method="weight", from_scratch=True), "`from_scratch` trains the thinner architecture"),
    (dict(method="adaptive", schedule="-", target_sparsity=0.0, from_scratch=True),
     "'adaptive' at 'weight' granularity keeps the architecture"),
    (dict(method="channel", round_to=0), r"`round_to` must be an integer >= 1, got 0"),
])
def test_channel_options_are_checked(kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        PruneConfig(**dict(TINY, **kwargs))


@pytest.mark.integration
def test_weight_pruning_lists_only_layers_it_really_prunes(tmp_path):
    """DepthwiseConv2D kernels are not pruned by tfmot: they are left out with the reason, and
    every layer listed as pruned reaches the target."""
    from tfprune.keras import keras
    from tfprune.models import mobilenetv2

    # The zoo's MobileNetV2 at width 0.35: the same layers (names, types) as at 1.0, a fraction
    # of the arithmetic.
    keras.utils.set_random_seed(0)
    path = str(tmp_path / "mnv2.keras")
    mobilenetv2((8, 8, 1), 10, alpha=0.35).save(path)
    config = PruneConfig(**dict(TINY, model="mobilenetv2", method="weight", schedule="constant",
                                target_sparsity=0.5, fine_tune_epochs=1, baseline=path))
    metrics = run_prune(config, str(tmp_path / "run"), log=lambda _: None).metrics
    assert metrics["skipped_layers"]["expanded_conv_depthwise"] == \
        "DepthwiseConv2D: tfmot prunes none of its weights"
    assert metrics["layer_sparsity"] and all(
        abs(s - 0.5) <= 0.01 for s in metrics["layer_sparsity"].values()), metrics["layer_sparsity"]
    del keras


@pytest.mark.integration
@pytest.mark.parametrize("method", ["weight", "unit"])
def test_mixed_precision_fine_tunes_in_float16_and_saves_float32(tmp_path, method):
    import numpy as np

    from tfprune import precision
    from tfprune.data import load_data
    from tfprune.tflite import evaluate, export

    out = str(tmp_path / "run")
    config = PruneConfig(**dict(TINY, model="cnn", method=method, mixed_precision=True))
    assert config.baseline_config().mixed_precision  # the baseline it trains, too
    run = run_prune(config, out, log=lambda _: None)
    assert precision.global_policy() == "float32"
    metrics = run.metrics
    assert metrics["precision"] == {"policy": "mixed_float16", "loss_scaling": True}
    baseline = io.read_json(os.path.join(out, "baseline", "metrics.json"))
    assert baseline["precision"] == {"policy": "mixed_float16", "loss_scaling": True}
    assert metrics["pruned_sparsity"] == pytest.approx(0.5, abs=0.02)
    assert metrics["accuracy"] > 0.5
    x, y = load_data("digits", batch_size=128).numpy("test")
    for kind in ("pruned", "shrunk") if method == "unit" else ("pruned",):
        model = PruneRun(metrics, out).model(kind)  # from disk
        assert precision.is_float32(model) and model.dtype_policy.name == "float32", kind
        loaded = evaluate.load(export.to_tflite(model, "float32"))
        assert not any(d["dtype"] == np.float16
                       for d in loaded.interpreter.get_tensor_details()), kind
        tflite_accuracy = evaluate.accuracy(loaded, x, y)[0]
        keras_accuracy = float(np.mean(np.argmax(model.predict(x, verbose=0), 1) == y))
        assert tflite_accuracy == pytest.approx(keras_accuracy, abs=0.01), kind


def test_the_job_asks_the_method_object_not_which_method_it_is():
    """_run_prune and preflight test nothing about the method: every such question is the
    method object's (pruning/method_objects.py)."""
    import ast
    import inspect

    from tfprune.jobs import prune as job

    asked = {"method", "method_spec", "granularity", "decides", "takes_schedule", "pruner",
             "masks", "channel_masks", "channel_pruner", "structured"}
    for function in (job._run_prune, job.preflight):
        tree = ast.parse(inspect.getsource(function))
        for node in ast.walk(tree):
            if isinstance(node, (ast.If, ast.IfExp, ast.While)):
                names = {n.id for n in ast.walk(node.test) if isinstance(n, ast.Name)} | \
                    {n.attr for n in ast.walk(node.test) if isinstance(n, ast.Attribute)}
                assert not names & asked, (function.__name__, ast.unparse(node.test))
    # the detector sees such a branch
    tree = ast.parse("if result.pruner is None:\n    pass\n")
    assert {n.attr for n in ast.walk(tree.body[0].test) if isinstance(n, ast.Attribute)} & asked


@pytest.mark.integration
def test_a_stage_after_pruning_writes_its_int8_tflite_with_the_zeros_kept(tmp_path):
    out = str(tmp_path / "run")
    config = PruneConfig(**dict(TINY, method="weight", schedule="constant", target_sparsity=0.8,
                                fine_tune_epochs=1, stage="qat", stage_epochs=1))
    metrics = run_prune(config, out, log=lambda _: None).metrics
    stage = metrics["stage"]
    assert stage["stage"] == "pqat" and stage["quantized"] and stage["tflite_file"] == \
        "stage_int8.tflite"
    assert os.path.isfile(os.path.join(out, "stage_int8.tflite"))
    tflite = stage["tflite"]
    assert 0.5 < tflite["tflite_accuracy"] <= 1 and tflite["size_bytes"] > tflite["gzip_bytes"]
    pruned = sum(c["nonzero"] for c in stage["counts_before"].values())
    assert tflite["kernel_nonzeros"] <= pruned  # no pruned weight came back
