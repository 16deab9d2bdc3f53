"""Notebook jobs through the running platform: the hub starts the service, the proxy routes
/api/jobs, jobs run as their users in cgroups, results are cached and survive restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from tests.conftest import needs_root
from tests.support.platform import Platform, free_ports, running_platform, wait_for

pytestmark = [needs_root, pytest.mark.slow]


@pytest.fixture(scope="module")
def jobs_platform() -> Iterator[Platform]:
    port = free_ports(1)[0]
    with running_platform(services={"jobs": {"enabled": True, "port": port}}) as p:
        wait_for(
            lambda: jobs_api(p, "GET", "", "no-token").status_code == 401,
            120, 0.3, "the jobs service behind the proxy",
        )  # fmt: skip
        yield p


def jobs_api(p: Platform, method: str, path: str, token: str, **kw: Any) -> httpx.Response:
    try:
        return httpx.request(
            method, f"{p.url}/api/jobs{path}", headers={"Authorization": f"Bearer {token}"},
            timeout=60, **kw,
        )  # fmt: skip
    except httpx.TransportError:
        return httpx.Response(599)


def notebook(*cells: str, **meta: Any) -> dict[str, Any]:
    """A notebook whose first cell is tagged ``parameters``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata.update(meta)
    return dict(json.loads(nbformat.writes(nb)))


def submit(p: Platform, token: str, **body: Any) -> dict[str, Any]:
    r = jobs_api(p, "POST", "", token, json=body)
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


def wait_done(p: Platform, token: str, job_id: str, timeout: float = 120) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        job = jobs_api(p, "GET", f"/{job_id}", token).json()
        return job if job["status"] in ("done", "failed", "cancelled") else None

    return dict(wait_for(finished, timeout, 0.1, f"job {job_id}"))


