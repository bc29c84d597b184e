import os

import pytest

from tfprune import io, summaries
from tfprune import training as train_lib
from tfprune.errors import RunDirectoryError, TfpruneError, UnknownNameError
from tfprune.jobs.train import TrainConfig, train_baseline
from tfprune.optimizers import make_optimizer

TINY = dict(dataset="digits", model="mlp", epochs=3, batch_size=128)


@pytest.mark.parametrize("kwargs, message", [
    (dict(epochs=0), r"`epochs` must be an integer >= 1, got 0"),
    (dict(epochs=-3), r"`epochs` must be an integer >= 1, got -3"),
    (dict(batch_size=2.5), r"`batch_size` must be an integer >= 1, got 2.5"),
    (dict(learning_rate=0.0), r"`learning_rate` must be > 0, got 0.0"),
    (dict(learning_rate=-1e-3), r"`learning_rate` must be > 0, got -0.001"),
    (dict(momentum=1.0), r"`momentum` must be in \[0, 1\), got 1.0"),
    (dict(weight_decay=-0.1), r"`weight_decay` must be in \[0, 1\), got -0.1"),
    (dict(lr_schedule="step"), r"`lr_schedule` must be one of constant, cosine, got 'step'"),
    (dict(seed=-1), r"`seed` must be an integer >= 0, got -1"),
])
def test_config_validation(kwargs, message):
    with pytest.raises(TfpruneError, match=message):
        TrainConfig(**kwargs)


def test_config_unknown_names():
    with pytest.raises(UnknownNameError, match="unknown model 'lenet'; registered: bert_base, cnn, mlp"):
        TrainConfig(model="lenet")
    with pytest.raises(UnknownNameError, match="unknown optimizer 'rmsprop'; registered: adam, sgd"):
        TrainConfig(optimizer="rmsprop")


def test_auto_augmentation_is_resolved():
    assert TrainConfig(model="cnn").augment == "shift"
    assert TrainConfig(model="mlp").augment == "none"
    assert TrainConfig(dataset="cifar10", model="resnet20").augment == "crop_flip"
    assert TrainConfig(model="cnn", augment="none").augment == "none"


def test_make_optimizer():
    sgd = make_optimizer("sgd", 0.1, momentum=0.9, weight_decay=5e-4)
    assert sgd.get_config()["nesterov"] and sgd.get_config()["weight_decay"] == pytest.approx(5e-4)
    with pytest.raises(TfpruneError, match="`decay_steps` must be >= 1 for a cosine schedule"):
        make_optimizer("adam", 1e-3, lr_schedule="cosine")


@pytest.mark.integration
def test_train_writes_run_directory_and_reuses_it(tmp_path, python):
    out = tmp_path / "run"
    lines = []
    metrics = train_baseline(TrainConfig(**TINY), str(out), log=lines.append)
    for name in ("config.json", "metrics.json", "history.json", "model.keras", "plots/training.png"):
        assert (out / name).exists(), name
    assert not (out / "backup").exists()
    assert set(os.listdir(out)) == {"config.json", "metrics.json", "history.json", "model.keras",
                                    "plots", "tensorboard"}
    events = summaries.read_events(str(out / "tensorboard"))  # TensorBoard: one point per epoch
    assert [step for step, _ in events["train"]["epoch_loss"]] == [0, 1, 2]
    assert [v for _, v in events["validation"]["epoch_accuracy"]] == pytest.approx(
        io.read_json(out / "history.json")["val_accuracy"])
    assert metrics["epochs"] == 3 and metrics["params"] == 50610
    assert 0.5 < metrics["test_accuracy"] <= 1.0 and metrics["train_time_s"] > 0
    assert sum("epoch " in line and "left]" in line for line in lines) == 3  # progress per epoch
    assert io.read_json(out / "config.json")["augment"] == "none"
    # The model loads with plain tf_keras in a process that never imports tfprune.
    result = python(["-c", "import tf_keras; m = tf_keras.models.load_model(%r); "
                     "print('params', m.count_params())" % str(out / "model.keras")])
    assert "params 50610" in result.stdout, result.stderr
    # Same config again: nothing retrained.
    lines.clear()
    assert train_baseline(TrainConfig(**TINY), str(out), log=lines.append) == metrics
    assert any("reusing" in line for line in lines)
    # A different config in the same directory is refused, and nothing is lost.
    with pytest.raises(RunDirectoryError, match="differs in: epochs"):
        train_baseline(TrainConfig(**dict(TINY, epochs=4)), str(out))
    assert io.read_json(out / "metrics.json") == metrics


@pytest.mark.integration
def test_interrupted_training_resumes_from_last_epoch(tmp_path, monkeypatch):
    out = str(tmp_path / "run")
    original = train_lib.ProgressLogger.on_epoch_end

    def interrupt_after_second_epoch(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_lib.ProgressLogger, "on_epoch_end", interrupt_after_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_baseline(TrainConfig(**dict(TINY, epochs=4)), out, log=lambda _: None)
    assert not os.path.exists(os.path.join(out, "metrics.json"))
    assert os.path.isdir(os.path.join(out, "backup"))
    monkeypatch.setattr(train_lib.ProgressLogger, "on_epoch_end", original)
    metrics = train_baseline(TrainConfig(**dict(TINY, epochs=4)), out, log=lambda _: None)
    # Interrupted in epoch 2's progress line, before its checkpoint: epochs 2-4 run again.
    assert metrics["epochs"] == 4 and metrics["epochs_run_this_time"] == 3
    assert len(io.read_json(os.path.join(out, "history.json"))["loss"]) == 4


def test_defaults_follow_the_dataset():
    assert (TrainConfig().epochs, TrainConfig().batch_size) == (60, 32)
    fashion = TrainConfig(dataset="fashion_mnist")
    assert (fashion.epochs, fashion.batch_size, fashion.augment) == (15, 128, "none")
    assert TrainConfig(dataset="fashion_mnist", epochs=3, batch_size=64).epochs == 3  # given wins
    assert TrainConfig(dataset="fashion_mnist", model="mlp").augment == "none"


@pytest.mark.integration
def test_mixed_precision_trains_in_float16_saves_float32_and_restores_the_policy(tmp_path):
    from tfprune import precision
    from tfprune.models import load_model

    out = str(tmp_path / "run")
    metrics = train_baseline(TrainConfig(**dict(TINY, mixed_precision=True)), out,
                             log=lambda _: None)
    assert precision.global_policy() == "float32"
    assert metrics["precision"] == {"policy": "mixed_float16", "loss_scaling": True}
    model = load_model(os.path.join(out, metrics["model_path"]))
    assert precision.is_float32(model) and model.dtype_policy.name == "float32"
    assert metrics["test_accuracy"] > 0.5
