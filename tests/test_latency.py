"""The latency cost model (tflite/cost.py, tflite/latency.py) and the latency-aware channel
selection (pruning/budget.py, channels.select mode "latency", --target_latency)."""

import numpy as np
import pytest

from tfprune.errors import TfpruneError
from tfprune.pruning import budget, options
from tfprune.tflite import cost


# -- pure maths ---------------------------------------------------------------------------------

def test_detect_step_finds_the_multiple_the_kernel_runs_fast_on():
    staircase = {c: 1.0 + cost.round_up(c, 8) for c in range(60, 100)}
    assert cost.detect_step(staircase) == 8
    # A depthwise kernel slow off multiples of 8 (33 channels slower than 40): step 8.
    penalty = {c: c * (1.0 if c % 8 == 0 else 1.8) for c in range(32, 98)}
    assert cost.detect_step(penalty) == 8
    linear = {c: float(c) for c in range(60, 100)}
    assert cost.detect_step(linear) == 1


def test_fit_recovers_a_curve_and_drops_the_constant_it_cannot_pin():
    true = (0.05, 0.7, 0.25)
    points = [(w, e) for w, e in [(1, 1), (0.25, 0.5), (0.5, 0.7), (0.06, 0.25)]]
    samples = [(w, e, cost.evaluate(true, w, e)) for w, e in points]
    fitted = cost.fit(samples)
    for w, e, r in samples:
        assert cost.evaluate(fitted, w, e) == pytest.approx(r, rel=1e-6)
    two = cost.fit(samples[:2])
    assert two[0] == 0.0


def _kernel(name, kind="conv_k9", family="conv", cin=16, cout=16):
    return cost.Kernel(name, (name,), family, kind, cin, cout, {"hw_in": 64, "hw_out": 64,
                                                                  "k": 9})


def test_costs_are_measured_at_full_width_and_on_the_curve_elsewhere():
    k = _kernel("a")
    costs = cost.Costs([k], {"conv_k9": (0.0, 1.0, 0.0)}, {"a": 2e-4}, {"gemm": 8},
                       exact={("a", 8, 16): 1.5e-4})
    assert costs.kernel_seconds(k, 16, 16) == 2e-4
    assert costs.kernel_seconds(k, 8, 16) == 1.5e-4          # timed there: as timed
    assert costs.kernel_seconds(k, 16, 8) == pytest.approx(1e-4)  # work halves
    assert costs.kernel_seconds(k, 16, 9) == pytest.approx(2e-4)  # 9 rounds up to 16
    assert costs.predict().seconds == pytest.approx(2e-4)
    assert costs.predict({"a": (16, 8)}).unmodelled == []



def test_memory_curve_is_monotone_and_interpolated_in_log_bytes():
    curve = cost.monotone_curve([(4.0, 2e-11), (1.0, 1e-11), (2.0, 0.5e-11), (8.0, 4e-11)])
    assert [b for b, _ in curve] == [1.0, 2.0, 4.0, 8.0]
    assert [r for _, r in curve] == [1e-11, 1e-11, 2e-11, 4e-11]  # the dip at 2 is noise
    assert cost.stream_rate(curve, 0.5) == 1e-11                  # below: the first rate
    assert cost.stream_rate(curve, 64.0) == 4e-11                 # beyond: bandwidth
    assert cost.stream_rate(curve, 2 ** 2.5) == pytest.approx(3e-11)  # halfway in log(bytes)
    assert cost.stream_rate([], 1e9) == 0.0


def test_weights_of_a_kernel_scale_with_its_channels():
    conv = cost.Kernel("c", ("c",), "conv", "conv_k9", 16, 32, {"k": 9}, params=9 * 16 * 32 + 32)
    assert conv.weights(16, 32) == conv.params
    assert conv.weights(8, 16) == 9 * 8 * 16 + 16
    dw = cost.Kernel("d", ("d",), "depthwise", "depthwise_k9", 32, 32,
                     {"k": 9, "multiplier": 1}, params=320)
    assert dw.weights(16, 16) == pytest.approx(160)
    assert cost.Kernel("p", ("p",), "pool", "pool_k4", 8, 8, {"k": 4}).weights(4, 4) == 0