def outputs(p: Platform, token: str, job_id: str) -> str:
    r = jobs_api(p, "GET", f"/{job_id}/notebook", token)
    assert r.status_code == 200, r.text
    nb = nbformat.reads(r.text, 4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


WHOAMI = notebook("greeting = 'hi'", "import os\nprint(greeting, os.getuid(), os.environ['HOME'])")


def test_a_job_runs_as_its_user_and_a_repeat_is_served_from_the_cache(
    jobs_platform: Platform,
) -> None:
    p = jobs_platform
    user = p.add_user("runner")
    token = p.token(user)
    job = submit(p, token, notebook=WHOAMI, parameters={"greeting": "hello"})
    assert job["status"] == "queued" and not job["cached"]
    done = wait_done(p, token, job["id"])
    assert done["status"] == "done", done
    assert done["progress"] == "cell 3 of 3"  # the injected parameters cell counts
    assert f"hello {p.uid_of(user)} {p.home_of(user)}" in outputs(p, token, job["id"])
    result = Path(done["result"])
    assert result.is_relative_to(p.home_of(user))
    assert result.stat().st_uid == p.uid_of(user)  # written by the user's own process
    html = jobs_api(p, "GET", f"/{job['id']}/html", token)
    assert html.status_code == 200 and "<html" in html.text and "hello" in html.text

    t0 = time.perf_counter()
    again = submit(p, token, notebook=WHOAMI, parameters={"greeting": "hello"})
    elapsed = time.perf_counter() - t0
    assert again["cached"] and again["status"] == "done"
    assert again["cached_from"] == job["id"] and again["cached_time"] == done["finished"]
    assert again["result"] == done["result"]
    # no kernel: no process was started for it (no log, no job directory of its own)
    assert not (p.data_dir / "logs" / "jobs" / f"{again['id']}.log").exists()
    assert not (result.parent.parent / again["id"]).exists()
    assert elapsed < 2, elapsed

    forced = submit(p, token, notebook=WHOAMI, parameters={"greeting": "hello"}, force=True)
    assert not forced["cached"]
    assert wait_done(p, token, forced["id"])["status"] == "done"


def test_a_changed_cell_parameter_environment_or_input_runs_again(
    jobs_platform: Platform,
) -> None:
    p = jobs_platform
    user = p.add_user("changer")
    token = p.token(user)
    home = p.home_of(user)
    data = home / "data.txt"
    data.write_text("1\n")
    os.chown(data, p.uid_of(user), p.uid_of(user))
    base = notebook("n = 1", "print(n, open('data.txt').read())", sciplat={"inputs": ["data.txt"]})
    (home / "nb.ipynb").write_text(json.dumps(base))
    os.chown(home / "nb.ipynb", p.uid_of(user), p.uid_of(user))

    first = submit(p, token, path="nb.ipynb", parameters={"n": 1})
    assert wait_done(p, token, first["id"])["status"] == "done"
    assert submit(p, token, path="nb.ipynb", parameters={"n": 1})["cached"]

    changed_cell = notebook("n = 1", "print(n + 1, open('data.txt').read())",
                            sciplat={"inputs": ["data.txt"]})  # fmt: skip
    variants = [
        {"notebook": changed_cell, "parameters": {"n": 1}},
        {"path": "nb.ipynb", "parameters": {"n": 2}},
        {"path": "nb.ipynb", "parameters": {"n": 1}, "environment": "weekly-clone"},
    ]
    for body in variants:
        job = submit(p, token, **body)
        assert not job["cached"], body
        assert wait_done(p, token, job["id"])["status"] == "done"
    data.write_text("2\n")
    job = submit(p, token, path="nb.ipynb", parameters={"n": 1})
    assert not job["cached"]
    assert wait_done(p, token, job["id"])["status"] == "done"
    assert "1 2" in outputs(p, token, job["id"])

    # a package the user installed (what `pip install --user` leaves) is imported by the
    # kernel, so it is part of the environment: the same request runs again and sees it
    env = Path(p.config["environments"][0]["path"])
    version = next(env.glob("lib/python3*/site-packages")).parent.name
    site = home / ".local" / "lib" / version / "site-packages"
    (site / "userpkg-1.0.dist-info").mkdir(parents=True)
    (site / "userpkg-1.0.dist-info" / "METADATA").write_text("Name: userpkg\nVersion: 1.0\n")
    (site / "userpkg.py").write_text("VALUE = 'from the user site'\n")
    for path in [home / ".local", *(home / ".local").rglob("*")]:
        os.chown(path, p.uid_of(user), p.uid_of(user))
    user_pkg = notebook("n = 1", "import userpkg\nprint(userpkg.VALUE)")
    job = submit(p, token, notebook=user_pkg, parameters={"n": 1})
    assert wait_done(p, token, job["id"])["status"] == "done"
    assert submit(p, token, notebook=user_pkg, parameters={"n": 1})["cached"]
    (site / "userpkg-1.0.dist-info").rename(site / "userpkg-1.1.dist-info")
    job = submit(p, token, notebook=user_pkg, parameters={"n": 1})
    assert not job["cached"]
    assert wait_done(p, token, job["id"])["status"] == "done"
    assert "from the user site" in outputs(p, token, job["id"])

    # opting out in the metadata: never cached; a failed run is never cached either
    no_cache = notebook("x = 1", "print(x)", sciplat={"cache": False})
    job = submit(p, token, notebook=no_cache)
    wait_done(p, token, job["id"])
    assert not submit(p, token, notebook=no_cache)["cached"]
    failing = notebook("x = 1", "print(x)", "raise ValueError('bad data')")
    job = wait_done(p, token, submit(p, token, notebook=failing)["id"])
    assert job["status"] == "failed"
    # cells are counted in the executed notebook, which has the injected parameters cell
    assert job["error"] == "failed in cell 4: ValueError: bad data"
    assert job["error_source"] == "raise ValueError('bad data')"
    assert not submit(p, token, notebook=failing)["cached"]

    entries = jobs_api(p, "GET", "/cache", token).json()["entries"]
    assert len(entries) >= 5 and all(e["bytes"] > 0 for e in entries)
    key = next(e["key"] for e in entries if e["job"] == first["id"])
    assert jobs_api(p, "DELETE", f"/cache/{key}", token).status_code == 204
    assert not Path(first["result"]).exists()  # its files are deleted with it
    assert key not in {e["key"] for e in jobs_api(p, "GET", "/cache", token).json()["entries"]}
    assert jobs_api(p, "DELETE", f"/cache/{key}", token).status_code == 404


def test_a_job_over_its_memory_limit_fails_with_that_reason(jobs_platform: Platform) -> None:
    p = jobs_platform
    token = p.token(p.add_user("hungry"))
    hog = notebook("mb = 1024", "block = bytearray(mb * 2**20)\nblock[::4096] = b'x' * (mb * 256)")
    job = wait_done(p, token, submit(p, token, notebook=hog, size="tiny")["id"])
    assert job["status"] == "failed"
    assert "out of memory" in job["error"] and "512 MiB (size tiny)" in job["error"], job


def test_a_job_past_its_timeout_is_stopped_with_that_reason(jobs_platform: Platform) -> None:
    p = jobs_platform
    token = p.token(p.add_user("slow"))
    job = wait_done(p, token, submit(p, token, notebook=notebook("import time", "time.sleep(120)"),
                                     timeout=3)["id"])  # fmt: skip
    assert job["status"] == "failed"
    assert "stopped after its timeout of 3 s" in job["error"], job
    assert not job["cached"]
    # nothing of it keeps running: its cgroup is gone
    groups = Path(f"/sys/fs/cgroup/pids/sciplat-test-{p.run_id}")
    assert not list(groups.glob(f"*job-{job['id']}*")), list(groups.iterdir())


def test_other_users_cannot_read_or_cancel_a_job(jobs_platform: Platform) -> None:
    p = jobs_platform
    owner_token = p.token(p.add_user("owner"))
    other_token = p.token(p.add_user("snoop"))
    job = submit(p, owner_token, notebook=notebook("import time", "time.sleep(30)"))
    for method, path in (("GET", ""), ("GET", "/notebook"), ("GET", "/html"), ("DELETE", "")):
        r = jobs_api(p, method, f"/{job['id']}{path}", other_token)
        assert r.status_code == 404, (method, path, r.text)
    assert job["id"] not in {j["id"] for j in jobs_api(p, "GET", "", other_token).json()["jobs"]}
    assert jobs_api(p, "GET", f"/{job['id']}", "not-a-token").status_code == 401
    assert jobs_api(p, "DELETE", f"/{job['id']}", owner_token).status_code == 202
    assert wait_done(p, owner_token, job["id"])["status"] == "cancelled"


def service_pid(p: Platform) -> int | None:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"sciplat.jobs" in cmd and str(p.data_dir).encode() in cmd:
                return int(entry.name)
    return None


def restart_service(p: Platform) -> None:
    """Kill the jobs service hard and wait until the hub has started it again."""
    old = service_pid(p)
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: (pid := service_pid(p)) is not None and pid != old, 90, 0.2,
             "the hub to restart the jobs service")  # fmt: skip
    wait_for(lambda: jobs_api(p, "GET", "", "x").status_code == 401, 60, 0.2, "the service")


