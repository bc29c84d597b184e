"""The export job's config: ``ExportConfig`` (validated on construction); ``MIXED_NAMES``, the
names of the mixed quantization's options as the jobs' errors give them, and ``MixedFields``,
the MixedSpec of a config that has them (export, sweep, tune)."""

import dataclasses

from tfprune import checks
from tfprune.data import check_dataset
from tfprune.tflite import mixed as mixed_lib
from tfprune.tflite.quantizations import validate_quantizations


MIXED_NAMES = ("mixed_budget_kb", "mixed_int4_fraction")  # its options, as errors name them


class MixedFields:
    """For a job config with the fields quantizations, mixed_budget_kb and mixed_int4_fraction:
    the MixedSpec they choose (checked: configs call it on construction)."""

    def mixed_spec(self):
        return mixed_lib.spec_for(self.quantizations, self.mixed_budget_kb,
                                  self.mixed_int4_fraction, MIXED_NAMES)


@dataclasses.dataclass
class ExportConfig(MixedFields):
    model_path: str = None
    dataset: str = "digits"
    data_dir: str = None
    split_seed: int = 0
    quantizations: tuple = ("float32", "float16", "dynamic", "int8")
    sparse: bool = False          # also write the EXPERIMENTAL_SPARSITY-encoded variants
    representative_count: int = 200
    num_threads: int = 1
    latency_runs: int = 200
    warmup: int = 20
    image_size: tuple = None      # folder: data sets only
    # "mixed": the largest .tflite in KB (1024 B), or the int4 share of the weights (default
    # 0.5 when neither is given); not both.
    mixed_budget_kb: float = None
    mixed_int4_fraction: float = None

    def __post_init__(self):
        self.image_size = check_dataset(self.dataset, self.image_size)
        self.quantizations = tuple(validate_quantizations(self.quantizations))
        self.mixed_spec()
        for name, minimum in (("representative_count", 1), ("num_threads", 1),
                              ("latency_runs", 1), ("warmup", 0), ("split_seed", 0)):
            checks.check_int(name, getattr(self, name), minimum)
        checks.check_file("model_path", self.model_path, "a saved Keras model file")

    def to_dict(self):
        return dataclasses.asdict(self)
