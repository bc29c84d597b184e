import json
import os

import pytest

from tfprune import io, summaries
from tfprune.errors import RunDirectoryError, TfpruneError, UnknownNameError
from tfprune.jobs import sweep as sweep_module
from tfprune.jobs.sweep import SweepConfig, collect_rows, estimate_left, run_sweep, variant_dir
from tfprune.results.rows import VariantKey

TINY = dict(model="mlp", methods=("weight", "unit"), schedules=("constant",), sparsities=(0.5,),
            quantizations=("float32", "int8"), seeds=(0,), baseline_epochs=2,
            fine_tune_epochs=1, batch_size=128, latency_runs=5, representative_count=20)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(methods=()), TfpruneError, "`methods` must not be empty; choose from adaptive, channel, dynamic, incremental, unit, weight"),
    (dict(schedules=()), TfpruneError, "`schedules` must not be empty"),
    (dict(sparsities=()), TfpruneError, r"`sparsities` must not be empty; give values in \[0, 1\)"),
    (dict(sparsities=(0.5, 1.2)), TfpruneError, r"`sparsities` must be in \[0, 1\), got 1.2"),
    (dict(quantizations=()), TfpruneError, "`quantizations` must not be empty; choose from"),
    (dict(seeds=()), TfpruneError, "`seeds` must not be empty"),
    (dict(seeds=(-1,)), TfpruneError, "`seeds` must be an integer >= 0, got -1"),
    (dict(methods=("magic",)), UnknownNameError, "unknown pruning method 'magic'"),
    (dict(quantizations=("int2",)), UnknownNameError, "unknown quantization 'int2'"),
])
def test_config_validation(kwargs, error, message):
    with pytest.raises(error, match=message):
        SweepConfig(**kwargs)


def test_variants_grid():
    config = SweepConfig(methods=("weight",), schedules=("constant", "polynomial"),
                         sparsities=(0.9, 0.5, 0.5), seeds=(0, 1))
    assert config.sparsities == (0.5, 0.9)
    variants = config.variants()
    assert variants[:2] == [VariantKey(0, "dense"), VariantKey(1, "dense")]
    assert len(variants) == 2 + 2 * 2 * 2


def test_variants_of_dynamic_methods():
    config = SweepConfig(methods=("weight", "dynamic", "incremental", "adaptive"),
                         schedules=("constant",), sparsities=(0.0, 0.5), seeds=(0,))
    assert config.variants() == [
        VariantKey(0, "dense"), VariantKey(0, "weight", "constant", 0.0),
        VariantKey(0, "weight", "constant", 0.5), VariantKey(0, "dynamic"),
        VariantKey(0, "incremental", None, 0.5), VariantKey(0, "adaptive")]
    assert [key.slug() for key in config.variants()] == [
        "dense", "weight-constant-0", "weight-constant-0.5", "dynamic", "incremental-0.5",
        "adaptive"]


def test_variants_per_layer_sparsity_and_one_shot():
    config = SweepConfig(methods=("weight", "channel", "dynamic"), schedules=("constant",),
                         sparsities=(0.5,), layer_sparsity=("uniform", "auto", "global"))
    assert [key.slug() for key in config.variants()] == [
        "dense", "weight-constant-0.5", "weight-constant-0.5-auto", "weight-constant-0.5-global",
        "channel-constant-0.5", "dynamic"]  # per-layer targets: weight and unit only
    one_shot = SweepConfig(methods=("weight", "unit"), schedules=("constant", "polynomial"),
                           sparsities=(0.5,), fine_tune_epochs=0)
    assert [key.slug() for key in one_shot.variants()] == [
        "dense", "weight-constant-0.5", "unit-constant-0.5"]  # no schedule to tell apart
    with pytest.raises(TfpruneError, match=r"one-shot pruning \(`fine_tune_epochs=0`\) applies "
                                           r"to the methods weight, unit, channel, not 'dynamic'"):
        SweepConfig(methods=("dynamic",), fine_tune_epochs=0)
    hybrid = SweepConfig(methods=("weight",), quantizations=("float32",), hybrid=True)
    assert hybrid.layer_sparsity == ("uniform", "auto")
    assert hybrid.quantizations == ("float32", "dynamic", "int4", "mixed")
    with pytest.raises(TfpruneError, match=r"`layer_sparsity` must be one of uniform, auto, "
                                           r"global, got 'by-hand'"):
        SweepConfig(layer_sparsity=("by-hand",))
    with pytest.raises(TfpruneError, match=r"`layer_sparsity` applies to the methods weight, "
                                           r"unit; none of dynamic is one"):
        SweepConfig(methods=("dynamic",), layer_sparsity=("auto",))
    with pytest.raises(TfpruneError, match=r"`layer_sparsity` \(which `hybrid` sets to uniform, "
                                           r"auto\) applies to the methods weight, unit; none of "
                                           r"channel is one"):
        SweepConfig(methods=("channel",), hybrid=True)


