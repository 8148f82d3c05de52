// English and Simplified Chinese for every label, message and explanation.
// Message modules call registerMessages(); pages mark text with data-i18n / data-i18n-attr.

export const LANGS = ["en", "zh-CN"];
const STORAGE_KEY = "convscope.lang";
const catalogs = { en: {}, "zh-CN": {} };
let current = null;

/** Merge message tables: registerMessages({en: {...}, "zh-CN": {...}}). */
export function registerMessages(tables) {
  for (const [lang, messages] of Object.entries(tables)) {
    catalogs[lang] = { ...(catalogs[lang] || {}), ...messages };
  }
}

function normalise(lang) {
  if (!lang) return null;
  const l = String(lang).toLowerCase();
  if (l.startsWith("zh")) return "zh-CN";
  if (l.startsWith("en")) return "en";
  return null;
}

function readStored() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null; // storage blocked (private mode, file://)
  }
}

/** The language to use: ?lang=, then the stored choice, then the browser's languages. */
export function getLang() {
  if (current) return current;
  const fromUrl = normalise(new URLSearchParams(location.search).get("lang"));
  const fromStore = normalise(readStored());
  let fromBrowser = null;
  for (const l of navigator.languages || [navigator.language]) {
    const n = l && l.toLowerCase().startsWith("zh") ? "zh-CN" : null;
    if (n) {
      fromBrowser = n;
      break;
    }
  }
  current = fromUrl || fromStore || fromBrowser || "en";
  return current;
}

/** Translate key with {name} interpolation; falls back to English, then to the key itself. */
export function t(key, vars = {}) {
  const lang = getLang();
  let text = catalogs[lang]?.[key];
  if (text === undefined) text = catalogs.en[key];
  if (text === undefined) return key;
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
}

// data-i18n-vars='{"n": 64}' supplies {name} values for server-rendered text.
function readVars(el) {
  if (!el.dataset.i18nVars) return {};
  try {
    return JSON.parse(el.dataset.i18nVars);
  } catch {
    return {};
  }
}

/** True when some language has a message for key. */
export function hasMessage(key) {
  return Object.values(catalogs).some((c) => key in c);
}

/**
 * Fill data-i18n text and data-i18n-attr attributes under root. Keys no module has
 * registered yet are left alone, so the server-rendered English stays until they are.
 */
export function applyI18n(root = document) {
  const scope = root.querySelectorAll ? root : document;
  if (scope === document || scope === document.documentElement) {
    document.documentElement.lang = getLang();
  }
  for (const el of scope.querySelectorAll("[data-i18n]")) {
    if (hasMessage(el.dataset.i18n)) el.textContent = t(el.dataset.i18n, readVars(el));
  }
  for (const el of scope.querySelectorAll("[data-i18n-attr]")) {
    for (const pair of el.dataset.i18nAttr.split(";")) {
      const [attr, key] = pair.split(":").map((s) => s.trim());
      if (attr && key && hasMessage(key)) el.setAttribute(attr, t(key, readVars(el)));
    }
  }
}

/** Switch language: store it, update <html lang>, re-apply, and tell the page (langchange). */
export function setLang(lang) {
  const next = normalise(lang) || "en";
  current = next;
  try {
    localStorage.setItem(STORAGE_KEY, next);
  } catch {
    // ignore: the choice then lasts for this page only
  }
  const url = new URL(location.href);
  if (url.searchParams.has("lang")) {
    url.searchParams.set("lang", next);
    history.replaceState(history.state, "", url);
  }
  document.documentElement.lang = next;
  applyI18n(document);
  window.dispatchEvent(new CustomEvent("langchange", { detail: { lang: next } }));
}

/** Format a number for the current language (grouping separators). */
export function formatNumber(n, options = {}) {
  return new Intl.NumberFormat(getLang() === "zh-CN" ? "zh-CN" : "en-US", options).format(n);
}