def test_jobs_survive_a_restart_of_the_service(jobs_platform: Platform) -> None:
    """With a ``jobs`` quota of 1, a second job waits in the queue; the service is killed:
    the running job is marked failed, the queued one runs after the restart, and finished
    results stay."""
    p = jobs_platform
    group = p.user("serial")  # named for this run, so the harness removes the host group
    p.sciplat("group", "add", group)
    p.config["quotas"] = {"groups": {group: {"jobs": 1}}}
    p.write_config()
    token = p.token(p.add_user("patient", groups=(group,)))
    restart_service(p)  # the service reads the quotas when it starts
    quick = wait_done(p, token, submit(p, token, notebook=notebook("x = 5", "print(x)"))["id"])
    slow = submit(p, token, notebook=notebook("import time", "time.sleep(300)"))
    wait_for(
        lambda: jobs_api(p, "GET", f"/{slow['id']}", token).json()["cells_done"] >= 1,
        120, 0.1, "the slow job to run",
    )  # fmt: skip
    waiting = submit(p, token, notebook=notebook("y = 6", "print(y * 7)"))
    killed = time.time()
    restart_service(p)
    after = jobs_api(p, "GET", f"/{slow['id']}", token).json()
    assert after["status"] == "failed" and "restarted" in after["error"], after
    waited = wait_done(p, token, waiting["id"])
    assert waited["status"] == "done"
    assert waited["started"] > killed  # the quota of 1 held it back while the slow one ran
    assert "42" in outputs(p, token, waiting["id"])
    assert jobs_api(p, "GET", f"/{quick['id']}", token).json()["status"] == "done"
    assert "5" in outputs(p, token, quick["id"])
    assert submit(p, token, notebook=notebook("x = 5", "print(x)"))["cached"]


