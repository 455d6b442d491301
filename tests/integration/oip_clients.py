"""Triton's and KServe's own HTTP clients against a running service (run by .venv-oip's python, not the
project's: kserve pins older pandas and protobuf). Called by tests/integration/test_oip_clients.py as

    python oip_clients.py BASE_URL MODEL_NAME ROWS_JSON

with ROWS_JSON a list of rows in feature order. Prints one JSON object: for each client, what server and model
readiness, metadata and each inference (one row and all rows; JSON and binary) answered, and which outputs
came back as binary.
"""

from __future__ import annotations

import asyncio
import json
import sys

import numpy as np


def _outputs(names, response: dict) -> dict:
    """The outputs' names in the answer's order and those sent as binary (binary_data_size in parameters)."""
    return {"order": [o["name"] for o in response["outputs"]],
            "binary": [o["name"] for o in response["outputs"] if "binary_data_size" in (o.get("parameters") or {})],
            "asked": names}


def triton(url: str, model: str, X: np.ndarray) -> dict:  # noqa: N803
    import tritonclient.http as th

    c = th.InferenceServerClient(url.removeprefix("http://"))
    out = {"live": c.is_server_live(), "ready": c.is_server_ready(), "model_ready": c.is_model_ready(model),
           "metadata": c.get_model_metadata(model)}
    for mode in ("json", "binary", "default"):
        for n in (1, len(X)):
            inp = th.InferInput("input-0", [n, X.shape[1]], "FP64")
            inp.set_data_from_numpy(X[:n], binary_data=mode != "json")
            # default: binary inputs, no outputs named (the client then asks for every output as binary)
            asked = None if mode == "default" else [th.InferRequestedOutput(name, binary_data=mode == "binary")
                                                    for name in ("probability", "prediction")]
            r = c.infer(model, [inp], outputs=asked, request_id=f"triton-{mode}-{n}")
            out[f"infer_{mode}_{n}"] = {
                "id": r.get_response()["id"], "model_version": r.get_response()["model_version"],
                "probability": r.as_numpy("probability").tolist(),
                "prediction": [v.decode() if isinstance(v, bytes) else str(v) for v in r.as_numpy("prediction")],
                "outputs": _outputs(None if asked is None else ["probability", "prediction"], r.get_response())}
    version = out["metadata"]["versions"][0]  # the routes by version: /v2/models/<name>/versions/<v>/...
    inp = th.InferInput("input-0", list(X.shape), "FP64").set_data_from_numpy(X)
    out["by_version"] = {"model_ready": c.is_model_ready(model, version),
                         "metadata": c.get_model_metadata(model, version)["versions"],
                         "probability": c.infer(model, [inp], model_version=version).as_numpy("probability").tolist()}
    c.close()
    return out


async def kserve(url: str, model: str, X: np.ndarray) -> dict:  # noqa: N803
    import httpx
    from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig
    from kserve.protocol.infer_type import RequestedOutput
    from kserve.protocol.rest.v2_datamodels import ModelMetadataResponse

    c = InferenceRESTClient(RESTConfig(protocol="v2", timeout=60))
    out = {"live": await c.is_server_live(url), "ready": await c.is_server_ready(url),
           "model_ready": await c.is_model_ready(url, model)}
    # InferenceRESTClient has no metadata call (its gRPC client has): the REST answer, read by KServe's own model
    async with httpx.AsyncClient() as h:
        meta = (await h.get(f"{url}/v2/models/{model}")).json()
    out["metadata"] = ModelMetadataResponse.model_validate(meta).model_dump()
    for mode in ("json", "binary"):
        binary = mode == "binary"
        for n in (1, len(X)):
            inp = InferInput(name="input-0", shape=[n, X.shape[1]], datatype="FP64")
            inp.set_data_from_numpy(X[:n], binary_data=binary)
            asked = [RequestedOutput(name, parameters={"binary_data": binary})
                     for name in ("probability", "prediction")]
            req = InferRequest(model_name=model, infer_inputs=[inp], request_id=f"kserve-{mode}-{n}",
                               request_outputs=asked)
            headers: dict = {}
            res = await c.infer(url, req, model_name=model, response_headers=headers)
            by_name = {o.name: o for o in res.outputs}
            out[f"infer_{mode}_{n}"] = {
                "id": res.id, "model_version": None,
                "probability": by_name["probability"].as_numpy().tolist(),
                "prediction": [v.decode() if isinstance(v, bytes) else str(v)
                               for v in by_name["prediction"].as_numpy()],
                # KServe decodes binary outputs into plain ones: the answer's headers tell the form
                "outputs": {"order": [o.name for o in res.outputs], "asked": ["probability", "prediction"]},
                "content_type": headers.get("content-type"),
                "header_length": headers.get("inference-header-content-length")}
    await c.close()
    return out


def main() -> None:
    url, model, rows = sys.argv[1], sys.argv[2], sys.argv[3]
    X = np.array(json.loads(rows), dtype=np.float64)  # noqa: N806
    print(json.dumps({"triton": triton(url, model, X), "kserve": asyncio.run(kserve(url, model, X))}, default=str))


if __name__ == "__main__":
    main()
