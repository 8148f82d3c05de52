// Overview of one run: the input, then one column per layer (maps, neurons, probabilities).
// Columns render when they scroll into view; every number comes from the API.
import {
  channelPngUrl,
  channelsAtlasUrl,
  getLayer,
  getRun,
  inputPngUrl,
  saliencyPngUrl,
} from "../api.js";
import { applyI18n, t } from "../i18n.js";
import { className } from "../messages/classes.js";
import { errorText } from "../messages/common.js";
import "../messages/overview.js";
import { cmapFor, colorFor, cssColor, drawLegend, formatTick, rangeFor } from "../render/colormap.js";
import { formatPercent, renderProbBars } from "../render/probbars.js";

const page = JSON.parse(document.getElementById("page-data").textContent);
const runId = page.run_id;
const layersByName = Object.fromEntries(page.layers.map((l) => [l.name, l]));
const network = document.getElementById("network");
const whereEl = document.getElementById("where");
const magnifier = document.getElementById("magnifier");

const MAP_SIZE = 40; // CSS pixels per channel thumbnail
const MANY_CLASSES = 20;
const VECTOR_W = 72; // CSS width of a grid of many neurons
// Layers up to this many values come as one atlas PNG (one request for every channel);
// bigger ones (VGG-16's first four blocks) as one PNG per channel shown.
const ATLAS_MAX = 262_144;
const MAGNIFIED = 196; // CSS pixels of a map under the pointer // beyond this the softmax column shows the top ten first
// As many maps per column as fit a laptop screen without scrolling the page.
const CAP = Math.max(4, Math.min(12, Math.floor((window.innerHeight - 390) / (MAP_SIZE + 5))));

let run = null; // RunSummary from GET /runs/{id}
let stats = {}; // layer name -> {min, max, shape}
const rendered = new Set();
const channelRanges = new Map(); // "layer/c" -> Promise<{min, max}>

const layerUrl = (name, params = "") =>
  `/runs/${encodeURIComponent(runId)}/layers/${encodeURIComponent(name)}${params}`;

/** H × W × C for (C, H, W) shapes, as textbooks write them. */
function shapeText(shape) {
  return shape.length === 3 ? `${shape[1]}×${shape[2]}×${shape[0]}` : String(shape[0]);
}

function scaleOf(name) {
  const s = stats[name];
  const cmap = cmapFor(s.min);
  return { cmap, ...rangeFor(cmap, s.min, s.max) };
}

// ---- "where am I": one plain sentence per layer kind ----
function whereText(layer) {
  if (!layer) return t("where.input", { shape: shapeText(run.input.shape) });
  const hp = layer.hyperparameters || {};
  const pair = (v) => (Array.isArray(v) ? (v[0] === v[1] ? v[0] : v.join("×")) : v);
  const vars = {
    name: layer.name,
    in: shapeText(layer.input_shape),
    out: shapeText(layer.output_shape),
    n: hp.out_channels ?? hp.out_features ?? layer.output_shape[0],
    k: hp.kernel ? `${hp.kernel[0]}×${hp.kernel[1]}` : "",
    c: hp.in_channels ?? "",
    s: pair(hp.stride ?? 1),
    p: pair(hp.padding ?? 0),
    i: hp.in_features ?? "",
    size: layer.output_shape.reduce((a, b) => a * b, 1).toLocaleString("en-US"),
  };
  const key = `where.${layer.kind}`;
  const text = t(key, vars);
  return text === key ? t("where.generic", vars) : text;
}

function showWhere(name) {
  whereEl.dataset.layer = name ?? "";
  whereEl.textContent = whereText(layersByName[name]);
}

// ---- map columns (conv, relu, pool: C × H × W) ----
/**
 * How one channel is drawn: {kind: "img", src} for per-channel PNGs, or {kind: "tile", src,
 * cols, rows, col, row} for a tile of the layer's atlas (shown as a CSS sprite).
 */
