// Volume-only tools: the crosshair (click a plane to move the others to that voxel) and
// window/level by dragging (right-left: width, up-down: level).

import { voxelAt } from "./planes.js";

export class CrosshairTool {
  /** @param view  the VolumeView  @param pane  the pane whose stage this tool serves (null: the main one) */
  constructor(view, pane = null) {
    this.view = view;
    this.pane = pane;
    this.pressed = false;
  }
  get target() {
    return this.pane || this.view.main;
  }
  down(ix, iy) {
    this.pressed = true;
    this.point(ix, iy);
  }
  move(ix, iy) {
    if (this.pressed) this.point(ix, iy);
  }
  up() {
    this.pressed = false;
  }
  point(ix, iy) {
    const pane = this.target;
    const { cols, rows } = pane.buffer ? { cols: pane.buffer.width, rows: pane.buffer.height } : { cols: 0, rows: 0 };
    if (ix < 0 || iy < 0 || ix >= cols || iy >= rows) return;
    this.view.setCursor(voxelAt(this.view.volume.shape, pane.plane, pane.index, Math.floor(iy), Math.floor(ix)));
  }
}

export class WindowTool {
  constructor(view) {
    this.view = view;
    this.start = null;
  }
  down(_ix, _iy, _e, screen) {
    this.start = { screen, ...this.view.wl };
  }
  move(_ix, _iy, _e, screen) {
    if (!this.start) return;
    const step = Math.max(this.start.width, 1) / 200; // 200 px: the window's own width
    const width = Math.max(1e-3, this.start.width + (screen[0] - this.start.screen[0]) * step);
    const center = this.start.center - (screen[1] - this.start.screen[1]) * step;
    this.view.setWindow(center, width);
  }
  up() {
    this.start = null;
  }
}
