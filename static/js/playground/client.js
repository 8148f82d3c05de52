// Requests to /api/v1/playground. (static/js/api.js keeps its request helper private, so
// the playground's few calls live here, with the same ApiError.) A 422 keeps its whole
// error body in `details`, because the page shows the formula of a kernel that does not fit.

import { ApiError } from "../api.js";

const BASE = "/api/v1/playground";

async function send(path, init) {
  let response;
  try {
    response = await fetch(BASE + path, { headers: { Accept: "application/json" }, ...init });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(`The server could not be reached (${err.message}).`, { status: 0, code: "network_error" });
  }
  if (response.ok) return response.json();
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`;
  let details = null;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code || code;
      message = body.error.message || message;
      details = body.error;
    }
  } catch {
    // not JSON: keep the status text
  }
  const error = new ApiError(message, { status: response.status, code });
  error.details = details;
  throw error;
}

function postJson(path, body, signal) {
  return send(path, {
    method: "POST",
    headers: { Accept: "application/json", "Content-Type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}

/** The request body of the page state, for /conv or /transposed. */
export function requestFor(state) {
  const kernels = state.kernels.map((k) => ({ weights: k.w, bias: k.b }));
  if (state.mode === "transposed") {
    return { input: state.input, kernels, ...state.transposed };
  }
  const pool = state.mode === "pool" || state.pool.after
    ? { mode: state.pool.mode, kernel: state.pool.kernel, stride: state.pool.stride, on: state.mode === "pool" ? "input" : "conv" }
    : null;
  const body = { input: state.input, pool };
  if (state.mode === "conv") {
    Object.assign(body, {
      kernels,
      padding: state.padding,
      stride: state.stride,
      dilation: state.dilation,
      activation: state.activation,
      slope: state.slope,
    });
  }
  return body;
}

/** POST /conv or /transposed for the state. */
export function compute(state, signal) {
  return postJson(state.mode === "transposed" ? "/transposed" : "/conv", requestFor(state), signal);
}

/** One cell's arithmetic when the full result left it out; cell = {stage, channel, y, x}. */
export function explainCell(state, cell, signal) {
  const path = state.mode === "transposed" ? "/transposed/explain" : "/conv/explain";
  return postJson(path, { ...requestFor(state), cell }, signal);
}

/** POST /from-image: an uploaded File or a sample id -> {input: {shape, data}}. */
export function gridFromImage({ file, sample, size, color, zoom = 1 }) {
  const form = new FormData();
  if (file) form.append("image", file, file.name || "image.png");
  else form.append("sample", sample);
  const q = new URLSearchParams({ size: String(size), color, zoom: String(zoom) });
  return send(`/from-image?${q}`, { method: "POST", body: form });
}
