// One plane of a volume in the viewer: a Stage showing one slice, windowed in the browser
// from the volume held in memory, with the label overlay, a slice slider and the crosshair.

import { h } from "./dom.js";
import { LabelBuffer } from "./labels.js";
import { AXIS, pixelOf, sliceAspect, sliceCount, sliceGeometry } from "./planes.js";
import { Stage } from "./stage.js";

const TITLES = { axial: "Axial", coronal: "Coronal", sagittal: "Sagittal" };

export class Pane {
  /** @param view  the VolumeView (volume, labels, cursor, window, colours)  @param plane  axial|coronal|sagittal */
  constructor(view, plane) {
    this.view = view;
    this.plane = plane;
    this.index = 0;
    this.slider = h("input", {
      type: "range",
      min: "0",
      max: "0",
      value: "0",
      "aria-label": `${TITLES[plane]} slice`,
      "data-testid": `slice-${plane}`,
      oninput: (e) => this.view.scrollTo(this, Number(e.target.value)),
    });
    this.readout = h("output", { class: "slice-readout", "data-testid": `slice-index-${plane}` });
    const wrap = h("div", { class: "pane-stage" });
    this.el = h(
      "section",
      { class: "pane", dataset: { plane }, "aria-label": `${TITLES[plane]} plane` },
      h(
        "div",
        { class: "pane-head" },
        h("span", { class: "pane-title", text: TITLES[plane] }),
        this.slider,
        this.readout,
      ),
      wrap,
    );
    this.stage = new Stage(wrap, {
      testid: `stage-${plane}`,
      label: `${TITLES[plane]} slice with the segmentation overlay`,
      wheel: (e) => {
        if (e.deltaY) this.view.scrollTo(this, this.index + Math.sign(e.deltaY));
        return true;
      },
    });
    this.stage.decorate = (ctx, stage) => this.drawCrosshair(ctx, stage);
    this.stage.canvas.addEventListener("focus", () => this.view.focusPane(this));
  }

  get count() {
    return sliceCount(this.view.volume.shape, this.plane);
  }

  /** Size the pane for the loaded volume and show slice `index`. */
  setVolume(index) {
    const { shape, spacing } = this.view.volume;
    const g = sliceGeometry(shape, this.plane, 0);
    this.canvas = document.createElement("canvas");
    this.canvas.width = g.cols;
    this.canvas.height = g.rows;
    this.ctx = this.canvas.getContext("2d");
    this.image = this.ctx.createImageData(g.cols, g.rows);
    this.pixels = new Uint32Array(this.image.data.buffer);
    this.buffer = new LabelBuffer(g.cols, g.rows);
    this.buffer.onchange = (rect) => {
      this.view.labels3d.writeRect(this.plane, this.index, this.buffer.data, rect);
      this.stage.updateOverlay(rect);
      this.view.dirty = true;
    };
    this.stage.setAspect(sliceAspect(spacing, this.plane));
    this.stage.setLabels(this.buffer, this.view.colors);
    this.slider.max = String(this.count - 1);
    this.show(index);
  }

  /** Show slice `index` (clamped to the plane). */
  show(index) {
    this.index = Math.max(0, Math.min(this.count - 1, Math.round(index)));
    this.slider.value = String(this.index);
    this.readout.textContent = `${this.index + 1} / ${this.count}`;
    this.stage.canvas.dataset.slice = String(this.index);
    this.renderImage();
    this.renderLabels();
  }

  /** Window the slice into the image canvas (a lookup table for int16, arithmetic for float). */
  renderImage() {
    const g = sliceGeometry(this.view.volume.shape, this.plane, this.index);
    const src = this.view.volume.data;
    const out = this.pixels;
    const lut = this.view.lut;
    let o = 0;
    if (lut) {
      for (let r = 0; r < g.rows; r++) {
        let v = g.base + r * g.rowStride;
        for (let c = 0; c < g.cols; c++, v += g.colStride) out[o++] = lut[src[v] + 32768];
      }
    } else {
      const { center, width } = this.view.wl;
      const low = center - width / 2;
      const k = 255 / width;
      for (let r = 0; r < g.rows; r++) {
        let v = g.base + r * g.rowStride;
        for (let c = 0; c < g.cols; c++, v += g.colStride) {
          const gray = Math.max(0, Math.min(255, Math.round((src[v] - low) * k)));
          out[o++] = 0xff000000 | (gray * 0x010101);
        }
      }
    }
    this.ctx.putImageData(this.image, 0, 0);
    this.stage.setImage(this.canvas, g.cols, g.rows);
  }

  /** Copy the slice's labels from the label volume into the overlay. */
  renderLabels() {
    this.view.labels3d.slice(this.plane, this.index, this.buffer.data);
    this.stage.updateOverlay();
  }

  /** The crosshair: the lines through the view's cursor voxel, in the other planes' colours. */
  drawCrosshair(ctx, stage) {
    const { row, col } = pixelOf(this.view.volume.shape, this.plane, this.view.cursor);
    const [x0, y0] = stage.toScreen(0, 0);
    const [x1, y1] = stage.toScreen(stage.iw, stage.ih);
    const [sx, sy] = stage.toScreen(col + 0.5, row + 0.5);
    ctx.save();
    ctx.lineWidth = 1;
    ctx.globalAlpha = 0.75;
    ctx.setLineDash([4, 4]);
    ctx.strokeStyle = "#ffd60a";
    ctx.beginPath();
    ctx.moveTo(x0, sy);
    ctx.lineTo(x1, sy);
    ctx.moveTo(sx, y0);
    ctx.lineTo(sx, y1);
    ctx.stroke();
    ctx.restore();
  }

  /** The axis this pane's slice index moves along (0 = x, 1 = y, 2 = z). */
  get axis() {
    return AXIS[this.plane];
  }

  destroy() {
    this.stage.destroy();
  }
}
