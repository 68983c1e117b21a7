"""Tests of the installed `limn` package (run by tests/package/run.sh in a fresh virtual environment
with torch, numpy and pytest only). Model files and photos come from the CTest fixtures, named by
the environment: LIMN_TEST_FIXTURES, LIMN_PARITY_CASES, LIMN_DETECT_CASES, LIMN_BIN_DIR."""
import os

import numpy as np
import pytest


def _dir(var: str) -> str:
    path = os.environ.get(var, "")
    if not path or not os.path.isdir(path):
        pytest.fail(f"{var} is not set: run these tests through ctest (test python_package)")
    return path


@pytest.fixture(scope="session")
def fixtures() -> str:
    return _dir("LIMN_TEST_FIXTURES")


@pytest.fixture(scope="session")
def parity() -> str:
    return _dir("LIMN_PARITY_CASES")


@pytest.fixture(scope="session")
def detect_cases() -> str:
    path = os.environ.get("LIMN_DETECT_CASES", "")
    if not path:
        pytest.fail("LIMN_DETECT_CASES is not set: run these tests through ctest (test python_package)")
    if not os.path.isfile(os.path.join(path, "cases.txt")):
        pytest.skip(f"no RetinaFace detection cases in {path}: they need the published weights, "
                    "../shared/data/retinaface-mobilenet0.25.pth, which this checkout lacks")
    return path


@pytest.fixture(scope="session")
def bin_dir() -> str:
    return _dir("LIMN_BIN_DIR")


@pytest.fixture(scope="session")
def astronaut(parity) -> np.ndarray:
    """scikit-image's astronaut portrait (public domain), 512 x 512 RGB."""
    raw = np.fromfile(os.path.join(parity, "astronaut.512x512.rgb"), dtype=np.uint8)
    return raw.reshape(512, 512, 3)