def test_a_kernel_in_a_model_takes_at_least_its_weights_streaming_time():
    # 2 MB of weights: alone 100 us (cached); in a model whose weights stream at 1e-10 s/byte
    # (10 GB/s) it takes 200 us; at 2e-11 s/byte its own 100 us are the longer.
    k = cost.Kernel("a", ("a",), "dense", "dense_k1", 1000, 500, {"k": 1}, params=500_500)
    costs = cost.Costs([k], {}, {"a": 1e-4}, {"gemm": 1},
                       memory=[(1e5, 2e-11), (1e7, 1e-10)], bytes_per_weight=4)
    assert costs.weight_bytes(k, 1000, 500) == 2_002_000
    assert costs.kernel_seconds(k, 1000, 500) == 1e-4                       # alone
    assert costs.kernel_seconds(k, 1000, 500, 1e-10) == pytest.approx(2.002e-4)
    assert costs.kernel_seconds(k, 1000, 500, 2e-11) == 1e-4
    assert costs.predict(alone=True).seconds == 1e-4
    assert costs.predict().seconds == pytest.approx(
        max(1e-4, 2_002_000 * cost.stream_rate(costs.memory, 2_002_000)))


class FakeCost:
    """Two independent groups: ``a`` (64 wide) saves 2 us per channel, ``b`` 1 us."""

    def __init__(self, per_channel):
        self.per_channel = per_channel
        self.widths = type("W", (), {"touching": {g: {g} for g in per_channel}})()

    def kernel_seconds(self, names, counts, at=None):
        return sum(self.per_channel[g] * counts[g] for g in names)

    def seconds(self, counts=None):
        counts = counts or {}
        return 1e-5 + sum(p * counts.get(g, 64) for g, p in self.per_channel.items())


def test_latency_counts_meet_the_target_at_the_least_importance_per_second():
    fake = FakeCost({"a": 2e-6, "b": 1e-6})
    widths = {"a": 64, "b": 64}
    scores = {"a": np.ones(64), "b": np.ones(64)}  # equal importance: a saves twice as much
    target = 0.8 * fake.seconds()
    counts = budget.latency_counts(widths, scores, fake, target, step=8)
    assert fake.seconds(counts) <= target
    assert counts["a"] < counts["b"] == 64
    assert all(c % 8 == 0 for c in counts.values())


def test_the_last_move_is_the_one_that_reaches_the_target_losing_least():
    """``a`` (64 wide, steps of 8) saves the most per importance lost, but one of its steps
    overshoots a budget that one 3-channel step of ``b`` (12 wide) meets."""
    fake = FakeCost({"a": 2e-6, "b": 1e-6})
    widths = {"a": 64, "b": 12}
    fake.seconds = lambda counts=None: 1e-5 + sum(
        p * (counts or {}).get(g, widths[g]) for g, p in fake.per_channel.items())
    scores = {"a": np.ones(64), "b": np.ones(12)}
    target = fake.seconds() - 3e-6
    assert budget.latency_counts(widths, scores, fake, target, step=8) == {"a": 64, "b": 9}
    # Far from the target the best ratio still leads: a goes first.
    counts = budget.latency_counts(widths, scores, fake, fake.seconds() - 40e-6, step=8)
    assert counts["a"] <= 48 and fake.seconds(counts) <= fake.seconds() - 40e-6


def test_latency_counts_refuse_a_budget_below_the_smallest_model():
    fake = FakeCost({"a": 2e-6, "b": 1e-6})
    with pytest.raises(TfpruneError, match="below what the smallest allowed model"):
        budget.latency_counts({"a": 64, "b": 64}, {"a": np.ones(64), "b": np.ones(64)}, fake,
                              0.05 * fake.seconds(), max_per_group=0.5, step=8)


