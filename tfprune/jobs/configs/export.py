"""The export job's config: ``ExportConfig`` (validated on construction)."""

import dataclasses

from tfprune import checks
from tfprune.declare import option
from tfprune.jobs.configs.base import JobConfig
from tfprune.jobs.configs.parts import DatasetFields, MeasureFields, MixedFields
from tfprune.tflite.quantizations import QUANTIZATIONS, validate_quantizations


@dataclasses.dataclass
class ExportConfig(JobConfig, MixedFields, MeasureFields, DatasetFields):
    """Evaluated and calibrated on the model's data (the same dataset and split_seed)."""

    model_path: str = option(None, "Saved Keras model (.keras or .h5) to export (required).")
    quantizations: tuple = option(("float32", "float16", "dynamic", "int8"),
                                  "Quantizations, any of: {choices}.", choices=QUANTIZATIONS)
    sparse: bool = option(False, "Also write EXPERIMENTAL_SPARSITY-encoded variants (not of "
                          "int4 and mixed: ai-edge-quantizer has no sparse encoding).")
    warmup: int = option(20, "Untimed invocations before timing.", lower=0)

    def resolve(self):
        self.resolve_dataset()
        self.quantizations = tuple(validate_quantizations(self.quantizations))
        self.mixed_spec()
        checks.check_file("model_path", self.model_path, "a saved Keras model file")
