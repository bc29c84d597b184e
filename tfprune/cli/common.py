"""What every command shares (``tfprune <command>``, and the scripts in experiments/ that call
the same modules): flag definitions built from the registries with
defaults read from the job configs, and a runner that turns tfprune's input errors into a
one-line message and exit status 2.

Nothing here imports TensorFlow: a script defines its flags and builds its config from modules
that do not (tfprune.jobs.configs and the registries' names), and imports its job in main, after
the config is built; so --help and a bad flag or value answer in well under a second."""

import dataclasses
import os
import re
import sys

from absl import app, flags, logging

import tfprune  # noqa: F401  (sets up Keras 2 before anything imports TensorFlow)
from tfprune import data as data_lib
from tfprune import distribute, lifeline
from tfprune.data import AUGMENTATIONS
from tfprune.distribute import STRATEGIES
from tfprune.errors import TfpruneError, file_fault_message
from tfprune.models import MODELS
from tfprune.optimizers import LR_SCHEDULES, OPTIMIZERS
from tfprune.pruning.methods import GRANULARITIES
from tfprune.pruning.options import DynamicConfig

FLAGS = flags.FLAGS
EXIT_BAD_INPUT = 2
EXIT_WORKER_LOST = 3


def defaults(config_class):
    """{field: default} of a job config dataclass: the one source of the scripts' defaults."""
    return {f.name: f.default for f in dataclasses.fields(config_class)
            if f.default is not dataclasses.MISSING}


def define_positive_float(name, default, help_text):
    flags.DEFINE_float(name, default, help_text)
    flags.register_validator(name, lambda v: v is not None and v > 0,
                             message=f"--{name} must be > 0")


def _dataset_is_known(name):
    """absl validator: a registered name (also one registered after import, before parsing),
    npz:PATH or folder:PATH. Files are opened later, by the job's config, with full errors."""
    if isinstance(name, str) and name.startswith(data_lib.PREFIXES):
        return True
    if name in data_lib.DATASETS:
        return True
    raise flags.ValidationError(f"unknown dataset {name!r}; choose {data_lib.names_help()}")


def define_dataset_flags(d):
    """--dataset, --data_dir, --split_seed, --image_size (defaults ``d``)."""
    flags.DEFINE_string("dataset", d["dataset"],
                        f"Data set: {data_lib.names_help()}. digits is embedded; mnist and "
                        "fashion_mnist are read from local IDX files (see README, Real data).")
    flags.register_validator("dataset", _dataset_is_known)
    flags.DEFINE_string("data_dir", d["data_dir"],
                        "Where mnist/fashion_mnist IDX files or prepared tfds data sets are "
                        "(searched before the Keras cache and /usr/share/datasets). Not needed "
                        "for digits.")
    flags.DEFINE_integer("split_seed", d["split_seed"],
                         "Seed of the train/validation/test split.", lower_bound=0)
    flags.DEFINE_string("image_size", None, "folder: data sets: resize images to this size, "
                        "e.g. 32 or 32x48 (default: the first image's size).")


def define_data_flags(d):
    """The dataset flags, and --batch_size, --augment, --seed (defaults ``d``)."""
    define_dataset_flags(d)
    flags.DEFINE_integer("batch_size", d["batch_size"],
                         "Batch size (default: the data set's, 32 for digits, 128 for 28x28 "
                         "data).", lower_bound=1)
    flags.DEFINE_enum("augment", d["augment"], ["auto"] + AUGMENTATIONS.names(),
                      "Training augmentation; auto = the dataset's default for convolutional "
                      "models (digits/mnist: 1-pixel shifts, cifar: crop and flip), none for mlp.")
    flags.DEFINE_integer("seed", d["seed"],
                         "Random seed for initialization, shuffling and augmentation.",
                         lower_bound=0)


def define_model_flag(d):
    flags.DEFINE_enum("model", d["model"], MODELS.names(), "Model from the zoo.")


def define_optimizer_flags(d):
    define_positive_float("learning_rate", d["learning_rate"], "Initial learning rate.")
    flags.DEFINE_enum("optimizer", d["optimizer"], OPTIMIZERS.names(), "Optimizer.")
    flags.DEFINE_float("momentum", d["momentum"], "Momentum (sgd, with Nesterov).",
                       lower_bound=0.0, upper_bound=0.999)
    flags.DEFINE_float("weight_decay", d["weight_decay"], "Decoupled weight decay.",
                       lower_bound=0.0, upper_bound=0.999)
    flags.DEFINE_enum("lr_schedule", d["lr_schedule"], list(LR_SCHEDULES), "Learning-rate schedule.")


