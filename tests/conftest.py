import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))


# ---- firmware under the real MicroPython (tests/test_fw_*.py) ----

MPY_DIR = TESTS / "mpy"


@pytest.fixture(scope="session")
def fw():
    """One live MicroPython interpreter with the firmware harness (tests/mpy/fwtest.py)."""
    import mpyhost

    # The harness (JSON plumbing, whole scenarios per call) needs more heap than the
    # firmware does; the firmware's own bound is tested at 64k (test_fw_heap.py).
    worker = mpyhost.Worker(["fwtest"], paths=[MPY_DIR], heapsize="1m")
    try:
        yield worker
    finally:
        worker.close()
