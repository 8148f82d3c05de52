// The convolution playground: the student sets the input, kernels, padding, stride,
// dilation, activation and pooling; the API (the engine) computes everything; this module
// draws it, step by step, with the same player as the layer views. The whole state lives
// in the address (#s=...), and classroom mode drives it through window.convscope.

import { listSamples } from "../api.js";
import { applyI18n, t } from "../i18n.js";
import { errorText } from "../messages/common.js";
import "../messages/layer.js";
import "../messages/playground.js";
import { compute, explainCell, gridFromImage, requestFor } from "../playground/client.js";
import { drawCurve, drawGrid, maxAbs } from "../playground/draw.js";
import {
  DEFAULT_TRANSPOSED,
  KERNEL_PRESETS,
  TEXTBOOK,
  initialState,
  isFixedSize,
  kernelFor,
  randomInput,
} from "../playground/presets.js";
import { compact, expand, linkFor, readUrl, writeUrl } from "../playground/urlstate.js";
import { Player, SPEEDS, bindControls, bindKeys } from "../player.js";

const LIMITS = { n: [1, 16], nT: [1, 8], f: [1, 7], fT: [1, 5], count: [1, 4] };
const RECOMPUTE_DELAY_MS = 120;
const URL_DELAY_MS = 250;

const root = document.getElementById("playground");
const $ = (sel) => root.querySelector(sel);
const control = (name) => root.querySelector(`[data-pg="${name}"]`);

// --- small DOM helper ---------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = v;
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined) el.append(c);
  return el;
}

/** A number as the page writes it: up to 4 decimals, no trailing zeros. */
function fmt(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  const s = String(Number(Number(v).toFixed(4)));
  return s === "-0" ? "0" : s;
}

const clone = (v) => JSON.parse(JSON.stringify(v));
const clampInt = (v, lo, hi) => Math.min(hi, Math.max(lo, Math.round(v)));

// --- state ----------------------------------------------------------------------------------

let state = readUrl() || initialState();
state.transposed = state.transposed || { ...DEFAULT_TRANSPOSED };
// Every change of the state starts a new generation. A response is shown only if it was
// asked for by the current generation: clicking presets quickly must never leave the page
// showing the result of an earlier state (requests of older generations are also aborted).
let stateGen = 0;
let result = null; // the last good response of /conv or /transposed
let resultMode = null; // the mode that response was computed for
let resultState = null; // the state that response (or failure) was computed for
let resultGen = -1; // the generation of resultState; current when it equals stateGen
let failure = null; // the last error (a 422 keeps the sizes in failure.details)
let pendingCell = null; // a preset's named cell, placed once the output's shape is known
let pendingStep = null; // a step asked for (classroom mode) before its state's response
let computeCtl = null; // aborts the /conv or /transposed request of an older generation
let explainCtl = new AbortController(); // aborts the explain requests of an older generation
let recomputeTimer = 0;
let urlTimer = 0;
const explained = new Map(); // "generation:step" -> explanation fetched on demand (large results)
const listeners = new Set();

const player = new Player({
  total: 1,
  step: state.step || 0,
  onChange: () => {
    state.step = player.step;
    scheduleUrl();
    render();
    notify();
  },
  isReady: (step) => cellInfo(step) !== null,
});

function scheduleUrl() {
  clearTimeout(urlTimer);
  urlTimer = setTimeout(() => writeUrl(state), URL_DELAY_MS);
}

function notify() {
  const snapshot = hookState();
  for (const fn of listeners) fn(snapshot);
}

/** Change the state; `structure` rebuilds the kernel editors. Then recomputes. */
function update(patch, { structure = false, keepPreset = false } = {}) {
  Object.assign(state, patch);
  if (!keepPreset) state.preset = null;
  stateChanged();
  if (structure) buildKernelEditors();
  writeUrl(state);
  scheduleRecompute();
  render(); // the readout shows "…" (not the old value) until the new response
  notify();
}

/** A new generation: every response still on its way belongs to an outdated state. */
function stateChanged() {
  stateGen += 1;
  if (computeCtl) computeCtl.abort();
  computeCtl = null;
  explainCtl.abort();
  explainCtl = new AbortController();
  explained.clear();
  setBusy(true);
}

/** The result on the page belongs to the current state. */
const isCurrent = () => resultGen === stateGen;

/** aria-busy on the stage: true until the current state's result (and the arithmetic of the
 * current cell) is on the page; tests and assistive technology wait for "false". */
function setBusy(busy) {
  $("[data-pg-stage]").setAttribute("aria-busy", String(busy || !isCurrent()));
}

function scheduleRecompute() {
  clearTimeout(recomputeTimer);
  recomputeTimer = setTimeout(recompute, RECOMPUTE_DELAY_MS);
}

async function recompute() {
  clearTimeout(recomputeTimer);
  const gen = stateGen;
  const sent = clone(state); // what the response describes, whatever happens to `state`
  if (computeCtl) computeCtl.abort();
  const ctl = new AbortController();
  computeCtl = ctl;
  setBusy(true);
  try {
    const response = await compute(sent, ctl.signal);
    if (gen !== stateGen) return; // an outdated state: its response is never shown
    result = response;
    failure = null;
  } catch (err) {
    if (err.name === "AbortError" || gen !== stateGen) return;
    result = null;
    failure = err;
  }
  if (computeCtl === ctl) computeCtl = null;
  resultMode = sent.mode;
  resultState = sent;
  resultGen = gen;
  const total = totalSteps();
  player.setTotal(total);
  if (pendingCell && result) {
    player.goTo(stepOfCell(pendingCell));
    pendingCell = null;
  } else if (pendingStep !== null) {
    player.goTo(Math.min(pendingStep, total - 1));
    pendingStep = null;
  } else {
    player.goTo(Math.min(state.step || 0, total - 1));
  }
  state.step = player.step;
  writeUrl(state);
  render();
  notify();
}

// --- steps: every frame is a function of the step number -------------------------------------

/** The stages the player walks through, each with its output shape (C, H, W). */
function stages() {
  if (!result) return [];
  if (resultMode === "transposed") return [{ stage: "transposed", shape: result.shape }];
  const list = [];
  if (result.conv) list.push({ stage: "conv", shape: result.conv.shape });
  if (result.pool) list.push({ stage: "pool", shape: result.pool.shape });
  return list;
}

