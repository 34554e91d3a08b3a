// The volume viewer's toolbar, and its display card: the main plane (layout), overlay, and
// window/level with the CT presets, typed values, or the window tool's drag.

import { append, clear, fmtInt, fmtNum, h } from "./dom.js";
import { PLANES } from "./planes.js";
import { button, EDIT_TOOLS, editButtons, sizeControl, toolButton } from "./toolbar.js";

/** CT windows (center, width) in Hounsfield units, as the server's /slice presets. */
export const WINDOW_PRESETS = [
  ["soft-tissue", "Soft tissue", 40, 400],
  ["lung", "Lung", -600, 1500],
  ["bone", "Bone", 400, 1800],
  ["brain", "Brain", 40, 80],
];

const TITLES = { axial: "Axial", coronal: "Coronal", sagittal: "Sagittal" };

/** A segmented control: one button per [value, text]; `pick(value)` on click. */
function segmented(label, options, current, pick, testid) {
  const buttons = options.map(([value, text]) =>
    h("button", {
      type: "button",
      class: "seg",
      "aria-pressed": String(value === current),
      "data-testid": `${testid}-${value}`,
      onclick: (e) => {
        for (const b of buttons) b.setAttribute("aria-pressed", String(b === e.currentTarget));
        pick(value);
      },
      text,
    }),
  );
  return h("div", { class: "segmented", role: "group", "aria-label": label }, buttons);
}

/** Fill `card` with the display controls of the volume `view`. */
export function renderVolumeDisplay(card, view) {
  clear(card);
  const stages = () => view.panes.map((p) => p.stage);
  const show = h("input", {
    type: "checkbox",
    checked: true,
    "data-testid": "overlay-toggle",
    onchange: (e) => {
      for (const s of stages()) s.setStyle({ show: e.target.checked });
    },
  });
  const opacityOut = h("output", { text: "50 %" });
  const opacity = h("input", {
    type: "range",
    min: "0",
    max: "100",
    value: "50",
    "aria-label": "Overlay opacity",
    "data-testid": "opacity",
    oninput: (e) => {
      for (const s of stages()) s.setStyle({ opacity: Number(e.target.value) / 100 });
      opacityOut.textContent = `${e.target.value} %`;
    },
  });
  const layout = segmented(
    "Main plane",
    PLANES.map((p) => [p, TITLES[p]]),
    view.mainPlane,
    (p) => view.setMainPlane(p),
    "main-plane",
  );
  view.wlBox = h("div", { class: "wl" });
  append(
    card,
    h("h3", { text: "Display" }),
    h("div", { class: "row" }, h("span", { class: "lbl", text: "Main" }), layout),
    h("label", { class: "row" }, show, h("span", { text: "Show overlay" })),
    h("label", { class: "row slider" }, h("span", { class: "lbl", text: "Opacity" }), opacity, opacityOut),
    view.wlBox,
  );
  renderWindowBox(view);
}

function renderWindowBox(view) {
  const box = view.wlBox;
  clear(box);
  const number = (label, testid, key) =>
    h("input", {
      type: "number",
      class: "wl-number",
      step: "any",
      "aria-label": label,
      "data-testid": testid,
      value: String(Math.round(view.wl[key])),
      onchange: (e) => {
        const v = Number(e.target.value);
        if (!Number.isFinite(v) || (key === "width" && v <= 0)) return;
        view.setWindow(key === "center" ? v : view.wl.center, key === "width" ? v : view.wl.width);
      },
    });
  view.centerInput = number("Window centre (level)", "wl-center", "center");
  view.widthInput = number("Window width", "wl-width", "width");
  const presets = WINDOW_PRESETS.map(([id, text, c, w]) =>
    h("button", {
      type: "button",
      class: "btn btn-small",
      "data-testid": `wl-preset-${id}`,
      title: `${text}: centre ${c}, width ${w}`,
      onclick: () => view.setWindow(c, w),
      text,
    }),
  );
  const auto = h("button", {
    type: "button",
    class: "btn btn-small",
    "data-testid": "wl-reset",
    title: "The volume's own window",
    onclick: () => view.setWindow(view.wlDefault.center, view.wlDefault.width),
    text: "Auto",
  });
  append(
    box,
    h("div", { class: "row" }, h("span", { class: "lbl", text: "Window" }), view.centerInput, view.widthInput),
    h("div", { class: "row wl-presets", role: "group", "aria-label": "CT window presets" }, presets, auto),
    h("p", { class: "muted small", text: "W: drag in the main plane (right-left: width, up-down: level)" }),
  );
}

/** Per-label measurements of a volume analysis (voxels, mm³), with the corrected count. */
export function volumeMeasures(analysis, labels, canEdit) {
  const editedCells = [];
  const blocks = (analysis.measurements || []).map((m) => {
    const lab = labels.find((l) => l.value === m.value);
    const sw = h("span", { class: "swatch" });
    sw.style.backgroundColor = lab ? lab.color : "#888"; // CSSOM, allowed by the CSP
    const dl = h("dl", { class: "facts measures" });
    const fact = (k, v) => dl.append(h("dt", { text: k }), h("dd", { class: "num", text: v }));
    fact("Voxels", fmtInt(m.area_px));
    fact("Volume", m.volume_mm3 == null ? "—" : `${fmtNum(m.volume_mm3 / 1000, 3)} mL`);
    fact("Components", fmtInt(m.components));
    if (canEdit) {
      const cell = h("dd", {
        class: "num",
        "data-testid": `edited-area-${m.value}`,
        dataset: { value: String(m.value) },
      });
      dl.append(h("dt", { title: "Voxels of the label volume as you have corrected it", text: "Your mask" }), cell);
      editedCells.push(cell);
    }
    return h(
      "div",
      { class: "measure" },
      h("div", { class: "measure-head" }, sw, h("span", { class: "strong", text: m.name })),
      dl,
    );
  });
  const el = h("div", { class: "panel" }, h("h3", { text: "Measurements" }), blocks);
  return { el, editedCells };
}

/** The volume viewer's toolbar: its tools (the correction tools and clicks for editors),
 * and for editors the brush size, labels, undo/redo/reset/interpolate and submit; the
 * buttons are kept on `view`. */
export function volumeToolbar(view) {
  const tools = [
    ["crosshair", "Crosshair", "X"],
    ["window", "Window", "W"],
  ];
  if (view.canEdit) tools.unshift(...EDIT_TOOLS);
  view.toolButtons = tools.map(([t, label, key]) => toolButton(view, t, label, key));
  const groups = [h("div", { class: "tool-group" }, view.toolButtons)];
  if (view.canEdit) {
    editButtons(view);
    view.interpBtn = button(
      "btn",
      "interpolate",
      "Fill the slices between the edited slices of the main plane with the current label's shape, morphed (I)",
      "Interpolate",
      () => view.interpolate(),
    );
    groups.push(
      sizeControl(view),
      h("div", { class: "tool-group labels" }, view.labelButtons),
      h("div", { class: "tool-group" }, view.undoBtn, view.redoBtn, view.resetBtn, view.interpBtn),
      h("div", { class: "spacer" }),
      view.submitBtn,
    );
  }
  return h(
    "div",
    { class: "toolbar", "data-testid": "correction-tools", role: "toolbar", "aria-label": "Tools" },
    groups,
  );
}
