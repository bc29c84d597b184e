"""Registries for named choices: datasets, models, methods, schedules, quantization modes."""

from tfprune.errors import TfpruneError, UnknownNameError


_DECORATE = object()


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

    def get(self, name):
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}"
            ) from None

    def validate(self, name):
        """Return ``name`` if registered, else raise the unknown-name error."""
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
        """The registered objects, in the order they were registered."""
        return list(self._entries.values())

    def __contains__(self, name):
        return name in self._entries

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self._entries)
