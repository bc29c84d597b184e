"""tfprune.prune_model, the one call (pipeline.py), and the README's library example, which uses
it; the method objects' options (pruning/options.py) and their one-line errors."""

import os
import re

import numpy as np
import pytest

import tfprune
from tfprune.data import load_data
from tfprune.errors import TfpruneError
from tfprune.models import build_model
from tfprune.pruning import method_objects, options

from conftest import ROOT


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", batch_size=64, seed=0)


@pytest.fixture(scope="module")
def cnn(digits):
    return build_model("cnn", digits.input_shape, digits.num_classes, seed=0)


def test_make_method_picks_the_class_and_checks_the_options_together():
    kinds = {name: type(method_objects.make_method(name)).__name__
             for name in ("weight", "unit", "channel", "dynamic", "adaptive")}
    assert kinds == {"weight": "LayerMethod", "unit": "LayerMethod", "channel": "ChannelMethod",
                     "dynamic": "DecidingMethod", "adaptive": "DecidingMethod"}
    incremental = method_objects.make_method("incremental", target_sparsity=0.5)
    assert incremental.granularity() == "channel" and incremental.target_sparsity == 0.5
    assert method_objects.make_method("dynamic", target_sparsity=0.5).target_sparsity is None
    with pytest.raises(TfpruneError, match=r"^unknown option\(s\) layers for method 'channel' "
                                           r"\(ChannelOptions\); known: target_sparsity, "):
        method_objects.make_method("channel", layers=("conv1",))
    with pytest.raises(TfpruneError, match=r"^method 'weight' takes LayerOptions, got "
                                           r"ChannelOptions$"):
        method_objects.make_method("weight", options.ChannelOptions())
    with pytest.raises(TfpruneError, match="unknown channel criterion 'random'"):
        options.ChannelOptions(criterion="random")
    with pytest.raises(TfpruneError, match=r"unknown dynamic option\(s\) patiense"):
        options.DecidingOptions(dynamic={"patiense": 2})
    with pytest.raises(TfpruneError, match=r"`sparsity_m_by_n` applies to weight pruning, not "
                                           r"'unit'"):
        method_objects.make_method("unit", sparsity_m_by_n="2:4")
    with pytest.raises(TfpruneError, match=r"do not apply to channel pruning \(method "
                                           r"'dynamic'\)"):
        method_objects.make_method("dynamic", prune_classifier=True)


def test_one_call_prunes_once_with_any_one_shot_method(digits, cnn):
    before = [w.copy() for w in cnn.get_weights()]
    channel = tfprune.prune_model(cnn, digits, "channel", target_sparsity=0.5)
    assert channel.summary["pruned_sparsity"] == 0.5
    assert channel.shrink.max_abs_diff <= 1e-4 and channel.shrunk.count_params() < \
        cnn.count_params()
    assert set(channel.statistics) == {"channel", "schedule_steps"}
    assert channel.statistics["channel"]["prunable_groups"] == 3  # conv1, conv2, fc1
    weight = tfprune.prune_model(cnn, digits, "weight", options=tfprune.LayerOptions(
        target_sparsity=0.75))
    assert weight.summary["pruned_sparsity"] == pytest.approx(0.75, abs=1e-3)
    assert weight.shrink.removed == {} and weight.statistics == {
        "schedule_steps": {"begin_step": 0, "end_step": 0, "frequency": 1}}
    assert all(np.array_equal(a, b) for a, b in zip(before, cnn.get_weights()))
    with pytest.raises(TfpruneError, match=r"one-shot pruning \(`fine_tune_epochs=0`\) applies "
                                           r"to the methods weight, unit, channel, not 'dynamic'"):
        tfprune.prune_model(cnn, digits, "dynamic")


def _readme_library_code():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    section = text.split("## Using the library\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.mark.integration
def test_the_readme_library_example_runs(tmp_path, monkeypatch, capsys):
    blocks = _readme_library_code()
    assert len(blocks) == 2 and "prune_model(model, data, \"channel\"" in blocks[0]
    monkeypatch.chdir(tmp_path)
    namespace = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    result, finished = namespace["result"], namespace["finished"]
    assert result.summary["pruned_sparsity"] == 0.5
    assert result.shrink.params_after < result.shrink.params_before
    assert result.statistics["channel"]["criterion"] == "l1"
    assert finished.shrink.removed == {"conv2": (64, 32), "fc1": (128, 64)}
    assert "accuracy" in capsys.readouterr().out
