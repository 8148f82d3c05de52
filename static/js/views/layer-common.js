// Shared by the layer views: the explain cache with prefetching, per-channel tensor access,
// the input image, number formatting and a tiny DOM builder.

import { explain, getLayer, inputPngUrl } from "../api.js";
import { t } from "../i18n.js";
import { cmapFor, drawLegend, rangeFor } from "../render/colormap.js";
import {
  ACCENT,
  drawMap,
  drawVector,
  drawWindow,
  fitCell,
  mapGeometry,
  markCell,
  markEntry,
  setupCanvas,
  vectorGeometry,
} from "../render/grid.js";
import { drawReceptiveField, regionFromField } from "../render/receptive.js";

/** The cell-value text: the API's number rounded to at most 4 decimals. */
export function fmt4(v) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  const s = String(Number(Number(v).toFixed(4)));
  return s === "-0" ? "0" : s;
}

/** A signed term for an equation: "+ 0.12" / "- 0.12" (the value itself, not recomputed). */
export function signed(v) {
  const s = fmt4(Math.abs(v));
  return v < 0 ? `− ${s}` : `+ ${s}`;
}

/** Wrap a negative number in parentheses inside a formula: (-0.5). */
export function paren(v) {
  const s = fmt4(v);
  return v < 0 ? `(${s})` : s;
}

/** h("div", {class: "x", onclick: f}, child, "text", ...) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Key of a cell for caches and comparisons. */
export function cellKey(cell) {
  return "index" in cell ? `i${cell.index}` : `${cell.channel},${cell.y},${cell.x}`;
}

/**
 * Explain responses of one layer, cached per cell. get(cell) starts (or reuses) a request;
 * peek(cell) returns the response if it is here; prefetch(cells) queues requests behind the
 * ones the page is waiting for, with at most `parallel` in flight.
 */
export function createExplainCache(runId, layer, { parallel = 4, max = 4096, onLoad = () => {} } = {}) {
  const entries = new Map(); // key -> {cell, value, error, promise, state}
  const queue = [];
  let inFlight = 0;

  function start(entry) {
    entry.state = "loading";
    inFlight += 1;
    entry.promise = explain(runId, layer, entry.cell)
      .then((value) => {
        entry.value = value;
        entry.state = "done";
        onLoad(entry.cell, value);
        return value;
      })
      .catch((err) => {
        entry.error = err;
        entry.state = "error";
        entries.delete(cellKey(entry.cell)); // a later visit tries again
        throw err;
      })
      .finally(() => {
        inFlight -= 1;
        pump();
      });
    entry.resolve(entry.promise);
  }

  function pump() {
    while (inFlight < parallel && queue.length) {
      const entry = queue.shift();
      if (entry.state === "queued") start(entry);
    }
  }

  function entryFor(cell) {
    const key = cellKey(cell);
    let entry = entries.get(key);
    if (!entry) {
      if (entries.size >= max) entries.delete(entries.keys().next().value);
      entry = { cell, state: "queued" };
      entry.ready = new Promise((resolve) => {
        entry.resolve = resolve;
      }).then((p) => p);
      entries.set(key, entry);
    }
    return entry;
  }

  return {
    /** Promise of the explain response of a cell (starts now, ahead of prefetches). */
    get(cell) {
      const entry = entryFor(cell);
      entry.wanted = true; // someone awaits it: never dropped from the queue
      if (entry.state === "queued") {
        const i = queue.indexOf(entry);
        if (i >= 0) queue.splice(i, 1);
        if (inFlight < parallel + 1) start(entry);
        else queue.unshift(entry);
      }
      return entry.ready;
    },
    peek(cell) {
      return entries.get(cellKey(cell))?.value;
    },
    prefetch(cells) {
      for (const cell of cells) {
        const entry = entryFor(cell);
        if (entry.state === "queued" && !queue.includes(entry)) queue.push(entry);
      }
      pump();
    },
    /** Drop queued prefetches (the student jumped elsewhere). */
    clearQueue() {
      for (const entry of queue.splice(0)) {
        if (entry.wanted) queue.push(entry);
        else entries.delete(cellKey(entry.cell));
      }
    },
  };
}

/**
 * One layer's output (or "input"), channel by channel. Small tensors are fetched whole, big
 * ones one channel at a time, always as JSON float32: the numbers written on the page are
 * the engine's, not float16 roundings. The colour scale is the layer's (all channels share
 * it), as in the server's PNGs.
 */
