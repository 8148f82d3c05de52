// The whole playground state in the address: "#s=" + base64url(JSON), compact keys, so a
// link on a slide opens exactly the same grid, kernels, settings and step.

const VERSION = 1;

function toBase64Url(text) {
  const bytes = new TextEncoder().encode(text);
  let bin = "";
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function fromBase64Url(code) {
  const b64 = code.replace(/-/g, "+").replace(/_/g, "/");
  const bin = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

/** The compact form of a state (also what classroom mode passes around). */
export function compact(state) {
  const out = {
    v: VERSION,
    m: state.mode,
    x: state.input,
    k: state.kernels.map((k) => (k.preset ? [k.w, k.b, k.preset] : [k.w, k.b])),
    p: state.padding,
    s: state.stride,
    d: state.dilation,
    a: state.activation,
    sl: state.slope,
    pl: [state.pool.after ? 1 : 0, state.pool.mode, state.pool.kernel, state.pool.stride],
    t: [state.transposed.stride, state.transposed.padding, state.transposed.output_padding, state.transposed.dilation],
    st: state.step || 0,
  };
  if (state.preset) out.ps = state.preset;
  return out;
}

/** The state of a compact form; null when it is not one. Values are checked by the API. */
export function expand(c) {
  if (!c || typeof c !== "object" || c.v !== VERSION || !Array.isArray(c.x) || !Array.isArray(c.k)) return null;
  const num = (v, d) => (Number.isFinite(Number(v)) ? Number(v) : d);
  const pl = Array.isArray(c.pl) ? c.pl : [];
  const t = Array.isArray(c.t) ? c.t : [];
  return {
    mode: ["conv", "pool", "transposed"].includes(c.m) ? c.m : "conv",
    input: c.x,
    kernels: c.k.map((k) => ({ w: k[0], b: num(k[1], 0), preset: typeof k[2] === "string" ? k[2] : null })),
    padding: c.p === "same" || c.p === "valid" ? c.p : num(c.p, 0),
    stride: num(c.s, 1),
    dilation: num(c.d, 1),
    activation: typeof c.a === "string" ? c.a : "none",
    slope: num(c.sl, 0.1),
    pool: { after: pl[0] === 1, mode: pl[1] === "avg" ? "avg" : "max", kernel: num(pl[2], 2), stride: num(pl[3], 2) },
    transposed: { stride: num(t[0], 2), padding: num(t[1], 0), output_padding: num(t[2], 0), dilation: num(t[3], 1) },
    step: Math.max(0, Math.round(num(c.st, 0))),
    preset: typeof c.ps === "string" ? c.ps : null,
  };
}

/** The state in the current address, or null. */
export function readUrl() {
  const m = location.hash.match(/[#&]s=([A-Za-z0-9_-]+)/);
  if (!m) return null;
  try {
    return expand(JSON.parse(fromBase64Url(m[1])));
  } catch {
    return null; // a damaged link: start fresh
  }
}

/** Put the state in the address without adding a history entry. */
export function writeUrl(state) {
  const hash = `#s=${toBase64Url(JSON.stringify(compact(state)))}`;
  if (location.hash !== hash) history.replaceState(history.state, "", `${location.pathname}${location.search}${hash}`);
}

/** The shareable address of a state. */
export function linkFor(state) {
  return `${location.origin}${location.pathname}#s=${toBase64Url(JSON.stringify(compact(state)))}`;
}
