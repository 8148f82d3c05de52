// Drawing for the playground: number grids with a padding ring, inserted zeros and a window
// on top; the activation curve with the current cell on it. Built on render/grid.js; every
// value drawn is passed in (from the API), none is computed here.

import { colorFor, cssColor } from "../render/colormap.js";
import {
  ACCENT,
  ACCENT_DARK,
  LINK,
  PAD_FILL,
  PAD_TEXT,
  drawNumberGrid,
  drawWindow,
  mapGeometry,
  markCell,
  setupCanvas,
} from "../render/grid.js";

/** Cells at least this large show their numbers; smaller ones only their colour. */
export const MIN_NUMBER_CELL = 20;
const INSERTED_FILL = "#fff3c4";
const INSERTED_TEXT = "#8a6d00";
const TINT = 1.6;

/** The largest absolute value of nested arrays (1 when all are 0), for a shared colour scale. */
export function maxAbs(...grids) {
  let m = 0;
  const walk = (v) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (Number.isFinite(v)) m = Math.max(m, Math.abs(v));
  };
  grids.forEach(walk);
  return m || 1;
}

/**
 * A grid of values with optional extras, on a canvas sized to fit `maxW` x `maxH` CSS px.
 * opts: kind(r, c) -> "pad" | "zero" | null (grid coordinates), pads [t, b, l, r] (for the
 * window's map coordinates), window {rows, cols} in map coordinates, mark {y, x} (map
 * coordinates), links [[y, x], ...] outlined in blue, vmax, maxCell.
 * Returns {cell, geom} so that clicks can be mapped back to cells.
 */
export function drawGrid(canvas, values, opts = {}) {
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  const { maxW = 360, maxH = 360, maxCell = 44, pads = [0, 0, 0, 0] } = opts;
  // Numbers are written in the cells, so colour only hints: lighter tints keep them legible.
  const vmax = (opts.vmax ?? maxAbs(values)) * TINT;
  const cell = Math.max(4, Math.min(maxCell, Math.floor(Math.min(maxW / Math.max(1, cols), maxH / Math.max(1, rows)))));
  const ctx = setupCanvas(canvas, cols * cell + 4, rows * cell + 4);
  const x0 = 2;
  const y0 = 2;
  const kind = opts.kind || (() => null);
  if (cell >= MIN_NUMBER_CELL) {
    drawNumberGrid(ctx, values, {
      x0,
      y0,
      cellW: cell,
      cellH: cell,
      vmax,
      digits: 2,
      font: Math.max(10, Math.min(14, Math.floor(cell * 0.38))),
      mark: (r, c) => (kind(r, c) === "pad" ? "pad" : null),
    });
    // inserted zeros: pale yellow, so they read as made up, not as data or padding
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        if (kind(r, c) !== "zero") continue;
        ctx.fillStyle = INSERTED_FILL;
        ctx.fillRect(x0 + c * cell + 1, y0 + r * cell + 1, cell - 1, cell - 1);
        ctx.fillStyle = INSERTED_TEXT;
        ctx.fillText("0", x0 + c * cell + cell / 2, y0 + r * cell + cell / 2 + 0.5);
      }
    }
  } else {
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        const k = kind(r, c);
        const v = values[r][c];
        ctx.fillStyle =
          k === "pad" ? PAD_FILL : k === "zero" ? INSERTED_FILL : v === null ? "#f5f6f8" : cssColor(colorFor(v, { vmax }));
        ctx.fillRect(x0 + c * cell, y0 + r * cell, cell, cell);
      }
    }
    ctx.strokeStyle = "#5b6472";
    ctx.lineWidth = 1;
    ctx.strokeRect(x0 + 0.5, y0 + 0.5, cols * cell - 1, rows * cell - 1);
  }
  const [pt, pb, pl, pr] = pads;
  const geom = mapGeometry({ height: rows - pt - pb, width: cols - pl - pr, cell, x0, y0, pad: pads });
  if (pt + pb + pl + pr > 0) {
    // the edge of the real input, so the padding reads as added
    ctx.strokeStyle = PAD_TEXT;
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1.5;
    ctx.strokeRect(geom.px(0) - 0.5, geom.py(0) - 0.5, geom.width * cell + 1, geom.height * cell + 1);
    ctx.setLineDash([]);
  }
  for (const [y, x] of opts.links || []) {
    ctx.strokeStyle = LINK;
    ctx.lineWidth = 3;
    ctx.strokeRect(geom.px(x) + 1.5, geom.py(y) + 1.5, cell - 3, cell - 3);
  }
  if (opts.window) drawWindow(ctx, geom, opts.window.rows, opts.window.cols, { fill: cell >= MIN_NUMBER_CELL ? null : undefined });
  if (opts.mark) markCell(ctx, geom, opts.mark.y, opts.mark.x, { color: ACCENT_DARK, width: 3 });
  return { cell, geom };
}

/**
 * The activation's curve (points from the API) with the current cell's (z, a) marked.
 * Axes cross at 0; the ranges are the curve's own.
 */
export function drawCurve(canvas, curve, point, { width = 240, height = 170 } = {}) {
  const ctx = setupCanvas(canvas, width, height);
  const xs = curve.x;
  const ys = curve.y;
  const m = 22;
  const xlo = xs[0];
  const xhi = xs[xs.length - 1];
  let ylo = Math.min(0, ...ys);
  let yhi = Math.max(0, ...ys);
  if (yhi - ylo < 1e-9) yhi = ylo + 1;
  const span = yhi - ylo;
  ylo -= span * 0.06;
  yhi += span * 0.06;
  const px = (x) => m + ((x - xlo) / (xhi - xlo)) * (width - 2 * m);
  const py = (y) => height - m - ((y - ylo) / (yhi - ylo)) * (height - 2 * m);
  ctx.strokeStyle = "#9aa3b2";
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(m, py(0));
  ctx.lineTo(width - m, py(0));
  ctx.moveTo(px(0), m / 2);
  ctx.lineTo(px(0), height - m);
  ctx.stroke();
  ctx.fillStyle = "#5b6472";
  ctx.font = "11px system-ui, sans-serif";
  ctx.textAlign = "right";
  ctx.textBaseline = "bottom";
  ctx.fillText("z", width - 4, py(0) - 2);
  ctx.textBaseline = "top";
  ctx.textAlign = "left";
  ctx.fillText(short(xlo), 2, height - m + 4);
  ctx.textAlign = "right";
  ctx.fillText(short(xhi), width - 2, height - m + 4);
  ctx.strokeStyle = "#3b4fd8";
  ctx.lineWidth = 2;
  ctx.beginPath();
  xs.forEach((x, i) => (i ? ctx.lineTo(px(x), py(ys[i])) : ctx.moveTo(px(x), py(ys[i]))));
  ctx.stroke();
  if (point) {
    const cx = px(Math.max(xlo, Math.min(xhi, point.z)));
    const cy = py(point.a);
    ctx.strokeStyle = ACCENT;
    ctx.setLineDash([3, 3]);
    ctx.beginPath();
    ctx.moveTo(cx, py(0));
    ctx.lineTo(cx, cy);
    ctx.lineTo(px(0), cy);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = ACCENT_DARK;
    ctx.beginPath();
    ctx.arc(cx, cy, 5, 0, 2 * Math.PI);
    ctx.fill();
  }
}

function short(v) {
  const a = Math.abs(v);
  return String(Number(v.toFixed(a >= 100 ? 0 : a >= 10 ? 1 : 2)));
}
