// The receptive field of one output cell drawn on the input image: the region the cell
// depends on stays bright, the rest is dimmed.

import { ACCENT, setupCanvas } from "./grid.js";

/**
 * The input rectangle {top, left, bottom, right} (bottom/right exclusive, clipped to the
 * image) that output cell (y, x) depends on, from a layer's describe() receptive_field
 * {size, jump, start, full}. The same geometry as engine.layers.ReceptiveField.region; used
 * where the explain response carries no region (activations, which keep their input's field).
 */
export function regionFromField(rf, y, x, height, width) {
  if (!rf || rf.full) return { top: 0, left: 0, bottom: height, right: width };
  const cy = rf.start[0] + y * rf.jump[0];
  const cx = rf.start[1] + x * rf.jump[1];
  const top = Math.floor(cy - (rf.size[0] - 1) / 2);
  const left = Math.floor(cx - (rf.size[1] - 1) / 2);
  return {
    top: Math.max(top, 0),
    left: Math.max(left, 0),
    bottom: Math.min(top + rf.size[0], height),
    right: Math.min(left + rf.size[1], width),
  };
}

/**
 * Draw `image` (the input as the model saw it, height x width pixels) at `size` CSS px wide
 * with `region` highlighted. Returns the drawn scale (CSS px per input pixel).
 */
export function drawReceptiveField(canvas, image, region, { height, width, size = 160 }) {
  const scale = size / width;
  const w = width * scale;
  const h = height * scale;
  const ctx = setupCanvas(canvas, w, h);
  ctx.imageSmoothingEnabled = false;
  if (image && image.complete && image.naturalWidth) ctx.drawImage(image, 0, 0, w, h);
  else {
    ctx.fillStyle = "#ddd";
    ctx.fillRect(0, 0, w, h);
  }
  if (!region) return scale;
  const x = region.left * scale;
  const y = region.top * scale;
  const rw = (region.right - region.left) * scale;
  const rh = (region.bottom - region.top) * scale;
  ctx.fillStyle = "rgba(15, 20, 30, 0.55)";
  ctx.beginPath();
  ctx.rect(0, 0, w, h);
  ctx.rect(x, y, rw, rh);
  ctx.fill("evenodd");
  ctx.strokeStyle = ACCENT;
  ctx.lineWidth = 2;
  ctx.strokeRect(x - 1, y - 1, rw + 2, rh + 2);
  return scale;
}
