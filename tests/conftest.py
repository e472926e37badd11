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


@pytest.fixture
def micropython():
    """Run a script or snippet under the real MicroPython with a heap cap.

    ``micropython(script=path | code=text, heapsize="64k", paths=[...], args=[...])``
    returns an ``mpyhost.Result`` with ``returncode``, ``stdout``, ``stderr``; firmware/lib
    (and tests/mpy) are on the interpreter's path.
    """
    import functools

    import mpyhost

    def run(script=None, *, paths=(), **kw):
        return mpyhost.run(script, paths=[MPY_DIR, *paths], **kw)

    return functools.wraps(mpyhost.run)(run)