const cellsOf = (shape) => shape[0] * shape[1] * shape[2];

function totalSteps() {
  return Math.max(1, stages().reduce((n, s) => n + cellsOf(s.shape), 0));
}

/** {stage, index, channel, y, x, shape} of a step. */
function cellOfStep(step) {
  let rest = step;
  for (const s of stages()) {
    const n = cellsOf(s.shape);
    if (rest < n) {
      const [, hh, ww] = s.shape;
      const channel = Math.floor(rest / (hh * ww));
      const y = Math.floor((rest % (hh * ww)) / ww);
      return { stage: s.stage, index: rest, channel, y, x: rest % ww, shape: s.shape };
    }
    rest -= n;
  }
  return null;
}

/** The step of (channel, y, x) in the first stage. */
function stepOfCell([c, y, x]) {
  const first = stages()[0];
  if (!first) return 0;
  const [cc, hh, ww] = first.shape;
  return Math.min(cc - 1, c) * hh * ww + Math.min(hh - 1, y) * ww + Math.min(ww - 1, x);
}

/** The arithmetic of a step's cell: from the response, or fetched once (null meanwhile).
 * Fetched only for the current state's result, and asked for the state of that result. */
function cellInfo(step) {
  const cell = cellOfStep(step);
  if (!cell) return null;
  const list =
    cell.stage === "conv" ? result.conv.cells : cell.stage === "pool" ? result.pool.cells : result.cells;
  if (list) return list[cell.index];
  if (!isCurrent()) return null; // the new state's response will replace this result
  const gen = resultGen;
  const key = `${gen}:${step}`;
  if (explained.has(key)) return explained.get(key);
  explained.set(key, null);
  const ref = { stage: cell.stage === "pool" ? "pool" : "conv", channel: cell.channel, y: cell.y, x: cell.x };
  explainCell(resultState, ref, explainCtl.signal)
    .then((info) => {
      if (gen !== stateGen) return;
      explained.set(key, info);
      if (player.step === step) render();
    })
    .catch((err) => {
      if (err.name !== "AbortError" && gen === stateGen) setStatus(errorText(err));
    });
  return null;
}

// --- controls ---------------------------------------------------------------------------------

function channels() {
  return state.input.length;
}

function side() {
  return state.input[0].length;
}

function kernelSize() {
  return state.kernels[0].w[0].length;
}

function resizeGrid(grid, n, fill = () => 0) {
  return Array.from({ length: n }, (_, r) => Array.from({ length: n }, (_, c) => (grid[r] && c < grid[r].length ? grid[r][c] : fill())));
}

/** A kernel grid resized about its centre (the centre of an odd kernel stays the centre). */
function resizeCentred(grid, f) {
  const old = grid.length;
  const shift = Math.floor((old - f) / 2);
  return Array.from({ length: f }, (_, r) =>
    Array.from({ length: f }, (_, c) => {
      const rr = r + shift;
      const cc = c + shift;
      return rr >= 0 && rr < old && cc >= 0 && cc < old ? grid[rr][cc] : 0;
    }),
  );
}

function setChannels(c) {
  const n = side();
  const input = Array.from({ length: c }, (_, i) => state.input[i] || randomInput(1, n)[0]);
  const f = kernelSize();
  const kernels = state.kernels.map((k) => {
    const w = Array.from({ length: c }, (_, i) => k.w[i] || (k.preset ? kernelFor(k.preset, f, 1).w[0] : resizeGrid([], f)));
    return { ...k, w };
  });
  update({ input, kernels }, { structure: true });
}

function setSize(n) {
  update({ input: state.input.map((g) => resizeGrid(g, n)) });
}

function setKernelSize(f) {
  const c = channels();
  const kernels = state.kernels.map((k) => {
    if (k.preset && !isFixedSize(k.preset)) return { ...kernelFor(k.preset, f, c), b: k.b };
    return { ...k, w: k.w.map((g) => resizeCentred(g, f)), preset: f === 3 ? k.preset : null };
  });
  update({ kernels }, { structure: true });
}

function setKernelCount(count) {
  const f = kernelSize();
  const kernels = Array.from({ length: count }, (_, i) => state.kernels[i] || kernelFor("random", f, channels()));
  update({ kernels }, { structure: true });
}

function setMode(mode) {
  const patch = { mode };
  if (mode === "transposed") {
    // smaller limits: the output grows with the stride
    const n = Math.min(side(), LIMITS.nT[1]);
    patch.input = state.input.map((g) => resizeGrid(g, n));
    const f = Math.min(kernelSize(), LIMITS.fT[1]);
    if (f !== kernelSize()) patch.kernels = state.kernels.map((k) => ({ ...k, w: k.w.map((g) => resizeCentred(g, f)) }));
  }
  update(patch, { structure: true });
}

/** Read an integer control; null while it is empty or out of its range. */
function readInt(el) {
  if (el.value.trim() === "") return null;
  const v = Number(el.value);
  if (!Number.isInteger(v)) return null;
  if ((el.min !== "" && v < Number(el.min)) || (el.max !== "" && v > Number(el.max))) return null;
  return v;
}

function onInt(name, fn) {
  const el = control(name);
  el.addEventListener("input", () => {
    const v = readInt(el);
    if (v !== null) fn(v);
  });
}

