// Viewer and correction: the image with the model's label map, measurements beside it,
// and (for annotators and admins) the tools to correct the label map and submit it.

import { ApiError, api, apiBlob, projectPath, uploadWithProgress } from "./api.js";
import { ClickTool } from "./clicks.js";
import { openNextInQueue, renderCorrectionResult } from "./correctionresult.js";
import { append, badge, clear, fmtInt, fmtNum, h, toast } from "./dom.js";
import { Effort } from "./effort.js";
import { eraseButton } from "./erase.js";
import { fmtWl, renderImageDisplay, renderImageWindow } from "./imagecontrols.js";
import { LabelBuffer } from "./labels.js";
import { imagePanel, measurementsPanel } from "./panels.js";
import { decodeLabelPng, encodeLabelPng } from "./png.js";
import { roleAtLeast } from "./roles.js";
import { Stage } from "./stage.js";
import { imageToolbar, toolbarKey } from "./toolbar.js";
import { LassoTool, PaintTool } from "./tools.js";
import { browserDecodable, ClientWindow, ServerWindow } from "./window.js";

export function mountViewer(root, ctx, analysisId) {
  const view = new ViewerView(root, ctx, analysisId);
  view.load().catch((err) => view.fail(err));
  return () => view.destroy();
}

export class ViewerView {
  constructor(root, ctx, analysisId) {
    this.root = root;
    this.ctx = ctx;
    this.project = ctx.project;
    this.analysisId = analysisId;
    this.canEdit = roleAtLeast(ctx.me.role, "annotator");
    this.labels = this.project.labels;
    this.tool = "brush";
    this.label = this.labels.length ? this.labels[0].value : 1;
    this.size = 6;
    this.dirty = false;
    this.destroyed = false;
    this.effort = new Effort(); // edits and active seconds since the last submit
    this.abort = new AbortController();
    this.build();
  }

  get labelColor() {
    const lab = this.labels.find((l) => l.value === this.label);
    return lab ? lab.color : "#ff0000";
  }

  fail(err) {
    if (this.destroyed) return;
    if (err && err.name === "AbortError") return;
    clear(this.stageWrap);
    this.stageWrap.append(
      h("div", { class: "stage-error", text: `Could not open this analysis: ${err.message || err}` }),
    );
  }

  destroy() {
    this.destroyed = true;
    this.abort.abort();
    window.removeEventListener("keydown", this.onKey);
    window.removeEventListener("beforeunload", this.onUnload);
    if (this.stage) this.stage.destroy();
    if (this.serverWindow?.bitmap) this.serverWindow.bitmap.close();
    clearTimeout(this.wlTimer);
  }

  // -- layout ------------------------------------------------------------------------------

  /** The title bar (back link, title, chips); sets ``this.title`` and ``this.chips``. */
  buildHead() {
    this.title = h("h1", { class: "viewer-title", text: "Loading…" });
    this.chips = h("div", { class: "chips" });
    return h(
      "div",
      { class: "viewer-head" },
      h("a", { class: "back", href: "#/worklist", text: "← Worklist" }),
      this.title,
      this.chips,
    );
  }

  build() {
    const head = this.buildHead();
    this.stageWrap = h("div", { class: "stage-wrap" });
    this.zoomReadout = h("span", { class: "zoom-readout", text: "" });
    const hint = h(
      "div",
      { class: "stage-hint" },
      h("span", {
        text: this.canEdit
          ? "Wheel: zoom · right-drag or Space+drag: pan · B brush · E eraser · L lasso · C clicks · [ ] size · 1–9 label · Z undo · Y redo"
          : "Wheel: zoom · drag: pan · F: fit",
      }),
      this.zoomReadout,
    );
    this.side = h("aside", { class: "viewer-side" });
    const body = h("div", { class: "viewer-body" }, h("div", { class: "stage-col" }, this.stageWrap, hint), this.side);
    this.root.append(h("div", { class: "viewer" }, head, this.canEdit ? this.buildToolbar() : null, body));
    this.stage = new Stage(this.stageWrap, { panWithLeft: !this.canEdit });
    this.stage.onviewchange = (s) => {
      this.zoomReadout.textContent = `${Math.round(s.scale * 100)} %`;
    };
    this.onKey = (e) => this.key(e);
    window.addEventListener("keydown", this.onKey);
    this.onUnload = (e) => {
      if (this.dirty) e.preventDefault(); // the browser asks before unsaved edits are lost
    };
    window.addEventListener("beforeunload", this.onUnload);
  }

  buildToolbar() {
    const bar = imageToolbar(this);
    this.setTool("brush");
    this.setLabel(this.label);
    this.historyChanged();
    return bar;
  }

  // -- loading -----------------------------------------------------------------------------

