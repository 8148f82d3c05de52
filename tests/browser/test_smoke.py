"""The server starts, serves its home page, and the page loads without errors."""

from __future__ import annotations


def test_home_page_has_a_title_and_no_errors(page, server_url) -> None:
    response = page.goto("/")
    assert response is not None
    assert response.status == 200
    assert response.url == server_url + "/"
    page.wait_for_load_state("networkidle")
    assert page.title().strip() != ""
    # Console errors and uncaught exceptions fail this test through the `page` fixture.
