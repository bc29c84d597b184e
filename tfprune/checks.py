"""The one set of argument checks. Every config and entry point validates through these, so a
rule has one wording: "`name` must be <rule>, got <value>" (a TfpruneError)."""

from tfprune.errors import TfpruneError


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name, value, minimum):
    """``value`` as an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TfpruneError(f"`{name}` must be an integer >= {minimum}, got {value!r}")
    return value


def check_optional_int(name, value, minimum):
    return None if value is None else check_int(name, value, minimum)


def check_positive(name, value):
    if not _is_number(value) or not value > 0:
        raise TfpruneError(f"`{name}` must be > 0, got {value}")
    return float(value)


def check_non_negative(name, value):
    if not _is_number(value) or not value >= 0:
        raise TfpruneError(f"`{name}` must be >= 0, got {value}")
    return float(value)


def check_optional_positive(name, value):
    return None if value is None else check_positive(name, value)


def clip_to(name, value, limit, what):
    """``value`` capped at ``limit`` (a size the data cannot exceed), and the one-line notice
    saying so, "NAME V is larger than WHAT; using LIMIT" (None when it fits)."""
    if value <= limit:
        return value, None
    return limit, f"{name} {value} is larger than {what}; using {limit}"


def check_sparsity(name, value, allow_zero=True):
    """``value`` as a float in [0, 1) (or (0, 1) without ``allow_zero``)."""
    if not (_is_number(value) and (value >= 0 if allow_zero else value > 0) and value < 1):
        bracket = "[0, 1)" if allow_zero else "(0, 1)"
        raise TfpruneError(f"`{name}` must be in {bracket}, got {value!r}")
    return float(value)


def check_fraction(name, value):
    """``value`` in the open interval (0, 1)."""
    if not _is_number(value) or not 0 < value < 1:
        raise TfpruneError(f"`{name}` must be in (0, 1), got {value!r}")
    return float(value)


def check_unit_interval(name, value):
    """``value`` in [0, 1)."""
    if not _is_number(value) or not 0 <= value < 1:
        raise TfpruneError(f"`{name}` must be in [0, 1), got {value}")
    return float(value)


def check_choice(name, value, choices):
    if value not in choices:
        raise TfpruneError(f"`{name}` must be one of {', '.join(choices)}, got {value!r}")
    return value


def check_not_empty(name, values, hint):
    values = tuple(values)
    if not values:
        raise TfpruneError(f"`{name}` must not be empty; {hint}")
    return values


def check_file(name, path, what):
    """``path`` names an existing file; ``what`` says what it must be."""
    import os

    if not isinstance(path, str) or not os.path.isfile(path):
        raise TfpruneError(f"`{name}` must be {what}, got {path!r}, which is not a file")
    return path


def parse_m_by_n(value):
    """'2:4' or (2, 4) -> (2, 4); None or '' -> None."""
    if value is None or value == "":
        return None
    try:
        m, n = (int(v) for v in (value.split(":") if isinstance(value, str) else value))
    except (TypeError, ValueError):
        raise TfpruneError(f"`sparsity_m_by_n` must look like '2:4' (m zeros in every n), got "
                           f"{value!r}") from None
    if not 0 < m < n:
        raise TfpruneError(f"`sparsity_m_by_n` must have 0 < m < n, got {m}:{n}")
    return (m, n)
