"""Reading a request body with a size limit (uploads, MyDB tables)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

from sciplat.tap.errors import TapError


async def limited_body(
    request: Request, limit: int, too_large: Callable[[int, int], TapError]
) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes (by its declared
    length, else while it streams in), so an oversize body is never held in memory.

    Raises:
        TapError: ``too_large(size, limit)``, the error that names the setting to change.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)
