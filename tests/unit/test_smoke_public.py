"""docker/scripts/smoke.py --public (`make smoke` on the staging and production URLs): the public entry must
answer the API and must NOT publish /metrics, /docs or /openapi.json. Against a stand-in service on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app.config import PROJECT_ROOT

spec = importlib.util.spec_from_file_location("smoke", PROJECT_ROOT / "docker" / "scripts" / "smoke.py")
smoke = importlib.util.module_from_spec(spec)
spec.loader.exec_module(smoke)


def serve(published: set[str]):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def _answer(self, code: int, doc: dict) -> None:
            data = json.dumps(doc).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):  # noqa: N802
            if self.path in ("/health", "/ready") or self.path in published:
                return self._answer(200, {"status": "ok"})
            return self._answer(404, {"error": "not found"})

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self._answer(200, {"prediction": 0, "probability": 0.2, "model": {"name": "m", "version": "1"}})

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def test_public_entry_must_not_publish_metrics_or_docs():
    server, url = serve(published=set())
    try:
        done = smoke.run(url, 5, smoke.APPLICANT, None, public=True)
        assert "GET /metrics 404 (not published)" in done and "GET /docs 404 (not published)" in done
    finally:
        server.shutdown()
    server, url = serve(published={"/docs"})
    try:
        with pytest.raises(smoke.SmokeFailure, match="GET /docs answered 200 through the public entry"):
            smoke.run(url, 5, smoke.APPLICANT, None, public=True)
    finally:
        server.shutdown()
