// The viewer for a volume analysis: axial, coronal and sagittal planes (one large, two small)
// cut in the browser from the volume fetched once, a crosshair linking them, window/level
// with CT presets, and the 2D viewer's correction tools on any slice of the main plane,
// writing into the label volume; the click tool on every plane (volumeclicks.js);
// interpolation between edited slices; submit.

import { api, projectPath } from "./api.js";
import { append, badge, clear, fmtInt, h, toast } from "./dom.js";
import { imagePanel } from "./panels.js";
import { PLANES, pixelOf } from "./planes.js";
import { isTyping } from "./stage.js";
import { LassoTool, PaintTool } from "./tools.js";
import { ViewerView } from "./viewer.js";
import { VolumeClickTool } from "./volumeclicks.js";
import { renderVolumeDisplay, volumeMeasures, volumeToolbar } from "./volumecontrols.js";
import { interpolateEdited, submitVolume } from "./volumeedits.js";
import { VolumeLabels } from "./volumelabels.js";
import { Pane } from "./volumepane.js";
import { CrosshairTool, WindowTool } from "./volumetools.js";
import { fetchVoxels, openVoxels, readVoxels } from "./voxels.js";

export class VolumeView extends ViewerView {
  constructor(root, ctx, analysisId, analysis) {
    super(root, ctx, analysisId);
    this.analysis = analysis;
  }

  get stage() {
    return this.main?.stage;
  }

  get buffer() {
    return this.main?.buffer;
  }

  get main() {
    return this.panes?.find((p) => p.plane === this.mainPlane);
  }

  get colors() {
    return this.labels.map((l) => l.color);
  }

  // -- layout ------------------------------------------------------------------------------

  build() {
    this.tool = this.canEdit ? "brush" : "crosshair";
    this.mainPlane = "axial";
    const head = this.buildHead();
    this.panes = PLANES.map((p) => new Pane(this, p));
    this.stageWrap = h(
      "div",
      { class: "volume-grid", "data-testid": "volume-grid" },
      this.panes.map((p) => p.el),
    );
    this.progress = h("div", { class: "volume-progress", role: "status", text: "Loading the volume…" });
    const keys = this.canEdit
      ? "Wheel, ↑ ↓, PgUp PgDn: slice · Ctrl+wheel: zoom · X crosshair · W window · B E L tools · C clicks (any plane) · [ ] size · 1–9 label · I interpolate · Z Y undo/redo"
      : "Wheel, ↑ ↓, PgUp PgDn: slice · Ctrl+wheel: zoom · click: crosshair · W window";
    const hint = h("div", { class: "stage-hint" }, h("span", { text: keys }));
    this.side = h("aside", { class: "viewer-side" });
    const col = h("div", { class: "stage-col" }, this.progress, this.stageWrap, hint);
    const body = h("div", { class: "viewer-body" }, col, this.side);
    this.root.append(h("div", { class: "viewer" }, head, this.buildToolbar(), body));
    this.onKey = (e) => this.key(e);
    window.addEventListener("keydown", this.onKey);
    this.onUnload = (e) => {
      if (this.dirty) e.preventDefault();
    };
    window.addEventListener("beforeunload", this.onUnload);
    this.layout();
  }

  buildToolbar() {
    const bar = volumeToolbar(this);
    this.setTool(this.tool);
    if (this.canEdit) this.setLabel(this.label);
    return bar;
  }

  /** The main plane takes the large cell; the other two sit beside it. */
  layout() {
    const order = [this.mainPlane, ...PLANES.filter((p) => p !== this.mainPlane)];
    order.forEach((plane, i) => {
      const pane = this.panes.find((p) => p.plane === plane);
      pane.el.classList.toggle("main", i === 0);
      pane.el.dataset.slot = String(i);
    });
    this.stageWrap.dataset.main = this.mainPlane;
    this.assignHandlers();
  }

  /** The tool works on the main plane (the click tool on every plane); the others move the crosshair. */
  assignHandlers() {
    for (const pane of this.panes) {
      const main = pane.plane === this.mainPlane;
      if (this.tool === "clicks") pane.stage.handler = this.handlers.clicks.on(pane);
      else pane.stage.handler = main ? this.handlers[this.tool] : new CrosshairTool(this, pane);
      pane.stage.canvas.classList.toggle("tool-paint", !main || this.tool !== "lasso");
      pane.stage.canvas.classList.toggle("tool-lasso", main && this.tool === "lasso");
      pane.stage.requestRender();
    }
  }

