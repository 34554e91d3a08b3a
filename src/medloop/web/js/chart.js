// An SVG line chart of Dice per model version: locked validation set and held-out corrections.

import { svg } from "./dom.js";

const SERIES = [
  { key: "locked", name: "Locked validation set", cls: "s-locked" },
  { key: "heldout", name: "Held-out corrections", cls: "s-heldout" },
];

/**
 * @param {Array<{version, status, locked, heldout}>} points  Dice values in 0..1 or null
 */
export function diceChart(points) {
  const W = 1100;
  const H = 270;
  const m = { l: 64, r: 64, t: 36, b: 46 };
  const values = points.flatMap((p) => [p.locked, p.heldout]).filter((v) => typeof v === "number");
  let lo = values.length ? Math.min(...values) : 0;
  lo = Math.max(0, Math.floor((lo - 0.05) * 10) / 10);
  const hi = 1;
  const x = (i) => m.l + (points.length <= 1 ? (W - m.l - m.r) / 2 : (i * (W - m.l - m.r)) / (points.length - 1));
  const y = (v) => m.t + ((hi - v) * (H - m.t - m.b)) / (hi - lo || 1);
  const root = svg("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": "Dice per model version",
    "data-testid": "dice-chart",
  });
  const step = hi - lo > 0.5 ? 0.1 : 0.05;
  for (let v = lo; v <= hi + 1e-9; v += step) {
    root.append(
      svg("line", { x1: m.l, x2: W - m.r, y1: y(v), y2: y(v), class: "grid" }),
      svg("text", { x: m.l - 8, y: y(v) + 4, class: "tick", "text-anchor": "end", text: v.toFixed(2) }),
    );
  }
  root.append(
    svg("text", {
      x: 12,
      y: m.t + (H - m.t - m.b) / 2,
      class: "axis-label",
      transform: `rotate(-90 12 ${m.t + (H - m.t - m.b) / 2})`,
      "text-anchor": "middle",
      text: "Dice",
    }),
  );
  points.forEach((p, i) => {
    root.append(
      svg("text", {
        x: x(i),
        y: H - m.b + 18,
        class: `tick${p.status === "production" ? " tick-prod" : ""}`,
        "text-anchor": "middle",
        text: p.version,
      }),
    );
    if (p.status === "production") {
      root.append(
        svg("text", { x: x(i), y: H - m.b + 33, class: "tick tick-prod", "text-anchor": "middle", text: "production" }),
      );
    }
  });
  for (const s of SERIES) {
    const pts = points.map((p, i) => [i, p[s.key]]).filter(([, v]) => typeof v === "number");
    if (pts.length > 1) {
      root.append(
        svg("polyline", { class: `line ${s.cls}`, points: pts.map(([i, v]) => `${x(i)},${y(v)}`).join(" ") }),
      );
    }
    for (const [i, v] of pts) {
      const p = points[i];
      root.append(
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
  }
  const legend = svg("g", { transform: `translate(${W - m.r - 350}, 12)` });
  SERIES.forEach((s, k) => {
    const gx = k * 190;
    legend.append(
      svg("line", { x1: gx, x2: gx + 18, y1: 0, y2: 0, class: `line ${s.cls}` }),
      svg("circle", { cx: gx + 9, cy: 0, r: 3.5, class: `dot ${s.cls}` }),
      svg("text", { x: gx + 24, y: 4, class: "legend-text", text: s.name }),
    );
  });
  root.append(legend);
  return root;
}
