"""What every experiments/ script shares: flag definitions built from the registries, and a
runner that turns tfprune's input errors into a one-line message and a non-zero exit."""

import os
import sys

from absl import app, flags, logging

import tfprune  # noqa: F401  (sets up Keras 2 before anything imports TensorFlow)
from tfprune.data import AUGMENTATIONS, DATASETS
from tfprune.errors import TfpruneError
from tfprune.models import MODELS
from tfprune.train import LR_SCHEDULES, OPTIMIZERS

FLAGS = flags.FLAGS
EXIT_BAD_INPUT = 2


def define_positive_float(name, default, help_text):
    flags.DEFINE_float(name, default, help_text)
    flags.register_validator(name, lambda v: v is not None and v > 0,
                             message=f"--{name} must be > 0")


def define_data_flags():
    flags.DEFINE_enum("dataset", "digits", DATASETS.names(),
                      "Dataset; digits is embedded, the others load from --data_dir.")
    flags.DEFINE_string("data_dir", None,
                        "tfds data directory holding prepared datasets (default: $TFDS_DATA_DIR "
                        "or ~/tensorflow_datasets). Not needed for digits.")
    flags.DEFINE_integer("batch_size", 32, "Batch size.", lower_bound=1)
    flags.DEFINE_enum("augment", "auto", ["auto"] + AUGMENTATIONS.names(),
                      "Training augmentation; auto = the dataset's default for convolutional "
                      "models (digits/mnist: 1-pixel shifts, cifar: crop and flip), none for mlp.")
    flags.DEFINE_integer("seed", 0, "Random seed for initialization, shuffling and augmentation.",
                         lower_bound=0)
    flags.DEFINE_integer("split_seed", 0, "Seed of the train/validation/test split (digits).",
                         lower_bound=0)


def define_model_flag():
    flags.DEFINE_enum("model", "cnn", MODELS.names(), "Model from the zoo.")


def define_optimizer_flags(learning_rate=1e-3, optimizer="adam"):
    define_positive_float("learning_rate", learning_rate, "Initial learning rate.")
    flags.DEFINE_enum("optimizer", optimizer, OPTIMIZERS.names(), "Optimizer.")
    flags.DEFINE_float("momentum", 0.9, "Momentum (sgd, with Nesterov).", lower_bound=0.0,
                       upper_bound=0.999)
    flags.DEFINE_float("weight_decay", 0.0, "Decoupled weight decay.", lower_bound=0.0,
                       upper_bound=0.999)
    flags.DEFINE_enum("lr_schedule", "cosine", list(LR_SCHEDULES), "Learning-rate schedule.")


def define_run_flags(default_output_dir_help):
    flags.DEFINE_string("output_dir", None, f"Run directory. Default: {default_output_dir_help}.")
    flags.DEFINE_bool("overwrite", False,
                      "Replace an output directory that holds a run with a different configuration.")


def run(main):
    """app.run(main), printing TfpruneError messages without a traceback (exit code 2)."""

    def guarded(argv):
        if len(argv) > 1:
            print(f"error: unexpected positional arguments: {' '.join(argv[1:])}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        if not FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
        try:
            return main(argv)
        except TfpruneError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except KeyboardInterrupt:
            print("interrupted; finished results are kept, rerun the same command to resume",
                  file=sys.stderr)
            sys.exit(130)

    app.run(guarded)


def parse_numbers(flag, values, kind=float):
    """A list flag's strings as numbers; a clear error naming the flag otherwise."""
    try:
        return tuple(kind(v) for v in values)
    except ValueError:
        raise TfpruneError(f"`--{flag}` must be a comma-separated list of numbers, got "
                           f"{','.join(values)!r}") from None


def log(message):
    print(message, flush=True)


def default_output_dir(*parts):
    return os.path.join("saved_models", *parts)
