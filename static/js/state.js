// One state object per page: renderers draw from it, controls change it.
// Keys listed in `url` are read from and written to the query string, so any view is a link.

/**
 * createState({channel: 0, y: 0}, {url: ["channel", "y"]})
 * -> {get(), set(patch), subscribe(fn) -> unsubscribe}
 * Values in the URL are parsed to the type of the initial value (number, boolean, string).
 */
export function createState(initial, { url = [] } = {}) {
  let state = { ...initial };
  const listeners = new Set();
  const params = new URLSearchParams(location.search);
  for (const key of url) {
    if (!params.has(key)) continue;
    const raw = params.get(key);
    const kind = typeof initial[key];
    if (kind === "number") {
      const n = Number(raw);
      if (raw !== "" && Number.isFinite(n)) state[key] = n;
    } else if (kind === "boolean") {
      state[key] = raw === "1" || raw === "true";
    } else {
      state[key] = raw;
    }
  }

  function writeUrl() {
    if (!url.length) return;
    const u = new URL(location.href);
    for (const key of url) {
      const v = state[key];
      if (v === null || v === undefined || v === "") u.searchParams.delete(key);
      else u.searchParams.set(key, typeof v === "boolean" ? (v ? "1" : "0") : String(v));
    }
    if (u.href !== location.href) history.replaceState(history.state, "", u);
  }

  return {
    get: () => state,
    set(patch) {
      const prev = state;
      state = { ...state, ...patch };
      const changed = Object.keys(patch).filter((k) => prev[k] !== state[k]);
      if (!changed.length) return;
      if (changed.some((k) => url.includes(k))) writeUrl();
      for (const fn of listeners) fn(state, changed);
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
  };
}
