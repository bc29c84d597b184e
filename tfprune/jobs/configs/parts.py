"""The parts the job configs are made of, each field declared once (tfprune.declare.option: its
default, help and allowed values); a config composes the parts it needs as dataclass bases and
declares its own fields after them. The commands' flags and docs/options.md are made from
these declarations.

- ``DatasetFields``: which data (dataset, data_dir, split_seed, image_size; for text data
  sequence_length, vocabulary, vocabulary_size) and ``data``, the one place a config turns its
  fields into batched pipelines; ``check_zoo_model``: a zoo model takes the data set's kind
  (images or token ids).
- ``BatchFields``, ``SeedFields`` (seed and augmentation), ``ModelFields``.
- (configs/train.py: ``BaselineFields``, the baseline a pruning or sensitivity run starts
  from, beside the TrainConfig it makes.)
- ``FineTuneFields``: fine-tuning epochs and learning rate (prune and sweep share one default).
- ``ScheduleFields``, ``LayerFields``, ``ChannelFields``: the pruning method's options, the
  fields of pruning/options.py's ScheduleOptions, LayerOptions and ChannelOptions (declared
  there, once: a method's options object and the job's flags share them).
- ``DeviceFields`` (strategy, mixed precision), ``DeterministicFields``.
- ``MeasureFields`` (calibration images, threads, timed runs) and ``MixedFields`` (the mixed
  int4/int8 quantization's budget) for the jobs that deploy.

``resolve_dataset_defaults``: a field left None takes its data set's value (DatasetSpec: one
number per data set for epochs, fine-tuning epochs and batch size).
"""

import dataclasses

from tfprune import checks, distribute
from tfprune.data import (AUGMENTATIONS, check_dataset, check_dataset_name, dataset_spec,
                          load_data, names_help)
from tfprune.datasets import tokenizer
from tfprune.declare import option
from tfprune.distribute import STRATEGIES
from tfprune.models import FULLY_CONNECTED_MODELS, MODELS, check_model_data
from tfprune.compression.stages import StageOptions
from tfprune.pruning.options import ChannelOptions, LayerOptions, ScheduleOptions
from tfprune.tflite import mixed as mixed_lib

MIXED_NAMES = ("mixed_budget_kb", "mixed_int4_fraction")  # its options, as errors name them


def resolve_dataset_defaults(config, **fields):
    """Fill ``config``'s unset (None) fields from its data set: ``fields`` maps a config field
    to the DatasetSpec field that holds its value (DatasetSpec gives a value for every data
    set; a data set may override it)."""
    spec = dataset_spec(config.dataset, config.image_size)
    for name, spec_field in fields.items():
        if getattr(config, name) is None:
            setattr(config, name, getattr(spec, spec_field))


def resolve_augmentation(augment, dataset, model, image_size=None):
    """'auto' -> the dataset's augmentation for convolutional models, 'none' for an MLP."""
    if augment != "auto":
        return AUGMENTATIONS.validate(augment)
    if model in FULLY_CONNECTED_MODELS:
        return "none"
    return dataset_spec(dataset, image_size).augmentation


def check_zoo_model(model, dataset, image_size=None):
    """A TfpruneError unless zoo model ``model`` takes what ``dataset`` holds (images or
    token ids): checked when a config is built, before anything loads or trains."""
    check_model_data(model, dataset_spec(dataset, image_size).kind, dataset)


