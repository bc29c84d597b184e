"""Offline stand-in for @rules_proto: Bazel 4.2's own tools load these names from it, and the real
repository would be downloaded. Each is Bazel's native rule of the same name."""

def proto_library(**kwargs):
    native.proto_library(**kwargs)

def proto_lang_toolchain(**kwargs):
    native.proto_lang_toolchain(**kwargs)