export function createTensorSource(runId, name, shape, summary) {
  const size = shape.reduce((a, b) => a * b, 1);
  const whole = size <= 400_000 || shape.length === 1;
  const channelSize = shape.length === 3 ? shape[1] * shape[2] : size;
  let full = null;
  const pending = new Map(); // channel -> Promise of its values (big tensors)
  const loaded = new Map(); // channel -> values, once here
  const source = {
    name,
    shape,
    min: summary ? summary.min : null,
    max: summary ? summary.max : null,
    cmap: "diverging",
    vmax: 1,
    data: null,
    /** Resolves when the colour scale is known (and, for small tensors, the data). */
    async ready() {
      if (whole) {
        if (!full) full = getLayer(runId, name, { encoding: "json" });
        const r = await full;
        source.min ??= r.min;
        source.max ??= r.max;
        source.data = r.data;
      } else if (source.min === null) {
        const data = await source.channel(0);
        source.min = data.reduce((a, b) => Math.min(a, b), Infinity);
        source.max = data.reduce((a, b) => Math.max(a, b), -Infinity);
      }
      source.cmap = cmapFor(source.min);
      source.vmax = rangeFor(source.cmap, source.min, source.max).vmax;
      return source;
    },
    /** Promise of one channel's values (H x W, row-major) or of the whole vector. */
    async channel(c = 0) {
      if (whole) {
        await source.ready();
        return source.peekChannel(c);
      }
      if (!pending.has(c)) {
        pending.set(
          c,
          getLayer(runId, name, { channel: c, encoding: "json" }).then((r) => {
            loaded.set(c, r.data);
            return r.data;
          }),
        );
      }
      return pending.get(c);
    },
    /** The channel if it is already here (synchronous, for drawing), else null. */
    peekChannel(c = 0) {
      if (!whole) return loaded.get(c) || null;
      if (!source.data) return null;
      if (shape.length !== 3) return source.data;
      // the same view object every time, so drawings cached per array stay valid
      if (!loaded.has(c)) loaded.set(c, source.data.subarray(c * channelSize, (c + 1) * channelSize));
      return loaded.get(c);
    },
  };
  return source;
}

/** The input image as the model saw it (an <img>, decoded). */
export function loadInputImage(runId) {
  const img = new Image();
  img.decoding = "async";
  img.src = inputPngUrl(runId);
  return img.decode().then(
    () => img,
    () => img,
  );
}

/** Padding of a sliding-window layer in cells [top, bottom, left, right], from its input,
 * kernel, stride, dilation and output sizes (resolves "same"/"valid" and integer forms). */
export function resolvePads(hp, inShape, outShape) {
  const p = hp.padding;
  if (Array.isArray(p)) {
    if (p.length === 2) return [p[0], p[0], p[1], p[1]];
    if (p.length === 4) return p.slice();
  }
  if (typeof p === "number") return [p, p, p, p];
  if (p === "valid" || p === undefined || p === null) return [0, 0, 0, 0];
  // "same": total padding so that the output has the size the engine produced
  const d = hp.dilation || [1, 1];
  const pads = [];
  for (let a = 0; a < 2; a++) {
    const n = inShape[1 + a];
    const o = outShape[1 + a];
    const reach = d[a] * (hp.kernel[a] - 1) + 1;
    const total = Math.max(0, (o - 1) * hp.stride[a] + reach - n);
    pads.push(Math.floor(total / 2), total - Math.floor(total / 2));
  }
  return pads;
}

/**
 * Steps of a layer whose output is C x H x W maps: the animation sweeps one channel row by
 * row (step = y * W + x); the channel is chosen apart. Vectors: step = index.
 */
export function cellSteps(outputShape) {
  if (outputShape.length === 3) {
    const [C, H, W] = outputShape;
    return {
      total: H * W,
      rowStep: W,
      positionLabel: "layer.cell",
      cellOf: (step, state) => ({
        channel: Math.min(C - 1, Math.max(0, state.channel)),
        y: Math.floor(step / W),
        x: step % W,
      }),
      stepOf: (cell) => clampInt(cell.y ?? 0, 0, H - 1) * W + clampInt(cell.x ?? 0, 0, W - 1),
      positionText: (cell) => `${cell.channel}, ${cell.y}, ${cell.x}`,
    };
  }
  const n = outputShape[0];
  return {
    total: n,
    rowStep: 0,
    positionLabel: "layer.index",
    cellOf: (step) => ({ index: step }),
    stepOf: (cell) => clampInt(cell.index ?? 0, 0, n - 1),
    positionText: (cell) => String(cell.index),
  };
}

