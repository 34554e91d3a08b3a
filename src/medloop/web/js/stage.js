// The viewer's canvas: an image with its label overlay, zoom (wheel) and pan (drag).
// Painting tools plug in as a handler that receives image coordinates.

import { h } from "./dom.js";

export function parseColor(hex) {
  const m = /^#?([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(hex || "");
  return m ? [parseInt(m[1], 16), parseInt(m[2], 16), parseInt(m[3], 16)] : [255, 0, 0];
}

export class Stage {
  /**
   * @param {HTMLElement} container  the element the canvas fills
   * @param {object} opts  panWithLeft: left-drag pans (no painting tool); testid and label:
   *   the canvas's data-testid and aria-label; wheel(e): takes the wheel (returns true) instead
   *   of zooming (a volume's slice scrolling; Ctrl+wheel always zooms)
   */
  constructor(container, { panWithLeft = false, testid = "stage", label, wheel } = {}) {
    this.container = container;
    this.canvas = h("canvas", {
      class: "stage-canvas",
      "data-testid": testid,
      tabindex: "0",
      role: "img",
      "aria-label": label || "The image with the segmentation overlay",
    });
    this.wheel = wheel || null;
    this.aspect = 1; // a row's height over a column's width (a volume's anisotropic voxels)
    this.decorate = null; // (ctx, stage) => void: drawn over the overlay, in CSS px (crosshair)
    container.append(this.canvas);
    this.ctx = this.canvas.getContext("2d");
    this.panWithLeft = panWithLeft;
    this.image = null;
    this.iw = 0;
    this.ih = 0;
    this.labels = null;
    this.colors = [[0, 0, 0]];
    this.overlay = null;
    this.overlayData = null;
    this.opacity = 0.5;
    this.outline = false;
    this.showOverlay = true;
    this.scale = 1;
    this.ox = 0;
    this.oy = 0;
    this.fitted = false;
    this.handler = null; // {down, move, up, preview(ctx, stage), contextClick?}
    this.pointer = null; // last pointer position, CSS px in the canvas
    this.space = false;
    this.pan = null;
    this.onviewchange = null;
    this._frame = 0;
    this._bind();
    this._resize = new ResizeObserver(() => this._fitCanvas());
    this._resize.observe(container);
  }

  destroy() {
    this._resize.disconnect();
    cancelAnimationFrame(this._frame);
    window.removeEventListener("keydown", this._onKeyDown);
    window.removeEventListener("keyup", this._onKeyUp);
  }

  // -- content -----------------------------------------------------------------------------

  setImage(source, width, height) {
    const resized = width !== this.iw || height !== this.ih;
    this.image = source;
    this.iw = width;
    this.ih = height;
    if (resized || !this.fitted) this.fit();
    this.requestRender();
  }

  /** Show rows `aspect` times as tall as columns are wide (mm per row / mm per column). */
  setAspect(aspect) {
    if (aspect === this.aspect) return;
    this.aspect = aspect;
    this.canvas.dataset.aspect = String(aspect);
    this.fit();
  }

  setLabels(buffer, colors) {
    if (this.overlay && this.overlay.width === buffer.width && this.overlay.height === buffer.height) {
      this.labels = buffer; // same size (another slice of a volume): keep the canvases
      this.updateOverlay();
      return;
    }
    this.labels = buffer;
    this.colors = [[0, 0, 0], ...colors.map(parseColor)];
    this.overlay = document.createElement("canvas");
    this.overlay.width = buffer.width;
    this.overlay.height = buffer.height;
    this.overlayCtx = this.overlay.getContext("2d");
    this.overlayData = this.overlayCtx.createImageData(buffer.width, buffer.height);
    this.updateOverlay();
  }

  setStyle({ opacity, outline, show }) {
    if (opacity !== undefined) this.opacity = opacity;
    if (show !== undefined) this.showOverlay = show;
    if (outline !== undefined && outline !== this.outline) {
      this.outline = outline;
      this.updateOverlay();
    }
    this.requestRender();
  }