function channelPicture(layer, c, scale) {
  const [channels, h, w] = stats[layer].shape;
  if (channels * h * w > ATLAS_MAX) return { kind: "img", src: channelPngUrl(runId, layer, c, scale), h };
  const cols = Math.ceil(Math.sqrt(channels));
  return {
    kind: "tile",
    src: channelsAtlasUrl(runId, layer, { cols, ...scale }),
    cols,
    rows: Math.ceil(channels / cols),
    col: c % cols,
    row: Math.floor(c / cols),
    h,
  };
}

/** An element showing one channel at `size` CSS pixels. */
function pictureElement(pic, size) {
  if (pic.kind === "img") {
    const img = document.createElement("img");
    img.alt = "";
    img.width = size;
    img.height = size;
    img.decoding = "async";
    img.loading = "lazy"; // "show all" on a 512-channel layer fetches only what is seen
    img.src = pic.src;
    // Upscaled small maps stay crisp; large maps (VGG-16) are shrunk smoothly.
    if (pic.h > size) img.style.imageRendering = "auto";
    return img;
  }
  const tile = document.createElement("span");
  tile.className = "tile";
  setTile(tile, pic, size);
  return tile;
}

function setTile(el, pic, size) {
  el.style.width = `${size}px`;
  el.style.height = `${size}px`;
  el.style.backgroundImage = `url("${pic.src}")`;
  el.style.backgroundSize = `${pic.cols * size}px ${pic.rows * size}px`;
  el.style.backgroundPosition = `${-pic.col * size}px ${-pic.row * size}px`;
  el.style.imageRendering = pic.h > size ? "auto" : "pixelated";
}

function mapLink(layer, c, scale) {
  const a = document.createElement("a");
  a.className = "map-btn";
  a.href = layerUrl(layer.name, `?channel=${c}`);
  a.dataset.channel = String(c);
  a.tabIndex = -1;
  a.setAttribute("aria-label", t("ov.map_label", { layer: layer.name, c }));
  const label = document.createElement("span");
  label.className = "ch";
  label.textContent = String(c);
  label.setAttribute("aria-hidden", "true");
  a.pic = channelPicture(layer.name, c, scale);
  a.append(pictureElement(a.pic, MAP_SIZE), label);
  return a;
}

function renderMaps(col, layer) {
  const maps = col.querySelector(".maps");
  const channels = stats[layer.name].shape[0];
  const scale = scaleOf(layer.name);
  const fill = (count) => {
    maps.replaceChildren();
    maps.classList.toggle("two-cols", count > CAP);
    for (let c = 0; c < count; c++) maps.append(mapLink(layer, c, scale));
    const first = maps.querySelector(".map-btn");
    if (first) first.tabIndex = 0;
  };
  fill(Math.min(channels, CAP));
  if (channels > CAP) {
    const more = document.createElement("button");
    more.type = "button";
    more.className = "btn btn-small more-btn";
    more.dataset.testid = "show-all";
    let all = false;
    const label = () => {
      more.textContent = all ? t("ov.fewer_short") : t("ov.more_short", { n: channels - CAP });
      const full = all ? t("ov.show_fewer") : t("ov.show_all", { n: channels });
      more.setAttribute("aria-label", `${layer.name}: ${full}`);
      more.title = full;
      more.setAttribute("aria-expanded", String(all));
    };
    label();
    more.addEventListener("click", () => {
      all = !all;
      fill(all ? channels : CAP);
      label();
    });
    more.relabel = label;
    col.append(more);
  }
  addLegend(col, scale);
}

function addLegend(col, scale) {
  const legend = document.createElement("canvas");
  legend.className = "legend";
  legend.setAttribute("role", "img");
  legend.setAttribute(
    "aria-label",
    t("ov.legend_label", { min: formatTick(scale.vmin), max: formatTick(scale.vmax) }),
  );
  col.append(legend);
  drawLegend(legend, scale);
}

// ---- vector columns (flatten, linear, activations of vectors): neurons ----
function neuronLayout(n) {
  if (n <= 256) {
    const rows = Math.min(n, 32);
    return { circles: true, cell: 13, rows, cols: Math.ceil(n / rows), colMajor: true };
  }
  const cell = Math.max(1, Math.floor(Math.sqrt((VECTOR_W * 400) / n)));
  const cols = Math.floor(VECTOR_W / cell);
  return { circles: false, cell, rows: Math.ceil(n / cols), cols, colMajor: false };
}

