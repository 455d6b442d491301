"""Kibana saved objects for the credit-score logs: the source of credit-score.ndjson.

Kibana's export format stores visState, panelsJSON and searchSourceJSON as JSON *strings*, which nobody can
review; this file holds them as Python data and writes the NDJSON that Kibana imports
(Stack Management > Saved objects > Import, or elk/setup.sh).

    python elk/kibana/saved_objects.py           # rewrite credit-score.ndjson
    python elk/kibana/saved_objects.py --check   # exit 1 if credit-score.ndjson is out of date (a test runs it)

The objects use the agg-based visualization format of the saved objects that Filebeat 8 ships for Kibana
(migrationVersion below), so Kibana 8.x imports them and migrates them forward. Every field they use is mapped
in elk/elasticsearch/index_template/credit-score-logs.json; tests/infra/elk/ checks that and runs each
visualization's aggregation on real shipped log events.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUTPUT = HERE / "credit-score.ndjson"

DATA_VIEW_ID = "credit-score-logs"
DATA_VIEW_TITLE = "logs-credit_score-*"  # the data streams logs-credit_score-<namespace>
DASHBOARD_ID = "credit-score-overview"
CORE_VERSION = "8.0.0"
MIGRATION = {"index-pattern": "7.11.0", "search": "7.9.3", "visualization": "7.14.0", "dashboard": "7.14.0"}
INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"

# KQL of the panels (the log lines are described in elk/README.md)
ACCESS = 'log.logger : "credit_score.access"'
PREDICTIONS = 'log.logger : "credit_score.prediction"'
RETRAIN_AND_RELOAD = 'url.path : "/model/retrain" or log.logger : "credit_score.reload"'
ERRORS = 'log.level : "error" or http.response.status_code >= 500 or tags : "not_json"'


def _j(value) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _search_source(query: str) -> str:
    return _j({"query": {"query": query, "language": "kuery"}, "filter": [], "indexRefName": INDEX_REF})


def _date_histogram(agg_id: str) -> dict:
    return {"id": agg_id, "enabled": True, "type": "date_histogram", "schema": "segment",
            "params": {"field": "@timestamp", "interval": "auto", "min_doc_count": 1, "extended_bounds": {}}}


def _terms(agg_id: str, field: str, schema: str, size: int = 10) -> dict:
    return {"id": agg_id, "enabled": True, "type": "terms", "schema": schema,
            "params": {"field": field, "size": size, "order": "desc", "orderBy": "1", "otherBucket": False,
                       "missingBucket": False}}


def _filters(agg_id: str, schema: str, filters: list[tuple[str, str]]) -> dict:
    return {"id": agg_id, "enabled": True, "type": "filters", "schema": schema,
            "params": {"filters": [{"input": {"query": q, "language": "kuery"}, "label": label}
                                   for label, q in filters]}}


def _count() -> dict:
    return {"id": "1", "enabled": True, "type": "count", "schema": "metric", "params": {}}


def _xy(chart: str, title: str, metric_label: str, *, mode: str = "stacked", scale_mode: str = "normal") -> dict:
    """Params of an agg-based XY chart (histogram = vertical bars, line, area)."""
    return {
        "type": chart,
        "grid": {"categoryLines": False},
        "categoryAxes": [{"id": "CategoryAxis-1", "type": "category", "position": "bottom", "show": True,
                          "scale": {"type": "linear"}, "labels": {"show": True, "filter": True, "truncate": 100},
                          "title": {}}],
        "valueAxes": [{"id": "ValueAxis-1", "name": "LeftAxis-1", "type": "value", "position": "left", "show": True,
                       "scale": {"type": "linear", "mode": scale_mode},
                       "labels": {"show": True, "rotate": 0, "filter": False, "truncate": 100},
                       "title": {"text": metric_label}}],
        "seriesParams": [{"show": True, "type": chart, "mode": mode, "data": {"label": metric_label, "id": "1"},
                          "valueAxis": "ValueAxis-1", "drawLinesBetweenPoints": True, "lineWidth": 2,
                          "showCircles": True, "interpolate": "linear"}],
        "addTooltip": True, "addLegend": True, "legendPosition": "right", "times": [], "addTimeMarker": False,
        "labels": {"show": False}, "thresholdLine": {"show": False, "value": 10, "width": 1, "style": "full",
                                                     "color": "#E7664C"},
    }


def visualization(vis_id: str, title: str, description: str, query: str, vis_type: str, aggs: list[dict],
                  params: dict) -> dict:
    vis_state = {"title": title, "type": vis_type, "aggs": aggs, "params": params}
    return {
        "id": vis_id, "type": "visualization", "coreMigrationVersion": CORE_VERSION,
        "migrationVersion": {"visualization": MIGRATION["visualization"]},
        "attributes": {"title": title, "description": description, "version": 1, "uiStateJSON": "{}",
                       "visState": _j(vis_state),
                       "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(query)}},
        "references": [{"id": DATA_VIEW_ID, "name": INDEX_REF, "type": "index-pattern"}],
    }


def saved_search(search_id: str, title: str, description: str, query: str, columns: list[str]) -> dict:
    return {
        "id": search_id, "type": "search", "coreMigrationVersion": CORE_VERSION,
        "migrationVersion": {"search": MIGRATION["search"]},
        "attributes": {"title": title, "description": description, "version": 1, "hits": 0,
                       "columns": columns, "sort": [["@timestamp", "desc"]],
                       "kibanaSavedObjectMeta": {"searchSourceJSON": _search_source(query)}},
        "references": [{"id": DATA_VIEW_ID, "name": INDEX_REF, "type": "index-pattern"}],
    }


def data_view() -> dict:
    # event.duration is in nanoseconds (ECS): shown as milliseconds
    formats = {"event.duration": {"id": "duration", "params": {"inputFormat": "nanoseconds",
                                                               "outputFormat": "asMilliseconds",
                                                               "outputPrecision": 1}}}
    return {
        "id": DATA_VIEW_ID, "type": "index-pattern", "coreMigrationVersion": CORE_VERSION,
        "migrationVersion": {"index-pattern": MIGRATION["index-pattern"]},
        "attributes": {"title": DATA_VIEW_TITLE, "timeFieldName": "@timestamp", "fieldFormatMap": _j(formats)},
        "references": [],
    }


def objects() -> list[dict]:
    status_classes = [("5xx", "http.response.status_code >= 500"),
                      ("4xx", "http.response.status_code >= 400 and http.response.status_code < 500"),
                      ("2xx-3xx", "http.response.status_code < 400")]
    model_events = [("retrain accepted", 'url.path : "/model/retrain" and http.response.status_code : 202'),
                    ("retrain refused or failed",
                     'url.path : "/model/retrain" and not http.response.status_code : 202'),
                    ("model loaded", 'message : "model loaded"'),
                    ("model version refused", 'message : "refused model version"')]
    vis = [
        visualization("credit-score-requests-over-time", "Requests over time",
                      "One log line per request (health probes and metric scrapes are not logged), by endpoint.",
                      ACCESS, "histogram",
                      [_count(), _date_histogram("2"), _terms("3", "url.path", "group", size=8)],
                      _xy("histogram", "Requests over time", "Requests")),
        visualization("credit-score-latency-percentiles", "Latency percentiles",
                      "event.duration of each request (ns, shown in ms): median, p95, p99.",
                      ACCESS, "line",
                      [{"id": "1", "enabled": True, "type": "percentiles", "schema": "metric",
                        "params": {"field": "event.duration", "percents": [50, 95, 99]}},
                       _date_histogram("2")],
                      _xy("line", "Latency percentiles", "Duration", mode="normal")),
        visualization("credit-score-error-rate", "Error rate",
                      "Share of requests by status class: the 5xx band is the error rate, 4xx the client errors.",
                      ACCESS, "area",
                      [_count(), _date_histogram("2"), _filters("3", "group", status_classes)],
                      _xy("area", "Error rate", "Share of requests", scale_mode="percentage")),
        visualization("credit-score-predictions-by-class-version", "Predictions by class and model version",
                      "Prediction log lines (shadow predictions of the challenger included) per model version, "
                      "split by predicted class.",
                      PREDICTIONS, "histogram",
                      [_count(), _terms("2", "model.version", "segment", size=10),
                       _terms("3", "prediction.class", "group", size=10)],
                      _xy("histogram", "Predictions by class and model version", "Predictions")),
        visualization("credit-score-ab-variant-split", "A/B variant split",
                      "Predictions per variant (champion / challenger), inner ring: answered or shadow.",
                      PREDICTIONS, "pie",
                      [_count(), _terms("2", "model.variant", "segment", size=5),
                       _terms("3", "prediction.shadow", "segment", size=2)],
                      {"type": "pie", "addTooltip": True, "addLegend": True, "legendPosition": "right",
                       "isDonut": True, "labels": {"show": True, "values": True, "last_level": True,
                                                   "truncate": 100}}),
        visualization("credit-score-retrain-events", "Retrain and model events",
                      "Retrain requests by outcome and model reloads (loaded / refused) over time.",
                      RETRAIN_AND_RELOAD, "histogram",
                      [_count(), _date_histogram("2"), _filters("3", "group", model_events)],
                      _xy("histogram", "Retrain and model events", "Events")),
    ]
    searches = [
        saved_search("credit-score-retrain-log", "Retrain and reload log",
                     "Retrain requests and model reloads, newest first.", RETRAIN_AND_RELOAD,
                     ["message", "url.path", "http.response.status_code", "model.alias", "model.version",
                      "model.previous_version", "error.message"]),
        saved_search("credit-score-errors", "Errors",
                     "Error lines, 5xx responses and lines that were not JSON.", ERRORS,
                     ["message", "log.logger", "error.type", "error.message", "url.path", "trace.id"]),
    ]
    layout = [  # (object, x, y, w, h) on Kibana's 48-column grid
        (vis[0], 0, 0, 24, 15), (vis[1], 24, 0, 24, 15),
        (vis[2], 0, 15, 24, 15), (vis[3], 24, 15, 24, 15),
        (vis[4], 0, 30, 16, 15), (vis[5], 16, 30, 32, 15),
        (searches[0], 0, 45, 48, 15), (searches[1], 0, 60, 48, 15),
    ]
    panels, refs = [], []
    for i, (obj, x, y, w, h) in enumerate(layout, start=1):
        panels.append({"version": "7.14.0", "type": obj["type"], "panelIndex": str(i),
                       "gridData": {"x": x, "y": y, "w": w, "h": h, "i": str(i)},
                       "embeddableConfig": {"enhancements": {}}, "panelRefName": f"panel_{i}"})
        refs.append({"id": obj["id"], "name": f"{i}:panel_{i}", "type": obj["type"]})
    dashboard = {
        "id": DASHBOARD_ID, "type": "dashboard", "coreMigrationVersion": CORE_VERSION,
        "migrationVersion": {"dashboard": MIGRATION["dashboard"]},
        "attributes": {
            "title": "credit-score service", "version": 1,
            "description": "Requests, latency, errors, predictions by class / model version / A/B variant, "
                           "retrain and model events of the credit-score service (elk/README.md).",
            "panelsJSON": _j(panels),
            "optionsJSON": _j({"useMargins": True, "syncColors": False, "hidePanelTitles": False}),
            "timeRestore": True, "timeFrom": "now-24h", "timeTo": "now",
            "refreshInterval": {"pause": False, "value": 60000},
            "kibanaSavedObjectMeta": {"searchSourceJSON": _j({"query": {"query": "", "language": "kuery"},
                                                              "filter": []})},
        },
        "references": refs,
    }
    return [data_view(), *searches, *vis, dashboard]


def render() -> str:
    return "".join(json.dumps(o, sort_keys=True) + "\n" for o in objects())


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not OUTPUT.exists() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT} ({len(text.splitlines())} objects)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
