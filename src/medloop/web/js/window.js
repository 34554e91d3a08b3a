// The image under the overlay, with window/level: 8-bit images are windowed in the
// browser with a lookup table; anything else (16-bit, float, TIFF, DICOM) is rendered by
// the server (GET .../images/{i}/display?center=&width=) as an 8-bit PNG.

import { api } from "./api.js";

const BROWSER_FORMATS = [
  [0x89, 0x50, 0x4e, 0x47], // PNG
  [0xff, 0xd8, 0xff], // JPEG
  [0x47, 0x49, 0x46, 0x38], // GIF
  [0x42, 0x4d], // BMP
];

/**
 * Whether the browser can show this file exactly as the server reads it: an 8-bit PNG,
 * JPEG, GIF or BMP. EXIF rotation is left to the server, which records it but does not
 * apply it (the label map has the stored orientation).
 */
export async function browserDecodable(blob, image) {
  const meta = image.metadata || {};
  const bits = Number(meta.bits);
  if (Number.isFinite(bits) && bits > 8) return false;
  if (meta.exif_orientation !== undefined && Number(meta.exif_orientation) !== 1) return false;
  const head = new Uint8Array(await blob.slice(0, 4).arrayBuffer());
  return BROWSER_FORMATS.some((sig) => sig.every((b, i) => head[i] === b));
}

/** Window/level for images the browser decodes itself (8-bit): a lookup table on the pixels. */
export class ClientWindow {
  constructor(bitmap) {
    this.width = bitmap.width;
    this.height = bitmap.height;
    this.canvas = document.createElement("canvas");
    this.canvas.width = this.width;
    this.canvas.height = this.height;
    this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    this.ctx.drawImage(bitmap, 0, 0);
    this.original = this.ctx.getImageData(0, 0, this.width, this.height);
    this.out = this.ctx.createImageData(this.width, this.height);
    this.range = { min: 0, max: 255, center: 127.5, width: 255 };
  }

  apply(center, width) {
    const lut = new Uint8ClampedArray(256);
    const low = center - width / 2;
    for (let v = 0; v < 256; v++) lut[v] = Math.round(((v - low) / width) * 255);
    const src = this.original.data;
    const dst = this.out.data;
    for (let i = 0; i < src.length; i += 4) {
      dst[i] = lut[src[i]];
      dst[i + 1] = lut[src[i + 1]];
      dst[i + 2] = lut[src[i + 2]];
      dst[i + 3] = 255;
    }
    this.ctx.putImageData(this.out, 0, 0);
    return this.canvas;
  }
}

/** Window/level rendered by the server (16-bit, float, TIFF, DICOM): GET .../display. */
export class ServerWindow {
  constructor(path) {
    this.path = path;
    this.range = null;
    this.pending = null;
    this.bitmap = null;
  }

  async load(center, width) {
    if (this.pending) this.pending.abort();
    const ctl = new AbortController();
    this.pending = ctl;
    const q = center === undefined ? "" : `?center=${encodeURIComponent(center)}&width=${encodeURIComponent(width)}`;
    const response = await api(`${this.path}${q}`, { raw: true, signal: ctl.signal });
    const num = (name) => Number(response.headers.get(name));
    this.range = {
      center: num("x-window-center"),
      width: num("x-window-width"),
      min: num("x-pixel-min"),
      max: num("x-pixel-max"),
    };
    const bitmap = await createImageBitmap(await response.blob());
    if (this.bitmap) this.bitmap.close();
    this.bitmap = bitmap;
    return bitmap;
  }
}
