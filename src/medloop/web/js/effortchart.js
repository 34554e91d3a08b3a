// An SVG plot of the effort each correction took, oldest first, one colour per model version
// corrected: edits (clicks + brush strokes) or seconds of active editing. No library.

import { svg } from "./dom.js";

const W = 1100;
const H = 260;
const M = { l: 64, r: 24, t: 36, b: 44 };
const COLORS = ["#0f5ea8", "#d9480f", "#2b8a3e", "#7048e8", "#c2255c", "#1098ad", "#e67700", "#495057"];

export const MEASURES = {
  edits: { name: "Edits (clicks + strokes)", digits: 0 },
  seconds: { name: "Active seconds", digits: 1 },
};

/** The value plotted for a correction, or null when its record lacks it. */
export function effortValue(c, measure) {
  const e = c.effort;
  if (!e) return null;
  if (measure === "seconds") return typeof e.active_seconds === "number" ? e.active_seconds : null;
  if (typeof e.clicks !== "number" && typeof e.brush_strokes !== "number") return null;
  return (e.clicks || 0) + (e.brush_strokes || 0);
}

/** Corrections with an effort record, oldest first, and the colour of each version. */
export function effortPoints(corrections, measure) {
  const rows = corrections
    .filter((c) => effortValue(c, measure) !== null)
    .sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : a.seq - b.seq));
  const versions = [...new Set(rows.map((c) => c.model_version))].sort();
  const color = new Map(versions.map((v, i) => [v, COLORS[i % COLORS.length]]));
  return { rows, versions, color };
}

/** Grid steps of 1, 2, 2.5 or 5 × 10^n, about four of them up to `max` (whole steps for
 * whole numbers): the step and the top of the axis. */
function axis(max, whole) {
  const raw = Math.max(max, 1) / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  const steps = [1, 2, 2.5, 5, 10].map((k) => k * p);
  const step = Math.max(
    whole ? 1 : 0,
    steps.find((x) => x >= raw && (!whole || Number.isInteger(x))),
  );
  return { step, top: Math.max(step, Math.ceil(max / step) * step) };
}

/** The plot of `corrections` (as `GET .../corrections` lists them) for `measure`. */
export function effortChart(corrections, measure = "edits") {
  const { rows, versions, color } = effortPoints(corrections, measure);
  const max = Math.max(0, ...rows.map((c) => effortValue(c, measure)));
  const { step, top } = axis(max, MEASURES[measure].digits === 0);
  const x = (i) => M.l + (rows.length <= 1 ? (W - M.l - M.r) / 2 : (i * (W - M.l - M.r)) / (rows.length - 1));
  const y = (v) => M.t + ((top - v) * (H - M.t - M.b)) / top;
  const grid = [];
  for (let v = 0; v <= top + step / 1000; v += step) {
    grid.push(
      svg("line", { x1: M.l, x2: W - M.r, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: M.l - 8, y: y(v) + 4, class: "tick", "text-anchor": "end", text: fmt(v) }),
    );
  }
  const mid = M.t + (H - M.t - M.b) / 2;
  const dots = rows.map((c, i) => {
    const v = effortValue(c, measure);
    const label = describe(c, i + 1);
    return svg(
      "circle",
      {
        cx: x(i),
        cy: y(v),
        r: 5,
        fill: color.get(c.model_version),
        class: "effort-dot",
        "data-testid": "effort-dot",
        "data-version": c.model_version,
        "aria-label": label,
      },
      svg("title", { text: label }),
    );
  });
  return svg(
    "svg",
    {
      viewBox: `0 0 ${W} ${H}`,
      class: "chart",
      role: "img",
      "aria-label": `${MEASURES[measure].name} per correction, oldest first, by model version`,
      "data-testid": "effort-chart",
      "data-measure": measure,
    },
    grid,
    svg("text", {
      x: 14,
      y: mid,
      class: "axis-label",
      transform: `rotate(-90 14 ${mid})`,
      "text-anchor": "middle",
      text: MEASURES[measure].name,
    }),
    svg("text", {
      x: (M.l + W - M.r) / 2,
      y: H - 12,
      class: "axis-label",
      "text-anchor": "middle",
      text: `Corrections with an effort record, oldest first (${rows.length})`,
    }),
    medians(rows, versions, measure, x, y, color),
    dots,
    legend(versions, color),
  );
}

/** A dashed line at each version's median, across that version's corrections. */
function medians(rows, versions, measure, x, y, color) {
  return versions.map((v) => {
    const idx = rows.map((c, i) => (c.model_version === v ? i : -1)).filter((i) => i >= 0);
    const values = idx.map((i) => effortValue(rows[i], measure)).sort((a, b) => a - b);
    const m =
      values.length % 2
        ? values[(values.length - 1) / 2]
        : (values[values.length / 2 - 1] + values[values.length / 2]) / 2;
    return svg("line", {
      x1: x(idx[0]) - 8,
      x2: x(idx[idx.length - 1]) + 8,
      y1: y(m),
      y2: y(m),
      stroke: color.get(v),
      class: "effort-median",
    });
  });
}

function legend(versions, color) {
  const g = svg("g", { transform: `translate(${M.l + 8}, 14)` });
  versions.forEach((v, k) => {
    const gx = k * 90;
    g.append(
      svg("circle", { cx: gx + 5, cy: 0, r: 5, fill: color.get(v) }),
      svg("text", { x: gx + 14, y: 4, class: "legend-text", text: v }),
    );
  });
  return g;
}

function describe(c, n) {
  const e = c.effort;
  const parts = [
    typeof e.clicks === "number" ? `${e.clicks} clicks` : null,
    typeof e.brush_strokes === "number" ? `${e.brush_strokes} strokes` : null,
    typeof e.active_seconds === "number" ? `${e.active_seconds.toFixed(1)} s` : null,
    `Dice ${c.dice_vs_prediction.toFixed(3)}`,
  ];
  return `${c.model_version} · correction ${n}: ${parts.filter(Boolean).join(", ")}`;
}

function fmt(v) {
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(2)));
}