  /** Recompute the overlay's pixels in `rect` (all when omitted) from the label buffer. */
  updateOverlay(rect) {
    const lb = this.labels;
    if (!lb) return;
    const W = lb.width;
    const H = lb.height;
    const { x, y, w, h: hh } = rect || { x: 0, y: 0, w: W, h: H };
    // an outline depends on the neighbours: widen by one pixel
    const x0 = Math.max(0, x - 1);
    const y0 = Math.max(0, y - 1);
    const x1 = Math.min(W - 1, x + w);
    const y1 = Math.min(H - 1, y + hh);
    const out = this.overlayData.data;
    const d = lb.data;
    for (let yy = y0; yy <= y1; yy++) {
      for (let xx = x0; xx <= x1; xx++) {
        const i = yy * W + xx;
        const v = d[i];
        let on = v !== 0;
        if (on && this.outline) {
          on =
            xx === 0 ||
            yy === 0 ||
            xx === W - 1 ||
            yy === H - 1 ||
            d[i - 1] !== v ||
            d[i + 1] !== v ||
            d[i - W] !== v ||
            d[i + W] !== v;
        }
        const o = i * 4;
        if (on) {
          const c = this.colors[v] || [255, 255, 255];
          out[o] = c[0];
          out[o + 1] = c[1];
          out[o + 2] = c[2];
          out[o + 3] = 255;
        } else {
          out[o + 3] = 0;
        }
      }
    }
    this.overlayCtx.putImageData(this.overlayData, 0, 0, x0, y0, x1 - x0 + 1, y1 - y0 + 1);
    this.requestRender();
  }

  // -- view ------------------------------------------------------------------------------

  get cssWidth() {
    return this.canvas.clientWidth;
  }

  get cssHeight() {
    return this.canvas.clientHeight;
  }

  fit() {
    if (!this.iw || !this.cssWidth) return;
    const s = Math.min(this.cssWidth / this.iw, this.cssHeight / (this.ih * this.aspect)) * 0.94;
    this.scale = s;
    this.fitScale = s;
    this.ox = (this.cssWidth - this.iw * s) / 2;
    this.oy = (this.cssHeight - this.ih * s * this.aspect) / 2;
    this.fitted = true;
    this._viewChanged();
  }

  /** Zoom by `factor` keeping the point (sx, sy) (CSS px in the canvas) in place. */
  zoomAt(factor, sx, sy) {
    const min = (this.fitScale || 1) / 4;
    const max = Math.max(64, (this.fitScale || 1) * 4);
    const s = Math.min(max, Math.max(min, this.scale * factor));
    this.ox = sx - ((sx - this.ox) * s) / this.scale;
    this.oy = sy - ((sy - this.oy) * s) / this.scale;
    this.scale = s;
    this._viewChanged();
  }

  toImage(sx, sy) {
    return [(sx - this.ox) / this.scale, (sy - this.oy) / (this.scale * this.aspect)];
  }

  toScreen(ix, iy) {
    return [this.ox + ix * this.scale, this.oy + iy * this.scale * this.aspect];
  }

  _viewChanged() {
    this.canvas.dataset.view = `${this.scale} ${this.ox} ${this.oy}`;
    if (this.onviewchange) this.onviewchange(this);
    this.requestRender();
  }

