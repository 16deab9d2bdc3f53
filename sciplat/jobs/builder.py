"""Pure: a job, its user, environment and size into the :class:`LabSpec` the lab backend
starts. The backend does for a job exactly what it does for a lab (cgroup with the size's
limits, private /tmp, the user's UID/GIDs, home, scrubbed environment); only the command
differs: the environment's Python running the job runner."""

from __future__ import annotations

from pathlib import Path

from sciplat.config import EnvironmentConfig, SizeConfig
from sciplat.identity.models import User
from sciplat.labs.builder import user_environment
from sciplat.labs.models import LabLimits, LabSpec


def job_server_name(job_id: str) -> str:
    """The backend's server name of a job: cgroups and logs are ``<user>--job-<id>``."""
    return f"job-{job_id}"


def build_job_spec(
    *,
    job_id: str,
    user: User,
    home: Path,
    job_dir: Path,
    cwd: str,
    environment: EnvironmentConfig,
    size: SizeConfig,
    runner_source: str,
    cell_timeout: float,
    log_path: Path,
    isolate: bool,
) -> LabSpec:
    """The process spec of one job (nothing from the service's own environment reaches it)."""
    python = environment.path / "bin" / "python"
    env = {**user_environment(user, home, environment, size), "SCIPLAT_JOB_ID": job_id}
    return LabSpec(
        user=user.name,
        server=job_server_name(job_id),
        uid=user.uid,
        gid=user.gid,
        groups=tuple(user.supplementary_gids),
        home=home,
        environment=environment.name,
        size=size.name,
        command=(str(python), "-c", runner_source, str(job_dir), f"{cell_timeout:g}", cwd),
        env=env,
        limits=LabLimits(cpu=size.cpu, memory=size.memory, pids=size.pids),
        ip="127.0.0.1",
        port=0,
        log_path=log_path,
        isolate=isolate,
    )
