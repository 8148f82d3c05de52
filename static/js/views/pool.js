// Max and average pooling: the window moving with its stride over one channel, the chosen
// maximum highlighted (or the mean computed), and the smaller map filling in.

import { t } from "../i18n.js";
import { LINK, drawNumberGrid, setupCanvas, windowTaps } from "../render/grid.js";
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
  pairText,
  paren,
  resolvePads,
  setText,
} from "./layer-common.js";

export async function createView(ctx) {
  const { root, extra, runId, run, model, info, index, store, requestRender } = ctx;
  const [C, hOut, wOut] = info.output_shape;
  const [, hIn, wIn] = info.input_shape;
  const hp = info.hyperparameters;
  const isMax = info.kind === "maxpool2d";
  const pads = resolvePads(hp, info.input_shape, info.output_shape);
  const geometry = { kernel: hp.kernel, stride: hp.stride, dilation: [1, 1], pads };
  const inputName = inputNameOf(model, index);
  const src = createTensorSource(runId, inputName, info.input_shape, layerSummary(run, inputName));
  const out = createTensorSource(runId, info.name, info.output_shape, layerSummary(run, info.name));
  const [image] = await Promise.all([loadInputImage(runId), src.ready(), out.ready()]);
  const steps = cellSteps(info.output_shape);
  const spec = model.input;
  store.set({ channel: Math.min(C - 1, Math.max(0, store.get().channel)) });

  const picker = channelPicker({ store, key: "channel", n: C, labelKey: "layer.channel", testid: "out-channel", t });
  extra.replaceChildren(picker.el);
  const jump = (cell) => {
    ctx.player.pause();
    ctx.player.goTo(steps.stepOf(cell));
  };
  const inPanel = createMapPanel({ source: src, shape: info.input_shape, pads, padLabel: isMax ? "−∞" : "0", maxCell: 30, extraClass: "pool-in" });
  const outPanel = createMapPanel({
    source: out,
    shape: info.output_shape,
    scale: 0.8,
    maxCell: 30,
    onPick: jump,
    onHover: (cell) => store.set({ hover: cell }),
    testid: "output-map",
    extraClass: "pool-out",
  });

  const mathTitle = h("h2", { class: "lv-h" });
  const winCanvas = h("canvas");
  const winCap = h("figcaption");
  const formula = h("p", { class: "pool-formula lv-num" });
  const note = h("p", { class: "act-verdict" });
  const keys = h("div", { class: "lv-keys-row" });
  const rf = createReceptivePanel(image, spec);
  const mathCol = h(
    "section",
    { class: "lv-col pool-math" },
    mathTitle,
    h("div", { class: "pool-eq" }, h("figure", {}, winCanvas, winCap), formula),
    note,
    keys,
    rf.el,
  );
  root.replaceChildren(h("div", { class: "lv-grid act" }, inPanel.el, mathCol, outPanel.el));

  function render(state, ex) {
    const cell = steps.cellOf(state.step, state);
    picker.sync(state);
    const taps = windowTaps(geometry, cell.y, cell.x);
    const nextStep = state.step + 1;
    const next = nextStep < steps.total ? windowTaps(geometry, Math.floor(nextStep / wOut), nextStep % wOut) : null;
    const marks = [];
    if (ex && isMax && ex.argmax_input) marks.push({ y: ex.argmax_input[0], x: ex.argmax_input[1], color: LINK, width: 2 });
    inPanel.render({ channel: cell.channel, window: { ...taps, next }, marks, requestRender });
    const outMarks = [{ y: cell.y, x: cell.x }];
    if (state.hover) outMarks.push({ ...state.hover, color: LINK, width: 1.5 });
    const outData = outPanel.render({ channel: cell.channel, filled: state.step + 1, marks: outMarks, requestRender });
    setText(inPanel.title, t("pool.in_title", { c: cell.channel, h: hIn, w: wIn }));
    setText(outPanel.title, t("pool.out_title", { c: cell.channel, h: hOut, w: wOut }));
    setText(outPanel.sub, t("layer.click_to_jump"));
    setText(
      outPanel.hover,
      state.hover && outData
        ? t("layer.hover_value", { pos: `${cell.channel}, ${state.hover.y}, ${state.hover.x}`, v: fmt4(outData[state.hover.y * wOut + state.hover.x]) })
        : " ",
    );
    setText(mathTitle, t(isMax ? "pool.math_max" : "pool.math_avg"));

    mathCol.classList.toggle("is-stale", !ex);
    if (ex) {
      const k = ex.window[0].length;
      const cellW = Math.max(40, Math.min(64, Math.floor((mathCol.clientWidth - 40) / Math.max(k, 3))));
      const sizes = { cellW, cellH: Math.round(cellW * 0.7), digits: cellW >= 56 ? 4 : 3, font: cellW >= 56 ? 14 : 12 };
      const mark = (r, c) => {
        if (ex.padded[r][c]) return "pad";
        if (isMax && ex.argmax[0] === r && ex.argmax[1] === c) return "pick";
        return null;
      };
      // Max-pool padding is -inf in the engine: it can never be the maximum.
      const shown = ex.window.map((row, r) => row.map((v, c) => (ex.padded[r][c] && isMax ? -Infinity : v)));
      drawNumberGrid(setupCanvas(winCanvas, k * sizes.cellW, ex.window.length * sizes.cellH), shown, {
        ...sizes,
        cmap: src.cmap,
        vmax: src.vmax,
        mark,
      });
      setText(winCap, t("pool.window_cap", { k: hp.kernel.join(" × "), rows: `${ex.rows[0]}–${ex.rows[ex.rows.length - 1]}`, cols: `${ex.cols[0]}–${ex.cols[ex.cols.length - 1]}` }));
      const values = ex.window.flat().filter((v, i) => !ex.padded.flat()[i]);
      const list = values.length <= 9 ? values.map(fmt4).join(", ") : t("pool.n_values", { n: values.length });
      if (isMax) {
        formula.replaceChildren(h("span", { text: `max(${list}) = ` }), h("b", { class: "act-value", text: fmt4(ex.value) }));
        setText(note, t("pool.max_note", { y: ex.argmax_input[0], x: ex.argmax_input[1] }));
      } else {
        // every tap counts in the mean, padded zeros included
        const all = ex.window.flat();
        formula.replaceChildren(
          h("span", { text: `(${all.length <= 9 ? all.map(paren).join(" + ") : t("pool.n_values", { n: all.length })}) / ${ex.count}` }),
          h("br"),
          h("span", { text: `= ${fmt4(ex.sum)} / ${ex.count} = ` }),
          h("b", { class: "act-value", text: fmt4(ex.value) }),
        );
        setText(note, t("pool.avg_note", { n: ex.count }));
      }
    }

    rf.show(info.receptive_field, cell, ex && ex.receptive_field);
  }

  function applyTexts() {
    picker.applyTexts();
    const items = [
      ...(pads.some((p) => p > 0) ? [h("span", { class: "lv-key lv-key-pad", text: t(isMax ? "pool.key_pad_max" : "conv.key_pad") })] : []),
      h("span", { class: "lv-key lv-key-win", text: t("conv.key_window", { k: hp.kernel.join(" × ") }) }),
      h("span", { class: "lv-key lv-key-next", text: t("conv.key_next", { s: pairText(hp.stride) }) }),
    ];
    if (isMax) items.push(h("span", { class: "lv-key lv-key-pick", text: t("pool.key_max") }));
    inPanel.keys.replaceChildren(...items);
    setText(inPanel.sub, pads.some((p) => p > 0) ? t("conv.input_sub_pad", { h: hIn, w: wIn, p: pads[0], ph: hIn + pads[0] + pads[1], pw: wIn + pads[2] + pads[3] }) : t("act.in_sub", { name: inputName }));
    keys.replaceChildren(...(isMax ? [h("span", { class: "lv-key lv-key-pick", text: t("pool.key_max") })] : []));
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
    lesson() {
      const k = hp.kernel.join(" × ");
      const s = pairText(hp.stride);
      const overlap = hp.stride[0] < hp.kernel[0] || hp.stride[1] < hp.kernel[1];
      return [
        t(isMax ? "pool.lesson_max" : "pool.lesson_avg", { k, s }),
        t(overlap ? "pool.lesson_overlap" : "pool.lesson_tiles", { hin: hIn, win: wIn, h: hOut, w: wOut }),
        t("pool.lesson_depth", { c: C }),
      ].join(" ");
    },
  };
}
