"""The quantization names (``QUANTIZATIONS``): what the scripts' flags and the job configs
choose from, without TensorFlow. Each entry is a ``tflite.export.Quantization`` (export.py's
module constant of the upper-cased name), imported on first ``get``."""

from tfprune.registry import Registry

QUANTIZATIONS = Registry("quantization")
for _name in ("float32", "float16", "dynamic", "int8", "int4", "mixed"):
    QUANTIZATIONS.register_lazy(_name, f"tfprune.tflite.export:{_name.upper()}")


def validate_quantizations(quantizations):
    """``quantizations`` as a list, each registered, without repeats, at least one."""
    return list(QUANTIZATIONS.validate_list("quantizations", quantizations))
