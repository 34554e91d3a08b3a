// Whole volumes over the wire: fetched once, gzip'd, inflated by the browser's own
// DecompressionStream straight into a typed array; label volumes and slices sent back
// gzip'd with CompressionStream. Voxel (x, y, z) of an (X, Y, Z) volume is element
// x + X * (y + Y * z) (the server's canonical RAS+ array, x fastest).

import { api } from "./api.js";

const TYPES = { int16: Int16Array, float32: Float32Array, uint8: Uint8Array };

/**
 * GET a `.../voxels?kind=` stream: { shape: [X, Y, Z], spacing: [mm x, y, z], dtype,
 * data (a typed array), window: { center, width } | null, bytes (compressed size) }.
 * `onProgress(fraction)` follows the inflated bytes.
 */
export async function fetchVoxels(path, { signal, onProgress } = {}) {
  const response = await api(path, { raw: true, signal });
  const head = (name) => response.headers.get(name);
  const shape = head("x-volume-shape").split(",").map(Number);
  const Type = TYPES[head("x-volume-dtype")];
  if (!Type || shape.length !== 3) throw new Error(`unexpected volume ${head("x-volume-dtype")} ${shape}`);
  const spacing = head("x-volume-spacing") ? head("x-volume-spacing").split(",").map(Number) : [1, 1, 1];
  const count = shape[0] * shape[1] * shape[2];
  const bytes = new Uint8Array(count * Type.BYTES_PER_ELEMENT);
  const counter = new TransformStream({
    transform(chunk, ctl) {
      counter.bytes = (counter.bytes || 0) + chunk.byteLength;
      ctl.enqueue(chunk);
    },
  });
  await readInto(response.body.pipeThrough(counter).pipeThrough(new DecompressionStream("gzip")), bytes, onProgress);
  const center = Number(head("x-window-center"));
  const width = Number(head("x-window-width"));
  const window = head("x-window-width") ? { center, width } : null;
  return { shape, spacing, dtype: head("x-volume-dtype"), data: new Type(bytes.buffer), window, bytes: counter.bytes };
}

/** Read `stream` into `out`, which it must fill exactly. */
async function readInto(stream, out, onProgress) {
  const reader = stream.getReader();
  let at = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (at + value.byteLength > out.byteLength) throw new Error("the volume is larger than announced");
    out.set(value, at);
    at += value.byteLength;
    if (onProgress) onProgress(at / out.byteLength);
  }
  if (at !== out.byteLength) throw new Error(`the volume ended early (${at} of ${out.byteLength} bytes)`);
}

/** `bytes` (a typed array) gzip'd with the browser's CompressionStream, as a Blob. */
export async function gzipBlob(bytes) {
  const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Response(stream).blob();
}

/** A gzip'd Response body (or Blob) inflated into a Uint8Array. */
export async function gunzip(body) {
  const stream = (body instanceof Blob ? body.stream() : body).pipeThrough(new DecompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
