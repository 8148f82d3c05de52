// Play / pause / step / back / speed for the layer views.
// The player only owns time: it moves an integer step between 0 and total - 1. Every frame
// the page draws is a pure function of that step (as in conv_arithmetic), so stepping back,
// jumping to a cell or following an instructor cost nothing.

/** Steps per second offered by the speed slider (index 0 .. SPEEDS.length - 1). */
export const SPEEDS = [0.5, 1, 2, 4, 8, 15, 30, 60, 120];

/** Above this many steps per second nobody reads the arithmetic: do not wait for it. */
export const READABLE_SPEED = 15;

export class Player {
  /**
   * @param {{total: number, step?: number, speedIndex?: number,
   *          onChange?: (p: Player) => void, isReady?: (step: number) => boolean}} options
   * onChange is called whenever step, playing or speed change; isReady(step) may hold the
   * animation (at readable speeds) until the numbers of the next step have arrived.
   */
  constructor({ total, step = 0, speedIndex = 3, onChange = () => {}, isReady = null }) {
    this.total = Math.max(1, total);
    this.step = clampInt(step, 0, this.total - 1);
    this.speedIndex = clampInt(speedIndex, 0, SPEEDS.length - 1);
    this.playing = false;
    this.onChange = onChange;
    this.isReady = isReady;
    this._acc = 0;
    this._last = null;
    this._raf = 0;
    this._tick = this._tick.bind(this);
  }

  get speed() {
    return SPEEDS[this.speedIndex];
  }

  get atEnd() {
    return this.step >= this.total - 1;
  }

  setTotal(total) {
    this.total = Math.max(1, total);
    if (this.step > this.total - 1) this.goTo(this.total - 1);
  }

  /** Jump to a step (clamped). Does not change playing. */
  goTo(step) {
    const s = clampInt(step, 0, this.total - 1);
    if (s === this.step) return;
    this.step = s;
    this._acc = 0;
    this.onChange(this);
  }

  /** Manual steps pause the animation: the student takes over. */
  next(n = 1) {
    this.pause();
    this.goTo(this.step + n);
  }

  prev(n = 1) {
    this.pause();
    this.goTo(this.step - n);
  }

  play() {
    if (this.playing) return;
    if (this.atEnd) this.step = 0; // play again from the start
    this.playing = true;
    this._acc = 0;
    this._last = null;
    this._raf = requestAnimationFrame(this._tick);
    this.onChange(this);
  }

  pause() {
    if (!this.playing) return;
    this.playing = false;
    cancelAnimationFrame(this._raf);
    this.onChange(this);
  }

  toggle() {
    if (this.playing) this.pause();
    else this.play();
  }

  setSpeedIndex(i) {
    const next = clampInt(i, 0, SPEEDS.length - 1);
    if (next === this.speedIndex) return;
    this.speedIndex = next;
    this.onChange(this);
  }

  faster() {
    this.setSpeedIndex(this.speedIndex + 1);
  }

  slower() {
    this.setSpeedIndex(this.speedIndex - 1);
  }

  _tick(now) {
    if (!this.playing) return;
    if (this._last !== null) this._acc += (Math.min(now - this._last, 250) / 1000) * this.speed;
    this._last = now;
    const gate = this.isReady && this.speed <= READABLE_SPEED;
    let moved = false;
    while (this._acc >= 1) {
      if (this.atEnd) {
        this.playing = false;
        break;
      }
      if (gate && !this.isReady(this.step + 1)) {
        this._acc = 1; // hold until the next step's numbers are here
        break;
      }
      this.step += 1;
      this._acc -= 1;
      moved = true;
    }
    if (moved || !this.playing) this.onChange(this);
    if (this.playing) this._raf = requestAnimationFrame(this._tick);
  }
}

/**
 * Wire the player's buttons and slider inside `root` (by data-testid) and keep their
 * pressed state, names and values in sync. `label(key, vars)` translates.
 */
export function bindControls(player, root, label) {
  const play = root.querySelector('[data-testid="play"]');
  const next = root.querySelector('[data-testid="step-next"]');
  const prev = root.querySelector('[data-testid="step-prev"]');
  const speed = root.querySelector('[data-testid="speed"]');
  const speedOut = root.querySelector("[data-speed-output]");
  play.addEventListener("click", () => player.toggle());
  next.addEventListener("click", () => player.next());
  prev.addEventListener("click", () => player.prev());
  speed.min = "0";
  speed.max = String(SPEEDS.length - 1);
  speed.step = "1";
  speed.addEventListener("input", () => player.setSpeedIndex(Number(speed.value)));

  return function sync() {
    const name = label(player.playing ? "player.pause" : "player.play");
    play.setAttribute("aria-label", name);
    play.title = `${name} (${label("player.key_space")})`;
    play.setAttribute("aria-pressed", String(player.playing));
    play.dataset.playing = String(player.playing);
    prev.disabled = player.step <= 0;
    next.disabled = player.atEnd;
    speed.value = String(player.speedIndex);
    const text = label("player.speed_value", { n: formatSpeed(player.speed) });
    speed.setAttribute("aria-valuetext", text);
    if (speedOut) speedOut.textContent = text;
  };
}

/**
 * Keyboard: ArrowRight / ArrowLeft step, ArrowDown / ArrowUp move a row (rowStep),
 * Home / End, Space plays and pauses, + / - change speed. Keys typed into form fields and
 * Space on a focused button keep their usual meaning.
 */
export function bindKeys(player, { rowStep = 0, target = window } = {}) {
  const handler = (event) => {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    const el = event.target;
    const tag = el && el.tagName;
    const typing =
      tag === "SELECT" || tag === "TEXTAREA" || (tag === "INPUT" && el.type !== "checkbox") ||
      (el && el.isContentEditable);
    if (typing) return;
    let handled = true;
    switch (event.key) {
      case "ArrowRight":
        player.next();
        break;
      case "ArrowLeft":
        player.prev();
        break;
      case "ArrowDown":
        if (rowStep > 0) player.next(rowStep);
        else handled = false;
        break;
      case "ArrowUp":
        if (rowStep > 0) player.prev(rowStep);
        else handled = false;
        break;
      case "Home":
        player.pause();
        player.goTo(0);
        break;
      case "End":
        player.pause();
        player.goTo(player.total - 1);
        break;
      case " ":
      case "Spacebar":
        if (tag === "BUTTON" || tag === "A" || (tag === "INPUT" && el.type === "checkbox")) {
          handled = false; // the focused control's own action
        } else {
          player.toggle();
        }
        break;
      case "+":
      case "=":
        player.faster();
        break;
      case "-":
      case "_":
        player.slower();
        break;
      default:
        handled = false;
    }
    if (handled) event.preventDefault();
  };
  target.addEventListener("keydown", handler);
  return () => target.removeEventListener("keydown", handler);
}

export function formatSpeed(s) {
  return s < 1 ? String(s) : String(Math.round(s));
}

function clampInt(v, lo, hi) {
  const n = Math.round(Number(v));
  if (!Number.isFinite(n)) return lo;
  return Math.min(hi, Math.max(lo, n));
}