function wireControls() {
  control("channels").addEventListener("change", (e) => setChannels(Number(e.target.value)));
  onInt("size", (n) => n !== side() && setSize(n));
  control("random").addEventListener("click", () => update({ input: randomInput(channels(), side()) }));
  onInt("f", (f) => f !== kernelSize() && setKernelSize(f));
  onInt("count", (k) => k !== state.kernels.length && setKernelCount(k));
  control("padding-mode").addEventListener("change", (e) => {
    const v = e.target.value;
    update({ padding: v === "p" ? Math.max(1, readInt(control("padding")) ?? 1) : v });
  });
  onInt("padding", (p) => update({ padding: p }));
  onInt("stride", (s) => update({ stride: s }));
  onInt("dilation", (d) => update({ dilation: d }));
  control("activation").addEventListener("change", (e) => update({ activation: e.target.value }));
  control("slope").addEventListener("input", (e) => {
    const v = Number(e.target.value);
    if (e.target.value !== "" && v >= 0 && v <= 1) update({ slope: v });
  });
  control("pool-after").addEventListener("change", (e) => update({ pool: { ...state.pool, after: e.target.checked } }));
  control("pool-mode").addEventListener("change", (e) => update({ pool: { ...state.pool, mode: e.target.value } }));
  onInt("pool-kernel", (k) => update({ pool: { ...state.pool, kernel: k } }));
  onInt("pool-stride", (s) => update({ pool: { ...state.pool, stride: s } }));
  for (const [name, key] of [
    ["t-stride", "stride"],
    ["t-padding", "padding"],
    ["t-output-padding", "output_padding"],
    ["t-dilation", "dilation"],
  ]) {
    onInt(name, (v) => update({ transposed: { ...state.transposed, [key]: v } }));
  }
  for (const btn of root.querySelectorAll(".pg-mode")) {
    btn.addEventListener("click", () => btn.dataset.mode !== state.mode && setMode(btn.dataset.mode));
  }
  control("use-image").addEventListener("click", useImage);
  $('[data-testid="share"]').addEventListener("click", async () => {
    const link = linkFor(state);
    try {
      await navigator.clipboard.writeText(link);
      setStatus(t("pg.link_copied"));
    } catch {
      setStatus(link); // no clipboard (http, permissions): show the link to copy by hand
    }
  });
}

async function useImage() {
  const file = control("file").files[0];
  const sample = control("sample").value;
  if (!file && !sample) return;
  const color = control("colour").value;
  const zoom = Number(control("zoom").value) || 1;
  const n = Math.min(side(), state.mode === "transposed" ? LIMITS.nT[1] : LIMITS.n[1]);
  setStatus(t("common.loading"));
  try {
    const body = await gridFromImage({ file, sample: file ? null : sample, size: Math.max(2, n), color, zoom });
    const input = body.input.data;
    const c = input.length;
    const f = kernelSize();
    const kernels = state.kernels.map((k) => ({
      ...k,
      w: Array.from({ length: c }, (_, i) => k.w[i] || (k.preset ? kernelFor(k.preset, f, 1).w[0] : k.w[0])),
    }));
    setStatus("");
    update({ input, kernels }, { structure: true });
  } catch (err) {
    setStatus(errorText(err));
  }
}

async function loadSamples() {
  const select = control("sample");
  try {
    const samples = await listSamples();
    select.replaceChildren(
      h("option", { value: "", text: "—" }),
      ...samples.map((s) => h("option", { value: s.id, text: `${s.label} (${s.dataset})` })),
    );
  } catch {
    select.replaceChildren(h("option", { value: "", text: "—" }));
  }
}

/** Put the state's values into the controls (the focused one is left to the student). */
function syncControls() {
  const set = (name, value) => {
    const el = control(name);
    if (!el || (document.activeElement === el && el.type !== "checkbox" && el.tagName !== "SELECT")) return;
    if (el.type === "checkbox") {
      if (el.checked !== Boolean(value)) el.checked = Boolean(value);
    } else if (el.value !== String(value)) {
      el.value = String(value); // written only when it changes: no layout work while playing
    }
  };
  set("channels", channels());
  control("size").max = String(state.mode === "transposed" ? LIMITS.nT[1] : LIMITS.n[1]);
  set("size", side());
  control("f").max = String(state.mode === "transposed" ? LIMITS.fT[1] : LIMITS.f[1]);
  set("f", kernelSize());
  set("count", state.kernels.length);
  const p = state.padding;
  set("padding-mode", typeof p === "number" ? (p === 0 ? "valid" : "p") : p);
  const shownPad = typeof p === "number" ? p : result?.conv ? result.conv.pads[0] : 0;
  set("padding", shownPad);
  set("stride", state.stride);
  set("dilation", state.dilation);
  set("activation", state.activation);
  set("slope", state.slope);
  $("[data-pg-slope]").hidden = state.activation !== "leaky_relu";
  set("pool-after", state.pool.after);
  set("pool-mode", state.pool.mode);
  set("pool-kernel", state.pool.kernel);
  set("pool-stride", state.pool.stride);
  set("t-stride", state.transposed.stride);
  set("t-padding", state.transposed.padding);
  set("t-output-padding", state.transposed.output_padding);
  set("t-dilation", state.transposed.dilation);
  for (const btn of root.querySelectorAll(".pg-mode")) btn.setAttribute("aria-checked", String(btn.dataset.mode === state.mode));
  const show = (section, on) => (root.querySelector(`[data-pg-section="${section}"]`).hidden = !on);
  show("kernels", state.mode !== "pool");
  show("geometry", state.mode === "conv");
  show("activation", state.mode === "conv");
  show("pool", state.mode !== "transposed");
  show("transposed", state.mode === "transposed");
  $("[data-pg-pool-after]").hidden = state.mode !== "conv";
  root.querySelector('[data-pg-section="pool"] .pg-row').hidden = state.mode === "conv" && !state.pool.after;
  for (const btn of root.querySelectorAll("[data-preset]")) btn.setAttribute("aria-pressed", String(btn.dataset.preset === state.preset));
  const lesson = $("[data-pg-lesson]");
  lesson.hidden = !state.preset;
  const text = state.preset ? t(`pg.lesson.${state.preset}`) : "";
  if (lesson.textContent !== text) lesson.textContent = text;
}

// --- kernel editors -----------------------------------------------------------------------------

