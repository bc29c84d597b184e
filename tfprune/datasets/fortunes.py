"""``fortunes``: the English quotations of Debian's ``fortunes`` package (``apt-get install
fortunes``; `make data` runs it), a topic classification task: which category file a Debian
maintainer filed a quotation under.

A category file under /usr/share/games/fortunes/ holds quotations separated by lines holding only
``%``; the .dat index files, the .u8 copies, symbolic links, hidden files and subfolders (the
offensive ones of fortunes-off) are left out. Each quotation is kept whole (its attribution line
too), with its whitespace as written. Duplicates are removed first: a quotation filed twice in one
category is kept once; one filed under several categories is dropped (its label is ambiguous, and
a copy in the test split would be seen in training). The classes are the categories left with at
least ``MIN_EXAMPLES`` quotations, in sorted order; the splits are cut as for npz data (a
stratified, seeded 20% test split, then 10% of all the examples for validation).

Looked for in ``--data_dir`` (its ``fortunes/`` subfolder, then the folder itself) and then
/usr/share/games/fortunes/; the first holding category files wins.
"""

import os

import numpy as np

from tfprune.datasets.base import Splits
from tfprune.errors import DatasetNotAvailableError

SYSTEM_DIR = "/usr/share/games/fortunes"
MIN_EXAMPLES = 500  # quotations a category needs to be a class
SEPARATOR = "%"
_SKIPPED = (".dat", ".u8")


def candidates(data_dir=None):
    places = [os.path.join(data_dir, "fortunes"), data_dir] if data_dir else []
    return places + [SYSTEM_DIR]


def category_files(directory):
    """{category: path} of the fortune files in ``directory`` (sorted), or {}."""
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return {}
    return {e.name: e.path for e in entries
            if not e.name.startswith(".") and not e.name.endswith(_SKIPPED)
            and not e.is_symlink() and e.is_file()}


def locate(data_dir=None):
    """(directory, {category: path}) of the first place holding fortune files, or a
    DatasetNotAvailableError naming every place looked at and how to fill one."""
    places = candidates(data_dir)
    for place in places:
        files = category_files(place)
        if files:
            return place, files
    raise DatasetNotAvailableError(
        f"dataset 'fortunes' was not found on this machine. Looked in: {'; '.join(places)}. "
        "Install Debian's fortunes package (`make data` runs `apt-get install fortunes`), or "
        "pass --data_dir=DIR of fortune files (quotations separated by lines holding only %).")


def quotations(path):
    """The quotations of one fortune file (UTF-8, else Latin-1), stripped, empty ones left
    out."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError:
        content = raw.decode("latin-1")
    found, lines = [], []
    for line in content.splitlines() + [SEPARATOR]:
        if line.strip() == SEPARATOR:
            text = "\n".join(lines).strip()
            if text:
                found.append(text)
            lines = []
        else:
            lines.append(line)
    return found


def read(data_dir=None, min_examples=None):
    """(texts, labels, class names, {"directory", "categories": {name: count after removing
    duplicates}, "duplicates_dropped"}): the quotations of the categories with at least
    ``min_examples`` (default MIN_EXAMPLES) of them, labels in sorted category order."""
    min_examples = MIN_EXAMPLES if min_examples is None else min_examples
    directory, files = locate(data_dir)
    filed = {}  # normalised text -> {category: text}
    for category, path in files.items():
        for text in quotations(path):
            filed.setdefault(" ".join(text.split()), {}).setdefault(category, text)
    counts, kept = {}, {}
    for places in filed.values():
        if len(places) == 1:
            (category, text), = places.items()
            kept.setdefault(category, []).append(text)
    for category in files:
        counts[category] = len(kept.get(category, ()))
    classes = tuple(c for c in sorted(kept) if counts[c] >= min_examples)
    if len(classes) < 2:
        raise DatasetNotAvailableError(
            f"dataset 'fortunes': {directory} has {len(classes)} categor"
            f"{'y' if len(classes) == 1 else 'ies'} with at least {min_examples} quotations "
            f"({', '.join(f'{c} {n}' for c, n in counts.items())}); it needs 2")
    texts = [t for c in classes for t in kept[c]]
    labels = np.concatenate([np.full(len(kept[c]), i, np.int64) for i, c in enumerate(classes)])
    info = {"directory": directory, "categories": counts,
            "duplicates_dropped": sum(1 for p in filed.values() if len(p) > 1)}
    return texts, labels, classes, info


def loader(spec, data_dir, validation_fraction, split_seed, text):
    texts, labels, classes, info = read(data_dir)
    return Splits.from_texts(texts, labels, text=text, validation_fraction=validation_fraction,
                             split_seed=split_seed, source=info["directory"],
                             num_classes=len(classes), class_names=classes)
