// What a volume correction sends to the server: the edited slices of one label, to be
// interpolated between (shape-based, server-side), and the whole label volume, gzip'd.

import { ApiError, api, projectPath, uploadWithProgress } from "./api.js";
import { fmtInt, toast } from "./dom.js";
import { sliceGeometry } from "./planes.js";
import { gunzip, gzipBlob } from "./voxels.js";

/** The current label's 0/1 masks on `indices` of `plane`, one after the other. */
function labelMasks(view, plane, indices) {
  const g = sliceGeometry(view.volume.shape, plane, 0);
  const size = g.rows * g.cols;
  const masks = new Uint8Array(indices.length * size);
  const cut = new Uint8Array(size);
  indices.forEach((k, n) => {
    view.labels3d.slice(plane, k, cut);
    for (let i = 0; i < size; i++) masks[n * size + i] = cut[i] === view.label ? 1 : 0;
  });
  return masks;
}

/** Interpolate the view's label between the main plane's edited slices; one undoable step. */
export async function interpolateEdited(view) {
  const plane = view.main.plane;
  const edited = view.labels3d.editedSlices(plane, view.label);
  if (edited.length < 2) {
    toast(`Edit at least two ${plane} slices with this label first (edited: ${edited.length})`, "error");
    return;
  }
  const form = new FormData();
  form.append("file", await gzipBlob(labelMasks(view, plane, edited)), "slices.gz");
  form.append("plane", plane);
  form.append("indices", edited.join(","));
  view.interpBtn.disabled = true;
  try {
    const path = projectPath(view.project, `/analyses/${encodeURIComponent(view.analysisId)}/interpolate`);
    const res = await api(path, { method: "POST", body: form, raw: true });
    const header = res.headers.get("x-slice-indices");
    const indices = header ? header.split(",").map(Number) : [];
    const filled = await gunzip(res.body);
    const changed = view.labels3d.applyMasks(plane, indices, filled, view.label);
    toast(`Interpolated ${indices.length} slices (${fmtInt(changed)} voxels changed)`, "ok");
  } catch (err) {
    toast(err instanceof ApiError ? err.message : `Interpolation failed: ${err}`, "error", 8000);
  } finally {
    view.interpBtn.disabled = false;
  }
}

/** POST the whole label volume (uint8, x fastest, gzip'd) with the effort record. */
export async function submitVolume(view) {
  const form = new FormData();
  form.append("file", await gzipBlob(view.labels3d.data), "labels.u8.gz");
  view.effort.appendTo(form);
  const path = projectPath(view.project, `/analyses/${encodeURIComponent(view.analysisId)}/corrections/voxels`);
  return uploadWithProgress(path, form, () => {});
}