  setMainPlane(plane) {
    if (this._handlers?.lasso) this._handlers.lasso.cancel();
    this.mainPlane = plane;
    this.layout();
    for (const p of this.panes) p.stage.fitted = false;
  }

  // -- loading -----------------------------------------------------------------------------

  async load() {
    const signal = this.abort.signal;
    const base = projectPath(this.project, `/analyses/${encodeURIComponent(this.analysisId)}`);
    this.image = await api(projectPath(this.project, `/images/${encodeURIComponent(this.analysis.image_id)}`), {
      signal,
    });
    const onProgress = (f) => {
      this.progress.textContent = `Loading the volume… ${Math.round(f * 100)} %`;
    };
    // The labels are asked for once the image's answer has begun: the server has decoded the
    // volume's geometry by then, and the labels' request reuses it.
    const opened = await openVoxels(`${base}/voxels?kind=image`, signal);
    const [volume, labels] = await Promise.all([
      readVoxels(opened, onProgress),
      fetchVoxels(`${base}/voxels?kind=labels`, { signal }),
    ]);
    if (this.destroyed) return;
    this.volume = volume;
    this.prediction = labels.data.slice();
    this.labels3d = new VolumeLabels(volume.shape, labels.data);
    this.labels3d.onchange = () => this.labelsChanged();
    this.wl = volume.window ? { ...volume.window } : { center: 0, width: 1000 };
    this.wlDefault = { ...this.wl };
    this.lut = volume.dtype === "int16" ? new Uint32Array(65536) : null;
    this.fillLut();
    this.cursor = volume.shape.map((n) => Math.floor(n / 2));
    this.renderHead();
    this.renderSide();
    for (const p of this.panes) p.setVolume(this.cursor[p.axis]);
    this.progress.hidden = true;
    for (const p of this.panes) p.stage.canvas.dataset.ready = "1";
    this.stageWrap.dataset.ready = "1";
    this.updateCounts();
  }

  fail(err) {
    if (this.destroyed || err?.name === "AbortError") return;
    this.progress.hidden = false;
    this.progress.textContent = `Could not open this volume: ${err.message || err}`;
    this.progress.classList.add("stage-error");
    toast(err.message || String(err), "error", 8000);
  }

  destroy() {
    this.destroyed = true;
    this.abort.abort();
    window.removeEventListener("keydown", this.onKey);
    window.removeEventListener("beforeunload", this.onUnload);
    for (const p of this.panes) p.destroy();
    clearTimeout(this.countTimer);
  }

  renderHead() {
    const [X, Y, Z] = this.volume.shape;
    const mm = this.volume.spacing.map((s) => +s.toPrecision(3)).join(" × ");
    this.title.textContent = this.image.filename || this.image.id;
    clear(this.chips);
    this.stateBadge = badge(
      this.analysis.corrected ? "corrected" : "to review",
      this.analysis.corrected ? "corrected" : "review",
    );
    append(
      this.chips,
      h("span", { class: "chip", text: `Model ${this.analysis.model_version}` }),
      h("span", { class: "chip", "data-testid": "volume-shape", text: `${X} × ${Y} × ${Z} voxels` }),
      h("span", { class: "chip", text: `${mm} mm` }),
      this.stateBadge,
    );
  }

  renderSide() {
    clear(this.side);
    this.resultBox = h("div", { class: "result", "data-testid": "result", hidden: true });
    this.displayCard = h("div", { class: "panel" });
    const { el, editedCells } = volumeMeasures(this.analysis, this.labels, this.canEdit);
    this.editedCells = editedCells;
    const clicks = this.canEdit ? this.handlers.clicks.panel : null;
    append(this.side, this.resultBox, clicks, this.displayCard, el, imagePanel(this.analysis, this.image));
    renderVolumeDisplay(this.displayCard, this);
  }

  // -- slices, crosshair, window ----------------------------------------------------------------

  /** Show slice `index` in `pane`; the cursor follows along the pane's axis. */
  scrollTo(pane, index) {
    if (!this.volume) return;
    pane.show(index);
    this.cursor[pane.axis] = pane.index;
    for (const p of this.panes) if (p !== pane) p.stage.requestRender();
  }

  focusPane(pane) {
    this.focused = pane;
  }

  /** Move the crosshair to voxel [x, y, z]: each other plane shows the slice through it. */
  setCursor(voxel) {
    this.cursor = voxel.map((v, i) => Math.max(0, Math.min(this.volume.shape[i] - 1, v)));
    for (const p of this.panes) {
      const { index } = pixelOf(this.volume.shape, p.plane, this.cursor);
      if (index !== p.index) p.show(index);
      else p.stage.requestRender();
    }
    this.stageWrap.dataset.cursor = this.cursor.join(",");
  }

