"""Text in the GLUE format: ``--dataset=tsv:PATH`` (one tab-separated file with a header row) and
``--dataset=glue:DIR`` (DIR/train.tsv and DIR/dev.tsv, as GLUE ships a task; dev.tsv is the test
split, since GLUE's test labels are hidden). And ``bag_of_words_baseline``: TF-IDF and logistic
regression (scikit-learn) on a text data set's own splits, the baseline a text model is read
against.

Columns (the header names them; others are ignored): the text, one of ``sentence`` (SST-2, CoLA
with a header) or a pair, looked for first (``question1``, ``question2``: QQP; ``sentence1``,
``sentence2``: MRPC, RTE, MNLI; ``question``, ``sentence``: QNLI), and the label, one of ``label``,
``is_duplicate`` or ``gold_label``. A pair is one sequence: first text, the separator id, second
text (tokenizer.py). Labels: integers >= 0 (class ids as they are), or names (every label a name:
the classes are the training file's names in sorted order, kept as class names; a name in dev.tsv
the training file lacks is an error). Fields are read as GLUE's own reader reads them (tabs, no
quoting). A tsv: file is split as npz data is (a stratified, seeded 20% test split, then the
validation split); glue: cuts the validation split from train.tsv.
"""

import csv
import dataclasses
import functools
import io
import os

import numpy as np

from tfprune.datasets.base import DatasetSpec, Splits
from tfprune.errors import TfpruneError

TSV_PREFIX = "tsv:"
GLUE_PREFIX = "glue:"
PREFIXES = (TSV_PREFIX, GLUE_PREFIX)
GLUE_FILES = ("train.tsv", "dev.tsv")
# The first whose columns are all there wins: the pairs before the single sentence (QNLI has
# both question and sentence).
TEXT_COLUMNS = (("question1", "question2"), ("sentence1", "sentence2"), ("question", "sentence"),
                ("sentence",))
LABEL_COLUMNS = ("label", "is_duplicate", "gold_label")


@dataclasses.dataclass(frozen=True)
class Table:
    """One TSV file's examples: ``texts`` (strings, or (first, second) pairs) and their labels
    as written (strings), and which columns they came from."""

    path: str
    texts: tuple
    labels: tuple
    text_columns: tuple
    label_column: str


def _columns_needed():
    texts = " or ".join(" + ".join(c) for c in TEXT_COLUMNS)
    return f"a text column ({texts}) and a label column ({' or '.join(LABEL_COLUMNS)})"


def read_tsv(path):
    """The file's Table (cached by path and modification time); a TfpruneError naming the file
    for a missing, empty or unreadable file, missing columns or a short row."""
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        raise TfpruneError(f"{path!r} names no file (a TSV file with a header row)") from None
    if not os.path.isfile(path):
        raise TfpruneError(f"{path!r} is not a file (a TSV file with a header row)")
    return _read_tsv(path, stamp)


@functools.lru_cache(maxsize=4)
def _read_tsv(path, stamp):
    del stamp  # part of the cache key: a changed file is read again
    try:
        with open(path, "rb") as f:
            content = f.read().decode("utf-8-sig")
    except OSError as err:
        raise TfpruneError(f"{path!r} cannot be read: {err}") from None
    except UnicodeDecodeError as err:
        raise TfpruneError(f"{path!r} is not UTF-8 text: {err}") from None
    if not content.strip():
        raise TfpruneError(f"{path!r} is empty: a TSV file needs a header row "
                           f"({_columns_needed()}) and examples")
    rows = csv.reader(io.StringIO(content), delimiter="\t", quoting=csv.QUOTE_NONE)
    header = [name.strip() for name in next(rows)]
    columns = next((c for c in TEXT_COLUMNS if all(name in header for name in c)), None)
    label = next((c for c in LABEL_COLUMNS if c in header), None)
    if columns is None or label is None:
        raise TfpruneError(f"{path!r} has columns {', '.join(header)}; it needs "
                           f"{_columns_needed()} in its header row")
    where = [header.index(name) for name in columns]
    label_at = header.index(label)
    needed = max(where + [label_at]) + 1
    texts, labels = [], []
    for number, row in enumerate(rows, 2):
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        if len(row) < needed:
            raise TfpruneError(f"{path!r} line {number} has {len(row)} field(s); the columns "
                               f"{', '.join(columns + (label,))} need {needed} (tab-separated)")
        parts = tuple(row[i] for i in where)
        texts.append(parts[0] if len(parts) == 1 else parts)
        labels.append(row[label_at].strip())
    if not texts:
        raise TfpruneError(f"{path!r} has a header row but no examples")
    return Table(path, tuple(texts), tuple(labels), columns, label)


def label_ids(train, others=(), source="labels"):
    """(class ids of ``train`` (int64), [class ids of each of ``others``], class names or
    None): integer labels as they are, or names mapped to their position in the sorted names of
    ``train``. A label neither an integer >= 0 nor a name, names mixed with integers, or a label
    of ``others`` the training labels lack, is a TfpruneError."""
    kinds = {}
    for number, value in enumerate(train, 1):
        kind = _kind(value)
        if kind == "empty":
            raise TfpruneError(f"{source}: example {number} has no label")
        if kind == "number":
            raise TfpruneError(
                f"{source}: label {value!r} (example {number}) is a number but not a class id "
                "(an integer >= 0); labels must be class ids (0, 1, ...) or class names (a "
                "regression target such as STS-B's is not a classification task)")
        kinds.setdefault(kind, value)
    if len(kinds) > 1:
        raise TfpruneError(f"{source}: labels mix class ids ({kinds['integer']!r}) and names "
                           f"({kinds['name']!r}); use one or the other")
    known = sorted(set(train)) if "name" in kinds else None
    where = {name: i for i, name in enumerate(known or ())}
    seen = set(train)

    def ids(values, what):
        unseen = sorted({v for v in values if v not in seen}, key=str)
        if unseen:
            raise TfpruneError(
                f"{what}: label(s) {', '.join(map(repr, unseen[:5]))} not in the training "
                f"labels ({', '.join(map(repr, sorted(seen, key=_order)[:10]))}"
                f"{', ...' if len(seen) > 10 else ''})")
        if known is None:
            return np.asarray([int(v) for v in values], np.int64)
        return np.asarray([where[v] for v in values], np.int64)

    return ids(train, source), [ids(values, what) for what, values in others], \
        None if known is None else tuple(known)


