"""Property-based requests generated from the OpenAPI schema: no request makes a 5xx.

Path parameters are mostly pointed at things that exist (a real run, the models, their
layers), so the generated query parameters reach the handlers instead of stopping at 404.
"""

from __future__ import annotations

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from app.main import create_app

from .conftest import encode, make_settings, photo

# vgg16 is left out: a generated request must not start a 550 MB model.
APP = create_app(make_settings(models=("tiny-vgg", "lenet5"), preload=("tiny-vgg", "lenet5")))
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# The coverage phase multiplies the cases many times over: random fuzzing is enough to
# keep this test under a minute on a shared 2-core machine.
schema.config.phases.coverage.enabled = False
LAYERS = [layer.name for layer in APP.state.registry.get("tiny-vgg").layers] + ["input"]
_run: dict[str, str] = {}


def real_run_id() -> str:
    if "id" not in _run:
        created = TestClient(APP).post(
            "/api/v1/models/tiny-vgg/runs", files={"image": ("a.png", encode(photo()), "image/png")}
        )
        _run["id"] = created.json()["run_id"]
    return _run["id"]


@schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    params = case.path_parameters or {}
    if "run_id" in params:
        params["run_id"] = real_run_id()
    if "model_id" in params and len(str(params["model_id"])) % 3:
        params["model_id"] = "tiny-vgg"
    if "layer" in params and len(str(params["layer"])) % 4:
        params["layer"] = LAYERS[len(str(params["layer"])) % len(LAYERS)]
    case.call_and_validate(checks=[not_a_server_error])