  fillLut() {
    if (!this.lut) return;
    const low = this.wl.center - this.wl.width / 2;
    const k = 255 / this.wl.width;
    for (let i = 0; i < 65536; i++) {
      const g = Math.max(0, Math.min(255, Math.round((i - 32768 - low) * k)));
      this.lut[i] = 0xff000000 | (g * 0x010101);
    }
  }

  setWindow(center, width) {
    this.wl = { center, width: Math.max(width, 1e-3) };
    this.fillLut();
    if (this.centerInput) this.centerInput.value = String(Math.round(center));
    if (this.widthInput) this.widthInput.value = String(Math.round(this.wl.width));
    for (const p of this.panes) p.renderImage();
    this.stageWrap.dataset.window = `${center} ${this.wl.width}`;
  }

  // -- tools, edits, keys ----------------------------------------------------------------------

  get handlers() {
    if (!this._handlers) {
      const paint = new PaintTool(this);
      this._handlers = {
        brush: paint,
        eraser: paint,
        lasso: new LassoTool(this),
        crosshair: new CrosshairTool(this),
        window: new WindowTool(this),
      };
      if (this.canEdit) this._handlers.clicks = new VolumeClickTool(this);
    }
    return this._handlers;
  }

  setTool(tool) {
    if (!this.handlers[tool] || (!this.canEdit && !["crosshair", "window"].includes(tool))) return;
    if (tool === "clicks" && this.handlers.clicks.disabled) return;
    if (this._handlers.lasso && tool !== "lasso") this._handlers.lasso.cancel();
    this.tool = tool;
    for (const b of this.toolButtons || []) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
    if (this.panes) this.assignHandlers();
    if (this.canEdit) this.handlers.clicks.panel.hidden = tool !== "clicks";
    this.updateUndo();
  }

  updateUndo() {
    if (!this.undoBtn) return;
    this.undoBtn.disabled = !this.labels3d?.canUndo && !this.undoesClick;
    this.redoBtn.disabled = !this.labels3d?.canRedo;
  }

  /** After a tool's action on the main plane: its slice patch goes into the volume's history. */
  historyChanged() {
    const main = this.main;
    if (main?.buffer?.undoStack.length && this.labels3d) {
      for (const patch of main.buffer.undoStack)
        this.labels3d.recordSliceEdit(main.plane, main.index, patch, this.label);
      main.buffer.undoStack = [];
      main.buffer.redoStack = [];
      this.labelsChanged(main);
    }
    this.updateUndo();
  }

  /** The label volume changed: redraw the overlays (but `except`'s, already drawn). */
  labelsChanged(except = null) {
    this.dirty = true;
    for (const p of this.panes) if (p !== except && p.buffer) p.renderLabels();
    this.scheduleCounts();
    this.updateUndo();
  }

  /** Undo takes back the last click while the click tool has points, else the last edit. */
  undo() {
    if (this.undoesClick) this.handlers.clicks.undo();
    else this.labels3d?.undo();
  }

  redo() {
    this.labels3d?.redo();
  }

  reset() {
    if (this.canEdit) this.handlers.clicks.forget();
    this.labels3d?.replaceAll(this.prediction);
  }

  updateCounts() {
    if (!this.labels3d || !this.editedCells?.length) return;
    const counts = this.labels3d.counts(Math.max(...this.labels.map((l) => l.value)));
    for (const cell of this.editedCells) cell.textContent = `${fmtInt(counts[Number(cell.dataset.value)])} vox`;
  }

  key(e) {
    if (isTyping(e) || e.altKey || !this.volume) return;
    const pane = this.focused && this.panes.includes(this.focused) ? this.focused : this.main;
    const steps = { ArrowUp: -1, ArrowDown: 1, PageUp: -10, PageDown: 10 };
    const lower = e.key.toLowerCase();
    if (e.key in steps && !e.ctrlKey && !e.metaKey) this.scrollTo(pane, pane.index + steps[e.key]);
    else if (lower === "x" && !e.ctrlKey) this.setTool("crosshair");
    else if (lower === "w" && !e.ctrlKey) this.setTool("window");
    else if (lower === "i" && !e.ctrlKey && this.canEdit) this.interpolate();
    else return super.key(e);
    e.preventDefault();
  }

  // -- interpolation and submit ---------------------------------------------------------------

  interpolate() {
    return interpolateEdited(this);
  }

  canSubmit() {
    return Boolean(this.labels3d);
  }

  sendCorrection() {
    return submitVolume(this);
  }
}
