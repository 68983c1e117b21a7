"""Shared pytest set-up: models/ on sys.path; where the built binaries are (from CTest)."""
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))


@pytest.fixture
def bin_dir() -> str:
    """The build's binaries folder ($LIMN_BIN_DIR, set by CTest)."""
    path = os.environ.get("LIMN_BIN_DIR", "")
    if not path or not os.path.isdir(path):
        pytest.skip("LIMN_BIN_DIR is not set: run through ctest to test the built binaries")
    return path


def pytest_configure(config):
    config.addinivalue_line("markers", "compiles: runs fetch's compile step for this CPU (for real: minutes)")
