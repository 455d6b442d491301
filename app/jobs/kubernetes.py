"""The Kubernetes runner: retrain jobs as Kubernetes Jobs (``CREDIT_SCORE_JOB_RUNNER=kubernetes``). The serving
pods carry no training code, so on a cluster a retrain runs with the training image, from the
``credit-score-train`` CronJob's template.

:meth:`KubernetesRunner.start` creates a Job from the CronJob's ``.spec.jobTemplate`` (what ``kubectl create job
--from=cronjob/...`` does) named ``credit-score-retrain-<id>``, labelled with the job id, with
``CREDIT_SCORE_JOB_ID`` in the training container's environment. One at a time across all pods: a Job of ours
that has not finished makes the call raise :class:`~app.jobs.base.JobBusy`; two pods that create one at the same
moment both look again afterwards, and the later Job (by name order of creation time) deletes itself.
:meth:`KubernetesRunner.read_status` maps the Job's conditions to the same :class:`~app.jobs.base.JobStatus` as
the process runner (``queued``, ``running``, ``succeeded``, ``gate_failed``, ``failed``; the exit code of a failed
pod says which) and reads the version and the gate result from the training summary the training container
leaves as its termination message (``--summary-file /dev/termination-log``; read from the pod's status, so the
runner needs no access to pod logs; :func:`~app.jobs.summary.parse_train_summary`). A Job that has not finished
well after its ``activeDeadlineSeconds`` (its pods gone, the Job controller not finishing it) is reported
``failed``, never ``running`` for ever.

The Job's environment is the template's (the CronJob's, with the training ServiceAccount's own Vault identity)
plus the job id: nothing of the serving pod's environment is copied into it. Which Jobs these ServiceAccounts may
create at all is enforced in the cluster by kubernetes/cluster/admission.yaml (a ValidatingAdmissionPolicy).

The API is called over HTTPS with the pod's service-account token (re-read on every call: it rotates) and CA;
``CREDIT_SCORE_KUBE_API_URL`` overrides the in-cluster address (tests, ``kubectl proxy``). RBAC:
``kubernetes/base/rbac.yaml`` (Role ``credit-score-retrain``: get the CronJob; create, list and delete Jobs;
list pods). A few REST calls, so plain ``requests`` rather
than the official client (tens of MB in the serving image).
"""

from __future__ import annotations

import copy
import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import Settings
from app.exit_codes import ExitCode
from app.jobs.base import JobBusy, JobRunnerError, JobStatus, utc_now
from app.jobs.summary import TrainSummary, parse_train_summary

SA_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
JOB_ID_LABEL = "credit-score.io/retrain-job-id"
RETRAIN_LABEL = "credit-score.io/retrain"
TIMEOUT = 10  # s per API call
# an unfinished Job this long past its activeDeadlineSeconds is failed: the Job controller would have ended it
DEADLINE_GRACE_S = 600


class KubeError(JobRunnerError):
    """The Kubernetes API refused or could not be reached; the message says which call and why."""


class KubeApi:
    def __init__(self, settings: Settings):
        self.url = (settings.kube_api_url or _in_cluster_url()).rstrip("/")
        self.namespace = settings.kube_namespace or _read(SA_DIR / "namespace") or "default"
        self.token_file = settings.kube_token_file or SA_DIR / "token"
        ca = SA_DIR / "ca.crt"
        self.verify: bool | str = str(ca) if ca.exists() else True

    def _headers(self) -> dict[str, str]:
        h = {"Accept": "application/json"}
        token = _read(Path(self.token_file))
        if token:
            h["Authorization"] = f"Bearer {token}"
        return h

    def call(self, method: str, path: str, body: dict | None = None, params: dict | None = None,
             ok: tuple[int, ...] = (200, 201)) -> tuple[int, Any]:
        import requests

        try:
            r = requests.request(method, self.url + path, json=body, params=params, headers=self._headers(),
                                 verify=self.verify, timeout=TIMEOUT)
        except requests.RequestException as e:
            raise KubeError(f"Kubernetes API {method} {path}: {type(e).__name__}") from None
        if r.status_code not in ok:
            reason = ""
            try:
                reason = r.json().get("message", "")
            except ValueError:
                reason = r.text[:200]
            raise KubeError(f"Kubernetes API {method} {path}: HTTP {r.status_code} {reason}".strip())
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, r.text

    def jobs_path(self, name: str = "") -> str:
        return f"/apis/batch/v1/namespaces/{self.namespace}/jobs" + (f"/{name}" if name else "")


