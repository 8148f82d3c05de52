"""Classroom mode over HTTP and WebSocket: /api/v1/live, /live pages, limits, expiry, and
one session driven with the `websockets` client against a real uvicorn server."""

from __future__ import annotations

import json
import socket
import threading
import time

import anyio
import httpx
import pytest
import uvicorn
from starlette.websockets import WebSocketDisconnect

from app.api.live import build_hub
from app.live import CODE_ALPHABET
from app.main import create_app

from .conftest import API, make_settings

LIVE = f"{API}/live"
# Seconds to wait for one expected message; generous for a loaded machine.
RECEIVE_TIMEOUT = 20.0
# A socket test that waits for a message that never comes would hang: fail it instead.
pytestmark = pytest.mark.timeout(60)


def start(client) -> tuple[str, str]:
    response = client.post(LIVE)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["code"], body["presenter_token"]


class FakeClock:
    """A monotonic clock that moves only when a test says so (read on the server's loop)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def with_fake_clock(client) -> FakeClock:
    """Give the client's app a hub on a fake clock: idle expiry and rate limits then
    depend on the test's steps, never on how fast a loaded machine runs them."""
    clock = FakeClock()
    client.app.state.live = build_hub(client.app, clock)
    return clock


def receive(ws, timeout: float = RECEIVE_TIMEOUT) -> dict:
    """The next JSON message, or AssertionError after ``timeout`` seconds (TestClient's own
    receive waits forever); a close frame raises WebSocketDisconnect as usual."""

    async def next_message() -> dict:
        with anyio.fail_after(timeout):
            return await ws._send_rx.receive()

    try:
        message = ws.portal.call(next_message)
    except TimeoutError:
        raise AssertionError(f"no message from the server in {timeout} s") from None
    if message["type"] == "websocket.close":
        raise WebSocketDisconnect(code=message.get("code", 1000), reason=message.get("reason"))
    return json.loads(message["text"])


def receive_until(ws, kind: str, limit: int = 20) -> dict:
    for _ in range(limit):
        message = receive(ws)
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind!r} message in {limit}")


def layer_state(run: dict, **changes) -> dict:
    state = {
        "view": "layer",
        "model_id": run["model_id"],
        "run_id": run["run_id"],
        "layer": "conv1_1",
        "cell": {"channel": 5, "y": 1, "x": 2},
        "step": 1 * 32 + 2,
    }
    return {**state, **changes}


# --- HTTP -------------------------------------------------------------------------------


def test_creating_a_class_returns_code_token_and_urls(client):
    response = client.post(LIVE)
    assert response.status_code == 201
    body = response.json()
    code = body["code"]
    assert len(code) == 6 and set(code) <= set(CODE_ALPHABET)
    assert len(body["presenter_token"]) >= 32
    assert body["join_url"] == f"http://testserver/live/{code}"
    assert (
        body["present_url"]
        == f"http://testserver/live/{code}/present#token={body['presenter_token']}"
    )
    assert body["state"]["view"] == "home"
    info = client.get(f"{LIVE}/{code.lower()}").json()
    assert info["code"] == code and info["students"] == 0 and info["model_id"] is None


def test_an_unknown_code_is_a_404_in_the_api_and_a_clear_page(client):
    response = client.get(f"{LIVE}/ZZZZZZ")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_session" and "ZZZZZZ" in error["message"]
    page = client.get("/live/ZZZZZZ")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "No class with this code" in page.text and 'data-testid="live-missing"' in page.text
    assert client.get("/live/ZZZZZZ/present").status_code == 404


def test_pages_of_a_class(client):
    code, _ = start(client)
    follow = client.get(f"/live/{code}")
    assert follow.status_code == 200 and f'data-code="{code}"' in follow.text
    present = client.get(f"/live/{code}/present")
    assert present.status_code == 200
    assert f"http://testserver/live/{code}" in present.text
    # The QR code is drawn by the server: an inline SVG with a path, twice (small, large).
    assert present.text.count('class="live-qr-svg"') == 2 and "<path" in present.text
    typed = client.get(f"/live?code={code.lower()[:3]}-{code.lower()[3:]}", follow_redirects=False)
    assert typed.status_code == 303 and typed.headers["location"].endswith(f"/live/{code}")
    assert client.get("/live").status_code == 200


def test_classes_at_once_are_limited(make_client):
    client = make_client(preload=(), live_max_sessions=1)
    start(client)
    response = client.post(LIVE)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "too_many_sessions"


# --- WebSocket --------------------------------------------------------------------------


