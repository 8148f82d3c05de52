// Labelled probability bars (softmax output), the predicted class highlighted.

/** "72.3%" / "<0.1%" / "100%": a probability as a percentage a student can read. */
export function formatPercent(p) {
  if (p >= 0.9995) return "100%";
  if (p > 0 && p < 0.001) return "<0.1%";
  return `${(p * 100).toFixed(1)}%`;
}

/**
 * Fill list (an <ol>/<ul>) with one <li> per prediction.
 * predictions: [{index, class, probability}] (any order); the highest is marked "top".
 * Options: order "rank" (by probability) or "index" (class order), limit, label(name) for
 * translated names, testid for each item, onSelect(prediction) to make rows clickable.
 */
export function renderProbBars(list, predictions, opts = {}) {
  const { order = "rank", limit = Infinity, label = (s) => s, testid = "prediction" } = opts;
  const top = predictions.reduce((a, b) => (b.probability > a.probability ? b : a), predictions[0]);
  const rows = [...predictions].sort((a, b) =>
    order === "index" ? a.index - b.index : b.probability - a.probability,
  );
  list.replaceChildren();
  // Room for the longest label: digits need little, "automobile" more; capped for ImageNet.
  const longest = Math.max(...rows.slice(0, limit).map((p) => label(p.class).length));
  list.style.setProperty("--label-w", `${Math.min(9.5, Math.max(1.2, 0.62 * longest + 0.3))}em`);
  for (const p of rows.slice(0, limit)) {
    const li = document.createElement("li");
    li.className = "prob" + (p === top ? " top" : "");
    li.dataset.testid = testid;
    li.dataset.class = p.class;
    li.dataset.index = String(p.index);
    li.dataset.probability = String(p.probability);
    const name = document.createElement("span");
    name.className = "label";
    name.textContent = label(p.class);
    name.title = p.class; // the full name when the column is too narrow for it
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.setAttribute("aria-hidden", "true");
    const fill = document.createElement("i");
    fill.style.width = `${Math.max(0, Math.min(1, p.probability)) * 100}%`;
    bar.append(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.textContent = formatPercent(p.probability);
    li.append(name, bar, value);
    if (p === top) li.setAttribute("aria-current", "true");
    if (opts.onSelect) {
      li.tabIndex = 0;
      li.setAttribute("role", "button");
      li.addEventListener("click", () => opts.onSelect(p));
      li.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") {
          e.preventDefault();
          opts.onSelect(p);
        }
      });
    }
    list.append(li);
  }
  return top;
}