function buildKernelEditors() {
  const box = $("[data-pg-kernels]");
  const f = kernelSize();
  box.replaceChildren(
    ...state.kernels.map((k, ki) => {
      const select = h("select", { "data-testid": `kernel-preset-${ki}`, "aria-label": t("pg.kernel_preset") });
      select.append(h("option", { value: "", text: t("pg.custom") }));
      for (const name of KERNEL_PRESETS) select.append(h("option", { value: name, text: t(`pg.kp.${name}`) }));
      select.value = k.preset || "";
      select.addEventListener("change", () => {
        if (!select.value) return;
        const kernels = clone(state.kernels);
        const next = kernelFor(select.value, state.mode === "transposed" ? Math.min(f, LIMITS.fT[1]) : f, channels());
        kernels[ki] = { ...next, b: kernels[ki].b };
        // a fixed 3 x 3 preset sets f = 3 for every kernel
        const size = next.w[0].length;
        if (size !== f) kernels.forEach((kk, i) => i !== ki && (kk.w = kk.w.map((g) => resizeCentred(g, size))));
        update({ kernels }, { structure: true });
      });
      const bias = h("input", { type: "number", step: "any", value: String(k.b), "data-testid": `bias-${ki}`, class: "pg-bias" });
      bias.addEventListener("input", () => {
        const v = Number(bias.value);
        if (bias.value.trim() === "" || !Number.isFinite(v)) return;
        const kernels = clone(state.kernels);
        kernels[ki].b = v;
        update({ kernels });
      });
      const grids = k.w.map((grid, ci) => {
        const table = h("div", { class: "pg-kgrid", style: `grid-template-columns: repeat(${f}, 1fr)`, role: "group", "aria-label": t("pg.kernel_channel", { k: ki, c: ci }) });
        grid.forEach((row, r) =>
          row.forEach((v, c) => {
            const cell = h("input", { type: "number", step: "any", value: fmt(v), "aria-label": t("pg.weight_at", { k: ki, c: ci, y: r, x: c }), "data-k": ki, "data-c": ci, "data-y": r, "data-x": c });
            cell.addEventListener("input", () => {
              const num = Number(cell.value);
              if (cell.value.trim() === "" || !Number.isFinite(num)) return;
              const kernels = clone(state.kernels);
              kernels[ki].w[ci][r][c] = num;
              kernels[ki].preset = null;
              select.value = "";
              update({ kernels });
            });
            table.append(cell);
          }),
        );
        return h("div", { class: "pg-kch" }, channels() > 1 ? h("span", { class: "pg-kch-label", text: t("pg.channel_n", { c: ci }) }) : null, table);
      });
      return h(
        "div",
        { class: "pg-kernel", "data-kernel": ki },
        h("div", { class: "pg-kernel-head" }, h("b", { text: t("pg.kernel_n", { k: ki }) }), select, h("label", { class: "pg-bias-label" }, h("span", { text: t("pg.bias") }), bias)),
        h("div", { class: "pg-kchs" }, ...grids),
      );
    }),
  );
}

// --- presets ------------------------------------------------------------------------------------

function buildPresets() {
  const box = $("[data-pg-presets]");
  box.replaceChildren(
    ...TEXTBOOK.map((p) => {
      const btn = h("button", { type: "button", class: "pg-preset", "data-preset": p.name, "data-testid": `preset-${p.name}`, "aria-pressed": String(state.preset === p.name), text: t(`pg.preset.${p.name}`) });
      btn.addEventListener("click", () => loadPreset(p));
      return btn;
    }),
  );
}

function loadPreset(p) {
  player.pause();
  pendingCell = p.cell;
  const next = { ...clone(p.state), transposed: clone(p.state.transposed || DEFAULT_TRANSPOSED), preset: p.name, step: 0 };
  state = next;
  buildKernelEditors();
  update({}, { keepPreset: true });
}

// --- drawing ------------------------------------------------------------------------------------

let stageKey = "";
let parts = {};

function setStatus(text) {
  $("[data-pg-status]").textContent = text;
}

function figure(title, ...children) {
  return h("figure", { class: "pg-fig" }, h("figcaption", { text: title }), ...children);
}

function numberSpan(v, cls = "") {
  return h("b", { class: `lv-num ${cls}`.trim(), text: fmt(v) });
}

function renderFormula() {
  const general = $("[data-pg-general]");
  const filled = $('[data-testid="output-size"]');
  const why = $("[data-pg-why]");
  const res = resultMode === state.mode ? result : null; // null while a mode change is in flight
  const lines = [];
  const reasons = [];
  let shape = "";
  general.textContent =
    state.mode === "transposed"
      ? "(n - 1)×s - 2p + d(f - 1) + output_padding + 1"
      : "floor((n + 2p - d(f - 1) - 1) / s) + 1";
  const details = failure && failure.details && failure.details.size ? failure.details : null;
  const addSize = (label, size, stage) => {
    if (!size) return;
    const same = size.height.formula === size.width.formula;
    const axes = same ? [["", size.width]] : [[t("pg.height"), size.height], [t("pg.width"), size.width]];
    for (const [axis, s] of axes) lines.push(`${label}${axis ? ` ${axis}` : ""}: ${s.formula}`);
    for (const [axis, s] of same ? [["", size.width]] : [["height", size.height], ["width", size.width]]) {
      const axisName = axis ? t(`pg.axis_${axis}`) : t("pg.axis_both");
      if (stage === "transposed") continue;
      if (!s.fits) {
        reasons.push(t(stage === "pool" ? "pg.why_pool_no_fit" : "pg.why_no_fit", { ...s, axis: axisName, p: s.p ?? `${s.pad_before}+${s.pad_after}` }));
      } else if (s.leftover > 0) {
        reasons.push(t("pg.why_leftover", { ...s, axis: axisName }));
      }
      if (stage === "conv" && s.fits && s.d > 1) reasons.push(t("pg.why_dilation", s));
    }
  };
  if (state.mode === "transposed") {
    if (res) {
      addSize(t("pg.stage_transposed"), res.size, "transposed");
      shape = t("pg.shape_line", { c: res.shape[0], h: res.shape[1], w: res.shape[2] });
      const w = res.size.width;
      reasons.push(t(w.output_padding ? "pg.why_transposed_op" : "pg.why_transposed", { ...w, z: w.s - 1 }));
    }
  } else {
    const convSize = res?.conv?.size || (details && details.stage === "conv" ? details.size : null);
    const poolSize = res?.pool?.size || (details && details.stage === "pool" ? details.size : null);
    if (state.mode === "conv") addSize(t("pg.stage_conv"), convSize, "conv");
    if (state.mode === "conv" && state.padding === "same" && res?.conv) reasons.push(t("pg.why_same", { p: res.conv.pads.join(", ") }));
    if (state.mode === "pool" || state.pool.after) addSize(t("pg.stage_pool"), poolSize, "pool");
    const last = res?.pool || res?.conv;
    if (last) shape = t("pg.shape_line", { c: last.shape[0], h: last.shape[1], w: last.shape[2] });
  }
  if (failure && !details) reasons.push(errorText(failure));
  filled.replaceChildren(...lines.map((line) => h("div", { text: line })));
  $("[data-pg-shape]").textContent = shape;
  why.replaceChildren(...reasons.map((r) => h("span", { text: r })));
  why.classList.toggle("pg-why-bad", Boolean(failure));
}

