// A student's page (/live/{code}): the presenter's view in a frame that follows every
// state the server sends, a toggle to explore on one's own and come back, and the
// predict-then-reveal questions.

import { explain, getModel, getRun } from "../api.js";
import { applyI18n, t } from "../i18n.js";
import { LiveClient } from "../live.js";
import "../messages/common.js";
import "../messages/live.js";
import { fmtNumber, renderAnswers } from "./live_answers.js";
import { LiveFrame } from "./live_frame.js";

const root = document.getElementById("live-follow");
const code = root.dataset.code;
const $ = (sel) => root.querySelector(sel);
const iframe = document.getElementById("live-frame");
const shield = document.getElementById("live-shield");
const waiting = document.getElementById("live-waiting");
const errorEl = document.getElementById("live-error");
const statusEl = $('[data-testid="live-status"]');
const modeEl = $('[data-testid="follow-mode"]');
const teacherEl = $('[data-testid="teacher-view"]');
const toggle = $('[data-testid="follow-toggle"]');
const quiz = document.getElementById("live-quiz");
const questionEl = $('#live-quiz [data-testid="question-text"]');
const form = document.getElementById("live-answer-form");
const valueInput = document.getElementById("live-answer-value");
const classSelect = document.getElementById("live-answer-class");
const sentEl = $('[data-testid="answer-sent"]');
const truthEl = $('#live-quiz [data-testid="truth"]');
const answersEl = document.getElementById("live-answers");

let following = true;
let live = null; // the presenter's latest state
let myAnswer = null;
let classNames = [];
let finalAnswers = null;

const frame = new LiveFrame(iframe, { onLoad: () => frame.setClass("live-follow", following) });
const client = new LiveClient(code, { onMessage, onStatus });

function onMessage(message) {
  switch (message.type) {
    case "state":
      live = message.state;
      errorEl.textContent = "";
      if (following) show(live);
      renderTeacher();
      updateQuiz();
      break;
    case "answered":
      myAnswer = message.answer;
      renderSent();
      break;
    case "answers":
      if (message.revealed) {
        finalAnswers = message;
        updateQuiz();
      }
      break;
    case "error":
      errorEl.textContent = message.message;
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
  if (status === "reconnecting" && closeCode === 4429) text = t("live.full");
  if (status === "closed" && closeCode === 4404) errorEl.textContent = t("live.not_found");
  statusEl.textContent = text;
  statusEl.dataset.status = status;
}

/** Put the presenter's view in the frame (the waiting note until there is one). */
function show(state) {
  const teacherChoosing = state.view === "home";
  waiting.hidden = !teacherChoosing;
  iframe.hidden = teacherChoosing;
  if (!teacherChoosing) frame.apply(state);
  frame.setClass("live-concealed", isOpenQuestion(state));
}

function setFollowing(on) {
  following = on;
  root.dataset.mode = on ? "following" : "exploring";
  iframe.inert = on;
  shield.hidden = !on;
  frame.setClass("live-follow", on);
  if (on) {
    if (live) show(live);
  } else {
    // Exploring: the student's own page, with its own controls and navigation.
    waiting.hidden = true;
    iframe.hidden = false;
    frame.setClass("live-concealed", false);
    if (frame.location() === null) frame.navigate("/");
  }
  renderMode();
}

function renderMode() {
  modeEl.textContent = t(following ? "live.following" : "live.exploring");
  toggle.textContent = t(following ? "live.explore" : "live.follow");
  toggle.setAttribute("aria-pressed", String(following));
  toggle.classList.toggle("btn-primary", !following);
}

function renderTeacher() {
  if (!live) return;
  const view = t(`live.view_${live.view}`, { layer: live.layer ?? "" });
  teacherEl.textContent = t("live.teacher_view", { view });
}

toggle.addEventListener("click", () => setFollowing(!following));
shield.addEventListener("click", () => {
  errorEl.textContent = t("live.follow_hint");
});

// ---- predict, then reveal ----

function isOpenQuestion(s) {
  return !!s && s.frozen && s.question !== null && !s.revealed;
}

function cellText(cell) {
  return "index" in cell ? String(cell.index) : `(${cell.channel}, ${cell.y}, ${cell.x})`;
}

let quizKey = "";
async function updateQuiz() {
  const s = live;
  const asking = !!s && s.frozen && s.question !== null;
  quiz.hidden = !asking;
  if (!asking) {
    quizKey = "";
    myAnswer = null;
    finalAnswers = null;
    return;
  }
  const key = JSON.stringify([s.question, s.run_id, s.layer, s.cell, s.step]);
  if (key !== quizKey) {
    // A new question: forget the last answer.
    quizKey = key;
    myAnswer = null;
    finalAnswers = null;
    valueInput.value = "";
  }
  questionEl.textContent =
    s.question === "class" ? t("live.question_class") : t("live.question_value", { cell: cellText(s.cell || {}), layer: s.layer });
  const isClass = s.question === "class";
  valueInput.hidden = isClass;
  classSelect.hidden = !isClass;
  if (isClass && s.model_id) await fillClasses(s.model_id);
  for (const control of form.elements) control.disabled = s.revealed;
  renderSent();
  truthEl.textContent = "";
  answersEl.replaceChildren();
  if (s.revealed) {
    let truth;
    if (isClass) {
      const top = (await getRun(s.run_id)).predictions[0];
      truth = top.index;
      truthEl.textContent = t("live.truth_class", { name: top.class, p: `${(top.probability * 100).toFixed(1)}%` });
    } else {
      truth = (await explain(s.run_id, s.layer, s.cell)).value;
      truthEl.textContent = t("live.truth_value", { value: fmtNumber(truth) });
    }
    if (finalAnswers) renderAnswers(answersEl, finalAnswers, { truth, classNames });
  }
}

let classesOf = null;
async function fillClasses(modelId) {
  if (classesOf === modelId) return;
  classNames = (await getModel(modelId)).classes;
  classesOf = modelId;
  classSelect.replaceChildren(
    ...classNames.map((name, i) => {
      const o = document.createElement("option");
      o.value = String(i);
      o.textContent = name;
      return o;
    }),
  );
}

function answerText(answer) {
  if (answer === null) return "";
  return live && live.question === "class" ? classNames[answer] ?? String(answer) : fmtNumber(answer);
}

function renderSent() {
  if (myAnswer === null) {
    sentEl.textContent = live && isOpenQuestion(live) ? t("live.frozen") : "";
    return;
  }
  sentEl.textContent = live && live.revealed ? t("live.you_said", { answer: answerText(myAnswer) }) : t("live.sent", { answer: answerText(myAnswer) });
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!isOpenQuestion(live)) return;
  if (live.question === "class") {
    client.send({ type: "answer", class: Number(classSelect.value) });
  } else {
    const value = Number(valueInput.value);
    if (valueInput.value.trim() === "" || !Number.isFinite(value)) {
      valueInput.focus();
      return;
    }
    client.send({ type: "answer", value });
  }
});

window.addEventListener("langchange", () => {
  renderMode();
  renderTeacher();
  if (live) updateQuiz();
  applyI18n(root);
  // The page in the frame reads the language when it loads.
  if (frame.location() !== null) iframe.contentWindow.location.reload();
});

applyI18n(document);
setFollowing(true);
client.connect();
