"""The job runner: executes one parameterised notebook with nbclient, as the user.

The jobs service starts it through the lab backend's launcher (cgroup, mount namespace, the
user's UID/GIDs, home) with the *environment's* Python, which has nbclient (jupyter_server
needs it) but not sciplat. So this file imports only the standard library and nbclient/nbformat,
and the service passes its source with ``python -c`` instead of a module name or a path: the
checkout may sit in a directory the user cannot enter (root's 0700 home), and ``-c`` needs no
file the user can read.

Usage: ``python -c <this source> JOB_DIR CELL_TIMEOUT CWD`` (CWD: the kernel's working
directory, the notebook's own, as in Jupyter and papermill). In JOB_DIR it reads ``input.ipynb``
and writes, as the user:

- ``progress.json``: ``{"done": n, "total": m}`` after each code cell (written atomically);
- ``output.ipynb``: the executed notebook (also when a cell fails: outputs up to the error);
- ``result.json``: ``{"ok": true}`` or ``{"ok": false, "error": ..., "ename": ..., "cell": i}``.

The kernel is the environment's own Python (``python3``, ipykernel's native spec), whatever
kernel name the notebook's metadata carries: a job runs in the environment it asked for.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

INPUT, OUTPUT, PROGRESS, RESULT = "input.ipynb", "output.ipynb", "progress.json", "result.json"


def _write(job_dir: str, name: str, text: str) -> None:
    """Replace ``name`` atomically, so the service never reads half a file."""
    tmp = os.path.join(job_dir, f".{name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, os.path.join(job_dir, name))


def run(job_dir: str, cell_timeout: float, cwd: str) -> int:
    """Execute ``JOB_DIR/input.ipynb``; 0 on success, 1 when a cell failed."""
    # imported here: the service imports this module for its file and names only
    import nbformat  # noqa: PLC0415
    from nbclient import NotebookClient  # noqa: PLC0415
    from nbclient.exceptions import (  # noqa: PLC0415
        CellExecutionError,
        CellTimeoutError,
        DeadKernelError,
    )

    nbf: Any = nbformat  # untyped library

    nb = nbf.read(os.path.join(job_dir, INPUT), as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]
    done, current = 0, -1

    def started(cell_index: int, **_: Any) -> None:
        nonlocal current
        current = cell_index

    def progress(**_: Any) -> None:
        nonlocal done
        done += 1
        _write(job_dir, PROGRESS, json.dumps({"done": done, "total": len(code)}))

    _write(job_dir, PROGRESS, json.dumps({"done": 0, "total": len(code)}))
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=cell_timeout or None,
        resources={"metadata": {"path": cwd}},
        on_cell_execute=started,
        on_cell_executed=progress,
    )
    result: dict[str, Any] = {"ok": True}
    try:
        client.execute()
    except CellExecutionError as exc:
        result = {"ok": False, "ename": exc.ename, "error": f"{exc.ename}: {exc.evalue}"}
    except CellTimeoutError as exc:
        result = {"ok": False, "ename": "CellTimeoutError", "error": str(exc).splitlines()[0]}
    except DeadKernelError as exc:
        result = {"ok": False, "ename": "DeadKernelError", "error": f"the kernel died: {exc}"}
    if not result["ok"] and current >= 0:
        result["cell"] = current
        result["source"] = nb.cells[current].source[:2000]
    _write(job_dir, OUTPUT, nbf.writes(nb))
    _write(job_dir, RESULT, json.dumps(result))
    return 0 if result["ok"] else 1


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -c <runner> JOB_DIR CELL_TIMEOUT CWD", file=sys.stderr)
        return 2
    try:
        return run(argv[0], float(argv[1]), argv[2])
    except Exception as exc:
        # anything else (unreadable input, no kernel) is the job's error, written for the user
        _write(
            argv[0],
            RESULT,
            json.dumps(
                {"ok": False, "ename": type(exc).__name__, "error": f"{type(exc).__name__}: {exc}"}
            ),
        )
        raise


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
