// Correction tools: they receive pointer events in image coordinates from the Stage and
// change the view's LabelBuffer (view.buffer) with the view's label, size and tool.

export class PaintTool {
  constructor(view) {
    this.view = view;
    this.last = null;
  }
  get value() {
    return this.view.tool === "eraser" ? 0 : this.view.label;
  }
  get radius() {
    return this.view.size / 2;
  }
  down(ix, iy) {
    this.view.effort.touch();
    this.view.buffer.begin();
    this.last = [ix, iy];
    this.view.buffer.paintSegment(ix, iy, ix, iy, this.radius, this.value);
  }
  move(ix, iy, e) {
    if (!this.last) return;
    const events = e.getCoalescedEvents ? e.getCoalescedEvents() : [];
    const points = events.length
      ? events.map((ev) => this.view.stage.toImage(...this.view.stage._local(ev)))
      : [[ix, iy]];
    for (const [x, y] of points) {
      this.view.buffer.paintSegment(this.last[0], this.last[1], x, y, this.radius, this.value);
      this.last = [x, y];
    }
  }
  up(ix, iy) {
    if (!this.last) return;
    this.view.buffer.paintSegment(this.last[0], this.last[1], ix, iy, this.radius, this.value);
    this.last = null;
    this.view.buffer.end();
    this.view.effort.stroke();
    this.view.historyChanged();
  }
  preview(ctx, stage) {
    if (!stage.pointer || stage.pan) return;
    const [sx, sy] = stage.pointer;
    const r = Math.max(this.radius * stage.scale, 2);
    ctx.beginPath();
    ctx.arc(sx, sy, r, 0, Math.PI * 2);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = "rgba(0,0,0,0.7)";
    ctx.stroke();
    ctx.beginPath();
    ctx.arc(sx, sy, Math.max(r - 1.5, 1), 0, Math.PI * 2);
    ctx.strokeStyle = this.view.tool === "eraser" ? "#ffffff" : this.view.labelColor;
    ctx.stroke();
  }
}

/** Lasso (press and drag) or polygon (click the corners; double-click, Enter or the first corner closes). */
export class LassoTool {
  constructor(view) {
    this.view = view;
    this.drag = null;
    this.poly = [];
  }
  down(ix, iy, _e, screen) {
    this.drag = { points: [[ix, iy]], start: screen, moved: false };
  }
  move(ix, iy, _e, screen) {
    if (!this.drag) return;
    const [sx, sy] = screen;
    if (Math.hypot(sx - this.drag.start[0], sy - this.drag.start[1]) > 4) this.drag.moved = true;
    const last = this.drag.points[this.drag.points.length - 1];
    const [lx, ly] = this.view.stage.toScreen(...last);
    if (Math.hypot(sx - lx, sy - ly) >= 2) this.drag.points.push([ix, iy]);
  }
  up(ix, iy, _e, screen) {
    const drag = this.drag;
    this.drag = null;
    if (!drag) return;
    if (drag.moved && drag.points.length >= 3) {
      this.poly = [];
      this.fill(drag.points);
      return;
    }
    if (this.poly.length >= 3) {
      const [fx, fy] = this.view.stage.toScreen(...this.poly[0]);
      if (Math.hypot(screen[0] - fx, screen[1] - fy) <= 8) {
        this.close();
        return;
      }
    }
    this.poly.push([ix, iy]);
  }
  dblclick() {
    this.close();
  }
  close() {
    if (this.poly.length >= 3) this.fill(this.poly);
    this.poly = [];
    this.view.stage.requestRender();
  }
  cancel() {
    this.poly = [];
    this.drag = null;
    this.view.stage.requestRender();
  }
  fill(points) {
    const buffer = this.view.buffer;
    buffer.begin();
    buffer.fillPolygon(points, this.view.label);
    buffer.end();
    this.view.effort.stroke();
    this.view.historyChanged();
  }
  preview(ctx, stage) {
    const points = this.drag?.moved ? this.drag.points : this.poly;
    if (!points.length) {
      if (stage.pointer) {
        const [sx, sy] = stage.pointer;
        ctx.strokeStyle = this.view.labelColor;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ctx.moveTo(sx - 6, sy);
        ctx.lineTo(sx + 6, sy);
        ctx.moveTo(sx, sy - 6);
        ctx.lineTo(sx, sy + 6);
        ctx.stroke();
      }
      return;
    }
    ctx.save();
    ctx.setLineDash([5, 4]);
    ctx.lineWidth = 1.5;
    ctx.strokeStyle = this.view.labelColor;
    ctx.beginPath();
    points.forEach((p, i) => {
      const [sx, sy] = stage.toScreen(...p);
      if (i === 0) ctx.moveTo(sx, sy);
      else ctx.lineTo(sx, sy);
    });
    if (!this.drag && stage.pointer) ctx.lineTo(...stage.pointer);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#ffffff";
    for (const p of this.poly) {
      const [sx, sy] = stage.toScreen(...p);
      ctx.fillRect(sx - 2, sy - 2, 4, 4);
    }
    ctx.restore();
  }
}
