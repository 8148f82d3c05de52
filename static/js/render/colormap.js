// Colour maps, identical to app/heatmap.py (see docs/API.md, "Colour maps"):
// the legends drawn here match the PNGs the server renders.

const WHITE = [255, 255, 255];
const BLUE = [33, 102, 172];
const RED = [178, 24, 43];
const VIRIDIS = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

const clip = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function lerp(a, b, t) {
  return [0, 1, 2].map((i) => clip(Math.round(a[i] + (b[i] - a[i]) * t), 0, 255));
}

/** Signed values centred on zero: blue (negative) - white (0) - red (positive). */
export function diverging(v, vmax) {
  const t = vmax > 0 ? clip(v / vmax, -1, 1) : 0;
  return t < 0 ? lerp(WHITE, BLUE, -t) : lerp(WHITE, RED, t);
}

/** Non-negative values through five viridis stops. */
export function sequential(v, vmax) {
  const t = vmax > 0 ? clip(v / vmax, 0, 1) : 0;
  const pos = t * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(pos), VIRIDIS.length - 2);
  return lerp(VIRIDIS[i], VIRIDIS[i + 1], pos - i);
}

/** Colour of v with {cmap: "diverging"|"sequential", vmax}. */
export function colorFor(v, { cmap = "diverging", vmax = 1 } = {}) {
  return cmap === "sequential" ? sequential(v, vmax) : diverging(v, vmax);
}

/** "rgb(r, g, b)" */
export function cssColor(rgb) {
  return `rgb(${rgb[0]}, ${rgb[1]}, ${rgb[2]})`;
}

/** The map a layer should use: diverging when it has negative values. */
export function cmapFor(min) {
  return min < 0 ? "diverging" : "sequential";
}

/** Range of a layer for a map: symmetric max-abs for diverging, [0, max] for sequential. */
export function rangeFor(cmap, min, max) {
  if (cmap === "diverging") {
    const m = Math.max(Math.abs(min), Math.abs(max)) || 1;
    return { vmin: -m, vmax: m };
  }
  return { vmin: 0, vmax: max > 0 ? max : 1 };
}

/** Short human number for legends: 3 significant digits, no trailing zeros. */
export function formatTick(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.01) return v.toExponential(1);
  return String(Number(v.toPrecision(3)));
}

/**
 * Draw a horizontal gradient with numbers under it into a canvas.
 * Diverging legends run vmin..0..vmax (vmin = -vmax); sequential ones 0..vmax.
 */
export function drawLegend(canvas, { cmap = "diverging", vmin, vmax = 1 } = {}) {
  const ctx = canvas.getContext("2d");
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth || canvas.width;
  const cssH = canvas.clientHeight || canvas.height;
  canvas.width = Math.round(cssW * dpr);
  canvas.height = Math.round(cssH * dpr);
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);
  const lo = vmin ?? (cmap === "diverging" ? -vmax : 0);
  const pad = 14;
  const barH = Math.max(8, cssH - 18);
  const barW = cssW - 2 * pad;
  for (let x = 0; x < barW; x++) {
    const v = lo + ((vmax - lo) * x) / Math.max(1, barW - 1);
    ctx.fillStyle = cssColor(colorFor(v, { cmap, vmax }));
    ctx.fillRect(pad + x, 0, 1, barH);
  }
  ctx.strokeStyle = "rgba(0,0,0,0.35)";
  ctx.strokeRect(pad + 0.5, 0.5, barW - 1, barH - 1);
  const style = getComputedStyle(canvas);
  ctx.fillStyle = style.color || "#222";
  ctx.font = `11px ${style.fontFamily || "sans-serif"}`;
  ctx.textBaseline = "top";
  // Diverging legends mark zero, the centre; sequential ones only their ends.
  const ticks = cmap === "diverging" ? [lo, 0, vmax] : [lo, vmax];
  ticks.forEach((v, i) => {
    const x = pad + ((v - lo) / (vmax - lo || 1)) * barW;
    ctx.textAlign = i === 0 ? "left" : i === ticks.length - 1 ? "right" : "center";
    const tx = i === 0 ? Math.max(0, x - pad) : i === ticks.length - 1 ? Math.min(cssW, x + pad) : x;
    ctx.fillText(formatTick(v), tx, barH + 3);
  });
}
