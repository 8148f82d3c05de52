// Fully connected (linear) layer: the input vector, the neurons lighting up in proportion to
// their value one after another, and for the selected neuron its strongest contributions
// w_ij x_j (from explain), the sum of all terms, the bias and the value.

import { t } from "../i18n.js";
import { drawLegend } from "../render/colormap.js";
import { ACCENT, LINK, drawVector, markEntry, setupCanvas, vectorGeometry } from "../render/grid.js";
import { className } from "../messages/classes.js";
import { cellSteps, createTensorSource, fmt4, h, inputNameOf, layerSummary, setText } from "./layer-common.js";

const LIT = [255, 210, 63]; // a lit neuron
const DARK = [32, 36, 44]; // an unlit one

export async function createView(ctx) {
  const { root, runId, run, model, info, index, store } = ctx;
  const nIn = info.input_shape[0];
  const nOut = info.output_shape[0];
  const inputName = inputNameOf(model, index);
  const prevInfo = model.layers[index - 1];
  const src = createTensorSource(runId, inputName, info.input_shape, layerSummary(run, inputName));
  const out = createTensorSource(runId, info.name, info.output_shape, layerSummary(run, info.name));
  await Promise.all([src.ready(), out.ready()]);
  const steps = cellSteps(info.output_shape);
  // The last linear layer before softmax scores the classes: label its neurons.
  const isClassifier = nOut === model.classes.length && model.layers.slice(index + 1).every((l) => l.kind === "softmax");
  // Where input j came from when the previous layer flattened maps (geometry only).
  const flatShape = prevInfo && prevInfo.kind === "flatten" ? prevInfo.input_shape : null;

  const inTitle = h("h2", { class: "lv-h" });
  const inSub = h("p", { class: "lv-sub" });
  const inCanvas = h("canvas", { class: "lv-map" });
  const contribTitle = h("h3", { class: "lv-h3" });
  const contribCanvas = h("canvas", { class: "lv-map" });
  const inLegend = h("canvas", { class: "lv-legend" });
  const inCol = h("section", { class: "lv-col fc-in" }, inTitle, inSub, inCanvas, inLegend, contribTitle, contribCanvas);

  const mathTitle = h("h2", { class: "lv-h" });
  const mathSub = h("p", { class: "lv-sub" });
  const table = h("table", { class: "fc-terms" });
  const sumLine = h("p", { class: "cv-total lv-num" });
  const mathCol = h("section", { class: "lv-col fc-math" }, mathTitle, mathSub, table, sumLine);

  const neuronsTitle = h("h2", { class: "lv-h" });
  const neuronsSub = h("p", { class: "lv-sub" });
  const neuronsCanvas = h("canvas", { class: "lv-map lv-clickable", tabindex: "0", "data-testid": "output-map" });
  const neuronsHover = h("p", { class: "lv-hover lv-mono" });
  const outCol = h("section", { class: "lv-col fc-out" }, neuronsTitle, neuronsSub, neuronsCanvas, neuronsHover);
  root.replaceChildren(h("div", { class: "lv-grid fc" }, inCol, mathCol, outCol));

  // --- neurons: a column of labelled circles (classifier) or a grid of circles ------------
  let ngeom = null;
  function neuronGeometry() {
    const avail = Math.max(160, outCol.clientWidth - 22);
    if (isClassifier || nOut <= 16) {
      const r = Math.max(7, Math.min(14, Math.floor(400 / nOut / 2) - 2));
      const rowH = 2 * r + 6;
      return { cols: 1, r, rowH, colW: avail, w: avail, h: nOut * rowH, cx: () => r + 2, cy: (i) => i * rowH + r + 3, labels: true };
    }
    const cols = Math.ceil(Math.sqrt(nOut));
    const colW = Math.max(6, Math.min(28, Math.floor(avail / cols)));
    const r = Math.max(2, colW / 2 - 1.5);
    const rows = Math.ceil(nOut / cols);
    return { cols, r, rowH: colW, colW, w: cols * colW, h: rows * colW, cx: (i) => (i % cols) * colW + colW / 2, cy: (i) => Math.floor(i / cols) * colW + colW / 2 };
  }
  function neuronAt(ev) {
    if (!ngeom) return null;
    const rect = neuronsCanvas.getBoundingClientRect();
    const px = ev.clientX - rect.left;
    const py = ev.clientY - rect.top;
    const row = Math.floor(py / ngeom.rowH);
    const col = ngeom.cols === 1 ? 0 : Math.floor(px / ngeom.colW);
    if (col < 0 || col >= ngeom.cols || row < 0) return null;
    const i = row * ngeom.cols + col;
    return i < nOut ? i : null;
  }
  neuronsCanvas.addEventListener("pointerdown", (ev) => {
    const i = neuronAt(ev);
    if (i === null) return;
    ctx.player.pause();
    ctx.player.goTo(i);
  });
  neuronsCanvas.addEventListener("pointermove", (ev) => {
    const i = neuronAt(ev);
    store.set({ hover: i === null ? null : { index: i } });
  });
  neuronsCanvas.addEventListener("pointerleave", () => store.set({ hover: null }));

  function drawNeurons(state) {
    const values = out.data;
    ngeom = neuronGeometry();
    const g = setupCanvas(neuronsCanvas, ngeom.w, ngeom.h);
    const vmax = Math.max(Math.abs(out.min), Math.abs(out.max)) || 1;
    g.font = "12px system-ui, sans-serif";
    g.textBaseline = "middle";
    for (let i = 0; i < nOut; i++) {
      const x = ngeom.cx(i);
      const y = ngeom.cy(i);
      const lit = i <= state.step;
      g.beginPath();
      g.arc(x, y, ngeom.r, 0, 2 * Math.PI);
      if (lit) {
        // square root: small activations still visibly glow, the largest one is full yellow
        const a = Math.sqrt(Math.max(0, Math.min(1, values[i] / vmax)));
        const rgb = DARK.map((d, k) => Math.round(d + (LIT[k] - d) * a));
        g.fillStyle = `rgb(${rgb.join(",")})`;
        g.fill();
        if (values[i] < 0) {
          g.strokeStyle = "#2166ac";
          g.lineWidth = 1.5;
          g.stroke();
        }
      } else {
        g.fillStyle = "#eef0f4";
        g.fill();
        g.strokeStyle = "#c4c9d2";
        g.lineWidth = 1;
        g.stroke();
      }
      if (i === state.step || (state.hover && state.hover.index === i)) {
        g.beginPath();
        g.arc(x, y, ngeom.r + 3, 0, 2 * Math.PI);
        g.strokeStyle = i === state.step ? ACCENT : LINK;
        g.lineWidth = i === state.step ? 3 : 2;
        g.stroke();
      }
      if (ngeom.labels) {
        g.fillStyle = i === state.step ? "#1d2330" : "#5b6472";
        g.textAlign = "left";
        const label = isClassifier ? `${i} ${className(model.classes[i])}` : String(i);
        g.fillText(label, 2 * ngeom.r + 12, y);
        if (lit) {
          g.textAlign = "right";
          g.fillText(fmt4(values[i]), ngeom.w - 4, y);
        }
      }
    }
  }

  function sourceText(j) {
    if (!flatShape) return "";
    const [, H, W] = flatShape;
    const plane = H * W;
    return `(${Math.floor(j / plane)}, ${Math.floor((j % plane) / W)}, ${j % W})`;
  }

  function render(state, ex) {
    const i = state.step;
    const perRow = Math.min(32, nIn);
    const avail = Math.max(160, inCol.clientWidth - 24);
    const cell = Math.max(3, Math.min(14, Math.floor((avail / perRow) * 4) / 4));
    const vgeom = vectorGeometry({ n: nIn, perRow, cell, x0: 1, y0: 1 });
    const g = setupCanvas(inCanvas, vgeom.w + 2, vgeom.h + 2);
    drawVector(g, vgeom, src.data, { cmap: src.cmap, vmax: src.vmax });
    const cg = setupCanvas(contribCanvas, vgeom.w + 2, vgeom.h + 2);
    if (ex) {
      const pmax = ex.products.reduce((m, v) => Math.max(m, Math.abs(v)), 0) || 1;
      drawVector(cg, vgeom, ex.products, { cmap: "diverging", vmax: pmax });
      for (const term of ex.terms) {
        markEntry(g, vgeom, term.index, { color: LINK, width: 2 });
        markEntry(cg, vgeom, term.index, { color: LINK, width: 2 });
      }
    }
    drawNeurons(state);

    setText(inTitle, t("fc.in_title", { n: nIn, name: inputName }));
    setText(inSub, t("fc.in_sub", { k: perRow }));
    setText(contribTitle, t("fc.contrib_title", { i }));
    setText(mathTitle, t("fc.math_title", { i }));
    setText(neuronsTitle, t("fc.neurons_title", { n: nOut }));
    setText(neuronsSub, t("fc.neurons_sub"));
    const hv = state.hover ? state.hover.index : null;
    setText(neuronsHover, hv === null ? " " : t("layer.hover_value", { pos: String(hv), v: fmt4(out.data[hv]) }));

    mathCol.classList.toggle("is-stale", !ex);
    if (ex) {
      setText(mathSub, t("fc.math_sub", { n: ex.terms.length, total: nIn }));
      const tmax = Math.max(1e-12, ...ex.terms.map((term) => Math.abs(term.product)));
      const head = h(
        "tr",
        {},
        h("th", { text: "j" }),
        h("th", { text: "x_j" }),
        h("th", { text: "w_ij" }),
        h("th", { text: "w_ij × x_j" }),
        h("th", { "aria-hidden": "true" }),
      );
      const rows = ex.terms.map((term) =>
        h(
          "tr",
          { title: flatShape ? t("fc.from_map", { pos: sourceText(term.index) }) : null },
          h("td", { class: "lv-num", text: flatShape ? `${term.index} ${sourceText(term.index)}` : String(term.index) }),
          h("td", { class: "lv-num", text: fmt4(term.input) }),
          h("td", { class: "lv-num", text: fmt4(term.weight) }),
          h("td", { class: "lv-num fc-prod", text: fmt4(term.product) }),
          h(
            "td",
            { class: "fc-barcell" },
            h("span", { class: `cv-bar${term.product < 0 ? " is-neg" : ""}`, style: `width:${(100 * Math.abs(term.product)) / tmax}%` }),
          ),
        ),
      );
      table.replaceChildren(h("thead", {}, head), h("tbody", {}, ...rows));
      sumLine.replaceChildren(
        h("span", { text: t("fc.sum_all", { n: nIn }) }),
        h("span", { text: ` ${fmt4(ex.terms_sum)}` }),
        h("span", { class: "cv-plus", text: ` + ${t("conv.bias")} ` }),
        h("span", { text: fmt4(ex.bias) }),
        h("span", { class: "cv-plus", text: " = " }),
        h("b", { class: "cv-value", text: fmt4(ex.value) }),
        h("span", { class: "cv-written", text: ` → ${t("fc.neuron_n", { i })}` }),
      );
    }
  }

  function applyTexts() {
    drawLegend(inLegend, { cmap: src.cmap, vmax: src.vmax });
  }

  return {
    ...steps,
    positionLabel: "fc.neuron_label",
    render,
    applyTexts,
    layout: applyTexts,
    lesson: () => t(isClassifier ? "fc.lesson_classifier" : "fc.lesson", { nin: nIn, nout: nOut, name: inputName }),
  };
}
