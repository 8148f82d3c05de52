// The presenter's page (/live/{code}/present): the join code and QR code, the number of
// students, the real pages in a frame (what the presenter does there is sent as `set`),
// and predict-then-reveal.

import { explain, getModel, getRun } from "../api.js";
import { applyI18n, t } from "../i18n.js";
import { LiveClient, presenterToken } from "../live.js";
import "../messages/common.js";
import "../messages/live.js";
import { fmtNumber, renderAnswers } from "./live_answers.js";
import { LiveFrame } from "./live_frame.js";

const root = document.getElementById("live-present");
const code = root.dataset.code;
const $ = (sel) => root.querySelector(sel);
const iframe = document.getElementById("live-frame");
const note = document.getElementById("live-note");
const errorEl = document.getElementById("live-error");
const statusEl = $('[data-testid="live-status"]');
const studentsEl = $('[data-testid="students-count"]');
const askBtn = $('[data-testid="ask"]');
const revealBtn = $('[data-testid="reveal"]');
const resumeBtn = $('[data-testid="resume"]');
const questionEl = document.getElementById("live-question");
const countEl = $('[data-testid="answer-count"]');
const answersEl = document.getElementById("live-answers");
const truthEl = $('[data-testid="truth"]');

// While playing, students run their own player: the step is resent at most once a second.
const PLAYING_INTERVAL_MS = 1000;
const IDLE_INTERVAL_MS = 60;

let live = null; // the state last broadcast by the server
let where = null; // {view, run_id, layer} of the page in the frame
let students = 0;
let lastAnswers = null;
let truth = null;
let classNames = [];
const runModels = new Map(); // run id -> model id

const token = presenterToken(code);
const client = new LiveClient(code, { token, onMessage, onStatus });

const frame = new LiveFrame(iframe, {
  onLoad(w) {
    where = w;
    if (!w) {
      note.textContent = t("live.unshareable");
      return;
    }
    note.textContent = "";
    share();
  },
  onHookState: () => share(),
});

// ---- the state of the frame -> `set` ----

async function modelOfRun(runId) {
  if (!runModels.has(runId)) runModels.set(runId, getRun(runId).then((r) => r.model_id));
  return runModels.get(runId);
}

async function frameState() {
  if (!where) return null;
  const hookState = frame.hook() ? frame.hook().getState() : null;
  if (where.view === "home") {
    return { view: "home", model_id: null, run_id: null, layer: null, cell: null, step: 0, playing: false };
  }
  if (where.view === "playground") {
    return { view: "playground", model_id: hookState?.model_id ?? null, run_id: null, layer: null, playground: hookState?.playground ?? null };
  }
  const model_id = await modelOfRun(where.run_id);
  const base = { view: where.view, model_id, run_id: where.run_id, layer: where.layer };
  if (where.view === "overview") return { ...base, cell: null, step: 0, playing: false };
  if (!hookState) return null; // the layer page is still loading
  return { ...base, cell: hookState.cell, step: hookState.step, playing: hookState.playing, speed: hookState.speed };
}

let sendTimer = 0;
let lastSentAt = 0;
let lastSentKey = "";

function share() {
  if (sendTimer) return;
  const playing = live?.playing;
  const wait = Math.max(0, (playing ? PLAYING_INTERVAL_MS : IDLE_INTERVAL_MS) - (performance.now() - lastSentAt));
  sendTimer = setTimeout(flush, wait);
}

async function flush() {
  sendTimer = 0;
  let state;
  try {
    state = await frameState();
  } catch (err) {
    note.textContent = t("live.rejected", { message: err.message });
    return;
  }
  if (!state || isOpenQuestion(live)) return;
  const key = JSON.stringify(state);
  if (key === lastSentKey) return;
  if (client.send({ type: "set", state: { ...state, sent_at: Date.now() } })) {
    lastSentKey = key;
    lastSentAt = performance.now();
  }
}

function sendPatch(patch) {
  client.send({ type: "set", state: { ...patch, sent_at: Date.now() } });
}

// ---- server messages ----

function onMessage(message) {
  switch (message.type) {
    case "state": {
      const first = live === null;
      live = message.state;
      errorEl.textContent = "";
      if (first && frame.location() === null) {
        // A reopened presenter page starts where the class is.
        frame.apply(live);
      }
      frame.setClass("live-concealed", isOpenQuestion(live));
      updateQuestion();
      break;
    }
    case "students":
      students = message.count;
      renderStudents();
      break;
    case "answers":
      lastAnswers = message;
      renderQuestionAnswers();
      break;
    case "error":
      if (message.code === "invalid_state") {
        note.textContent = t("live.rejected", { message: message.message });
        lastSentKey = "";
      } else if (message.code === "forbidden") {
        errorEl.textContent = t("live.forbidden");
      } else {
        errorEl.textContent = message.message;
      }
      break;
    case "ended":
      errorEl.textContent = t("live.ended");
      break;
    default:
      break;
  }
}

