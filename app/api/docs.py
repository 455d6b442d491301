"""GET /openapi.json (generated from the contracts' models, app/api/openapi.py) and GET /docs (Swagger UI,
served locally)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from flask import Blueprint, Response, jsonify, send_from_directory

from app.api.openapi import build_spec
from app.api.state import state

bp = Blueprint("docs", __name__)


@bp.get("/openapi.json")
def openapi():
    st = state()
    contracts = st.contracts(st.schema())
    if contracts.document is None:  # built once per schema: generating it takes ~0.1 s
        contracts.document = build_spec(contracts, st.settings.max_batch_rows, st.settings.model_name)
    return jsonify(contracts.document)


@lru_cache(maxsize=1)
def _swagger_dir() -> Path:
    from swagger_ui_bundle import swagger_ui_path

    return Path(swagger_ui_path)


_DOCS = """<!doctype html><html><head><meta charset="utf-8"><title>credit-score API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css"></head><body><div id="ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script></body></html>"""


@bp.get("/docs")
def docs():
    return Response(_DOCS, mimetype="text/html")


@bp.get("/docs/static/<path:name>")
def docs_static(name: str):
    return send_from_directory(_swagger_dir(), name)
