"""Classroom mode in two (and three) browser contexts: a presenter steps a convolution and
the students' pages show the same cell and value; a student cannot drive; detaching and
following again; a late joiner; predict, then reveal."""

from __future__ import annotations

import httpx
from playwright.sync_api import Page, expect

API = "/api/v1"
# The first layer page of a test loads a model, a run and its arithmetic: on a loaded
# 2-core machine that took 13 s, beyond the default 15 s budget of two frames together.
LOAD_MS = 60_000


def create_run(server_url: str, sample: str = "cifar10-airplane-1") -> str:
    response = httpx.post(
        f"{server_url}{API}/models/tiny-vgg/runs", data={"sample": sample}, timeout=30
    )
    assert response.status_code == 201, response.text
    return response.json()["run_id"]


def start_class(page: Page) -> str:
    """Start a class from the home page; returns its code."""
    page.goto("/")
    page.get_by_test_id("start-class").click()
    page.wait_for_url("**/live/*/present")
    code = page.get_by_test_id("join-code").inner_text().strip()
    assert len(code) == 6
    assert "#token=" not in page.url  # the secret leaves the address bar at once
    return code


def present_layer(teacher: Page, run_id: str, layer: str = "conv1_1"):
    """The presenter opens a layer in the shared frame (as a click on the overview would)."""
    teacher.locator("#live-frame").evaluate(
        "(frame, path) => { frame.src = path; }", f"/runs/{run_id}/layers/{layer}"
    )
    frame = teacher.frame_locator("#live-frame")
    expect(frame.get_by_test_id("cell-position")).to_have_text("0, 0, 0", timeout=LOAD_MS)
    expect(frame.get_by_test_id("cell-value")).not_to_have_text("…", timeout=LOAD_MS)
    return frame


def expect_same_cell(a, b, position: str) -> None:
    expect(a.get_by_test_id("cell-position")).to_have_text(position)
    expect(b.get_by_test_id("cell-position")).to_have_text(position, timeout=LOAD_MS)
    expect(a.get_by_test_id("cell-value")).not_to_have_text("…")
    value = a.get_by_test_id("cell-value").inner_text()
    expect(b.get_by_test_id("cell-value")).to_have_text(value)


def test_students_follow_the_presenter(new_page, server_url, screenshot) -> None:
    run_id = create_run(server_url)
    teacher = new_page()
    code = start_class(teacher)
    student = new_page()
    student.goto(f"/live/{code}")
    expect(teacher.get_by_test_id("students-count")).to_have_attribute("data-count", "1")
    expect(student.get_by_test_id("follow-mode")).to_have_text("Following the teacher")

    shown = present_layer(teacher, run_id)
    seen = student.frame_locator("#live-frame")
    for _ in range(3):
        shown.get_by_test_id("step-next").click()
    expect_same_cell(shown, seen, "0, 0, 3")
    expect(student.get_by_test_id("teacher-view")).to_have_text("Teacher: layer conv1_1")
    assert student.locator("#live-frame").evaluate("f => f.inert") is True

    # A student's own socket cannot drive the class.
    reply = student.evaluate(
        """(code) => new Promise((resolve) => {
             const ws = new WebSocket(`ws://${location.host}/api/v1/live/${code}/ws`);
             ws.onopen = () => ws.send(JSON.stringify({type: "set", state: {step: 9}}));
             ws.onmessage = (e) => { const m = JSON.parse(e.data);
               if (m.type === "error") { ws.close(); resolve(m.code); } };
           })""",
        code,
    )
    assert reply == "forbidden"
    expect_same_cell(shown, seen, "0, 0, 3")

    # Detach: the student explores; the presenter's steps no longer move their view.
    student.get_by_test_id("follow-toggle").click()
    expect(student.get_by_test_id("follow-mode")).to_have_text("Exploring on my own")
    seen.get_by_test_id("step-next").click()
    seen.get_by_test_id("step-next").click()
    expect(seen.get_by_test_id("cell-position")).to_have_text("0, 0, 5")
    shown.get_by_test_id("step-next").click()
    expect(shown.get_by_test_id("cell-position")).to_have_text("0, 0, 4")
    expect(seen.get_by_test_id("cell-position")).to_have_text("0, 0, 5")
    # ...and one click brings them back to the teacher's cell.
    student.get_by_test_id("follow-toggle").click()
    expect(student.get_by_test_id("follow-mode")).to_have_text("Following the teacher")
    expect_same_cell(shown, seen, "0, 0, 4")

    # A late joiner gets the current state at once.
    late = new_page()
    late.goto(f"/live/{code}")
    expect_same_cell(shown, late.frame_locator("#live-frame"), "0, 0, 4")
    expect(teacher.get_by_test_id("students-count")).to_have_attribute("data-count", "2")
    screenshot(student, "live-follow")


