"""ASGI middleware: cap request bodies (413) outside the signed-upload route."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.errors import PayloadTooLargeError


class BodySizeLimitMiddleware:
    """Refuses bodies above `max_bytes` - from Content-Length up front, or while streaming.

    Paths under `exempt_prefixes` (streamed uploads that enforce their own limit) pass."""

    def __init__(self, app: ASGIApp, *, max_bytes: int, exempt_prefixes: tuple[str, ...]) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await _send_413(scope, send, self.max_bytes)
                    return
        total = 0
        limit = self.max_bytes

        async def limited_receive() -> Message:
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    raise PayloadTooLargeError(f"Request body larger than {limit} bytes.")
            return message

        await self.app(scope, limited_receive, send)


async def _send_413(scope: Scope, send: Send, limit: int) -> None:
    import json

    body = json.dumps({"detail": f"Request body larger than {limit} bytes."}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
