// The label buffer being corrected: one byte per pixel (0 = background, 1..K),
// painted with exact geometric rules (no anti-aliasing), with undo and redo.

const MAX_UNDO = 100;

/** A changed rectangle and its pixels before and after: one undo step. */
class Patch {
  constructor(x, y, w, h, before, after) {
    Object.assign(this, { x, y, w, h, before, after });
  }
}

export class LabelBuffer {
  constructor(width, height, data) {
    this.width = width;
    this.height = height;
    this.data = data ? new Uint8Array(data) : new Uint8Array(width * height);
    this.snapshot = new Uint8Array(this.data.length);
    this.undoStack = [];
    this.redoStack = [];
    this.active = null; // bbox of the action in progress
    this.onchange = null; // (rect) => void
  }

  get(x, y) {
    return this.data[y * this.width + x];
  }

  // -- actions ---------------------------------------------------------------------------

  /** Start an undoable action (a stroke, a fill). */
  begin() {
    if (this.active) this.end();
    this.snapshot.set(this.data);
    this.active = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
  }

  _touch(x0, y0, x1, y1) {
    const a = this.active;
    if (!a) return;
    a.x0 = Math.min(a.x0, x0);
    a.y0 = Math.min(a.y0, y0);
    a.x1 = Math.max(a.x1, x1);
    a.y1 = Math.max(a.y1, y1);
  }

  /** Finish the action; returns true when it changed anything (and so can be undone). */
  end() {
    const a = this.active;
    this.active = null;
    if (!a || a.x1 < a.x0) return false;
    const w = a.x1 - a.x0 + 1;
    const h = a.y1 - a.y0 + 1;
    const before = this._copy(this.snapshot, a.x0, a.y0, w, h);
    const after = this._copy(this.data, a.x0, a.y0, w, h);
    let changed = false;
    for (let i = 0; i < before.length && !changed; i++) changed = before[i] !== after[i];
    if (!changed) return false;
    this.undoStack.push(new Patch(a.x0, a.y0, w, h, before, after));
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
    this.redoStack = [];
    return true;
  }

  _copy(src, x, y, w, h) {
    const out = new Uint8Array(w * h);
    for (let r = 0; r < h; r++) out.set(src.subarray((y + r) * this.width + x, (y + r) * this.width + x + w), r * w);
    return out;
  }

  _paste(pixels, x, y, w, h) {
    for (let r = 0; r < h; r++) this.data.set(pixels.subarray(r * w, (r + 1) * w), (y + r) * this.width + x);
    this._changed({ x, y, w, h });
  }

  _changed(rect) {
    if (this.onchange) this.onchange(rect);
  }

  get canUndo() {
    return this.undoStack.length > 0;
  }

  get canRedo() {
    return this.redoStack.length > 0;
  }

  undo() {
    const p = this.undoStack.pop();
    if (!p) return false;
    this._paste(p.before, p.x, p.y, p.w, p.h);
    this.redoStack.push(p);
    return true;
  }

  redo() {
    const p = this.redoStack.pop();
    if (!p) return false;
    this._paste(p.after, p.x, p.y, p.w, p.h);
    this.undoStack.push(p);
    return true;
  }

  /** Replace every pixel (e.g. back to the model's prediction), as one undoable step. */
  replaceAll(data) {
    this.begin();
    this.data.set(data);
    this._touch(0, 0, this.width - 1, this.height - 1);
    const changed = this.end();
    if (changed) this._changed({ x: 0, y: 0, w: this.width, h: this.height });
    return changed;
  }

  // -- painting --------------------------------------------------------------------------