function renderReadout(cell, info) {
  const pos = $('[data-testid="cell-position"]');
  const value = $('[data-testid="cell-value"]');
  const label = $("[data-pg-stage-label]");
  const count = $("[data-pg-stepcount]");
  if (!cell) {
    pos.textContent = "";
    value.textContent = "";
    label.textContent = "";
    count.textContent = "";
    return;
  }
  label.textContent = t(`pg.cell_${cell.stage}`);
  pos.textContent = `(${cell.channel}, ${cell.y}, ${cell.x})`;
  // an earlier state's value is never shown as the value of the current state
  const shown = info && isCurrent();
  value.textContent = shown ? fmt(cell.stage === "conv" ? info.output : info.value) : "…";
  count.textContent = t("pg.step_of", { i: player.step + 1, n: player.total });
}

/** A feature map's values with the cells after the current one left empty (filling in). */
function filling(map, channel, current, limit) {
  return map.map((row, y) => row.map((v, x) => (channel < current || (channel === current && y * row.length + x <= limit) ? v : null)));
}

function padKind(pads, rows, cols) {
  const [pt, pb, pl, pr] = pads;
  return (r, c) => (r < pt || r >= rows - pb || c < pl || c >= cols - pr ? "pad" : null);
}

function canvasFor(key, cls = "") {
  if (!parts[key]) parts[key] = h("canvas", { class: `pg-canvas ${cls}`.trim() });
  return parts[key];
}

function stageWidth() {
  return Math.max(320, $("[data-pg-stage]").clientWidth || 900);
}

function render() {
  syncControls();
  renderFormula();
  const stage = $("[data-pg-stage]");
  const cell = result ? cellOfStep(player.step) : null;
  const info = cell ? cellInfo(player.step) : null;
  renderReadout(cell, info);
  setBusy(Boolean(cell) && !info);
  if (!result) {
    stageKey = "";
    stage.replaceChildren(h("p", { class: "pg-empty", text: failure ? t("pg.no_output") : t("common.loading") }));
    return;
  }
  if (!cell) return;
  if (cell.stage === "conv") renderConv(stage, cell, info);
  else if (cell.stage === "pool") renderPool(stage, cell, info);
  else renderTransposed(stage, cell, info);
}

function rebuild(stage, key, build) {
  if (key === stageKey) return false;
  stageKey = key;
  parts = {};
  stage.replaceChildren(build());
  return true;
}

/** Open a small editor over input cell (c, y, x) drawn at `rect` inside `anchor`. */
function editCell(anchor, c, y, x, rect) {
  if (state.input[c]?.[y]?.[x] === undefined) return; // the grid changed meanwhile
  const old = anchor.querySelector(".pg-cell-editor");
  if (old) old.remove();
  const input = h("input", { type: "number", step: "any", class: "pg-cell-editor", value: fmt(state.input[c][y][x]), "aria-label": t("pg.edit_cell", { c, y, x }), "data-testid": "cell-editor" });
  Object.assign(input.style, { left: `${rect.left}px`, top: `${rect.top}px`, width: `${Math.max(56, rect.width)}px`, height: `${Math.max(26, rect.height)}px` });
  anchor.append(input);
  input.focus();
  input.select();
  let done = false;
  const commit = (save) => {
    if (done) return;
    done = true;
    const v = Number(input.value);
    input.remove();
    if (save && input.value.trim() !== "" && Number.isFinite(v) && v !== state.input[c][y][x]) {
      const grid = clone(state.input);
      grid[c][y][x] = v;
      update({ input: grid });
    }
  };
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter") commit(true);
    else if (e.key === "Escape") commit(false);
    e.stopPropagation();
  });
  input.addEventListener("blur", () => commit(true));
}

/** Clicks on an input map open the editor on the real (unpadded) cell under the pointer. */
function editable(canvas, channel, getGeom) {
  canvas.classList.add("pg-editable");
  canvas.title = t("pg.edit_hint");
  canvas.addEventListener("click", (ev) => {
    const geom = getGeom();
    if (!geom) return;
    const r = canvas.getBoundingClientRect();
    const hit = geom.cellAt(ev.clientX - r.left, ev.clientY - r.top);
    if (!hit) return;
    const host = canvas.parentElement;
    const hr = host.getBoundingClientRect();
    editCell(host, channel, hit.y, hit.x, {
      left: r.left - hr.left + geom.px(hit.x) - 8,
      top: r.top - hr.top + geom.py(hit.y) - 2,
      width: geom.cell + 16,
      height: geom.cell + 4,
    });
  });
}

/** Clicking an output map jumps to that cell. */
function pickable(canvas, stageIndex, channel, getGeom) {
  canvas.classList.add("lv-clickable");
  canvas.addEventListener("click", (ev) => {
    const geom = getGeom();
    if (!geom) return;
    const r = canvas.getBoundingClientRect();
    const hit = geom.cellAt(ev.clientX - r.left, ev.clientY - r.top);
    if (!hit) return;
    const before = stages().slice(0, stageIndex).reduce((n, s) => n + cellsOf(s.shape), 0);
    const [, hh, ww] = stages()[stageIndex].shape;
    player.pause();
    player.goTo(before + channel * hh * ww + hit.y * ww + hit.x);
  });
}

const geoms = {};

/** Draw every output map of `out` ({output, shape}) into the `out${j}` canvases, filled in up
 * to the current cell, which is marked; geometries go to geoms[`${key}${j}`] for clicks. One
 * helper so the conv, pool and transposed stages fill in the same way. */
