"""Text data on small files the tests write: the word tokenizer, tsv: and glue: (GLUE-format
files), the fortunes corpus (a fake one; the real one where it is installed), the bag-of-words
baseline, and the one-line errors of bad input. Nothing trains."""

import json
import os

import numpy as np
import pytest

from tfprune import data as data_lib
from tfprune.datasets import fortunes, text, tokenizer
from tfprune.datasets.base import Splits
from tfprune.datasets.tokenizer import PAD, SEPARATOR, UNKNOWN, TextOptions, Tokenizer
from tfprune.errors import DatasetNotAvailableError, TfpruneError
from tfprune.models import build_model

TOPICS = {"cats": "cat purr whisker meow", "dogs": "dog bark fetch woof",
          "fish": "fish swim fin bubble"}


def write_tsv(path, header, rows):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(str(v) for v in row) + "\n")
    return str(path)


def topic_rows(count=60, names=False):
    """(sentence, label) rows: a topic's words and a word of the example's own (unique<i>)."""
    topics = sorted(TOPICS)
    return [(f"{TOPICS[topics[i % 3]]} unique{i}", topics[i % 3] if names else i % 3)
            for i in range(count)]


# --- the tokenizer ----------------------------------------------------------------------------

def test_tokenizer_fits_the_most_frequent_words_and_pads_truncates_and_separates():
    tok = Tokenizer.fit(["b b a", "c b a", "Z z"], vocabulary_size=6, sequence_length=4)
    assert tok.tokens == ("<pad>", "<unk>", "<sep>", "b", "a", "z")  # ties: alphabetical
    assert tok.encode(["a b", "b a c zz a b"]).tolist() == [[4, 3, PAD, PAD], [3, 4, UNKNOWN, 1]]
    assert tok.encode(["A,b!"]).dtype == np.int32 and tok.encode(["A,b!"])[0, :2].tolist() == [4, 3]
    # a pair: first, separator, second; the longer text shortened first
    assert tok.encode([("a b b b b", "z")]).tolist() == [[4, 3, SEPARATOR, 5]]
    assert tok.encode([("a", "b")]).tolist() == [[4, SEPARATOR, 3, PAD]]
    with pytest.raises(TfpruneError, match="a list of strings"):
        tok.encode("a b")


def test_tokenizer_round_trips_through_its_file(tmp_path):
    tok = Tokenizer.fit(["the cat", "the dog"], sequence_length=5)
    tok.save(tmp_path / "tokenizer.json")
    again = Tokenizer.load(tmp_path / "tokenizer.json")
    assert again == tok and again.sequence_length == 5
    np.testing.assert_array_equal(again.encode(["the dog ran"]), tok.encode(["the dog ran"]))
    saved = json.loads((tmp_path / "tokenizer.json").read_text())
    assert saved["pad_id"] == 0 and saved["unknown_id"] == 1 and saved["separator_id"] == 2
    (tmp_path / "other.json").write_text('{"tokens": []}')
    with pytest.raises(TfpruneError, match="not a tokenizer.json written by tfprune"):
        Tokenizer.load(tmp_path / "other.json")


