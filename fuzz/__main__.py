"""``python -m fuzz``: run every fuzz target (or those named) for a fixed time each,
coverage-guided by atheris, and print the executions per target.

Each target runs in its own process (libFuzzer ends its process when the time is up),
starting from the target's seeds plus whatever corpus earlier runs left in
``--corpus`` (default: a fresh temporary directory). A crash or broken invariant
leaves the input in ``--artifacts`` and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from fuzz.targets import TARGETS, seeds, target_of

ROOT = Path(__file__).resolve().parent.parent
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")
_COV = re.compile(r"cov: (\d+)")


def run_target(name: str, seconds: int, corpus: Path, artifacts: Path) -> dict:
    cdir = corpus / name
    cdir.mkdir(parents=True, exist_ok=True)
    for i, s in enumerate(seeds(name)):
        (cdir / f"seed{i}").write_bytes(s)
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "fuzz.harness", name, f"-max_total_time={seconds}",
           f"-artifact_prefix={artifacts}/{name}-", "-max_len=1200", "-rss_limit_mb=1024",
           "-print_final_stats=1", str(cdir)]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120)
    out = p.stderr + p.stdout
    done = _DONE.findall(out)
    execs = int(done[-1][0]) if done else 0
    if not done:  # a crash ends the run before "Done": take the last status line
        execs = max([int(x) for x in re.findall(r"#(\d+)\s", out)] or [0])
    cov = _COV.findall(out)
    crashed = p.returncode != 0
    if name == "every":
        per = {}
        for f in cdir.iterdir():
            if f.name.startswith("seed"):
                continue  # only the inputs the fuzzer found (new coverage) count
            t = target_of(f.read_bytes())
            per[t] = per.get(t, 0) + 1
    return {"target": name, "executions": execs, "seconds": seconds, "coverage": int(cov[-1]) if cov else 0,
            "corpus": len(list(cdir.iterdir())), "crashed": crashed,
            "log": out[-4000:] if crashed else ""} | ({"corpus_per_target": per} if name == "every" else {})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fuzz", description=__doc__.splitlines()[0])
    ap.add_argument("targets", nargs="*",
                    help=f"targets (default all, one process each; 'every': all in one process): {', '.join(TARGETS)}")
    ap.add_argument("--seconds", type=int, default=60, help="per target (default 60)")
    ap.add_argument("--corpus", type=Path, help="corpus directory kept between runs")
    ap.add_argument("--artifacts", type=Path, help="where crashing inputs go (default: fuzz-artifacts/)")
    ap.add_argument("--json", action="store_true", help="print the results as JSON")
    a = ap.parse_args(argv)
    names = a.targets or list(TARGETS)
    bad = [n for n in names if n not in TARGETS and n != "every"]
    if bad:
        print(f"fuzz: unknown target {bad[0]!r} (known: {', '.join(TARGETS)})", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="fuzz-corpus-") as tmp:
        corpus = a.corpus or Path(tmp)
        artifacts = a.artifacts or ROOT / "fuzz-artifacts"
        results = [run_target(n, a.seconds, corpus, artifacts) for n in names]
    if a.json:
        print(json.dumps(results))
    else:
        for r in results:
            print(f"{r['target']:<20} {r['executions']:>10} executions in {r['seconds']} s, "
                  f"coverage {r['coverage']}, corpus {r['corpus']}{'  CRASH' if r['crashed'] else ''}")
        print(f"{'total':<20} {sum(r['executions'] for r in results):>10} executions")
    for r in results:
        if r["crashed"]:
            print(f"fuzz: {r['target']} failed:\n{r['log']}", file=sys.stderr)
    return 1 if any(r["crashed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