function drawFillingOutputs(key, out, cell, size) {
  const vmax = maxAbs(out.output);
  for (let j = 0; j < out.shape[0]; j++) {
    geoms[`${key}${j}`] = drawGrid(parts[`out${j}`], filling(out.output[j], j, cell.channel, cell.y * out.shape[2] + cell.x), {
      ...size,
      vmax,
      mark: j === cell.channel ? { y: cell.y, x: cell.x } : null,
    }).geom;
  }
}

// The renderers read sizes from the response, never from the state: between a change and
// its response the two differ.
function renderConv(stage, cell, info) {
  const conv = result.conv;
  const c = conv.padded.shape[0];
  const k = conv.shape[0];
  const pooled = Boolean(result.pool);
  const act = resultState.activation !== "none";
  const key = JSON.stringify(["conv", c, k, pooled, act, document.documentElement.lang]);
  // One row per input channel: the padded input with the window, then that channel's
  // window x kernel = products -> sum. The output maps stand to the right.
  rebuild(stage, key, () => {
    parts.inputsTitle = h("h3", { class: "pg-h3" });
    parts.mathTitle = h("h3", { class: "pg-h3" });
    const rows = [];
    for (let i = 0; i < c; i++) {
      const canvas = canvasFor(`in${i}`);
      editable(canvas, i, () => geoms[`in${i}`]);
      parts[`sum${i}`] = h("b", { class: "lv-num pg-sum" });
      parts[`kcap${i}`] = h("figcaption");
      rows.push(
        h(
          "div",
          { class: "pg-chrow" },
          figure(c > 1 ? t("pg.input_channel", { c: i }) : t("pg.input_padded"), h("div", { class: "pg-anchor" }, canvas)),
          h(
            "div",
            { class: "pg-eq" },
            figure(t("pg.window"), canvasFor(`win${i}`)),
            h("span", { class: "pg-op", text: "×" }),
            h("figure", { class: "pg-fig" }, parts[`kcap${i}`], canvasFor(`ker${i}`)),
            h("span", { class: "pg-op", text: "=" }),
            figure(t("pg.products"), canvasFor(`prod${i}`)),
            h("span", { class: "pg-op", text: "→ Σ" }),
            parts[`sum${i}`],
          ),
        ),
      );
    }
    parts.total = h("p", { class: "pg-total", "data-testid": "arithmetic-total" });
    parts.act = act ? h("div", { class: "pg-act" }, (parts.curve = h("canvas", { class: "pg-curve", "data-testid": "activation-curve" })), (parts.actText = h("p", { class: "pg-total" }))) : null;
    const left = h("section", { class: "pg-math cv-math", "aria-live": "off" }, parts.inputsTitle, parts.mathTitle, ...rows, parts.total, parts.act);
    const outputs = h("div", { class: "pg-col" }, h("h3", { class: "pg-h3", text: act ? t("pg.output_after", { f: t(`pg.act.${resultState.activation}`) }) : t("pg.output") }));
    for (let j = 0; j < k; j++) {
      const canvas = canvasFor(`out${j}`);
      pickable(canvas, 0, j, () => geoms[`out${j}`]);
      outputs.append(figure(t("pg.output_channel", { k: j }), canvas));
    }
    const right = h("div", { class: "pg-outs" }, outputs);
    if (pooled) {
      const pools = h("div", { class: "pg-col" }, h("h3", { class: "pg-h3", text: t(`pg.pooled_${result.pool.mode}`) }));
      for (let j = 0; j < k; j++) {
        const canvas = canvasFor(`pool${j}`);
        pickable(canvas, 1, j, () => geoms[`pool${j}`]);
        pools.append(figure(t("pg.output_channel", { k: j }), canvas));
      }
      right.append(pools);
    }
    return h("div", { class: "pg-split" }, left, right);
  });
  const width = stageWidth();
  const pads = conv.pads;
  const padded = conv.padded.data;
  const vIn = maxAbs(padded);
  const rows = padded[0].length;
  const cols = padded[0][0].length;
  const samePad = pads.every((p) => p === pads[0]);
  parts.inputsTitle.textContent = t(samePad && pads[0] === 0 ? "pg.input_sub_valid" : "pg.input_sub", { n: result.input.shape[1], p: samePad ? pads[0] : pads.join("/"), np: `${rows} × ${cols}` });
  parts.mathTitle.textContent = t("pg.math_title", { pos: `${cell.channel}, ${cell.y}, ${cell.x}` });
  const inW = Math.min(400, width * 0.34);
  for (let i = 0; i < c; i++) {
    geoms[`in${i}`] = drawGrid(parts[`in${i}`], padded[i], {
      maxW: inW,
      maxH: c > 1 ? 210 : 400,
      pads,
      kind: padKind(pads, rows, cols),
      vmax: vIn,
      window: info ? { rows: info.rows, cols: info.cols } : null,
    }).geom;
  }
  const outW = Math.min(320, width * (pooled ? 0.2 : 0.26));
  drawFillingOutputs("out", conv, cell, { maxW: outW, maxH: k > 1 ? 220 : 320 });
  if (pooled) {
    const vP = maxAbs(result.pool.output);
    for (let j = 0; j < k; j++) {
      const empty = result.pool.output[j].map((r) => r.map(() => null));
      geoms[`pool${j}`] = drawGrid(parts[`pool${j}`], empty, { maxW: outW * 0.7, maxH: 180, vmax: vP }).geom;
    }
  }
  renderConvMath(cell, info);
}

