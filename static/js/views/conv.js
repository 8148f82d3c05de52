// Convolution: the kernel sliding over the zero-padded input with its stride (and dilation
// gaps), the arithmetic of the current cell (window x kernel per input channel, channel
// sums, plus bias, equals the value) and the output map filling in.

import { getLang, t } from "../i18n.js";
import { drawLegend } from "../render/colormap.js";
import {
  ACCENT,
  drawMap,
  drawNumberGrid,
  drawWindow,
  fitCell,
  mapGeometry,
  markCell,
  setupCanvas,
  windowTaps,
} from "../render/grid.js";
import {
  cellSteps,
  channelPicker,
  createReceptivePanel,
  createTensorSource,
  fmt4,
  h,
  inputNameOf,
  layerSummary,
  loadInputImage,
  paren,
  isVisible,
  mapCap,
  pairText,
  resolvePads,
  scrollIntoBox,
  setText,
} from "./layer-common.js";

/** Show full grids for every input channel ("all" mode) only up to this many rows drawn. */
const MAX_ALL_ROWS = 512;

export async function createView(ctx) {
  const { root, extra, runId, run, model, info, index, store, requestRender } = ctx;
  const [cOut, hOut, wOut] = info.output_shape;
  const [cIn, hIn, wIn] = info.input_shape;
  const hp = info.hyperparameters;
  const pads = resolvePads(hp, info.input_shape, info.output_shape);
  const dil = hp.dilation || [1, 1];
  const inputName = inputNameOf(model, index);
  const src = createTensorSource(runId, inputName, info.input_shape, layerSummary(run, inputName));
  const out = createTensorSource(runId, info.name, info.output_shape, layerSummary(run, info.name));
  const [image] = await Promise.all([loadInputImage(runId), src.ready(), out.ready()]);
  const steps = cellSteps(info.output_shape);
  const spec = model.input;

  const s0 = store.get();
  store.set({
    channel: Math.min(cOut - 1, Math.max(0, s0.channel)),
    inChannel: Math.min(cIn - 1, Math.max(0, s0.inChannel)),
  });

  // --- DOM ---------------------------------------------------------------------------
  const outPicker = channelPicker({ store, key: "channel", n: cOut, labelKey: "conv.out_channel", testid: "out-channel", t });
  const modeBtn = h("button", { type: "button", class: "lv-toggle", "aria-pressed": "false", "data-testid": "mode-all" });
  modeBtn.addEventListener("click", () => store.set({ mode: store.get().mode === "all" ? "one" : "all" }));
  extra.replaceChildren(outPicker.el, modeBtn);

  const inSelect = h("select", { class: "lv-select", "data-testid": "in-channel" });
  for (let c = 0; c < cIn; c++) inSelect.append(h("option", { value: c, text: String(c) }));
  inSelect.addEventListener("change", () => store.set({ inChannel: Number(inSelect.value) }));
  const inTitle = h("span");
  const inOf = h("span");
  const inSub = h("p", { class: "lv-sub" });
  const inCanvas = h("canvas", { class: "lv-map", role: "img" });
  const inOne = h("div", { class: "cv-one" }, inCanvas);
  const thumbs = [];
  const inAll = h("div", { class: "cv-all", hidden: true });
  inAll.addEventListener("scroll", () => requestRender(), { passive: true });
  for (let c = 0; c < cIn; c++) {
    const canvas = h("canvas");
    const btn = h("button", { type: "button", class: "cv-thumb", "data-channel": c }, canvas, h("span", { text: String(c) }));
    btn.addEventListener("click", () => store.set({ inChannel: c }));
    thumbs.push({ btn, canvas });
    inAll.append(btn);
  }
  const inLegend = h("canvas", { class: "lv-legend" });
  const keyPad = h("span", { class: "lv-key lv-key-pad" });
  const keyWin = h("span", { class: "lv-key lv-key-win" });
  const keyNext = h("span", { class: "lv-key lv-key-next" });
  const inCol = h(
    "section",
    { class: "lv-col cv-in" },
    h("h2", { class: "lv-h" }, inTitle, " ", h("label", { class: "lv-inline" }, inSelect), " ", inOf),
    inSub,
    inOne,
    inAll,
    h("div", { class: "lv-keys-row" }, keyPad, keyWin, keyNext),
    inLegend,
  );

  const winCanvas = h("canvas");
  const kerCanvas = h("canvas");
  const prodCanvas = h("canvas");
  const winCap = h("figcaption");
  const kerCap = h("figcaption");
  const prodCap = h("figcaption");
  const chSum = h("b", { class: "lv-num" });
  const chSumLabel = h("span");
  const eqOne = h(
    "div",
    { class: "cv-eq" },
    h("figure", {}, winCanvas, winCap),
    h("span", { class: "cv-op", "aria-hidden": "true", text: "×" }),
    h("figure", {}, kerCanvas, kerCap),
    h("span", { class: "cv-op", "aria-hidden": "true", text: "=" }),
    h("figure", {}, prodCanvas, prodCap),
    h("div", { class: "cv-chsum" }, chSumLabel, chSum),
  );
  const sumsTitle = h("h3", { class: "lv-h3" });
  const sumsList = h("ol", { class: "cv-sums" });
  const sumRows = [];
  for (let c = 0; c < cIn; c++) {
    const bar = h("span", { class: "cv-bar" });
    const val = h("span", { class: "lv-num" });
    const btn = h("button", { type: "button", class: "cv-sumrow" }, h("span", { class: "cv-ch", text: `${c}` }), h("span", { class: "cv-barwrap" }, bar), val);
    btn.addEventListener("click", () => store.set({ inChannel: c }));
    sumRows.push({ btn, bar, val });
    sumsList.append(h("li", {}, btn));
  }
  const allRows = [];
  const eqAll = h("div", { class: "cv-eqall", hidden: true });
  eqAll.addEventListener("scroll", () => requestRender(), { passive: true });
  for (let c = 0; c < Math.min(cIn, MAX_ALL_ROWS); c++) {
    const row = {
      win: h("canvas"),
      ker: h("canvas"),
      prod: h("canvas"),
      sum: h("b", { class: "lv-num" }),
      label: h("button", { type: "button", class: "cv-ch", text: String(c) }),
    };
    row.label.addEventListener("click", () => store.set({ inChannel: c }));
    row.el = h(
      "div",
      { class: "cv-eqrow" },
      row.label,
      row.win,
      h("span", { class: "cv-op", text: "×" }),
      row.ker,
      h("span", { class: "cv-op", text: "=" }),
      row.prod,
      h("span", { class: "cv-op", text: "→" }),
      row.sum,
    );
    allRows.push(row);
    eqAll.append(row.el);
  }
  const total = h("p", { class: "cv-total", "aria-live": "off" });
  const mathTitle = h("h2", { class: "lv-h" });
  const rf = createReceptivePanel(image, spec);
  const mathCol = h(
    "section",
    { class: "lv-col cv-math" },
    mathTitle,
    eqOne,
    eqAll,
    sumsTitle,
    sumsList,
    total,
    rf.el,
  );

  const outCanvas = h("canvas", { class: "lv-map lv-clickable", tabindex: "0", "data-testid": "output-map" });
  const outTitle = h("h2", { class: "lv-h" });
  const outHint = h("p", { class: "lv-sub" });
  const outLegend = h("canvas", { class: "lv-legend" });
  const hoverText = h("p", { class: "lv-hover lv-mono" });
  const outCol = h("section", { class: "lv-col cv-out" }, outTitle, outHint, outCanvas, hoverText, outLegend);
  root.replaceChildren(h("div", { class: "lv-grid cv" }, inCol, mathCol, outCol));

  // --- interaction -------------------------------------------------------------------
  let outGeom = null;
  const pointerCell = (ev) => {
    if (!outGeom) return null;
    const r = outCanvas.getBoundingClientRect();
    return outGeom.cellAt(ev.clientX - r.left, ev.clientY - r.top);
  };
  outCanvas.addEventListener("pointerdown", (ev) => {
    const cell = pointerCell(ev);
    if (!cell) return;
    ctx.player.pause();
    ctx.player.goTo(steps.stepOf(cell));
  });
  outCanvas.addEventListener("pointermove", (ev) => store.set({ hover: pointerCell(ev) }));
  outCanvas.addEventListener("pointerleave", () => store.set({ hover: null }));

  let lastInChannel = -1;
  let lastMode = null;
  let lastMathKey = null;

  // --- drawing -----------------------------------------------------------------------
  function drawInputMap(canvas, c, cell, size, showNumbers) {
    const data = src.peekChannel(c);
    const cells = wIn + pads[2] + pads[3];
    const side = fitCell(size, cells, 0.5, showNumbers ? 30 : 12);
    const geom = mapGeometry({ height: hIn, width: wIn, cell: side, pad: pads });
    const g = setupCanvas(canvas, geom.outerW, geom.outerH);
    if (!data) {
      src.channel(c).then(requestRender);
      return geom;
    }
    drawMap(g, geom, data, { cmap: src.cmap, vmax: src.vmax, grid: showNumbers });
    const taps = windowTaps({ kernel: hp.kernel, stride: hp.stride, dilation: dil, pads }, cell.y, cell.x);
    const nextStep = steps.stepOf(cell) + 1;
    if (nextStep < steps.total) {
      const nx = windowTaps({ kernel: hp.kernel, stride: hp.stride, dilation: dil, pads }, Math.floor(nextStep / wOut), nextStep % wOut);
      drawWindow(g, geom, nx.rows, nx.cols, { color: "rgba(194,94,0,0.7)", ghost: true });
    }
    drawWindow(g, geom, taps.rows, taps.cols);
    return geom;
  }

  // Number grids as large as the column allows (three grids, two operators and the sum on
  // one line); 3 decimals when the cells are wide enough, else 2.
  function gridSizes(avail, k) {
    const cellW = Math.max(30, Math.min(66, Math.floor((avail - 170) / (3 * k[1]))));
    return {
      cellW,
      cellH: Math.round(Math.max(22, Math.min(42, cellW * 0.66))),
      digits: cellW >= 40 ? 3 : 2,
      font: Math.max(9, Math.min(15, Math.floor(cellW / 3.7))),
    };
  }

  function drawEquation(canvases, ex, c, sizes) {
    const padded = ex.padded;
    const mark = (r, q) => (padded[r][q] ? "pad" : null);
    const kmax = maxAbs(ex.kernel);
    const pmax = maxAbs(ex.products);
    const rows = ex.window[c].length;
    const cols = ex.window[c][0].length;
    const w = cols * sizes.cellW;
    const hgt = rows * sizes.cellH;
    drawNumberGrid(setupCanvas(canvases[0], w, hgt), ex.window[c], { ...sizes, cmap: src.cmap, vmax: src.vmax, mark });
    drawNumberGrid(setupCanvas(canvases[1], w, hgt), ex.kernel[c], { ...sizes, cmap: "diverging", vmax: kmax });
    drawNumberGrid(setupCanvas(canvases[2], w, hgt), ex.products[c], { ...sizes, cmap: "diverging", vmax: pmax, mark });
  }

  function renderTotal(ex, cell) {
    const sums = ex.channel_sums;
    const parts = [];
    if (sums.length <= 4) {
      sums.forEach((v, i) => {
        if (i > 0) parts.push(h("span", { class: "cv-plus", text: " + " }));
        parts.push(h("span", { class: "lv-num", title: t("conv.channel_n", { c: i }), text: paren(v) }));
      });
    } else {
      parts.push(h("span", { text: t("conv.total_many", { n: sums.length }) }));
    }
    total.replaceChildren(
      ...parts,
      h("span", { class: "cv-plus", text: ` + ${t("conv.bias")} ` }),
      h("span", { class: "lv-num", text: paren(ex.bias) }),
      h("span", { class: "cv-plus", text: " = " }),
      h("b", { class: "lv-num cv-value", text: fmt4(ex.value) }),
      h("span", { class: "cv-written", text: ` → ${t("conv.written", { pos: steps.positionText(cell) })}` }),
    );
  }

  function render(state, ex) {
    const cell = steps.cellOf(state.step, state);
    const ci = state.inChannel;
    const all = state.mode === "all";
    outPicker.sync(state);
    modeBtn.setAttribute("aria-pressed", String(all));
    if (document.activeElement !== inSelect) inSelect.value = String(ci);
    inOne.hidden = all;
    inAll.hidden = !all;
    eqOne.hidden = all;
    eqAll.hidden = !all;
    setText(inTitle, t("conv.input_title"));
    setText(inOf, t("layer.of_n", { n: cIn }));

    // input: one big map, or every channel small
    const inAvail = inCol.clientWidth - 22;
    if (!all) {
      drawInputMap(inCanvas, ci, cell, Math.min(inAvail, mapCap()), true);
      inCanvas.setAttribute("aria-label", t("conv.input_aria", { c: ci, pos: `${cell.y}, ${cell.x}` }));
    } else {
      // two maps per row for a few channels, four for many (the box scrolls)
      const per = Math.floor((inAvail - 12) / (cIn <= 4 ? 2 : 4)) - 10;
      thumbs.forEach(({ btn, canvas }, c) => {
        btn.classList.toggle("is-current", c === ci);
        btn.setAttribute("aria-pressed", String(c === ci));
        if (isVisible(btn, inAll)) drawInputMap(canvas, c, cell, per, false);
      });
    }

    // arithmetic (redrawn only when the cell, the channel, the mode or the width changed)
    mathCol.classList.toggle("is-stale", !ex);
    const mathKey = ex && `${ex.cell}|${ci}|${state.mode}|${mathCol.clientWidth}|${getLang()}|${all ? eqAll.scrollTop : 0}`;
    if (ex && mathKey !== lastMathKey) {
      lastMathKey = mathKey;
      const sizes = gridSizes(mathCol.clientWidth, hp.kernel);
      if (!all) {
        drawEquation([winCanvas, kerCanvas, prodCanvas], ex, ci, sizes);
        setText(winCap, t("conv.window_cap", { c: ci }));
        setText(kerCap, t("conv.kernel_cap", { k: cell.channel, c: ci }));
        setText(prodCap, t("conv.products_cap"));
        setText(chSumLabel, t("conv.sum_cap"));
        setText(chSum, fmt4(ex.channel_sums[ci]));
      } else {
        const small = { cellW: Math.max(28, sizes.cellW - 10), cellH: Math.max(20, sizes.cellH - 6), digits: 2, font: 9 };
        allRows.forEach((row, c) => {
          row.el.classList.toggle("is-current", c === ci);
          if (!isVisible(row.el, eqAll) && c !== ci) return;
          drawEquation([row.win, row.ker, row.prod], ex, c, small);
          setText(row.sum, `Σ ${fmt4(ex.channel_sums[c])}`);
        });
      }
      const smax = Math.max(1e-12, ...ex.channel_sums.map(Math.abs));
      sumRows.forEach(({ btn, bar, val }, c) => {
        const v = ex.channel_sums[c];
        setText(val, fmt4(v));
        bar.style.width = `${(50 * Math.abs(v)) / smax}%`;
        bar.style.left = v < 0 ? `${50 - (50 * Math.abs(v)) / smax}%` : "50%";
        bar.classList.toggle("is-neg", v < 0);
        btn.classList.toggle("is-current", c === ci);
        btn.setAttribute("aria-current", c === ci ? "true" : "false");
      });
      renderTotal(ex, cell);
    }
    if (ci !== lastInChannel || state.mode !== lastMode) {
      if (sumRows[ci]) scrollIntoBox(sumRows[ci].btn, sumsList);
      if (all && allRows[ci]) scrollIntoBox(allRows[ci].el, eqAll);
      if (all) scrollIntoBox(thumbs[ci].btn, inAll);
      lastInChannel = ci;
      lastMode = state.mode;
    }
    setText(mathTitle, t("conv.math_title"));
    setText(sumsTitle, t("conv.sums_title", { n: cIn }));

    // output map filling in
    const outData = out.peekChannel(cell.channel);
    const outSide = fitCell(Math.min(outCol.clientWidth - 22, mapCap() * 0.75), wOut, 0.5, 24);
    outGeom = mapGeometry({ height: hOut, width: wOut, cell: outSide });
    const og = setupCanvas(outCanvas, outGeom.outerW, outGeom.outerH);
    if (outData) {
      drawMap(og, outGeom, outData, { cmap: out.cmap, vmax: out.vmax, filled: state.step + 1, grid: true });
      markCell(og, outGeom, cell.y, cell.x, { color: ACCENT });
      if (state.hover) markCell(og, outGeom, state.hover.y, state.hover.x, { color: "#0a7cff", width: 1.5 });
    } else {
      out.channel(cell.channel).then(requestRender);
    }
    setText(outTitle, t("conv.out_title", { c: cell.channel, n: cOut }));
    setText(outHint, t("layer.click_to_jump"));
    outCanvas.setAttribute("aria-label", t("layer.output_aria", { h: hOut, w: wOut }));
    setText(
      hoverText,
      state.hover && outData
        ? t("layer.hover_value", { pos: `${cell.channel}, ${state.hover.y}, ${state.hover.x}`, v: fmt4(outData[state.hover.y * wOut + state.hover.x]) })
        : " ",
    );

    // receptive field on the input image
    rf.show(info.receptive_field, cell, ex && ex.receptive_field);
  }

  function drawLegends() {
    drawLegend(inLegend, { cmap: src.cmap, vmax: src.vmax });
    drawLegend(outLegend, { cmap: out.cmap, vmax: out.vmax });
  }

  function applyTexts() {
    outPicker.applyTexts();
    setText(modeBtn, t("conv.mode_all"));
    modeBtn.title = t("conv.mode_all_hint");
    const p = pads;
    const padded = p.some((v) => v > 0);
    inSub.textContent = padded
      ? t("conv.input_sub_pad", { h: hIn, w: wIn, p: p[0] === p[1] && p[2] === p[3] && p[0] === p[2] ? p[0] : p.join(", "), ph: hIn + p[0] + p[1], pw: wIn + p[2] + p[3] })
      : t("conv.input_sub_valid", { h: hIn, w: wIn });
    setText(keyPad, padded ? t("conv.key_pad") : "");
    keyPad.hidden = !padded;
    setText(keyWin, t("conv.key_window", { k: hp.kernel.join(" × ") }));
    setText(keyNext, t("conv.key_next", { s: pairText(hp.stride) }));
    drawLegends();
  }

  return {
    ...steps,
    render,
    applyTexts,
    layout: drawLegends,
    urlParams: (cell, state) => ({
      ...cell,
      ...(state.inChannel > 0 ? { in: state.inChannel } : {}),
      ...(state.mode === "all" ? { mode: "all" } : {}),
    }),
    lesson() {
      const padded = pads.some((v) => v > 0);
      const dilated = dil.some((d) => d !== 1);
      const parts = [
        t(cIn === 1 ? "conv.lesson_one" : "conv.lesson", { cin: cIn, s: pairText(hp.stride) }),
        padded
          ? t(hOut === hIn && wOut === wIn ? "conv.lesson_same" : "conv.lesson_pad", { p: pads[0], h: hOut, w: wOut, hin: hIn, win: wIn })
          : t("conv.lesson_valid", { h: hOut, w: wOut, hin: hIn, win: wIn, k: hp.kernel.join(" × ") }),
      ];
      if (dilated) parts.push(t("conv.lesson_dilation", { d: pairText(dil), reach: dil[0] * (hp.kernel[0] - 1) + 1 }));
      parts.push(t("conv.lesson_kernels", { cout: cOut }));
      return parts.join(" ");
    },
  };
}

function maxAbs(nested) {
  let m = 0;
  const walk = (a) => {
    for (const v of a) {
      if (Array.isArray(v)) walk(v);
      else if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
    }
  };
  walk(nested);
  return m || 1;
}
