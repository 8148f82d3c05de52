"""Classroom mode across server processes, in real browsers: the presenter's page on one
process, students' pages on two others, all sharing one Redis (issue 9)."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.redis.conftest import processes, redis_server  # noqa: F401 (fixtures)

from .test_live import LOAD_MS, create_run, expect_same_cell, present_layer


def test_students_on_other_processes_follow_and_answer(new_page, processes) -> None:  # noqa: F811
    a, b, c = processes
    run_id = create_run(a.url, "cifar10-ship-1")  # computed on a, shown everywhere
    teacher = new_page(base_url=a.url)
    teacher.goto("/")
    teacher.get_by_test_id("start-class").click()
    teacher.wait_for_url("**/live/*/present")
    code = teacher.get_by_test_id("join-code").inner_text().strip()
    students = [new_page(base_url=p.url) for p in (b, c)]
    for student in students:
        student.goto(f"/live/{code}")
    expect(teacher.get_by_test_id("students-count")).to_have_attribute(
        "data-count", "2", timeout=LOAD_MS
    )

    shown = present_layer(teacher, run_id)
    for _ in range(5):
        shown.get_by_test_id("step-next").click()
    for student in students:
        # b and c compute the run again from the image in Redis, then show the same cell.
        expect_same_cell(shown, student.frame_locator("#live-frame"), "0, 0, 5")

    # Predict, then reveal: answers typed on b and c reach the presenter on a.
    teacher.get_by_test_id("ask").click()
    for value, student in zip(("0.25", "-1"), students, strict=True):
        expect(student.get_by_test_id("quiz")).to_be_visible()
        student.get_by_test_id("answer-input").fill(value)
        student.get_by_test_id("answer-submit").click()
        expect(student.get_by_test_id("answer-sent")).to_contain_text(f"Sent: {value}")
    expect(teacher.get_by_test_id("answer-count")).to_have_attribute("data-count", "2")
    teacher.get_by_test_id("reveal").click()
    truth = shown.get_by_test_id("cell-value").inner_text()
    for student in students:
        seen = student.frame_locator("#live-frame")
        expect(seen.get_by_test_id("cell-value")).to_have_text(truth)