class KubernetesRunner:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.api = KubeApi(settings)

    def start(self, reason: str) -> JobStatus:
        api = self.api
        busy = _unfinished(api)
        if busy:
            raise JobBusy(_job_id(busy[0]))
        _, cron = api.call("GET", f"/apis/batch/v1/namespaces/{api.namespace}/cronjobs/"
                                  f"{self.settings.kube_train_cronjob}")
        job_id = uuid.uuid4().hex
        job = job_from_template(cron, job_id, reason)
        status, _ = api.call("POST", api.jobs_path(), job, ok=(201, 409))
        if status == 409:  # the same name: another pod's request for this very id cannot happen; treat as busy
            raise JobBusy(None)
        # two pods may have created one at the same moment: the earliest stays, the others withdraw
        mine = job["metadata"]["name"]
        others = sorted(_unfinished(api), key=lambda j: (j["metadata"].get("creationTimestamp", ""),
                                                         j["metadata"]["name"]))
        if others and others[0]["metadata"]["name"] != mine:
            api.call("DELETE", api.jobs_path(mine), {"propagationPolicy": "Background"}, ok=(200, 202, 404))
            raise JobBusy(_job_id(others[0]))
        return JobStatus(id=job_id, reason=reason, created_at=utc_now(), runner="kubernetes", kubernetes_job=mine)

    def read_status(self, job_id: str) -> JobStatus | None:
        api = self.api
        _, found = api.call("GET", api.jobs_path(), params={"labelSelector": f"{JOB_ID_LABEL}={job_id}"})
        items = found.get("items", [])
        if not items:
            return None
        return job_status(api, items[0])

    def recent(self, limit: int = 20) -> list[JobStatus]:
        """Our retrain Jobs, newest first (the monitor's cool-down and last-job view)."""
        api = self.api
        _, found = api.call("GET", api.jobs_path(), params={"labelSelector": f"{RETRAIN_LABEL}=true"})
        items = sorted(found.get("items", []), key=lambda j: j["metadata"].get("creationTimestamp", ""),
                       reverse=True)
        return [job_status(api, j, logs=False) for j in items[:limit]]


def job_from_template(cron: dict[str, Any], job_id: str, reason: str) -> dict[str, Any]:
    """A Job from a CronJob's jobTemplate, as ``kubectl create job --from=cronjob/...`` makes it, plus our
    labels (on the Job and its pods) and CREDIT_SCORE_JOB_ID in every container's environment."""
    tmpl = copy.deepcopy(cron["spec"]["jobTemplate"])
    meta = tmpl.get("metadata", {})
    labels = {**meta.get("labels", {}), JOB_ID_LABEL: job_id, RETRAIN_LABEL: "true"}
    annotations = {**meta.get("annotations", {}), "cronjob.kubernetes.io/instantiate": "manual",
                   "credit-score.io/retrain-reason": reason[:200]}
    spec = tmpl["spec"]
    pod_meta = spec["template"].setdefault("metadata", {})
    pod_meta["labels"] = {**pod_meta.get("labels", {}), JOB_ID_LABEL: job_id, RETRAIN_LABEL: "true"}
    for c in spec["template"]["spec"]["containers"]:
        c["env"] = [e for e in c.get("env", []) if e.get("name") != "CREDIT_SCORE_JOB_ID"] + \
            [{"name": "CREDIT_SCORE_JOB_ID", "value": job_id}]
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"credit-score-retrain-{job_id[:16]}", "labels": labels,
                         "annotations": annotations},
            "spec": spec}