@dataclasses.dataclass
class DatasetFields:
    dataset: str = option(
        "digits", lambda: f"Data set: {names_help()}. digits is embedded; mnist and "
        "fashion_mnist are read from local IDX files, fortunes (text) from Debian's fortunes "
        "package (docs/data.md).",
        validator=check_dataset_name)
    data_dir: str = option(
        None, "Where mnist/fashion_mnist IDX files, prepared tfds data sets or fortune files "
        "(DIR/fortunes/) are (searched before the Keras cache, /usr/share/datasets and "
        "/usr/share/games/fortunes). Not needed for digits.")
    split_seed: int = option(0, "Seed of the train/validation/test split.", lower=0)
    image_size: str = option(
        None, "folder: data sets: resize images to this size, e.g. 32 or 32x48 (default: the "
        "first image's size).")
    sequence_length: int = option(
        tokenizer.SEQUENCE_LENGTH, "Text data: token ids per example, padded with 0 or "
        "truncated at the end (a pair: first text, separator, second text; the longer text "
        "shortened first). Image data ignores it.", lower=1)
    vocabulary: str = option(
        None, "Text data: a vocabulary file, one token per line (ids 3, 4, ... in file order; 0 "
        "padding, 1 unknown, 2 separator). Default: the vocabulary fitted on the training "
        "split.", validator=tokenizer.check_vocabulary_file)
    vocabulary_size: int = option(
        tokenizer.VOCABULARY_SIZE, "Text data: the fitted vocabulary's size, the reserved ids "
        "0-2 included (the most frequent words of the training split; ignored with "
        "--vocabulary, whose file sets it).", lower=len(tokenizer.RESERVED) + 1)

    def resolve_dataset(self):
        """The data set checked (a file source opened), ``image_size`` normalised; the text
        options of an image data set resolved to None (they do not apply: config.json says so,
        and a run from before they existed is the same run)."""
        self.image_size = check_dataset(self.dataset, self.image_size)
        if dataset_spec(self.dataset, self.image_size).kind != "text":
            self.sequence_length = self.vocabulary = self.vocabulary_size = None

    def dataset_fields(self):
        """{field: value} of these fields: what a config hands the configs it makes (a
        baseline's, a variant's), so they load the same data."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(DatasetFields)}

    def data(self, batch_size=None, seed=0, augment="none", log=None, strategy=None):
        """The job's data (``batch_size`` None: the data set's), batched at the global batch
        of ``strategy`` (``batch_size`` per replica; the strategy is started if it is not the
        process's yet) or, without one, at ``batch_size`` (the process's strategy kept);
        ``log`` gets the notice of a batch clipped to the training split."""
        if batch_size is None:
            batch_size = dataset_spec(self.dataset, self.image_size).batch_size
        if strategy is not None:
            batch_size = distribute.global_batch(batch_size, strategy)
        return load_data(self.dataset, batch_size=batch_size,
                         seed=seed, data_dir=self.data_dir, augment=augment,
                         split_seed=self.split_seed, image_size=self.image_size, log=log,
                         sequence_length=self.sequence_length, vocabulary=self.vocabulary,
                         vocabulary_size=self.vocabulary_size)


@dataclasses.dataclass
class BatchFields:
    batch_size: int = option(
        None, "Batch size per replica (default: the data set's, 32 for digits, 128 for 28x28 "
        "data).", lower=1)


@dataclasses.dataclass
class SeedFields:
    seed: int = option(0, "Random seed for initialization, shuffling and augmentation.",
                       lower=0)
    augment: str = option(
        "auto", "Training augmentation: {choices}; auto = the data set's default for "
        "convolutional models (digits/mnist: 1-pixel shifts, cifar: crop and flip), none for "
        "mlp.", choices=lambda: ["auto"] + AUGMENTATIONS.names())


@dataclasses.dataclass
class ModelFields:
    model: str = option("cnn", "Model from the zoo: {choices}.", choices=MODELS)


@dataclasses.dataclass
class DeviceFields:
    strategy: str = option(
        "default", "{choices}. default: one device; mirrored: every local GPU (or every "
        "logical CPU device) in sync; multi_worker: several processes or machines, as "
        "TF_CONFIG describes (docs/scale.md). --batch_size is per replica.", choices=STRATEGIES)
    mixed_precision: bool = option(
        False, "Train and fine-tune under the mixed_float16 policy (float16 compute, float32 "
        "weights; a speed-up on GPUs with tensor cores, slower on CPU). Saved models, and so "
        ".tflite files, stay float32.")


@dataclasses.dataclass
class DeterministicFields:
    deterministic: bool = option(True, "Deterministic TensorFlow ops (reproducible runs).")


@dataclasses.dataclass
class FineTuneFields:
    fine_tune_epochs: int = option(
        None, "Fine-tuning epochs under pruning (default: the data set's, digits 15, 28x28 "
        "data 3); 0 prunes once to the target with no fine-tuning (one-shot: weight, unit, "
        "channel).", lower=0)
    learning_rate: float = option(3e-3, "Fine-tuning learning rate (Adam, cosine decay).",
                                  validator=checks.check_positive)


def _part(name, options, fields, defaults=None):
    """A config part whose fields are ``fields`` of the pruning library's options dataclass
    ``options``, declared there once (their help, default and allowed values), with
    ``defaults`` where the job's differs (and says why)."""
    declared = {f.name: f for f in dataclasses.fields(options)}
    return dataclasses.make_dataclass(name, [
        (n, declared[n].type, dataclasses.field(
            default=(defaults or {}).get(n, declared[n].default),
            metadata=declared[n].metadata)) for n in fields], namespace={
                "__doc__": f"The fields {', '.join(fields)} of {options.__name__}.",
                "__module__": __name__, "declared_in": options})