  _fitCanvas() {
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(this.container.clientWidth));
    const hh = Math.max(1, Math.round(this.container.clientHeight));
    const cx = this.cssWidth ? this.cssWidth / 2 : w / 2;
    const cy = this.cssHeight ? this.cssHeight / 2 : hh / 2;
    this.canvas.width = Math.round(w * dpr);
    this.canvas.height = Math.round(hh * dpr);
    if (!this.fitted) this.fit();
    else {
      // keep the centre of the view in the centre
      this.ox += w / 2 - cx;
      this.oy += hh / 2 - cy;
      this._viewChanged();
    }
    this.requestRender();
  }

  // -- drawing ---------------------------------------------------------------------------

  requestRender() {
    if (this._frame) return;
    this._frame = requestAnimationFrame(() => {
      this._frame = 0;
      this.render();
    });
  }

  render() {
    const ctx = this.ctx;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#0b0f14";
    ctx.fillRect(0, 0, this.canvas.width, this.canvas.height);
    if (!this.image) return;
    const s = this.scale;
    ctx.setTransform(dpr * s, 0, 0, dpr * s * this.aspect, dpr * this.ox, dpr * this.oy);
    ctx.imageSmoothingEnabled = s < 2;
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(this.image, 0, 0, this.iw, this.ih);
    if (this.overlay && this.showOverlay && this.opacity > 0) {
      ctx.imageSmoothingEnabled = false;
      ctx.globalAlpha = this.opacity;
      ctx.drawImage(this.overlay, 0, 0);
      ctx.globalAlpha = 1;
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.strokeStyle = "rgba(255,255,255,0.18)";
    ctx.lineWidth = 1;
    ctx.strokeRect(this.ox - 0.5, this.oy - 0.5, this.iw * s + 1, this.ih * s * this.aspect + 1);
    if (this.decorate) this.decorate(ctx, this);
    if (this.handler?.preview) this.handler.preview(ctx, this);
  }

  // -- input -----------------------------------------------------------------------------

  _local(e) {
    const r = this.canvas.getBoundingClientRect();
    return [e.clientX - r.left, e.clientY - r.top];
  }

  _wheel(e) {
    e.preventDefault();
    if (this.wheel && !e.ctrlKey && !e.metaKey && this.wheel(e)) return;
    const [sx, sy] = this._local(e);
    this.zoomAt(Math.exp(-e.deltaY * 0.0015), sx, sy);
  }

  _bind() {
    const c = this.canvas;
    c.addEventListener("contextmenu", (e) => e.preventDefault());
    c.addEventListener("wheel", (e) => this._wheel(e), { passive: false });
    c.addEventListener("pointerdown", (e) => {
      c.focus({ preventScroll: true });
      const [sx, sy] = this._local(e);
      const panning =
        e.button === 1 || e.button === 2 || (e.button === 0 && (this.space || this.panWithLeft || !this.handler));
      c.setPointerCapture(e.pointerId);
      if (panning) {
        this.pan = { sx, sy, ox: this.ox, oy: this.oy, button: e.button, moved: false };
        c.classList.add("panning");
        return;
      }
      if (e.button === 0 && this.handler) this.handler.down(...this.toImage(sx, sy), e, [sx, sy]);
    });
    c.addEventListener("pointermove", (e) => {
      const [sx, sy] = this._local(e);
      this.pointer = [sx, sy];
      if (this.pan) {
        if (Math.hypot(sx - this.pan.sx, sy - this.pan.sy) > 4) this.pan.moved = true;
        this.ox = this.pan.ox + sx - this.pan.sx;
        this.oy = this.pan.oy + sy - this.pan.sy;
        this._viewChanged();
        return;
      }
      if (this.handler) this.handler.move(...this.toImage(sx, sy), e, [sx, sy]);
      this.requestRender();
    });
    const up = (e) => {
      if (c.hasPointerCapture(e.pointerId)) c.releasePointerCapture(e.pointerId);
      const [sx, sy] = this._local(e);
      if (this.pan) {
        const click = this.pan.button === 2 && !this.pan.moved && e.type === "pointerup";
        this.pan = null;
        c.classList.remove("panning");
        // a right click that did not pan: the tool's (the click tool's negative point)
        if (click && this.handler?.contextClick) this.handler.contextClick(...this.toImage(sx, sy), [sx, sy]);
        return;
      }
      if (this.handler) this.handler.up(...this.toImage(sx, sy), e, [sx, sy]);
      this.requestRender();
    };
    c.addEventListener("pointerup", up);
    c.addEventListener("pointercancel", up);
    c.addEventListener("pointerleave", () => {
      this.pointer = null;
      this.requestRender();
    });
    c.addEventListener("dblclick", (e) => {
      if (this.handler?.dblclick) this.handler.dblclick(e);
    });
    this._onKeyDown = (e) => {
      if (e.code === "Space" && !isTyping(e)) {
        this.space = true;
        c.classList.add("pan-ready");
        if (e.target === c) e.preventDefault();
      }
    };
    this._onKeyUp = (e) => {
      if (e.code === "Space") {
        this.space = false;
        c.classList.remove("pan-ready");
      }
    };
    window.addEventListener("keydown", this._onKeyDown);
    window.addEventListener("keyup", this._onKeyUp);
  }
}

export function isTyping(e) {
  const t = e.target;
  if (!t?.tagName) return false;
  if (t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  return t.tagName === "INPUT" && !["range", "checkbox", "radio", "button"].includes(t.type);
}
