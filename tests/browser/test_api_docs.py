"""/docs renders the OpenAPI schema with Swagger UI served by the app itself (no CDN)."""

from __future__ import annotations

from urllib.parse import urlparse


def test_api_docs_render_offline(page, server_url) -> None:
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = page.goto("/docs")
    assert response is not None and response.status == 200
    page.wait_for_selector(".opblock", timeout=30_000)
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    paths = {text.replace("\u200b", "") for text in operations}
    assert "/api/v1/models/{model_id}/runs" in paths
    assert "/api/v1/runs/{run_id}/layers/{layer}/explain" in paths
    hosts = {urlparse(url).netloc for url in requested if url.startswith("http")}
    assert hosts == {urlparse(server_url).netloc}, f"requests left the app: {hosts}"
