"""The key server's API fuzzed from its OpenAPI description (schemathesis, fuzz/api.py)
against a real ``keyserver serve`` process on SQLite: a short fixed run (the fuzzing phase,
a few examples per operation, as an admin and as a carer); longer runs with every phase and
caller via ``make fuzz``. Every response must be a documented status and never a 5xx."""

from __future__ import annotations

import pytest

from fuzz.api import run


def test_every_answer_is_documented_and_never_a_server_error(tmp_path):
    pytest.importorskip("schemathesis", reason="schemathesis is not installed")
    results = run(5, tmp_path, seed=1, callers=("admin", "carer"), phases="fuzzing")
    for r in results:
        assert r["ok"], f"{r['caller']}:\n{r['output'][-6000:]}"
    generated = {r["caller"]: r["requests"] for r in results if r["caller"] != "server log"}
    print(f"schemathesis: {generated} generated test cases")
    assert all(n >= 100 for n in generated.values()), generated   # every operation was exercised
