// The label volume being corrected (one byte per voxel, x fastest), with undo and redo of
// sparse patches (only the voxels an action changed), and which slices of which plane were
// edited with which label (what "interpolate between edited slices" works from).

import { extractSlice, sliceGeometry } from "./planes.js";

const MAX_UNDO = 100;

/** One undo step: the voxels (indices) an action changed, before and after it. */
class SparsePatch {
  constructor(index, before, after) {
    Object.assign(this, { index, before, after });
  }
}

export class VolumeLabels {
  /** @param {number[]} shape [X, Y, Z]  @param {Uint8Array} data  the labels (kept, not copied) */
  constructor(shape, data) {
    this.shape = shape;
    this.data = data;
    this.undoStack = [];
    this.redoStack = [];
    this.edited = new Map(); // "plane:label" -> Set of slice indices
    this.onchange = null; // () => void, after an undo, redo or replacement
  }

  get canUndo() {
    return this.undoStack.length > 0;
  }

  get canRedo() {
    return this.redoStack.length > 0;
  }

  /** Slice `index` of `plane` into `out` (rows * cols). */
  slice(plane, index, out) {
    return extractSlice(this.data, sliceGeometry(this.shape, plane, index), out);
  }

  /** Write pixels of `rect` {x, y, w, h} of a slice (`pixels`, the whole slice row-major). */
  writeRect(plane, index, pixels, rect) {
    const g = sliceGeometry(this.shape, plane, index);
    for (let r = rect.y; r < rect.y + rect.h; r++) {
      let v = g.base + r * g.rowStride + rect.x * g.colStride;
      for (let c = rect.x, o = r * g.cols + rect.x; c < rect.x + rect.w; c++, o++, v += g.colStride) {
        this.data[v] = pixels[o];
      }
    }
  }

  /** Record a slice edit (a LabelBuffer patch: its rect's pixels before and after). */
  recordSliceEdit(plane, index, patch, label) {
    const g = sliceGeometry(this.shape, plane, index);
    const idx = [];
    const before = [];
    const after = [];
    for (let r = 0; r < patch.h; r++) {
      for (let c = 0; c < patch.w; c++) {
        const i = r * patch.w + c;
        if (patch.before[i] === patch.after[i]) continue;
        idx.push(g.base + (patch.y + r) * g.rowStride + (patch.x + c) * g.colStride);
        before.push(patch.before[i]);
        after.push(patch.after[i]);
      }
    }
    this.markEdited(plane, index, label);
    this._push(new SparsePatch(Uint32Array.from(idx), Uint8Array.from(before), Uint8Array.from(after)));
  }

  markEdited(plane, index, label) {
    const key = `${plane}:${label}`;
    if (!this.edited.has(key)) this.edited.set(key, new Set());
    this.edited.get(key).add(index);
  }

  /** The slices of `plane` edited with `label`, in order. */
  editedSlices(plane, label) {
    return [...(this.edited.get(`${plane}:${label}`) || [])].sort((a, b) => a - b);
  }

  _push(patch) {
    if (!patch.index.length) return false;
    this.undoStack.push(patch);
    if (this.undoStack.length > MAX_UNDO) this.undoStack.shift();
    this.redoStack = [];
    return true;
  }

  _apply(patch, values) {
    const d = this.data;
    for (let i = 0; i < patch.index.length; i++) d[patch.index[i]] = values[i];
    if (this.onchange) this.onchange();
  }

  undo() {
    const p = this.undoStack.pop();
    if (!p) return false;
    this._apply(p, p.before);
    this.redoStack.push(p);
    return true;
  }

  redo() {
    const p = this.redoStack.pop();
    if (!p) return false;
    this._apply(p, p.after);
    this.undoStack.push(p);
    return true;
  }

  /** Set every voxel to `target`'s (e.g. back to the prediction), as one undoable step. */
  replaceAll(target) {
    const idx = [];
    for (let i = 0; i < target.length; i++) if (this.data[i] !== target[i]) idx.push(i);
    const index = Uint32Array.from(idx);
    const before = new Uint8Array(index.length);
    const after = new Uint8Array(index.length);
    for (let i = 0; i < index.length; i++) {
      before[i] = this.data[index[i]];
      after[i] = target[index[i]];
    }
    const patch = new SparsePatch(index, before, after);
    if (!this._push(patch)) return false;
    this._apply(patch, after);
    return true;
  }

  /** Set voxels `index` (Uint32Array) to `values` (Uint8Array), as one undoable step;
   * returns the voxels that changed. */
  setVoxels(index, values) {
    const idx = [];
    const before = [];
    const after = [];
    for (let i = 0; i < index.length; i++) {
      const cur = this.data[index[i]];
      if (cur === values[i]) continue;
      idx.push(index[i]);
      before.push(cur);
      after.push(values[i]);
    }
    const patch = new SparsePatch(Uint32Array.from(idx), Uint8Array.from(before), Uint8Array.from(after));
    if (this._push(patch)) this._apply(patch, patch.after);
    return idx.length;
  }

  /**
   * Give `label` the shape `masks` (n * rows * cols, 0/1) on slices `indices` of `plane`:
   * inside, background and `label` become `label` (other labels stay); outside, `label`
   * becomes background. One undoable step; returns the voxels changed.
   */
  applyMasks(plane, indices, masks, label) {
    const idx = [];
    const before = [];
    const after = [];
    indices.forEach((k, n) => {
      const g = sliceGeometry(this.shape, plane, k);
      let o = n * g.rows * g.cols;
      for (let r = 0; r < g.rows; r++) {
        let v = g.base + r * g.rowStride;
        for (let c = 0; c < g.cols; c++, v += g.colStride, o++) {
          const cur = this.data[v];
          const want = masks[o] ? (cur === 0 ? label : cur) : cur === label ? 0 : cur;
          if (want === cur) continue;
          idx.push(v);
          before.push(cur);
          after.push(want);
        }
      }
    });
    const patch = new SparsePatch(Uint32Array.from(idx), Uint8Array.from(before), Uint8Array.from(after));
    if (this._push(patch)) this._apply(patch, patch.after);
    return idx.length;
  }

  /** Voxel count per label value (index = label). */
  counts(numLabels) {
    const out = new Array(numLabels + 1).fill(0);
    const d = this.data;
    for (let i = 0; i < d.length; i++) if (d[i] <= numLabels) out[d[i]]++;
    return out;
  }
}
