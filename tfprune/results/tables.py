"""Tables: CSV and Markdown writing, aggregation over seeds and Pareto fronts. Files are written
atomically."""

import csv
import io as _io

import numpy as np

from tfprune import io
from tfprune.results import rows as rows_lib


def write_csv(path, rows, columns=None):
    """Rows (dicts) as CSV; columns default to the keys of the first row, in order."""
    columns = columns or (list(rows[0]) if rows else [])
    buffer = _io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(row.get(k)) for k in columns})
    io.write_text(path, buffer.getvalue())
    return path


def _csv_value(value):
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    if isinstance(value, dict):
        return " ".join(f"{k}={_csv_value(v)}" for k, v in value.items())
    return "" if value is None else value


def markdown_table(rows, columns, formats=None):
    """A GitHub Markdown table; ``formats`` maps a column to a format spec or a callable."""
    formats = formats or {}

    def cell(column, value):
        spec = formats.get(column)
        if value is None:
            return ""
        if callable(spec):
            return spec(value)
        if spec and isinstance(value, (int, float)) and not isinstance(value, bool):
            return format(value, spec)
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(cell(c, row.get(c)) for c in columns) + " |")
    return "\n".join(lines) + "\n"


def aggregate(rows, method_order=(), quantization_order=()):
    """Mean and (population) standard deviation over seeds for each variant and quantization,
    dense first, then in the given method and quantization order. A column missing in some seed
    (e.g. latency not yet measured) is None."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row.get(k) for k in rows_lib.KEY), []).append(row)
    result = []
    for key, members in groups.items():
        entry = dict(zip(rows_lib.KEY, key))
        entry["seeds"] = len(members)
        for column in rows_lib.AGGREGATED:
            values = [m.get(column) for m in members]
            if any(v is None for v in values):
                entry[column] = entry[column + "_std"] = None
                continue
            values = np.array(values, dtype=float)
            entry[column] = float(values.mean())
            entry[column + "_std"] = float(values.std())
        entry.update({column: members[0].get(column) for column in rows_lib.CARRIED})
        result.append(entry)
    methods = [rows_lib.DENSE] + list(method_order)
    quants = list(quantization_order)

    def position(values, value):
        return values.index(value) if value in values else len(values)

    return sorted(result, key=lambda e: (
        position(methods, e["method"]), e["method"], e["schedule"],
        -1.0 if e["target_sparsity"] is None else e["target_sparsity"],
        e.get("target_latency") or "",
        position(quants, e["quantization"]), e["quantization"]))


def pareto_front(entries, cost):
    """Entries not dominated in (lower ``cost``, higher tflite_accuracy); entries without a
    ``cost`` are left out."""
    front, best = [], -1.0
    measured = [e for e in entries if e.get(cost) is not None]
    for entry in sorted(measured, key=lambda e: (e[cost], -e["tflite_accuracy"])):
        if entry["tflite_accuracy"] > best:
            front.append(entry)
            best = entry["tflite_accuracy"]
    return front