def job_status(api: KubeApi, job: dict[str, Any], logs: bool = True) -> JobStatus:
    """The Job's status from its conditions; with ``logs``, a finished Job's training summary too."""
    meta, st = job["metadata"], job.get("status", {})
    conditions = {c["type"]: c for c in st.get("conditions", []) if c.get("status") == "True"}
    out = JobStatus(id=_job_id(job), reason=meta.get("annotations", {}).get("credit-score.io/retrain-reason"),
                    created_at=meta.get("creationTimestamp"), started_at=st.get("startTime"),
                    finished_at=st.get("completionTime"), runner="kubernetes", kubernetes_job=meta["name"])
    if "Complete" in conditions or "SuccessCriteriaMet" in conditions:
        out.status = "succeeded"
        c = conditions.get("Complete") or conditions["SuccessCriteriaMet"]
        out.finished_at = out.finished_at or c.get("lastTransitionTime")
    elif "Failed" in conditions or "FailureTarget" in conditions:
        c = conditions.get("Failed") or conditions["FailureTarget"]
        message = c.get("message") or c.get("reason") or "the training Job failed"
        code = re.search(r"exit code (\d+)", message)
        out.status = "gate_failed" if code and int(code.group(1)) == ExitCode.GATE else "failed"
        out.error = message[:500]
        out.finished_at = out.finished_at or c.get("lastTransitionTime")
    elif st.get("active") or st.get("startTime"):
        out.status = "running"
    if out.unfinished and _past_deadline(job):
        out.status = "failed"
        out.error = (f"no outcome {DEADLINE_GRACE_S} s after the Job's deadline "
                     f"({job['spec'].get('activeDeadlineSeconds')} s): its pod is gone or it was never finished")
    if out.started_at and out.finished_at:
        out.duration_s = (_time(out.finished_at) - _time(out.started_at)).total_seconds()
    if logs and out.status in ("succeeded", "gate_failed"):
        summary = _train_summary(api, meta["name"])
        if summary:
            out.record(summary)
    return out




def _train_summary(api: KubeApi, job_name: str) -> TrainSummary | None:
    """The summary `credit-score train --summary-file /dev/termination-log` left as the termination message of
    the train container of the Job's newest pod."""
    try:
        _, pods = api.call("GET", f"/api/v1/namespaces/{api.namespace}/pods",
                           params={"labelSelector": f"job-name={job_name}"})
    except KubeError:
        return None
    items = sorted(pods.get("items", []), key=lambda p: p["metadata"].get("creationTimestamp", ""))
    if not items:
        return None
    for c in items[-1].get("status", {}).get("containerStatuses", []):
        message = (c.get("state", {}).get("terminated") or {}).get("message")
        if c.get("name") == "train" and message:
            return parse_train_summary(message)
    return None


def _past_deadline(job: dict[str, Any]) -> bool:
    deadline = job.get("spec", {}).get("activeDeadlineSeconds")
    since = job.get("status", {}).get("startTime") or job["metadata"].get("creationTimestamp")
    if not deadline or not since:
        return False
    age = (datetime.now(UTC) - _time(since)).total_seconds()
    return age > int(deadline) + DEADLINE_GRACE_S


def _unfinished(api: KubeApi) -> list[dict[str, Any]]:
    _, found = api.call("GET", api.jobs_path(), params={"labelSelector": f"{RETRAIN_LABEL}=true"})
    return [j for j in found.get("items", []) if job_status(api, j, logs=False).unfinished]


def _job_id(job: dict[str, Any]) -> str | None:
    return job["metadata"].get("labels", {}).get(JOB_ID_LABEL)


def _in_cluster_url() -> str:
    host, port = os.environ.get("KUBERNETES_SERVICE_HOST"), os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise KubeError("CREDIT_SCORE_JOB_RUNNER=kubernetes outside a cluster: set CREDIT_SCORE_KUBE_API_URL")
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def _time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except OSError:
        return None
