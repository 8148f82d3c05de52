// The layer view (/runs/{run_id}/layers/{layer}): loads the run and the model, picks the
// view for the layer's kind, and runs the shared machinery: one state object, the player,
// the explain cache, the readouts (cell position and value) and the URL that follows the
// state. Views draw from the state; controls change it.

import { ApiError, getModel, getRun } from "../api.js";
import { applyI18n, getLang, t } from "../i18n.js";
import "../messages/common.js";
import "../messages/layer.js";
import { Player, READABLE_SPEED, SPEEDS, bindControls, bindKeys } from "../player.js";
import { createState } from "../state.js";
import { cellKey, createExplainCache, fmt4, h, pairText, shapeText, setText } from "./layer-common.js";

const VIEWS = {
  conv2d: "./conv.js",
  relu: "./relu.js",
  leaky_relu: "./relu.js",
  sigmoid: "./relu.js",
  tanh: "./relu.js",
  maxpool2d: "./pool.js",
  avgpool2d: "./pool.js",
  flatten: "./flatten.js",
  linear: "./fc.js",
  softmax: "./softmax.js",
};

const root = document.getElementById("layer-view");
const $ = (sel) => root.querySelector(sel);
const runId = root.dataset.runId;
const layerName = root.dataset.layer;

function showError(err) {
  const stage = $("[data-lv-stage]");
  stage.setAttribute("aria-busy", "false");
  let text;
  if (err instanceof ApiError && err.status === 404) {
    text = /expired|evicted|again/i.test(err.message) ? t("error.run_expired") : err.message;
  } else if (err instanceof ApiError && err.code === "network_error") {
    text = t("error.network_error");
  } else {
    text = t("error.generic", { message: err.message || String(err) });
  }
  stage.replaceChildren(
    h("div", { class: "lv-error", role: "alert" }, h("p", { text }), h("p", {}, h("a", { href: "/", text: t("layer.back_home") }))),
  );
}

/** Read the cell the URL asks for: ?channel=&y=&x= or ?index=. */
function cellFromUrl() {
  const q = new URLSearchParams(location.search);
  const num = (k) => (q.has(k) && q.get(k) !== "" && Number.isFinite(Number(q.get(k))) ? Number(q.get(k)) : null);
  return {
    channel: num("channel"),
    y: num("y"),
    x: num("x"),
    index: num("index"),
    inChannel: num("in"),
    mode: q.get("mode") === "all" ? "all" : "one",
  };
}

function factsText(info) {
  const hp = info.hyperparameters || {};
  const parts = [t("layer.shapes", { input: shapeText(info.input_shape), output: shapeText(info.output_shape) })];
  if (hp.kernel) parts.push(t("layer.kernel", { k: hp.kernel.join(" × ") }));
  if (hp.stride) parts.push(t("layer.stride", { s: pairText(hp.stride) }));
  if (hp.padding !== undefined) parts.push(t("layer.padding", { p: Array.isArray(hp.padding) ? hp.padding.join(", ") : hp.padding }));
  if (hp.dilation && hp.dilation.some((d) => d !== 1)) parts.push(t("layer.dilation", { d: pairText(hp.dilation) }));
  if (info.params) parts.push(t("common.params", { n: info.params.toLocaleString(getLang()) }));
  return parts.join(" · ");
}

function renderNav(model, index) {
  const nav = $("[data-lv-nav]");
  const prev = model.layers[index - 1];
  const next = model.layers[index + 1];
  const link = (layer, rel) =>
    h("a", {
      class: `lv-nav-link lv-nav-${rel}`,
      href: `/runs/${encodeURIComponent(runId)}/layers/${encodeURIComponent(layer.name)}`,
      rel,
      text: rel === "prev" ? `← ${layer.name}` : `${layer.name} →`,
      title: t(rel === "prev" ? "layer.prev_layer" : "layer.next_layer", { name: layer.name }),
    });
  nav.replaceChildren(
    prev ? link(prev, "prev") : h("span"),
    h("a", { class: "lv-nav-link", href: `/models/${encodeURIComponent(model.id)}/architecture`, text: t("common.architecture") }),
    next ? link(next, "next") : h("span"),
  );
}

