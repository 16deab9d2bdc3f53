"""Memory of idle pre-forked labs: start N labs forked from one parent, let them idle, and
measure every process's proportional share (PSS), private pages (USS) and RSS.

Run from the checkout, as root: ``.venv/bin/python bench/idle_labs.py [--labs 50]``.

Each lab is a real one: started by the local backend as its own uid (no host account is
needed: the launcher only sets ids) in its own cgroup (0.5 CPU, 512 MiB), with a private
/tmp, against a stand-in for the hub's API (tests/support/platform.py: hub_api_stub). The
parent is the platform's pre-forked server of the shared test environment.

What 400 labs would need is extrapolated from the measured N, not guessed: the memory of N
labs and their parent is the sum of every process's private pages plus the shared pages
once (sum of PSS = sum of USS + shared, each shared page counted once); 400 labs add 400 x
the median private pages of an idle lab to the same shared pages. ``--labs 400`` starts
them for real (it refuses if the machine's available memory cannot hold the estimate).

Everything started (labs, cgroups, the parent, files) is stopped and removed at the end, also
on Ctrl-C or an error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from sciplat.labs.local.backend import LocalBackend  # noqa: E402
from sciplat.labs.local.storage import cgroups  # noqa: E402
from sciplat.labs.local.storage.prefork import PreforkServers  # noqa: E402
from sciplat.labs.models import LabState  # noqa: E402
from tests.support.platform import (  # noqa: E402
    TEST_STORAGE,
    hub_api_stub,
    lab_environment,
    random_suffix,
    remove_test_cgroups,
    standalone_lab_spec,
)

MB = 1024 * 1024
UID_BASE = 4_200_000
READY_DEADLINE = 300.0  # s for one lab to answer on a loaded machine
#: Stop starting labs when the machine has less than this available (it is shared).
RESERVE = 3 * 1024 * MB
#: A first guess per idle lab (measured ~30 MB private), to refuse a count that cannot fit.
GUESS = 40 * MB
TARGET = 400  # labs the issue asks about
MACHINE = 24 * 1024 * MB


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rollup(pid: int) -> dict[str, int]:
    """smaps_rollup of ``pid`` in bytes: Rss, Pss, Private (USS) and Shared."""
    out = {"rss": 0, "pss": 0, "uss": 0, "shared": 0}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, _, rest = line.partition(":")
            if not rest.strip().endswith("kB"):
                continue
            value = int(rest.split()[0]) * 1024
            if key == "Rss":
                out["rss"] = value
            elif key == "Pss":
                out["pss"] = value
            elif key in ("Private_Clean", "Private_Dirty"):
                out["uss"] += value
            elif key in ("Shared_Clean", "Shared_Dirty"):
                out["shared"] += value
    return out


async def answers(url: str, client: httpx.AsyncClient) -> bool:
    try:
        return (await client.get(url, timeout=10)).status_code == 200
    except httpx.HTTPError:
        return False


class Bench:
    def __init__(self, n: int, concurrency: int) -> None:
        self.n = n
        self.concurrency = concurrency
        self.run_id = random_suffix()
        self.root = TEST_STORAGE / f"{self.run_id}"
        self.root.mkdir(parents=True, mode=0o755)
        (self.root / "logs").mkdir(mode=0o700)
        driver = cgroups.detect(f"sciplat-test-{self.run_id}")
        if driver is None:
            raise SystemExit("no writable cgroup hierarchy: run as root on a cgroup host")
        self.prefork = PreforkServers(self.root / "run" / "prefork", self.root / "logs" / "pf")
        self.backend = LocalBackend(driver, prefork=self.prefork)
        self.states: list[LabState] = []
        self.start_seconds: list[float] = []
        self.not_forked = 0
        self.give_up = float("inf")
        self.stopped = ""

    async def start_all(self, env: Path, api: str) -> None:
        gate = asyncio.Semaphore(self.concurrency)
        async with httpx.AsyncClient() as client:

            async def one(i: int) -> None:
                async with gate:
                    if available() < RESERVE:
                        self.stopped = f"less than {RESERVE // MB} MB left for other work"
                    elif time.monotonic() > self.give_up:
                        self.stopped = "out of time (--max-seconds)"
                    if self.stopped:
                        return
                    name = f"idle{i}"
                    spec = standalone_lab_spec(
                        env, self.root, name, UID_BASE + i, api, secrets.token_hex(24)
                    )
                    t0 = time.monotonic()
                    state = await self.backend.start(spec, lambda *_: None)
                    self.states.append(state)
                    self.not_forked += state.extra.get("started_by") != "pre-forked"
                    url = f"http://127.0.0.1:{spec.port}/user/{name}/api"
                    while not await answers(url, client):
                        if time.monotonic() - t0 > READY_DEADLINE:
                            raise RuntimeError(f"lab {name} did not answer ({spec.log_path})")
                        await asyncio.sleep(0.02)
                    self.start_seconds.append(time.monotonic() - t0)
                    if len(self.start_seconds) % 10 == 0:
                        log(f"{len(self.start_seconds)}/{self.n} labs answering")

            await asyncio.gather(*(one(i) for i in range(self.n)))

    async def stop_all(self) -> None:
        for state in self.states:
            with contextlib.suppress(Exception):
                await self.backend.stop(state, now=True)

    def cleanup(self) -> None:
        asyncio.run(self.stop_all())
        driver = self.backend.cgroups
        for i in range(self.n):  # also labs whose start was cut short
            if driver is not None and driver.exists(f"idle{i}"):
                driver.kill_all(f"idle{i}")
                driver.remove(f"idle{i}")
        self.prefork.stop_all()
        shutil.rmtree(self.root, ignore_errors=True)
        remove_test_cgroups(self.run_id)


def measure(bench: Bench, parent: int) -> dict[str, Any]:
    labs = [rollup(s.pid) for s in bench.states]
    mother = rollup(parent)
    pss = [m["pss"] for m in labs]
    uss = [m["uss"] for m in labs]
    total_pss = sum(pss) + mother["pss"]
    shared_once = total_pss - sum(uss) - mother["uss"]
    estimate = mother["uss"] + shared_once + TARGET * statistics.median(uss)
    return {
        "labs": len(labs),
        "pss_per_lab_median_mb": statistics.median(pss) / MB,
        "pss_per_lab_max_mb": max(pss) / MB,
        "uss_per_lab_median_mb": statistics.median(uss) / MB,
        "rss_per_lab_median_mb": statistics.median(m["rss"] for m in labs) / MB,
        "parent_pss_mb": mother["pss"] / MB,
        "parent_rss_mb": mother["rss"] / MB,
        "total_pss_mb": total_pss / MB,
        "shared_pages_once_mb": shared_once / MB,
        f"estimate_{TARGET}_labs_mb": estimate / MB,
        "start_p50_s": statistics.median(bench.start_seconds),
        "start_max_s": max(bench.start_seconds),
        "started_plain": bench.not_forked,
    }


def available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--labs", type=int, default=50, help="idle labs to start")
    ap.add_argument("--concurrency", type=int, default=4, help="labs starting at once")
    ap.add_argument("--settle", type=float, default=20.0, help="seconds idle before measuring")
    ap.add_argument("--json", help="also write the numbers to this file")
    ap.add_argument(
        "--max-seconds", type=float, default=1800, help="give up starting labs after this"
    )
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("bench/idle_labs.py needs root (labs run as their uids in cgroups)", file=sys.stderr)
        return 2
    if args.labs * GUESS + RESERVE > available():
        print(f"{args.labs} labs may not fit in {available() // MB} MB available", file=sys.stderr)
        return 2
    env = lab_environment()
    bench = Bench(args.labs, args.concurrency)
    bench.give_up = time.monotonic() + args.max_seconds

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    t0 = time.monotonic()
    try:
        log(f"starting the parent for {env}")
        if not bench.prefork.wait_ready(env, 300):
            print("the pre-forked server did not start; see its log", file=sys.stderr)
            return 1
        parent = next(pid for pid, _ in bench.prefork.parents())
        with hub_api_stub() as api:
            log(f"starting {args.labs} labs, {args.concurrency} at a time")
            asyncio.run(bench.start_all(env, api))
            if bench.stopped:
                log(f"stopped at {len(bench.start_seconds)} labs: {bench.stopped}")
            log(f"{len(bench.start_seconds)} answering; idle {args.settle:.0f} s")
            time.sleep(args.settle)
            result = measure(bench, parent)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        log("stopping every lab, the parent, and removing files and cgroups")
        bench.cleanup()
    load = os.getloadavg()
    result |= {"loadavg": load, "seconds": time.monotonic() - t0, "env": str(env)}
    est = result[f"estimate_{TARGET}_labs_mb"]
    loads = "/".join(f"{x:.1f}" for x in load)
    print(f"\n{result['labs']} idle pre-forked labs (one parent), after {args.settle:.0f} s idle; "
          f"load average {loads}, {os.cpu_count()} CPUs\n")  # fmt: skip
    for key, value in result.items():
        if key.endswith(("_mb", "_s")):
            print(f"  {key:<28} {value:10.1f}")
    print(f"  {'started the plain way':<28} {result['started_plain']:10d}")
    print(f"\n  {TARGET} idle labs: {est / 1024:.1f} GiB of {MACHINE / 1024**3:.0f} GiB "
          f"({'fits' if est * MB < MACHINE else 'does NOT fit'})")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
