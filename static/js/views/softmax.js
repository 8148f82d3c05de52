// Softmax: the logits, their exponentials after the max shift, the sum, and the
// probabilities, with the predicted class highlighted. All numbers come from explain.

import { t } from "../i18n.js";
import { className } from "../messages/classes.js";
import { cellSteps, fmt4, h, inputNameOf, paren, setText } from "./layer-common.js";

export async function createView(ctx) {
  const { root, run, model, info, index } = ctx;
  const n = info.output_shape[0];
  const steps = cellSteps(info.output_shape);
  const inputName = inputNameOf(model, index);
  const predicted = run.predictions && run.predictions.length ? run.predictions[0].index : null;
  const label = (i) => (model.classes[i] !== undefined ? className(model.classes[i]) : String(i));

  const tableTitle = h("h2", { class: "lv-h" });
  const tableSub = h("p", { class: "lv-sub" });
  const table = h("table", { class: "sm-table" });
  const tableWrap = h("div", { class: "sm-scroll" }, table);
  const tableCol = h("section", { class: "lv-col sm-main" }, tableTitle, tableSub, tableWrap);

  const mathTitle = h("h2", { class: "lv-h" });
  const shiftLine = h("p", { class: "pool-formula lv-num" });
  const formula = h("p", { class: "pool-formula lv-num sm-formula" });
  const note = h("p", { class: "act-verdict" });
  const mathCol = h("section", { class: "lv-col sm-math" }, mathTitle, shiftLine, formula, note);
  root.replaceChildren(h("div", { class: "lv-grid sm" }, tableCol, mathCol));

  const rows = [];
  function buildRows() {
    const head = h(
      "tr",
      {},
      h("th", { class: "sm-i", text: "i" }),
      h("th", { class: "sm-class", text: t("sm.class") }),
      h("th", { text: t("sm.logit") }),
      h("th", { text: "exp(z_i − m)" }),
      h("th", { text: t("sm.prob") }),
    );
    rows.length = 0;
    const body = h("tbody");
    for (let i = 0; i < n; i++) {
      const cells = {
        logit: h("span", { class: "lv-num" }),
        logitBar: h("span", { class: "cv-bar" }),
        exp: h("span", { class: "lv-num" }),
        expBar: h("span", { class: "sm-bar sm-exp" }),
        prob: h("span", { class: "lv-num" }),
        probBar: h("span", { class: "sm-bar sm-prob" }),
      };
      const tr = h(
        "tr",
        { "data-index": i },
        h("td", { class: "sm-i lv-num", text: String(i) }),
        h("td", { class: "sm-class" }, label(i), i === predicted ? h("span", { class: "sm-badge", text: t("sm.predicted") }) : null),
        h("td", { class: "sm-val" }, h("span", { class: "cv-barwrap sm-signed" }, cells.logitBar), cells.logit),
        h("td", { class: "sm-val" }, h("span", { class: "sm-barwrap" }, cells.expBar), cells.exp),
        h("td", { class: "sm-val" }, h("span", { class: "sm-barwrap" }, cells.probBar), cells.prob),
      );
      tr.addEventListener("click", () => {
        ctx.player.pause();
        ctx.player.goTo(i);
      });
      tr.classList.toggle("is-predicted", i === predicted);
      rows.push({ tr, ...cells });
      body.append(tr);
    }
    table.replaceChildren(h("thead", {}, head), body);
    filledFrom = null;
  }
  let filledFrom = null; // the explain response the table was filled from
  buildRows();

  function render(state, ex) {
    const i = state.step;
    rows.forEach((row, k) => {
      row.tr.classList.toggle("is-current", k === i);
      row.tr.classList.toggle("is-pending", k > i);
    });
    setText(tableTitle, t("sm.title", { n, name: inputName }));
    setText(tableSub, t("sm.sub"));
    setText(mathTitle, t("sm.math_title", { name: label(i) }));
    mathCol.classList.toggle("is-stale", !ex);
    if (!ex) return;
    if (filledFrom !== ex) {
      // Every cell of a softmax explain carries the whole vector: fill the table from it.
      filledFrom = ex;
      const lmax = Math.max(1e-12, ...ex.logits.map(Math.abs));
      rows.forEach((row, k) => {
        const z = ex.logits[k];
        setText(row.logit, fmt4(z));
        row.logitBar.style.width = `${(50 * Math.abs(z)) / lmax}%`;
        row.logitBar.style.left = z < 0 ? `${50 - (50 * Math.abs(z)) / lmax}%` : "50%";
        row.logitBar.classList.toggle("is-neg", z < 0);
        setText(row.exp, fmt4(ex.exps[k]));
        row.expBar.style.width = `${100 * Math.min(1, ex.exps[k])}%`;
        setText(row.prob, fmt4(ex.probabilities[k]));
        row.probBar.style.width = `${100 * ex.probabilities[k]}%`;
      });
    }
    shiftLine.replaceChildren(
      h("span", { text: `m = max z = ${fmt4(ex.shift)}` }),
      h("br"),
      h("span", { text: `Σ exp(z_j − m) = ${fmt4(ex.sum)}` }),
    );
    formula.replaceChildren(
      h("span", { text: `p_${i} = exp(z_${i} − m) / Σ` }),
      h("br"),
      h("span", { text: `= exp(${paren(ex.logits[i])} − ${paren(ex.shift)}) / ${fmt4(ex.sum)}` }),
      h("br"),
      h("span", { text: `= ${fmt4(ex.exps[i])} / ${fmt4(ex.sum)} = ` }),
      h("b", { class: "act-value", text: fmt4(ex.value) }),
    );
    setText(note, i === predicted ? t("sm.note_predicted", { name: label(i) }) : t("sm.note_shift"));
  }

  return {
    ...steps,
    positionLabel: "sm.class_label",
    render,
    applyTexts: buildRows,
    lesson: () => t("sm.lesson", { n }),
  };
}