async function main() {
  const [run, model] = await Promise.all([getRun(runId), getModel(root.dataset.modelId || "")]).catch(async (err) => {
    // The template may not know the model: ask the run.
    if (err instanceof ApiError && err.status === 404 && !root.dataset.modelId) {
      const r = await getRun(runId);
      return [r, await getModel(r.model_id)];
    }
    throw err;
  });
  const index = model.layers.findIndex((l) => l.name === layerName);
  if (index < 0) throw new ApiError(t("layer.unknown_layer", { name: layerName, model: model.id }), { status: 404, code: "unknown_layer" });
  const info = model.layers[index];
  const modulePath = VIEWS[info.kind];
  if (!modulePath) throw new Error(t("layer.unknown_kind", { kind: info.kind }));

  const fromUrl = cellFromUrl();
  const store = createState({
    step: 0,
    channel: fromUrl.channel ?? 0,
    inChannel: fromUrl.inChannel ?? 0,
    mode: fromUrl.mode,
    hover: null,
    playing: false,
    speedIndex: 3,
  });

  let scheduled = 0;
  const requestRender = () => {
    if (!scheduled) scheduled = requestAnimationFrame(renderNow);
  };
  const explains = createExplainCache(runId, layerName, { onLoad: () => requestRender() });
  const status = $("[data-lv-status]");
  const stage = $("[data-lv-stage]");
  const { createView } = await import(modulePath);
  const ctx = { root: stage, extra: $("[data-lv-extra]"), runId, run, model, info, index, store, explains, requestRender, player: null };
  const view = await createView(ctx);

  // The deep link, clamped to the layer's output.
  const wanted = fromUrl.index !== null ? { index: fromUrl.index } : fromUrl.y !== null || fromUrl.x !== null ? { y: fromUrl.y ?? 0, x: fromUrl.x ?? 0 } : null;
  const startStep = wanted ? view.stepOf(wanted) : 0;
  const player = new Player({
    total: view.total,
    step: startStep,
    onChange: (p) => store.set({ step: p.step, playing: p.playing, speedIndex: p.speedIndex }),
    isReady: (s) => explains.peek(view.cellOf(s, store.get())) !== undefined,
  });
  store.set({ step: player.step });
  ctx.player = player;
  const syncControls = bindControls(player, root, t);
  bindKeys(player, { rowStep: view.rowStep || 0 });

  stage.setAttribute("aria-busy", "false");
  const cellValue = root.querySelector('[data-testid="cell-value"]');
  const cellPosition = root.querySelector('[data-testid="cell-position"]');

  function applyTexts() {
    $("[data-lv-kind]").textContent = t(`kind.${info.kind}`);
    $("[data-lv-facts]").textContent = factsText(info);
    $("[data-lv-lesson]").textContent = view.lesson();
    $("[data-lv-position-label]").textContent = t(view.positionLabel || "layer.cell");
    renderNav(model, index);
    document.title = `${layerName} · ${t(`kind.${info.kind}`)} · convscope`;
    view.applyTexts?.();
    applyI18n(root);
  }

  let wantedKey = null;
  let errorShown = false;
  function renderNow() {
    scheduled = 0;
    const state = store.get();
    const cell = view.cellOf(state.step, state);
    const ex = explains.peek(cell);
    const key = cellKey(cell);
    if (!ex && wantedKey !== key && (!state.playing || player.speed <= READABLE_SPEED || !scheduledFetch)) {
      wantedKey = key;
      fetchCell(cell);
    }
    setText(cellPosition, view.positionText(cell));
    setText(cellValue, ex ? fmt4(ex.value) : "…");
    cellValue.setAttribute("aria-busy", String(!ex));
    view.render(state, ex);
    syncControls();
    prefetchAround(state);
  }

  // At fast speeds, keep one explain request in flight for the cell on screen.
  let scheduledFetch = null;
  function fetchCell(cell) {
    const p = explains.get(cell);
    scheduledFetch = p;
    p.then(
      () => {
        if (scheduledFetch === p) scheduledFetch = null;
        if (errorShown) {
          errorShown = false;
          setText(status, "");
        }
        requestRender();
      },
      (err) => {
        if (scheduledFetch === p) scheduledFetch = null;
        wantedKey = null;
        player.pause();
        errorShown = true;
        setText(status, err instanceof ApiError && err.status === 404 ? t("error.run_expired") : t("error.generic", { message: err.message }));
      },
    );
  }

  function prefetchAround(state) {
    const cells = [];
    if (state.playing && player.speed <= READABLE_SPEED) {
      const ahead = Math.max(3, Math.ceil(player.speed));
      for (let s = state.step + 1; s <= Math.min(player.total - 1, state.step + ahead); s++) cells.push(view.cellOf(s, state));
    } else if (!state.playing) {
      for (const s of [state.step + 1, state.step - 1, state.step + 2]) {
        if (s >= 0 && s < player.total) cells.push(view.cellOf(s, state));
      }
    }
    if (cells.length) explains.prefetch(cells);
  }

  // The URL follows the state (throttled: browsers limit history updates while playing).
  let urlTimer = 0;
  function writeUrl() {
    urlTimer = 0;
    const state = store.get();
    const u = new URL(location.href);
    for (const k of ["channel", "y", "x", "index", "in", "mode"]) u.searchParams.delete(k);
    const cell = view.cellOf(state.step, state);
    for (const [k, v] of Object.entries(view.urlParams ? view.urlParams(cell, state) : cell)) u.searchParams.set(k, String(v));
    if (u.href !== location.href) history.replaceState(history.state, "", u);
  }

  store.subscribe((state, changed) => {
    if (changed.includes("channel") || changed.includes("mode")) explains.clearQueue();
    if (changed.some((k) => ["step", "channel", "inChannel", "mode"].includes(k))) {
      if (!state.playing) writeUrl();
      else if (!urlTimer) urlTimer = setTimeout(writeUrl, 400);
    }
    if (changed.includes("playing") && !state.playing) writeUrl();
    requestRender();
  });
  window.addEventListener("langchange", () => {
    applyTexts();
    requestRender();
  });
  new ResizeObserver(() => {
    view.layout?.();
    requestRender();
  }).observe(stage);

  applyTexts();
  writeUrl();
  renderNow();

  // Classroom mode (static/js/views/live_frame.js) reads and drives this view through this
  // hook: the presenter's page subscribes to it, a student's page calls setState.
  const nearestSpeed = (v) => SPEEDS.reduce((best, s, i) => (Math.abs(s - v) < Math.abs(SPEEDS[best] - v) ? i : best), 0);
  const hook = {
    getState() {
      const s = store.get();
      const cell = view.cellOf(s.step, s);
      return { view: "layer", model_id: model.id, run_id: runId, layer: layerName, cell, step: s.step, playing: s.playing, speed: SPEEDS[s.speedIndex] };
    },
    setState({ cell, step, playing, speed } = {}) {
      if (cell && "channel" in cell) store.set({ channel: cell.channel });
      if (Number.isInteger(step)) player.goTo(step);
      else if (cell) player.goTo(view.stepOf(cell));
      if (typeof speed === "number") player.setSpeedIndex(nearestSpeed(speed));
      if (playing === true) player.play();
      else if (playing === false) player.pause();
    },
    subscribe: (fn) => store.subscribe(() => fn(hook.getState())),
  };
  window.convscope = hook;
}

main().catch((err) => {
  showError(err);
  // Surface unexpected failures to developers; API errors are already explained on the page.
  if (!(err instanceof ApiError)) throw err;
});
