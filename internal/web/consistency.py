"""One read-your-writes scope per request, carried across requests by a header.

A request that commits answers with ``X-Consistency-Token``; a client that sends it back
as ``X-Read-After`` reads its own writes on the next request even when that request's
reads go to a replica (they stay on the primary until a replica has replayed the write).
A malformed token is answered 422 by the error handlers (``InvalidConsistencyTokenError``).
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from internal.web.errors import error_response
from pkg.database.errors import InvalidConsistencyTokenError
from pkg.database.routing import consistency_token, read_after

__all__ = ["READ_AFTER_HEADER", "TOKEN_HEADER", "ConsistencyMiddleware"]

READ_AFTER_HEADER = "x-read-after"
TOKEN_HEADER = "x-consistency-token"


class ConsistencyMiddleware:
    """Pure ASGI: a scope per HTTP request, seeded from ``X-Read-After``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = _header(scope, READ_AFTER_HEADER)
        try:
            with read_after(given):  # parse it before the app runs: a bad token is a 422
                pass
        except InvalidConsistencyTokenError as exc:
            await error_response(exc)(scope, receive, send)
            return

        async def send_with_token(message: Message) -> None:
            if message["type"] == "http.response.start":
                token = await consistency_token()
                if token and token != given:
                    headers: list[Any] = list(message.get("headers", []))
                    headers.append((TOKEN_HEADER.encode(), token.encode()))
                    message = {**message, "headers": headers}
            await send(message)

        with read_after(given):
            await self.app(scope, receive, send_with_token)


def _header(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.decode("latin-1").lower() == name:
            return str(value.decode("latin-1")) or None
    return None