def test_a_student_cannot_drive_and_the_state_is_unchanged(client, tiny_run):
    code, token = start(client)
    with (
        client.websocket_connect(f"{LIVE}/{code}/ws?token={token}") as teacher,
        client.websocket_connect(f"{LIVE}/{code}/ws") as student,
    ):
        assert receive_until(student, "hello")["role"] == "student"
        before = receive_until(student, "state")
        student.send_json({"type": "set", "state": layer_state(tiny_run)})
        error = receive_until(student, "error")
        assert error["code"] == "forbidden"
        teacher.send_json({"type": "sync"})
        now = receive_until(teacher, "state")
        assert now["seq"] == before["seq"] == 0 and now["state"] == before["state"]
        assert client.get(f"{LIVE}/{code}").json()["students"] == 1


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"layer": "conv9_9"}, "no layer 'conv9_9'"),
        ({"cell": {"channel": 32, "y": 0, "x": 0}}, "channel=32"),
        ({"cell": {"channel": 0, "y": 32, "x": 0}}, "y=32"),
        ({"layer": "fc1", "cell": {"index": 256}, "step": 0}, "index=256"),
        ({"run_id": "not-a-run"}, "unknown or expired run"),
        ({"model_id": "lenet5"}, "belongs to model 'tiny-vgg'"),
        ({"step": 1024}, "step"),
        ({"speed": 0}, "speed"),
    ],
)
def test_the_server_validates_states(client, tiny_run, changes, words):
    code, token = start(client)
    with client.websocket_connect(f"{LIVE}/{code}/ws?token={token}") as teacher:
        receive_until(teacher, "state")
        teacher.send_json({"type": "set", "state": layer_state(tiny_run, **changes)})
        error = receive_until(teacher, "error")
        assert error["code"] == "invalid_state" and words in error["message"]
        assert client.get(f"{LIVE}/{code}").json()["view"] == "home"


def test_a_valid_state_reaches_students_and_late_joiners(client, tiny_run):
    code, token = start(client)
    state = layer_state(tiny_run, playing=True, speed=15, sent_at=1.5e12)
    with (
        client.websocket_connect(f"{LIVE}/{code}/ws?token={token}") as teacher,
        client.websocket_connect(f"{LIVE}/{code}/ws") as student,
    ):
        receive_until(student, "state")
        teacher.send_json({"type": "set", "state": state})
        got = receive_until(student, "state")
        assert got["seq"] == 1
        assert {k: got["state"][k] for k in state} == state
        with client.websocket_connect(f"{LIVE}/{code}/ws") as late:
            first = [receive(late), receive(late)]
            assert [m["type"] for m in first] == ["hello", "state"]
            assert first[1]["state"] == got["state"]
    info = client.get(f"{LIVE}/{code}").json()
    assert info["run_id"] == tiny_run["run_id"] and info["view"] == "layer"


def test_predict_then_reveal_over_the_socket(client, tiny_run):
    code, token = start(client)
    with (
        client.websocket_connect(f"{LIVE}/{code}/ws?token={token}") as teacher,
        client.websocket_connect(f"{LIVE}/{code}/ws?client=alice") as alice,
        client.websocket_connect(f"{LIVE}/{code}/ws?client=bob") as bob,
    ):
        teacher.send_json(
            {"type": "set", "state": {**layer_state(tiny_run), "frozen": True, "question": "value"}}
        )
        for student, value in ((alice, 0.25), (bob, -2)):
            receive_until(student, "state")
            student.send_json({"type": "answer", "value": value})
            assert receive_until(student, "answered")["answer"] == value
        summary = receive_until(teacher, "answers")
        while summary["count"] < 2:
            summary = receive_until(teacher, "answers")
        assert summary["values"] == [-2, 0.25] and summary["question"] == "value"
        teacher.send_json({"type": "set", "state": {"revealed": True}})
        final = receive_until(alice, "answers")
        assert final["revealed"] and final["values"] == [-2, 0.25]


def test_unknown_codes_and_bad_tokens_close_the_socket(client):
    with client.websocket_connect(f"{LIVE}/ZZZZZZ/ws") as ws:
        assert receive(ws)["code"] == "not_found"
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)
        assert closed.value.code == 4404
    code, _ = start(client)
    with client.websocket_connect(f"{LIVE}/{code}/ws?token=guess") as ws:
        assert receive(ws)["code"] == "forbidden"
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(ws)
        assert closed.value.code == 4403


