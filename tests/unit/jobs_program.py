"""A stand-in for app/retrain_job.py in tests: the real job process (app.jobs.process.run_job) around a training
command from ``FAKE_TRAIN_COMMAND`` (a JSON list) instead of ``credit-score train``; its observer appends the
final status to ``FAKE_TRAIN_OBSERVED``. ``FAKE_JOB_STARTUP`` (s): a slow start-up, before run_job installs its
signal handler."""

from __future__ import annotations

import json
import os
import sys
import time

from app.jobs.process import run_job


def _observe(status) -> None:
    with open(os.environ["FAKE_TRAIN_OBSERVED"], "a") as f:
        f.write(status.status + "\n")


if __name__ == "__main__":
    time.sleep(float(os.environ.get("FAKE_JOB_STARTUP", "0")))
    sys.exit(run_job(sys.argv[1], int(sys.argv[2]), on_finished=_observe,
                     command=json.loads(os.environ["FAKE_TRAIN_COMMAND"])))
