"""Sources have a total deadline and a size limit, and decode big bodies off the event loop (issue 17 #4).

A real local server that trickles one byte at a time, or streams more than the limit, against the
real httpx client and `poll_source` on a real database.
"""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timezone
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

import connectors.http
from connectors.http import DeadlineExceeded, HttpParams, ResponseTooLarge, read_json, request
from monitor.polling import poll_source
from monitor.core.clock import SimulatedClock
from monitor.config import BrandConfig, SourceConfig
from monitor.core.storage.schema import Source
from tests.connectorkit import FAST

Handler = Callable[[BaseHTTPRequestHandler], None]


class Server:
    """Runs `handle(request)` for every GET; records how many bytes it managed to send."""

    def __init__(self, handle: Handler) -> None:
        server = self
        self.sent = 0
        self.closed_early = threading.Event()

        class H(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                try:
                    handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    server.closed_early.set()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], Server]]:
    servers: list[Server] = []

    def start(handle: Handler) -> Server:
        servers.append(Server(handle))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def trickle(server_state: dict[str, Any]) -> Handler:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", "100")
        req.end_headers()
        for _ in range(100):  # one byte every 0.2 s: each read is quick, the whole is not
            if server_state.get("stop"):
                return
            req.wfile.write(b" ")
            req.wfile.flush()
            time.sleep(0.2)

    return handle


def endless(chunk: bytes = b"[" + b"1," * 32_768) -> Handler:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Transfer-Encoding", "chunked")
        req.end_headers()
        for _ in range(5_000):  # up to ~320 MB if nobody stops reading
            req.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        req.wfile.write(b"0\r\n\r\n")

    return handle


async def test_a_trickling_server_fails_the_poll_with_a_recorded_error(sessions, serve) -> None:
    state: dict[str, Any] = {}
    server = serve(trickle(state))
    source = SourceConfig(name="masto", kind="mastodon",
                          params={**FAST, "instances": [server.url], "deadline_seconds": 1, "timeout_seconds": 5,
                                  "retries": 0})
    brand = BrandConfig(name="Acme", terms=["rstats"], sources=[source])
    started = time.monotonic()
    try:
        async with httpx.AsyncClient() as client:
            result = await poll_source(sessions, brand, source, client, SimulatedClock(datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)))
    finally:
        state["stop"] = True
    assert time.monotonic() - started < 4
    assert not result.ok and "deadline_seconds=1" in (result.error or "")
    with sessions() as session:
        row = session.get(Source, "masto")
        assert row.last_error and "deadline" in row.last_error and row.consecutive_failures == 1


async def test_a_body_over_the_limit_is_refused_while_streaming(serve) -> None:
    server = serve(endless())
    params = HttpParams(retries=0, max_response_bytes=1024 * 1024)
    async with httpx.AsyncClient() as client:
        with pytest.raises(ResponseTooLarge, match="max_response_bytes=1,048,576"):
            await request(client, "GET", server.url + "/big", source="t", params=params)


async def test_a_declared_length_over_the_limit_is_refused_before_reading(serve) -> None:
    def handle(req: BaseHTTPRequestHandler) -> None:
        req.send_response(200)
        req.send_header("Content-Length", str(10**9))
        req.end_headers()
        req.wfile.write(b"x" * 10)

    server = serve(handle)
    async with httpx.AsyncClient() as client:
        with pytest.raises(ResponseTooLarge, match="declares 1,000,000,000 bytes"):
            await request(client, "GET", server.url + "/", source="t",
                          params=HttpParams(retries=0, max_response_bytes=4096))


async def test_gzip_bodies_are_limited_after_decoding_and_still_readable(serve) -> None:
    import gzip

    payload = json.dumps({"items": list(range(50_000))}).encode()

    def handle(req: BaseHTTPRequestHandler) -> None:
        body = gzip.compress(payload)
        req.send_response(200)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Encoding", "gzip")
        req.send_header("Content-Length", str(len(body)))
        req.end_headers()
        req.wfile.write(body)

    server = serve(handle)
    async with httpx.AsyncClient() as client:
        response = await request(client, "GET", server.url + "/", source="t", params=HttpParams(retries=0))
        assert (await read_json(response))["items"][-1] == 49_999
        with pytest.raises(ResponseTooLarge):  # the compressed body is small; what it expands to is not
            await request(client, "GET", server.url + "/", source="t",
                          params=HttpParams(retries=0, max_response_bytes=len(payload) // 2))


async def test_big_bodies_are_decoded_off_the_event_loop(monkeypatch) -> None:
    threads: list[str] = []
    real = connectors.http.decode_json

    def recording(body: bytes) -> Any:
        threads.append(threading.current_thread().name)
        return real(body)

    monkeypatch.setattr(connectors.http, "decode_json", recording)
    loop_thread = threading.current_thread().name
    small = httpx.Response(200, content=b'{"a": 1}', request=httpx.Request("GET", "http://x/"))
    big = httpx.Response(200, content=json.dumps(["x" * 100] * 5_000).encode(), request=httpx.Request("GET", "http://x/"))
    assert await read_json(small) == {"a": 1}
    assert len(await read_json(big)) == 5_000
    assert threads[0] == loop_thread and threads[1] != loop_thread


def test_deadline_error_is_a_network_error() -> None:
    assert issubclass(DeadlineExceeded, connectors.http.NetworkError)