def test_a_mixed_budget_below_all_int4_fails_before_any_baseline_trains(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep_module, "train_baseline", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(TfpruneError, match=r"`mixed_budget_kb` must be at least the all-int4 model.s size, .* got 1.0 KB"):
        run_sweep(SweepConfig(**dict(TINY, quantizations=("mixed",), mixed_budget_kb=1)),
                  str(tmp_path / "sweep"))
    assert not (tmp_path / "sweep").exists()
    with pytest.raises(TfpruneError, match=r"`mixed_budget_kb` and `mixed_int4_fraction`"):
        SweepConfig(quantizations=("mixed",), mixed_budget_kb=10, mixed_int4_fraction=0.5)
    with pytest.raises(TfpruneError, match=r"`mixed_int4_fraction` must come with the 'mixed' "
                                           r"quantization, got quantizations float32, int8"):
        SweepConfig(**dict(TINY, mixed_int4_fraction=0.3))


@pytest.mark.integration
def test_tiny_sweep_writes_report_and_resumes(tmp_path, monkeypatch):
    out = str(tmp_path / "sweep")
    config = SweepConfig(**TINY)
    lines = []
    rows = run_sweep(config, out, log=lines.append)
    assert len(rows) == 3 * 2  # (dense, weight, unit) x 2 quantizations
    for name in ("config.json", "results.csv", "results.json", "report.md",
                 "plots/accuracy_vs_sparsity.png", "plots/accuracy_vs_size.png",
                 "plots/accuracy_vs_latency.png"):
        assert os.path.exists(os.path.join(out, name)), name
    assert any(line.startswith("[3/3] seed 0 unit constant 0.5") and "left" in line
               for line in lines)
    unit = [r for r in rows if r["method"] == "unit"]
    assert unit[0]["deployed"] == "shrunk" and unit[0]["params"] < rows[0]["params"]
    assert os.path.exists(os.path.join(out, unit[0]["tflite_file"]))  # relative: relocatable
    # The report's numbers are the variant files' numbers.
    results = json.loads(open(os.path.join(out, "results.json")).read())
    assert results["rows"] == collect_rows(out, config) and results["variants_done"] == 3
    report = open(os.path.join(out, "report.md")).read()
    for entry in results["aggregated"]:
        assert f"| {100 * entry['tflite_accuracy']:.2f} |" in report
    assert "Status: complete" in report and "![accuracy_vs_size.png]" in report

    # Interrupt: drop one finished variant; a rerun redoes only that one.
    os.remove(os.path.join(variant_dir(out, VariantKey.of(0, "unit", "constant", 0.5)),
                           "variant.json"))
    calls = []
    original = sweep_module._prepare_variant
    monkeypatch.setattr(sweep_module, "_prepare_variant",
                        lambda *a, **k: calls.append(a[2].method) or original(*a, **k))
    lines.clear()
    again = run_sweep(config, out, log=lines.append, visualize=True)
    assert calls == ["unit"]
    assert any("resuming: 2 of 3 variants already done" in line for line in lines)
    assert len(again) == len(rows)

    # --visualize: the visualize job on the sweep, its table and pictures in report.md.
    drift = io.read_json(os.path.join(out, "visualize", "drift.json"))
    assert [r["model"] for r in drift["rows"]] == ["dense", "unit-constant-0.5",
                                                    "weight-constant-0.5"]
    assert drift["kinds"] == ["saliency"]  # an mlp: no convolution for Grad-CAM
    report = open(os.path.join(out, "report.md")).read()
    assert "## What the models look at" in report and "Made before" not in report
    for r in drift["rows"]:
        assert f"| {r['model']} | {100 * r['params_removed']:.1f} |" in report
    for image in ("saliency.png", "class_models.png", "drift_vs_sparsity.png"):
        assert f"](visualize/plots/{image})" in report
        assert os.path.getsize(os.path.join(out, "visualize", "plots", image)) > 5000

    # TensorBoard: `tensorboard --logdir` on the sweep finds every run, read back here.
    events = summaries.read_events(out)
    runs = {run: set(tags) for run, tags in events.items()}
    assert {"baselines/seed0/tensorboard/train", "baselines/seed0/tensorboard/validation",
            "visualize/tensorboard/images"} <= set(runs)
    for variant in ("weight-constant-0.5", "unit-constant-0.5"):
        base = f"variants/seed0/{variant}/tensorboard"
        assert {"epoch_loss", "epoch_accuracy"} <= runs[f"{base}/train"]
        assert {"epoch_loss", "epoch_accuracy"} <= runs[f"{base}/validation"]
        assert {"sparsity/fc1/kernel", "sparsity/all_kernels"} <= runs[f"{base}/sparsity"]
    assert {"saliency", "class_models", "drift_vs_sparsity"} <= runs[
        "visualize/tensorboard/images"]
    sparsity = events["variants/seed0/weight-constant-0.5/tensorboard/sparsity"]
    assert [step for step, _ in sparsity["sparsity/fc1/kernel"]] == [1]  # one per epoch
    assert sparsity["sparsity/fc1/kernel"][-1][1] == pytest.approx(0.5, abs=0.01)

    with pytest.raises(RunDirectoryError, match="differs in: sparsities"):
        run_sweep(SweepConfig(**dict(TINY, sparsities=(0.6,))), out)
    assert io.read_json(os.path.join(out, "config.json"))["sparsities"] == [0.5]


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=("dynamic",), dynamic={"patience": 0}), r"`patience` must be an integer >= 1, got 0"),
    (dict(methods=("dynamic",), dynamic={"patiense": 2}), "unknown dynamic option.*patiense"),
    (dict(methods=("weight",), dynamic={"patience": 2}),
     "`dynamic` options apply to the methods dynamic, incremental, adaptive, not 'weight'"),
    (dict(methods=("incremental",), sparsities=(0.0,)), None),
])
def test_dynamic_options_are_checked_with_the_grid(kwargs, message):
    if message is None:  # incremental needs a target above 0: no variant, no error
        assert [k.method for k in SweepConfig(**kwargs).variants()] == ["dense"]
        return
    with pytest.raises(TfpruneError, match=message):
        SweepConfig(**kwargs)


