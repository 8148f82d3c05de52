"""Classroom sessions across server processes: a presenter on one, students on others."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

import httpx
import pytest
from websockets.sync.client import connect

from .test_shared_runs import API, png, post_run

LIVE = f"{API}/live"
RECEIVE_TIMEOUT = 15.0


def until(ws, *kinds: str, timeout: float = RECEIVE_TIMEOUT) -> dict:
    """The next message of one of ``kinds`` (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.01, deadline - time.monotonic())))
        if message["type"] in kinds:
            return message


def states(ws, count: int) -> list[dict]:
    return [until(ws, "state") for _ in range(count)]


def cell_state(run: dict, x: int) -> dict:
    return {
        "view": "layer",
        "model_id": "tiny-vgg",
        "run_id": run["run_id"],
        "layer": "conv1_1",
        "cell": {"channel": 0, "y": 0, "x": x},
        "step": x,
    }


@pytest.fixture(scope="module")
def run(processes) -> dict:
    response = post_run(processes[0].url, png(10))
    assert response.status_code == 201, response.text
    return response.json()


def new_class(proc) -> tuple[str, str]:
    created = httpx.post(f"{proc.url}{LIVE}", timeout=30)
    assert created.status_code == 201, created.text
    return created.json()["code"], created.json()["presenter_token"]


