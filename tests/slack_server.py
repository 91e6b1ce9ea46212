"""A local Slack-compatible Web API server for tests (real sockets, real slack_sdk client).

It keeps channels and messages like Slack does for the methods flarewatch uses (auth.test,
chat.postMessage, chat.postEphemeral, chat.update, conversations.history/replies/list/open), records every call, and can
be scripted per method to answer an error, a 429 with Retry-After, a 5xx, or to be slow — either
before acting (the request never landed) or after acting (it landed but the client timed out).
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

MENTION = re.compile(r"<(!here|!channel|!everyone|@[UW][A-Z0-9]+|!subteam\^[A-Z0-9]+)[^>]*>")


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    at: float  # time.monotonic() when the request arrived


@dataclass
class Scripted:
    status: int = 200
    body: dict[str, Any] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering
    act_first: bool = False  # True: perform the call, then delay (and answer `body` if given)
    trickle: float = 0.0  # seconds between the bytes of the answer (each read completes; the whole never does soon)


class SlackServer:
    def __init__(self, channels: dict[str, str] | None = None, now: Callable[[], float] = time.time) -> None:
        self.channels = channels or {"C0ALERTS01": "alerts"}  # id -> name
        self.messages: dict[str, list[dict[str, Any]]] = {}  # conversation -> messages (parents and replies)
        self.ephemeral: list[dict[str, Any]] = []  # chat.postEphemeral: channel, user, text
        self.calls: list[Call] = []
        self.scripts: dict[str, list[Scripted]] = {}
        self._lock = threading.Lock()
        self.socket_url: str | None = None
        self._now = now  # message ts come from this clock (a test's simulated one), like Slack's from its own
        self._last_ts = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                server._handle(self)

            do_GET = do_POST  # noqa: N815

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> SlackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # --- scripting and inspection ----------------------------------------------------------------

    def script(self, method: str, *responses: Scripted) -> None:
        self.scripts.setdefault(method, []).extend(responses)

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def posts(self, conversation: str | None = None) -> list[dict[str, Any]]:
        return [m for conv, ms in self.messages.items() if conversation in (None, conv) for m in ms]

    def parents(self, conversation: str | None = None) -> list[dict[str, Any]]:
        return [m for m in self.posts(conversation) if not m.get("thread_ts")]

    def replies(self, parent_ts: str) -> list[dict[str, Any]]:
        return [m for m in self.posts() if m.get("thread_ts") == parent_ts]

    @staticmethod
    def mentions(message: dict[str, Any]) -> list[str]:
        """Every ping Slack would turn this message into: in `text` and in all mrkdwn text objects."""
        texts = [message.get("text") or ""]

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
                    texts.append(node["text"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(message.get("blocks") or [])
        return [m.group(1) for text in texts for m in MENTION.finditer(text)]

    # --- the API ---------------------------------------------------------------------------------

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        method = request.path.split("?")[0].rsplit("/", 1)[-1]
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length).decode("utf-8") if length else ""
        if "json" in (request.headers.get("Content-Type") or ""):
            args = json.loads(raw or "{}")
        else:
            args = dict(parse_qsl(raw))
            if "?" in request.path:
                args.update(parse_qsl(request.path.split("?", 1)[1]))
        with self._lock:
            self.calls.append(Call(method, args, dict(request.headers.items()), time.monotonic()))
            scripted = self.scripts.get(method, [])
            step = scripted.pop(0) if scripted else None
        if step is not None and not step.act_first:
            time.sleep(step.delay)
            self._answer(request, step.status, step.body, step.headers, step.trickle)
            return
        if request.headers.get("Authorization") not in ("Bearer xoxb-test-token", "Bearer xapp-test-token"):
            self._answer(request, 200, {"ok": False, "error": "invalid_auth"})
            return
        with self._lock:
            body = self._act(method, args)
        if step is not None:  # acted; now be slow and/or answer something else
            time.sleep(step.delay)
            self._answer(request, step.status, step.body if step.body is not None else body, step.headers, step.trickle)
            return
        self._answer(request, 200, body)

    def _answer(self, request: BaseHTTPRequestHandler, status: int, body: Any, headers: dict[str, str] | None = None,
                trickle: float = 0.0) -> None:
        data = (body if isinstance(body, str) else json.dumps(body if body is not None else {})).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json; charset=utf-8")
            for key, value in (headers or {}).items():
                request.send_header(key, value)
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            if not trickle:
                request.wfile.write(data)
            for byte in data if trickle else b"":
                time.sleep(trickle)
                request.wfile.write(bytes([byte]))
                request.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): exactly the case being tested

    def _next_ts(self) -> str:
        self._last_ts = max(self._now(), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _conversation(self, channel: str) -> str | None:
        if channel.startswith("#"):
            return next((cid for cid, name in self.channels.items() if name == channel[1:]), None)
        if channel in self.channels or channel.startswith("D"):
            return channel
        return None

    def _act(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "team": "flarewatch", "user": "flarewatch", "team_id": "T0TEST", "user_id": "U0BOT",
                    "bot_id": "B0BOT"}
        if method == "apps.connections.open":  # Socket Mode: where to open the WebSocket
            return {"ok": True, "url": self.socket_url} if self.socket_url else {"ok": False, "error": "not_allowed"}
        if method == "conversations.list":
            return {"ok": True, "channels": [{"id": cid, "name": name} for cid, name in self.channels.items()],
                    "response_metadata": {"next_cursor": ""}}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args["users"])[1:]}}
        if method == "chat.postMessage":
            conversation = self._conversation(str(args.get("channel", "")))
            if conversation is None:
                return {"ok": False, "error": "channel_not_found"}
            if not args.get("text") and not args.get("blocks"):
                return {"ok": False, "error": "no_text"}
            blocks = args.get("blocks")
            message = {"type": "message", "ts": self._next_ts(), "text": args.get("text", ""),
                       "blocks": json.loads(blocks) if isinstance(blocks, str) else blocks or [],
                       "metadata": args.get("metadata"), "bot_id": "B0BOT"}
            if args.get("thread_ts"):
                parent = next((m for m in self.messages.get(conversation, []) if m["ts"] == args["thread_ts"]), None)
                if parent is None:
                    return {"ok": False, "error": "thread_not_found"}
                message["thread_ts"] = args["thread_ts"]
                message["reply_broadcast"] = bool(args.get("reply_broadcast"))
            self.messages.setdefault(conversation, []).append(message)
            return {"ok": True, "channel": conversation, "ts": message["ts"], "message": message}
        if method == "chat.postEphemeral":  # seen only by `user`; Slack keeps no copy in the history
            if self._conversation(str(args.get("channel", ""))) is None:
                return {"ok": False, "error": "channel_not_found"}
            self.ephemeral.append({"channel": args["channel"], "user": args.get("user"), "text": args.get("text", "")})
            return {"ok": True, "message_ts": self._next_ts()}
        if method == "chat.update":
            conversation = str(args.get("channel", ""))
            for message in self.messages.get(conversation, []):
                if message["ts"] == args.get("ts"):
                    message["text"] = args.get("text", message["text"])
                    blocks = args.get("blocks")
                    message["blocks"] = json.loads(blocks) if isinstance(blocks, str) else blocks or []
                    message["edited"] = True
                    return {"ok": True, "channel": conversation, "ts": message["ts"], "text": message["text"]}
            return {"ok": False, "error": "message_not_found"}
        if method in ("conversations.history", "conversations.replies"):
            conversation = str(args.get("channel", ""))
            if conversation not in self.messages and conversation not in self.channels:
                return {"ok": False, "error": "channel_not_found"}
            oldest = float(args.get("oldest") or 0)
            with_metadata = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
            messages = self.messages.get(conversation, [])
            if method == "conversations.history":
                chosen = [m for m in messages if not m.get("thread_ts") or m.get("reply_broadcast")][::-1]
            else:
                chosen = [m for m in messages if m["ts"] == args.get("ts") or m.get("thread_ts") == args.get("ts")]
            chosen = [m for m in chosen if float(m["ts"]) >= oldest or m["ts"] == args.get("ts")]
            out = [{k: v for k, v in m.items() if with_metadata or k != "metadata"} for m in chosen]
            return {"ok": True, "messages": out, "has_more": False, "response_metadata": {"next_cursor": ""}}
        return {"ok": False, "error": "unknown_method"}
