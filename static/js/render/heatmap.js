// Draw an H x W map of numbers as crisp coloured cells (nearest-neighbour, no smoothing).
// DOM-free apart from the canvas it is given; the numbers come from the API unchanged.

import { colorFor } from "./colormap.js";

/**
 * Paint the H x W values starting at data[offset] into an ImageData (1 pixel per cell).
 * @param {Float32Array|number[]} data  flattened C-order values
 * @param {{height:number, width:number, offset?:number, cmap?:string, vmax?:number}} opts
 */
export function mapToImageData(data, { height, width, offset = 0, cmap = "diverging", vmax = 1 }) {
  const img = new ImageData(width, height);
  for (let i = 0; i < height * width; i++) {
    const v = data[offset + i];
    const [r, g, b] = Number.isFinite(v) ? colorFor(v, { cmap, vmax }) : [200, 200, 200];
    img.data[4 * i] = r;
    img.data[4 * i + 1] = g;
    img.data[4 * i + 2] = b;
    img.data[4 * i + 3] = 255;
  }
  return img;
}

/**
 * Draw a map into canvas at `cell` CSS pixels per value (default: fit the canvas's CSS width).
 * Options: grid (bool, lines between cells), gridColor, highlights ([{y, x, h?, w?, color?,
 * lineWidth?}], rectangles in cell units), dpr-aware so cells stay sharp.
 * Returns the cell size in CSS pixels (for hit testing with cellAt).
 */
export function drawHeatmap(canvas, data, opts) {
  const { height, width, grid = false, gridColor = "rgba(0,0,0,0.18)", highlights = [] } = opts;
  const dpr = window.devicePixelRatio || 1;
  const fitW = canvas.clientWidth || canvas.width;
  const cell = opts.cell ?? fitW / width;
  const cssW = cell * width;
  const cssH = cell * height;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  if (opts.cell !== undefined) {
    canvas.style.width = `${cssW}px`;
    canvas.style.height = `${cssH}px`;
  }
  const ctx = canvas.getContext("2d");
  const off = scratchCanvas(width, height);
  off.getContext("2d").putImageData(mapToImageData(data, opts), 0, 0);
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (grid && cell >= 4) {
    ctx.strokeStyle = gridColor;
    ctx.lineWidth = 1 / dpr;
    ctx.beginPath();
    for (let x = 1; x < width; x++) {
      ctx.moveTo(x * cell, 0);
      ctx.lineTo(x * cell, cssH);
    }
    for (let y = 1; y < height; y++) {
      ctx.moveTo(0, y * cell);
      ctx.lineTo(cssW, y * cell);
    }
    ctx.stroke();
  }
  for (const hl of highlights) {
    const lw = hl.lineWidth ?? 2;
    ctx.strokeStyle = hl.color ?? "#ffb000";
    ctx.lineWidth = lw;
    ctx.strokeRect(
      hl.x * cell + lw / 2,
      hl.y * cell + lw / 2,
      (hl.w ?? 1) * cell - lw,
      (hl.h ?? 1) * cell - lw,
    );
  }
  return cell;
}

/** The {y, x} cell under a pointer event on a canvas drawn by drawHeatmap, or null. */
export function cellAt(canvas, event, { height, width }) {
  const rect = canvas.getBoundingClientRect();
  const x = Math.floor(((event.clientX - rect.left) / rect.width) * width);
  const y = Math.floor(((event.clientY - rect.top) / rect.height) * height);
  if (x < 0 || y < 0 || x >= width || y >= height) return null;
  return { y, x };
}

// A small scratch canvas; OffscreenCanvas where available.
function scratchCanvas(w, h) {
  if (typeof OffscreenCanvas !== "undefined") return new OffscreenCanvas(w, h);
  const c = document.createElement("canvas");
  c.width = w;
  c.height = h;
  return c;
}
