"""Container HEALTHCHECK: GET /health on the service's own port; exit 0 when it answers 200, else 1.

The image has no curl or wget; the interpreter is there anyway. Liveness only: /ready (model loaded) is for
load balancers and Kubernetes readiness probes, so an instance waiting for its first model is not restarted.
"""

import os
import sys
import urllib.request

port = os.environ.get("CREDIT_SCORE_PORT", "8000")
try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=4) as r:  # noqa: S310 (fixed URL)
        sys.exit(0 if r.status == 200 else 1)
except Exception as e:  # noqa: BLE001 (any failure is "unhealthy")
    print(f"unhealthy: {e}", file=sys.stderr)
    sys.exit(1)
