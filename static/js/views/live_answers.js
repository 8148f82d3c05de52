// The spread of a class's answers: a histogram of numbers, or bars of class votes, as SVG.
// Used by the presenter (while answers arrive) and by students (after the reveal).

import { t } from "../i18n.js";

const SVG = "http://www.w3.org/2000/svg";
const BINS = 10;

/** A number as the pages show it: at most 4 decimals, no trailing zeros. */
export function fmtNumber(v) {
  if (!Number.isFinite(v)) return String(v);
  return String(Math.round(v * 1e4) / 1e4);
}

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== null) node.textContent = text;
  return node;
}

/** Counts of `values` in BINS equal bins over [lo, hi] (the last bin includes hi). */
export function histogram(values, lo, hi, bins = BINS) {
  const counts = new Array(bins).fill(0);
  const width = (hi - lo) / bins;
  for (const v of values) {
    const i = width > 0 ? Math.min(bins - 1, Math.floor((v - lo) / width)) : 0;
    counts[i] += 1;
  }
  return counts;
}

export function median(sorted) {
  if (!sorted.length) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Draw `summary` (the server's "answers" message) into `container`.
 * options.truth: the true value (number) or class index, shown once known;
 * options.classNames: names of the classes, for class questions.
 */
export function renderAnswers(container, summary, { truth = null, classNames = [] } = {}) {
  container.replaceChildren();
  if (!summary || !summary.count) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = t("live.no_answers");
    container.append(p);
    return;
  }
  const W = 280;
  const H = 150;
  const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "live-chart", "data-testid": "answers-chart" });
  svg.append(el("title", {}, t("live.chart_label")));
  if (summary.question === "class") drawClasses(svg, summary.counts || [], classNames, truth, W, H);
  else drawValues(svg, summary.values || [], truth, W, H);
  container.append(svg);
  if (summary.question !== "class" && summary.values && summary.values.length) {
    const v = summary.values;
    const p = document.createElement("p");
    p.className = "live-spread";
    p.textContent = t("live.spread", { median: fmtNumber(median(v)), min: fmtNumber(v[0]), max: fmtNumber(v[v.length - 1]) });
    container.append(p);
  }
}

function drawValues(svg, values, truth, W, H) {
  const known = Number.isFinite(truth);
  let lo = Math.min(...values, ...(known ? [truth] : []));
  let hi = Math.max(...values, ...(known ? [truth] : []));
  // A margin, so that answers and the true value at the ends stay visible.
  const margin = lo === hi ? 0.5 : (hi - lo) * 0.08;
  lo -= margin;
  hi += margin;
  const counts = histogram(values, lo, hi);
  const top = Math.max(...counts);
  const left = 8;
  const plotW = W - 16;
  const base = H - 22;
  const plotH = base - 16;
  const bw = plotW / counts.length;
  counts.forEach((c, i) => {
    if (!c) return;
    const h = (c / top) * plotH;
    svg.append(el("rect", { x: left + i * bw + 1, y: base - h, width: bw - 2, height: h, class: "live-bar", "data-count": c }));
    svg.append(el("text", { x: left + (i + 0.5) * bw, y: base - h - 3, "text-anchor": "middle", class: "live-bar-label" }, String(c)));
  });
  svg.append(el("line", { x1: left, x2: left + plotW, y1: base, y2: base, class: "live-axis" }));
  svg.append(el("text", { x: left, y: H - 6, class: "live-tick" }, fmtNumber(lo)));
  svg.append(el("text", { x: left + plotW, y: H - 6, "text-anchor": "end", class: "live-tick" }, fmtNumber(hi)));
  if (known) {
    const x = left + ((truth - lo) / (hi - lo)) * plotW;
    svg.append(el("rect", { x: x - 1, y: 12, width: 2, height: base - 12, class: "live-truth-line", "data-testid": "truth-marker" }));
    svg.append(el("text", { x: Math.min(Math.max(x, 40), W - 40), y: 9, "text-anchor": "middle", class: "live-truth-label" }, t("live.truth_marker")));
  }
}

function drawClasses(svg, counts, names, truth, W, H) {
  const order = counts
    .map((c, i) => [c, i])
    .filter(([c, i]) => c > 0 || i === truth)
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, 6);
  const top = Math.max(1, ...order.map(([c]) => c));
  const rowH = (H - 4) / Math.max(order.length, 1);
  const labelW = 96;
  order.forEach(([c, i], row) => {
    const y = 2 + row * rowH;
    const name = names[i] ?? String(i);
    svg.append(el("text", { x: labelW - 6, y: y + rowH * 0.65, "text-anchor": "end", class: "live-tick" }, name.length > 14 ? `${name.slice(0, 13)}…` : name));
    const w = (c / top) * (W - labelW - 30);
    svg.append(el("rect", { x: labelW, y: y + 2, width: Math.max(w, 1), height: rowH - 4, class: i === truth ? "live-bar live-bar-truth" : "live-bar", "data-count": c }));
    svg.append(el("text", { x: labelW + w + 4, y: y + rowH * 0.65, class: "live-bar-label" }, String(c)));
  });
}
