"""app.live without HTTP: codes, tokens, state validation, outboxes, rate limits, answers,
limits and idle expiry, against a small fake catalog and a fake clock."""

from __future__ import annotations

import asyncio

import orjson
import pytest

from app.live import (
    CLOSE_ENDED,
    CLOSE_FULL,
    CODE_ALPHABET,
    Connection,
    LiveHub,
    LiveLimits,
    ModelShape,
    Session,
    StateError,
    TooManySessions,
    initial_state,
    new_code,
    normalize_code,
    validate_state,
)


class FakeCatalog:
    models = {
        "m": ModelShape({"conv1": (4, 6, 5), "relu1": (4, 6, 5), "fc1": (10,)}, classes=10),
        "other": ModelShape({"conv1": (2, 3, 3)}, classes=3),
    }
    runs = {"r1": "m", "r2": "m", "rx": "other"}

    def model(self, model_id):
        return self.models.get(model_id)

    def run_model(self, run_id):
        return self.runs.get(run_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _ignore(_text: str) -> None:
    return None


def messages(conn: Connection) -> list[dict]:
    return [orjson.loads(t) for t in conn.take()]


def of_type(conn: Connection, kind: str) -> list[dict]:
    return [m for m in messages(conn) if m["type"] == kind]


LAYER = {"view": "layer", "model_id": "m", "run_id": "r1", "layer": "conv1"}


# --- codes and tokens -------------------------------------------------------------------


def test_codes_are_six_unambiguous_characters():
    codes = {new_code() for _ in range(2000)}
    assert len(codes) > 1990  # random, not a counter or a constant
    for code in codes:
        assert len(code) == 6
        assert set(code) <= set(CODE_ALPHABET)
    assert not set("0O1I") & set(CODE_ALPHABET)
    assert len(CODE_ALPHABET) == 32


@pytest.mark.parametrize(
    "typed, code",
    [("k7qm3x", "K7QM3X"), (" K7Q-M3X ", "K7QM3X"), ("K7QM3", None), ("K7QM3O", None), ("", None)],
)
def test_typed_codes_are_normalised(typed, code):
    assert normalize_code(typed) == code


def test_only_a_hash_of_the_token_is_kept():
    session = Session("ABCDEF", "s3cret-token-value", FakeCatalog(), LiveLimits())
    assert session.is_presenter_token("s3cret-token-value")
    assert not session.is_presenter_token("s3cret-token-valuE")
    assert not session.is_presenter_token("")
    assert not session.is_presenter_token(None)
    assert "s3cret-token-value" not in repr(vars(session))


# --- validation -------------------------------------------------------------------------


def test_a_layer_state_with_cell_and_step_is_accepted():
    patch = {**LAYER, "cell": {"channel": 3, "y": 5, "x": 4}, "step": 29, "speed": 8}
    state = validate_state(initial_state(), patch, FakeCatalog())
    assert state["cell"] == {"channel": 3, "y": 5, "x": 4}
    assert state["step"] == 29 and state["speed"] == 8 and state["view"] == "layer"


@pytest.mark.parametrize(
    "patch, words",
    [
        ({**LAYER, "layer": "conv9"}, "no layer 'conv9'"),
        ({**LAYER, "cell": {"channel": 4, "y": 0, "x": 0}}, "channel=4"),
        ({**LAYER, "cell": {"channel": 0, "y": 6, "x": 0}}, "y=6"),
        ({**LAYER, "cell": {"channel": 0, "y": 0, "x": -1}}, "x=-1"),
        ({**LAYER, "cell": {"channel": 0, "y": 0, "x": 1.0}}, "x=1.0"),
        ({**LAYER, "cell": {"index": 3}}, "{channel, y, x}"),
        ({**LAYER, "layer": "fc1", "cell": {"index": 10}}, "index=10"),
        ({**LAYER, "step": 30}, "step must be an integer from 0 to 29"),
        ({**LAYER, "layer": "fc1", "step": 10}, "from 0 to 9"),
        ({**LAYER, "step": True}, "step"),
        ({**LAYER, "model_id": "nope"}, "unknown model"),
        ({**LAYER, "run_id": "gone"}, "unknown or expired run"),
        ({**LAYER, "run_id": "rx"}, "belongs to model 'other'"),
        ({**LAYER, "speed": 500}, "speed"),
        ({**LAYER, "speed": float("nan")}, "speed"),
        ({**LAYER, "frozen": True, "playing": True}, "frozen"),
        ({**LAYER, "question": "why"}, "question"),
        ({**LAYER, "colour": "red"}, "unknown state fields: colour"),
        ({"view": "layer"}, "needs model_id and run_id"),
        ({"view": "gallery"}, "view must be one of"),
        ({"playground": {"blob": "x" * 9000}}, "larger than 8192"),
        ([1, 2], "JSON object"),
    ],
)
def test_invalid_states_are_refused_with_the_reason(patch, words):
    with pytest.raises(StateError) as err:
        validate_state(initial_state(), patch, FakeCatalog())
    assert words in str(err.value)


def test_changing_layer_or_model_resets_cell_and_step():
    catalog = FakeCatalog()
    state = validate_state(
        initial_state(), {**LAYER, "cell": {"channel": 1, "y": 2, "x": 3}, "step": 13}, catalog
    )
    moved = validate_state(state, {"layer": "relu1"}, catalog)
    assert moved["cell"] is None and moved["step"] == 0
    kept = validate_state(state, {"layer": "relu1", "step": 13}, catalog)
    assert kept["step"] == 13
    other = validate_state(
        state, {"model_id": "other", "run_id": "rx", "view": "overview"}, catalog
    )
    assert other["layer"] is None and other["cell"] is None


# --- connections ------------------------------------------------------------------------


def test_every_state_is_queued_until_a_connection_falls_behind():
    conn = Connection(_ignore, presenter=False)
    for seq in range(1, 8):
        conn.push("state", f'{{"type":"state","seq":{seq}}}')
    conn.push("pong", '{"type":"pong"}')  # 8 waiting: behind from now on
    for seq in range(8, 11):
        conn.push("state", f'{{"type":"state","seq":{seq}}}')
    # States 8, 9 and 10 each took the place of the newest one waiting (7, then 8, then 9).
    assert [m.get("seq") for m in messages(conn)] == [1, 2, 3, 4, 5, 6, 10, None]
    assert conn.replaced == 3


def test_the_writer_sends_in_order_then_closes():
    sent: list[str] = []

    async def send(text: str) -> None:
        sent.append(text)

    async def scenario() -> int:
        conn = Connection(send, presenter=False)
        conn.push("hello", "a")
        conn.push("state", "b")
        conn.close(4000)
        conn.push("state", "ignored after close")
        return await asyncio.wait_for(conn.run_writer(), 2)

    assert asyncio.run(scenario()) == 4000
    assert sent == ["a", "b"]


def test_rate_limit_allows_a_two_second_burst_then_the_rate():
    clock = Clock()
    conn = Connection(_ignore, presenter=False, rate=5, clock=clock)
    assert sum(conn.allow() for _ in range(15)) == 10
    clock.now += 1.0
    assert sum(conn.allow() for _ in range(15)) == 5


# --- sessions ---------------------------------------------------------------------------


def make_session(**limits) -> tuple[Session, Connection, Connection]:
    session = Session("ABCDEF", "tok", FakeCatalog(), LiveLimits(**limits))
    teacher = Connection(_ignore, presenter=True)
    student = Connection(_ignore, presenter=False, client_id="stu-1")
    assert session.join(teacher) and session.join(student)
    return session, teacher, student


def send(session: Session, conn: Connection, message: dict) -> None:
    session.handle(conn, orjson.dumps(message).decode())


def test_joining_sends_hello_and_the_current_state_at_once():
    session, teacher, _ = make_session()
    send(session, teacher, {"type": "set", "state": {**LAYER, "step": 7}})
    late = Connection(_ignore, presenter=False)
    session.join(late)
    first = messages(late)
    assert [m["type"] for m in first] == ["hello", "state"]
    assert first[0]["role"] == "student"
    assert first[1]["state"]["step"] == 7 and first[1]["seq"] == 1


def test_a_student_cannot_set_the_state():
    session, teacher, student = make_session()
    before = dict(session.state)
    messages(student)
    send(session, student, {"type": "set", "state": {"view": "overview"}})
    assert session.state == before and session.seq == 0
    errors = of_type(student, "error")
    assert errors[0]["code"] == "forbidden"
    assert of_type(teacher, "state") == [{"type": "state", "seq": 0, "state": before}]


def test_a_valid_set_reaches_every_connection():
    session, teacher, student = make_session()
    messages(teacher), messages(student)
    send(
        session,
        teacher,
        {"type": "set", "state": {**LAYER, "cell": {"channel": 0, "y": 1, "x": 2}}},
    )
    for conn in (teacher, student):
        (state,) = of_type(conn, "state")
        assert state["seq"] == 1 and state["state"]["cell"] == {"channel": 0, "y": 1, "x": 2}


def test_an_invalid_set_changes_nothing_and_says_why():
    session, teacher, student = make_session()
    messages(student)
    send(session, teacher, {"type": "set", "state": {**LAYER, "layer": "conv9"}})
    (error,) = of_type(teacher, "error")
    assert error["code"] == "invalid_state" and "conv9" in error["message"]
    assert session.seq == 0 and messages(student) == []


@pytest.mark.parametrize(
    "frame, code", [("{not json", "bad_message"), ('{"type":"dance"}', "bad_message")]
)
def test_bad_frames_get_an_error(frame, code):
    session, _, student = make_session()
    messages(student)
    session.handle(student, frame)
    assert of_type(student, "error")[0]["code"] == code


def test_messages_over_the_size_limit_are_refused():
    session, teacher, _ = make_session(max_message_bytes=200)
    messages(teacher)
    send(session, teacher, {"type": "set", "state": {"playground": {"pad": "é" * 100}}})
    (error,) = of_type(teacher, "error")
    assert error["code"] == "too_large" and session.seq == 0


def test_students_beyond_the_limit_are_turned_away():
    session, _, _ = make_session(max_students=2)
    second = Connection(_ignore, presenter=False)
    third = Connection(_ignore, presenter=False)
    assert session.join(second)
    assert not session.join(third)
    assert of_type(third, "error")[0]["code"] == "session_full"
    assert third.close_code == CLOSE_FULL and len(session.students) == 2


def test_predict_then_reveal():
    session, teacher, student = make_session()
    other = Connection(_ignore, presenter=False, client_id="stu-2")
    session.join(other)
    cell = {"channel": 1, "y": 0, "x": 0}
    send(session, teacher, {"type": "set", "state": {**LAYER, "cell": cell}})
    send(session, student, {"type": "answer", "value": 1.5})
    assert of_type(student, "error")[-1]["code"] == "not_accepting"

    send(session, teacher, {"type": "set", "state": {"frozen": True, "question": "value"}})
    assert session.question_id == 1
    send(session, student, {"type": "answer", "value": 2.5})
    send(session, student, {"type": "answer", "value": 3.0})  # a second answer replaces the first
    send(session, other, {"type": "answer", "value": -1})
    send(session, other, {"type": "answer", "value": "many"})
    assert of_type(other, "error")[-1]["code"] == "invalid_answer"
    assert session.answers == {"stu-1": 3.0, "stu-2": -1.0}
    summary = of_type(teacher, "answers")[-1]
    assert summary["count"] == 2 and summary["values"] == [-1.0, 3.0]

    messages(student)
    send(session, teacher, {"type": "set", "state": {"revealed": True}})
    (final,) = of_type(student, "answers")
    assert final["revealed"] and final["values"] == [-1.0, 3.0]
    send(session, other, {"type": "answer", "value": 9})
    assert of_type(other, "error")[-1]["code"] == "not_accepting"

    # A class question on the next cell is a new question with its own answers.
    next_cell = {"channel": 1, "y": 0, "x": 1}
    send(
        session,
        teacher,
        {"type": "set", "state": {"revealed": False, "question": "class", "cell": next_cell}},
    )
    assert session.question_id == 2 and session.answers == {}
    send(session, student, {"type": "answer", "class": 3})
    send(session, other, {"type": "answer", "class": 10})
    assert of_type(other, "error")[-1]["code"] == "invalid_answer"
    counts = of_type(teacher, "answers")[-1]["counts"]
    assert counts == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]


