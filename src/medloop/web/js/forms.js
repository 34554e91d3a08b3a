// Small form pieces the admin pages share: labelled fields, a modal dialog, a secret shown once.

import { h, toast } from "./dom.js";

let fieldCount = 0;

/** A labelled field: the label, the control, and one line of help under it. */
export function field(label, control, help) {
  fieldCount += 1;
  const id = control.id || `f${fieldCount}`;
  control.id = id;
  return h(
    "div",
    { class: "field" },
    h("label", { class: "field-label", for: id, text: label }),
    control,
    help ? h("div", { class: "field-help", text: help }) : null,
  );
}

/** A select with `options` as [value, text] pairs (or plain values), `value` selected. */
export function select(options, value, attrs = {}) {
  return h(
    "select",
    attrs,
    options.map((o) => {
      const [v, text] = Array.isArray(o) ? o : [o, o];
      return h("option", { value: String(v), selected: String(v) === String(value), text });
    }),
  );
}

/**
 * A modal dialog (the native <dialog>): resolves with what `onOk` returns, or null when closed.
 * `onOk` may throw to keep the dialog open (its message is shown in the dialog).
 */
export function openDialog({ title, body, ok = "OK", danger = false, onOk, testid = "dialog" }) {
  return new Promise((resolve) => {
    const error = h("p", { class: "error", role: "alert", "data-testid": `${testid}-error` });
    const okBtn = h("button", {
      class: `btn ${danger ? "btn-danger-solid" : "btn-primary"}`,
      type: "submit",
      "data-testid": `${testid}-ok`,
      text: ok,
    });
    const cancel = h("button", { class: "btn", type: "button", text: "Cancel", onclick: () => dialog.close() });
    const form = h(
      "form",
      { class: "dialog-form", method: "dialog" },
      h("h2", { text: title }),
      body,
      error,
      h("div", { class: "dialog-actions" }, cancel, okBtn),
    );
    const dialog = h("dialog", { class: "dialog", "data-testid": testid }, form);
    let result = null;
    form.addEventListener("submit", async (e) => {
      e.preventDefault();
      okBtn.disabled = true;
      try {
        result = onOk ? await onOk() : true;
        dialog.close();
      } catch (err) {
        error.textContent = err.message || String(err);
      } finally {
        okBtn.disabled = false;
      }
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** A secret shown once, with a Copy button; says it will not be shown again. */
export function secretBox(secret, what = "token") {
  const value = h("input", {
    type: "text",
    class: "secret mono",
    readonly: true,
    value: secret,
    "data-testid": "new-token",
    "aria-label": `New ${what}`,
  });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(secret);
      toast("Copied to the clipboard", "ok");
    } catch {
      value.select(); // no clipboard access: leave it selected for Ctrl+C
      toast("Press Ctrl+C to copy", "info");
    }
  };
  return h(
    "div",
    { class: "secret-box", "data-testid": "secret-box" },
    h("p", { class: "strong", text: `The new ${what}. Copy it now: it is shown only this once.` }),
    h(
      "div",
      { class: "secret-row" },
      value,
      h("button", { class: "btn", type: "button", "data-testid": "copy-token", onclick: copy, text: "Copy" }),
    ),
  );
}

/** The first sentence of a schema description: the one line of help a field shows. */
export function firstLine(text) {
  if (!text) return "";
  const flat = String(text).replace(/\s+/g, " ").trim();
  const end = flat.search(/\.(\s|$)/);
  return end > 0 ? flat.slice(0, end + 1) : flat;
}