  async load() {
    const signal = this.abort.signal;
    const p = this.project;
    this.analysis = await api(projectPath(p, `/analyses/${encodeURIComponent(this.analysisId)}`), { signal });
    this.image = await api(projectPath(p, `/images/${encodeURIComponent(this.analysis.image_id)}`), { signal });
    this.renderHead();
    this.renderSide();
    const [maskBlob, fileBlob] = await Promise.all([
      apiBlob(projectPath(p, `/analyses/${encodeURIComponent(this.analysisId)}/mask`), signal),
      apiBlob(projectPath(p, `/images/${encodeURIComponent(this.image.id)}/file`), signal),
    ]);
    const mask = await decodeLabelPng(maskBlob);
    this.prediction = mask.labels;
    this.buffer = new LabelBuffer(mask.width, mask.height, mask.labels);
    this.buffer.onchange = (rect) => {
      this.stage.updateOverlay(rect);
      this.dirty = true;
      this.scheduleCounts();
    };
    this.stage.setLabels(
      this.buffer,
      this.labels.map((l) => l.color),
    );
    await this.loadImage(fileBlob);
    if (this.destroyed) return;
    if (this.canEdit) this.stage.handler = this.handlers[this.tool];
    this.stage.canvas.dataset.ready = "1";
    this.stage.canvas.dataset.imageWidth = String(mask.width);
    this.stage.canvas.dataset.imageHeight = String(mask.height);
    this.updateCounts();
  }

  async loadImage(fileBlob) {
    let bitmap = null;
    if (await browserDecodable(fileBlob, this.image)) {
      try {
        bitmap = await createImageBitmap(fileBlob);
      } catch {
        bitmap = null;
      }
    }
    if (bitmap && (bitmap.width !== this.image.width || bitmap.height !== this.image.height)) {
      bitmap.close(); // decoded differently from the server: let the server render it
      bitmap = null;
    }
    if (bitmap) {
      this.clientWindow = new ClientWindow(bitmap);
      bitmap.close();
      this.wl = { ...this.clientWindow.range };
      this.wlDefault = { ...this.wl };
      const shown = this.clientWindow.apply(this.wl.center, this.wl.width); // opaque, like the server's view
      this.stage.setImage(shown, this.clientWindow.width, this.clientWindow.height);
      this.wlSource = "browser";
    } else {
      this.serverWindow = new ServerWindow(
        projectPath(this.project, `/images/${encodeURIComponent(this.image.id)}/display`),
      );
      const bmp = await this.serverWindow.load();
      this.wl = { ...this.serverWindow.range };
      this.wlDefault = { ...this.wl };
      this.stage.setImage(bmp, bmp.width, bmp.height);
      this.wlSource = "server";
    }
    renderImageWindow(this);
  }

  // -- head and side panel ---------------------------------------------------------------------

  renderHead() {
    const a = this.analysis;
    this.title.textContent = this.image.filename || this.image.id;
    this.title.title = this.title.textContent; // elided when long: whole on hover
    clear(this.chips);
    this.state = a.corrected ? "corrected" : "to review";
    this.stateBadge = badge(this.state, a.corrected ? "corrected" : "review");
    append(
      this.chips,
      h("span", { class: "chip", text: `Model ${a.model_version}` }),
      h("span", { class: "chip", text: `Uncertainty ${fmtNum(a.uncertainty, 3)}` }),
      h("span", { class: "chip", text: `${this.image.width} × ${this.image.height} px` }),
      this.stateBadge,
    );
  }

  renderSide() {
    clear(this.side);
    this.resultBox = h("div", { class: "result", "data-testid": "result", hidden: true });
    this.displayCard = h("div", { class: "panel" });
    const erase = eraseButton(this.ctx, this.image, () => {
      this.dirty = false;
      location.hash = "#/worklist";
    });
    append(
      this.side,
      this.resultBox,
      this.canEdit ? this.handlers.clicks.panel : null,
      this.displayCard,
      this.measurements(),
      imagePanel(this.analysis, this.image),
      erase ? h("div", { class: "panel erase-panel" }, h("h3", { text: "Patient data" }), erase) : null,
    );
    renderImageDisplay(this.displayCard, this);
  }

  zoomTo(scale) {
    const s = this.stage;
    s.zoomAt(scale / s.scale, s.cssWidth / 2, s.cssHeight / 2);
  }

  setWindow(center, width) {
    this.wl.center = center;
    this.wl.width = Math.max(width, 1e-6);
    this.levelOut.textContent = fmtWl(center);
    this.widthOut.textContent = fmtWl(this.wl.width);
    if (this.clientWindow) {
      this.stage.setImage(
        this.clientWindow.apply(center, this.wl.width),
        this.clientWindow.width,
        this.clientWindow.height,
      );
      return;
    }
    clearTimeout(this.wlTimer);
    this.wlTimer = setTimeout(async () => {
      try {
        const bmp = await this.serverWindow.load(this.wl.center, this.wl.width);
        if (!this.destroyed) this.stage.setImage(bmp, bmp.width, bmp.height);
        this.stage.canvas.dataset.window = `${this.wl.center} ${this.wl.width}`;
      } catch (err) {
        if (err.name !== "AbortError") toast(`Window: ${err.message}`, "error");
      }
    }, 150);
  }

  measurements() {
    const { el, editedCells } = measurementsPanel(this.analysis, this.image, this.labels, this.canEdit);
    this.editedCells = editedCells;
    return el;
  }

