"""Registries for named choices: datasets, models, methods, schedules, quantization modes.

An entry may be lazy (``register_lazy(name, "module:attribute")``): the name is known, listed
and validated at once, and the module is imported on the first ``get``. So a registry whose
objects need TensorFlow can live where the scripts' flags and the job configs read its names
without importing TensorFlow."""

import importlib

from tfprune.errors import TfpruneError, UnknownNameError


_DECORATE = object()


class _Lazy:
    """A registered "module:attribute" (the attribute may be dotted), loaded on first use."""

    def __init__(self, reference):
        module, _, attribute = reference.partition(":")
        if not module or not attribute:
            raise ValueError(f"a lazy entry is 'module:attribute', got {reference!r}")
        self.module, self.attribute = module, attribute

    def load(self):
        obj = importlib.import_module(self.module)
        for part in self.attribute.split("."):
            obj = getattr(obj, part)
        return obj


class Registry:
    """A name -> object mapping whose unknown-name error lists what is registered.

    >>> models = Registry("model")
    >>> @models.register("mlp")
    ... def build_mlp(...): ...
    """

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, name, obj=_DECORATE):
        """Register ``obj`` under ``name``; without ``obj``, return a decorator."""
        if obj is _DECORATE:
            return lambda o: self.register(name, o)
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[name] = obj
        return obj

    def register_lazy(self, name, reference):
        """Register ``reference`` ("module:attribute") under ``name``; imported on first get."""
        self.register(name, _Lazy(reference))

    def get(self, name):
        try:
            obj = self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}"
            ) from None
        if isinstance(obj, _Lazy):
            obj = self._entries[name] = obj.load()
        return obj

    def validate(self, name):
        """Return ``name`` if registered, else raise the unknown-name error (a lazy entry is
        not loaded)."""
        if name not in self:
            self.get(name)
        return name

    def validate_list(self, argument, names):
        """``names`` without duplicates (order kept), each registered, at least one."""
        names = tuple(dict.fromkeys(names))
        if not names:
            raise TfpruneError(f"`{argument}` must not be empty; choose from "
                               f"{', '.join(self.names())}")
        for name in names:
            self.validate(name)
        return names

    def names(self):
        return sorted(self._entries)

    def entries(self):
        """The registered objects, in the order they were registered (lazy ones loaded)."""
        return [self.get(name) for name in self._entries]

    def __contains__(self, name):
        try:
            return name in self._entries
        except TypeError:  # an unhashable value is no name
            return False

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self._entries)
