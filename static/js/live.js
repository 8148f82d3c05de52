// Classroom mode's connection to the server: HTTP calls of /api/v1/live and the
// WebSocket that carries the presenter's state. A dropped socket reconnects with
// exponential backoff and jitter; the server sends the current state on every (re)connect,
// so a reconnected page resyncs by itself.

const BASE = "/api/v1/live";
const enc = encodeURIComponent;

// Close codes of app/live.py: after these, reconnecting cannot help.
export const CLOSE_NOT_FOUND = 4404;
export const CLOSE_FORBIDDEN = 4403;
export const CLOSE_ENDED = 4410;
export const CLOSE_FULL = 4429;
const FINAL = new Set([CLOSE_NOT_FOUND, CLOSE_FORBIDDEN, CLOSE_ENDED]);

/** Backoff before reconnect attempt n (0, 1, ...): 0.5 s doubling to 15 s, times 0.5-1. */
export function backoffDelay(attempt, { base = 500, max = 15000, random = Math.random } = {}) {
  const ceiling = Math.min(max, base * 2 ** attempt);
  return Math.round(ceiling * (0.5 + 0.5 * random()));
}

async function call(path, options = {}) {
  const response = await fetch(BASE + path, { headers: { Accept: "application/json" }, ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const err = new Error(body?.error?.message || `${response.status} ${response.statusText}`);
    err.status = response.status;
    err.code = body?.error?.code || `http_${response.status}`;
    throw err;
  }
  return body;
}

/** POST /live -> {code, presenter_token, join_url, present_url, ws_url, state} */
export function createSession() {
  return call("", { method: "POST" });
}

/** GET /live/{code} -> {code, model_id, run_id, view, students, presenter_connected, join_url} */
export function getSession(code) {
  return call(`/${enc(code)}`);
}

/** The presenter token of a class, kept in this browser (localStorage) once known. */
export function presenterToken(code) {
  const key = `convscope.live.token.${code}`;
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  try {
    if (fromHash) {
      localStorage.setItem(key, fromHash);
      // Keep the secret out of the address bar (and out of screenshots of the projector).
      history.replaceState(history.state, "", location.pathname + location.search);
      return fromHash;
    }
    return localStorage.getItem(key);
  } catch {
    return fromHash;
  }
}

function clientId() {
  // One id per tab, kept across reconnects, so a student's answer is replaced, not doubled.
  const key = "convscope.live.client";
  try {
    let id = sessionStorage.getItem(key);
    if (!id) {
      id = Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
      sessionStorage.setItem(key, id);
    }
    return id;
  } catch {
    return "";
  }
}

/**
 * A class's WebSocket. Status is one of "connecting", "open", "reconnecting", "closed";
 * onStatus(status, {delay, code}) reports it; onMessage(message) gets every server message.
 */
export class LiveClient {
  constructor(code, { token = null, onMessage = () => {}, onStatus = () => {} } = {}) {
    this.code = code;
    this.token = token;
    this.onMessage = onMessage;
    this.onStatus = onStatus;
    this.status = "connecting";
    this.attempt = 0;
    this.ws = null;
    this._timer = 0;
    this._stopped = false;
    window.addEventListener("online", () => this._retryNow());
  }

  url() {
    const params = new URLSearchParams();
    if (this.token) params.set("token", this.token);
    const id = clientId();
    if (id) params.set("client", id);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}${BASE}/${enc(this.code)}/ws?${params}`;
  }

  connect() {
    clearTimeout(this._timer);
    if (this._stopped) return;
    this._setStatus(this.attempt ? "reconnecting" : "connecting");
    const ws = new WebSocket(this.url());
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      this._setStatus("open");
    };
    ws.onmessage = (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      this.onMessage(message);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this._stopped || FINAL.has(event.code)) {
        this._stopped = true;
        this._setStatus("closed", { code: event.code });
        return;
      }
      // A full class frees up slowly: start the backoff further along.
      const attempt = event.code === CLOSE_FULL ? Math.max(this.attempt, 4) : this.attempt;
      const delay = backoffDelay(attempt);
      this.attempt = attempt + 1;
      this._setStatus("reconnecting", { delay, code: event.code });
      this._timer = setTimeout(() => this.connect(), delay);
    };
  }

  _retryNow() {
    if (this.status === "reconnecting" && !this.ws) this.connect();
  }

  _setStatus(status, detail = {}) {
    this.status = status;
    this.onStatus(status, detail);
  }

  /** Send one message; false when the socket is not open (the caller may retry later). */
  send(message) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(message));
    return true;
  }

  close() {
    this._stopped = true;
    clearTimeout(this._timer);
    if (this.ws) this.ws.close(1000);
  }
}