def test_latency_budgets_read_in_the_unit_they_are_in():
    assert budget.format_time(31.4e-6) == "31.4 us"
    assert budget.format_time(2.3456e-3) == "2.346 ms"
    fake = FakeCost({"a": 2e-6, "b": 1e-6})
    with pytest.raises(TfpruneError, match=r"budget 10\.1 us is below .* \(106\.0 us predicted"):
        budget.latency_counts({"a": 64, "b": 64}, {"a": np.ones(64), "b": np.ones(64)}, fake,
                              0.05 * fake.seconds(), max_per_group=0.5, step=8)


def test_granularity_and_lowest_count():
    assert budget.granularity(64, 1, 8) == 8
    assert budget.granularity(12, 1, 8) == 3      # too narrow for the step: a quarter
    assert budget.granularity(64, 16, 8) == 16    # round_to given wins
    assert budget.lowest_count(64, 0.9, 8) == 8
    assert budget.lowest_count(10, 0.5, 1) == 5


# -- options (no TensorFlow) ------------------------------------------------------------------

@pytest.mark.parametrize("value", [0, "0", 1, "1.0", 1.5, "abc", "-2ms", "0ms"])
def test_bad_target_latency_is_one_line(value):
    with pytest.raises(TfpruneError, match="target_latency") as err:
        options.ChannelOptions(target_latency=value)
    assert "\n" not in str(err.value)


def test_target_latency_selects_by_latency():
    o = options.ChannelOptions(target_latency="0.4")
    assert o.selection == "latency" and o.target_sparsity == pytest.approx(0.6)
    assert options.ChannelOptions(target_latency="2.5ms").latency_target() == ("ms", 2.5)
    with pytest.raises(TfpruneError, match="cannot be combined"):
        options.ChannelOptions(target_latency="0.5", selection="global")
    with pytest.raises(TfpruneError, match="needs --target_latency"):
        options.ChannelOptions(selection="latency")


def test_untimeable_quantization_is_refused():
    with pytest.raises(TfpruneError, match="latency_quantization"):
        options.ChannelOptions(target_latency="0.5", latency_quantization="int4")
    from tfprune.tflite import latency
    with pytest.raises(TfpruneError, match="cannot be timed"):
        latency.check_target("mixed", 1)


# -- kernels of a Keras model (no timing) -----------------------------------------------------

def _block_model():
    from tfprune.keras import keras
    L = keras.layers
    i = keras.Input((12, 12, 3))
    x = L.ZeroPadding2D(1)(i)
    x = L.Conv2D(16, 3, use_bias=False)(x)
    x = L.BatchNormalization()(x)
    x = L.ReLU()(x)
    y = L.Conv2D(16, 1)(x)
    x = L.Add()([x, y])
    x = L.ReLU()(x)
    x = L.Flatten()(x)
    x = L.Dropout(0.1)(x)
    return keras.Model(i, L.Dense(10)(x))


def test_kernels_fuse_what_the_converter_and_xnnpack_fuse():
    from tfprune.tflite import latency
    kernels = latency.kernels_of(_block_model())
    layers = [k.layers for k in kernels]
    # The pad, the conv, its BN and ReLU are one kernel (the ReLU's output has two readers);
    # then the 1x1 conv, the Add with its ReLU, the Dense.
    assert len(layers[0]) == 4 and layers[0][0].startswith("zero_padding")
    assert len(layers) == 4
    assert any(len(chain) == 2 and chain[0].startswith("add") for chain in layers)
    assert not any(name.startswith(("flatten", "dropout")) for c in layers for name in c)