function renderConvMath(cell, info) {
  const kern = result.conv.kernels.data[cell.channel];
  const c = kern.length;
  const f = kern[0].length;
  const small = { maxW: 150, maxH: 150, maxCell: f > 4 ? 24 : 32 };
  const vW = info ? maxAbs(info.window) : 1;
  const vK = maxAbs(kern);
  const vP = info ? maxAbs(info.products) : 1;
  for (let i = 0; i < c; i++) {
    parts[`kcap${i}`].textContent = t("pg.kernel_ch", { k: cell.channel, c: i });
    drawGrid(parts[`ker${i}`], kern[i], { ...small, vmax: vK });
    const blank = kern[i].map((row) => row.map(() => null));
    drawGrid(parts[`win${i}`], info ? info.window[i] : blank, { ...small, vmax: vW, kind: info ? (r, q) => (info.padded[r][q] ? "pad" : null) : null });
    drawGrid(parts[`prod${i}`], info ? info.products[i] : blank, { ...small, vmax: vP });
    parts[`sum${i}`].textContent = info ? fmt(info.channel_sums[i]) : "…";
  }
  if (!info) {
    parts.total.replaceChildren(h("span", { class: "pg-empty", text: t("common.loading") }));
    return;
  }
  const terms = [];
  info.channel_sums.forEach((v, i) => {
    if (i) terms.push(" + ");
    terms.push(numberSpan(v));
  });
  parts.total.replaceChildren(
    h("span", { text: c > 1 ? t("pg.sum_channels") : t("pg.sum") }),
    " ",
    ...terms,
    " + ",
    h("span", { text: t("pg.bias") }),
    " ",
    numberSpan(info.bias),
    " = ",
    numberSpan(info.value, "pg-result"),
  );
  if (parts.act) {
    const a = result.conv.activation;
    drawCurve(parts.curve, a.curve, { z: info.value, a: info.output });
    parts.actText.replaceChildren(
      h("span", { text: `${t(`pg.act.${a.kind}`)}: f(x) = ${a.formula}` }),
      h("br"),
      h("span", { text: "f(" }),
      numberSpan(info.value),
      h("span", { text: ") = " }),
      numberSpan(info.output, "pg-result"),
    );
  }
}

function renderPool(stage, cell, info) {
  const pool = result.pool;
  const fromConv = pool.on === "conv";
  const source = fromConv ? result.conv.output : result.input.data;
  const c = source.length;
  const key = JSON.stringify(["pool", c, pool.shape, fromConv, document.documentElement.lang]);
  rebuild(stage, key, () => {
    const inputs = h("div", { class: "pg-col" }, h("h3", { class: "pg-h3", text: fromConv ? t("pg.pool_input_conv") : t("pg.input") }));
    for (let i = 0; i < c; i++) {
      const canvas = canvasFor(`in${i}`);
      if (!fromConv) editable(canvas, i, () => geoms[`pin${i}`]);
      inputs.append(figure(t("pg.channel_n", { c: i }), h("div", { class: "pg-anchor" }, canvas)));
    }
    const outputs = h("div", { class: "pg-col" }, h("h3", { class: "pg-h3", text: t(`pg.pooled_${pool.mode}`) }));
    for (let j = 0; j < pool.shape[0]; j++) {
      const canvas = canvasFor(`out${j}`);
      pickable(canvas, stages().length - 1, j, () => geoms[`pout${j}`]);
      outputs.append(figure(t("pg.channel_n", { c: j }), canvas));
    }
    parts.math = h("section", { class: "pg-math pool-math" });
    return h("div", {}, h("div", { class: "pg-row-stage" }, inputs, parts.math, outputs));
  });
  const width = stageWidth();
  const vIn = maxAbs(source);
  for (let i = 0; i < c; i++) {
    geoms[`pin${i}`] = drawGrid(parts[`in${i}`], source[i], {
      maxW: Math.min(420, width * 0.4),
      maxH: c > 1 ? 240 : 400,
      vmax: vIn,
      window: info && i === cell.channel ? { rows: info.rows, cols: info.cols } : null,
      links: info && i === cell.channel && info.argmax_input ? [info.argmax_input] : [],
    }).geom;
  }
  drawFillingOutputs("pout", pool, cell, { maxW: Math.min(300, width * 0.25), maxH: 240 });
  const box = parts.math;
  if (!info) {
    box.replaceChildren(h("p", { class: "pg-empty", text: t("common.loading") }));
    return;
  }
  const win = h("canvas");
  const pick = info.argmax ? info.argmax : null;
  drawGrid(win, info.window, {
    maxW: 220,
    maxH: 220,
    maxCell: 40,
    vmax: vIn,
    links: pick ? [pick] : [],
  });
  const line =
    pool.mode === "max"
      ? h("p", { class: "pg-total" }, h("span", { text: t("pg.max_of_window") }), " = ", numberSpan(info.value, "pg-result"))
      : h("p", { class: "pg-total" }, h("span", { text: t("pg.sum") }), " ", numberSpan(info.sum), " / ", numberSpan(info.count), " = ", numberSpan(info.value, "pg-result"));
  box.replaceChildren(
    h("h3", { class: "pg-h3", text: t("pg.pool_math_title", { pos: `${cell.channel}, ${cell.y}, ${cell.x}`, k: pool.kernel, s: pool.stride }) }),
    figure(t("pg.window"), win),
    line,
    h("p", { class: "pg-hint", text: t(pool.mode === "max" ? "pg.max_hint" : "pg.avg_hint") }),
  );
}

