// The click tool on a volume: a click on any of the three planes is a point at that voxel
// (x, y, z: the pixel and the plane's slice, as planes.js maps them); a drag is a box for
// the current label, spanning the drag in the plane and, through it, as many millimetres
// as the drag's smaller side, centred on the slice (a structure about as deep as it is
// wide). Each refine answers only the block of voxels it changed (gzip'd uint8, z fastest);
// the block's changes against the previous answer go into the label volume as one undoable
// step, so brush edits elsewhere stay, and every plane redraws.

import { ClickTool, drawPoint, HIT_PX } from "./clicks.js";
import { pixelOf, voxelAt } from "./planes.js";
import { gunzip } from "./voxels.js";

const XYZ = [0, 1, 2];

export class VolumeClickTool extends ClickTool {
  /** @param view  the VolumeView (volume, labels3d, prediction, panes, label, effort) */
  constructor(view) {
    super(view);
    this.pane = null; // the pane the pointer went down on
    this.adapters = new Map();
  }

  /** The Stage handler for `pane`: this tool, told which plane the pointer is on. */
  on(pane) {
    if (!this.adapters.has(pane)) this.adapters.set(pane, new PaneClicks(this, pane));
    return this.adapters.get(pane);
  }

  get shape() {
    return this.view.volume.shape;
  }

  /** Where point `p` lies on `pane` when it is on the pane's slice (within half a slice). */
  onSlice(pane, p) {
    const at = pixelOf(this.shape, pane.plane, [p.x, p.y, p.z]);
    return Math.abs(at.index - pane.index) <= 0.5 ? at : null;
  }

  click(ix, iy, screen, positive) {
    const pane = this.pane;
    if (!pane?.buffer) return;
    const hit = this.points.findIndex((p) => {
      const at = this.onSlice(pane, p);
      if (!at) return false;
      const [px, py] = pane.stage.toScreen(at.col + 0.5, at.row + 0.5);
      return Math.hypot(px - screen[0], py - screen[1]) <= HIT_PX;
    });
    if (hit >= 0) {
      this.remove(hit);
      return;
    }
    const { width, height } = pane.buffer;
    if (ix < 0 || iy < 0 || ix >= width || iy >= height) return;
    const [x, y, z] = voxelAt(this.shape, pane.plane, pane.index, Math.floor(iy), Math.floor(ix));
    this.points.push({ x, y, z, label: this.view.label, positive });
    this.view.effort.click();
    this.view.setCursor([x, y, z]); // the other planes show the slices through the point
    this.changed();
  }

  /** A box from a drag between image points `a` and `b` of the pane (see the module doc). */
  addBox(a, b) {
    const pane = this.pane;
    if (!pane?.buffer) return;
    const { width, height } = pane.buffer;
    const col = (v) => Math.min(width - 1, Math.max(0, Math.floor(v)));
    const row = (v) => Math.min(height - 1, Math.max(0, Math.floor(v)));
    const [c0, c1] = [col(Math.min(a[0], b[0])), col(Math.max(a[0], b[0]))];
    const [r0, r1] = [row(Math.min(a[1], b[1])), row(Math.max(a[1], b[1]))];
    if (c1 <= c0 || r1 <= r0) return;
    const { shape, spacing } = this.view.volume;
    const p = voxelAt(shape, pane.plane, pane.index, r0, c0);
    const q = voxelAt(shape, pane.plane, pane.index, r1, c1);
    const axis = pane.axis;
    const sides = XYZ.filter((i) => i !== axis).map((i) => (Math.abs(p[i] - q[i]) + 1) * spacing[i]);
    const half = Math.floor(Math.min(...sides) / 2 / spacing[axis]);
    p[axis] = Math.max(0, pane.index - half);
    q[axis] = Math.min(shape[axis] - 1, pane.index + half);
    const rect = [...XYZ.map((i) => Math.min(p[i], q[i])), ...XYZ.map((i) => Math.max(p[i], q[i]))];
    this.box = { rect, label: this.view.label };
    this.view.effort.click();
    this.changed();
  }

