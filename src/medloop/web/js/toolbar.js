// The correction toolbar's parts, shared by the image viewer and the volume viewer: tool
// buttons, the brush size, the label buttons and undo/redo/reset/submit. Each part calls
// back into the view (`setTool`, `setSize`, `setLabel`, `undo`, ...) and the buttons the
// view updates later are kept on it.

import { h } from "./dom.js";
import { isTyping } from "./stage.js";

/** The editing tools, [tool, label, shortcut], in toolbar order (`toolbarKey` maps the keys). */
export const EDIT_TOOLS = [
  ["brush", "Brush", "B"],
  ["eraser", "Eraser", "E"],
  ["lasso", "Lasso / polygon", "L"],
  ["clicks", "Clicks", "C"],
];

/** A plain toolbar button. */
export function button(cls, testid, title, text, onclick) {
  return h("button", { class: cls, type: "button", title, "data-testid": testid, onclick, text });
}

/** The button that picks `tool`, showing its shortcut `key` in its title. */
export function toolButton(view, tool, label, key) {
  return h("button", {
    class: "tool",
    type: "button",
    title: `${label} (${key})`,
    "aria-pressed": "false",
    dataset: { tool },
    "data-testid": `tool-${tool}`,
    onclick: () => view.setTool(tool),
    text: label,
  });
}

/** The brush-size slider (1-64 px) and its readout, kept as `view.sizeInput` and `view.sizeOut`. */
export function sizeControl(view) {
  view.sizeInput = h("input", {
    type: "range",
    min: "1",
    max: "64",
    value: String(view.size),
    "aria-label": "Brush size",
    "data-testid": "brush-size",
    oninput: (e) => view.setSize(Number(e.target.value)),
  });
  view.sizeOut = h("output", { class: "size-out", text: `${view.size} px` });
  return h(
    "label",
    { class: "tool-group size" },
    h("span", { class: "muted", text: "Size" }),
    view.sizeInput,
    view.sizeOut,
  );
}

/** The button of the `i`th label: its swatch and name, with its key (1-9) for the first nine. */
export function labelButton(view, lab, i) {
  const swatch = h("span", { class: "swatch" });
  swatch.style.backgroundColor = lab.color; // CSSOM, allowed by the CSP
  return h(
    "button",
    {
      class: "label-btn",
      type: "button",
      title: i < 9 ? `${lab.name} (${i + 1})` : lab.name,
      "aria-pressed": "false",
      "data-testid": `label-${lab.value}`,
      dataset: { value: String(lab.value) },
      onclick: () => view.setLabel(lab.value),
    },
    swatch,
    h("span", { text: i < 9 ? `${i + 1} ${lab.name}` : lab.name }),
  );
}

/** The label buttons, undo, redo, reset and submit, kept on `view` (`labelButtons`,
 * `undoBtn`, `redoBtn`, `resetBtn`, `submitBtn`). */
export function editButtons(view) {
  view.labelButtons = view.labels.map((lab, i) => labelButton(view, lab, i));
  view.undoBtn = button("btn", "undo", "Undo (Z, Ctrl+Z)", "Undo", () => view.undo());
  view.redoBtn = button("btn", "redo", "Redo (Y, Ctrl+Shift+Z)", "Redo", () => view.redo());
  view.resetBtn = button("btn", "reset", "Back to the model's prediction", "Reset to prediction", () => view.reset());
  view.submitBtn = button("btn btn-primary", "submit", undefined, "Submit correction", () => view.submit());
}

/** The image viewer's toolbar (editors only): brush, eraser, lasso and clicks, the size,
 * the labels, undo/redo/reset and submit. */
export function imageToolbar(view) {
  view.toolButtons = EDIT_TOOLS.map(([t, label, key]) => toolButton(view, t, label, key));
  editButtons(view);
  return h(
    "div",
    { class: "toolbar", "data-testid": "correction-tools", role: "toolbar", "aria-label": "Correction tools" },
    h("div", { class: "tool-group" }, view.toolButtons),
    sizeControl(view),
    h("div", { class: "tool-group labels" }, view.labelButtons),
    h("div", { class: "tool-group" }, view.undoBtn, view.redoBtn, view.resetBtn),
    h("div", { class: "spacer" }),
    view.submitBtn,
  );
}

/** The viewers' shortcuts: F fits; for editors B/E/L/C pick a tool, Z/Y (or Ctrl+Z,
 * Ctrl+Y, Ctrl+Shift+Z) undo and redo, [ ] change the size, 1-9 pick a label, and
 * Enter/Escape close or cancel a lasso. Handled keys do not reach the page. */
export function toolbarKey(view, e) {
  if (isTyping(e) || e.altKey) return;
  const k = e.key;
  const mod = e.ctrlKey || e.metaKey;
  if (k === "f" && !mod) {
    view.stage.fit();
    return;
  }
  if (!view.canEdit) return;
  const lower = k.toLowerCase();
  let handled = true;
  if (mod && lower === "z" && e.shiftKey) view.redo();
  else if (mod && lower === "z") view.undo();
  else if (mod && lower === "y") view.redo();
  else if (mod) handled = false;
  else if (lower === "b") view.setTool("brush");
  else if (lower === "e") view.setTool("eraser");
  else if (lower === "l") view.setTool("lasso");
  else if (lower === "c") view.setTool("clicks");
  else if (lower === "z") view.undo();
  else if (lower === "y") view.redo();
  else if (k === "[") view.setSize(view.size - (view.size > 10 ? 2 : 1));
  else if (k === "]") view.setSize(view.size + (view.size >= 10 ? 2 : 1));
  else if (/^[1-9]$/.test(k) && view.labels[Number(k) - 1]) view.setLabel(view.labels[Number(k) - 1].value);
  else if (k === "Enter" && view.tool === "lasso") view.handlers.lasso.close();
  else if (k === "Escape" && view.tool === "lasso") view.handlers.lasso.cancel();
  else handled = false;
  if (handled) e.preventDefault();
}
