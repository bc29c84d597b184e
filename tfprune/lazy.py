"""Loading on first use. ``reexports``: a package's public names imported when first read (PEP
562), so importing the package imports none of its modules. ``tf`` and ``keras``: for the
modules that scripts and job configs import before anything needs TensorFlow (data, models,
distribute, optimizers, tflite.mixed, ...): names that import tfprune.keras, and with it
TensorFlow and tf_keras, on their first attribute access.

A module that takes ``from tfprune.lazy import keras, tf`` uses them only inside functions (a
class deriving from a Keras class, or a module-level constant built from one, would import
TensorFlow with the module); tests/test_experiments_startup.py checks that the flags and
configs of every script import none of it.
"""

import importlib


class LazyModule:
    """Stands for ``tfprune.keras.<name>``; every attribute is read from the real module, loaded
    on the first read and kept. Dunder names are not forwarded (``hasattr(tf, "__wrapped__")``,
    ``copy.copy`` and the like ask the stand-in, not TensorFlow)."""

    def __init__(self, name):
        self._name = name

    def _load(self):
        state = vars(self)
        if "_module" not in state:
            if "_name" not in state:  # built without __init__ (a copy half made)
                raise AttributeError("a LazyModule without a name")
            state["_module"] = getattr(importlib.import_module("tfprune.keras"), state["_name"])
        return state["_module"]

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        return getattr(self._load(), attribute)

    def __dir__(self):
        return dir(self._load())

    def __repr__(self):
        return f"<lazy tfprune.keras.{vars(self).get('_name')}>"


tf = LazyModule("tf")
keras = LazyModule("keras")


def reexports(package, names):
    """``__getattr__`` and ``__dir__`` for ``package`` (its ``globals()``) re-exporting
    ``names`` ({public name: the module that defines it}), each imported on first access."""

    def __getattr__(name):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package['__name__']!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        package[name] = value  # loaded once
        return value

    def __dir__():
        return sorted(set(package) | set(names))

    return __getattr__, __dir__