def test_a_vocabulary_file_gives_ids_from_3_in_file_order(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("Dog\n\ncat\n")
    tok = TextOptions(sequence_length=3, vocabulary=str(path)).tokenizer(["ignored words"])
    assert tok.tokens == ("<pad>", "<unk>", "<sep>", "dog", "cat")
    assert tok.encode(["cat bird dog"]).tolist() == [[4, UNKNOWN, 3]]
    path.write_text("dog\ncat\ndog\n")
    with pytest.raises(TfpruneError, match=r"line 3: 'dog' repeats line 1"):
        Tokenizer.from_file(str(path))
    path.write_text("dog\n##ing\n")
    with pytest.raises(TfpruneError, match=r"line 2: '##ing' is not a word the tokenizer makes"):
        Tokenizer.from_file(str(path))
    path.write_text("\n\n")
    with pytest.raises(TfpruneError, match="holds no tokens"):
        Tokenizer.from_file(str(path))


def test_bad_sequence_length_and_missing_vocabulary_are_one_line_errors(tmp_path):
    path = write_tsv(tmp_path / "a.tsv", ["sentence", "label"], topic_rows())
    with pytest.raises(TfpruneError, match=r"`sequence_length` must be an integer >= 1, got 0"):
        data_lib.load_data(f"tsv:{path}", sequence_length=0)
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(TfpruneError, match=r"`vocabulary` must be a vocabulary file \(one token "
                                           r"per line\), got '.*nope.txt', which is not a file"):
        data_lib.load_data(f"tsv:{path}", vocabulary=missing)
    from tfprune.jobs.configs.train import TrainConfig

    for fields, message in (({"vocabulary": missing}, "which is not a file"),
                            ({"sequence_length": 0}, "`sequence_length` must be an integer >= 1"),
                            ({"vocabulary_size": 3}, "`vocabulary_size` must be an integer >= 4")):
        with pytest.raises(TfpruneError, match=message) as caught:
            TrainConfig(dataset=f"tsv:{path}", model="mlp", **fields)
        assert "\n" not in str(caught.value)


# --- tsv: and glue: ---------------------------------------------------------------------------

def test_tsv_sentences_split_stratified_and_seeded_tokenized_on_train_only(tmp_path):
    path = write_tsv(tmp_path / "sst.tsv", ["sentence", "label"], topic_rows(100))
    data = data_lib.load_data(f"tsv:{path}", batch_size=8, sequence_length=6, split_seed=3)
    assert data.input_shape == (6,) and data.num_classes == 3 and data.kind == "text"
    assert data.sizes == {"train": 70, "validation": 10, "test": 20}
    x, y = data.numpy("test")
    assert x.dtype == np.int32 and x.shape == (20, 6) and y.dtype == np.int64
    assert sorted(np.bincount(y).tolist()) == [6, 7, 7]  # stratified
    assert data.representative_sample(5).dtype == np.int32
    # fitted on the training split alone: a word only test examples have is unknown
    vocabulary = set(data.tokenizer.tokens)
    assert all(f"unique{i}" not in vocabulary for t in data.texts("test")
               for i in [int(t.split("unique")[1])])
    assert all(t.split()[-1] in vocabulary for t in data.texts("train"))
    # the words of each text are its ids, in the order numpy gives them
    np.testing.assert_array_equal(data.tokenizer.encode(data.texts("test")), x)
    again = data_lib.load_data(f"tsv:{path}", sequence_length=6, split_seed=3)
    assert again.texts("test") == data.texts("test")
    other = data_lib.load_data(f"tsv:{path}", sequence_length=6, split_seed=4)
    assert other.texts("test") != data.texts("test")
    with pytest.raises(TfpruneError, match="augmentation 'shift' is for images"):
        data_lib.load_data(f"tsv:{path}", augment="shift")


def test_tsv_label_names_are_classes_in_sorted_order(tmp_path):
    path = write_tsv(tmp_path / "names.tsv", ["id", "label", "sentence"],
                     [(i, label, sentence) for i, (sentence, label)
                      in enumerate(topic_rows(60, names=True))])
    spec = data_lib.dataset_spec(f"tsv:{path}")
    assert spec.kind == "text" and spec.class_names == ("cats", "dogs", "fish")
    data = data_lib.load_data(f"tsv:{path}")
    assert data.class_names == ("cats", "dogs", "fish") and data.num_classes == 3
    texts, labels = data.texts("train"), data.numpy("train")[1]
    assert all(sorted(TOPICS)[label] == {v: k for k, v in TOPICS.items()}[
        " ".join(t.split()[:4])] for t, label in zip(texts, labels))


def test_tsv_pairs_are_one_sequence_with_a_separator(tmp_path):
    rows = [(i, i, i + 1, f"what is {TOPICS['cats']}", f"how {i % 2} is it", i % 2)
            for i in range(40)]
    path = write_tsv(tmp_path / "qqp.tsv",
                     ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"], rows)
    data = data_lib.load_data(f"tsv:{path}", sequence_length=12)
    first, second = data.texts("train")[0]
    assert first.startswith("what is") and second.startswith("how")
    ids = data.tokenizer.encode([(first, second)])[0].tolist()
    assert ids[6] == SEPARATOR and min(ids[7:11]) > PAD and ids[11:] == [PAD]  # 6, sep, 4
    assert data.numpy("train")[0][0].tolist() == ids


def test_glue_dir_dev_is_the_test_split_and_validation_comes_from_train(tmp_path):
    write_tsv(tmp_path / "train.tsv", ["sentence", "label"], topic_rows(90, names=True))
    write_tsv(tmp_path / "dev.tsv", ["sentence", "label"], topic_rows(12, names=True))
    data = data_lib.load_data(f"glue:{tmp_path}")
    assert data.sizes == {"train": 81, "validation": 9, "test": 12}
    assert data.texts("test") == [s for s, _ in topic_rows(12)]
    assert data.class_names == ("cats", "dogs", "fish")
    write_tsv(tmp_path / "dev.tsv", ["sentence", "label"], [("a bird", "birds"), ("x", "cats")])
    with pytest.raises(TfpruneError, match=r"dev.tsv: label\(s\) 'birds' not in the training "
                                           r"labels \('cats', 'dogs', 'fish'\)"):
        data_lib.dataset_spec(f"glue:{tmp_path}")
    os.remove(tmp_path / "dev.tsv")
    with pytest.raises(TfpruneError, match="needs train.tsv and dev.tsv; missing dev.tsv"):
        data_lib.dataset_spec(f"glue:{tmp_path}")


@pytest.mark.parametrize("header, rows, message", [
    (["text", "score"], [("a", 1)],
     r"has columns text, score; it needs a text column \(question1 \+ question2 or sentence1 \+ "
     r"sentence2 or question \+ sentence or sentence\) and a label column \(label or "
     r"is_duplicate or gold_label\)"),
    (["sentence", "label"], [("a", 0.5), ("b", 1)],
     r"label '0.5' \(example 1\) is a number but not a class id \(an integer >= 0\); labels "
     r"must be class ids .* or class names"),
    (["sentence", "label"], [("a", -1), ("b", 1)], r"label '-1' \(example 1\) is a number"),
    (["sentence", "label"], [("a", "pos"), ("b", 1)],
     r"labels mix class ids \('1'\) and names \('pos'\)"),
    (["sentence", "label"], [("a", "")], "example 1 has no label"),
    (["sentence", "label"], [], "has a header row but no examples"),
    (["sentence", "label", "id"], [("a", 1, 0), ("b",)],
     r"line 3 has 1 field\(s\); the columns sentence, label need 2"),
])
def test_bad_tsv_files_are_one_line_errors(tmp_path, header, rows, message):
    path = write_tsv(tmp_path / "bad.tsv", header, rows)
    with pytest.raises(TfpruneError, match=message) as caught:
        data_lib.load_data(f"tsv:{path}")
    assert "\n" not in str(caught.value) and "bad.tsv" in str(caught.value)


def test_empty_or_missing_tsv_files_are_one_line_errors(tmp_path):
    (tmp_path / "empty.tsv").write_text("\n \n")
    with pytest.raises(TfpruneError, match=r"empty.tsv' is empty: a TSV file needs a header row"):
        data_lib.dataset_spec(f"tsv:{tmp_path / 'empty.tsv'}")
    with pytest.raises(TfpruneError, match="names no file"):
        data_lib.dataset_spec(f"tsv:{tmp_path / 'none.tsv'}")
    with pytest.raises(TfpruneError, match="needs a path after the colon"):
        data_lib.dataset_spec("tsv:")
    assert data_lib.check_dataset_name("dataset", "glue:anything") == "glue:anything"


def test_the_zoo_image_models_refuse_text_data(tmp_path):
    path = write_tsv(tmp_path / "a.tsv", ["sentence", "label"], topic_rows())
    with pytest.raises(TfpruneError, match="model 'cnn' takes images, and dataset 'fortunes' is "
                                           "text .*the zoo's image models need image data"):
        build_model("cnn", (64,), 5, dataset="fortunes")
    from tfprune.jobs.configs.prune import PruneConfig
    from tfprune.jobs.configs.train import TrainConfig

    for config in (TrainConfig, PruneConfig):
        with pytest.raises(TfpruneError, match=f"model 'mlp' takes images, and dataset "
                                               f"'tsv:{path}' is text"):
            config(dataset=f"tsv:{path}", model="mlp")


def test_from_tokens_checks_its_arrays():
    tok = Tokenizer.fit(["a b"], sequence_length=3)
    ok = np.zeros((2, 3), np.int32), np.array([0, 1])
    with pytest.raises(TfpruneError, match="tokenizer's sequence_length is 3"):
        Splits.from_tokens(np.zeros((2, 4), np.int32), ok[1], *ok, *ok, tokenizer=tok,
                           num_classes=2)
    with pytest.raises(TfpruneError, match=r"token ids must be in \[0, 5\)"):
        Splits.from_tokens(np.full((2, 3), 9), ok[1], *ok, *ok, tokenizer=tok, num_classes=2)


def test_the_run_files_a_text_data_set_keeps(tmp_path):
    path = write_tsv(tmp_path / "a.tsv", ["sentence", "label"], topic_rows())
    data = data_lib.load_data(f"tsv:{path}", sequence_length=7)
    assert data.save_tokenizer(str(tmp_path)) == "tokenizer.json"
    assert Tokenizer.load(tmp_path / "tokenizer.json") == data.tokenizer
    assert data_lib.load_data("digits").save_tokenizer(str(tmp_path / "none")) is None


def test_bag_of_words_baseline_on_the_same_splits(tmp_path):
    path = write_tsv(tmp_path / "a.tsv", ["sentence", "label"], topic_rows(90))
    result = text.bag_of_words_baseline(data_lib.load_data(f"tsv:{path}"))
    assert result["test_accuracy"] == 1.0 and result["classes"] == 3
    assert result["sizes"] == {"train": 63, "validation": 9, "test": 18}
    with pytest.raises(TfpruneError, match="needs text data"):
        text.bag_of_words_baseline(data_lib.load_data("digits"))


# --- fortunes ---------------------------------------------------------------------------------

def fake_fortunes(directory):
    """Three category files (one too small), a duplicate within one and one across two, and the
    files a real installation also holds that are not categories."""
    os.makedirs(directory / "off")
    quotes = {"people": [f"Person {i} said {TOPICS['cats']}.\n\t\t-- Someone" for i in range(30)],
              "science": [f"Science {i}: {TOPICS['fish']}" for i in range(30)],
              "tiny": ["Just one."]}
    quotes["people"].append(quotes["people"][0])  # twice in one category: kept once
    quotes["people"].append("Filed twice.")
    quotes["science"].append("Filed   twice.")  # in two categories: dropped
    for name, texts in quotes.items():
        (directory / name).write_text("\n%\n".join(texts) + "\n%\n")
    (directory / "people.dat").write_bytes(b"\x00\x01")
    (directory / "off" / "insults").write_text("No.\n%\n")
    os.symlink(directory / "people", directory / "people.u8")
    os.symlink(directory / "people", directory / "alias")
    return directory


def test_fortunes_categories_quotations_and_splits(tmp_path, monkeypatch):
    monkeypatch.setattr(fortunes, "SYSTEM_DIR", str(tmp_path / "system"))
    with pytest.raises(DatasetNotAvailableError, match="make data"):
        fortunes.locate()
    fake_fortunes(tmp_path / "fortunes")
    texts, labels, classes, info = fortunes.read(str(tmp_path), min_examples=20)
    assert classes == ("people", "science") and info["categories"] == {
        "people": 30, "science": 30, "tiny": 1}
    assert info["duplicates_dropped"] == 1 and "Filed twice." not in texts
    assert texts[0] == "Person 0 said cat purr whisker meow.\n\t\t-- Someone"
    assert np.bincount(labels).tolist() == [30, 30]
    monkeypatch.setattr(fortunes, "MIN_EXAMPLES", 20)
    data = data_lib.load_data("fortunes", data_dir=str(tmp_path), sequence_length=16)
    assert data.class_names == ("people", "science") and data.num_classes == 2
    assert data.sizes == {"train": 42, "validation": 6, "test": 12}
    assert np.bincount(data.numpy("test")[1]).tolist() == [6, 6]
    with pytest.raises(DatasetNotAvailableError, match="has 0 categories with at least 31 "
                                                       "quotations .*people 30.*; it needs 2"):
        fortunes.read(str(tmp_path), min_examples=31)


@pytest.mark.skipif(not os.path.isdir(fortunes.SYSTEM_DIR),
                    reason=f"{fortunes.SYSTEM_DIR} is not here: Debian's fortunes package is not "
                           "installed (`make data` installs it)")
def test_the_installed_fortunes_corpus():
    data = data_lib.load_data("fortunes")
    assert data.num_classes >= 10 and len(data.class_names) == data.num_classes
    assert sum(data.sizes.values()) >= data.num_classes * fortunes.MIN_EXAMPLES
    assert data.input_shape == (tokenizer.SEQUENCE_LENGTH,)
    assert data.tokenizer.vocabulary_size == tokenizer.VOCABULARY_SIZE
    counts = np.bincount(data.numpy("test")[1])
    assert counts.min() >= 0.2 * fortunes.MIN_EXAMPLES - 1  # stratified