def wait_for(predicate, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_followers_on_other_processes_receive_every_state_in_order(processes, run):
    a, b, c = processes
    code, token = new_class(a)
    with ExitStack() as stack:
        teacher = stack.enter_context(connect(f"{a.ws}{LIVE}/{code}/ws?token={token}"))
        students = [stack.enter_context(connect(f"{p.ws}{LIVE}/{code}/ws")) for p in (b, c, c, a)]
        for ws in students:
            assert until(ws, "state")["seq"] == 0
        # The presenter (on a) sees the students of all three processes.
        wait_for(lambda: until(teacher, "students")["count"] == 4, "4 students", 10)

        # A run made on process a, shown on b and c: a student there can load it.
        teacher.send(json.dumps({"type": "set", "state": cell_state(run, 0)}))
        for x in range(1, 30):  # as fast as the presenter can send
            teacher.send(json.dumps({"type": "set", "state": {"step": x, "cell": {
                "channel": 0, "y": 0, "x": x}}}))  # fmt: skip
        for ws in students:
            got = states(ws, 30)
            assert [m["seq"] for m in got] == list(range(1, 31))
            assert [m["state"]["cell"]["x"] for m in got] == list(range(30))
            assert got[-1]["state"]["run_id"] == run["run_id"]
        info = httpx.get(f"{c.url}{LIVE}/{code}").json()
        assert info["students"] == 4 and info["presenter_connected"] is True
        assert info["run_id"] == run["run_id"]
        layer = httpx.get(f"{c.url}{API}/runs/{run['run_id']}/layers/conv1_1")
        assert layer.status_code == 200

        # A late joiner on any process gets the current state at once.
        with connect(f"{b.ws}{LIVE}/{code}/ws") as late:
            current = until(late, "state")
            assert current["seq"] == 30 and current["state"]["step"] == 29

        # Only the presenter drives, whichever process a student is on.
        students[0].send(json.dumps({"type": "set", "state": {"step": 3}}))
        assert until(students[0], "error")["code"] == "forbidden"

        # Predict, then reveal: answers from students on b and c reach the presenter.
        teacher.send(json.dumps({"type": "set", "state": {"frozen": True, "question": "value"}}))
        for ws in students[:3]:
            until(ws, "state")
        for value, ws in zip((1.5, -2.0, 4.25), students[:3], strict=True):
            ws.send(json.dumps({"type": "answer", "value": value}))
            assert until(ws, "answered")["answer"] == value

        def three_answers() -> bool:
            return until(teacher, "answers")["count"] == 3

        wait_for(three_answers, "3 answers")
        teacher.send(json.dumps({"type": "set", "state": {"revealed": True}}))
        revealed = until(students[1], "answers")
        assert revealed["revealed"] is True and revealed["values"] == [-2.0, 1.5, 4.25]

        # The presenter ends the class on a: everyone on b and c is told.
        teacher.send(json.dumps({"type": "end"}))
        for ws in students:
            assert until(ws, "ended")["type"] == "ended"
    assert httpx.get(f"{b.url}{LIVE}/{code}").status_code == 404


def test_a_restarted_process_serves_its_followers_the_current_state(processes, run):
    a, b, _ = processes
    code, token = new_class(a)
    with connect(f"{a.ws}{LIVE}/{code}/ws?token={token}") as teacher:
        teacher.send(json.dumps({"type": "set", "state": cell_state(run, 4)}))
        with connect(f"{b.ws}{LIVE}/{code}/ws") as student:
            assert until(student, "state")["state"]["step"] == 4
            b.kill()  # mid-session, without a goodbye
            with pytest.raises(Exception):  # noqa: B017 - the connection is just gone
                until(student, "state", timeout=5)
        teacher.send(json.dumps({"type": "set", "state": {"step": 7, "cell": {
            "channel": 0, "y": 0, "x": 7}}}))  # fmt: skip
        b.start()
        # The student's page reconnects (with backoff) to the restarted process.
        with connect(f"{b.ws}{LIVE}/{code}/ws") as student:
            current = until(student, "state")
            assert current["state"]["step"] == 7 and current["seq"] == 2
            teacher.send(json.dumps({"type": "set", "state": {"step": 8, "cell": {
                "channel": 0, "y": 0, "x": 8}}}))  # fmt: skip
            assert until(student, "state")["state"]["step"] == 8


def test_without_redis_requests_get_503s_and_everything_recovers(redis_server, processes):
    a, b, c = processes
    fresh = post_run(a.url, png(12))  # a run that b has never held
    assert fresh.status_code == 201, fresh.text
    run = fresh.json()
    code, token = new_class(a)
    with (
        connect(f"{a.ws}{LIVE}/{code}/ws?token={token}") as teacher,
        connect(f"{c.ws}{LIVE}/{code}/ws") as student,
    ):
        until(student, "state")
        redis_server.stop()
        try:
            started = time.monotonic()
            refused = post_run(b.url, png(11))
            assert refused.status_code == 503, refused.text
            assert refused.json()["error"]["code"] == "store_unavailable"
            assert refused.headers["Retry-After"] == "2"
            # b never held this run: it needs Redis to find it.
            missing = httpx.get(f"{b.url}{API}/runs/{run['run_id']}", timeout=30)
            assert missing.status_code == 503
            assert httpx.post(f"{b.url}{LIVE}", timeout=30).status_code == 503
            assert httpx.get(f"{b.url}{LIVE}/{code}", timeout=30).status_code == 503
            teacher.send(json.dumps({"type": "set", "state": cell_state(run, 9)}))
            assert until(teacher, "error")["code"] == "store_unavailable"
            assert time.monotonic() - started < 20  # nothing hung
            # Pages and runs held in memory still answer.
            assert httpx.get(f"{a.url}{API}/runs/{run['run_id']}").status_code == 200
            assert httpx.get(f"{a.url}/").status_code == 200
            health = httpx.get(f"{c.url}{API}/health", timeout=30).json()
            assert health["shared_store"] == "unavailable"
        finally:
            redis_server.start()

        # Without any new change, c's followers get the current state again once c's
        # subscription is back (they may have missed changes meanwhile).
        resent = until(student, "state", timeout=30)
        assert resent["seq"] == 0 and resent["state"]["view"] == "home"

        # The processes reconnect by themselves: the class goes on where it was.
        def accepted() -> bool:
            teacher.send(json.dumps({"type": "set", "state": cell_state(run, 9)}))
            reply = until(teacher, "state", "error")
            return reply["type"] == "state" and reply["state"]["step"] == 9

        wait_for(accepted, "the class to accept changes again")
        got = until(student, "state")
        while got["state"]["step"] != 9:
            got = until(student, "state")
        assert post_run(b.url, png(11)).status_code == 201
        assert httpx.get(f"{b.url}{API}/runs/{run['run_id']}").status_code == 200


def test_an_answer_after_the_reveal_is_refused_everywhere(processes, run):
    a, b, _ = processes
    code, token = new_class(a)
    with (
        connect(f"{a.ws}{LIVE}/{code}/ws?token={token}") as teacher,
        connect(f"{b.ws}{LIVE}/{code}/ws") as student,
    ):
        until(student, "state")
        question = {**cell_state(run, 2), "frozen": True, "question": "value"}
        teacher.send(json.dumps({"type": "set", "state": question}))
        until(student, "state")
        teacher.send(json.dumps({"type": "set", "state": {"revealed": True}}))
        assert until(student, "state")["state"]["revealed"] is True
        student.send(json.dumps({"type": "answer", "value": 3.0}))
        assert until(student, "error", "answered")["code"] == "not_accepting"


def test_the_shared_record_refuses_answers_to_a_closed_question(redis_server):
    from app.live_redis import RedisLiveHub
    from app.redis_link import RedisLink

    class Catalog:
        def model(self, model_id):
            return None

        def run_model(self, run_id):
            return None

    link = RedisLink(redis_server.url, prefix=f"unit-{time.monotonic_ns()}")
    hub = RedisLiveHub(Catalog(), link)
    session, _ = hub.create()
    answer = {"e": "answer", "client": "c1", "question_id": 0, "answer": 1.0}
    assert hub.bus.publish(session, answer) is False  # no question was ever opened
    record = link.client.hgetall(link.key("live", session.code))
    assert record[b"seq"] == b"0" and b"open" not in record
    assert link.client.hlen(link.key("live", session.code, "answers")) == 0
    assert link.client.ttl(link.key("live", "sessions")) > 0  # every key expires
    link.close()