function neuronIndex(lay, row, col) {
  return lay.colMajor ? col * lay.rows + row : row * lay.cols + col;
}

function neuronCell(lay, i) {
  return lay.colMajor
    ? { row: i % lay.rows, col: Math.floor(i / lay.rows) }
    : { row: Math.floor(i / lay.cols), col: i % lay.cols };
}

function drawNeurons(canvas, data, lay, scale, focus) {
  const dpr = window.devicePixelRatio || 1;
  const w = lay.cols * lay.cell;
  const h = lay.rows * lay.cell;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  for (let i = 0; i < data.length; i++) {
    const { row, col } = neuronCell(lay, i);
    ctx.fillStyle = cssColor(colorFor(data[i], scale));
    if (lay.circles) {
      ctx.beginPath();
      ctx.arc((col + 0.5) * lay.cell, (row + 0.5) * lay.cell, lay.cell / 2 - 1.5, 0, 2 * Math.PI);
      ctx.fill();
      ctx.strokeStyle = "rgba(0,0,0,0.18)";
      ctx.lineWidth = 1;
      ctx.stroke();
    } else {
      ctx.fillRect(col * lay.cell, row * lay.cell, lay.cell, lay.cell);
    }
  }
  if (focus != null) {
    const { row, col } = neuronCell(lay, focus);
    ctx.strokeStyle = "#ffb000";
    ctx.lineWidth = 2;
    const pad = lay.cell < 4 ? 2 : 0;
    ctx.strokeRect(col * lay.cell - pad + 1, row * lay.cell - pad + 1, lay.cell + 2 * pad - 2 || 2, lay.cell + 2 * pad - 2 || 2);
  }
}

async function renderVector(col, layer) {
  const maps = col.querySelector(".maps");
  const scale = scaleOf(layer.name);
  const body = await getLayer(runId, layer.name);
  const data = body.data;
  const lay = neuronLayout(data.length);
  const canvas = document.createElement("canvas");
  canvas.className = "neurons-canvas";
  canvas.tabIndex = 0;
  canvas.dataset.testid = "neurons";
  canvas.setAttribute("role", "img");
  const setLabel = () =>
    canvas.setAttribute("aria-label", t("ov.neurons_label", { layer: layer.name, n: data.length }));
  setLabel();
  canvas.relabel = setLabel;
  let focus = null;
  const redraw = () => drawNeurons(canvas, data, lay, scale, focus);
  const indexAt = (e) => {
    const r = canvas.getBoundingClientRect();
    const colI = Math.floor(((e.clientX - r.left) / r.width) * lay.cols);
    const rowI = Math.floor(((e.clientY - r.top) / r.height) * lay.rows);
    if (colI < 0 || rowI < 0 || colI >= lay.cols || rowI >= lay.rows) return null;
    const i = neuronIndex(lay, rowI, colI);
    return i < data.length ? i : null;
  };
  const show = (i, anchor) => {
    focus = i;
    redraw();
    if (i == null) return hideMagnifier();
    showMagnifier(anchor, {
      title: t("ov.neuron_title", { layer: layer.name, i }),
      text: `${t("ov.value")} ${formatValue(data[i])}`,
    });
  };
  canvas.addEventListener("pointermove", (e) => show(indexAt(e), { x: e.clientX, y: e.clientY }));
  canvas.addEventListener("pointerleave", () => show(null));
  canvas.addEventListener("click", (e) => {
    const i = indexAt(e);
    if (i != null) location.assign(layerUrl(layer.name, `?index=${i}`));
  });
  canvas.addEventListener("focus", () => show(focus ?? argmax(data), rectAnchor(canvas)));
  canvas.addEventListener("blur", () => show(null));
  canvas.addEventListener("keydown", (e) => {
    const step = { ArrowDown: 1, ArrowUp: -1, ArrowRight: lay.rows, ArrowLeft: -lay.rows };
    if (!lay.colMajor) Object.assign(step, { ArrowDown: lay.cols, ArrowUp: -lay.cols, ArrowRight: 1, ArrowLeft: -1 });
    if (e.key in step) {
      e.preventDefault();
      const next = Math.min(data.length - 1, Math.max(0, (focus ?? 0) + step[e.key]));
      show(next, rectAnchor(canvas));
    } else if (e.key === "Enter" && focus != null) {
      location.assign(layerUrl(layer.name, `?index=${focus}`));
    }
  });
  maps.replaceChildren(canvas);
  redraw();
  const note = document.createElement("div");
  note.className = "vector-note";
  note.dataset.i18n = "ov.top_neuron";
  const top = argmax(data);
  note.dataset.i18nVars = JSON.stringify({ i: top, v: formatValue(data[top]) });
  col.append(note);
  applyI18n(col);
  addLegend(col, scale);
}