def test_message_size_and_rate_limits(make_client):
    client = make_client(preload=(), live_max_message_bytes=300, live_rate=2)
    clock = with_fake_clock(client)
    code, token = start(client)
    with client.websocket_connect(f"{LIVE}/{code}/ws?token={token}") as teacher:
        receive_until(teacher, "students")
        teacher.send_json({"type": "set", "state": {"playground": {"grid": [[1] * 200]}}})
        error = receive_until(teacher, "error")
        assert error["code"] == "too_large" and "300 bytes" in error["message"]
        # Rate 2/s allows a burst of 4 (the oversized message was refused before counting);
        # the clock stands still, so no token comes back while the pings arrive.
        for _ in range(6):
            teacher.send_json({"type": "ping"})
        replies = [receive(teacher) for _ in range(6)]
        kinds = [m["type"] if m["type"] == "pong" else m["code"] for m in replies]
        assert kinds == ["pong"] * 4 + ["rate_limited"] * 2
        # Half a second at 2/s earns exactly one more message.
        clock.now += 0.5
        for _ in range(2):
            teacher.send_json({"type": "ping"})
        kinds = [receive(teacher) for _ in range(2)]
        assert [kinds[0]["type"], kinds[1].get("code")] == ["pong", "rate_limited"]


def test_a_full_class_turns_students_away(make_client):
    client = make_client(preload=(), live_max_students=1)
    code, _ = start(client)
    with client.websocket_connect(f"{LIVE}/{code}/ws") as first:
        receive_until(first, "state")
        with client.websocket_connect(f"{LIVE}/{code}/ws") as second:
            assert receive(second)["code"] == "session_full"
            with pytest.raises(WebSocketDisconnect) as closed:
                receive(second)
            assert closed.value.code == 4429


def test_idle_classes_end(make_client):
    # A tiny idle time keeps the server's sweep frequent (every idle/4 s of real time);
    # the fake clock decides when the class is idle, so a slow machine cannot expire it
    # early (it used to end between the POST and the WebSocket connect: close code 4404).
    client = make_client(preload=(), live_idle_seconds=0.3)
    clock = with_fake_clock(client)
    code, _ = start(client)
    with client.websocket_connect(f"{LIVE}/{code}/ws") as student:
        receive_until(student, "state")  # joining counts as activity: idle from here
        # A student's ping does not keep a class alive, and 0.29 s is not yet idle.
        clock.now += 0.29
        student.send_json({"type": "ping"})
        assert receive_until(student, "pong") == {"type": "pong"}
        assert client.get(f"{LIVE}/{code}").status_code == 200
        # Past 0.3 s the server's own periodic sweep ends the class: nobody asks for it.
        clock.now += 0.02
        ended = receive_until(student, "ended")
        assert "idle" in ended["message"]
        with pytest.raises(WebSocketDisconnect) as closed:
            receive(student)
        assert closed.value.code == 4410
    assert client.get(f"{LIVE}/{code}").status_code == 404
    assert client.get(f"/live/{code}").status_code == 404


# --- a real server and the `websockets` client ------------------------------------------


@pytest.fixture(scope="module")
def real_server():
    """uvicorn on a free loopback port, in a thread of this process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app = create_app(make_settings(preload=("tiny-vgg",)))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_websockets_client_against_a_real_server(real_server, photo_png):
    from websockets.sync.client import connect

    base = f"http://{real_server}"
    with httpx.Client(base_url=base, timeout=30) as http:
        run = http.post(
            f"{API}/models/tiny-vgg/runs", files={"image": ("a.png", photo_png, "image/png")}
        )
        assert run.status_code == 201, run.text
        created = http.post(LIVE).json()
    run = run.json()
    code, token = created["code"], created["presenter_token"]
    url = f"ws://{real_server}{LIVE}/{code}/ws"

    def until(ws, kind):
        while True:
            message = json.loads(ws.recv(timeout=10))
            if message["type"] == kind:
                return message

    with connect(f"{url}?token={token}") as teacher, connect(url) as student:
        until(student, "state")
        student.send(json.dumps({"type": "set", "state": layer_state(run)}))
        assert until(student, "error")["code"] == "forbidden"
        teacher.send(json.dumps({"type": "set", "state": layer_state(run, layer="nope")}))
        assert "no layer 'nope'" in until(teacher, "error")["message"]
        bad_cell = layer_state(run, cell={"channel": 0, "y": 0, "x": 40})
        teacher.send(json.dumps({"type": "set", "state": bad_cell}))
        assert "x=40" in until(teacher, "error")["message"]
        teacher.send(json.dumps({"type": "set", "state": layer_state(run)}))
        got = until(student, "state")
        assert got["seq"] == 1 and got["state"]["cell"] == {"channel": 5, "y": 1, "x": 2}
