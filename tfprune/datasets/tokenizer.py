"""The word-level tokenizer of the text data sets: what turns texts into the int32 token ids a text
model takes, fitted on the training split only (or read from a vocabulary file the user gives),
and saved with a run (``tokenizer.json``) so the deployed model can be fed the same ids.

Words: the text lowercased, split on everything that is not a letter or a digit (Unicode-aware:
``[^\\W_]+``). Ids: 0 padding, 1 unknown word, 2 separator (between the two texts of a pair), then
the vocabulary. Fitted: the most frequent words of the training split, ties in alphabetical
order, up to ``vocabulary_size`` ids in all (the three reserved ones included). A vocabulary
file: one word per line (lowercased; empty lines skipped), ids 3, 4, ... in file order.

A sequence is ``sequence_length`` ids: padded with 0 at the end, or truncated at the end; a pair
is the first text, the separator, the second text, the longer text shortened first. Pure Python
and NumPy: configs import this module before TensorFlow.
"""

import collections
import dataclasses
import json
import os
import re

import numpy as np

from tfprune import checks, io
from tfprune.errors import TfpruneError

PAD, UNKNOWN, SEPARATOR = 0, 1, 2
RESERVED = ("<pad>", "<unk>", "<sep>")  # the tokens of ids 0, 1, 2
SEQUENCE_LENGTH = 64  # the default: 90% of the fortunes quotations fit whole (median 18 words)
VOCABULARY_SIZE = 20000  # the default fitted vocabulary, reserved ids included
FORMAT = "tfprune word tokenizer"
_WORD = re.compile(r"[^\W_]+")


def words(text):
    """The words of ``text``: lowercased, split on everything but letters and digits."""
    return _WORD.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class TextOptions:
    """How a text data set is tokenized: the options a text loader is given (DatasetFields'
    sequence_length, vocabulary and vocabulary_size)."""

    sequence_length: int = SEQUENCE_LENGTH
    vocabulary: str = None  # a file of one token per line; None: fitted on the training split
    vocabulary_size: int = VOCABULARY_SIZE

    def __post_init__(self):
        checks.check_int("sequence_length", self.sequence_length, 1)
        checks.check_int("vocabulary_size", self.vocabulary_size, len(RESERVED) + 1)
        if self.vocabulary is not None:
            check_vocabulary_file("vocabulary", self.vocabulary)

    def tokenizer(self, train_texts):
        """The tokenizer: read from the vocabulary file, or fitted on ``train_texts``."""
        if self.vocabulary is not None:
            return Tokenizer.from_file(self.vocabulary, self.sequence_length)
        return Tokenizer.fit(train_texts, self.vocabulary_size, self.sequence_length)


def check_vocabulary_file(name, path):
    """``path`` names an existing file (the declaration's validator and TextOptions')."""
    return checks.check_file(name, path, "a vocabulary file (one token per line)")