function argmax(data) {
  let best = 0;
  for (let i = 1; i < data.length; i++) if (data[i] > data[best]) best = i;
  return best;
}

function formatValue(v) {
  return Number.isFinite(v) ? String(Number(v.toPrecision(4))) : String(v);
}

// ---- softmax column: the probabilities ----
function renderSoftmax(col) {
  const maps = col.querySelector(".maps");
  const list = document.createElement("ol");
  list.className = "prob-list";
  list.dataset.testid = "predictions";
  list.setAttribute("aria-label", t("ov.predictions_label"));
  maps.replaceChildren(list);
  const many = run.predictions.length > MANY_CLASSES;
  col.classList.toggle("many", many);
  let all = false;
  const draw = () =>
    renderProbBars(list, run.predictions, {
      order: many ? "rank" : "index",
      limit: many && !all ? 10 : Infinity,
      label: className,
      onSelect: (p) => location.assign(layerUrl(col.dataset.layer, `?index=${p.index}`)),
    });
  draw();
  list.redraw = draw;
  if (many) {
    const more = document.createElement("button");
    more.type = "button";
    more.className = "btn btn-small more-btn";
    const label = () => {
      more.textContent = all ? t("ov.show_top") : t("ov.show_all_classes", { n: run.predictions.length });
    };
    label();
    more.relabel = label;
    more.addEventListener("click", () => {
      all = !all;
      draw();
      label();
    });
    col.append(more);
  }
}

// ---- lazy rendering ----
async function renderColumn(col) {
  const name = col.dataset.layer;
  if (rendered.has(name)) return;
  rendered.add(name);
  const layer = layersByName[name];
  col.classList.add("loading");
  try {
    if (layer.kind === "softmax") renderSoftmax(col);
    else if (stats[name].shape.length === 3) renderMaps(col, layer);
    else await renderVector(col, layer);
  } catch (err) {
    const p = document.createElement("p");
    p.className = "alert";
    p.setAttribute("role", "alert");
    p.textContent = errorText(err);
    col.querySelector(".maps").replaceChildren(p);
  } finally {
    col.classList.remove("loading");
  }
}

function observeColumns() {
  const cols = [...network.querySelectorAll('[data-testid="layer"]')];
  if (!("IntersectionObserver" in window)) {
    cols.forEach(renderColumn);
    return;
  }
  const io = new IntersectionObserver(
    (entries) => {
      for (const e of entries) {
        if (e.isIntersecting) {
          io.unobserve(e.target);
          renderColumn(e.target);
        }
      }
    },
    { root: network, rootMargin: "0px 240px 0px 240px" },
  );
  cols.forEach((c) => io.observe(c));
}

// ---- input column ----
function renderInput() {
  const maps = document.getElementById("input-maps");
  const [channels, h] = run.input.shape;
  const img = document.createElement("img");
  img.className = "input-img";
  img.src = inputPngUrl(runId, Math.max(1, Math.ceil(112 / h)));
  img.alt = t("ov.input_alt");
  img.dataset.i18nAttr = "alt:ov.input_alt";
  maps.append(img);
  if (channels === 3) {
    const names = ["ov.red", "ov.green", "ov.blue"];
    for (let c = 0; c < 3; c++) {
      const a = document.createElement("a");
      a.className = "map-btn";
      a.href = layerUrl(page.layers[0].name);
      a.tabIndex = -1;
      a.setAttribute("aria-label", t(names[c]));
      a.dataset.i18nAttr = `aria-label:${names[c]}`;
      a.pic = { kind: "img", src: channelPngUrl(runId, "input", c, {}), h };
      const ch = pictureElement(a.pic, MAP_SIZE);
      const lab = document.createElement("span");
      lab.className = "ch";
      lab.textContent = "RGB"[c];
      a.append(ch, lab);
      maps.append(a);
    }
    maps.querySelector(".map-btn").tabIndex = 0;
  }
}