function onStatus(status, { delay, code: closeCode } = {}) {
  let text = t(`live.status_${status}`);
  if (status === "reconnecting" && delay) text = t("live.status_reconnecting", { s: Math.ceil(delay / 1000) });
  if (status === "closed" && closeCode === 4403) errorEl.textContent = t("live.forbidden");
  if (status === "closed" && closeCode === 4404) errorEl.textContent = t("live.not_found");
  statusEl.textContent = text;
  statusEl.dataset.status = status;
  if (status === "open") {
    lastSentKey = ""; // resend what the frame shows after a reconnect
    share();
  }
}

function renderStudents() {
  studentsEl.textContent = students === 1 ? t("live.students_one") : t("live.students", { n: students });
  studentsEl.dataset.count = String(students);
}

// ---- predict, then reveal ----

function isOpenQuestion(s) {
  return !!s && s.frozen && s.question !== null && !s.revealed;
}

function chosenQuestion() {
  return root.querySelector('input[name="question"]:checked').value;
}

function cellText(cell) {
  return "index" in cell ? String(cell.index) : `(${cell.channel}, ${cell.y}, ${cell.x})`;
}

askBtn.addEventListener("click", async () => {
  const question = chosenQuestion();
  const hook = frame.hook();
  if (question === "value" && (!where || where.view !== "layer" || !hook)) {
    note.textContent = t("live.need_layer");
    return;
  }
  if (question === "class" && (!where || !where.run_id)) {
    note.textContent = t("live.need_model");
    return;
  }
  if (hook) hook.setState({ playing: false });
  clearTimeout(sendTimer);
  sendTimer = 0;
  const state = await frameState();
  if (!state) return;
  lastSentKey = JSON.stringify(state);
  sendPatch({ ...state, playing: false, frozen: true, question, revealed: false });
});

revealBtn.addEventListener("click", () => sendPatch({ revealed: true }));
resumeBtn.addEventListener("click", () => sendPatch({ frozen: false, revealed: false, question: null }));

async function updateQuestion() {
  const s = live;
  const asking = s.frozen && s.question !== null;
  askBtn.disabled = asking;
  revealBtn.disabled = !isOpenQuestion(s);
  resumeBtn.disabled = !s.frozen;
  iframe.inert = asking; // a question holds the view still
  if (!asking) {
    questionEl.textContent = "";
    countEl.textContent = "";
    truthEl.textContent = "";
    answersEl.replaceChildren();
    lastAnswers = null;
    truth = null;
    return;
  }
  questionEl.textContent =
    s.question === "class" ? t("live.question_class") : t("live.question_value", { cell: cellText(s.cell || {}), layer: s.layer });
  if (s.question === "class" && s.model_id) {
    classNames = (await getModel(s.model_id)).classes;
  }
  truth = null;
  truthEl.textContent = "";
  if (s.revealed) {
    truth = await fetchTruth(s);
  }
  renderQuestionAnswers();
}

/** The true answer, from the engine's numbers: the cell's value or the top class. */
async function fetchTruth(s) {
  if (s.question === "class") {
    const run = await getRun(s.run_id);
    const top = run.predictions[0];
    truthEl.textContent = t("live.truth_class", { name: top.class, p: `${(top.probability * 100).toFixed(1)}%` });
    return top.index;
  }
  const ex = await explain(s.run_id, s.layer, s.cell);
  truthEl.textContent = t("live.truth_value", { value: fmtNumber(ex.value) });
  return ex.value;
}

function renderQuestionAnswers() {
  if (!live || !live.frozen || live.question === null) return;
  const n = lastAnswers ? lastAnswers.count : 0;
  countEl.textContent = n === 1 ? t("live.answers_one") : t("live.answers", { n });
  countEl.dataset.count = String(n);
  renderAnswers(answersEl, lastAnswers, { truth, classNames });
}

// ---- the rest of the page ----

$('[data-testid="end-class"]').addEventListener("click", () => {
  if (confirm(t("live.end_confirm"))) client.send({ type: "end" });
});

const qrBig = document.getElementById("live-qr-big");
$('[data-testid="qr"]').addEventListener("click", () => {
  qrBig.hidden = false;
  qrBig.querySelector("button").focus();
});
qrBig.querySelector("button").addEventListener("click", () => (qrBig.hidden = true));
qrBig.addEventListener("keydown", (e) => {
  if (e.key === "Escape") qrBig.hidden = true;
});

const joinHost = new URL(root.dataset.joinUrl).hostname;
document.getElementById("live-localhost").hidden = !["localhost", "127.0.0.1", "::1", "[::1]"].includes(joinHost);

window.addEventListener("langchange", () => {
  renderStudents();
  if (live) updateQuestion();
  applyI18n(root);
  // The page in the frame reads the language when it loads.
  if (frame.location() !== null) iframe.contentWindow.location.reload();
});

applyI18n(document);
renderStudents();
if (!token) {
  errorEl.textContent = t("live.forbidden");
} else {
  client.connect();
  // Until the server says where the class is, show the home page to pick an image.
  setTimeout(() => {
    if (frame.location() === null && live === null) frame.navigate("/");
  }, 1500);
}