# The prune job's default target is 0.9 (weight pruning to 90%, its headline figure); the
# library's (ScheduleOptions) is 0.5, a target every method reaches.
ScheduleFields = _part("ScheduleFields", ScheduleOptions,
                       ("schedule", "target_sparsity", "begin_step", "end_step", "frequency",
                        "initial_sparsity", "ramp_fraction"), {"target_sparsity": 0.9})
LayerFields = _part("LayerFields", LayerOptions,
                    ("layers", "prune_classifier", "prune_first_conv"))
MByNFields = _part("MByNFields", LayerOptions, ("sparsity_m_by_n",))
# Every option ChannelOptions adds to the schedule's: a new one is a flag and a field at once.
ChannelFields = _part("ChannelFields", ChannelOptions, tuple(
    f.name for f in dataclasses.fields(ChannelOptions)
    if f.name not in {g.name for g in dataclasses.fields(ScheduleOptions)}))
# The latency target's deployment target, for jobs that give latency targets as a list (the
# sweep's variants, the tuner's search space).
LatencyFields = _part("LatencyFields", ChannelOptions,
                      ("latency_quantization", "latency_threads", "latency_xnnpack"))

# How a compression stage after pruning trains (compression/stages.py), for the jobs that run
# stages: the sweep's variants.
StageFields = _part("StageFields", StageOptions,
                    tuple(f.name for f in dataclasses.fields(StageOptions)))


def stage_options(config):
    """A config's StageFields values as the StageOptions compress_model takes."""
    return StageOptions(**{f.name: getattr(config, f.name)
                           for f in dataclasses.fields(StageOptions)})


def latency_fields(config):
    """A config's LatencyFields values, as the prune job's fields of the same names."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(LatencyFields)}


@dataclasses.dataclass
class MeasureFields:
    representative_count: int = option(200, "Training examples (images, or token ids) for int8 "
                                      "calibration.", lower=1)
    num_threads: int = option(1, "Interpreter threads for the latency measurement.", lower=1)
    latency_runs: int = option(200, "Timed invocations per .tflite.", lower=1)


@dataclasses.dataclass
class MixedFields:
    """The mixed int4/int8 quantization's target, for a config that also has
    ``quantizations``: ``mixed_spec`` is the MixedSpec they choose (checked on construction)."""

    mixed_budget_kb: float = option(
        None, "quantization 'mixed': the largest .tflite in KB (1024 B); the least important "
        "layers go int4 until it fits. Not with --mixed_int4_fraction.")
    mixed_int4_fraction: float = option(
        None, "quantization 'mixed': the share of the weights at int4, in [0, 1], least "
        "important layers first (default 0.5 when no budget is given).")

    def mixed_spec(self):
        return mixed_lib.spec_for(self.quantizations, self.mixed_budget_kb,
                                  self.mixed_int4_fraction, MIXED_NAMES)


def field_defaults(part):
    """((field, default), ...) of a part: what 'left at its default' means for its options."""
    return tuple((f.name, f.default) for f in dataclasses.fields(part))
