// Erasure from an image's page (admins): this image, its study or its patient. The dialog
// names what will be removed (from the server's preview) and asks why; the erasure is a job.

import { api, projectPath } from "./api.js";
import { clear, h, toast } from "./dom.js";
import { field, openDialog } from "./forms.js";

const POLL_MS = 700;

/** The "Erase…" button of an image's page, or null for a non-admin. */
export function eraseButton(ctx, image, onErased) {
  if (ctx.me.role !== "admin") return null;
  return h("button", {
    class: "btn btn-small btn-danger",
    type: "button",
    "data-testid": "erase",
    onclick: () => erase(ctx.project, image, onErased),
    text: "Erase…",
  });
}

function scopes(image) {
  const meta = image.metadata || {};
  const out = [["image", "This image", image.id, image.filename]];
  if (meta.StudyInstanceUID) out.push(["study", "Its whole study", meta.StudyInstanceUID, meta.StudyInstanceUID]);
  if (meta.PatientID) out.push(["patient", "All of its patient's data", meta.PatientID, meta.PatientID]);
  return out;
}

function plural(n, word) {
  return `${n} ${word}${n === 1 ? "" : word.endsWith("s") ? "" : "s"}`;
}

/** "1 image, 2 analyses, 1 correction and 0 reference pairs" from a preview's counts. */
export function describe(counts) {
  return [
    plural(counts.image || 0, "image"),
    `${counts.analysis || 0} ${counts.analysis === 1 ? "analysis" : "analyses"}`,
    plural(counts.correction || 0, "correction"),
    plural(counts.reference || 0, "reference pair"),
  ].join(", ");
}

async function erase(project, image, onErased) {
  const options = scopes(image);
  let chosen = options[0];
  let preview = null;
  const summary = h("div", { class: "erase-summary", "data-testid": "erase-summary" });
  const reason = h("textarea", {
    rows: "3",
    maxlength: "2000",
    required: true,
    placeholder: "e.g. the patient withdrew consent (kept in the audit trail)",
    "data-testid": "erase-reason",
  });
  const show = async () => {
    clear(summary).append(h("p", { class: "muted", text: "Finding what would be removed…" }));
    const body = { scope: chosen[0], value: chosen[2] };
    preview = await api(projectPath(project, "/erasures/preview"), { method: "POST", json: body });
    clear(summary).append(previewText(preview, chosen));
  };
  const radios = options.map((o) =>
    h(
      "label",
      { class: "radio" },
      h("input", {
        type: "radio",
        name: "erase-scope",
        value: o[0],
        checked: o === chosen,
        onchange: () => {
          chosen = o;
          show().catch((err) => clear(summary).append(h("p", { class: "error", text: err.message })));
        },
      }),
      h("span", { text: `${o[1]}: ${o[3]}` }),
    ),
  );
  const opened = openDialog({
    title: "Erase patient data",
    body: [h("div", { class: "radios" }, radios), summary, field("Why", reason)],
    ok: "Erase",
    danger: true,
    testid: "erase-dialog",
    onOk: () => request(project, chosen, reason.value.trim(), preview),
  });
  await show().catch((err) => clear(summary).append(h("p", { class: "error", text: err.message })));
  const out = await opened;
  if (out) await follow(project, out, onErased);
}

function previewText(preview, chosen) {
  const versions = preview.versions.length
    ? `Model versions ${preview.versions.join(", ")} trained on it: they stay, and the Models page marks them as having seen erased data.`
    : "No model version trained on it.";
  return h(
    "div",
    {},
    h("p", {
      class: "strong",
      text: `Removes ${describe(preview.counts)} of ${chosen[1].toLowerCase()}, and their files.`,
    }),
    h("p", { class: "muted small", text: versions }),
    h("p", { class: "muted small", text: "This cannot be undone. The audit trail keeps who erased, when and why." }),
  );
}

async function request(project, chosen, reason, preview) {
  if (!preview) throw new Error("wait for the list of what would be removed");
  if (!reason) throw new Error("say why the data is erased");
  const body = { scope: chosen[0], value: chosen[2], reason };
  return api(projectPath(project, "/erasures"), { method: "POST", json: body });
}

async function follow(project, out, onErased) {
  toast("Erasing…", "info");
  for (;;) {
    const job = await api(projectPath(project, `/jobs/${encodeURIComponent(out.job.id)}`));
    if (job.state === "succeeded") {
      toast(
        `Erased: ${describe({ image: job.result.images, analysis: job.result.analyses, correction: job.result.corrections, reference: job.result.references })}`,
        "ok",
        8000,
      );
      onErased();
      return;
    }
    if (job.state === "failed" || job.state === "cancelled") {
      toast(`The erasure failed: ${job.error || job.state}`, "error", 10000);
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