  scheduleCounts() {
    if (this.countTimer) return;
    this.countTimer = setTimeout(() => {
      this.countTimer = null;
      this.updateCounts();
    }, 120);
  }

  updateCounts() {
    if (!this.buffer || !this.editedCells?.length) return;
    const counts = this.buffer.counts(Math.max(...this.labels.map((l) => l.value)));
    for (const cell of this.editedCells) cell.textContent = `${fmtInt(counts[Number(cell.dataset.value)])} px`;
  }

  // -- tools and keys --------------------------------------------------------------------------

  get handlers() {
    if (!this._handlers) {
      const paint = new PaintTool(this);
      this._handlers = { brush: paint, eraser: paint, lasso: new LassoTool(this), clicks: new ClickTool(this) };
    }
    return this._handlers;
  }

  setTool(tool) {
    if (tool === "clicks" && this.handlers.clicks.disabled) return;
    if (this._handlers?.lasso && tool !== "lasso") this._handlers.lasso.cancel();
    this.tool = tool;
    for (const b of this.toolButtons || []) b.setAttribute("aria-pressed", String(b.dataset.tool === tool));
    if (this.stage && this.buffer) this.stage.handler = this.handlers[tool];
    if (this.stage) {
      this.stage.canvas.classList.toggle("tool-lasso", tool === "lasso");
      this.stage.canvas.classList.toggle("tool-paint", tool !== "lasso");
      this.stage.requestRender();
    }
    if (this.canEdit) this.handlers.clicks.panel.hidden = tool !== "clicks";
    this.historyChanged();
  }

  /** The version cannot take clicks (409): say so, and turn the click tool off. */
  clicksUnavailable(message) {
    toast(message, "error", 10000);
    const button = this.toolButtons?.find((b) => b.dataset.tool === "clicks");
    if (button) {
      button.disabled = true;
      button.title = message;
    }
    if (this.tool === "clicks") this.setTool("brush");
  }

  /** Undo and the Z key take back the last click while the click tool has points. */
  get undoesClick() {
    return this.tool === "clicks" && Boolean(this._handlers?.clicks.canUndo);
  }

  setSize(size) {
    this.size = Math.max(1, Math.min(64, Math.round(size)));
    if (this.sizeInput) this.sizeInput.value = String(this.size);
    if (this.sizeOut) this.sizeOut.textContent = `${this.size} px`;
    if (this.stage) this.stage.requestRender();
  }

  setLabel(value) {
    if (!this.labels.some((l) => l.value === value)) return;
    this.label = value;
    for (const b of this.labelButtons || []) b.setAttribute("aria-pressed", String(Number(b.dataset.value) === value));
    if (this.tool === "eraser") this.setTool("brush");
    if (this.stage) this.stage.requestRender();
  }

  historyChanged() {
    if (!this.undoBtn) return;
    this.undoBtn.disabled = !this.buffer?.canUndo && !this.undoesClick;
    this.redoBtn.disabled = !this.buffer?.canRedo;
  }

  undo() {
    if (this.undoesClick) this.handlers.clicks.undo();
    else if (this.buffer?.undo()) this.historyChanged();
  }

  redo() {
    if (this.buffer?.redo()) this.historyChanged();
  }

  reset() {
    if (this.canEdit) this.handlers.clicks.forget();
    if (this.buffer && this.prediction && this.buffer.replaceAll(this.prediction)) this.historyChanged();
  }

  key(e) {
    toolbarKey(this, e);
  }

  // -- submit ----------------------------------------------------------------------------------

  /** Whether there is a label map to submit (a volume view has its own). */
  canSubmit() {
    return Boolean(this.buffer);
  }

  /** Sends the corrected label map with its effort record; resolves to the stored correction. */
  async sendCorrection() {
    const png = await encodeLabelPng(this.buffer.data, this.buffer.width, this.buffer.height);
    const form = new FormData();
    form.append("file", png, "correction.png");
    this.effort.appendTo(form);
    const path = projectPath(this.project, `/analyses/${encodeURIComponent(this.analysisId)}/corrections`);
    return uploadWithProgress(path, form, () => {});
  }

  async submit() {
    if (!this.canSubmit()) return;
    this.submitBtn.disabled = true;
    this.submitBtn.textContent = "Submitting…";
    try {
      if (this.tool === "lasso") this.handlers.lasso.close();
      await this.handlers.clicks.idle(); // the refine in flight lands first
      const res = await this.sendCorrection();
      this.effort = new Effort();
      this.handlers.clicks.forget(); // the next click starts a new interaction
      this.dirty = false;
      this.showResult(res);
      const corrected = badge("corrected", "corrected");
      this.stateBadge.replaceWith(corrected);
      this.stateBadge = corrected;
      toast("Correction saved", "ok");
    } catch (err) {
      toast(err instanceof ApiError ? err.message : `Submit failed: ${err}`, "error", 8000);
    } finally {
      this.submitBtn.disabled = false;
      this.submitBtn.textContent = "Submit correction";
    }
  }

  showResult(res) {
    renderCorrectionResult(this.resultBox, res, () => this.next());
  }

  next() {
    return openNextInQueue(this.project, this.analysisId);
  }
}
