// Form controls made from the JSON schema of the project settings (GET /api/v1/schemas/
// project-settings): each field's type, bounds, default and one line of help come from the
// server's one definition (medloop.domain.settings), never restated here.

import { h } from "./dom.js";
import { firstLine, select } from "./forms.js";

/** The schema node a property points to (`$ref` resolved), and whether `null` is allowed. */
export function resolve(prop, defs) {
  let node = prop;
  let nullable = false;
  if (node.anyOf) {
    nullable = node.anyOf.some((n) => n.type === "null");
    node = node.anyOf.find((n) => n.type !== "null") || node;
  }
  if (node.$ref) node = defs[node.$ref.split("/").pop()] || node;
  return { node, nullable };
}

function bounds(node) {
  const parts = [];
  if (node.minimum !== undefined) parts.push(`≥ ${node.minimum}`);
  if (node.exclusiveMinimum !== undefined) parts.push(`> ${node.exclusiveMinimum}`);
  if (node.maximum !== undefined) parts.push(`≤ ${node.maximum}`);
  if (node.exclusiveMaximum !== undefined) parts.push(`< ${node.exclusiveMaximum}`);
  return parts.join(", ");
}

function show(value) {
  if (value === null || value === undefined) return "planned";
  return Array.isArray(value) ? value.join(", ") : String(value);
}

/**
 * One setting (`path`: "learning.steps", or "finetune_every" at the top): {el, read()} where
 * read() gives the value to send (null: back to the default or to the planner), or throws.
 */
export function schemaField(path, prop, defs, current) {
  const name = path.split(".").pop();
  const { node, nullable } = resolve(prop, defs);
  const title = prop.title || node.title || name;
  const control = controlFor(node, current, nullable);
  control.name = path;
  control.dataset.testid = `setting-${path}`;
  const range = bounds(node.type === "array" ? node.items || {} : node);
  const defaultText = `default ${show(prop.default)}${range ? ` · ${range}` : ""}`;
  const el = h(
    "div",
    { class: "setting", dataset: { field: path } },
    h("label", { class: "field-label", for: `set-${path}`, text: title }),
    control,
    h("div", { class: "field-help", text: firstLine(prop.description || node.description) }),
    h("div", { class: "field-default muted small", text: defaultText }),
  );
  control.id = `set-${path}`;
  return { el, read: () => readControl(control, node, nullable, title) };
}

function controlFor(node, current, nullable) {
  if (node.type === "boolean") {
    const box = h("input", { type: "checkbox" });
    box.checked = current === true;
    return box;
  }
  if (node.enum) {
    const options = node.enum.map((v) => [v, String(v)]);
    return select(nullable ? [["", "planned"], ...options] : options, current ?? "");
  }
  if (node.type === "integer" || node.type === "number") {
    return h("input", {
      type: "number",
      step: node.type === "integer" ? "1" : "any",
      value: current === null || current === undefined ? "" : String(current),
      placeholder: nullable ? "planned" : "",
    });
  }
  if (node.type === "array") {
    return h("input", {
      type: "text",
      value: Array.isArray(current) ? current.join(", ") : "",
      placeholder: nullable ? "planned (numbers separated by commas)" : "",
    });
  }
  return h("input", { type: "text", value: current ?? "" });
}

function readControl(control, node, nullable, title) {
  if (node.type === "boolean") return control.checked;
  const text = control.value.trim();
  if (text === "") {
    if (nullable) return null;
    throw new Error(`${title}: give a value`);
  }
  if (node.enum) {
    const match = node.enum.find((v) => String(v) === text);
    return match === undefined ? text : match;
  }
  if (node.type === "integer" || node.type === "number") return number(text, title);
  if (node.type === "array")
    return text
      .split(/[,\s]+/)
      .filter(Boolean)
      .map((t) => number(t, title));
  return text;
}

function number(text, title) {
  const v = Number(text);
  if (!Number.isFinite(v)) throw new Error(`${title}: ${text} is not a number`);
  return v;
}
