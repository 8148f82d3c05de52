// Flatten: the C x H x W maps unrolled into one vector in the engine's order,
// index = (c * H + y) * W + x. Each row of the vector drawn here is one channel, read left
// to right; hovering an entry shows where it came from, and the other way round.

import { t } from "../i18n.js";
import { colorFor, cssColor, drawLegend } from "../render/colormap.js";
import { ACCENT, LINK, drawNumberGrid, drawVector, markEntry, setupCanvas, vectorGeometry } from "../render/grid.js";
import { cellSteps, createTensorSource, fmt4, h, inputNameOf, layerSummary, shapeText, setText } from "./layer-common.js";

export async function createView(ctx) {
  const { root, runId, run, model, info, index, store } = ctx;
  const [C, H, W] = info.input_shape.length === 3 ? info.input_shape : [1, 1, info.input_shape[0]];
  const n = info.output_shape[0];
  const inputName = inputNameOf(model, index);
  const src = createTensorSource(runId, inputName, info.input_shape, layerSummary(run, inputName));
  const out = createTensorSource(runId, info.name, info.output_shape, layerSummary(run, info.name));
  await Promise.all([src.ready(), out.ready()]);
  const steps = cellSteps(info.output_shape);
  const plane = H * W;
  // Where entry i came from: the engine's row-major order (geometry, not a computed value).
  const sourceOf = (i) => ({ c: Math.floor(i / plane), y: Math.floor((i % plane) / W), x: i % W });

  const mapsTitle = h("h2", { class: "lv-h" });
  const mapsSub = h("p", { class: "lv-sub" });
  const mapsCanvas = h("canvas", { class: "lv-map lv-clickable", tabindex: "0", "data-testid": "flatten-maps" });
  const mapsHover = h("p", { class: "lv-hover lv-mono" });
  const mapsLegend = h("canvas", { class: "lv-legend" });
  const mapsCol = h("section", { class: "lv-col fl-maps" }, mapsTitle, mapsSub, mapsCanvas, mapsHover, mapsLegend);

  const vecTitle = h("h2", { class: "lv-h" });
  const vecSub = h("p", { class: "lv-sub" });
  const vecCanvas = h("canvas", { class: "lv-map lv-clickable", tabindex: "0", "data-testid": "output-map" });
  const vecHover = h("p", { class: "lv-hover lv-mono" });
  const vecScroll = h("div", { class: "fl-scroll" }, vecCanvas);
  const vecCol = h("section", { class: "lv-col fl-vec" }, vecTitle, vecSub, vecScroll, vecHover);

  const mathTitle = h("h2", { class: "lv-h" });
  const formula = h("p", { class: "pool-formula lv-num" });
  const note = h("p", { class: "act-verdict" });
  const planeCanvas = h("canvas");
  const planeCap = h("figcaption");
  const rowCanvas = h("canvas");
  const rowCap = h("figcaption");
  const mathCol = h(
    "section",
    { class: "lv-col fl-math" },
    mathTitle,
    formula,
    note,
    h("div", { class: "fl-near" }, h("figure", {}, planeCanvas, planeCap), h("span", { class: "cv-op", text: "→" }), h("figure", {}, rowCanvas, rowCap)),
  );
  root.replaceChildren(h("div", { class: "lv-grid fl" }, mapsCol, mathCol, vecCol));

  // --- geometry of the small multiples ---------------------------------------------------
  let maps = null;
  function layoutMaps() {
    const avail = Math.max(160, mapsCol.clientWidth - 22);
    const cols = Math.max(1, Math.min(C, Math.ceil(Math.sqrt(C))));
    const gap = 4;
    const cell = Math.max(1, Math.min(18, Math.floor(((avail - (cols - 1) * gap) / cols / W) * 4) / 4));
    const side = W * cell;
    return {
      cols,
      gap,
      cell,
      w: cols * side + (cols - 1) * gap,
      h: Math.ceil(C / cols) * (H * cell + gap) - gap,
      ox: (c) => (c % cols) * (side + gap),
      oy: (c) => Math.floor(c / cols) * (H * cell + gap),
      at(px, py) {
        const c = Math.floor(px / (side + gap)) + cols * Math.floor(py / (H * cell + gap));
        const x = Math.floor((px % (side + gap)) / cell);
        const y = Math.floor((py % (H * cell + gap)) / cell);
        if (c < 0 || c >= C || x >= W || y >= H) return null;
        return (c * H + y) * W + x;
      },
    };
  }

  let vgeom = null;
  const pickAt = (canvas, ev, hit) => {
    const r = canvas.getBoundingClientRect();
    return hit(ev.clientX - r.left, ev.clientY - r.top);
  };
  const mapsHit = (px, py) => (maps ? maps.at(px, py) : null);
  const vecHit = (px, py) => (vgeom ? vgeom.indexAt(px, py) : null);
  for (const [canvas, hit] of [
    [mapsCanvas, mapsHit],
    [vecCanvas, vecHit],
  ]) {
    canvas.addEventListener("pointerdown", (ev) => {
      const i = pickAt(canvas, ev, hit);
      if (i === null) return;
      ctx.player.pause();
      ctx.player.goTo(i);
    });
    canvas.addEventListener("pointermove", (ev) => {
      const i = pickAt(canvas, ev, hit);
      store.set({ hover: i === null ? null : { index: i } });
    });
    canvas.addEventListener("pointerleave", () => store.set({ hover: null }));
  }

  function markMapCell(g, i, color, width = 2) {
    const s = sourceOf(i);
    const c = maps.cell;
    const grow = c < 6 ? 2 : 0;
    g.strokeStyle = color;
    g.lineWidth = width;
    g.strokeRect(maps.ox(s.c) + s.x * c - grow - width / 2, maps.oy(s.c) + s.y * c - grow - width / 2, c + 2 * grow + width, c + 2 * grow + width);
  }

  function render(state, ex) {
    const i = state.step;
    const data = src.data;
    const vec = out.data;
    maps = layoutMaps();
    const g = setupCanvas(mapsCanvas, maps.w + 4, maps.h + 4);
    g.translate(2, 2);
    for (let c = 0; c < C; c++) {
      const ox = maps.ox(c);
      const oy = maps.oy(c);
      for (let k = 0; k < plane; k++) {
        const v = data[c * plane + k];
        g.fillStyle = cssColor(colorFor(v, { cmap: src.cmap, vmax: src.vmax }));
        g.fillRect(ox + (k % W) * maps.cell, oy + Math.floor(k / W) * maps.cell, maps.cell + 0.5, maps.cell + 0.5);
      }
      // entries already copied into the vector fade: the maps are being unrolled
      const moved = Math.max(0, Math.min(plane, i + 1 - c * plane));
      if (moved > 0) {
        g.fillStyle = "rgba(255,255,255,0.6)";
        const full = Math.floor(moved / W);
        g.fillRect(ox, oy, W * maps.cell, full * maps.cell);
        if (moved % W) g.fillRect(ox, oy + full * maps.cell, (moved % W) * maps.cell, maps.cell);
      }
      g.strokeStyle = "rgba(0,0,0,0.35)";
      g.lineWidth = 1;
      g.strokeRect(ox - 0.5, oy - 0.5, W * maps.cell + 1, H * maps.cell + 1);
    }
    markMapCell(g, i, ACCENT, 2.5);
    if (state.hover) markMapCell(g, state.hover.index, LINK, 1.5);

    // the vector, one channel per row
    const gutter = 34; // row labels: which channel a row holds, or the index it starts at
    const availW = vecCol.clientWidth - 24 - gutter;
    const perRow = plane <= 64 ? plane : Math.min(64, plane);
    const rows = Math.ceil(n / perRow);
    const cell = Math.max(2, Math.min(16, Math.floor((availW / perRow) * 4) / 4, Math.floor((420 / rows) * 4) / 4));
    vgeom = vectorGeometry({ n, perRow, cell, x0: gutter + 1, y0: 1 });
    const vg = setupCanvas(vecCanvas, vgeom.w + gutter + 2, vgeom.h + 2);
    drawVector(vg, vgeom, vec, { cmap: out.cmap, vmax: out.vmax, filled: i + 1 });
    const every = Math.max(1, Math.ceil(12 / cell)); // a label every few rows, never overlapping
    vg.fillStyle = "#5b6472";
    vg.font = "10px system-ui, sans-serif";
    vg.textAlign = "right";
    vg.textBaseline = "middle";
    for (let r = 0; r < rows; r += every) {
      vg.fillText(perRow === plane ? `c${r}` : String(r * perRow), gutter - 4, 1 + r * cell + cell / 2);
    }
    markEntry(vg, vgeom, i, { color: ACCENT });
    if (state.hover) markEntry(vg, vgeom, state.hover.index, { color: LINK, width: 1.5 });

    setText(mapsTitle, t("fl.maps_title", { shape: shapeText(info.input_shape), name: inputName }));
    setText(mapsSub, t("fl.maps_sub", { c: C }));
    setText(vecTitle, t("fl.vec_title", { n }));
    setText(vecSub, perRow === plane ? t("fl.vec_sub_rows", { k: plane }) : t("fl.vec_sub", { k: perRow }));
    const hv = state.hover ? state.hover.index : null;
    const hoverText =
      hv === null
        ? " "
        : (() => {
            const s = sourceOf(hv);
            return t("fl.hover", { i: hv, c: s.c, y: s.y, x: s.x, v: fmt4(vec[hv]) });
          })();
    setText(mapsHover, hoverText);
    setText(vecHover, hoverText);
    setText(mathTitle, t("fl.math_title"));

    mathCol.classList.toggle("is-stale", !ex);
    if (ex) {
      const [c, y, x] = ex.source;
      formula.replaceChildren(
        h("span", { text: `i = (c × H + y) × W + x` }),
        h("br"),
        h("span", { text: `${ex.cell[0]} = (${c} × ${H} + ${y}) × ${W} + ${x}` }),
        h("br"),
        h("span", { text: t("fl.value_line", { c, y, x, i: ex.cell[0] }) }),
        h("b", { class: "act-value", text: fmt4(ex.value) }),
      );
      setText(note, t("fl.note"));
      // the source map in numbers, and the stretch of the vector it lands in
      const plane2d = [];
      for (let yy = 0; yy < H; yy++) plane2d.push(Array.from(data.subarray(c * plane + yy * W, c * plane + (yy + 1) * W)));
      const cellW = Math.max(30, Math.min(44, Math.floor((mathCol.clientWidth - 30) / Math.max(W, 9))));
      const sizes = { cellW, cellH: Math.min(26, Math.round(cellW * 0.7)), digits: cellW >= 40 ? 3 : 2, font: 10 };
      if (H <= 8 && W <= 8) {
        drawNumberGrid(setupCanvas(planeCanvas, W * sizes.cellW, H * sizes.cellH), plane2d, {
          ...sizes,
          cmap: src.cmap,
          vmax: src.vmax,
          mark: (r, q) => (r === y && q === x ? "cur" : null),
        });
        planeCanvas.hidden = false;
        setText(planeCap, t("fl.plane_cap", { c }));
      } else {
        planeCanvas.hidden = true;
        setText(planeCap, "");
      }
      const lo = Math.max(0, Math.min(ex.cell[0] - 4, n - 9));
      const ids = [];
      for (let k = lo; k < Math.min(n, lo + 9); k++) ids.push(k);
      drawNumberGrid(setupCanvas(rowCanvas, ids.length * sizes.cellW, sizes.cellH), [ids.map((k) => (k <= i ? vec[k] : null))], {
        ...sizes,
        cmap: out.cmap,
        vmax: out.vmax,
        mark: (r, q) => (ids[q] === ex.cell[0] ? "cur" : null),
      });
      setText(rowCap, t("fl.row_cap", { a: ids[0], b: ids[ids.length - 1] }));
    }
  }

  function applyTexts() {
    drawLegend(mapsLegend, { cmap: src.cmap, vmax: src.vmax });
  }

  return {
    ...steps,
    render,
    applyTexts,
    layout: applyTexts,
    lesson: () => t("fl.lesson", { c: C, h: H, w: W, n, shape: shapeText(info.input_shape) }),
  };
}
