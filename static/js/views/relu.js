// Activations (ReLU, Leaky ReLU, sigmoid, tanh): input and output side by side, negative
// cells marked as clipped to zero (ReLU), and the formula with the current cell's numbers.

import { t } from "../i18n.js";
import { LINK, drawNumberGrid, setupCanvas } from "../render/grid.js";
import {
  cellSteps,
  channelPicker,
  createMapPanel,
  createReceptivePanel,
  createTensorSource,
  fmt4,
  h,
  inputNameOf,
  layerSummary,
  loadInputImage,
  neighbourhood,
  paren,
  setText,
} from "./layer-common.js";

export async function createView(ctx) {
  const { root, extra, runId, run, model, info, index, store, requestRender } = ctx;
  const shape = info.output_shape;
  const isMap = shape.length === 3;
  const kind = info.kind;
  const inputName = inputNameOf(model, index);
  const src = createTensorSource(runId, inputName, info.input_shape, layerSummary(run, inputName));
  const out = createTensorSource(runId, info.name, shape, layerSummary(run, info.name));
  const [image] = await Promise.all([isMap ? loadInputImage(runId) : null, src.ready(), out.ready()]);
  const steps = cellSteps(shape);
  const spec = model.input;
  const [C, H, W] = isMap ? shape : [1, 1, shape[0]];
  // vectors in square-ish rows of a power of two (256 -> 16 x 16, 120 -> 8 per row)
  const perRow = isMap ? 0 : Math.min(32, 2 ** Math.round(Math.log2(Math.sqrt(shape[0]))));
  store.set({ channel: Math.min(C - 1, Math.max(0, store.get().channel)) });

  const picker = isMap ? channelPicker({ store, key: "channel", n: C, labelKey: "layer.channel", testid: "out-channel", t }) : null;
  extra.replaceChildren(...(picker ? [picker.el] : []));

  const jump = (cell) => {
    ctx.player.pause();
    ctx.player.goTo(steps.stepOf(cell));
  };
  const inPanel = createMapPanel({ source: src, shape: info.input_shape, extraClass: "act-in" });
  const outPanel = createMapPanel({
    source: out,
    shape,
    onPick: jump,
    onHover: (cell) => store.set({ hover: cell }),
    testid: "output-map",
    extraClass: "act-out",
  });

  const mathTitle = h("h2", { class: "lv-h" });
  const formula = h("p", { class: "act-formula lv-num" });
  const verdict = h("p", { class: "act-verdict" });
  const inNearCanvas = h("canvas");
  const outNearCanvas = h("canvas");
  const inNearCap = h("figcaption");
  const outNearCap = h("figcaption");
  const near = h(
    "div",
    { class: "act-near" },
    h("figure", {}, inNearCanvas, inNearCap),
    h("span", { class: "cv-op", "aria-hidden": "true", text: "→" }),
    h("figure", {}, outNearCanvas, outNearCap),
  );
  const keys = h("div", { class: "lv-keys-row" });
  const rf = createReceptivePanel(image, spec);
  const mathCol = h(
    "section",
    { class: "lv-col act-math" },
    mathTitle,
    formula,
    verdict,
    near,
    keys,
    isMap ? rf.el : null,
  );
  root.replaceChildren(h("div", { class: "lv-grid act" }, inPanel.el, mathCol, outPanel.el));

  const inData = () => src.peekChannel(isMap ? store.get().channel : 0);
  const clippedAt = (i) => {
    const d = inData();
    return kind === "relu" && d && d[i] < 0;
  };

  function render(state, ex) {
    const cell = steps.cellOf(state.step, state);
    const c = isMap ? cell.channel : 0;
    picker?.sync(state);
    const here = isMap ? { y: cell.y, x: cell.x } : { index: cell.index };
    const hatched = kind === "relu" || kind === "leaky_relu" ? (i) => clippedAt(i) : null;
    inPanel.render({ channel: c, marks: [{ ...here }], perRow, requestRender, hatched: null });
    const marks = [{ ...here }];
    if (state.hover) marks.push({ ...state.hover, color: LINK, width: 1.5 });
    const outData = outPanel.render({ channel: c, filled: state.step + 1, marks, hatched, perRow, requestRender });
    const name = t(`kind.${kind}`);
    setText(inPanel.title, isMap ? t("act.in_title_map", { c }) : t("act.in_title_vec"));
    setText(outPanel.title, isMap ? t("act.out_title_map", { c }) : t("act.out_title_vec"));
    setText(inPanel.sub, t("act.in_sub", { name: inputName }));
    setText(outPanel.sub, t("layer.click_to_jump"));
    setText(
      outPanel.hover,
      state.hover && outData
        ? t("layer.hover_value", {
            pos: isMap ? `${c}, ${state.hover.y}, ${state.hover.x}` : String(state.hover.index),
            v: fmt4(outData[isMap ? state.hover.y * W + state.hover.x : state.hover.index]),
          })
        : " ",
    );
    setText(mathTitle, t("act.math_title", { name }));

    mathCol.classList.toggle("is-stale", !ex);
    if (ex) {
      const x = paren(ex.input);
      const substituted = ex.formula.replace(/\bx\b/g, x);
      formula.replaceChildren(
        h("span", { text: `f(x) = ${ex.formula}` }),
        h("br"),
        h("span", { text: `f(${fmt4(ex.input)}) = ${substituted} = ` }),
        h("b", { class: "act-value", text: fmt4(ex.value) }),
      );
      let note;
      if (kind === "relu") note = ex.clipped ? "act.clipped" : "act.passed";
      else if (kind === "leaky_relu") note = ex.input < 0 ? "act.leaky_neg" : "act.passed";
      else note = kind === "sigmoid" ? "act.sigmoid_note" : "act.tanh_note";
      setText(verdict, t(note));
      verdict.classList.toggle("is-clipped", Boolean(ex.clipped));
    }

    // the neighbourhood in numbers: input -> output, clipped cells hatched
    const r = 2;
    const ind = inData();
    const outd = out.peekChannel(c);
    if (ind && outd) {
      let inRows;
      let outRows;
      let centre;
      if (isMap) {
        inRows = neighbourhood(ind, H, W, cell.y, cell.x, r).rows;
        outRows = neighbourhood(outd, H, W, cell.y, cell.x, r, (i) => i <= state.step).rows;
        centre = [r, r];
      } else {
        const lo = Math.max(0, Math.min(cell.index - 4, shape[0] - 9));
        const ids = [];
        for (let i = lo; i < Math.min(shape[0], lo + 9); i++) ids.push(i);
        inRows = [ids.map((i) => ind[i])];
        outRows = [ids.map((i) => (i <= state.step ? outd[i] : null))];
        centre = [0, cell.index - lo];
      }
      const cols = inRows[0].length;
      const cellW = Math.max(34, Math.min(50, Math.floor((mathCol.clientWidth - 60) / (2 * cols))));
      const sizes = { cellW, cellH: 28, digits: cellW >= 44 ? 3 : 2, font: 11 };
      const markIn = (rr, cc) => (rr === centre[0] && cc === centre[1] ? "cur" : null);
      const markOut = (rr, cc) => {
        if (rr === centre[0] && cc === centre[1]) return "cur";
        return kind === "relu" && inRows[rr][cc] !== null && inRows[rr][cc] < 0 && outRows[rr][cc] !== null ? "clip" : null;
      };
      const w = cols * sizes.cellW;
      const hh = inRows.length * sizes.cellH;
      drawNumberGrid(setupCanvas(inNearCanvas, w, hh), inRows, { ...sizes, cmap: src.cmap, vmax: src.vmax, mark: markIn });
      drawNumberGrid(setupCanvas(outNearCanvas, w, hh), outRows, { ...sizes, cmap: out.cmap, vmax: out.vmax, mark: markOut });
      setText(inNearCap, t("act.near_in"));
      setText(outNearCap, t("act.near_out"));
    }

    if (isMap) {
      rf.show(info.receptive_field, cell);
    }
  }

  function applyTexts() {
    picker?.applyTexts();
    const items = [h("span", { class: "lv-key lv-key-cur", text: t("act.key_current") })];
    if (kind === "relu") items.unshift(h("span", { class: "lv-key lv-key-clip", text: t("act.key_clipped") }));
    if (kind === "leaky_relu") items.unshift(h("span", { class: "lv-key lv-key-clip", text: t("act.key_scaled") }));
    keys.replaceChildren(...items);
    outPanel.keys.replaceChildren(...items.map((n) => n.cloneNode(true)));
    inPanel.drawLegend();
    outPanel.drawLegend();
  }

  return {
    ...steps,
    render,
    applyTexts,
    layout: () => {
      inPanel.drawLegend();
      outPanel.drawLegend();
    },
    lesson: () => t(`act.lesson_${kind}`, { name: inputName }) + (isMap ? ` ${t("act.lesson_map")}` : ""),
  };
}
