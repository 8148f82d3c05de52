// Home: choose a model, then upload / paste / drop an image, pick a sample, or draw a digit.
import { createRun, listModels, listSamples } from "../api.js";
import { applyI18n, formatNumber, t } from "../i18n.js";
import { className } from "../messages/classes.js";
import { errorText } from "../messages/common.js";
import "../messages/home.js";
import { formatPercent, renderProbBars } from "../render/probbars.js";
import { createState } from "../state.js";

const MODEL_KEY = "convscope.model";
const PAD_DEBOUNCE_MS = 250;

const $ = (id) => document.getElementById(id);
const cardsEl = document.querySelector(".model-cards");

const state = createState({ model: "" }, { url: ["model"] });
let models = [];

function currentModel() {
  return models.find((m) => m.id === state.get().model) || models[0];
}

function showError(el, err) {
  el.textContent = err ? errorText(err) : "";
}

// ---- model cards ----
function cardMeta(m) {
  const input = t("common.input_size", {
    h: m.input.height,
    w: m.input.width,
    c: m.input.channels,
  });
  return { input, dataset: t(`dataset.${m.dataset}`) };
}

function renderCards() {
  const selected = currentModel();
  cardsEl.replaceChildren();
  for (const m of models) {
    const { input, dataset } = cardMeta(m);
    const card = document.createElement("button");
    card.type = "button";
    card.className = "model-card";
    card.setAttribute("role", "radio");
    card.dataset.model = m.id;
    card.dataset.testid = "model-card";
    const checked = m.id === selected.id;
    card.setAttribute("aria-checked", String(checked));
    card.tabIndex = checked ? 0 : -1;
    card.setAttribute("aria-label", t("home.card_label", { name: m.name, dataset, input }));

    const name = document.createElement("span");
    name.className = "name";
    name.textContent = m.name;
    const meta = document.createElement("span");
    meta.className = "meta";
    const ds = badge(dataset);
    const size = document.createElement("span");
    size.textContent = input;
    const status = m.trained
      ? badge(
          m.test_accuracy != null
            ? t("common.test_accuracy", { acc: `${(m.test_accuracy * 100).toFixed(1)}%` })
            : t("common.trained"),
          "badge-good",
        )
      : badge(t("common.untrained"), "badge-warn");
    if (!m.trained) status.title = t("common.untrained_hint");
    meta.append(ds, size, status);
    const params = document.createElement("span");
    params.className = "meta";
    params.textContent = `${t("common.params", { n: formatNumber(m.params) })} · ${t("home.classes", { n: m.classes.length })}`;
    card.append(name, meta, params);
    card.addEventListener("click", () => selectModel(m.id, true));
    cardsEl.append(card);
  }
}

function badge(text, cls = "") {
  const b = document.createElement("span");
  b.className = `badge ${cls}`.trim();
  b.textContent = text;
  return b;
}

// Arrow keys move between cards, as in any radio group.
cardsEl.addEventListener("keydown", (e) => {
  const keys = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
  if (!(e.key in keys) || !models.length) return;
  e.preventDefault();
  const i = models.findIndex((m) => m.id === currentModel().id);
  const next = models[(i + keys[e.key] + models.length) % models.length];
  selectModel(next.id, true);
  cardsEl.querySelector(`[data-model="${next.id}"]`)?.focus();
});

function selectModel(id, remember) {
  state.set({ model: id });
  if (remember) {
    try {
      localStorage.setItem(MODEL_KEY, id);
    } catch {
      // storage blocked: the choice still lives in the URL
    }
  }
  renderCards();
  loadGallery();
  setupPadVisibility();
  showError($("upload-error"), null);
}

// ---- runs ----
async function startRun(source, statusEl, errorEl) {
  const m = currentModel();
  if (!m) return;
  showError(errorEl, null);
  statusEl.innerHTML = "";
  const spin = document.createElement("span");
  spin.className = "spinner";
  spin.setAttribute("aria-hidden", "true");
  statusEl.append(spin, ` ${t("home.running")}`);
  try {
    const run = await createRun(m.id, source);
    location.assign(`/runs/${encodeURIComponent(run.run_id)}`);
  } catch (err) {
    statusEl.textContent = "";
    showError(errorEl, err);
  }
}

function uploadFile(file) {
  if (!file) return;
  startRun({ file }, $("upload-status"), $("upload-error"));
}

$("image-input").addEventListener("change", (e) => {
  uploadFile(e.target.files[0]);
  e.target.value = ""; // choosing the same file again should run again
});

const drop = $("dropzone");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => {
    e.preventDefault();
    drop.classList.add("dragover");
  });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("dragover"));
}
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  uploadFile(e.dataTransfer?.files?.[0]);
});
// A file dropped anywhere else should not make the browser navigate away.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

document.addEventListener("paste", (e) => {
  const item = [...(e.clipboardData?.items || [])].find((i) => i.kind === "file");
  if (!item) return;
  e.preventDefault();
  uploadFile(item.getAsFile());
});

