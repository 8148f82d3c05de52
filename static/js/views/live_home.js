// The home page's classroom controls: "Start a class" creates a session and opens the
// presenter's page; the code field joins one (a plain form: GET /live?code=).
import { applyI18n, t } from "../i18n.js";
import { createSession } from "../live.js";
import "../messages/live.js";

const box = document.querySelector('[data-testid="live-home"]');
const startBtn = document.getElementById("live-start");
const errorEl = document.getElementById("live-start-error");
const codeInput = document.getElementById("live-home-code");

startBtn.addEventListener("click", async () => {
  startBtn.disabled = true;
  errorEl.textContent = "";
  try {
    const session = await createSession();
    location.assign(session.present_url);
  } catch (err) {
    errorEl.textContent = t("live.start_error", { message: err.message });
    startBtn.disabled = false;
  }
});

codeInput.addEventListener("input", () => {
  const at = codeInput.selectionStart;
  codeInput.value = codeInput.value.toUpperCase();
  codeInput.setSelectionRange(at, at);
});

applyI18n(box);
window.addEventListener("langchange", () => applyI18n(box));
