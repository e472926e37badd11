"""One atheris (libFuzzer) process for one target: ``python -m fuzz.harness TARGET [libFuzzer flags]``.

The targets' modules (firmware/lib under CPython, lockproto) are imported inside
``atheris.instrument_imports()`` so the fuzzer is guided by their branch coverage.
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

# coverage of our own code only: the firmware's modules, lockproto and the targets
with atheris.instrument_imports(include=["lockproto", "fuzz", "fakelock"] + sorted(
        p.stem for p in (Path(__file__).resolve().parent.parent / "firmware" / "lib").glob("lock*.py"))):
    from fuzz import targets


def main() -> None:
    name = sys.argv[1]
    fn = targets.every if name == "every" else targets.TARGETS[name]
    atheris.Setup([sys.argv[0]] + sys.argv[2:], fn)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