@pytest.mark.integration
def test_dynamic_options_reach_the_pruner(tmp_path):
    config = SweepConfig(**dict(TINY, methods=("dynamic",), quantizations=("float32",),
                                dynamic={"patience": 1, "norm_tolerance": 0.5,
                                         "accuracy_tolerance": 0.5, "norm_fraction": 0.95},
                                fine_tune_epochs=3))
    rows = run_sweep(config, str(tmp_path / "sweep"), log=lambda _: None)
    (dynamic,) = [r for r in rows if r["method"] == "dynamic"]
    assert dynamic["target_sparsity"] is None and dynamic["schedule"] == "-"
    assert dynamic["pruning_events"] >= 1 and set(dynamic["chosen_sparsity"]) == {"fc1", "fc2"}
    prune_config = io.read_json(tmp_path / "sweep" / "variants" / "seed0" / "dynamic" / "config.json")
    assert prune_config["dynamic"]["patience"] == 1
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "## Decisions of the methods that prune by themselves" in report
    assert "seed 0 dynamic (chose its sparsity):" in report
    assert "scratch acc %" not in report  # an opt-in column, shown only when measured
    assert "dynamic pruning holds accuracy" not in report or "achieved sparsity" in report
    csv_header = (tmp_path / "sweep" / "results.csv").read_text().splitlines()[0]
    assert "pruning_events,rollbacks,chosen_sparsity" in csv_header
    # The pruner's decisions in TensorBoard: a table per epoch, each layer's sparsity after.
    events = summaries.read_events(str(tmp_path / "sweep" / "variants" / "seed0" / "dynamic" /
                                       "tensorboard" / "decisions"))["."]
    decisions = [json.loads(line) for line in open(tmp_path / "sweep" / "variants" / "seed0" /
                                                   "dynamic" / "decisions.jsonl")]
    assert [step for step, _ in events["decisions"]] == sorted({d["epoch"] for d in decisions})
    assert b"| fc1 | " in events["decisions"][-1][1]
    last_fc1 = [d for d in decisions if d["layer"] == "fc1"][-1]
    assert events["decisions/fc1/sparsity_after"][-1] == (
        last_fc1["epoch"], pytest.approx(last_fc1["sparsity_after"]))


