// The click tool: points (and a box) sent to the analysis's refine route; each answer's
// label map goes into the label buffer the brush edits, so the brush can finish the job.
// Left click: a positive point for the current label; Shift+click or right click: a
// negative one; a drag: a box; a click on a point removes it.

import { ApiError, api, projectPath } from "./api.js";
import { append, clear, fmtInt, h, toast } from "./dom.js";
import { decodeLabelPng } from "./png.js";

export const HIT_PX = 9; // a click this close (CSS px) to a point removes it
const DRAG_PX = 5; // a press that moves farther is a box

export class ClickTool {
  constructor(view) {
    this.view = view;
    this.points = []; // {x, y, label, positive}, in the order placed
    this.box = null; // {rect: [x0, y0, x1, y1], label}
    this.accepted = { points: [], box: null }; // what the server last answered for
    this.synced = false; // the server holds `accepted` (so new points can be sent alone)
    this.busy = false;
    this.again = false; // changes made while a refine was in flight
    this.disabled = false;
    this.press = null;
    this.base = null; // the label map of the last answer: the prediction at first
    this.answer = null;
    this.epoch = 0; // bumped by forget(): an answer to an older request is dropped
    this.buildPanel();
  }

  get path() {
    const id = encodeURIComponent(this.view.analysisId);
    return projectPath(this.view.project, `/analyses/${id}/refine`);
  }

  // -- pointer (from the Stage) --------------------------------------------------------------

  down(ix, iy, e, screen) {
    this.press = { start: [ix, iy], screen, end: [ix, iy], moved: false, negative: e.shiftKey };
  }

  move(ix, iy, _e, screen) {
    if (!this.press) return;
    const [sx, sy] = this.press.screen;
    if (Math.hypot(screen[0] - sx, screen[1] - sy) > DRAG_PX) this.press.moved = true;
    this.press.end = [ix, iy];
  }

  up(ix, iy, _e, screen) {
    const press = this.press;
    this.press = null;
    if (!press || this.disabled) return;
    if (press.moved) this.addBox(press.start, [ix, iy]);
    else this.click(ix, iy, screen, !press.negative);
  }

  /** A right click (the Stage pans on a right drag): a negative point. */
  contextClick(ix, iy, screen) {
    if (!this.disabled) this.click(ix, iy, screen, false);
  }

  click(ix, iy, screen, positive) {
    const hit = this.points.findIndex((p) => {
      const [px, py] = this.view.stage.toScreen(p.x + 0.5, p.y + 0.5);
      return Math.hypot(px - screen[0], py - screen[1]) <= HIT_PX;
    });
    if (hit >= 0) {
      this.remove(hit);
      return;
    }
    const { width, height } = this.view.buffer;
    if (ix < 0 || iy < 0 || ix >= width || iy >= height) return;
    this.points.push({ x: Math.floor(ix), y: Math.floor(iy), label: this.view.label, positive });
    this.view.effort.click();
    this.changed();
  }

  addBox(a, b) {
    const { width, height } = this.view.buffer;
    const clampX = (v) => Math.min(width - 1, Math.max(0, Math.floor(v)));
    const clampY = (v) => Math.min(height - 1, Math.max(0, Math.floor(v)));
    const rect = [
      clampX(Math.min(a[0], b[0])),
      clampY(Math.min(a[1], b[1])),
      clampX(Math.max(a[0], b[0])),
      clampY(Math.max(a[1], b[1])),
    ];
    if (rect[2] <= rect[0] || rect[3] <= rect[1]) return;
    this.box = { rect, label: this.view.label };
    this.view.effort.click();
    this.changed();
  }

  // -- the list of points --------------------------------------------------------------------

  remove(index) {
    this.points.splice(index, 1);
    this.synced = false; // the server's clicks are no longer a prefix: send them all again
    this.changed();
  }

  removeBox() {
    this.box = null;
    this.synced = false;
    this.changed();
  }

  /** Remove the last point (or the box when nothing else is left). */
  undo() {
    if (this.points.length) this.remove(this.points.length - 1);
    else if (this.box) this.removeBox();
  }

  get canUndo() {
    return this.points.length > 0 || this.box !== null;
  }