def test_predict_then_reveal(new_page, server_url, screenshot) -> None:
    run_id = create_run(server_url, "cifar10-cat-1")
    teacher = new_page()
    code = start_class(teacher)
    student = new_page()
    student.goto(f"/live/{code}")
    shown = present_layer(teacher, run_id)
    shown.get_by_test_id("step-next").click()
    expect(shown.get_by_test_id("cell-position")).to_have_text("0, 0, 1")
    truth = shown.get_by_test_id("cell-value").inner_text()

    teacher.get_by_test_id("ask").click()
    quiz = student.get_by_test_id("quiz")
    expect(quiz).to_be_visible()
    expect(quiz.get_by_test_id("question-text")).to_have_text(
        "What is the value of cell (0, 0, 1) in conv1_1?"
    )
    seen = student.frame_locator("#live-frame")
    expect(seen.get_by_test_id("cell-position")).to_have_text("0, 0, 1")
    # The answer stays hidden on every screen until the reveal.
    expect(seen.get_by_test_id("cell-value")).to_be_hidden()
    expect(seen.locator(".cv-math")).to_be_hidden()
    expect(teacher.frame_locator("#live-frame").get_by_test_id("cell-value")).to_be_hidden()

    student.get_by_test_id("answer-input").fill("0.5")
    student.get_by_test_id("answer-submit").click()
    expect(student.get_by_test_id("answer-sent")).to_contain_text("Sent: 0.5")
    expect(teacher.get_by_test_id("answer-count")).to_have_attribute("data-count", "1")
    expect(teacher.get_by_test_id("answers-chart").locator("rect")).to_have_count(1)

    teacher.get_by_test_id("reveal").click()
    expect(seen.get_by_test_id("cell-value")).to_be_visible()
    expect(seen.locator(".cv-math")).to_be_visible()
    expect(seen.get_by_test_id("cell-value")).to_have_text(truth)
    expect(quiz.get_by_test_id("truth")).to_have_text(f"The true value: {truth}")
    expect(student.get_by_test_id("answers-chart")).to_be_visible()
    expect(teacher.get_by_test_id("truth-marker")).to_be_visible()
    expect(teacher.get_by_test_id("truth")).to_have_text(f"The true value: {truth}")
    screenshot(teacher, "live-present")

    teacher.get_by_test_id("resume").click()
    expect(quiz).to_be_hidden()


def test_a_dropped_socket_reconnects_with_backoff_and_resyncs(page, server_url) -> None:
    response = httpx.post(f"{server_url}{API}/live", timeout=30)
    code = response.json()["code"]
    page.goto("/live")
    result = page.evaluate(
        """async (code) => {
             const { LiveClient, backoffDelay } = await import("/static/js/live.js");
             const delays = [0, 1, 2, 5, 9].map((n) => backoffDelay(n, { random: () => 1 }));
             const halves = [0, 5].map((n) => backoffDelay(n, { random: () => 0 }));
             const events = [];
             let states = 0;
             await new Promise((resolve) => {
               const client = new LiveClient(code, {
                 onStatus: (status) => events.push(status),
                 onMessage: (m) => {
                   if (m.type !== "state") return;
                   events.push(`state ${m.seq}`);
                   states += 1;
                   // Drop the first connection as a flaky network would; stop after the resync.
                   if (states === 1) client.ws.close(4000);
                   else { client.close(); resolve(); }
                 },
               });
               client.connect();
             });
             return { delays, halves, events };
           }""",
        code,
    )
    assert result["delays"] == [500, 1000, 2000, 15000, 15000]
    assert result["halves"] == [250, 7500]
    # connect, state, dropped -> reconnecting, open again, and the state arrives again
    assert result["events"] == [
        "connecting",
        "open",
        "state 0",
        "reconnecting",
        "reconnecting",
        "open",
        "state 0",
    ]