def test_preflight_runs_before_any_baseline_trains(tmp_path, monkeypatch):
    from tfprune.errors import TfpruneError as Bad

    checked = []

    def failing_preflight(config, data, model=None):
        checked.append(config.method)
        raise Bad("`layers` names layers that cannot be pruned")

    monkeypatch.setattr(sweep_module, "preflight", failing_preflight)
    monkeypatch.setattr(sweep_module, "train_baseline", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(Bad, match="cannot be pruned"):
        run_sweep(SweepConfig(**TINY), str(tmp_path / "sweep"))
    assert checked == ["weight"] and not (tmp_path / "sweep").exists()


def test_time_left_comes_from_variants_of_the_same_kind():
    keys = [VariantKey(0, "weight", "constant", 0.5), VariantKey(0, "unit", "constant", 0.5),
            VariantKey(0, "weight", "constant", 0.9)]
    assert estimate_left({"weight": [10.0, 20.0]}, keys) == (30.0, ["unit"])
    assert estimate_left({"weight": [10.0], "unit": [100.0]}, keys) == (120.0, [])
    assert sweep_module._left_text({}, keys).startswith(
        "time left unknown until one variant of each of these has finished: weight, unit")


def test_latency_is_merged_with_the_ratio_to_dense():
    base = dict(seed=0, schedule="-", target_sparsity=None, quantization="int8",
                latency_ms_median=None, latency_ms_p90=None, num_threads=1, delegate="x")
    rows = [dict(base, method="dense", tflite_file="d.tflite"),
            dict(base, method="weight", tflite_file="w.tflite"),
            dict(base, method="unit", tflite_file="u.tflite")]
    timings = {"d.tflite": dict(latency_ms_median=0.02, latency_ms_p90=0.03, num_threads=1, delegate="x"),
               "w.tflite": dict(latency_ms_median=0.01, latency_ms_p90=0.02, num_threads=1, delegate="x")}
    merged = sweep_module.merge_latency(rows, timings)
    assert [r["latency_vs_dense"] for r in merged] == [1.0, 0.5, None]
    assert merged[2]["latency_ms_median"] is None


@pytest.mark.integration
def test_from_scratch_is_reported_beside_structured_variants_only(tmp_path):
    with pytest.raises(TfpruneError, match="`from_scratch` applies to structured methods"):
        SweepConfig(**dict(TINY, methods=("weight",), from_scratch=True))
    config = SweepConfig(**dict(TINY, quantizations=("float32",), from_scratch=True))
    assert [config.prune_config(k).from_scratch for k in config.variants()[1:]] == [False, True]
    rows = run_sweep(config, str(tmp_path / "sweep"), log=lambda _: None)
    by_method = {r["method"]: r for r in rows}
    assert by_method["weight"]["scratch_accuracy"] is None
    assert by_method["dense"]["scratch_accuracy"] is None
    scratch = io.read_json(os.path.join(variant_dir(str(tmp_path / "sweep"), VariantKey(
        0, "unit", "constant", 0.5)), "metrics.json"))["from_scratch"]
    assert by_method["unit"]["scratch_accuracy"] == scratch["accuracy"]
    assert scratch["epochs"] == config.baseline_epochs + config.fine_tune_epochs
    report = (tmp_path / "sweep" / "report.md").read_text()
    assert "scratch acc %" in report


@pytest.mark.integration
def test_hybrid_recipe_compares_layer_wise_mixed_with_uniform_int8_and_int4(tmp_path):
    out = str(tmp_path / "sweep")
    config = SweepConfig(**dict(TINY, methods=("weight",), quantizations=("float32",),
                                sparsities=(0.8,), hybrid=True))
    rows = run_sweep(config, out, log=lambda _: None)
    by = {(r["method"], r["layer_sparsity"], r["quantization"]): r for r in rows}
    assert len(rows) == 3 * 4  # dense, uniform, auto x float32, dynamic, int4, mixed
    hybrid = by[("weight", "auto", "mixed")]
    assert hybrid["int4_layers"] and 0 < hybrid["int4_fraction"] < 1
    assert by[("weight", "auto", "int4")]["size_bytes"] < hybrid["size_bytes"] < \
        by[("weight", "auto", "dynamic")]["size_bytes"]
    assert os.path.exists(os.path.join(variant_dir(out, VariantKey.of(
        0, "weight", "constant", 0.8, "auto")), "layer_sparsity.json"))
    report = open(os.path.join(out, "report.md")).read()
    for section in ("## Layer-wise vs uniform sparsity", "## Mixed int4/int8 quantization",
                    "## Hybrid recipe: layer-wise pruning + mixed int4/int8"):
        assert section in report, section
    assert f"int4 layers ({hybrid['int4_fraction']:.0%} of the weights): " \
           f"{', '.join(hybrid['int4_layers'])}" in report


def test_stages_are_variants_named_for_what_they_preserve():
    config = SweepConfig(**dict(TINY, stages=("qat", "cluster")))
    slugs = [k.slug() for k in config.variants()]
    assert slugs == ["dense", "weight-constant-0.5", "unit-constant-0.5", "dense+qat",
                     "dense+cluster", "weight-constant-0.5+pqat",
                     "weight-constant-0.5+sparse-cluster", "unit-constant-0.5+qat",
                     "unit-constant-0.5+cluster"]
    assert [config.stage_of(k) for k in config.variants()[3:5]] == ["qat", "cluster"]
    key = config.variants()[5]
    assert VariantKey.from_identity(key.identity()) == key
    assert key.title() == "seed 0 weight constant 0.5 + pqat"


@pytest.mark.parametrize("kwargs, message", [
    (dict(stages=("pqat",)), "unknown compression stage 'pqat'; registered: cluster, cqat, qat"),
    (dict(stages=("cluster",), clusters=1), "`clusters` must be an integer >= 2, got 1"),
    (dict(stages=("qat",), stage_epochs=0), "`stage_epochs` must be an integer >= 1, got 0"),
])
def test_bad_stage_options_are_one_line_before_training(kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        SweepConfig(**dict(TINY, **kwargs))


@pytest.mark.integration
def test_sweep_runs_qat_and_clustering_beside_post_training_quantization(tmp_path):
    out = str(tmp_path / "sweep")
    config = SweepConfig(**dict(TINY, methods=("weight",), sparsities=(0.8,),
                                stages=("qat", "cluster"), stage_epochs=1, clusters=8))
    rows = run_sweep(config, out, log=lambda _: None)
    by = {(r["method"], r["stage"], r["quantization"]): r for r in rows}
    assert len(rows) == len(by) and set(by) == {
        ("dense", None, "float32"), ("dense", None, "int8"), ("weight", None, "float32"),
        ("weight", None, "int8"), ("dense", "qat", "int8"), ("dense", "cluster", "float32"),
        ("dense", "cluster", "int8"), ("weight", "pqat", "int8"),
        ("weight", "sparse-cluster", "float32"), ("weight", "sparse-cluster", "int8")}
    pqat = by[("weight", "pqat", "int8")]
    assert pqat["kernel_nonzeros"] <= by[("weight", None, "float32")]["kernel_nonzeros"] < \
        by[("dense", "qat", "int8")]["kernel_nonzeros"]  # the zeros kept in the int8 file
    assert by[("weight", "sparse-cluster", "float32")]["max_unique"] <= 8
    assert by[("dense", "cluster", "int8")]["gzip_bytes"] < by[("dense", None, "int8")][
        "gzip_bytes"]
    stage = io.read_json(os.path.join(variant_dir(out, VariantKey.of(
        0, "weight", "constant", 0.8, stage="pqat")), "stage.json"))
    assert stage["stage"] == "pqat" and stage["quantized"]
    report = open(os.path.join(out, "report.md")).read()
    assert "## Compression stages: QAT, clustering and PTQ of the same model" in report
    assert "| pqat int8 |" in report and "| PTQ int8 |" in report
    stamp = os.path.getmtime(os.path.join(variant_dir(out, VariantKey.of(
        0, "weight", "constant", 0.8, stage="pqat")), "stage.json"))
    lines = []
    again = run_sweep(config, out, log=lines.append)  # everything done: nothing redone
    assert len(again) == len(rows) and "resuming: 6 of 6 variants already done" in lines
    assert os.path.getmtime(os.path.join(variant_dir(out, VariantKey.of(
        0, "weight", "constant", 0.8, stage="pqat")), "stage.json")) == stamp
