// Small DOM helpers. Text always goes in through textContent / text nodes, never as HTML.

/**
 * Build an element: h("button", {class: "btn", onclick: fn, dataset: {x: 1}}, "text", child).
 * Attribute values are set with setAttribute; "style" and "html" are refused on purpose
 * (the Content Security Policy forbids inline styles, and data is never parsed as HTML).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = String(value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (key === "style" || key === "html" || key.endsWith("HTML")) {
      throw new Error(`h(): ${key} is not allowed`);
    } else if (key === "value" || key === "checked" || key === "disabled") el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, ...children);
  return el;
}

/** Append children (nodes, strings as text, nested arrays); null, undefined and false are skipped. */
export function append(el, ...children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null) continue;
    if (key === "text") el.textContent = String(value);
    else if (key === "class") el.setAttribute("class", value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else el.setAttribute(key, String(value));
  }
  for (const c of children.flat(Infinity)) {
    if (c !== undefined && c !== null && c !== false) el.append(c);
  }
  return el;
}

// ---- formatting ----------------------------------------------------------------------

export function fmtDate(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function fmtNum(x, digits = 3) {
  return typeof x === "number" && Number.isFinite(x) ? x.toFixed(digits) : "—";
}

export function fmtInt(x) {
  return typeof x === "number" && Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "—";
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function shortId(id) {
  return id ? String(id).slice(0, 8) : "—";
}

// ---- badges, toasts, empty states ------------------------------------------------------

export function badge(text, kind = text) {
  return h("span", { class: `badge badge-${String(kind).replace(/[^a-z_-]/gi, "")}`, text });
}

export function toast(message, kind = "info", ms = 5000) {
  let area = document.getElementById("toasts");
  if (!area) {
    area = h("div", { id: "toasts", class: "toasts", role: "status", "aria-live": "polite" });
    document.body.append(area);
  }
  const t = h("div", { class: `toast toast-${kind}`, text: message });
  area.append(t);
  setTimeout(() => t.remove(), ms);
}

export function empty(text) {
  return h("div", { class: "empty", text });
}

/** A labelled section with a heading and optional actions on the right. */
export function section(title, actions = [], ...body) {
  return h(
    "section",
    { class: "card" },
    h("header", { class: "card-head" }, h("h2", { text: title }), h("div", { class: "card-actions" }, actions)),
    h("div", { class: "card-body" }, body),
  );
}