def _kind(value):
    if not value:
        return "empty"
    try:
        return "integer" if int(value) >= 0 else "number"
    except ValueError:
        pass
    try:
        float(value)
        return "number"
    except ValueError:
        return "name"


def _order(value):
    return (0, int(value), "") if _kind(value) == "integer" else (1, 0, value)


def _tables(name):
    """[(split, Table)]: [("all", ...)] for tsv:, [("train", ...), ("test", ...)] for glue:."""
    if name.startswith(TSV_PREFIX):
        return [("all", read_tsv(name[len(TSV_PREFIX):]))]
    directory = name[len(GLUE_PREFIX):]
    if not os.path.isdir(directory):
        raise TfpruneError(f"`dataset` {name} names no directory (one holding "
                           f"{' and '.join(GLUE_FILES)})")
    missing = [f for f in GLUE_FILES if not os.path.isfile(os.path.join(directory, f))]
    if missing:
        raise TfpruneError(f"`dataset` {name}: {directory!r} needs {' and '.join(GLUE_FILES)}; "
                           f"missing {', '.join(missing)}")
    train, dev = (read_tsv(os.path.join(directory, f)) for f in GLUE_FILES)
    if train.text_columns != dev.text_columns:
        raise TfpruneError(f"`dataset` {name}: train.tsv's text is {' + '.join(train.text_columns)}"
                           f", dev.tsv's {' + '.join(dev.text_columns)}; they must match")
    return [("train", train), ("test", dev)]


def _labelled(name):
    """(texts, labels, test texts or None, test labels or None, class names or None)."""
    tables = _tables(name)
    train = tables[0][1]
    others = [(t.path, t.labels) for _, t in tables[1:]]
    labels, other_ids, names = label_ids(train.labels, others, train.path)
    if len(tables) == 1:
        return train.texts, labels, None, None, names
    return train.texts, labels, tables[1][1].texts, other_ids[0], names


def spec(name):
    """The DatasetSpec of ``tsv:PATH`` or ``glue:DIR``: the files read and checked (columns,
    labels), the class count and names taken from them."""
    texts, labels, _, test_labels, names = _labelled(name)
    every = labels if test_labels is None else np.concatenate([labels, test_labels])
    classes = len(names) if names is not None else int(every.max()) + 1
    columns = " + ".join(_tables(name)[0][1].text_columns)
    return DatasetSpec(name=name, input_shape=None, num_classes=classes,
                       description=f"texts ({columns}) from {name.split(':', 1)[1]}",
                       loader=loader, kind="text", class_names=names)


def loader(spec_, data_dir, validation_fraction, split_seed, text):
    del data_dir
    texts, labels, test_texts, test_labels, names = _labelled(spec_.name)
    return Splits.from_texts(texts, labels, test_texts, test_labels, text=text,
                             validation_fraction=validation_fraction, split_seed=split_seed,
                             source=spec_.name, num_classes=spec_.num_classes, class_names=names)


# --- the bag-of-words baseline ---------------------------------------------------------------

BASELINE_C = (1.0, 3.0, 10.0, 30.0, 100.0)  # logistic regression's C, chosen on validation


def bag_of_words_baseline(data, c_values=BASELINE_C):
    """TF-IDF (words and word pairs, sublinear counts) + logistic regression fitted on ``data``'s
    training texts, its C chosen by validation accuracy, scored on the test split: the figure a
    text model is read against. Pairs are joined by a separator word. Returns a dict."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    if data.tokenizer is None:
        raise TfpruneError(f"the bag-of-words baseline needs text data; {data.name!r} is not")
    texts = {name: [t if isinstance(t, str) else f"{t[0]} SEPARATOR {t[1]}"
                    for t in data.texts(name)] for name in ("train", "validation", "test")}
    labels = {name: data.numpy(name)[1] for name in texts}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    features = {"train": vectorizer.fit_transform(texts["train"])}
    for name in ("validation", "test"):
        features[name] = vectorizer.transform(texts[name])
    scores = {}
    for c in c_values:
        model = LogisticRegression(C=c, max_iter=2000)
        model.fit(features["train"], labels["train"])
        scores[c] = (float(model.score(features["validation"], labels["validation"])), model)
    best = max(scores, key=lambda c: scores[c][0])
    return {"dataset": data.name, "classes": data.num_classes, "sizes": dict(data.sizes),
            "features": int(features["train"].shape[1]), "C": best,
            "validation_accuracy": scores[best][0],
            "test_accuracy": float(scores[best][1].score(features["test"], labels["test"])),
            "method": "TF-IDF (1-2 word n-grams, min_df 2, sublinear tf) + logistic regression "
                      f"(C chosen on validation from {', '.join(map(str, c_values))})"}