  /** Forget every point and the box (the buffer is reset by the caller, or was submitted). */
  forget() {
    this.points = [];
    this.box = null;
    this.accepted = { points: [], box: null };
    this.synced = false;
    this.base = null;
    this.epoch += 1;
    this.renderPanel();
    this.redraw();
  }

  changed() {
    this.renderPanel();
    this.redraw();
    this.view.historyChanged();
    this.sync();
  }

  // -- talking to the server -----------------------------------------------------------------

  /** Send the points and box until the server's answer is for the latest of them. */
  sync() {
    if (this.busy) {
      this.again = true;
      return this.running;
    }
    this.setBusy(true);
    this.running = (async () => {
      try {
        do {
          this.again = false;
          await this.send();
        } while (this.again && !this.disabled && !this.view.destroyed);
      } finally {
        this.setBusy(false);
      }
    })();
    return this.running;
  }

  /** Resolves once no refine is running (the label buffer holds the latest answer). */
  idle() {
    return this.busy ? this.running : Promise.resolve();
  }

  /** The request that brings the server from `accepted` to the current points and box. */
  request() {
    const points = this.points.map((p) => ({ ...p }));
    const sent = this.accepted.points.length;
    const incremental = this.synced && (this.box === this.accepted.box || this.box !== null);
    const body = incremental ? { clicks: points.slice(sent) } : { clicks: points, reset: true };
    if (this.box && (!incremental || this.box !== this.accepted.box)) {
      body.box = this.box.rect;
      body.box_label = this.box.label;
    }
    return { body, points, box: this.box, nothing: incremental && !body.clicks.length && !body.box };
  }

  async send() {
    const req = this.request();
    if (req.nothing) return;
    const epoch = this.epoch;
    let res;
    try {
      res = await api(this.path, { method: "POST", json: req.body, signal: this.view.abort.signal });
    } catch (err) {
      if (epoch === this.epoch) this.failed(err);
      return;
    }
    if (epoch !== this.epoch) return; // forgotten meanwhile (reset to the prediction, a submit)
    if (res.clicks !== req.points.length) {
      this.synced = false; // the server forgot the interaction (a few idle minutes): start over
      this.again = true;
      return;
    }
    this.accepted = { points: req.points, box: req.box };
    this.synced = true;
    this.answer = res;
    await this.apply(res);
    this.renderPanel();
  }

  failed(err) {
    if (err?.name === "AbortError") return;
    // back to what the server last answered for; the next request sends it all again
    this.points = this.accepted.points.map((p) => ({ ...p }));
    this.box = this.accepted.box;
    this.synced = false;
    this.again = false;
    if (err instanceof ApiError && err.status === 409) {
      this.disabled = true;
      this.view.clicksUnavailable(err.message);
    } else {
      toast(err instanceof ApiError ? err.message : `Refine failed: ${err}`, "error", 8000);
    }
    this.renderPanel();
    this.redraw();
  }

  /** Put the answer's label map's changes (against the previous answer) into the label
   * buffer, as one undoable step: brush edits elsewhere stay. */
  async apply(res) {
    const bytes = Uint8Array.from(atob(res.mask_png), (c) => c.charCodeAt(0));
    const map = await decodeLabelPng(new Blob([bytes], { type: "image/png" }));
    const buffer = this.view.buffer;
    if (this.view.destroyed || map.width !== buffer.width || map.height !== buffer.height) return;
    const before = this.base || this.view.prediction;
    this.base = map.labels;
    buffer.begin();
    buffer.applyChanges(before, map.labels);
    buffer.end();
    this.view.historyChanged();
    this.countRefined();
  }

  /** The element whose data-refined / data-refining attributes tell tests (and CSS) how far it is. */
  get marker() {
    return this.view.stage.canvas;
  }

  countRefined() {
    this.marker.dataset.refined = String(Number(this.marker.dataset.refined || 0) + 1);
  }

  /** Redraw what shows the points (the stage). */
  redraw() {
    this.view.stage.requestRender();
  }

  get helpText() {
    return "Click: this is the label · Shift+click or right click: this is not · drag: a box · click a point to remove it.";
  }

  pointText(p) {
    return `(${p.x}, ${p.y})`;
  }