  /**
   * Paint every pixel whose centre lies within `radius` of the segment (x0, y0)-(x1, y1)
   * (image coordinates, pixel (i, j) covering [i, i+1) x [j, j+1)) with `value`.
   */
  paintSegment(x0, y0, x1, y1, radius, value) {
    const r = Math.max(radius, 0.71); // at least the pixel under the pointer
    const minX = Math.max(0, Math.floor(Math.min(x0, x1) - r));
    const maxX = Math.min(this.width - 1, Math.ceil(Math.max(x0, x1) + r));
    const minY = Math.max(0, Math.floor(Math.min(y0, y1) - r));
    const maxY = Math.min(this.height - 1, Math.ceil(Math.max(y0, y1) + r));
    if (minX > maxX || minY > maxY) return null;
    const dx = x1 - x0;
    const dy = y1 - y0;
    const len2 = dx * dx + dy * dy;
    const r2 = r * r;
    const box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    for (let y = minY; y <= maxY; y++) {
      const py = y + 0.5;
      for (let x = minX; x <= maxX; x++) {
        const px = x + 0.5;
        let t = len2 > 0 ? ((px - x0) * dx + (py - y0) * dy) / len2 : 0;
        t = Math.min(1, Math.max(0, t));
        const ex = px - (x0 + t * dx);
        const ey = py - (y0 + t * dy);
        if (ex * ex + ey * ey <= r2) {
          this._set(x, y, value, box);
        }
      }
    }
    return this._finish(box);
  }

  /** Set pixel (x, y) to `value`, growing `box` around the pixels that changed. */
  _set(x, y, value, box) {
    const i = y * this.width + x;
    if (this.data[i] === value) return;
    this.data[i] = value;
    if (x < box.x0) box.x0 = x;
    if (x > box.x1) box.x1 = x;
    if (y < box.y0) box.y0 = y;
    if (y > box.y1) box.y1 = y;
  }

  /** Record the changed `box` (undo, redraw); returns its rect, or null if nothing changed. */
  _finish(box) {
    if (box.x1 < box.x0) return null;
    this._touch(box.x0, box.y0, box.x1, box.y1);
    const rect = { x: box.x0, y: box.y0, w: box.x1 - box.x0 + 1, h: box.y1 - box.y0 + 1 };
    this._changed(rect);
    return rect;
  }

  /** Set every pixel where `to` differs from `from` to its value in `to` (one refine answer
   * over the one before: what the clicks changed, leaving other edits alone). */
  applyChanges(from, to) {
    const box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    const W = this.width;
    for (let i = 0; i < to.length; i++) {
      if (to[i] !== from[i]) this._set(i % W, Math.floor(i / W), to[i], box);
    }
    return this._finish(box);
  }

  /** Fill the polygon (image coordinates; even-odd rule on pixel centres) with `value`. */
  fillPolygon(points, value) {
    if (points.length < 3) return null;
    const ys = points.map((p) => p[1]);
    const minY = Math.max(0, Math.floor(Math.min(...ys)));
    const maxY = Math.min(this.height - 1, Math.ceil(Math.max(...ys)));
    const box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    const n = points.length;
    for (let y = minY; y <= maxY; y++) {
      const py = y + 0.5;
      const xs = [];
      for (let i = 0; i < n; i++) {
        const [ax, ay] = points[i];
        const [bx, by] = points[(i + 1) % n];
        if ((ay <= py && by > py) || (by <= py && ay > py)) xs.push(ax + ((py - ay) / (by - ay)) * (bx - ax));
      }
      xs.sort((a, b) => a - b);
      for (let k = 0; k + 1 < xs.length; k += 2) {
        // pixel centres x + 0.5 in [xs[k], xs[k+1])
        const from = Math.max(0, Math.ceil(xs[k] - 0.5));
        const to = Math.min(this.width - 1, Math.ceil(xs[k + 1] - 0.5) - 1);
        for (let x = from; x <= to; x++) {
          this._set(x, y, value, box);
        }
      }
    }
    return this._finish(box);
  }

  /** Pixel count per label value (index = label). */
  counts(numLabels) {
    const out = new Array(numLabels + 1).fill(0);
    for (let i = 0; i < this.data.length; i++) {
      const v = this.data[i];
      if (v <= numLabels) out[v]++;
    }
    return out;
  }
}
