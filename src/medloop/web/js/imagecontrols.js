// The 2D viewer's display card: overlay on/off, opacity, filled or outlined labels, the
// window/level sliders (applied in the browser for 8-bit images, by the server otherwise),
// zoom, and the legend.

import { append, clear, h } from "./dom.js";

/** Fill `card` with the display controls of the 2D `view` (its stage, labels, window). */
export function renderImageDisplay(card, view) {
  clear(card);
  const show = h("input", {
    type: "checkbox",
    checked: view.stage.showOverlay,
    "data-testid": "overlay-toggle",
    onchange: (e) => view.stage.setStyle({ show: e.target.checked }),
  });
  const opacity = h("input", {
    type: "range",
    min: "0",
    max: "100",
    value: String(Math.round(view.stage.opacity * 100)),
    "aria-label": "Overlay opacity",
    "data-testid": "opacity",
    oninput: (e) => {
      view.stage.setStyle({ opacity: Number(e.target.value) / 100 });
      opacityOut.textContent = `${e.target.value} %`;
    },
  });
  const opacityOut = h("output", { text: `${Math.round(view.stage.opacity * 100)} %` });
  const seg = (label, outline) =>
    h("button", {
      type: "button",
      class: "seg",
      "aria-pressed": String(view.stage.outline === outline),
      "data-testid": outline ? "style-outline" : "style-filled",
      onclick: (e) => {
        view.stage.setStyle({ outline });
        for (const b of e.target.parentElement.children) b.setAttribute("aria-pressed", String(b === e.target));
      },
      text: label,
    });
  view.wlBox = h("div", { class: "wl" });
  append(
    card,
    h("h3", { text: "Display" }),
    h("label", { class: "row" }, show, h("span", { text: "Show overlay" })),
    h("label", { class: "row slider" }, h("span", { class: "lbl", text: "Opacity" }), opacity, opacityOut),
    h(
      "div",
      { class: "row" },
      h("span", { class: "lbl", text: "Style" }),
      h("div", { class: "segmented" }, seg("Filled", false), seg("Outline", true)),
    ),
    view.wlBox,
    h(
      "div",
      { class: "row" },
      h("span", { class: "lbl", text: "View" }),
      h("button", { class: "btn btn-small", type: "button", onclick: () => view.stage.fit(), text: "Fit (F)" }),
      h("button", { class: "btn btn-small", type: "button", onclick: () => view.zoomTo(1), text: "1:1" }),
    ),
    h(
      "div",
      { class: "legend" },
      view.labels.map((lab) => {
        const sw = h("span", { class: "swatch" });
        sw.style.backgroundColor = lab.color;
        return h("span", { class: "legend-item" }, sw, h("span", { text: lab.name }));
      }),
    ),
  );
}

/** The window/level sliders of `view` (after its image is loaded: `view.wl` is known). */
export function renderImageWindow(view) {
  const box = view.wlBox;
  clear(box);
  const { min, max } = view.wl;
  const span = Math.max(max - min, 1e-6);
  const integer = Number.isInteger(min) && Number.isInteger(max) && span >= 16;
  const step = integer ? 1 : span / 1000;
  const level = h("input", {
    type: "range",
    min: String(min),
    max: String(max),
    step: String(step),
    value: String(view.wl.center),
    "aria-label": "Level (window centre)",
    "data-testid": "wl-level",
    oninput: (e) => view.setWindow(Number(e.target.value), view.wl.width),
  });
  const width = h("input", {
    type: "range",
    min: String(step),
    max: String(span * 2),
    step: String(step),
    value: String(view.wl.width),
    "aria-label": "Window width",
    "data-testid": "wl-width",
    oninput: (e) => view.setWindow(view.wl.center, Number(e.target.value)),
  });
  view.levelOut = h("output", { text: fmtWl(view.wl.center) });
  view.widthOut = h("output", { text: fmtWl(view.wl.width) });
  view.levelInput = level;
  view.widthInput = width;
  append(
    box,
    h(
      "div",
      { class: "row" },
      h("span", { class: "lbl", text: "Window" }),
      h("span", {
        class: "muted small",
        "data-testid": "wl-source",
        text:
          view.wlSource === "server"
            ? `rendered by the server (${view.image.metadata.bits || "high"}-bit / ${fmtWl(min)}…${fmtWl(max)})`
            : "8-bit, in the browser",
      }),
    ),
    h("label", { class: "row slider" }, h("span", { class: "lbl", text: "Level" }), level, view.levelOut),
    h("label", { class: "row slider" }, h("span", { class: "lbl", text: "Width" }), width, view.widthOut),
    h(
      "div",
      { class: "row" },
      h("span", { class: "lbl" }),
      h("button", {
        class: "btn btn-small",
        type: "button",
        "data-testid": "wl-reset",
        onclick: () => {
          view.setWindow(view.wlDefault.center, view.wlDefault.width);
          level.value = String(view.wl.center);
          width.value = String(view.wl.width);
        },
        text: "Reset window",
      }),
    ),
  );
}

export function fmtWl(v) {
  if (!Number.isFinite(v)) return "—";
  return Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v)) : v.toPrecision(3);
}