def test_widths_follow_the_groups_through_flatten():
    from tfprune.pruning import groups as groups_lib
    from tfprune.tflite import latency
    model = _block_model()
    kernels = latency.kernels_of(model)
    groups = groups_lib.channel_groups(model)
    widths = latency.Widths(kernels, groups)
    shared = next(g for g in groups if g.width == 16 and g.blocked is None)
    at = widths.all({shared.id: 8})
    dense = next(k for k in kernels if k.family == "dense")
    assert at[dense.name] == (8 * 144, 10)   # 8 channels x 12 x 12 positions
    assert at[kernels[0].name] == (3, 8)


def test_prune_config_takes_a_latency_target_for_channels_only():
    from tfprune.jobs.configs.prune import PruneConfig
    config = PruneConfig(method="channel", target_latency="0.3", fine_tune_epochs=0)
    assert config.target_sparsity == pytest.approx(0.7)
    assert config.method_options().selection == "latency"
    with pytest.raises(TfpruneError, match="applies to method 'channel'"):
        PruneConfig(method="weight", target_latency="0.3")


def test_the_latency_selection_needs_a_cost_model():
    from tfprune.models import build_model
    from tfprune.pruning import method_objects
    method = method_objects.make_method("channel", target_latency="0.5")
    with pytest.raises(TfpruneError, match="needs a latency cost model"):
        method.check(build_model("cnn", (8, 8, 1), 10))


# -- the cost model against the interpreter (times small .tflite files) -----------------------

def test_cost_model_predicts_the_measured_latency_of_dense_and_shrunk_zoo_models(tmp_path):
    """The cnn on 16x16 inputs, uncalibrated: the kernels' sum against the whole model timed
    on the interpreter, dense and with every group at half its channels (shrunk). The bound
    is loose (35%) because the test suite shares two cores with other tests; the quiet
    figures (within 10%) are in docs/benchmarks.md."""
    from tfprune.models import build_model
    from tfprune.pruning import channels, groups as groups_lib
    from tfprune.tflite import latency

    model = build_model("cnn", (16, 16, 1), 10, seed=0)
    groups = groups_lib.channel_groups(model)
    cm = latency.cost_model(model, groups, directory=str(tmp_path))
    assert cm.calibration > 0 and cm.steps["gemm"] >= 1
    half = {g.id: np.arange(g.width // 2) for g in channels.prunable(groups)}
    shrunk = channels.shrink(model, groups, half).model
    example = np.zeros((16, 16, 1), np.float32)
    measured = latency.measured({"dense": model, "shrunk": shrunk}, example, cm.target)
    counts = {gid: len(k) for gid, k in half.items()}
    cm.refine(counts)
    assert cm.raw().seconds * 1e3 == pytest.approx(measured["dense"], rel=0.35)
    assert cm.raw(counts).seconds * 1e3 == pytest.approx(measured["shrunk"], rel=0.35)
    assert cm.raw(counts).seconds < cm.raw().seconds
    # A second model of the same architecture times nothing new: the table is reused.
    again = latency.cost_model(build_model("cnn", (16, 16, 1), 10, seed=1), groups,
                               directory=str(tmp_path))
    assert again.measured == 0


# -- latency targets in the sweep and the tuner --------------------------------------------------

def test_sweep_offers_latency_targets_as_variants_beside_sparsities():
    from tfprune.jobs.configs.sweep import SweepConfig
    from tfprune.results.rows import VariantKey

    config = SweepConfig(methods=("weight", "channel"), schedules=("constant",),
                         sparsities=(0.5,), target_latencies=("0.40", "2ms", "0.4"))
    assert config.target_latencies == ("0.4", "2ms")
    assert [key.slug() for key in config.variants()] == [
        "dense", "weight-constant-0.5", "channel-constant-0.5", "channel-constant-latency0.4",
        "channel-constant-latency2ms"]
    key = config.variants()[3]
    assert key.title() == "seed 0 channel constant latency 0.4"
    assert VariantKey.from_identity(key.identity()) == key
    prune = config.prune_config(key)
    assert prune.target_latency == "0.4" and prune.target_sparsity == pytest.approx(0.6)
    assert prune.method_options().selection == "latency"
    assert config.prune_config(config.variants()[2]).target_latency is None
    # Only latency targets: the channel method needs no sparsities.
    only = SweepConfig(methods=("channel",), schedules=("constant",), sparsities=(),
                       target_latencies=("0.5",), latency_quantization="int8")
    assert [k.slug() for k in only.variants()] == ["dense", "channel-constant-latency0.5"]
    assert only.prune_config(only.variants()[1]).latency_quantization == "int8"


@pytest.mark.parametrize("kwargs, message", [
    (dict(methods=("weight",), target_latencies=("0.5",)),
     "`target_latencies` apply to the method.s. channel; none of weight is one"),
    (dict(methods=("channel",), target_latencies=("1.5",)),
     r"`target_latencies`: target_latency must be a ratio .* in \(0, 1\)"),
    (dict(methods=("channel", "weight"), sparsities=(), target_latencies=("0.5",)),
     "`sparsities` must not be empty"),
    (dict(methods=("channel",), target_latencies=("0.5",), latency_quantization="int4"),
     "`latency_quantization` must be one of float32, float16, dynamic, int8"),
])
def test_bad_sweep_latency_targets_are_one_line(kwargs, message):
    from tfprune.jobs.configs.sweep import SweepConfig
    with pytest.raises(TfpruneError, match=message):
        SweepConfig(**kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(min_latency=0.3), "give both `min_latency` and `max_latency`"),
    (dict(min_latency=0.6, max_latency=0.4), r"`min_latency` \(0.6\) must not exceed"),
    (dict(min_latency=0.0, max_latency=0.4), r"min_latency must be a ratio .* \(0, 1\)"),
    (dict(methods=("channel", "weight"), min_latency=0.3, max_latency=0.6),
     "searched by the method.s. channel; not by weight"),
])
def test_bad_tune_latency_ranges_are_one_line(tmp_path, kwargs, message):
    from tfprune.jobs.configs.tune import TuneConfig
    baseline = tmp_path / "model.keras"
    baseline.write_bytes(b"x")
    with pytest.raises(TfpruneError, match=message):
        TuneConfig(baseline=str(baseline), **dict(dict(methods=("channel",)), **kwargs))