  /** The box's cut through `pane`'s slice as [col0, row0, col1, row1], or null. */
  boxOn(pane) {
    const r = this.box?.rect;
    const axis = pane.axis;
    if (!r || pane.index < r[axis] || pane.index > r[axis + 3]) return null;
    const a = pixelOf(this.shape, pane.plane, r.slice(0, 3));
    const b = pixelOf(this.shape, pane.plane, r.slice(3));
    return [Math.min(a.col, b.col), Math.min(a.row, b.row), Math.max(a.col, b.col), Math.max(a.row, b.row)];
  }

  /** Paste the answer's changed block: its voxels that differ from the previous answer go
   * into the label volume as one undoable step. */
  async apply(res) {
    const view = this.view;
    const block = res.changed;
    const [X, Y, Z] = this.shape;
    if (view.destroyed || !block || res.width !== X || res.height !== Y || res.depth !== Z) return;
    const [sx, sy, sz] = block.shape;
    const epoch = this.epoch;
    if (sx * sy * sz > 0) {
      const packed = Uint8Array.from(atob(block.data), (c) => c.charCodeAt(0));
      const values = await gunzip(new Blob([packed]));
      if (epoch !== this.epoch || view.destroyed) return;
      if (values.length !== sx * sy * sz) throw new Error(`a changed block of ${values.length} voxels`);
      if (!this.base) this.base = view.prediction.slice(); // what the server held before
      const base = this.base;
      const [ox, oy, oz] = block.offset;
      const XY = X * Y;
      const index = [];
      const after = [];
      let n = 0;
      for (let i = 0; i < sx; i++) {
        for (let j = 0; j < sy; j++) {
          for (let k = 0, v = ox + i + X * (oy + j) + XY * oz; k < sz; k++, n++, v += XY) {
            if (base[v] === values[n]) continue;
            base[v] = values[n];
            index.push(v);
            after.push(values[n]);
          }
        }
      }
      view.labels3d.setVoxels(Uint32Array.from(index), Uint8Array.from(after));
    }
    view.historyChanged();
    this.countRefined();
  }

  get marker() {
    return this.view.stageWrap;
  }

  redraw() {
    for (const p of this.view.panes) p.stage.requestRender();
  }

  get helpText() {
    return "On any plane — click: this is the label · Shift+click or right click: this is not · drag: a box, as deep as its smaller side · click a point to remove it.";
  }

  pointText(p) {
    return `(${p.x}, ${p.y}, ${p.z})`;
  }

  get unit() {
    return "vox";
  }

  /** Draw, on `pane`, the box being dragged or the box's cut and the points on its slice. */
  previewOn(pane, ctx, stage) {
    ctx.save();
    const press = this.press?.moved && this.pane === pane ? this.press : null;
    const [x0, y0, x1, y1] = press ? [...press.start, ...press.end] : this.boxOn(pane) || [];
    if (x0 !== undefined) {
      const [sx0, sy0] = stage.toScreen(Math.floor(Math.min(x0, x1)), Math.floor(Math.min(y0, y1)));
      const [sx1, sy1] = stage.toScreen(Math.floor(Math.max(x0, x1)) + 1, Math.floor(Math.max(y0, y1)) + 1);
      ctx.setLineDash([5, 4]);
      ctx.lineWidth = 1.5;
      ctx.strokeStyle = this.view.labelColor;
      ctx.strokeRect(sx0, sy0, sx1 - sx0, sy1 - sy0);
      ctx.setLineDash([]);
    }
    for (const p of this.points) {
      const at = this.onSlice(pane, p);
      if (at) drawPoint(ctx, ...stage.toScreen(at.col + 0.5, at.row + 0.5), p.positive);
    }
    ctx.restore();
  }
}

/** One pane's Stage handler: the pointer's events, told which pane they come from. */
class PaneClicks {
  constructor(tool, pane) {
    this.tool = tool;
    this.pane = pane;
  }
  down(ix, iy, e, screen) {
    this.tool.pane = this.pane;
    this.tool.down(ix, iy, e, screen);
  }
  move(ix, iy, e, screen) {
    if (this.tool.pane === this.pane) this.tool.move(ix, iy, e, screen);
  }
  up(ix, iy, e, screen) {
    if (this.tool.pane === this.pane) this.tool.up(ix, iy, e, screen);
  }
  contextClick(ix, iy, screen) {
    this.tool.pane = this.pane;
    this.tool.contextClick(ix, iy, screen);
  }
  preview(ctx, stage) {
    this.tool.previewOn(this.pane, ctx, stage);
  }
}