  get unit() {
    return "px";
  }

  setBusy(busy) {
    this.busy = busy;
    this.busyEl.hidden = !busy;
    this.marker.dataset.refining = busy ? "1" : "0";
    this.panel.setAttribute("aria-busy", String(busy));
  }

  // -- the side panel ------------------------------------------------------------------------

  buildPanel() {
    this.busyEl = h("span", { class: "busy", "data-testid": "refine-busy", hidden: true, text: "Refining…" });
    this.summary = h("p", { class: "muted small", "data-testid": "click-summary" });
    this.list = h("ul", { class: "click-list", "data-testid": "click-list" });
    this.undoBtn = h("button", {
      class: "btn btn-small",
      type: "button",
      "data-testid": "click-undo",
      onclick: () => this.undo(),
      text: "Undo click",
    });
    this.panel = h(
      "div",
      { class: "panel clicks-panel", "data-testid": "clicks-panel", hidden: true },
      h("div", { class: "panel-title-row" }, h("h3", { text: "Clicks" }), this.busyEl),
      h("p", { class: "muted small", text: this.helpText }),
      this.list,
      this.summary,
      h("div", { class: "row" }, this.undoBtn),
    );
    this.renderPanel();
  }

  renderPanel() {
    const name = (value) => this.view.labels.find((l) => l.value === value)?.name || `label ${value}`;
    const item = (text, cls, onremove) =>
      h(
        "li",
        { "data-testid": "click-item" },
        h("span", { class: cls }),
        h("span", { text }),
        h("button", {
          class: "icon-btn",
          type: "button",
          title: "Remove",
          "aria-label": `Remove ${text}`,
          "data-testid": "click-remove",
          onclick: onremove,
          text: "×",
        }),
      );
    append(
      clear(this.list),
      this.points.map((p, i) =>
        item(`${p.positive ? "+" : "−"} ${name(p.label)} ${this.pointText(p)}`, p.positive ? "pos" : "neg", () =>
          this.remove(i),
        ),
      ),
      this.box
        ? item(`Box ${name(this.box.label)} (${this.box.rect.join(", ")})`, "box", () => this.removeBox())
        : null,
    );
    const a = this.answer;
    this.summary.textContent =
      this.disabled || !a
        ? ""
        : `${a.clicks} click${a.clicks === 1 ? "" : "s"} · ${fmtInt(a.changed_pixels)} ${this.unit} changed from the prediction (model ${a.model_version})`;
    this.undoBtn.disabled = !this.canUndo;
  }

  // -- drawing on the stage ------------------------------------------------------------------

  preview(ctx, stage) {
    ctx.save();
    if (this.box || this.press?.moved) {
      const [x0, y0, x1, y1] = this.press?.moved ? [...this.press.start, ...this.press.end] : this.box.rect;
      const [sx0, sy0] = stage.toScreen(Math.min(x0, x1), Math.min(y0, y1));
      const [sx1, sy1] = stage.toScreen(Math.max(x0, x1) + 1, Math.max(y0, y1) + 1);
      ctx.setLineDash([5, 4]);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = this.view.labelColor;
      ctx.strokeRect(sx0, sy0, sx1 - sx0, sy1 - sy0);
      ctx.setLineDash([]);
    }
    for (const p of this.points) drawPoint(ctx, ...stage.toScreen(p.x + 0.5, p.y + 0.5), p.positive);
    ctx.restore();
  }
}

/** A green + (positive) or a red − (negative) on a dark disc, readable on any image. */
export function drawPoint(ctx, x, y, positive) {
  ctx.beginPath();
  ctx.arc(x, y, 7, 0, Math.PI * 2);
  ctx.fillStyle = "rgba(0,0,0,0.65)";
  ctx.fill();
  ctx.lineWidth = 2.5;
  ctx.strokeStyle = positive ? "#34c759" : "#ff453a";
  ctx.beginPath();
  ctx.moveTo(x - 4.5, y);
  ctx.lineTo(x + 4.5, y);
  if (positive) {
    ctx.moveTo(x, y - 4.5);
    ctx.lineTo(x, y + 4.5);
  }
  ctx.stroke();
}
