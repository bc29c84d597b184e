"""One declaration per option: ``option(default, help, ...)`` declares a config field's default,
its help and what it allows, once, as dataclass field metadata. Made from the declarations:

- the commands' flags and so their ``--help`` / ``--helpfull`` (tfprune/cli/common.py:
  ``define_command_flags``; a list option is a comma-separated flag);
- the options reference, docs/options.md (tfprune/cli/reference.py; a test fails when it is
  stale);
- the field's own checks when a config is built (``check_declared``: integer bounds and the
  allowed names), before anything trains.

A field's help may name its choices with ``{choices}``; ``choices`` is a tuple, a Registry, or
a function returning names (read when asked, so names registered later count). Imports nothing
heavy: job configs and the pruning options declare their fields with it before TensorFlow.
"""

import dataclasses

from tfprune import checks


@dataclasses.dataclass(frozen=True)
class Option:
    """What one field declares besides its default (see ``option``)."""

    help: str
    choices: object = None
    lower: float = None
    upper: float = None
    items: type = str
    flag: object = None
    validator: object = None
    enforce: bool = True

    def names(self):
        """The allowed names (None when any value of the field's type is allowed)."""
        if self.choices is None:
            return None
        choices = self.choices() if callable(self.choices) else self.choices
        return list(choices.names() if hasattr(choices, "names") else choices)

    def text(self):
        """The help (a function's answer, when it is one), with ``{choices}`` filled in."""
        text = self.help() if callable(self.help) else self.help
        names = self.names()
        return text.format(choices=", ".join(names)) if names else text


def option(default, help, *, choices=None, lower=None, upper=None, items=str, flag=None,
           validator=None, enforce=True):
    """A dataclass field declared once.

    ``choices``: the allowed names (tuple, Registry, or a function returning either); ``lower``
    / ``upper``: inclusive bounds of a number (an int field below ``lower`` is refused on
    construction, with checks.check_int's words); ``items``: the type of a tuple field's
    items (its flag is a comma-separated list); ``flag``: the flag's name when it differs from
    the field's, or False for a field set only from Python; ``validator(name, value)``: a
    check (checks.check_positive, for one)
    that raises TfpruneError, run on the flag's value and on construction. ``help`` may be a
    function returning the text (read when the flags are made). ``enforce=False``: the choices
    are the flag's, but whether the field applies (and so is checked) is the config's to say.
    """
    return dataclasses.field(default=default, metadata={"option": Option(
        help, choices, lower, upper, items, flag, validator, enforce)})


def declared(config):
    """[(dataclasses.Field, Option)] of a config class or instance, in field order."""
    return [(f, f.metadata["option"]) for f in dataclasses.fields(config)
            if "option" in f.metadata]


def flag_name(field, declaration):
    return declaration.flag or field.name


def defaults(config):
    """{field: default} of the declared fields."""
    return {f.name: f.default for f, _ in declared(config)}


def check_declared(config):
    """Each declared field of ``config`` (None: unset, not checked) against its declaration:
    an int field's ``lower`` bound, the allowed names (of a tuple field: each item), the
    validator."""
    for field, declaration in declared(config):
        value = getattr(config, field.name)
        if value is None:
            continue
        if field.type is int and declaration.lower is not None:
            checks.check_int(field.name, value, declaration.lower)
        names = declaration.names() if declaration.enforce else None
        if names is not None:
            choices = declaration.choices
            for item in (value if field.type is tuple else (value,)):
                if hasattr(choices, "validate"):  # a Registry: its unknown-name error
                    choices.validate(item)
                else:
                    checks.check_choice(field.name, item, names)
        if declaration.validator is not None:
            declaration.validator(field.name, value)


def asked(config):
    """{field: value} of every dataclass field as it is now (before a config resolves them)."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}


def changed(before, config):
    """{field: asked value} of the fields resolving changed: what a run records beside
    the resolved values, so it says what was asked and what it became."""
    return {name: value for name, value in before.items()
            if _plain(value) != _plain(getattr(config, name))}


def _plain(value):
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value
