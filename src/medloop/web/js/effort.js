// What a correction costs the clinician, sent with it: clicks given to the model (points
// and boxes), edits (brush strokes, lasso fills) and seconds of active editing; and the models page's summary of that effort per version.

import { fmtNum, h } from "./dom.js";

/** A pause longer than this between two edits counts as this long (the clinician stopped). */
export const IDLE_S = 15;

export class Effort {
  constructor(now = () => performance.now()) {
    this.now = now;
    this.clicks = 0;
    this.strokes = 0;
    this.activeMs = 0;
    this.last = null;
  }

  /** The clinician is editing now: the time since the last edit counts (up to IDLE_S). */
  touch() {
    const t = this.now();
    if (this.last !== null) this.activeMs += Math.min(t - this.last, IDLE_S * 1000);
    this.last = t;
  }

  /** One finished edit (a brush or eraser stroke, a lasso fill). */
  stroke() {
    this.strokes += 1;
    this.touch();
  }

  /** One click given to the model (a point or a box), kept even when removed later. */
  click() {
    this.clicks += 1;
    this.touch();
  }

  /** Adds the effort record's form fields to a correction's form. */
  appendTo(form) {
    form.append("clicks", String(this.clicks));
    form.append("brush_strokes", String(this.strokes));
    form.append("active_seconds", (this.activeMs / 1000).toFixed(1));
  }
}

function median(values) {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Per model version: corrections, those with an effort record, the medians of their clicks,
 * brush strokes and active seconds, and the mean Dice between prediction and correction. */
export function effortByVersion(corrections) {
  const groups = new Map();
  for (const c of corrections) {
    if (!groups.has(c.model_version)) groups.set(c.model_version, []);
    groups.get(c.model_version).push(c);
  }
  return [...groups.entries()].map(([version, rows]) => {
    const withEffort = rows.filter((c) => c.effort);
    const pick = (key) => withEffort.map((c) => c.effort[key]).filter((v) => typeof v === "number");
    return {
      version,
      corrections: rows.length,
      recorded: withEffort.length,
      clicks: median(pick("clicks")),
      strokes: median(pick("brush_strokes")),
      seconds: median(pick("active_seconds")),
      dice: rows.reduce((sum, c) => sum + c.dice_vs_prediction, 0) / rows.length,
    };
  });
}

/** The table of effortByVersion's rows: how much work each version still left to the clinician. */
export function effortTable(rows) {
  const cell = (v, digits) => h("td", { class: "num", text: fmtNum(v, digits) });
  return h(
    "table",
    { class: "table", "data-testid": "effort-table" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { text: "Corrected version" }),
        h("th", { class: "num", text: "Corrections" }),
        h("th", { class: "num", title: "Corrections sent with an effort record", text: "With effort" }),
        h("th", { class: "num", title: "Median clicks given to the model", text: "Clicks" }),
        h("th", { class: "num", title: "Median brush strokes and lasso fills", text: "Strokes" }),
        h("th", { class: "num", title: "Median seconds of active editing", text: "Seconds" }),
        h("th", { class: "num", title: "Mean Dice between the prediction and the correction", text: "Dice kept" }),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((r) =>
        h(
          "tr",
          { "data-testid": "effort-row", dataset: { version: r.version } },
          h("td", { class: "strong", text: r.version }),
          cell(r.corrections, 0),
          cell(r.recorded, 0),
          cell(r.clicks, 1),
          cell(r.strokes, 1),
          cell(r.seconds, 1),
          cell(r.dice, 3),
        ),
      ),
    ),
  );
}
