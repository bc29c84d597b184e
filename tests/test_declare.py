"""One declaration per option (tfprune/declare.py): a field's checks, flags and record come
from its declaration; a config records what was asked beside what it resolved to."""

import dataclasses
import json

import pytest
from absl import flags

from tfprune import declare
from tfprune.cli import common
from tfprune.declare import option
from tfprune.errors import TfpruneError, UnknownNameError
from tfprune.jobs.configs.prune import PruneConfig
from tfprune.jobs.configs.sweep import SweepConfig
from tfprune.jobs.rundir import prepare_run_dir
from tfprune.models import MODELS


@dataclasses.dataclass
class Example:
    count: int = option(1, "How many.", lower=1)
    shape: str = option("round", "Shape: {choices}.", choices=("round", "square"))
    model: str = option("cnn", "Model: {choices}.", choices=MODELS)
    sizes: tuple = option((0.5, 2.0), "Sizes.", items=float)
    hidden: dict = option(None, "Set from Python only.", flag=False)


def test_declared_fields_are_checked_with_one_wording():
    declare.check_declared(Example())
    with pytest.raises(TfpruneError, match="`count` must be an integer >= 1, got 0"):
        declare.check_declared(Example(count=0))
    with pytest.raises(TfpruneError, match="`shape` must be one of round, square, got 'oval'"):
        declare.check_declared(Example(shape="oval"))
    with pytest.raises(UnknownNameError, match="unknown model 'alexnet'"):
        declare.check_declared(Example(model="alexnet"))
    assert declare.defaults(Example)["sizes"] == (0.5, 2.0)
    assert declare.declared(Example)[1][1].text() == "Shape: round, square."


def test_flags_are_made_from_the_declarations_and_give_the_fields_back():
    flag_values = flags.FlagValues()
    names = common.define_command_flags("sweep", flag_values)
    assert "hybrid" in names and "dynamic" not in names and "output_dir" in names
    assert "pq_p" in names  # DynamicConfig.p, under its flag name
    flag_values(["sweep", "--sparsities=0.5,0.9", "--seeds=1,2", "--methods=weight",
                 "--pq_p=0.25"])
    values = common.config_values(SweepConfig, flag_values)
    assert values["sparsities"] == (0.5, 0.9) and values["seeds"] == (1, 2)
    assert values["methods"] == ("weight",)
    assert common.dynamic_options(flag_values) == {"p": 0.25}
    flag_values["sparsities"].value = ["0.5", "x"]
    with pytest.raises(TfpruneError, match="`--sparsities` must be a comma-separated list"):
        common.config_values(SweepConfig, flag_values)


def test_unset_deciding_flags_keep_the_library_defaults():
    flag_values = flags.FlagValues()
    common.define_command_flags("prune", flag_values)
    flag_values(["prune"])
    assert common.dynamic_options(flag_values) is None
    assert "(default 0.5)" in flag_values["pq_p"].help


def test_a_config_records_what_was_asked_and_what_it_resolved_to():
    config = PruneConfig(method="unit", target_sparsity=0.5, fine_tune_epochs=0)
    record = config.record()
    assert record["schedule"] == "constant" and record["fine_tune_epochs"] == 0
    assert record["batch_size"] == 32 and record["augment"] == "shift"
    assert record["asked"] == {"schedule": "polynomial", "batch_size": None,
                               "baseline_epochs": None, "augment": "auto",
                               # text options, which image data resolves to None
                               "sequence_length": 64, "vocabulary_size": 20000}
    assert record["sequence_length"] is None and record["vocabulary_size"] is None
    assert "asked" not in config.to_dict()
    assert PruneConfig(**config.to_dict()) == config  # the resolved fields round-trip
    assert PruneConfig(**config.to_dict()).asked == {}


def test_one_fine_tuning_default_for_prune_and_sweep():
    assert PruneConfig().fine_tune_epochs == SweepConfig().fine_tune_epochs == 15
    assert PruneConfig(dataset="fashion_mnist").fine_tune_epochs == 3


def test_a_run_directory_compares_the_resolved_fields_only(tmp_path):
    asked = PruneConfig(method="unit", target_sparsity=0.5)
    explicit = PruneConfig(method="unit", target_sparsity=0.5, batch_size=32,
                           baseline_epochs=60, fine_tune_epochs=15, augment="shift")
    assert asked.record() != explicit.record()
    assert not prepare_run_dir(tmp_path / "run", asked.record())
    assert prepare_run_dir(tmp_path / "run", explicit.record())  # the same run
    older = {k: v for k, v in explicit.record().items()  # a run from before these options
             if k not in ("sequence_length", "vocabulary", "vocabulary_size", "asked")}
    assert prepare_run_dir(tmp_path / "old", older) is False
    assert prepare_run_dir(tmp_path / "old", explicit.record())  # still the same run
    on_disk = json.loads((tmp_path / "run" / "config.json").read_text())
    assert on_disk["asked"]["fine_tune_epochs"] is None