@dataclasses.dataclass(frozen=True)
class Tokenizer:
    """Words to ids: ``tokens[i]`` is the token of id i (ids 0-2 reserved)."""

    tokens: tuple = dataclasses.field(repr=False)
    sequence_length: int = SEQUENCE_LENGTH
    source: str = "fitted"

    def __post_init__(self):
        checks.check_int("sequence_length", self.sequence_length, 1)
        if tuple(self.tokens[:len(RESERVED)]) != RESERVED:
            raise TfpruneError(f"a tokenizer's first tokens must be {', '.join(RESERVED)}, got "
                               f"{', '.join(map(repr, self.tokens[:len(RESERVED)]))}")
        object.__setattr__(self, "_ids", {t: i for i, t in enumerate(self.tokens)})

    @property
    def vocabulary_size(self):
        return len(self.tokens)

    @classmethod
    def fit(cls, texts, vocabulary_size=VOCABULARY_SIZE, sequence_length=SEQUENCE_LENGTH):
        """The most frequent words of ``texts`` (strings, or pairs of strings), ties in
        alphabetical order, up to ``vocabulary_size`` ids with the reserved ones."""
        checks.check_int("vocabulary_size", vocabulary_size, len(RESERVED) + 1)
        counts = collections.Counter()
        for text in texts:
            for part in _parts(text):
                counts.update(words(part))
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        kept = ranked[:vocabulary_size - len(RESERVED)]
        return cls(RESERVED + tuple(kept), sequence_length,
                   f"fitted on the training split: its {len(kept)} most frequent words (of "
                   f"{len(ranked)}; vocabulary_size {vocabulary_size})")

    @classmethod
    def from_file(cls, path, sequence_length=SEQUENCE_LENGTH):
        """The tokens of a vocabulary file, one per line (lowercased; empty lines skipped),
        ids from 3 in file order."""
        check_vocabulary_file("vocabulary", path)
        try:
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise TfpruneError(f"`vocabulary` {path!r} is not a readable UTF-8 text file: "
                               f"{err}") from None
        seen = {}
        for number, line in enumerate(lines, 1):
            token = line.strip().lower()
            if not token:
                continue
            if not _WORD.fullmatch(token):
                raise TfpruneError(
                    f"`vocabulary` {path!r} line {number}: {line.strip()!r} is not a word the "
                    "tokenizer makes (letters and digits only; one token per line)")
            if token in seen:
                raise TfpruneError(f"`vocabulary` {path!r} line {number}: {token!r} repeats "
                                   f"line {seen[token]}")
            seen[token] = number
        if not seen:
            raise TfpruneError(f"`vocabulary` {path!r} holds no tokens (one per line)")
        return cls(RESERVED + tuple(seen), sequence_length, f"vocabulary file {path}")

    def ids(self, text):
        """The ids of one text's words (unknown words: 1), neither padded nor truncated."""
        get = self._ids.get
        return [get(w, UNKNOWN) for w in words(text)]

    def encode(self, texts):
        """int32 (N, sequence_length) ids of ``texts``: strings, or (first, second) pairs
        (first text, separator, second text; the longer shortened first). Padded with 0 at
        the end, truncated at the end."""
        if isinstance(texts, str):
            raise TfpruneError("`texts` must be a list of strings (or of pairs), got one string")
        length = self.sequence_length
        out = np.zeros((len(texts), length), np.int32)
        for row, text in enumerate(texts):
            parts = _parts(text)
            if len(parts) == 1:
                ids = self.ids(parts[0])[:length]
            else:
                first, second = self.ids(parts[0]), self.ids(parts[1])
                while len(first) + len(second) + 1 > length and (first or second):
                    (first if len(first) > len(second) else second).pop()
                ids = (first + [SEPARATOR] + second)[:length]
            out[row, :len(ids)] = ids
        return out

    def to_dict(self):
        return {"format": FORMAT, "version": 1, "lowercase": True, "word": _WORD.pattern,
                "sequence_length": self.sequence_length, "padding": "0, at the end",
                "truncation": "at the end; a pair's longer text first",
                "pad_id": PAD, "unknown_id": UNKNOWN, "separator_id": SEPARATOR,
                "source": self.source, "vocabulary_size": self.vocabulary_size,
                "tokens": list(self.tokens)}

    def save(self, path):
        """Write the tokenizer as JSON (what ``load`` reads): a run's tokenizer.json."""
        io.write_json(os.fspath(path), self.to_dict())

    @classmethod
    def load(cls, path):
        """The tokenizer ``save`` wrote."""
        path = os.fspath(path)
        try:
            with open(path, encoding="utf-8") as f:
                content = json.load(f)
        except (OSError, ValueError) as err:
            raise TfpruneError(f"{path!r} is not a readable tokenizer.json: {err}") from None
        if not isinstance(content, dict) or content.get("format") != FORMAT:
            raise TfpruneError(f"{path!r} is not a tokenizer.json written by tfprune (its "
                               f"\"format\" must be {FORMAT!r})")
        try:
            return cls(tuple(content["tokens"]), int(content["sequence_length"]),
                       content.get("source", "loaded"))
        except (KeyError, TypeError, ValueError) as err:
            raise TfpruneError(f"{path!r}: a damaged tokenizer.json ({err})") from None


def _parts(text):
    """(text,) or (first, second): one example's texts."""
    if isinstance(text, str):
        return (text,)
    if isinstance(text, (tuple, list)) and len(text) == 2 and all(isinstance(t, str) for t in text):
        return tuple(text)
    raise TfpruneError(f"a text example must be a string or a pair of strings, got {text!r}")