export function clampInt(v, lo, hi) {
  const n = Math.round(Number(v));
  if (!Number.isFinite(n)) return lo;
  return Math.min(hi, Math.max(lo, n));
}

/** The run summary of a layer (min, max) by name, or undefined ("input" has none). */
export function layerSummary(run, name) {
  return (run.layers || []).find((l) => l.name === name);
}

/** Name of the array a layer reads: the previous layer's output, or "input". */
export function inputNameOf(model, index) {
  return index === 0 ? "input" : model.layers[index - 1].name;
}

/** A labelled number picker (0 .. n-1) that sets state[key]. */
export function channelPicker({ store, key, n, labelKey, testid, t }) {
  const input = h("input", {
    type: "number",
    min: 0,
    max: n - 1,
    step: 1,
    value: store.get()[key],
    inputmode: "numeric",
    "data-testid": testid,
  });
  const label = h("span", { class: "lv-pick-label" });
  const of = h("span", { class: "lv-pick-of" });
  const wrap = h("label", { class: "lv-pick" }, label, input, of);
  input.addEventListener("change", () => {
    const v = clampInt(input.value, 0, n - 1);
    input.value = String(v);
    store.set({ [key]: v });
  });
  return {
    el: wrap,
    sync(state) {
      if (document.activeElement !== input) input.value = String(state[key]);
    },
    applyTexts() {
      label.textContent = t(labelKey);
      of.textContent = t("layer.of_n", { n });
    },
  };
}

/** Scroll a box (not the page) so that its child el is in view. */
export function scrollIntoBox(el, box) {
  const a = el.getBoundingClientRect();
  const b = box.getBoundingClientRect();
  if (a.top < b.top) box.scrollTop -= b.top - a.top;
  else if (a.bottom > b.bottom) box.scrollTop += a.bottom - b.bottom;
}

/** Is el (a child of the scrolling box) at least partly in view? */
export function isVisible(el, box) {
  const a = el.getBoundingClientRect();
  const b = box.getBoundingClientRect();
  return a.bottom >= b.top - 40 && a.top <= b.bottom + 40;
}

/** A stride or padding pair as written: [1, 1] -> "1", [2, 1] -> "2 × 1". */
export function pairText(v) {
  if (!Array.isArray(v)) return String(v);
  return v.every((x) => x === v[0]) ? String(v[0]) : v.join(" × ");
}

/** (C, H, W) -> "H × W × C", the order textbooks use; vectors stay as their length. */
export function shapeText(shape) {
  return shape.length === 3 ? `${shape[1]} × ${shape[2]} × ${shape[0]}` : String(shape[0]);
}

/**
 * A panel showing one channel of a C x H x W tensor (or a whole vector) as a map that can
 * fill in, with marks, an optional sliding window, hatched (clipped) cells, a legend, and
 * click-to-jump. `render(opts)` draws it from the state; nothing here is stored.
 */
