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
  return readVoxels(await openVoxels(path, signal), onProgress);
}

/** The response of a `.../voxels` GET, its headers read (the body not yet). */
export async function openVoxels(path, signal) {
  const response = await api(path, { raw: true, signal });
  const head = (name) => response.headers.get(name);
  const shape = head("x-volume-shape").split(",").map(Number);
  const dtype = head("x-volume-dtype");
  if (!TYPES[dtype] || shape.length !== 3) throw new Error(`unexpected volume ${dtype} ${shape}`);
  const spacing = head("x-volume-spacing") ? head("x-volume-spacing").split(",").map(Number) : [1, 1, 1];
  const width = head("x-window-width");
  const window = width ? { center: Number(head("x-window-center")), width: Number(width) } : null;
  return { response, shape, spacing, dtype, window };
}

/** Inflate an opened voxels response into its typed array (see fetchVoxels). */
export async function readVoxels(opened, onProgress) {
  const { response, shape, dtype } = opened;
  const Type = TYPES[dtype];
  const bytes = new Uint8Array(shape[0] * shape[1] * shape[2] * Type.BYTES_PER_ELEMENT);
  let compressed = 0;
  const counter = new TransformStream({
    transform(chunk, ctl) {
      compressed += chunk.byteLength;
      ctl.enqueue(chunk);
    },
  });
  const inflated = response.body.pipeThrough(counter).pipeThrough(new DecompressionStream("gzip"));
  await readInto(inflated, bytes, onProgress);
  const { response: _, ...meta } = opened;
  return { ...meta, data: new Type(bytes.buffer), bytes: compressed };
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