def test_sciplat_run_and_nbcheck(jobs_platform: Platform, tmp_path: Path) -> None:
    p = jobs_platform
    user = p.add_user("cli")
    uid = p.uid_of(user)
    book = p.home_of(user) / "book"
    book.mkdir()
    (book / "good.ipynb").write_text(json.dumps(notebook("n = 1", "print('n is', n)")))
    (book / "bad.ipynb").write_text(json.dumps(notebook("n = 1", "1 / 0")))
    for path in (book, book / "good.ipynb", book / "bad.ipynb"):
        os.chown(path, uid, uid)

    first = p.sciplat("run", str(book / "good.ipynb"), "-p", "n", "3", "--user", user)
    assert "done: not cached" in first.stdout
    result = first.stdout.split("executed notebook: ")[1].strip()
    assert "n is 3" in Path(result).read_text()
    again = p.sciplat("run", str(book / "good.ipynb"), "-p", "n", "3", "--user", user)
    assert "done: cached (from job" in again.stdout and result in again.stdout
    failed = p.sciplat("run", str(book / "bad.ipynb"), "--user", user, check=False)
    assert failed.returncode == 1 and "ZeroDivisionError" in failed.stderr

    junit = tmp_path / "report.xml"
    check = p.sciplat("nbcheck", str(book), "--user", user, "--junit", str(junit), check=False)
    assert check.returncode == 1, check.stdout + check.stderr
    rows = {line.split()[0]: line for line in check.stdout.splitlines()[1:] if line.strip()}
    assert "PASS" in rows["good.ipynb"] and "FAILED" in rows["bad.ipynb"]
    assert "ZeroDivisionError" in rows["bad.ipynb"] and "cell 3" in rows["bad.ipynb"]
    xml = junit.read_text()
    assert 'tests="2"' in xml and 'failures="1"' in xml and "1 / 0" in xml

    # the same notebooks from a git repository: sent as documents, unchanged ones cached
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "good.ipynb").write_text((book / "good.ipynb").read_text())
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "notebooks"], check=True)
    from_git = p.sciplat("nbcheck", f"file://{repo}", "--user", user)
    assert "1 passed, 0 failed" in from_git.stdout
    assert "yes" in next(ln for ln in from_git.stdout.splitlines() if "good.ipynb" in ln)


def test_the_lab_client_needs_no_configuration(jobs_platform: Platform) -> None:
    from tests.support.kernel import LabKernel

    p = jobs_platform
    user = p.add_user("labuser")
    token = p.token(user)
    p.start_lab(user, token)
    kernel = LabKernel(p.url, user, token)
    try:
        # every lab environment carries the client as one standard-library module
        kernel.run("from sciplat_jobs import JobsClient")
        out = kernel.run(
            "nb = {'cells': [{'cell_type': 'code', 'metadata': {'tags': ['parameters']}, "
            "'source': 'z = 1', 'outputs': [], 'execution_count': None}], 'metadata': {}, "
            "'nbformat': 4, 'nbformat_minor': 5}\n"
            "c = JobsClient()\n"
            "job = c.run(notebook=nb, parameters={'z': 2})\n"
            "print(job['status'], job['cached'], c.run(notebook=nb, parameters={'z': 2})['cached'])"
        )
    finally:
        kernel.close()
        p.stop_lab(user, token)
    assert out.strip() == "done False True", out


def test_sciplat_down_stops_a_running_job(jobs_platform: Platform) -> None:
    """Last in this module: it takes the platform down."""
    p = jobs_platform
    token = p.token(p.add_user("downed"))
    job = submit(p, token, notebook=notebook("import time", "time.sleep(300)"), timeout=600)
    wait_for(lambda: jobs_api(p, "GET", f"/{job['id']}", token).json()["status"] == "running",
             60, 0.2, "the job to run")  # fmt: skip
    groups = Path(f"/sys/fs/cgroup/pids/sciplat-test-{p.run_id}")
    assert list(groups.glob(f"*job-{job['id']}*"))
    out = p.sciplat("down").stdout
    assert "stopped 1 running notebook job" in out, out
    assert not list(groups.glob(f"*job-{job['id']}*")), "its cgroup is gone"
    from sciplat.jobs.models.job import JobStatus
    from sciplat.jobs.storage.store import JobStore

    store = JobStore(p.data_dir / "jobs.sqlite")
    record = store.get(job["id"])
    store.close()
    assert record is not None and record.status is JobStatus.FAILED
    assert "sciplat down" in record.error
