// A dropped folder of reference data, paired in the browser the way the server pairs a zip:
// images/ + masks/ by file stem, or a manifest.csv (image, mask, optional split and group).

const IMAGE_EXT = new Set(["png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif", "dcm"]);
const SPLITS = new Set(["train", "val", "test"]);

/** Every file of a drop (folders walked), as {path, file}. */
export async function droppedFiles(dataTransfer) {
  const entries = [...(dataTransfer.items || [])]
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (!entries.length) return [...(dataTransfer.files || [])].map((file) => ({ path: file.name, file }));
  const out = [];
  for (const entry of entries) await walk(entry, "", out);
  return out;
}

async function walk(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    out.push({ path: `${prefix}${entry.name}`, file });
    return;
  }
  const reader = entry.createReader();
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) return;
    for (const child of batch) await walk(child, `${prefix}${entry.name}/`, out);
  }
}

/** Files chosen with an <input> (a folder chooser gives their relative paths). */
export function chosenFiles(fileList) {
  return [...fileList].map((file) => ({ path: file.webkitRelativePath || file.name, file }));
}

function stemOf(name) {
  const base = name.split("/").pop();
  if (base.startsWith(".")) return null;
  const dot = base.lastIndexOf(".");
  const ext = dot > 0 ? base.slice(dot + 1).toLowerCase() : "";
  if (IMAGE_EXT.has(ext)) return base.slice(0, dot);
  if (ext === "" || /^\d+$/.test(ext)) return base;
  return null;
}

/** Paths relative to the dataset's root: its one top folder (what a folder drop gives) removed. */
function rooted(files) {
  const clean = files.filter((f) => !f.path.split("/").some((part) => part === "__MACOSX"));
  const top = (p) => p.path.split("/")[0];
  const hasRoot = clean.some((f) => f.path === "manifest.csv" || f.path.startsWith("images/"));
  const tops = new Set(clean.filter((f) => f.path.includes("/")).map(top));
  if (!hasRoot && tops.size === 1) {
    const prefix = `${[...tops][0]}/`;
    return clean.map((f) => ({ path: f.path.startsWith(prefix) ? f.path.slice(prefix.length) : f.path, file: f.file }));
  }
  return clean;
}

/** The pairs of a dropped dataset and the files that make no pair: {pairs, problems}. */
export async function pairFiles(files) {
  const byPath = new Map(rooted(files).map((f) => [f.path, f.file]));
  if (byPath.has("manifest.csv")) return fromManifest(await byPath.get("manifest.csv").text(), byPath);
  return byStem(byPath);
}

function byStem(byPath) {
  const folder = (name) => {
    const found = new Map();
    for (const [path, file] of byPath) {
      const rest = path.startsWith(`${name}/`) ? path.slice(name.length + 1) : null;
      const stem = rest && !rest.includes("/") ? stemOf(rest) : null;
      if (stem !== null) found.set(stem, [...(found.get(stem) || []), { path, file }]);
    }
    return found;
  };
  const images = folder("images");
  const masks = folder("masks");
  const pairs = [];
  const problems = [];
  if (!images.size && !masks.size) {
    problems.push({ key: "(folder)", reason: "expected manifest.csv or the folders images/ and masks/" });
  }
  for (const stem of [...new Set([...images.keys(), ...masks.keys()])].sort()) {
    const im = images.get(stem) || [];
    const mk = masks.get(stem) || [];
    const key = (im[0] || mk[0]).path;
    if (im.length > 1 || mk.length > 1) problems.push({ key, reason: `several files share the name stem ${stem}` });
    else if (!mk.length) problems.push({ key, reason: `image ${stem} has no mask` });
    else if (!im.length) problems.push({ key, reason: `mask ${stem} has no image` });
    else pairs.push({ key, image: im[0].file, mask: mk[0].file, split: null, group: null });
  }
  return { pairs, problems };
}

function fromManifest(text, byPath) {
  const rows = parseCsv(text.replace(/^\uFEFF/, ""));
  const header = (rows.shift() || []).map((c) => c.trim());
  const col = (name) => header.indexOf(name);
  if (col("image") < 0 || col("mask") < 0) {
    return { pairs: [], problems: [{ key: "manifest.csv", reason: "needs the columns image and mask" }] };
  }
  const pairs = [];
  const problems = [];
  rows.forEach((row, i) => {
    if (row.length === 1 && !row[0].trim()) return;
    const get = (name) => (col(name) >= 0 ? (row[col(name)] || "").trim() : "");
    const [image, mask, split, group] = ["image", "mask", "split", "group"].map(get);
    const key = image || `line ${i + 2}`;
    let reason = null;
    if (!byPath.has(image)) reason = `image ${image || "(empty)"} is not in the folder`;
    else if (!byPath.has(mask)) reason = `mask ${mask || "(empty)"} is not in the folder`;
    else if (split && !SPLITS.has(split)) reason = `split ${split} is not one of train, val, test`;
    if (reason) problems.push({ key, reason: `manifest.csv, line ${i + 2}: ${reason}` });
    else
      pairs.push({ key, image: byPath.get(image), mask: byPath.get(mask), split: split || null, group: group || null });
  });
  return { pairs, problems };
}

/** Rows of a CSV text (quoted fields with "" escapes, commas and newlines inside quotes). */
export function parseCsv(text) {
  const rows = [[]];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ",") {
      rows[rows.length - 1].push(cell);
      cell = "";
    } else if (ch === "\n" || ch === "\r") {
      if (ch === "\r" && text[i + 1] === "\n") i++;
      rows[rows.length - 1].push(cell);
      cell = "";
      rows.push([]);
    } else cell += ch;
  }
  rows[rows.length - 1].push(cell);
  return rows.filter((r) => r.length > 1 || r[0] !== "");
}

/** The split the server's zip import gives pairs without one: every 10th by key hash is val. */
export async function autoSplits(keys) {
  const hashed = await Promise.all(keys.map(async (k) => [await sha256Hex(k), k]));
  hashed.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const nVal = keys.length >= 2 ? Math.max(1, Math.floor(keys.length / 10)) : 0;
  return new Map(hashed.map(([, k], i) => [k, i < nVal ? "val" : "train"]));
}

async function sha256Hex(text) {
  if (!globalThis.crypto?.subtle) return text; // not a secure context: order by name instead
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
