"""The watcher's page: 127.0.0.1 only, serving the page, its status JSON, a stream of
run events and the project's figures, and nothing else (no other path, no code run)."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

from mlm.watch.state import FIGURE_TYPES, WatchState

HOST = "127.0.0.1"
KEEPALIVE_S = 10.0


def page() -> bytes:
    return resources.files("mlm.watch").joinpath("page.html").read_bytes()


def figure_file(root: Path, requested: str) -> Path | None:
    """The file under figures/ that `requested` (the URL path after /figures/) names, or
    None when it names anything else: another folder, a hidden file, not a figure."""
    folder = (root / "figures").resolve()
    parts = requested.split("/")
    if any(part in ("", ".", "..") or part.startswith(".") or "\\" in part for part in parts):
        return None
    path = folder.joinpath(*parts).resolve()
    if not path.is_relative_to(folder) or path.suffix.lower() not in FIGURE_TYPES:
        return None
    return path if path.is_file() else None


def make_handler(state: WatchState, port_holder: list[int]):
    root = state.root

    class Handler(BaseHTTPRequestHandler):
        server_version = "mlm-watch"
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # quiet: the terminal shows the runs
            pass

        def _allowed_host(self) -> bool:
            # A page elsewhere cannot reach this server by a DNS name pointing at 127.0.0.1.
            host = (self.headers.get("Host") or "").lower()
            port = port_holder[0]
            return host in (f"127.0.0.1:{port}", f"localhost:{port}")

        def _send(self, status: int, body: bytes, kind: str, cache: str = "no-store") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", cache)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _refuse(self, status: HTTPStatus, why: str) -> None:
            self._send(status, f"{status.value} {why}\n".encode(), "text/plain; charset=utf-8")

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            if not self._allowed_host():
                return self._refuse(HTTPStatus.FORBIDDEN, "only 127.0.0.1 is served")
            raw = urlsplit(self.path).path
            if raw == "/":
                return self._send(HTTPStatus.OK, page(), "text/html; charset=utf-8")
            if raw == "/status.json":
                body = json.dumps(state.snapshot()).encode()
                return self._send(HTTPStatus.OK, body, "application/json")
            if raw == "/events":
                return self._events()
            if raw.startswith("/figures/"):
                path = figure_file(root, unquote(raw.removeprefix("/figures/")))
                if path is None:
                    return self._refuse(HTTPStatus.NOT_FOUND, "not a figure of this project")
                kind = FIGURE_TYPES[path.suffix.lower()]
                return self._send(HTTPStatus.OK, path.read_bytes(), kind, "no-cache")
            return self._refuse(HTTPStatus.NOT_FOUND, "not found")

        def _refuse_method(self) -> None:
            self._refuse(HTTPStatus.METHOD_NOT_ALLOWED, "only GET is served")

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

        def _events(self) -> None:
            """Server-sent events: one `run` event per change of the state."""
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            generation = -1
            try:
                while not self.server.stopping.is_set():
                    current = state.wait(generation, KEEPALIVE_S)
                    if current != generation:
                        generation = current
                        self.wfile.write(f"event: run\ndata: {generation}\n\n".encode())
                    else:
                        self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError, OSError):
                return

    return Handler


class PageServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, state: WatchState, port: int):
        holder = [port]
        super().__init__((HOST, port), make_handler(state, holder))
        holder[0] = self.server_address[1]
        self.stopping = threading.Event()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"

    def start(self) -> None:
        threading.Thread(target=self.serve_forever, name="mlm-watch-page", daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
