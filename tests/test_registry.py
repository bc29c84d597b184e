import pytest

from tfprune.errors import TfpruneError, UnknownNameError
from tfprune.registry import Registry


def test_register_get_and_names():
    reg = Registry("colour")
    reg.register("red", 1)

    @reg.register("blue")
    def blue():
        return 2

    reg.register("none", None)
    assert reg.get("red") == 1 and reg.get("blue") is blue and reg.get("none") is None
    assert reg.names() == ["blue", "none", "red"] and "red" in reg and len(reg) == 3


def test_unknown_name_lists_choices():
    reg = Registry("colour")
    reg.register("red", 1)
    reg.register("blue", 2)
    with pytest.raises(UnknownNameError, match=r"unknown colour 'green'; registered: blue, red"):
        reg.get("green")
    with pytest.raises(TfpruneError):  # scripts catch TfpruneError
        reg.validate("green")


def test_duplicate_registration_refused():
    reg = Registry("colour")
    reg.register("red", 1)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("red", 2)


def test_validate_list():
    reg = Registry("colour")
    reg.register("red", 1)
    reg.register("blue", 2)
    assert reg.validate_list("colours", ["red", "blue", "red"]) == ("red", "blue")
    with pytest.raises(TfpruneError, match="`colours` must not be empty; choose from blue, red"):
        reg.validate_list("colours", [])
    with pytest.raises(UnknownNameError, match="unknown colour 'green'"):
        reg.validate_list("colours", ["red", "green"])


def test_lazy_entries_load_on_first_get():
    reg = Registry("codec")
    reg.register_lazy("b64", "base64:b64encode")
    reg.register_lazy("join", "os:path.join")
    assert reg.names() == ["b64", "join"] and "b64" in reg and reg.validate("b64") == "b64"
    import base64
    import os

    assert reg.get("b64") is base64.b64encode and reg.get("join") is os.path.join
    assert reg.entries() == [base64.b64encode, os.path.join]
    with pytest.raises(ValueError, match="a lazy entry is 'module:attribute', got 'base64'"):
        reg.register_lazy("bad", "base64")
    with pytest.raises(UnknownNameError, match="unknown codec 'rot13'; registered: b64, join"):
        reg.validate("rot13")
    # Nothing but get imports: an entry whose module does not exist is listed, found and
    # validated; only get fails.
    missing = Registry("codec")
    missing.register_lazy("nowhere", "tfprune_no_such_module:x")
    assert missing.names() == ["nowhere"] and "nowhere" in missing
    assert missing.validate("nowhere") == "nowhere"
    assert missing.validate_list("codecs", ["nowhere"]) == ("nowhere",)
    with pytest.raises(ModuleNotFoundError, match="tfprune_no_such_module"):
        missing.get("nowhere")
