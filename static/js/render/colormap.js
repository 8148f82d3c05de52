// Colour maps, identical to app/heatmap.py (docs/API.md, "Colour maps"): the same stops,
// the same 256-entry tables and the same rounding, so a legend drawn here has exactly the
// colours of the PNGs the server renders.

const STOPS = {
  // Blue below zero, white at zero, red above (the ends of ColorBrewer's RdBu).
  diverging: [
    [33, 102, 172],
    [255, 255, 255],
    [178, 24, 43],
  ],
  // viridis at 0, 1/4, 1/2, 3/4, 1.
  sequential: [
    [68, 1, 84],
    [59, 82, 139],
    [33, 145, 140],
    [94, 201, 98],
    [253, 231, 37],
  ],
};

// Entry i: s = i / 255 * (stops - 1), j = min(floor(s), stops - 2), f = s - j,
// each channel floor(stop_j + f * (stop_j+1 - stop_j) + 0.5).
function buildTable(stops) {
  const segments = stops.length - 1;
  const table = [];
  for (let i = 0; i < 256; i++) {
    const s = (i / 255) * segments;
    const j = Math.min(Math.floor(s), segments - 1);
    const f = s - j;
    table.push([0, 1, 2].map((k) => Math.floor(stops[j][k] + f * (stops[j + 1][k] - stops[j][k]) + 0.5)));
  }
  return table;
}

const TABLES = { diverging: buildTable(STOPS.diverging), sequential: buildTable(STOPS.sequential) };

/** The colour of v on the range [vmin, vmax] of a map. */
function lookup(cmap, v, vmin, vmax) {
  let t;
  if (Number.isNaN(v)) t = 0;
  else if (vmax === vmin) t = cmap === "diverging" ? 0.5 : 0;
  else t = Math.min(1, Math.max(0, (v - vmin) / (vmax - vmin)));
  return TABLES[cmap][Math.floor(255 * t + 0.5)];
}

/** Signed values centred on zero: blue (negative) - white (0) - red (positive), on ±vmax. */
export function diverging(v, vmax) {
  return lookup("diverging", v, -Math.abs(vmax), Math.abs(vmax));
}

/** Non-negative values through five viridis stops, on [0, vmax]. */
export function sequential(v, vmax) {
  return lookup("sequential", v, 0, vmax);
}

/** Colour of v with {cmap: "diverging"|"sequential", vmax, vmin?} (vmin defaults to -vmax or 0). */
export function colorFor(v, { cmap = "diverging", vmin, vmax = 1 } = {}) {
  const lo = vmin ?? (cmap === "diverging" ? -Math.abs(vmax) : 0);
  return lookup(cmap === "sequential" ? "sequential" : "diverging", v, lo, vmax);
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
  return { vmin: Math.min(0, min), vmax: max };
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
    ctx.fillStyle = cssColor(colorFor(v, { cmap, vmin: lo, vmax }));
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
