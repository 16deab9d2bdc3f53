"""The one place platform errors become JupyterHub spawn errors."""

from __future__ import annotations

import html

from jupyterhub.spawner import SpawnException

from sciplat.errors import LabError, SciplatError


def to_spawn_exception(err: SciplatError) -> SpawnException:
    """A SpawnException whose page shows the message and, for lab failures, the log tail."""
    message_html = html.escape(err.message)
    if isinstance(err, LabError) and err.log_tail:
        message_html += (
            "<details open><summary>Last lines of your lab's log</summary>"
            f"<pre class='sciplat-log'>{html.escape(err.log_tail)}</pre></details>"
        )
    message = err.message
    if isinstance(err, LabError) and err.log_tail:
        message += "\n\nLast lines of the lab's log:\n" + err.log_tail
    exc = SpawnException(
        message,
        reason=err.code,
        message_html=message_html,
        status_code=err.status_code if err.status_code < 500 else 500,
    )
    # the spawn-pending page's progress stream reads these, not SpawnException's own fields
    exc.jupyterhub_message = message
    exc.jupyterhub_html_message = message_html
    return exc