# Flags of the methods that decide for themselves -> DynamicConfig fields. Unset: the default.
DYNAMIC_FLAGS = {"granularity": "granularity", "interval": "interval", "patience": "patience",
                 "every": "every", "norm_tolerance": "norm_tolerance",
                 "accuracy_tolerance": "accuracy_tolerance", "norm_fraction": "norm_fraction",
                 "max_step": "max_step", "max_sparsity": "max_sparsity",
                 "prune_fraction": "prune_fraction", "pq_p": "p", "pq_q": "q", "eta": "eta",
                 "gamma": "gamma", "beta": "beta"}
_DYNAMIC_HELP = {
    "interval": "dynamic: epochs between checks",
    "patience": "dynamic: stable checks in a row before pruning a layer",
    "every": "incremental/adaptive: epochs between pruning rounds",
    "norm_tolerance": "dynamic: relative change of the mean column norm counted as stable",
    "accuracy_tolerance": "dynamic: allowed drop of validation accuracy",
    "norm_fraction": "dynamic: prune units below this fraction of the mean column norm",
    "max_step": "dynamic: most of a layer pruned per event",
    "max_sparsity": "dynamic/adaptive: per-layer ceiling",
    "prune_fraction": "incremental: fraction of the remaining pruned per round (default: fitted)",
    "pq_p": "adaptive: PQ index p, p < q", "pq_q": "adaptive: PQ index q",
    "eta": "adaptive: eta", "gamma": "adaptive: gamma",
    "beta": "adaptive: beta, most of a layer pruned per round",
}


def define_mixed_flags(d):
    """--mixed_budget_kb and --mixed_int4_fraction (defaults ``d``): what the 'mixed'
    quantization aims for; export, sweep and tune share them."""
    flags.DEFINE_float("mixed_budget_kb", d["mixed_budget_kb"],
                       "quantization 'mixed': the largest .tflite in KB (1024 B); the least "
                       "important layers go int4 until it fits. Not with --mixed_int4_fraction.")
    flags.DEFINE_float("mixed_int4_fraction", d["mixed_int4_fraction"],
                       "quantization 'mixed': the share of the weights at int4, in [0, 1], least "
                       "important layers first (default 0.5 when no budget is given).")


def define_strategy_flag(d, names=None):
    """--strategy (default ``d``): how training spreads over devices and machines."""
    flags.DEFINE_enum("strategy", d["strategy"], names or STRATEGIES.names(),
                      "default: one device; mirrored: every local GPU (or every logical CPU "
                      "device) in sync; multi_worker: several processes or machines, as "
                      "TF_CONFIG describes (README: Training at scale). --batch_size is per "
                      "replica.")


def define_mixed_precision_flag(d, what="Train"):
    """--mixed_precision (default ``d``): train, prune, sweep and tune share it."""
    flags.DEFINE_bool("mixed_precision", d["mixed_precision"],
                      f"{what} under the mixed_float16 policy (float16 compute, float32 "
                      "weights; a speed-up on GPUs with tensor cores, slower on CPU). Saved "
                      "models, and so .tflite files, stay float32.")


def define_dynamic_flags():
    """The options of the methods that decide (dynamic, incremental, adaptive)."""
    dynamic_defaults = defaults(DynamicConfig)
    flags.DEFINE_enum("granularity", None, list(GRANULARITIES),
                      "Deciding methods: prune channel groups (removed from every layer they "
                      "touch, through residual Adds), per-layer units, or single weights "
                      "(default: weight for adaptive, channel otherwise).")
    for flag, field in DYNAMIC_FLAGS.items():
        if flag == "granularity":
            continue
        default = dynamic_defaults[field]
        help_text = f"{_DYNAMIC_HELP[flag]} (default {default})"
        if isinstance(default, int) and not isinstance(default, bool):
            flags.DEFINE_integer(flag, None, help_text)
        else:
            flags.DEFINE_float(flag, None, help_text)


def dynamic_options():
    """The deciding methods' options the user set, as DynamicConfig fields (None if none)."""
    options = {field: FLAGS[flag].value for flag, field in DYNAMIC_FLAGS.items()
               if FLAGS[flag].value is not None}
    return options or None


