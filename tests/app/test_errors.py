"""Every failure is the error JSON: unknown routes, methods, validation, and the catch-all 500."""

from __future__ import annotations

from .conftest import API


def test_unknown_api_route(client):
    response = client.get(f"{API}/nothing/here")
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "code": "not_found",
            "message": f"no API endpoint at {API}/nothing/here; "
            "see /docs for the list of endpoints",
        }
    }


def test_wrong_method(client):
    response = client.delete(f"{API}/models")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_unexpected_error_is_a_plain_500(make_client, monkeypatch):
    client = make_client(raise_server_exceptions=False)

    def explode(model_id):
        raise RuntimeError("secret internal detail /home/x")

    monkeypatch.setattr(client.app.state.registry, "summary", explode)
    response = client.get(f"{API}/models")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "secret" not in response.text and "Traceback" not in response.text
    assert client.get(f"{API}/models/lenet5").status_code == 200


def test_openapi_document_lists_the_endpoints(client):
    paths = client.get("/openapi.json").json()["paths"]
    for path in (
        "/api/v1/models",
        "/api/v1/models/{model_id}/runs",
        "/api/v1/runs/{run_id}/layers/{layer}/explain",
        "/api/v1/runs/{run_id}/layers/{layer}/channels/{channel}.png",
        "/api/v1/runs/{run_id}/saliency",
    ):
        assert path in paths
    body = paths["/api/v1/models/{model_id}/runs"]["post"]["requestBody"]["content"]
    assert "image" in body["multipart/form-data"]["schema"]["properties"]
    assert client.get("/docs").status_code == 200