def test_tune_searches_latency_targets_for_the_channel_method(tmp_path):
    import keras_tuner
    from tfprune.jobs.configs.tune import TuneConfig
    from tfprune.jobs.tune import declare
    baseline = tmp_path / "model.keras"
    baseline.write_bytes(b"x")
    config = TuneConfig(baseline=str(baseline), methods=("channel",), min_latency=0.3,
                        max_latency=0.6)
    hp = keras_tuner.HyperParameters()
    declare(hp, config)
    assert "target_latency" in hp.values and "target_sparsity" not in hp.values
    space = {p.name: p for p in hp.space}
    assert (space["target_latency"].min_value, space["target_latency"].max_value) == (0.3, 0.6)


def test_report_compares_a_latency_target_with_sparsity_targets_at_the_same_latency():
    from tfprune.results import report

    def entry(accuracy, measured, sparsity=None, latency=None, predicted=None):
        return {"method": "channel", "schedule": "constant", "quantization": "float32",
                "target_sparsity": sparsity, "target_latency": latency,
                "tflite_accuracy": accuracy, "latency_vs_dense": measured,
                "predicted_latency_ratio": predicted}

    entries = [entry(0.8, 0.3, sparsity=0.5), entry(0.9, 0.7, sparsity=0.3),
               entry(0.88, 0.4, latency="0.4", predicted=0.41),
               entry(0.7, 0.2, latency="0.2", predicted=0.2)]
    rows = [line for line in report.latency_lines(entries) if line.startswith("| channel")]
    # 0.4 lies a quarter of the way from 0.3 (80%) to 0.7 (90%): 82.5% by sparsity there.
    assert rows[0] == ("| channel | constant | 0.4 | 0.410 | 0.400 | 88.00 | 0.5 | 0.300 | "
                       "80.00 | 82.50 | +5.50 points |")
    # Faster than every variant by sparsity: against the nearest, no interpolation.
    assert rows[1].endswith("| 0.5 | 0.300 | 80.00 | n/a | -10.00 points |")
    assert report.latency_lines([entry(0.8, 0.3, sparsity=0.5)]) == []