// ---- samples ----
let galleryToken = 0;
async function loadGallery() {
  const m = currentModel();
  const gallery = $("gallery");
  const token = ++galleryToken;
  showError($("gallery-error"), null);
  try {
    const samples = await listSamples(m.dataset);
    if (token !== galleryToken) return;
    gallery.replaceChildren();
    if (!samples.length) {
      const p = document.createElement("p");
      p.className = "gallery-empty";
      p.textContent = t("home.samples_none");
      gallery.append(p);
      return;
    }
    for (const s of samples) {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "sample";
      b.dataset.testid = "sample";
      b.dataset.sample = s.id;
      b.setAttribute("aria-label", t("home.sample_label", { label: className(s.label) }));
      const img = document.createElement("img");
      img.src = s.url;
      img.alt = "";
      img.loading = "lazy";
      const cap = document.createElement("span");
      cap.textContent = className(s.label);
      b.append(img, cap);
      b.addEventListener("click", () =>
        startRun({ sample: s.id }, $("upload-status"), $("gallery-error")),
      );
      gallery.append(b);
    }
  } catch (err) {
    if (token === galleryToken) showError($("gallery-error"), err);
  }
}

// ---- drawing pad (digit models) ----
const pad = $("pad");
const ctx = pad.getContext("2d");
let drawing = false;
let last = null;
let padTimer = 0;
let padSeq = 0;
let padDirty = false;
let lastPreds = null;

function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
  padDirty = false;
  lastPreds = null;
  padSeq++; // answers to earlier drawings are ignored
  clearTimeout(padTimer);
  padTimer = 0;
  setPadBusy(false);
  $("live-preds").replaceChildren();
  $("live-top").textContent = "";
  $("live-hint").hidden = false;
  $("pad-open").hidden = true;
  showError($("pad-error"), null);
}

function padPoint(e) {
  const r = pad.getBoundingClientRect();
  return [((e.clientX - r.left) / r.width) * pad.width, ((e.clientY - r.top) / r.height) * pad.height];
}

function strokeTo(p, pressure) {
  // Thick round strokes, like the pen strokes MNIST digits were written with.
  ctx.strokeStyle = "#fff";
  ctx.fillStyle = "#fff";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = 20 * (pressure > 0 && pressure !== 0.5 ? 0.7 + 0.6 * pressure : 1);
  ctx.beginPath();
  if (last) {
    ctx.moveTo(last[0], last[1]);
    ctx.lineTo(p[0], p[1]);
    ctx.stroke();
  } else {
    ctx.arc(p[0], p[1], ctx.lineWidth / 2, 0, 2 * Math.PI);
    ctx.fill();
  }
  last = p;
  padDirty = true;
}

pad.addEventListener("pointerdown", (e) => {
  e.preventDefault();
  pad.setPointerCapture(e.pointerId);
  drawing = true;
  last = null;
  strokeTo(padPoint(e), e.pressure);
  schedulePadRun();
});
pad.addEventListener("pointermove", (e) => {
  if (!drawing) return;
  const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [e];
  for (const ev of events.length ? events : [e]) strokeTo(padPoint(ev), ev.pressure);
  schedulePadRun();
});
for (const type of ["pointerup", "pointercancel", "lostpointercapture"]) {
  pad.addEventListener(type, () => {
    if (!drawing) return;
    drawing = false;
    last = null;
    schedulePadRun({ final: true });
  });
}
$("pad-clear").addEventListener("click", clearPad);

// aria-busy on the predictions says a newer drawing is still being run.
function setPadBusy(busy) {
  $("live-preds").setAttribute("aria-busy", String(busy));
}

// While drawing, the network runs at most every PAD_DEBOUNCE_MS (live predictions); when a
// stroke ends it runs once more, PAD_DEBOUNCE_MS later, on the finished drawing.
function schedulePadRun({ final = false } = {}) {
  setPadBusy(true);
  if (padTimer && !final) return;
  clearTimeout(padTimer);
  padTimer = setTimeout(() => {
    padTimer = 0;
    runPad();
  }, PAD_DEBOUNCE_MS);
}

async function runPad() {
  if (!padDirty) return setPadBusy(false);
  const seq = ++padSeq;
  const blob = await new Promise((resolve) => pad.toBlob(resolve, "image/png"));
  try {
    const run = await createRun(currentModel().id, {
      file: new File([blob], "digit.png", { type: "image/png" }),
    });
    if (seq !== padSeq) return; // a newer stroke has been sent since
    setPadBusy(false);
    showError($("pad-error"), null);
    lastPreds = run.predictions;
    renderLive();
    const open = $("pad-open");
    open.href = `/runs/${encodeURIComponent(run.run_id)}`;
    open.hidden = false;
  } catch (err) {
    if (seq === padSeq) {
      setPadBusy(false);
      showError($("pad-error"), err);
    }
  }
}

function renderLive() {
  if (!lastPreds) return;
  const top = renderProbBars($("live-preds"), lastPreds, {
    order: "index",
    testid: "live-prediction",
    label: className,
  });
  $("live-hint").hidden = true;
  const topEl = $("live-top");
  topEl.textContent = className(top.class);
  const small = document.createElement("small");
  small.textContent = formatPercent(top.probability);
  topEl.append(small);
}

function setupPadVisibility() {
  const digit = currentModel()?.preprocess === "digit";
  $("pad-panel").hidden = !digit;
  $("input-grid").classList.toggle("with-pad", digit);
}

// ---- start ----
async function init() {
  applyI18n();
  clearPad();
  try {
    models = await listModels();
  } catch (err) {
    cardsEl.replaceChildren();
    showError($("models-error"), err);
    return;
  }
  let stored = null;
  try {
    stored = localStorage.getItem(MODEL_KEY);
  } catch {
    stored = null;
  }
  const wanted = state.get().model || stored;
  selectModel(models.some((m) => m.id === wanted) ? wanted : models[0].id, false);
}

window.addEventListener("langchange", () => {
  if (!models.length) return;
  renderCards();
  loadGallery();
  if (lastPreds) renderLive();
});

init();
