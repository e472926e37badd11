"""A fixed short coverage-guided fuzz run (atheris) of every target in fuzz/targets.py:
the firmware's decoders and session under CPython and lockproto's decoders. Longer runs:
``make fuzz``. A crash, an exception other than the protocol's typed error, an
actuation or an accepted forgery fails the test with the fuzzer's log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.__main__ import main as fuzz_main
from fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parent.parent
SECONDS = 18  # all targets in one process ("every"): one start-up, then 18 s of fuzzing


def test_every_target_runs_clean_for_a_fixed_time(tmp_path, capsys):
    pytest.importorskip("atheris", reason="atheris (libFuzzer for CPython) is not installed")
    rc = fuzz_main(["every", "--seconds", str(SECONDS), "--artifacts", str(tmp_path / "artifacts"), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    (r,) = json.loads(out.strip().splitlines()[-1])
    print(f"fuzz: {r['executions']} executions in {SECONDS} s, coverage {r['coverage']}, "
          f"corpus per target {r['corpus_per_target']}")
    assert r["executions"] > 1000, r              # it really ran under the fuzzer
    assert r["coverage"] > 200, r                 # instrumented: coverage-guided, not blind
    # inputs the fuzzer found (new coverage, seeds not counted), in the session targets too
    found = r["corpus_per_target"]
    assert sum(found.values()) > 50 and found.get("fw_session_authed", 0) > 5, found
    assert not list((tmp_path / "artifacts").glob("*crash*"))


# inputs the fuzzer once flagged, replayed as they are (docs/security.md, "Runs recorded")
RECORDED = {
    # a genuine ack whose chain is not the lock's: the lock's RESULT says BAD_MAC, which the
    # harness first mistook for the phone calling a genuine answer forged
    "fw_session_authed": "021000011300cb2dcb00cb1101007e000000000003",
}


def test_recorded_inputs_replay_clean():
    for name, hexdata in RECORDED.items():
        TARGETS[name](bytes.fromhex(hexdata))


def test_a_broken_invariant_is_reported_with_its_input(tmp_path):
    """The harness is not blind: a planted crash in a copy of a target is found and kept."""
    pytest.importorskip("atheris", reason="atheris (libFuzzer for CPython) is not installed")
    script = tmp_path / "planted.py"
    script.write_text(
        "import sys, atheris\n"
        "with atheris.instrument_imports():\n"
        "    from fuzz import targets\n"
        "def t(data):\n"
        "    targets.fw_wire(data)\n"
        "    if len(data) > 3 and data[0] == 0x02 and data[1] == 0x01:\n"
        "        raise RuntimeError('planted')\n"
        "atheris.Setup(sys.argv, t)\n"
        "atheris.Fuzz()\n")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "seed").write_bytes(b"\x01\x02\x00\x00\x00")
    p = subprocess.run([sys.executable, str(script), "-max_total_time=20", f"-artifact_prefix={tmp_path}/",
                        str(corpus)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert p.returncode != 0, p.stderr[-2000:]
    assert "RuntimeError: planted" in p.stderr + p.stdout, p.stderr[-2000:]
    crashes = list(tmp_path.glob("crash-*"))
    assert crashes and crashes[0].read_bytes()[:2] == b"\x02\x01"