# --- the hub ----------------------------------------------------------------------------


def test_the_hub_limits_sessions():
    hub = LiveHub(FakeCatalog(), LiveLimits(max_sessions=2))
    a, token = hub.create()
    hub.create()
    with pytest.raises(TooManySessions):
        hub.create()
    assert hub.get(a.code.lower()) is a and a.is_presenter_token(token)
    assert hub.get("ZZZZZZ") is None


def test_idle_sessions_expire_and_tell_their_students():
    clock = Clock()
    hub = LiveHub(FakeCatalog(), LiveLimits(idle_seconds=60), clock=clock)
    session, _ = hub.create()
    student = Connection(_ignore, presenter=False)
    session.join(student)
    messages(student)
    clock.now += 50
    send(session, student, {"type": "ping"})  # a student's ping does not keep it alive
    clock.now += 11
    assert hub.sweep() == 1 and len(hub) == 0
    assert hub.get(session.code) is None
    assert of_type(student, "ended")
    assert student.close_code == CLOSE_ENDED


def test_presenter_activity_keeps_a_session_alive():
    clock = Clock()
    hub = LiveHub(FakeCatalog(), LiveLimits(idle_seconds=60), clock=clock)
    session, _ = hub.create()
    teacher = Connection(_ignore, presenter=True)
    session.join(teacher)
    for _ in range(3):
        clock.now += 40
        send(session, teacher, {"type": "set", "state": {"speed": 2}})
    assert hub.sweep() == 0 and hub.get(session.code) is session


def test_the_presenter_can_end_the_class():
    hub = LiveHub(FakeCatalog())
    session, _ = hub.create()
    teacher = Connection(_ignore, presenter=True)
    student = Connection(_ignore, presenter=False)
    session.join(teacher), session.join(student)
    send(session, student, {"type": "end"})
    assert not session.ended
    send(session, teacher, {"type": "end"})
    assert session.ended and of_type(student, "ended") and hub.get(session.code) is None
    assert student.close_code == teacher.close_code == CLOSE_ENDED
