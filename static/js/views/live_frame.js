// The real pages inside classroom mode: an <iframe> shows the home, overview, layer or
// playground page of this same server, and this module maps between its address plus the
// page's hook (window.convscope = {getState, setState, subscribe}) and the live state.
// Same origin, so the outer page may read the frame's location and call its hook.

const enc = encodeURIComponent;

/** Elements that give away the answer while a question is open (hidden until reveal). */
// The arithmetic columns of the layer views (conv, pool, activation, flatten, fc, softmax),
// the fc and softmax outputs, and the predictions of the overview.
const CONCEAL = [
  '[data-testid="cell-value"]',
  "[data-answer]",
  ".cv-math",
  ".pool-math",
  ".act-math",
  ".fl-math",
  ".fc-math",
  ".fc-out",
  ".sm-math",
  ".sm-main",
  ".prob-list",
  '[data-testid="predictions"]',
];

const EMBED_CSS = `
[data-testid="live-home"], .site-header .brand, .site-header .lang-switch { display: none !important; }
html.live-follow .site-header, html.live-follow .skip-link { display: none !important; }
html.live-concealed :is(${CONCEAL.join(", ")}) { visibility: hidden !important; }
`;

/** The address of the page that shows a state (null: the page cannot be shown). */
export function pathFor(state) {
  const run = state.run_id ? enc(state.run_id) : null;
  switch (state.view) {
    case "home":
      return "/";
    case "overview":
      return run ? `/runs/${run}` : null;
    case "layer": {
      if (!run || !state.layer) return null;
      const q = new URLSearchParams();
      const cell = state.cell || {};
      for (const k of ["channel", "y", "x", "index"]) if (cell[k] !== undefined) q.set(k, String(cell[k]));
      const qs = q.toString();
      return `/runs/${run}/layers/${enc(state.layer)}${qs ? `?${qs}` : ""}`;
    }
    case "playground":
      return state.model_id ? `/playground?model=${enc(state.model_id)}` : "/playground";
    default:
      return null;
  }
}

/** {view, run_id, layer} of a page address, or null for pages classroom mode cannot share. */
export function viewOfPath(pathname) {
  if (pathname === "/") return { view: "home", run_id: null, layer: null };
  if (pathname === "/playground") return { view: "playground", run_id: null, layer: null };
  let m = pathname.match(/^\/runs\/([^/]+)$/);
  if (m) return { view: "overview", run_id: decodeURIComponent(m[1]), layer: null };
  m = pathname.match(/^\/runs\/([^/]+)\/layers\/([^/]+)$/);
  if (m) return { view: "layer", run_id: decodeURIComponent(m[1]), layer: decodeURIComponent(m[2]) };
  return null;
}

export class LiveFrame {
  /**
   * @param {HTMLIFrameElement} iframe
   * @param {{onLoad?: (where) => void, onHookState?: (state) => void}} callbacks
   *   onLoad(where) after each page load (where = viewOfPath or null); onHookState(state)
   *   whenever the page's own state changes (presenter side).
   */
  constructor(iframe, { onLoad = () => {}, onHookState = null } = {}) {
    this.iframe = iframe;
    this.onLoad = onLoad;
    this.onHookState = onHookState;
    this.classes = { "live-follow": false, "live-concealed": false };
    this._hook = null;
    this._unsubscribe = null;
    this._pending = null; // state to apply once the page's hook is ready
    this._loadId = 0;
    iframe.addEventListener("load", () => this._onLoad());
  }

  get window() {
    try {
      return this.iframe.contentWindow;
    } catch {
      return null;
    }
  }

  /** The frame's path and query ("/runs/x/layers/y?channel=0"), or null before a load. */
  location() {
    const w = this.window;
    if (!w || !w.location || w.location.href === "about:blank") return null;
    return w.location.pathname + w.location.search;
  }

  hook() {
    return this._hook;
  }

  setClass(name, on) {
    this.classes[name] = on;
    const doc = this.iframe.contentDocument;
    if (doc && doc.documentElement) doc.documentElement.classList.toggle(name, on);
  }

  navigate(path) {
    this._hook = null;
    if (this._unsubscribe) this._unsubscribe();
    this._unsubscribe = null;
    this.iframe.src = path;
  }

  /** Show a state: load its page if another one is shown, else drive the page's hook. */
  apply(state) {
    const path = pathFor(state);
    if (!path) return;
    const shown = this.location();
    const samePage = shown !== null && shown.split("?")[0] === path.split("?")[0];
    this._pending = state;
    if (!samePage) {
      this.navigate(path);
      return;
    }
    this._drive();
  }

  _drive() {
    const state = this._pending;
    const hook = this._hook;
    if (!state || !hook || typeof hook.setState !== "function") return;
    this._pending = null;
    const patch = { cell: state.cell, step: state.step, playing: state.playing, speed: state.speed };
    if (state.view === "playground") patch.playground = state.playground;
    hook.setState(patch);
  }

  _onLoad() {
    const loadId = ++this._loadId;
    this._hook = null;
    const doc = this.iframe.contentDocument;
    if (doc && doc.head && !doc.getElementById("live-embed-style")) {
      const style = doc.createElement("style");
      style.id = "live-embed-style";
      style.textContent = EMBED_CSS;
      doc.head.append(style);
    }
    for (const [name, on] of Object.entries(this.classes)) this.setClass(name, on);
    const w = this.window;
    const where = w ? viewOfPath(w.location.pathname) : null;
    this.onLoad(where);
    // The page sets its hook once it has loaded its data: wait for it (up to 20 s).
    const started = performance.now();
    const poll = () => {
      if (loadId !== this._loadId) return;
      const hook = this.window && this.window.convscope;
      if (hook) {
        this._attach(hook);
        return;
      }
      if (performance.now() - started < 20000) setTimeout(poll, 50);
    };
    poll();
  }

  _attach(hook) {
    this._hook = hook;
    if (this.onHookState && typeof hook.subscribe === "function") {
      this._unsubscribe = hook.subscribe((state) => this.onHookState(state));
      this.onHookState(hook.getState());
    }
    this._drive();
  }
}
