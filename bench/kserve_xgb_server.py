"""KServe's own model server with a plain XGBoost booster, as KServe's ``xgbserver`` runs it: the yardstick
``serve_bench.py`` measures beside us. Runs in the client virtualenv (``.venv-oip``: kserve pins pandas < 3,
so it cannot share the project's), not in ours:

    .venv-oip/bin/python bench/kserve_xgb_server.py --model_dir DIR --model_name credit-score --http_port P \
        --workers 2

``DIR/model.bst`` is the champion's booster (saved by the bench); its input is the feature transformer's output,
one FP64 tensor [N, columns] over the Open Inference Protocol v2. The model class follows KServe's xgbserver:
load the booster with one thread, DMatrix from the request tensor, ``predict``, the response from KServe's own
helpers (``get_predict_input`` / ``get_predict_response``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import kserve
import uvicorn
import xgboost as xgb
from kserve.protocol.rest import server as rest_server
from kserve.utils.utils import get_predict_input, get_predict_response


class LoopbackConfig(uvicorn.Config):
    """KServe binds its REST server to 0.0.0.0; servers here bind to 127.0.0.1 only."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["host"] = "127.0.0.1"
        super().__init__(*args, **kwargs)


class XGBoostModel(kserve.Model):
    def __init__(self, name: str, model_dir: str, nthread: int = 1) -> None:
        super().__init__(name)
        self.model_dir = Path(model_dir)
        self.nthread = nthread
        self.ready = False

    def load(self) -> bool:
        self._booster = xgb.Booster(params={"nthread": self.nthread}, model_file=str(self.model_dir / "model.bst"))
        self.ready = True
        return self.ready

    def predict(self, payload, headers=None, response_headers=None):  # noqa: ARG002 (KServe's signature)
        instances = get_predict_input(payload)
        result = self._booster.predict(xgb.DMatrix(instances, nthread=self.nthread))
        return get_predict_response(payload, result, self.name)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True)
    args, _ = parser.parse_known_args()
    model = XGBoostModel(args.model_name, args.model_dir)
    model.load()
    rest_server.uvicorn.Config = LoopbackConfig  # the socket is bound by this process, before the workers start
    kserve.ModelServer(workers=args.workers, enable_grpc=False).start([model])
