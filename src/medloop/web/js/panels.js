// The viewer's side panels that only show data: measurements and the image's facts.
// Every value (file names, metadata) goes in as text.

import { fmtDate, fmtInt, fmtNum, h, shortId } from "./dom.js";

/** Per-label measurements of the model; with `canEdit`, a live "Your mask" area per label. */
export function measurementsPanel(analysis, image, labels, canEdit) {
  const editedCells = [];
  const blocks = (analysis.measurements || []).map((m) => {
    const lab = labels.find((l) => l.value === m.value);
    const sw = h("span", { class: "swatch" });
    sw.style.backgroundColor = lab ? lab.color : "#888"; // CSSOM, allowed by the CSP
    const dl = h("dl", { class: "facts measures" });
    const fact = (k, v) => dl.append(h("dt", { text: k }), h("dd", { class: "num", text: v }));
    fact("Area", `${fmtInt(m.area_px)} px`);
    fact("Area mm²", m.area_mm2 == null ? "—" : `${fmtNum(m.area_mm2, 2)} mm²`);
    fact("Components", fmtInt(m.components));
    const largestMm = m.largest_component_mm2 == null ? "" : ` · ${fmtNum(m.largest_component_mm2, 2)} mm²`;
    fact("Largest", `${fmtInt(m.largest_component_px)} px${largestMm}`);
    if (canEdit) {
      const cell = h("dd", {
        class: "num",
        "data-testid": `edited-area-${m.value}`,
        dataset: { value: String(m.value) },
        text: "—",
      });
      dl.append(h("dt", { title: "Area of the mask as you have corrected it", text: "Your mask" }), cell);
      editedCells.push(cell);
    }
    return h(
      "div",
      { class: "measure" },
      h("div", { class: "measure-head" }, sw, h("span", { class: "strong", text: m.name })),
      dl,
    );
  });
  const el = h(
    "div",
    { class: "panel", "data-testid": "measurements" },
    h("h3", { text: "Measurements (model)" }),
    blocks.length ? blocks : h("p", { class: "muted small", text: "No measurements." }),
    image.spacing_mm
      ? null
      : h("p", { class: "muted small", text: "No pixel spacing in the file: areas in mm² are unknown." }),
  );
  return { el, editedCells };
}

/** File name, size, spacing, model, uncertainty, and the image's metadata. */
export function imagePanel(analysis, image) {
  const dl = h("dl", { class: "facts" });
  const fact = (k, v) => dl.append(h("dt", { text: k }), h("dd", { text: v }));
  fact("File", image.filename);
  fact("Size", `${image.width} × ${image.height} px, ${image.channels === 1 ? "gray" : `${image.channels} channels`}`);
  if (image.metadata?.bits) fact("Bit depth", String(image.metadata.bits));
  fact("Spacing", image.spacing_mm ? `${image.spacing_mm.map((s) => fmtNum(s, 4)).join(" × ")} mm` : "unknown");
  fact("Model", analysis.model_version);
  fact("Uncertainty", fmtNum(analysis.uncertainty, 4));
  fact("Analysed", fmtDate(analysis.created_at));
  fact("Analysis", shortId(analysis.id));
  fact("Image", shortId(image.id));
  const meta = Object.entries(image.metadata || {});
  const details = meta.length
    ? h(
        "details",
        { class: "meta" },
        h("summary", { text: `Metadata (${meta.length})` }),
        h(
          "dl",
          { class: "facts small", "data-testid": "metadata" },
          meta.flatMap(([k, v]) => [
            h("dt", { text: k }),
            h("dd", { text: typeof v === "object" ? JSON.stringify(v) : String(v) }),
          ]),
        ),
      )
    : null;
  return h("div", { class: "panel" }, h("h3", { text: "Image" }), dl, details);
}