// ---- hover magnifier (maps and neurons) ----
function rectAnchor(el) {
  const r = el.getBoundingClientRect();
  return { x: r.right, y: r.top + r.height / 2 };
}

function showMagnifier(anchor, { title, text, pic }) {
  document.getElementById("mag-title").textContent = title;
  const holder = document.getElementById("mag-pic");
  holder.hidden = !pic;
  holder.replaceChildren(...(pic ? [pictureElement(pic, MAGNIFIED)] : []));
  document.getElementById("mag-range").textContent = text || "";
  magnifier.hidden = false;
  const w = magnifier.offsetWidth;
  const h = magnifier.offsetHeight;
  let x = anchor.x + 16;
  if (x + w > window.innerWidth - 8) x = anchor.x - w - 16;
  const y = Math.min(Math.max(60, anchor.y - h / 2), window.innerHeight - h - 8);
  magnifier.style.left = `${Math.max(8, x)}px`;
  magnifier.style.top = `${y}px`;
}

function hideMagnifier() {
  magnifier.hidden = true;
}

function channelRange(layer, c) {
  const key = `${layer}/${c}`;
  if (!channelRanges.has(key)) {
    channelRanges.set(
      key,
      getLayer(runId, layer, { channel: c }).then((b) => ({ min: b.min, max: b.max })),
    );
  }
  return channelRanges.get(key);
}

function magnifyMap(link, anchor) {
  const col = link.closest("[data-layer]");
  const layer = col ? col.dataset.layer : "input";
  const c = Number(link.dataset.channel ?? 0);
  const title = col ? t("ov.map_title", { layer, c }) : link.getAttribute("aria-label");
  showMagnifier(anchor, { title, text: t("common.loading"), pic: link.pic });
  magnifier.dataset.for = `${layer}/${c}`;
  if (!col) {
    document.getElementById("mag-range").textContent = "";
    return;
  }
  channelRange(layer, c)
    .then(({ min, max }) => {
      if (magnifier.dataset.for !== `${layer}/${c}` || magnifier.hidden) return;
      document.getElementById("mag-range").textContent = t("common.value_range", {
        min: formatValue(min),
        max: formatValue(max),
      });
    })
    .catch((err) => {
      document.getElementById("mag-range").textContent = errorText(err);
    });
}

network.addEventListener("pointerover", (e) => {
  const link = e.target.closest(".map-btn");
  if (link) magnifyMap(link, { x: e.clientX, y: e.clientY });
  const col = e.target.closest("[data-layer]");
  if (col) showWhere(col.dataset.layer);
  else if (e.target.closest(".input-col")) showWhere(null);
});
network.addEventListener("pointerout", (e) => {
  const link = e.target.closest(".map-btn");
  if (link && !link.contains(e.relatedTarget)) hideMagnifier();
});
network.addEventListener("focusin", (e) => {
  const link = e.target.closest(".map-btn");
  if (link) magnifyMap(link, rectAnchor(link));
  const col = e.target.closest("[data-layer]");
  if (col) showWhere(col.dataset.layer);
});
network.addEventListener("focusout", (e) => {
  if (e.target.closest(".map-btn")) hideMagnifier();
});

// Arrow keys move between maps of a column (up/down) and between columns (left/right):
// one Tab stop per column keeps the page quick to cross with the keyboard.
network.addEventListener("keydown", (e) => {
  const link = e.target.closest(".map-btn");
  if (!link) return;
  const col = link.closest(".layer-col");
  const links = [...col.querySelectorAll(".map-btn")];
  const i = links.indexOf(link);
  let target = null;
  if (e.key === "ArrowDown") target = links[i + 1];
  else if (e.key === "ArrowUp") target = links[i - 1];
  else if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
    let next = e.key === "ArrowRight" ? col.nextElementSibling : col.previousElementSibling;
    while (next && !next.querySelector(".map-btn, canvas[tabindex], .prob[tabindex]")) {
      next = e.key === "ArrowRight" ? next.nextElementSibling : next.previousElementSibling;
    }
    target = next?.querySelector(".map-btn, canvas[tabindex], .prob[tabindex]");
  } else if (e.key === "Escape") {
    hideMagnifier();
    return;
  }
  if (!target) return;
  e.preventDefault();
  links.forEach((l) => (l.tabIndex = -1));
  if (target.classList.contains("map-btn")) target.tabIndex = 0;
  target.focus();
  target.scrollIntoView({ block: "nearest", inline: "nearest" });
});

