"""HTTP additions to the gateway's aiohttp app: the authenticated dashboard proxy and the
quota message on scale/adapt answers. Everything else is dask-gateway's own API.

Dashboards: dask-gateway's proxy serves ``/clusters/<name>/`` to anyone. Here the gateway
never hands those routes to its proxy (see app.py); this app serves them instead, to the
cluster's owner only (JupyterHub token in the Authorization header or ``?token=``, then
dask-gateway's own session cookie), and reaches the dashboard over TLS with the cluster's
own client certificate, which the dashboard requires (backend.MUTUAL_TLS_PRELOAD).

Hand-written (~60 lines) because no maintained aiohttp reverse proxy exists; it handles
what the Bokeh dashboard needs: GET/POST pass-through and WebSocket pairs.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from sciplat.dask.storage.backend import SciplatBackend, scale_message

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "authorization", "cookie", "content-length",
    "content-encoding",
}  # fmt: skip


@web.middleware
async def quota_messages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Put the quota clamp's message (set by the backend) into a scale/adapt answer, in
    dask-gateway's own ``{"ok": false, "msg": ...}`` form, which its client shows."""
    scale_message.set("")
    response = await handler(request)
    message = scale_message.get()
    if message and isinstance(response, web.Response) and response.status == 200:
        body = json.loads(response.body or b"{}")  # type: ignore[arg-type]
        body["msg"] = f"{body['msg']} {message}" if body.get("msg") else message
        body["ok"] = False
        return web.json_response(body)
    return response


def _tls(backend: SciplatBackend, cluster: Any) -> ssl.SSLContext:
    """Trust only the cluster's certificate and present it as the client's."""
    cert, key = backend.get_tls_paths(cluster)
    ctx = ssl.create_default_context(cafile=cert)
    ctx.check_hostname = False  # the certificate names the cluster, not 127.0.0.1
    ctx.load_cert_chain(cert, key)
    return ctx


async def _pipe_ws(src: Any, dst: Any) -> None:
    async for msg in src:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        else:
            break
    await dst.close()


async def dashboard(request: web.Request) -> web.StreamResponse:
    """Proxy one dashboard request of the cluster's owner."""
    backend: SciplatBackend = request.app["backend"]
    name = request.match_info["cluster_name"]
    cluster = backend.db.get_cluster(name)
    user = request["user"]
    if cluster is None or cluster.username != user.name or not cluster.dashboard_address:
        raise web.HTTPNotFound(reason=f"no running cluster {name} of yours")
    base = cluster.dashboard_address.replace("http://", "https://", 1)
    url = f"{base}/{request.match_info['tail']}"
    query = [(k, v) for k, v in request.query.items() if k != "token"]
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
    ctx = _tls(backend, cluster)
    session: aiohttp.ClientSession = request.app["dashboard_session"]
    if request.headers.get("Upgrade", "").lower() == "websocket":
        client = web.WebSocketResponse()
        await client.prepare(request)
        async with session.ws_connect(url.replace("https://", "wss://", 1), params=query,
                                      ssl=ctx) as upstream:  # fmt: skip
            await asyncio.gather(_pipe_ws(client, upstream), _pipe_ws(upstream, client))
        return client
    async with session.request(
        request.method, url, params=query, headers=headers, data=await request.read(),
        ssl=ctx, allow_redirects=False,
    ) as upstream:  # fmt: skip
        body = await upstream.read()
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP}
        return web.Response(status=upstream.status, headers=out, body=body)


def add_dashboard_routes(app: web.Application, authenticate: Callable[..., Any]) -> None:
    """``/clusters/<name>/<path>``: the owner's dashboard, behind ``authenticate``
    (dask-gateway's ``Authenticator.authenticate_and_handle``)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        response: web.StreamResponse = await authenticate(request, dashboard)
        return response

    async def session(app: web.Application) -> Any:
        app["dashboard_session"] = aiohttp.ClientSession()
        yield
        await app["dashboard_session"].close()

    app.cleanup_ctx.append(session)
    app.router.add_route("*", "/clusters/{cluster_name}/{tail:.*}", handle)
