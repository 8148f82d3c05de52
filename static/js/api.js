// The only module that talks HTTP to the convscope API (/api/v1).
// Every number a page shows comes through here from the engine; nothing is recomputed.

const BASE = "/api/v1";

/** An error reported by the API ({"error": {code, message}}) or by the network. */
export class ApiError extends Error {
  constructor(message, { status = 0, code = "network_error" } = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(BASE + path, { headers: { Accept: "application/json" }, ...options });
  } catch (err) {
    throw new ApiError(`The server could not be reached (${err.message}).`, {
      status: 0,
      code: "network_error",
    });
  }
  if (!response.ok) {
    let code = `http_${response.status}`;
    let message = `${response.status} ${response.statusText}`;
    try {
      const body = await response.json();
      if (body && body.error) {
        code = body.error.code || code;
        message = body.error.message || message;
      } else if (body && body.detail) {
        message = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
      }
    } catch {
      // Not JSON (e.g. a proxy error page): keep the status text.
    }
    throw new ApiError(message, { status: response.status, code });
  }
  return response.json();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

const enc = encodeURIComponent;

/** GET /models -> [ModelSummary] */
export async function listModels() {
  return (await request("/models")).models;
}

/** GET /models/{id} -> ModelSummary + layers */
export function getModel(id) {
  return request(`/models/${enc(id)}`);
}

/** GET /samples[?dataset=] -> [Sample] */
export async function listSamples(dataset) {
  return (await request(`/samples${query({ dataset })}`)).samples;
}

/** POST /models/{id}/runs with an uploaded file (Blob/File) or a sample id -> RunSummary */
export function createRun(modelId, { file, sample } = {}) {
  const form = new FormData();
  if (file) form.append("image", file, file.name || "image.png");
  else if (sample) form.append("sample", sample);
  else throw new ApiError("Choose an image or a sample first.", { code: "no_image" });
  return request(`/models/${enc(modelId)}/runs`, { method: "POST", body: form });
}

/** GET /runs/{id} -> RunSummary */
export function getRun(runId) {
  return request(`/runs/${enc(runId)}`);
}

/** Decode base64 little-endian IEEE float16 into a Float32Array. */
export function decodeF16(b64) {
  const bin = atob(b64);
  const n = bin.length >> 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = bin.charCodeAt(2 * i) | (bin.charCodeAt(2 * i + 1) << 8);
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v;
    if (exp === 0) v = frac * 2 ** -24;
    else if (exp === 31) v = frac ? NaN : Infinity;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    out[i] = sign * v;
  }
  return out;
}

function toFloat32(data, encoding) {
  if (encoding === "f16" && typeof data === "string") return decodeF16(data);
  return Float32Array.from((Array.isArray(data) ? data : [data]).flat(Infinity));
}

/**
 * GET /runs/{id}/layers/{layer}[?channel=c] ->
 * {name, kind, shape, min, max, data: Float32Array} (flattened, C-order).
 */
export async function getLayer(runId, layer, { channel, encoding = "f16" } = {}) {
  const body = await request(
    `/runs/${enc(runId)}/layers/${enc(layer)}${query({ channel, encoding })}`,
  );
  return {
    name: body.name,
    kind: body.kind,
    shape: body.shape,
    min: body.min,
    max: body.max,
    data: toFloat32(body.data, body.encoding || encoding),
  };
}

/** GET /runs/{id}/layers/{layer}/explain; cell = {channel, y, x} or {index}. */
export function explain(runId, layer, cell) {
  const params = "index" in cell ? { index: cell.index } : { channel: cell.channel, y: cell.y, x: cell.x };
  return request(`/runs/${enc(runId)}/layers/${enc(layer)}/explain${query(params)}`);
}

/** URL of one channel's heatmap PNG. */
export function channelPngUrl(runId, layer, c, { cmap, scale, vmin, vmax } = {}) {
  return `${BASE}/runs/${enc(runId)}/layers/${enc(layer)}/channels/${c}.png${query({ cmap, scale, vmin, vmax })}`;
}

/** URL of every channel of a layer in one PNG: tiles of H x W, `cols` per row, channel c at
 * row floor(c / cols), column c % cols. */
export function channelsAtlasUrl(runId, layer, { cols, cmap, scale, vmin, vmax } = {}) {
  return `${BASE}/runs/${enc(runId)}/layers/${enc(layer)}/channels.png${query({ cols, cmap, scale, vmin, vmax })}`;
}

/** URL of the input image as the model saw it. */
export function inputPngUrl(runId, scale) {
  return `${BASE}/runs/${enc(runId)}/input.png${query({ scale })}`;
}

/** URL of the Grad-CAM heatmap PNG for one class. */
export function saliencyPngUrl(runId, classIndex) {
  return `${BASE}/runs/${enc(runId)}/saliency${query({ class: classIndex })}`;
}

/** GET /runs/{id}/saliency?format=json -> {class, layer, shape, data} */
export function getSaliency(runId, classIndex) {
  return request(`/runs/${enc(runId)}/saliency${query({ class: classIndex, format: "json" })}`);
}

/**
 * GET /models/{id}/layers/{layer}/weights?encoding=f16 ->
 * {weight: {shape, data: Float32Array}, bias: {shape, data: Float32Array} | null}
 */
export async function getWeights(modelId, layer) {
  const body = await request(
    `/models/${enc(modelId)}/layers/${enc(layer)}/weights${query({ encoding: "f16" })}`,
  );
  const unpack = (t) => (t ? { shape: t.shape, data: toFloat32(t.data, "f16") } : null);
  return { weight: unpack(body.weight), bias: unpack(body.bias) };
}
