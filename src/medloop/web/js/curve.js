// An SVG chart of a learning job's curve: the training loss (left axis) and the validation
// Dice (right axis, 0..1) against the optimiser step.

import { svg } from "./dom.js";

const W = 1100;
const H = 260;
const M = { l: 64, r: 64, t: 28, b: 40 };

/** @param {Array<{step, metric, value}>} points */
export function curveChart(points) {
  const loss = points.filter((p) => p.metric === "loss");
  const dice = points.filter((p) => p.metric === "val_dice");
  const maxStep = Math.max(1, ...points.map((p) => p.step));
  const x = (step) => M.l + (step / maxStep) * (W - M.l - M.r);
  const values = loss.map((p) => p.value);
  const lo = values.length ? Math.min(...values) : 0;
  const hi = values.length ? Math.max(...values) : 1;
  const yLoss = (v) => M.t + ((hi - v) / (hi - lo || 1)) * (H - M.t - M.b);
  const yDice = (v) => M.t + (1 - v) * (H - M.t - M.b);
  return svg(
    "svg",
    {
      viewBox: `0 0 ${W} ${H}`,
      class: "chart curve",
      role: "img",
      "aria-label": "Training loss and validation Dice by step",
      "data-testid": "curve-chart",
      "data-points": String(points.length),
    },
    axes(lo, hi, yLoss, yDice, maxStep, x),
    line(loss, x, yLoss, "s-loss"),
    line(dice, x, yDice, "s-dice"),
    dice.map((p) =>
      svg(
        "circle",
        { cx: x(p.step), cy: yDice(p.value), r: 4, class: "dot s-dice" },
        svg("title", { text: `step ${p.step}: validation Dice ${p.value.toFixed(3)}` }),
      ),
    ),
    legend(),
  );
}

function line(points, x, y, cls) {
  if (points.length < 2) return null;
  return svg("polyline", { class: `line ${cls}`, points: points.map((p) => `${x(p.step)},${y(p.value)}`).join(" ") });
}

function axes(lo, hi, yLoss, yDice, maxStep, x) {
  const out = [];
  for (let k = 0; k <= 4; k++) {
    const d = k / 4;
    const lossValue = lo + (hi - lo) * d;
    out.push(
      svg("line", { x1: M.l, x2: W - M.r, y1: yDice(d), y2: yDice(d), class: "grid" }),
      svg("text", { x: M.l - 8, y: yLoss(lossValue) + 4, class: "tick", "text-anchor": "end", text: fmt(lossValue) }),
      svg("text", { x: W - M.r + 8, y: yDice(d) + 4, class: "tick", text: d.toFixed(2) }),
    );
  }
  for (let k = 0; k <= 5; k++) {
    const step = Math.round((maxStep * k) / 5);
    out.push(svg("text", { x: x(step), y: H - M.b + 18, class: "tick", "text-anchor": "middle", text: String(step) }));
  }
  out.push(
    svg("text", { x: W / 2, y: H - 6, class: "axis-label", "text-anchor": "middle", text: "step" }),
    svg("text", { x: 14, y: M.t - 10, class: "axis-label", text: "loss" }),
    svg("text", { x: W - M.r - 20, y: M.t - 10, class: "axis-label", text: "val Dice" }),
  );
  return out;
}

function fmt(v) {
  return Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3);
}

function legend() {
  const g = svg("g", { transform: `translate(${W / 2 - 150}, 12)` });
  [
    ["s-loss", "Training loss"],
    ["s-dice", "Validation Dice"],
  ].forEach(([cls, name], k) => {
    const gx = k * 170;
    g.append(
      svg("line", { x1: gx, x2: gx + 18, y1: 0, y2: 0, class: `line ${cls}` }),
      svg("text", { x: gx + 24, y: 4, class: "legend-text", text: name }),
    );
  });
  return g;
}