function renderTransposed(stage, cell, info) {
  const c = result.input.shape[0];
  const k = result.shape[0];
  const key = JSON.stringify(["transposed", c, k, document.documentElement.lang]);
  rebuild(stage, key, () => {
    const inputs = h("div", { class: "pg-col" }, h("h3", { class: "pg-h3", text: t("pg.input") }));
    const inter = h("div", { class: "pg-col" }, parts.interTitle = h("h3", { class: "pg-h3" }));
    for (let i = 0; i < c; i++) {
      const canvas = canvasFor(`in${i}`);
      editable(canvas, i, () => geoms[`tin${i}`]);
      inputs.append(figure(c > 1 ? t("pg.channel_n", { c: i }) : "", h("div", { class: "pg-anchor" }, canvas)));
      inter.append(figure(c > 1 ? t("pg.channel_n", { c: i }) : "", canvasFor(`mid${i}`)));
    }
    const outputs = h("div", { class: "pg-col" }, h("h3", { class: "pg-h3", text: t("pg.output") }));
    for (let j = 0; j < k; j++) {
      const canvas = canvasFor(`out${j}`);
      pickable(canvas, 0, j, () => geoms[`tout${j}`]);
      outputs.append(figure(t("pg.output_channel", { k: j }), canvas));
    }
    parts.math = h("section", { class: "pg-math cv-math" });
    parts.legend = h("p", { class: "pg-legend" });
    return h("div", {}, h("div", { class: "pg-row-stage" }, inputs, inter, outputs), parts.legend, parts.math);
  });
  const width = stageWidth();
  const vIn = maxAbs(result.input.data);
  const links = info ? info.contributions.map((q) => q.input) : [];
  for (let i = 0; i < c; i++) {
    geoms[`tin${i}`] = drawGrid(parts[`in${i}`], result.input.data[i], {
      maxW: Math.min(240, width * 0.2),
      maxH: 240,
      vmax: vIn,
      links: links.filter((l) => l[0] === i).map((l) => [l[1], l[2]]),
    }).geom;
  }
  const kinds = result.kinds;
  const s = result.size;
  const op = s.height.output_padding;
  parts.interTitle.textContent = t(op ? "pg.intermediate_title_op" : "pg.intermediate_title", { z: s.height.s - 1, e: s.height.edge, op });
  for (let i = 0; i < c; i++) {
    drawGrid(parts[`mid${i}`], result.intermediate.data[i], {
      maxW: Math.min(440, width * 0.42),
      maxH: c > 1 ? 300 : 440,
      vmax: vIn,
      kind: (r, q) => (kinds[r][q] === 2 ? "pad" : kinds[r][q] === 1 ? "zero" : null),
      window: info ? { rows: info.rows, cols: info.cols } : null,
    });
  }
  parts.legend.textContent = t("pg.intermediate_legend");
  drawFillingOutputs("tout", result, cell, { maxW: Math.min(300, width * 0.28), maxH: 300 });
  const box = parts.math;
  if (!info) {
    box.replaceChildren(h("p", { class: "pg-empty", text: t("common.loading") }));
    return;
  }
  const flipped = result.flipped.data[cell.channel];
  const vW = maxAbs(info.window);
  const vK = maxAbs(flipped);
  const vP = maxAbs(info.products);
  const rows = [];
  for (let i = 0; i < c; i++) {
    const win = h("canvas");
    const ker = h("canvas");
    const prod = h("canvas");
    drawGrid(win, info.window[i], { maxW: 170, maxH: 170, maxCell: 32, vmax: vW, kind: (r, q) => (info.source[r][q] === "pad" ? "pad" : info.source[r][q] === "zero" ? "zero" : null) });
    drawGrid(ker, flipped[i], { maxW: 170, maxH: 170, maxCell: 32, vmax: vK });
    drawGrid(prod, info.products[i], { maxW: 170, maxH: 170, maxCell: 32, vmax: vP });
    rows.push(
      h(
        "div",
        { class: "pg-eq" },
        c > 1 ? h("span", { class: "pg-eq-ch", text: t("pg.channel_n", { c: i }) }) : null,
        figure(t("pg.window"), win),
        h("span", { class: "pg-op", text: "×" }),
        figure(t("pg.flipped_kernel", { k: cell.channel }), ker),
        h("span", { class: "pg-op", text: "=" }),
        figure(t("pg.products"), prod),
        h("span", { class: "pg-op", text: "→ Σ" }),
        numberSpan(info.channel_sums[i], "pg-sum"),
      ),
    );
  }
  const contributions = h(
    "ul",
    { class: "pg-contrib" },
    ...info.contributions.map((q) =>
      h(
        "li",
        {},
        h("span", { text: t("pg.contribution", { c: q.input[0], i: q.input[1], j: q.input[2], p: q.tap[0], q: q.tap[1] }) }),
        " ",
        numberSpan(q.value),
        " × ",
        numberSpan(q.weight),
        " = ",
        numberSpan(q.product),
      ),
    ),
  );
  const terms = [];
  info.channel_sums.forEach((v, i) => {
    if (i) terms.push(" + ");
    terms.push(numberSpan(v));
  });
  box.replaceChildren(
    h("h3", { class: "pg-h3", text: t("pg.math_title", { pos: `${cell.channel}, ${cell.y}, ${cell.x}` }) }),
    ...rows,
    h("p", { class: "pg-total" }, h("span", { text: t("pg.sum") }), " ", ...terms, " + ", h("span", { text: t("pg.bias") }), " ", numberSpan(info.bias), " = ", numberSpan(info.value, "pg-result")),
    h("h3", { class: "pg-h3", text: t("pg.contributions_title", { n: info.contributions.length }) }),
    info.contributions.length ? contributions : h("p", { class: "pg-hint", text: t("pg.no_contributions") }),
  );
}

// --- classroom mode hook -------------------------------------------------------------------------

function hookState() {
  return { step: player.step, playing: player.playing, speed: player.speed, cell: null, playground: compact(state) };
}

window.convscope = {
  getState: hookState,
  setState(patch) {
    let loading = false;
    if (patch.playground) {
      const next = expand(patch.playground);
      if (next && JSON.stringify(compact({ ...next, step: 0 })) !== JSON.stringify(compact({ ...state, step: 0 }))) {
        state = next;
        loading = true;
        pendingStep = Number.isFinite(patch.step) ? patch.step : next.step;
        buildKernelEditors();
        update({}, { keepPreset: true });
      }
    }
    if (Number.isFinite(patch.speed)) {
      let best = 0;
      SPEEDS.forEach((s, i) => Math.abs(s - patch.speed) < Math.abs(SPEEDS[best] - patch.speed) && (best = i));
      player.setSpeedIndex(best);
    }
    if (Number.isFinite(patch.step) && !loading) player.goTo(patch.step);
    if (patch.playing === true) player.play();
    else if (patch.playing === false) player.pause();
  },
  subscribe(fn) {
    listeners.add(fn);
    return () => listeners.delete(fn);
  },
  /** The request body the page sends for its current state (for tests and the curious). */
  request: () => requestFor(state),
};

// --- start ----------------------------------------------------------------------------------------

const syncPlayer = bindControls(player, $(".pg-controls"), t);
const baseOnChange = player.onChange;
player.onChange = (p) => {
  baseOnChange(p);
  syncPlayer();
};
bindKeys(player, { target: window });

window.addEventListener("langchange", () => {
  buildPresets();
  buildKernelEditors();
  stageKey = "";
  syncPlayer();
  render();
});
let resizeTimer = 0;
window.addEventListener("resize", () => {
  clearTimeout(resizeTimer);
  resizeTimer = setTimeout(render, 150);
});

applyI18n(document);
buildPresets();
buildKernelEditors();
wireControls();
syncControls();
syncPlayer();
loadSamples();
recompute();
