// A model version's lineage on the Models page: where it came from, the gate's verdict,
// and the corrections it was trained on or scored against. Every value goes in as text.

import { badge, empty, fmtDate, fmtNum, h, shortId } from "./dom.js";

const CORRECTION_COLUMNS = ["Correction", "No.", "Use", "Author", "Corrects", "Dice vs prediction", "Weight", "When"];

/** The corrections a version was trained on ({key, weight}) and the ids of those held out. */
export function lineageCorrections(version) {
  const lin = version.lineage || {};
  return {
    trained: (lin.data || []).filter((d) => d.role === "correction"),
    heldOut: lin.held_out_corrections || [],
  };
}

/**
 * The lineage panel of `version`: its facts and gate report beside the table of its
 * corrections, described from `index` (correction records by id; ids alone when missing).
 */
export function lineagePanel(version, corrections, index) {
  return h(
    "div",
    { class: "lineage" },
    h("div", {}, lineageFacts(version), gateReport(version.report), history(version.history)),
    h("div", {}, h("h3", { text: "Corrections that made it" }), correctionsTable(corrections, index)),
  );
}

function lineageFacts(v) {
  const lin = v.lineage || {};
  const byRole = {};
  for (const d of lin.data || []) byRole[d.role] = (byRole[d.role] || 0) + 1;
  const dl = h("dl", { class: "facts" });
  const fact = (k, val) => dl.append(h("dt", { text: k }), h("dd", { text: val }));
  fact("Version", v.version);
  fact("Status", v.status);
  fact("Kind", lin.kind || v.kind);
  fact("Parent", lin.parent || "—");
  fact("Created", fmtDate(v.created_at));
  fact("Trained on", joinEntries(byRole, (r, n) => `${n} ${r}`) || "—");
  fact("Held-out corrections", String((lin.held_out_corrections || []).length));
  const erased = (lin.data || []).filter((d) => d.erased);
  if (erased.length || lin.erased_held_out?.length) {
    const n = erased.length + (lin.erased_held_out || []).length;
    const which = erased.map((d) => `${d.role} ${shortId(d.key)} (image sha256 ${shortId(d.image_sha256)})`).join(", ");
    fact("Erased since", `${n}: ${which || "held-out corrections"}. Only ids and sha256 are kept.`);
  }
  fact("Seed", lin.seed === undefined ? "—" : String(lin.seed));
  if (lin.software)
    fact(
      "Software",
      joinEntries(lin.software, (k, s) => `${k} ${s}`),
    );
  return dl;
}

function joinEntries(object, format) {
  return Object.entries(object)
    .map(([k, v]) => format(k, v))
    .join(", ");
}

function gateReport(report) {
  if (!report) return null;
  return h(
    "div",
    { class: "gate" },
    h(
      "h3",
      {},
      "Gate: ",
      report.accepted ? badge("accepted", "production") : badge("rejected", "rejected"),
      ` against ${report.against || "—"}`,
    ),
    h(
      "ul",
      { class: "reasons" },
      (report.reasons || []).map((r) => h("li", { text: r })),
    ),
    recalledNote(report),
  );
}

/** "v0001's scores on 40 of 47 locked images were recalled from its record (the same images, the same version); 7 were scored now." */
function recalledNote(report) {
  const recalled = report.production?.locked_recalled;
  const n = report.locked?.length;
  if (!report.against || typeof recalled !== "number" || !n) return null;
  const fresh = n - recalled;
  return h("p", {
    class: "muted",
    "data-testid": "gate-recalled",
    text:
      `${report.against}'s scores on ${recalled} of ${n} locked images were recalled from its ` +
      `record (the same images, the same version)` +
      (fresh ? `; ${fresh} were scored now.` : "."),
  });
}

/** The version's events: "2026-11-29 10:00 promoted: promoted by ana over the gate's rejection: ...". */
function history(events) {
  if (!events?.length) return null;
  return h(
    "div",
    { class: "history" },
    h("h3", { text: "History" }),
    h(
      "ul",
      { class: "reasons" },
      events.map((e) => h("li", { text: `${fmtDate(e.at)} ${e.event}${e.reason ? `: ${e.reason}` : ""}` })),
    ),
  );
}

function correctionsTable({ trained, heldOut }, index) {
  if (!trained.length && !heldOut.length) return empty("This version was trained on no corrections.");
  return h(
    "table",
    { class: "table compact" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        CORRECTION_COLUMNS.map((t) => h("th", { text: t })),
      ),
    ),
    h(
      "tbody",
      {},
      trained.map((d) => correctionRow(d.key, index.get(d.key), d.weight, d.erased ? "trained (erased)" : "trained")),
      heldOut.map((id) => correctionRow(id, index.get(id), null, "held out")),
    ),
  );
}

/** One correction `id` (record `c` when known), its use and its training weight (null: none). */
function correctionRow(id, c, weight, use) {
  return h(
    "tr",
    { "data-testid": "lineage-correction" },
    h("td", { class: "mono", text: shortId(id) }),
    h("td", { text: c ? `#${c.seq}` : "—" }),
    h("td", { text: use }),
    h("td", { text: c ? c.author || "—" : "—" }),
    h("td", { text: c ? c.model_version : "—" }),
    h("td", { class: "num", text: c ? fmtNum(c.dice_vs_prediction, 3) : "—" }),
    h("td", { class: "num", text: weight === null ? "—" : fmtNum(weight, 1) }),
    h("td", { class: "muted", text: c ? fmtDate(c.created_at) : "—" }),
  );
}