// ---- Grad-CAM ----
function setupCam() {
  const select = document.getElementById("cam-class");
  const overlay = document.getElementById("cam-overlay");
  const opacity = document.getElementById("cam-opacity");
  const errorEl = document.getElementById("cam-error");
  const h = run.input.shape[1];
  document.getElementById("cam-input").src = inputPngUrl(runId, Math.max(1, Math.ceil(168 / h)));
  const fillOptions = () => {
    const keep = select.value;
    select.replaceChildren();
    for (const p of run.predictions.slice(0, Math.min(run.predictions.length, 50))) {
      const o = document.createElement("option");
      o.value = String(p.index);
      o.textContent = `${className(p.class)} (${formatPercent(p.probability)})`;
      select.append(o);
    }
    select.value = keep || String(run.predictions[0].index);
  };
  fillOptions();
  select.fillOptions = fillOptions;
  const load = () => {
    errorEl.textContent = "";
    overlay.hidden = false;
    overlay.src = saliencyPngUrl(runId, Number(select.value));
  };
  overlay.addEventListener("error", () => {
    overlay.hidden = true;
    errorEl.textContent = t("ov.cam_failed");
  });
  select.addEventListener("change", load);
  const setOpacity = () => {
    overlay.style.opacity = String(Number(opacity.value) / 100);
    opacity.setAttribute("aria-valuetext", `${opacity.value}%`);
  };
  opacity.addEventListener("input", setOpacity);
  setOpacity();
  // Grad-CAM costs a backward pass (seconds on VGG-16): start it only when the student can
  // see at least half of the image, not while the maps are still loading above.
  const io = new IntersectionObserver(
    (entries) => {
      if (entries.some((e) => e.isIntersecting)) {
        io.disconnect();
        load();
      }
    },
    { threshold: 0.5 },
  );
  io.observe(document.getElementById("cam-stack"));
}

// ---- verdict line ----
function renderVerdict() {
  const top = run.predictions[0];
  const el = document.getElementById("verdict");
  el.replaceChildren();
  const label = document.createElement("span");
  label.textContent = `${t("ov.prediction")} `;
  const strong = document.createElement("strong");
  strong.textContent = className(top.class);
  const pct = document.createElement("span");
  pct.className = "muted";
  pct.textContent = ` ${formatPercent(top.probability)}`;
  el.append(label, strong, pct);
}

function relabel() {
  renderVerdict();
  network.querySelectorAll(".more-btn").forEach((b) => b.relabel?.());
  network.querySelectorAll(".neurons-canvas").forEach((c) => c.relabel?.());
  network.querySelectorAll('[data-testid="predictions"]').forEach((l) => l.redraw?.());
  network.querySelectorAll(".map-btn[data-channel]").forEach((a) => {
    const col = a.closest("[data-layer]");
    a.setAttribute("aria-label", t("ov.map_label", { layer: col.dataset.layer, c: a.dataset.channel }));
  });
  document.getElementById("cam-class").fillOptions?.();
  showWhere(whereEl.dataset.layer);
}

async function init() {
  applyI18n();
  try {
    run = await getRun(runId);
  } catch (err) {
    whereEl.textContent = errorText(err);
    whereEl.classList.add("alert");
    whereEl.setAttribute("role", "alert");
    return;
  }
  stats = Object.fromEntries(run.layers.map((l) => [l.name, l]));
  renderVerdict();
  renderInput();
  showWhere(null);
  observeColumns();
  setupCam();
}

window.addEventListener("langchange", () => {
  if (run) relabel();
});

init();
