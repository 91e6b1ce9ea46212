"""A local HTTP server that replays recorded responses, for testing real httpx clients over sockets.

    with ReplayServer() as server:
        server.route("/api/v1/timelines/tag/acme",
                     Reply(429, {"error": "Too many requests"}, {"Retry-After": "2"}),
                     fixture_reply(FIXTURES / "mastodon" / "timeline_tag_page1_localhost_2026.json"))
        ... point the code under test at server.url ...
        assert server.requests_to("/api/v1/timelines/tag/acme")[1].query["min_id"] == ["..."]

Each route answers with its replies in order and repeats the last one; `when` picks a route by
request (e.g. by a query parameter). `Reply(drop=True)` closes the connection without answering
(a network error for the client). Every request is recorded for assertions. Reusable by any test
that needs a scripted HTTP peer (`replay_server` fixture).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

# Recorded headers that describe the original transfer, not the body we serve.
_TRANSFER_HEADERS = {"content-length", "content-encoding", "transfer-encoding", "connection", "set-cookie"}


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict[str, Any] | list[Any] = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the socket without a response

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _TRANSFER_HEADERS}
        body = self.body
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
        elif isinstance(body, str):
            body = body.encode()
        return body, headers


def fixture_reply(path: Path, status: int | None = None, **extra_headers: str) -> Reply:
    """A recorded body with the status and headers from its `<name>.http.json` sidecar, if any."""
    sidecar = path.with_name(path.stem + ".http.json")
    headers: dict[str, str] = {}
    code = 200
    if sidecar.exists():
        meta = json.loads(sidecar.read_text(encoding="utf-8"))
        code = meta.get("status", 200)
        headers = {k: v for k, v in meta.get("headers", {}).items()
                   if k.lower() not in _TRANSFER_HEADERS and isinstance(v, str)}
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = {".json": "application/json", ".xml": "application/xml",
                                   ".html": "text/html"}.get(path.suffix, "application/octet-stream")
    headers.update(extra_headers)
    return Reply(status if status is not None else code, path.read_bytes(), headers)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class _Route:
    method: str
    path: str
    replies: list[Reply]
    when: Callable[[Recorded], bool] | None
    served: int = 0


class ReplayServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                recorded = Recorded(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                    {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
                reply = server._answer(recorded)
                if reply.drop:
                    self.close_connection = True
                    self.connection.close()
                    return
                body, headers = reply.encoded()
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def route(self, path: str, *replies: Reply, method: str = "GET",
              when: Callable[[Recorded], bool] | None = None) -> None:
        if not replies:
            raise ValueError("a route needs at least one reply")
        with self._lock:
            self._routes.append(_Route(method, path, list(replies), when))

    def _answer(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
            for route in self._routes:
                if route.method == request.method and route.path == request.path and (
                        route.when is None or route.when(request)):
                    reply = route.replies[min(route.served, len(route.replies) - 1)]
                    route.served += 1
                    return reply
        return Reply(404, {"error": f"no route for {request.method} {request.path}"})

    def requests_to(self, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> ReplayServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def replay_server() -> Iterator[ReplayServer]:
    with ReplayServer() as server:
        yield server


@pytest.fixture
def instant_sleep(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Make connector retry waits instant; the list records each wait asked for (seconds)."""
    import connectors.http

    waits: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(connectors.http, "sleep", fake_sleep)
    return waits
