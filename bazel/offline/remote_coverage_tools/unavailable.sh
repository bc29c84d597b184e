#!/bin/sh
echo "bazel coverage is not available: its tools are a download, and tfprune's Bazel set-up is offline (bazel/offline/remote_coverage_tools); use pytest-cov through .venv instead" >&2
exit 1