export function createMapPanel({ source, shape, pads = [0, 0, 0, 0], padLabel = "0", scale = 1, maxCell = 24, onPick = null, onHover = null, testid = null, extraClass = "" }) {
  const isMap = shape.length === 3;
  const height = isMap ? shape[1] : 0;
  const width = isMap ? shape[2] : 0;
  const title = h("h2", { class: "lv-h" });
  const sub = h("p", { class: "lv-sub" });
  const canvas = h("canvas", { class: `lv-map${onPick ? " lv-clickable" : ""}`, tabindex: onPick ? "0" : null, "data-testid": testid });
  const hover = h("p", { class: "lv-hover lv-mono" });
  const legend = h("canvas", { class: "lv-legend" });
  const keys = h("div", { class: "lv-keys-row" });
  const el = h("section", { class: `lv-col ${extraClass}` }, title, sub, canvas, hover, keys, legend);
  let geom = null;
  const at = (ev) => {
    if (!geom) return null;
    const r = canvas.getBoundingClientRect();
    const px = ev.clientX - r.left;
    const py = ev.clientY - r.top;
    if (isMap) return geom.cellAt(px, py);
    const i = geom.indexAt(px, py);
    return i === null ? null : { index: i };
  };
  if (onPick) {
    canvas.addEventListener("pointerdown", (ev) => {
      const cell = at(ev);
      if (cell) onPick(cell);
    });
  }
  if (onHover) {
    canvas.addEventListener("pointermove", (ev) => onHover(at(ev)));
    canvas.addEventListener("pointerleave", () => onHover(null));
  }
  return {
    el,
    canvas,
    title,
    sub,
    keys,
    hover,
    get geom() {
      return geom;
    },
    /**
     * opts: channel, filled, marks [{y, x} | {index}, color], window {rows, cols, next},
     * hatched(i), perRow (vectors), requestRender (when a channel is still loading).
     */
    render(opts = {}) {
      const avail = Math.min(el.clientWidth - 22, mapCap() * scale);
      const data = source.peekChannel(opts.channel ?? 0);
      if (isMap) {
        const cells = width + pads[2] + pads[3];
        geom = mapGeometry({ height, width, cell: fitCell(avail, cells, 0.5, maxCell), pad: pads });
      } else {
        const n = shape[0];
        const perRow = opts.perRow || Math.min(n, 32);
        geom = vectorGeometry({ n, perRow, cell: fitCell(avail, perRow, 2, maxCell) });
      }
      const g = setupCanvas(canvas, isMap ? geom.outerW : geom.w + 2, isMap ? geom.outerH : geom.h + 2);
      if (!data) {
        source.channel(opts.channel ?? 0).then(opts.requestRender || (() => {}));
        return;
      }
      if (!isMap) g.translate(1, 1);
      if (isMap) {
        drawMap(g, geom, data, { cmap: source.cmap, vmax: source.vmax, filled: opts.filled ?? Infinity, hatched: opts.hatched, grid: opts.grid ?? true, padLabel });
        if (opts.window) {
          if (opts.window.next) drawWindow(g, geom, opts.window.next.rows, opts.window.next.cols, { color: "rgba(194,94,0,0.75)", ghost: true });
          drawWindow(g, geom, opts.window.rows, opts.window.cols);
        }
      } else {
        drawVector(g, geom, data, { cmap: source.cmap, vmax: source.vmax, filled: opts.filled ?? Infinity, hatched: opts.hatched });
      }
      for (const m of opts.marks || []) {
        if ("index" in m) markEntry(g, geom, m.index, { color: m.color || ACCENT, width: m.width });
        else markCell(g, geom, m.y, m.x, { color: m.color || ACCENT, width: m.width });
      }
      return data;
    },
    drawLegend() {
      drawLegend(legend, { cmap: source.cmap, vmax: source.vmax });
    },
  };
}

/** The values of a (2r+1)-wide neighbourhood of (y, x) in an H x W map: rows of numbers
 * (null outside the map or where `shown(i)` is false), and the map coordinates used. */
export function neighbourhood(data, height, width, y, x, r, shown = () => true) {
  const rows = [];
  const ys = [];
  const xs = [];
  for (let dy = -r; dy <= r; dy++) ys.push(y + dy);
  for (let dx = -r; dx <= r; dx++) xs.push(x + dx);
  for (const yy of ys) {
    rows.push(
      xs.map((xx) => {
        if (yy < 0 || yy >= height || xx < 0 || xx >= width) return null;
        const i = yy * width + xx;
        return shown(i) ? data[i] : null;
      }),
    );
  }
  return { rows, ys, xs };
}

/** The largest side (CSS px) for a big map: bigger on tall screens (a projector), so the
 * page fills a 1920 x 1080 screen and still fits a 1366 x 768 laptop. */
export function mapCap() {
  return Math.max(260, Math.min(720, window.innerHeight - 320));
}

/** The receptive-field panel of a map layer (conv, pool, activation): the input image with
 * the region one output cell sees, and its rows/cols in words. One builder, so every view
 * draws and words it the same way. */
export function createReceptivePanel(image, spec) {
  const canvas = h("canvas", { class: "lv-rf" });
  const title = h("h3", { class: "lv-h3" });
  const text = h("p", { class: "lv-sub" });
  const el = h("div", { class: "lv-rfwrap" }, canvas, h("div", {}, title, text));

  /** Show the region of `cell` ({y, x}): the explain answer's `region` when given, else the
   * one derived from the layer's `field` (so the panel never waits for the server). */
  function show(field, cell, region = null) {
    const r = region || regionFromField(field, cell.y, cell.x, spec.height, spec.width);
    drawReceptiveField(canvas, image, r, { height: spec.height, width: spec.width, size: 96 });
    setText(title, t("layer.rf_title"));
    setText(
      text,
      t("layer.rf_text", {
        top: r.top,
        bottom: r.bottom - 1,
        left: r.left,
        right: r.right - 1,
        h: r.bottom - r.top,
        w: r.right - r.left,
      }),
    );
  }

  return { el, show };
}

/** Write text only when it changed: unchanged text then costs no layout while playing. */
export function setText(el, text) {
  const s = String(text);
  if (el.textContent !== s) el.textContent = s;
}
