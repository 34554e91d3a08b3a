// An SVG line chart of Dice per model version: locked validation set and held-out corrections.

import { svg } from "./dom.js";

const SERIES = [
  { key: "locked", name: "Locked validation set", cls: "s-locked" },
  { key: "heldout", name: "Held-out corrections", cls: "s-heldout" },
];
const W = 1100;
const H = 270;
const MARGIN = { l: 64, r: 64, t: 36, b: 46 };

/**
 * @param {Array<{version, status, locked, heldout}>} points  Dice values in 0..1 or null
 */
export function diceChart(points) {
  const frame = chartFrame(points);
  return svg(
    "svg",
    {
      viewBox: `0 0 ${W} ${H}`,
      class: "chart",
      role: "img",
      "aria-label": "Dice per model version",
      "data-testid": "dice-chart",
    },
    yAxis(frame),
    points.map((p, i) => versionLabel(p, frame.x(i))),
    SERIES.map((s) => seriesMarks(points, s, frame)),
    legend(),
  );
}

/** The Dice range shown (from a tenth below the lowest value up to 1) and the x, y scales. */
function chartFrame(points) {
  const m = MARGIN;
  const values = points.flatMap((p) => [p.locked, p.heldout]).filter((v) => typeof v === "number");
  const lowest = values.length ? Math.min(...values) : 0;
  const lo = Math.max(0, Math.floor((lowest - 0.05) * 10) / 10);
  const hi = 1;
  const x = (i) => m.l + (points.length <= 1 ? (W - m.l - m.r) / 2 : (i * (W - m.l - m.r)) / (points.length - 1));
  const y = (v) => m.t + ((hi - v) * (H - m.t - m.b)) / (hi - lo || 1);
  return { lo, hi, x, y };
}

/** Grid lines with their Dice values, and the axis title. */
function yAxis({ lo, hi, y }) {
  const m = MARGIN;
  const out = [];
  const step = hi - lo > 0.5 ? 0.1 : 0.05;
  for (let v = lo; v <= hi + 1e-9; v += step) {
    out.push(
      svg("line", { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: m.l - 8, y: y(v) + 4, class: "tick", "text-anchor": "end", text: v.toFixed(2) }),
    );
  }
  const mid = m.t + (H - m.t - m.b) / 2;
  out.push(
    svg("text", {
      x: 12,
      y: mid,
      class: "axis-label",
      transform: `rotate(-90 12 ${mid})`,
      "text-anchor": "middle",
      text: "Dice",
    }),
  );
  return out;
}

/** The version's name under its column; "production" below it for the one in production. */
function versionLabel(p, x) {
  const prod = p.status === "production";
  const base = H - MARGIN.b;
  return [
    svg("text", {
      x,
      y: base + 18,
      class: `tick${prod ? " tick-prod" : ""}`,
      "text-anchor": "middle",
      text: p.version,
    }),
    prod
      ? svg("text", { x, y: base + 33, class: "tick tick-prod", "text-anchor": "middle", text: "production" })
      : null,
  ];
}

/** One series: a line through its values (when more than one) and a dot with a tooltip on each. */
function seriesMarks(points, s, { x, y }) {
  const pts = points.map((p, i) => [i, p[s.key]]).filter(([, v]) => typeof v === "number");
  const out = [];
  if (pts.length > 1) {
    out.push(svg("polyline", { class: `line ${s.cls}`, points: pts.map(([i, v]) => `${x(i)},${y(v)}`).join(" ") }));
  }
  for (const [i, v] of pts) {
    const p = points[i];
    out.push(
      svg(
        "circle",
        {
          cx: x(i),
          cy: y(v),
          r: p.status === "production" ? 6 : 4.5,
          class: `dot ${s.cls}${p.status === "rejected" ? " rejected" : ""}`,
        },
        svg("title", { text: `${p.version} (${p.status}) · ${s.name}: ${v.toFixed(3)}` }),
      ),
    );
  }
  return out;
}

function legend() {
  const g = svg("g", { transform: `translate(${W - MARGIN.r - 350}, 12)` });
  SERIES.forEach((s, k) => {
    const gx = k * 190;
    g.append(
      svg("line", { x1: gx, x2: gx + 18, y1: 0, y2: 0, class: `line ${s.cls}` }),
      svg("circle", { cx: gx + 9, cy: 0, r: 3.5, class: `dot ${s.cls}` }),
      svg("text", { x: gx + 24, y: 4, class: "legend-text", text: s.name }),
    );
  });
  return g;
}