def define_run_flags(default_output_dir_help):
    flags.DEFINE_string("output_dir", None, f"Run directory. Default: {default_output_dir_help}.")
    flags.DEFINE_bool("overwrite", False,
                      "Replace an output directory that holds a run with a different configuration.")
    flags.DEFINE_bool("wait", False, "When another job is using the output directory, wait for "
                      "it to finish and then go on (resuming its work) instead of exiting.")


def _parse_flags(argv):
    """absl's flag parsing, its errors in the same style and with the same exit status as
    every other bad input (absl would print 'FATAL Flags parsing error' and exit 1)."""
    try:
        return FLAGS(argv)
    except flags.Error as err:
        message = str(err).splitlines()[0]
        named = re.match(r"flag --(\w+)=", message)
        if named and named.group(1) in FLAGS:
            allowed = FLAGS[named.group(1)].parser.syntactic_help
            if allowed and allowed not in message:
                message += f" (allowed: {allowed})"
        print(f"error: {message}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def _lost_worker(err):
    """True for the error a multi-worker run's collective ops raise when a peer stopped.
    TensorFlow is in the process whenever such an error can be raised (only then is it read)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and distribute.is_multi_worker() and isinstance(
        err, (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError))


def run(main, argv=None):
    """app.run(main) on ``argv`` (default sys.argv): bad flags, TfpruneError and file-system faults (OSError, and TensorFlow's
    writers' errors that are one: errors.file_fault_message) end with one line "error: ..." on
    stderr and exit code 2, without a traceback; Ctrl-C and SIGTERM stop the job with one line
    and exit 130 and 143. Quiet unless --verbose or TFPRUNE_VERBOSE=1 (tfprune/quiet.py: the
    C++ noise TensorFlow and LiteRT print filtered from fd 2, the libraries' Python warnings and
    log records hidden); main imports TensorFlow only after that is set up."""
    from tfprune import quiet

    if "verbose" not in FLAGS:
        flags.DEFINE_bool("verbose", False, "Show what TensorFlow, Keras, tfmot and LiteRT print "
                          "(C++ log lines, Python warnings), hidden by default; also "
                          f"{quiet.VERBOSE_VARIABLE}=1 in the environment.")

    def quietly(argv):
        with quiet.command(FLAGS.verbose, loggers=[logging.get_absl_logger()]):
            return guarded(argv)

    def guarded(argv):
        if len(argv) > 1:
            print(f"error: unexpected positional arguments: {' '.join(argv[1:])}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        if not FLAGS["verbosity"].present:
            logging.set_verbosity(logging.WARNING)  # TensorFlow's INFO lines drown the progress
        lifeline.raise_on_sigterm()  # stopped as by Ctrl-C (below: its own line and status)
        try:
            return main(argv)
        except TfpruneError as err:
            print(f"error: {err}", file=sys.stderr)
            sys.exit(EXIT_BAD_INPUT)
        except Exception as err:
            fault = file_fault_message(err, FLAGS["output_dir"].value if "output_dir" in FLAGS
                                       else None)
            if fault is not None:  # OSError, or a TensorFlow writer's file-system error
                print(f"error: {fault}", file=sys.stderr)
                sys.exit(EXIT_BAD_INPUT)
            if not _lost_worker(err):
                raise
            # A peer of a multi-worker run stopped (the collective ops fail on the others).
            reason = str(err).strip().splitlines()[0][:300]
            print(f"error: a worker of this multi-worker run stopped ({reason}); start every "
                  "worker again with the same command: the run resumes from its last "
                  "checkpoint", file=sys.stderr)
            sys.exit(EXIT_WORKER_LOST)
        except KeyboardInterrupt as err:
            terminated = isinstance(err, lifeline.Terminated)
            print(f"{'terminated' if terminated else 'interrupted'}; finished results are kept, "
                  "rerun the same command to resume", file=sys.stderr)
            sys.exit(lifeline.EXIT_TERMINATED if terminated else 130)

    app.run(quietly, argv=argv, flags_parser=_parse_flags)


def parse_numbers(flag, values, kind=float):
    """A list flag's strings as numbers; a clear error naming the flag otherwise."""
    try:
        return tuple(kind(v) for v in values)
    except ValueError:
        raise TfpruneError(f"`--{flag}` must be a comma-separated list of numbers, got "
                           f"{','.join(values)!r}") from None


def log(message):
    print(distribute.worker_label() + message, flush=True)


def default_output_dir(*parts):
    return os.path.join("saved_models", *parts)
