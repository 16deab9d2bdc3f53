"""Run code in a lab's Jupyter kernel over the real REST and websocket APIs (through the proxy)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import websocket


class KernelError(AssertionError):
    pass


def _message(code: str, session: str) -> dict[str, Any]:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex, "username": "test", "session": session,
            "msg_type": "execute_request", "version": "5.3",
        },
        "parent_header": {}, "metadata": {}, "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
    }  # fmt: skip


class LabKernel:
    """One kernel in a lab; ``run`` returns what the code printed."""

    def __init__(self, base_url: str, user: str, token: str, server: str = "") -> None:
        self.prefix = f"/user/{user}/{server + '/' if server else ''}"
        self.base_url = base_url
        self.headers = {"Authorization": f"token {token}"}
        r = httpx.post(f"{base_url}{self.prefix}api/kernels", headers=self.headers, json={},
                       timeout=60)  # fmt: skip
        r.raise_for_status()
        self.kernel_id = r.json()["id"]
        ws_url = base_url.replace("http", "ws", 1)
        self.ws = websocket.create_connection(
            f"{ws_url}{self.prefix}api/kernels/{self.kernel_id}/channels",
            header=[f"Authorization: token {token}"],
            timeout=120,
        )
        self.session = uuid.uuid4().hex

    def run(self, code: str, timeout: float = 120) -> str:
        msg = _message(code, self.session)
        self.ws.send(json.dumps(msg))
        out: list[str] = []
        error = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            reply = json.loads(self.ws.recv())
            if reply.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                continue
            kind = reply["msg_type"]
            if kind == "stream":
                out.append(reply["content"]["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(reply["content"]["data"].get("text/plain", "") + "\n")
            elif kind == "error":
                error = f"{reply['content']['ename']}: {reply['content']['evalue']}"
            elif kind == "status" and reply["content"]["execution_state"] == "idle":
                if error:
                    raise KernelError(f"{error}\noutput: {''.join(out)}")
                return "".join(out)
        raise KernelError(f"no reply within {timeout}s; output so far: {''.join(out)}")

    def close(self) -> None:
        self.ws.close()
        httpx.delete(f"{self.base_url}{self.prefix}api/kernels/{self.kernel_id}",
                     headers=self.headers, timeout=30)  # fmt: skip
