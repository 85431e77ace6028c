"""Loopback stand-ins for what cannot be reached from here: the Slack Web API, the Telegram Bot API, an
integrator's callback receiver and a third-party site embedding the widget.

They follow the documented request and response payloads (Slack: https://api.slack.com/methods/
chat.postMessage; Telegram: https://core.telegram.org/bots/api), check the credentials the way the real
services do, record every request, and can be told to fail the next requests.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)

    def json(self) -> Any:
        return json.loads(self.body)

    def params(self) -> dict[str, Any]:
        """The call's parameters, whether sent as JSON or as a form (values that are JSON decoded)."""
        if self.headers.get("content-type", "").startswith("application/json"):
            return self.json()
        params: dict[str, Any] = {}
        for key, value in parse_qsl(self.body.decode()):
            try:
                params[key] = json.loads(value)
            except ValueError:
                params[key] = value
        return params


Reply = tuple[int, dict[str, str], Any]  # status, headers, JSON body


class LoopbackServer:
    """An HTTP server on 127.0.0.1 in a thread; subclasses answer in ``answer``."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._handle()

            def do_POST(self) -> None:
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Recorded(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                with owner.lock:
                    owner.requests.append(request)
                    status, headers, body = owner.answer(request)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                headers = {"Content-Type": "application/json", **headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def answer(self, request: Recorded) -> Reply:
        raise NotImplementedError

    def calls(self, path_suffix: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.requests if r.path.split("?")[0].endswith(path_suffix)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class SlackAPI(LoopbackServer):
    """The Slack Web API methods the assistant calls (base URL: ``url + "/api/"``)."""

    def __init__(self, bot_token: str) -> None:
        self.bot_token = bot_token
        self.rate_limit_next = 0  # answer this many chat.postMessage calls with HTTP 429 ratelimited
        self.posted: list[dict[str, Any]] = []  # messages Slack accepted
        self._ts = 1700000000
        super().__init__()

    def answer(self, request: Recorded) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.bot_token}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        method = request.path.split("?")[0].rsplit("/", 1)[-1]
        if method == "auth.test":
            return 200, {}, {"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1", "user": "assistant"}
        if method != "chat.postMessage":
            return 200, {}, {"ok": False, "error": "unknown_method"}
        params = request.params()
        if not params.get("channel"):
            return 200, {}, {"ok": False, "error": "channel_not_found"}
        if not params.get("text"):
            return 200, {}, {"ok": False, "error": "no_text"}
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return 429, {"Retry-After": "1"}, {"ok": False, "error": "ratelimited"}
        self._ts += 1
        ts = f"{self._ts}.000100"
        self.posted.append(params)
        message = {"type": "message", "text": params["text"], "user": "UBOT", "bot_id": "BBOT", "ts": ts}
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        return 200, {}, {"ok": True, "channel": params["channel"], "ts": ts, "message": message}

    def posted_to(self, channel: str) -> list[dict[str, Any]]:
        with self.lock:
            return [p for p in self.posted if p["channel"] == channel]


class TelegramAPI(LoopbackServer):
    """The Telegram Bot API methods the assistant calls (base URL: ``url + "/bot"``)."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.script: list[Reply | None] = []  # how to answer the next sendMessage calls (None: normally)
        self.sent: list[dict[str, Any]] = []  # messages Telegram accepted
        self.photos: list[dict[str, Any]] = []  # photos Telegram accepted
        self._message_id = 100
        super().__init__()

    def answer(self, request: Recorded) -> Reply:
        prefix = f"/bot{self.token}/"
        if not request.path.startswith(prefix):
            return 401, {}, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        method = request.path[len(prefix) :].split("?")[0]
        params = request.params()
        if method == "getMe":
            user = {"id": 4242, "is_bot": True, "first_name": "Assistant", "username": "assistant_bot"}
            return 200, {}, {"ok": True, "result": user}
        if method in ("setWebhook", "sendChatAction", "answerCallbackQuery"):
            return 200, {}, {"ok": True, "result": True}
        if method == "sendPhoto":
            if not params.get("photo"):
                return 400, {}, {"ok": False, "error_code": 400, "description": "Bad Request: there is no photo"}
            self._message_id += 1
            self.photos.append(params)
            chat = {"id": int(params["chat_id"]), "type": "private", "first_name": "Ana"}
            photo = [{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 320, "height": 240}]
            result = {"message_id": self._message_id, "date": int(time.time()), "chat": chat, "photo": photo}
            return 200, {}, {"ok": True, "result": result}
        if method != "sendMessage":
            return 404, {}, {"ok": False, "error_code": 404, "description": "Not Found"}
        if not str(params.get("text", "")).strip():
            return 400, {}, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        if len(params["text"]) > 4096:
            return 400, {}, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        scripted = self.script.pop(0) if self.script else None
        if scripted is not None:
            return scripted
        self._message_id += 1
        self.sent.append(params)
        chat = {"id": int(params["chat_id"]), "type": "private", "first_name": "Ana"}
        result = {"message_id": self._message_id, "date": int(time.time()), "chat": chat, "text": params["text"]}
        return 200, {}, {"ok": True, "result": result}

    def sent_to(self, chat_id: int) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.sent if int(m["chat_id"]) == chat_id]


class CallbackReceiver(LoopbackServer):
    """An integrator's endpoint: fails the first ``fail_first`` deliveries with 503, then accepts."""

    def __init__(self, fail_first: int) -> None:
        self.fail_first = fail_first
        super().__init__()

    def answer(self, request: Recorded) -> Reply:
        if len(self.requests) <= self.fail_first:
            return 503, {}, {"error": "try again later"}
        return 200, {}, {"ok": True}

    def accepted(self) -> list[Recorded]:
        with self.lock:
            return self.requests[self.fail_first :]


class HostSite(LoopbackServer):
    """A third-party page that embeds the widget with the documented two-line snippet."""

    def __init__(self) -> None:
        self.assistant_url = ""
        super().__init__()

    def answer(self, request: Recorded) -> Reply:
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title></head>
<body><h1>A shop somewhere else</h1>
<script src="{self.assistant_url}/widget.js"></script>
<script>AssistantWidget.init({{server: "{self.assistant_url}"}});</script>
</body></html>"""
        return 200, {"Content-Type": "text/html"}, page.encode()
