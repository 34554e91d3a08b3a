// The three planes of a volume as the server's /slice route shows them (radiological
// convention): the patient's right on the screen's left, anterior (axial) or superior
// (coronal, sagittal) at the top. A slice is a strided walk through the x-fastest voxels.

export const PLANES = ["axial", "coronal", "sagittal"];

/** The canonical axis (0 = x, 1 = y, 2 = z) each plane fixes. */
export const AXIS = { axial: 2, coronal: 1, sagittal: 0 };

/**
 * Slice `index` of `plane` in a volume of `shape` [X, Y, Z]: { rows, cols, base, rowStride,
 * colStride }, so that pixel (row r, column c) is voxel base + r * rowStride + c * colStride.
 */
export function sliceGeometry(shape, plane, index) {
  const [X, Y, Z] = shape;
  const XY = X * Y;
  if (plane === "axial") {
    return { rows: Y, cols: X, base: X - 1 + X * (Y - 1) + XY * index, rowStride: -X, colStride: -1 };
  }
  if (plane === "coronal") {
    return { rows: Z, cols: X, base: X - 1 + X * index + XY * (Z - 1), rowStride: -XY, colStride: -1 };
  }
  return { rows: Z, cols: Y, base: index + X * (Y - 1) + XY * (Z - 1), rowStride: -XY, colStride: -X };
}

/** Slices in `plane`. */
export function sliceCount(shape, plane) {
  return shape[AXIS[plane]];
}

/** mm per row over mm per column of a slice of `plane` (voxel `spacing` [x, y, z] mm). */
export function sliceAspect(spacing, plane) {
  const [sx, sy, sz] = spacing;
  if (plane === "axial") return sy / sx;
  if (plane === "coronal") return sz / sx;
  return sz / sy;
}

/** Copy slice `g` of `volume` into `out` (rows * cols, row-major). */
export function extractSlice(volume, g, out) {
  let o = 0;
  for (let r = 0; r < g.rows; r++) {
    let v = g.base + r * g.rowStride;
    for (let c = 0; c < g.cols; c++, v += g.colStride) out[o++] = volume[v];
  }
  return out;
}

/** The voxel [x, y, z] at pixel (row, col) of slice `index` of `plane`. */
export function voxelAt(shape, plane, index, row, col) {
  const [X, Y, Z] = shape;
  if (plane === "axial") return [X - 1 - col, Y - 1 - row, index];
  if (plane === "coronal") return [X - 1 - col, index, Z - 1 - row];
  return [index, Y - 1 - col, Z - 1 - row];
}

/** Where voxel [x, y, z] lies in `plane`: { index, row, col }. */
export function pixelOf(shape, plane, [x, y, z]) {
  const [X, Y, Z] = shape;
  if (plane === "axial") return { index: z, row: Y - 1 - y, col: X - 1 - x };
  if (plane === "coronal") return { index: y, row: Z - 1 - z, col: X - 1 - x };
  return { index: x, row: Z - 1 - z, col: Y - 1 - y };
}
