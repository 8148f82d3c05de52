// Canvas drawing for the layer views: feature maps with their zero padding, number grids
// (window, kernel, products), window overlays and vectors. DOM-free apart from the canvas
// it is given; every number drawn is passed in (from the API), none is computed here.

import { colorFor, cssColor } from "./colormap.js";
import { mapToImageData } from "./heatmap.js";

export const PAD_FILL = "#e4e7ec";
export const PAD_TEXT = "#5b6472";
export const EMPTY_FILL = "#f5f6f8";
export const ACCENT = "#ff9f1c"; // the current window / cell
export const ACCENT_DARK = "#c25e00";
export const LINK = "#0a7cff"; // linked cells (hover, argmax, strongest inputs)

/** Size a canvas for CSS size w x h at the device pixel ratio; returns its 2-D context. */
export function setupCanvas(canvas, w, h) {
  const dpr = window.devicePixelRatio || 1;
  const W = Math.max(1, Math.round(w * dpr));
  const H = Math.max(1, Math.round(h * dpr));
  if (canvas.width !== W) canvas.width = W;
  if (canvas.height !== H) canvas.height = H;
  // unchanged sizes are not written again: no style invalidation while playing
  if (canvas.style.width !== `${w}px`) canvas.style.width = `${w}px`;
  if (canvas.style.height !== `${h}px`) canvas.style.height = `${h}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  return ctx;
}

/** Largest whole cell size (CSS px) so that `cells` cells fit in `px`, within [lo, hi]. */
export function fitCell(px, cells, lo = 1, hi = 40) {
  const c = Math.floor((px / Math.max(1, cells)) * 4) / 4;
  return Math.max(lo, Math.min(hi, c));
}

/** Black or white, whichever reads better on an [r, g, b] background. */
export function textOn(rgb) {
  const [r, g, b] = rgb;
  return 0.299 * r + 0.587 * g + 0.114 * b > 150 ? "#111" : "#fff";
}

/** A number for a small grid cell: at most `digits` decimals, no trailing zeros. */
export function short(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  if (!Number.isFinite(v)) return v > 0 ? "∞" : "-∞";
  const a = Math.abs(v);
  const d = a >= 100 ? 1 : a >= 10 ? 2 : digits;
  const s = String(Number(v.toFixed(d)));
  return s === "-0" ? "0" : s;
}

/**
 * Geometry of a map of height x width cells drawn at (x0, y0) with `cell` px per cell and a
 * ring of `pad` = [top, bottom, left, right] padding cells around it. Map coordinates may be
 * negative or past the edge (inside the padding).
 */
export function mapGeometry({ height, width, cell, x0 = 0, y0 = 0, pad = [0, 0, 0, 0] }) {
  const [pt, pb, pl, pr] = pad;
  return {
    height,
    width,
    cell,
    pad,
    x0,
    y0,
    outerW: (width + pl + pr) * cell,
    outerH: (height + pt + pb) * cell,
    /** CSS px of the top-left corner of map cell (y, x). */
    px: (x) => x0 + (x + pl) * cell,
    py: (y) => y0 + (y + pt) * cell,
    /** The map cell under a point, or null outside the real map (padding included: null). */
    cellAt(px, py) {
      const x = Math.floor((px - x0) / cell) - pl;
      const y = Math.floor((py - y0) / cell) - pt;
      if (x < 0 || y < 0 || x >= width || y >= height) return null;
      return { y, x };
    },
  };
}

/**
 * Draw one feature map (values data[offset + y * width + x]) with its padding ring.
 * Options: cmap, vmax; filled (number of cells, in row-major order, drawn; the rest are
 * empty: a map filling in); hatched(i) -> true for cells to mark as clipped; grid lines.
 * Padding cells are grey, with padLabel ("0"; max-pooling pads with "−∞") written in them
 * when the cells are large enough.
 */
export function drawMap(ctx, geom, data, opts = {}) {
  const { offset = 0, cmap = "diverging", vmax = 1, filled = Infinity, hatched = null, padLabel = "0" } = opts;
  const { height, width, cell, pad } = geom;
  const [pt, pb, pl, pr] = pad;
  // padding ring
  if (pt + pb + pl + pr > 0) {
    ctx.fillStyle = PAD_FILL;
    ctx.fillRect(geom.x0, geom.y0, geom.outerW, geom.outerH);
    if (cell >= 9) {
      ctx.fillStyle = PAD_TEXT;
      ctx.font = `${Math.max(7, Math.min(12, Math.floor(cell * 0.62)))}px system-ui, sans-serif`;
      ctx.textAlign = "center";
      ctx.textBaseline = "middle";
      for (let y = -pt; y < height + pb; y++) {
        for (let x = -pl; x < width + pr; x++) {
          if (y >= 0 && y < height && x >= 0 && x < width) continue;
          ctx.fillText(padLabel, geom.px(x) + cell / 2, geom.py(y) + cell / 2 + 0.5);
        }
      }
    } else {
      hatchRect(ctx, geom.x0, geom.y0, geom.outerW, geom.outerH, "rgba(91,100,114,0.35)", 4);
    }
  }
  const ox = geom.px(0);
  const oy = geom.py(0);
  const n = Math.min(height * width, filled);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bitmapFor(data, offset, height, width, cmap, vmax), ox, oy, width * cell, height * cell);
  if (n < height * width) {
    // the part of the map not written yet (a map filling in as the kernel slides)
    const yf = Math.floor(n / width);
    const xf = n - yf * width;
    ctx.fillStyle = EMPTY_FILL;
    ctx.fillRect(ox + xf * cell, oy + yf * cell, (width - xf) * cell, cell);
    ctx.fillRect(ox, oy + (yf + 1) * cell, width * cell, (height - yf - 1) * cell);
  }
  if (hatched) {
    for (let i = 0; i < n; i++) {
      if (!hatched(i)) continue;
      const y = (i / width) | 0;
      const x = i - y * width;
      if (cell >= 5) {
        hatchRect(ctx, ox + x * cell, oy + y * cell, cell, cell, "rgba(255,255,255,0.8)", Math.max(3, cell / 3));
      } else {
        ctx.fillStyle = "rgba(160,160,160,0.7)";
        ctx.fillRect(ox + x * cell, oy + y * cell, cell, cell);
      }
    }
  }
  if (opts.grid && cell >= 6) gridLines(ctx, ox, oy, width, height, cell, "rgba(0,0,0,0.12)");
  // the edge of the real map, so the padding reads as added, not as data
  ctx.strokeStyle = "#5b6472";
  ctx.lineWidth = 1;
  if (pt + pb + pl + pr > 0) ctx.setLineDash([4, 3]);
  ctx.strokeRect(ox - 0.5, oy - 0.5, width * cell + 1, height * cell + 1);
  ctx.setLineDash([]);
}

// One bitmap (1 pixel per value) per drawn map, scaled up with smoothing off when drawn:
// a 224 x 224 map costs one drawImage per frame instead of 50,000 rectangles.
const bitmaps = new WeakMap();

function bitmapFor(data, offset, height, width, cmap, vmax) {
  let perData = bitmaps.get(data);
  if (!perData) {
    perData = new Map();
    bitmaps.set(data, perData);
  }
  const key = `${offset}:${height}:${width}:${cmap}:${vmax}`;
  let canvas = perData.get(key);
  if (!canvas) {
    canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    canvas.getContext("2d").putImageData(mapToImageData(data, { height, width, offset, cmap, vmax }), 0, 0);
    perData.set(key, canvas);
  }
  return canvas;
}

/** Thin lines between cells; `cellH` differs from `cell` (the width) only on number grids,
 * whose cells are wider than tall. */
export function gridLines(ctx, x0, y0, cols, rows, cell, color, cellH = cell) {
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let x = 1; x < cols; x++) {
    ctx.moveTo(Math.round(x0 + x * cell) + 0.5, y0);
    ctx.lineTo(Math.round(x0 + x * cell) + 0.5, y0 + rows * cellH);
  }
  for (let y = 1; y < rows; y++) {
    ctx.moveTo(x0, Math.round(y0 + y * cellH) + 0.5);
    ctx.lineTo(x0 + cols * cell, Math.round(y0 + y * cellH) + 0.5);
  }
  ctx.stroke();
}

/** Diagonal hatching inside a rectangle (clipped cells, padding on small maps). */
export function hatchRect(ctx, x, y, w, h, color, gap = 4) {
  ctx.save();
  ctx.beginPath();
  ctx.rect(x, y, w, h);
  ctx.clip();
  ctx.strokeStyle = color;
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let d = -h; d < w; d += gap) {
    ctx.moveTo(x + d, y + h);
    ctx.lineTo(x + d + h, y);
  }
  ctx.stroke();
  ctx.restore();
}

/**
 * The window of a sliding kernel: taps at rows[i], cols[j] (map coordinates, possibly in
 * the padding). Each tap is outlined; with dilation the gaps between taps stay visible, and
 * a dashed box shows the window's reach.
 */
export function drawWindow(ctx, geom, rows, cols, { color = ACCENT, fill = "rgba(255,159,28,0.18)", ghost = false } = {}) {
  const c = geom.cell;
  const top = geom.py(rows[0]);
  const left = geom.px(cols[0]);
  const bottom = geom.py(rows[rows.length - 1]) + c;
  const right = geom.px(cols[cols.length - 1]) + c;
  if (ghost) {
    ctx.strokeStyle = color;
    ctx.lineWidth = 1.5;
    ctx.setLineDash([3, 3]);
    ctx.strokeRect(left + 0.75, top + 0.75, right - left - 1.5, bottom - top - 1.5);
    ctx.setLineDash([]);
    return;
  }
  const contiguous = isContiguous(rows) && isContiguous(cols);
  if (fill) {
    ctx.fillStyle = fill;
    for (const r of rows) for (const q of cols) ctx.fillRect(geom.px(q), geom.py(r), c, c);
  }
  if (!contiguous && c >= 4) {
    ctx.strokeStyle = color;
    ctx.lineWidth = Math.max(1, Math.min(2, c / 6));
    for (const r of rows) for (const q of cols) ctx.strokeRect(geom.px(q) + 1, geom.py(r) + 1, c - 2, c - 2);
    ctx.setLineDash([4, 3]);
    ctx.lineWidth = 1;
  } else {
    ctx.lineWidth = Math.max(2, Math.min(3, c / 4));
    if (c >= 8) gridLines(ctx, left, top, cols.length, rows.length, c, "rgba(194,94,0,0.45)");
    ctx.lineWidth = Math.max(2, Math.min(3, c / 4));
  }
  ctx.strokeStyle = color;
  const lw = ctx.lineWidth;
  ctx.strokeRect(left - lw / 2, top - lw / 2, right - left + lw, bottom - top + lw);
  ctx.setLineDash([]);
}

function isContiguous(v) {
  for (let i = 1; i < v.length; i++) if (v[i] !== v[i - 1] + 1) return false;
  return true;
}

/** Outline one cell (y, x) of a map. */
export function markCell(ctx, geom, y, x, { color = ACCENT, width = 2.5 } = {}) {
  const c = geom.cell;
  const lw = Math.min(width, Math.max(1.5, c / 3));
  ctx.strokeStyle = color;
  ctx.lineWidth = lw;
  const grow = c < 6 ? 2 : 0; // tiny cells: a slightly bigger box so the eye finds it
  ctx.strokeRect(geom.px(x) - lw / 2 - grow, geom.py(y) - lw / 2 - grow, c + lw + 2 * grow, c + lw + 2 * grow);
}

/**
 * Taps of the window of output cell (y, x): rows and columns in input coordinates, from the
 * layer's hyper-parameters (the geometry only; the values come from explain).
 */
export function windowTaps({ kernel, stride, dilation = [1, 1], pads }, y, x) {
  const rows = [];
  const cols = [];
  for (let i = 0; i < kernel[0]; i++) rows.push(y * stride[0] - pads[0] + i * dilation[0]);
  for (let j = 0; j < kernel[1]; j++) cols.push(x * stride[1] - pads[2] + j * dilation[1]);
  return { rows, cols };
}

/**
 * A grid of numbers (values[r][c]), each cell coloured by its value.
 * Options: cellW, cellH, cmap, vmax, digits, mark(r, c) -> "pad" | "cur" | "pick" | "clip" | null,
 * font size. Returns {w, h}.
 */
export function drawNumberGrid(ctx, values, opts = {}) {
  const { x0 = 0, y0 = 0, cellW = 46, cellH = 30, cmap = "diverging", vmax = 1, digits = 3 } = opts;
  const mark = opts.mark || (() => null);
  const rows = values.length;
  const cols = rows ? values[0].length : 0;
  const font = opts.font || Math.max(9, Math.min(13, Math.floor(cellH * 0.42)));
  ctx.font = `${font}px ui-monospace, "DejaVu Sans Mono", monospace`;
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const v = values[r][c];
      const m = mark(r, c);
      const x = x0 + c * cellW;
      const y = y0 + r * cellH;
      let rgb;
      if (m === "pad") {
        rgb = [228, 231, 236];
        ctx.fillStyle = PAD_FILL;
        ctx.fillRect(x, y, cellW, cellH);
        hatchRect(ctx, x, y, cellW, cellH, "rgba(91,100,114,0.25)", 5);
      } else if (v === null || v === undefined || Number.isNaN(v)) {
        rgb = [245, 246, 248];
        ctx.fillStyle = EMPTY_FILL;
        ctx.fillRect(x, y, cellW, cellH);
      } else {
        rgb = colorFor(v, { cmap, vmax });
        ctx.fillStyle = cssColor(rgb);
        ctx.fillRect(x, y, cellW, cellH);
      }
      if (m === "clip") hatchRect(ctx, x, y, cellW, cellH, "rgba(255,255,255,0.5)", 6);
      ctx.fillStyle = m === "pad" ? PAD_TEXT : textOn(rgb);
      const text = m === "pad" && (v === null || Number.isNaN(v)) ? "pad" : short(v, digits);
      ctx.fillText(text, x + cellW / 2, y + cellH / 2 + 0.5);
    }
  }
  gridLines(ctx, x0, y0, cols, rows, cellW, "rgba(0,0,0,0.18)", cellH);
  ctx.strokeStyle = "#5b6472";
  ctx.strokeRect(x0 + 0.5, y0 + 0.5, cols * cellW - 1, rows * cellH - 1);
  // "cur": the current cell (orange, as on the maps); "pick": a chosen cell (blue: the max)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const m = mark(r, c);
      if (m !== "pick" && m !== "cur") continue;
      ctx.strokeStyle = m === "cur" ? ACCENT : LINK;
      ctx.lineWidth = 3;
      ctx.strokeRect(x0 + c * cellW + 1.5, y0 + r * cellH + 1.5, cellW - 3, cellH - 3);
    }
  }
  return { w: cols * cellW, h: rows * cellH };
}

/**
 * Geometry of a vector of n entries laid out in rows of `perRow` cells.
 */
export function vectorGeometry({ n, perRow, cell, x0 = 0, y0 = 0, gap = 0 }) {
  const rows = Math.ceil(n / perRow);
  return {
    n,
    perRow,
    rows,
    cell,
    x0,
    y0,
    w: perRow * cell,
    h: rows * cell + Math.max(0, rows - 1) * gap,
    px: (i) => x0 + (i % perRow) * cell,
    py: (i) => y0 + Math.floor(i / perRow) * (cell + gap),
    indexAt(px, py) {
      const c = Math.floor((px - x0) / cell);
      const r = Math.floor((py - y0) / (cell + gap));
      if (c < 0 || c >= perRow || r < 0 || r >= rows) return null;
      const inRow = (py - y0) - r * (cell + gap);
      if (inRow > cell) return null;
      const i = r * perRow + c;
      return i < n ? i : null;
    },
  };
}

/** Draw a vector's entries as coloured cells; entries at or past `filled` stay empty. */
export function drawVector(ctx, geom, data, { cmap = "diverging", vmax = 1, filled = Infinity, hatched = null } = {}) {
  const { n, cell } = geom;
  const e = cell >= 3 ? 0.5 : 0;
  for (let i = 0; i < n; i++) {
    const x = geom.px(i);
    const y = geom.py(i);
    if (i >= filled || !Number.isFinite(data[i])) {
      ctx.fillStyle = EMPTY_FILL;
      ctx.fillRect(x, y, cell + e, cell + e);
      continue;
    }
    ctx.fillStyle = cssColor(colorFor(data[i], { cmap, vmax }));
    ctx.fillRect(x, y, cell + e, cell + e);
    if (hatched && hatched(i)) hatchRect(ctx, x, y, cell, cell, "rgba(255,255,255,0.8)", Math.max(3, cell / 3));
  }
  ctx.strokeStyle = "#5b6472";
  ctx.lineWidth = 1;
  ctx.strokeRect(geom.x0 - 0.5, geom.y0 - 0.5, geom.w + 1, geom.h + 1);
}

/** Outline vector entry i. */
export function markEntry(ctx, geom, i, { color = ACCENT, width = 2.5 } = {}) {
  const c = geom.cell;
  const lw = Math.min(width, Math.max(1.5, c / 3));
  const grow = c < 6 ? 2 : 0;
  ctx.strokeStyle = color;
  ctx.lineWidth = lw;
  ctx.strokeRect(geom.px(i) - lw / 2 - grow, geom.py(i) - lw / 2 - grow, c + lw + 2 * grow, c + lw + 2 * grow);
}
