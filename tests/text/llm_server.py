"""A tiny OpenAI-compatible chat-completions server in a thread, for the assistant's LLM tests.

It answers ``POST /v1/chat/completions`` with whatever ``answer(payload)`` returns as the
message content, where ``payload`` is the JSON the assistant sent as its user message (it has a
``task``: ``constraints`` or ``reply``). ``delay`` seconds pass before each answer; ``status``
other than 200 answers an error. Every request body is kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[dict[str, Any]], str]


class FakeLLM:
    def __init__(self, answer: Answer, delay: float = 0.0, status: int = 200) -> None:
        self.answer, self.delay, self.status = answer, delay, status
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": f"no route {self.path}"})
                time.sleep(fake.delay)
                if fake.status != 200:
                    return self._send(fake.status, {"error": "overloaded"})
                payload = json.loads(body["messages"][-1]["content"])
                content = fake.answer(payload)
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": content},
                                "finish_reason": "stop",
                            }
                        ],
                    },
                )

            def _send(self, status: int, obj: dict[str, Any]) -> None:
                data = json.dumps(obj).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def tasks(self) -> list[str]:
        return [json.loads(r["messages"][-1]["content"])["task"] for r in self.requests]

    def __enter__(self) -> FakeLLM:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