def _sweep_report_lines(report):
    start = report.index("## Latency targets vs sparsity targets")
    return report[start:report.index("\n## ", start + 3)].splitlines()


@pytest.mark.integration
def test_sweep_prunes_to_a_latency_target_beside_a_sparsity_target(tmp_path, monkeypatch):
    """digits, the cnn: channel pruning at sparsity 0.5 and to latency 0.6 in one sweep; the
    latency variant has its prediction, its measured ratio from the joint timing, and the
    report's comparison row names its neighbour by sparsity."""
    from tfprune.jobs.sweep import SweepConfig, run_sweep
    monkeypatch.setenv("TFPRUNE_CACHE", str(tmp_path / "cache"))
    config = SweepConfig(model="cnn", methods=("channel",), schedules=("constant",),
                         sparsities=(0.5,), target_latencies=("0.6",),
                         quantizations=("float32",), baseline_epochs=1, fine_tune_epochs=1,
                         latency_runs=20, representative_count=20)
    out = tmp_path / "sweep"
    rows = run_sweep(config, str(out), log=lambda _: None)
    by_target = {r["target_latency"]: r for r in rows if r["method"] == "channel"}
    ours, uniform = by_target["0.6"], by_target[None]
    assert ours["target_sparsity"] is None and uniform["target_sparsity"] == 0.5
    assert 0 < ours["predicted_latency_ratio"] < 0.75  # the budget, on the cost model
    assert uniform["predicted_latency_ratio"] is None
    for row in (ours, uniform):
        assert 0 < row["latency_vs_dense"] < 1.2 and row["deployed"] == "shrunk"
    assert (out / "variants" / "seed0" / "channel-constant-latency0.6" / "variant.json").exists()
    report = (out / "report.md").read_text()
    lines = _sweep_report_lines(report)
    (row,) = [line for line in lines if line.startswith("| channel | constant | 0.6 |")]
    assert f"{100 * ours['tflite_accuracy']:.2f}" in row and "| 0.5 |" in row
    assert (out / "plots" / "accuracy_vs_latency.png").stat().st_size > 5000


@pytest.mark.integration
def test_tune_trials_prune_to_the_latency_targets_it_searches(tmp_path, monkeypatch):
    """One random trial on the digits cnn, its latency target drawn from 0.5..0.7: the trial's
    row has the target, the prediction within it, and the measured latency of its .tflite."""
    from tfprune.jobs.tune import TuneConfig, make_tuner, write_results
    from tfprune.models import build_model
    monkeypatch.setenv("TFPRUNE_CACHE", str(tmp_path / "cache"))
    baseline = str(tmp_path / "cnn.keras")
    build_model("cnn", (8, 8, 1), 10, seed=0).save(baseline)
    config = TuneConfig(baseline=baseline, model="cnn", methods=("channel",),
                        schedules=("constant",), min_latency=0.5, max_latency=0.7, max_trials=1,
                        epochs=(1,), quantizations=("float32",), latency_runs=5)
    make_tuner(config, str(tmp_path / "tune"), log=lambda _: None).search()
    (trial,) = write_results(config, str(tmp_path / "tune"))["trials"]
    target = float(trial["target_latency"])
    assert 0.5 <= target <= 0.7 and trial["target_sparsity"] is None
    assert 0 < trial["predicted_latency_ratio"] <= target
    assert trial["latency_ms_median"] > 0
    assert (tmp_path / "tune" / "trials.csv").read_text().splitlines()[0].startswith(
        "trial_id,tuner_id,method,schedule,target_sparsity,target_latency,")
