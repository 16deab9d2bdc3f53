"""Notebook jobs: a small notebook's first run through sciplat's jobs service vs plain
``papermill`` in the same invocation, and the latency of a cached re-run.

Run from the checkout as root: ``python bench/jobs.py [--rounds 5] [--cached 50] [--json FILE]``.

- **sciplat first run**: ``POST /api/jobs`` through the proxy with a new parameter value (so
  no stored result matches), then polling ``GET /api/jobs/<id>`` every 20 ms until it is done.
  The job runs as its user, in its own cgroup (the harness's ``tiny`` size: 0.5 CPU, 512 MiB),
  with the test lab environment's kernel.
- **papermill**: ``papermill in.ipynb out.ipynb -p seed N`` as a subprocess of this process
  (as root, no cgroup), with a kernelspec that runs **the same environment's** Python, so both
  start the same kernel. Rounds alternate sciplat, papermill, sciplat, ...
- **cached re-run**: the first notebook and parameters submitted again, ``--cached`` times:
  the time of the ``POST`` that answers with the stored result (``cached: true``).

Numbers are p50 / p90 in milliseconds. The platform is started with the test harness
(``tests/support/platform.py``) and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import nbformat  # noqa: E402

from tests.support.platform import (  # noqa: E402
    free_ports,
    lab_environment,
    running_platform,
    wait_for,
)

CELLS = [
    "seed = 0",
    "import math\ntotal = sum(math.sin(i + seed) for i in range(100_000))",
    "print(f'seed {seed}: {total:.6f}')",
]


def small_notebook() -> dict[str, Any]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in CELLS]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return dict(json.loads(nbformat.writes(nb)))


def percentiles(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return statistics.median(ordered), p90


def papermill_run(workdir: Path, env_python: Path, seed: int) -> float:
    """One papermill run with a kernelspec of the lab environment's Python; seconds."""
    kernels = workdir / "share" / "jupyter" / "kernels" / "labenv"
    if not kernels.exists():
        kernels.mkdir(parents=True)
        spec = {"argv": [str(env_python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "lab env", "language": "python"}  # fmt: skip
        (kernels / "kernel.json").write_text(json.dumps(spec))
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "papermill", str(workdir / "in.ipynb"), str(workdir / "out.ipynb"),
         "-p", "seed", str(seed), "-k", "labenv", "--no-progress-bar", "--log-level", "ERROR"],
        check=True, env={"PATH": "/usr/bin:/bin", "JUPYTER_PATH": str(workdir / "share/jupyter"),
                         "HOME": str(workdir)},
        capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="first runs of each (default 5)")
    parser.add_argument("--cached", type=int, default=50, help="cached re-runs (default 50)")
    parser.add_argument("--json", help="also write the raw numbers here")
    args = parser.parse_args(argv)
    env_python = lab_environment() / "bin" / "python"
    port = free_ports(1)[0]
    sciplat_s: list[float] = []
    papermill_s: list[float] = []
    cached_ms: list[float] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-jobs-") as tmp,
        running_platform(services={"jobs": {"enabled": True, "port": port}}) as p,
    ):
        workdir = Path(tmp)
        nb = small_notebook()
        (workdir / "in.ipynb").write_text(json.dumps(nb))
        token = p.token(p.add_user("bench"))
        client = httpx.Client(base_url=f"{p.url}/api/jobs", timeout=120,
                              headers={"Authorization": f"Bearer {token}"})  # fmt: skip
        wait_for(lambda: client.get("").status_code == 200, 120, 0.3, "the jobs service")

        def sciplat_run(seed: int) -> float:
            t0 = time.perf_counter()
            job = client.post("", json={"notebook": nb, "parameters": {"seed": seed}}).json()
            while job["status"] not in ("done", "failed", "cancelled"):
                time.sleep(0.02)
                job = client.get(f"/{job['id']}").json()
            if job["status"] != "done":
                raise SystemExit(f"the sciplat job failed: {job['error']}")
            return time.perf_counter() - t0

        sciplat_run(-1)  # warm-up (page cache, first use of the environment): not counted
        papermill_run(workdir, env_python, -1)
        for seed in range(args.rounds):
            sciplat_s.append(sciplat_run(seed))
            papermill_s.append(papermill_run(workdir, env_python, seed))
        for _ in range(args.cached):
            t0 = time.perf_counter()
            job = client.post("", json={"notebook": nb, "parameters": {"seed": 0}}).json()
            cached_ms.append((time.perf_counter() - t0) * 1000)
            assert job["cached"], job
        client.close()

    s50, s90 = percentiles([s * 1000 for s in sciplat_s])
    m50, m90 = percentiles([s * 1000 for s in papermill_s])
    c50, c90 = percentiles(cached_ms)
    print(f"{'metric':<34}{'p50 ms':>10}{'p90 ms':>10}")
    print(f"{'first run, sciplat (as the user)':<34}{s50:>10.0f}{s90:>10.0f}")
    print(f"{'first run, plain papermill':<34}{m50:>10.0f}{m90:>10.0f}")
    print(f"{'cached re-run, sciplat':<34}{c50:>10.1f}{c90:>10.1f}")
    print(f"sciplat / papermill first run: {s50 / m50:.2f}; cached / first run: "
          f"1/{s50 / c50:.0f} (target: p50 < 100 ms and at most 1/50)")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"sciplat_s": sciplat_s, "papermill_s": papermill_s, "cached_ms": cached_ms}
        ))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
