// Adding reference data from the browser: a zip goes up whole and is imported by a job
// (upload progress, then the job's progress and its list of refused pairs); a folder is
// paired here and each pair goes up on its own, with its own progress and verdict.

import { api, projectPath, uploadWithProgress } from "./api.js";
import { clear, fmtBytes, h } from "./dom.js";
import { field, select } from "./forms.js";
import { autoSplits, chosenFiles, droppedFiles, pairFiles } from "./pairs.js";

const PARALLEL = 2;
const POLL_MS = 1000;

export class Importer {
  /** `onChange()` is called whenever pairs were added (the page reloads its lists). */
  constructor(project, onChange) {
    this.project = project;
    this.onChange = onChange;
    this.alive = true;
    this.split = select(
      [
        ["auto", "auto (every 10th by name to val)"],
        ["train", "train"],
        ["val", "val"],
        ["test", "test (never trained on)"],
      ],
      "auto",
      { "data-testid": "import-split" },
    );
    this.group = h("input", { type: "text", maxlength: "64", placeholder: "optional", "data-testid": "import-group" });
    this.list = h("ul", { class: "upload-list", "data-testid": "import-list" });
    this.el = h(
      "div",
      {},
      h(
        "div",
        { class: "form-row" },
        field("Split of pairs without one", this.split),
        field("Group of pairs without one", this.group, "e.g. a stain, a site or a scanner"),
      ),
      this.dropZone(),
      this.list,
    );
  }

  destroy() {
    this.alive = false;
  }

  dropZone() {
    const zipInput = h("input", {
      type: "file",
      accept: ".zip,application/zip",
      class: "visually-hidden",
      id: "zip-input",
      "data-testid": "zip-input",
      onchange: (e) => this.take(chosenFiles(e.target.files), e.target),
    });
    const dirInput = h("input", {
      type: "file",
      webkitdirectory: true,
      class: "visually-hidden",
      id: "dir-input",
      "data-testid": "folder-input",
      onchange: (e) => this.take(chosenFiles(e.target.files), e.target),
    });
    const zone = h(
      "div",
      { class: "dropzone", "data-testid": "data-dropzone" },
      h("div", { class: "dz-title", text: "Drop a zip or a folder of images and masks" }),
      h("div", {
        class: "muted",
        text: "images/ + masks/ paired by file name, or a manifest.csv with image, mask, split and group",
      }),
      h(
        "div",
        { class: "dz-buttons" },
        h("label", { class: "btn", for: "zip-input", text: "Choose a zip…" }),
        h("label", { class: "btn", for: "dir-input", text: "Choose a folder…" }),
      ),
      zipInput,
      dirInput,
    );
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (e) => {
        e.preventDefault();
        zone.classList.add("over");
      });
    }
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", async (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      this.take(await droppedFiles(e.dataTransfer));
    });
    return zone;
  }

  async take(files, input) {
    if (input) input.value = "";
    const zips = files.filter((f) => f.path.toLowerCase().endsWith(".zip"));
    for (const zip of zips) this.sendZip(zip.file);
    const rest = files.filter((f) => !f.path.toLowerCase().endsWith(".zip"));
    if (rest.length) await this.sendFolder(rest);
  }

  // -- a zip: one upload, then the import job ---------------------------------------------

  async sendZip(file) {
    const row = item(file.name, fmtBytes(file.size));
    this.list.prepend(row.li);
    const form = new FormData();
    form.append("file", file, file.name);
    form.append("split", this.split.value);
    if (this.group.value.trim()) form.append("group", this.group.value.trim());
    try {
      const out = await uploadWithProgress(projectPath(this.project, "/reference/import"), form, (f) => {
        row.set(f, f < 1 ? `uploading ${Math.round(f * 100)} %` : "checking the archive…");
      });
      row.set(0, `${out.pairs} pairs: importing…`, "importing");
      await this.follow(out.job.id, row);
    } catch (err) {
      row.fail(err.message);
    }
  }

  async follow(jobId, row) {
    while (this.alive) {
      const job = await api(projectPath(this.project, `/jobs/${encodeURIComponent(jobId)}`));
      const last = (job.log_tail || "").trim().split("\n").pop() || "";
      if (job.state === "succeeded") {
        row.done(job.result);
        this.onChange();
        return;
      }
      if (job.state === "failed" || job.state === "cancelled") {
        row.fail(job.error || job.state);
        return;
      }
      row.set(job.progress, `importing: ${Math.round(job.progress * 100)} % ${last ? `· ${last}` : ""}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }

  // -- a folder: paired here, each pair sent on its own ---------------------------------------

  async sendFolder(files) {
    const { pairs, problems } = await pairFiles(files);
    for (const p of problems) item(p.key, "").fail(p.reason, this.list);
    const auto = await autoSplits(pairs.filter((p) => !p.split).map((p) => p.key));
    const queue = pairs.map((p) => ({ ...p, split: p.split || this.defaultSplit(auto, p.key) }));
    const rows = queue.map((p) => {
      const row = item(p.key, fmtBytes(p.image.size + p.mask.size));
      this.list.append(row.li);
      return [p, row];
    });
    const next = async () => {
      while (rows.length && this.alive) {
        const [pair, row] = rows.shift();
        await this.sendPair(pair, row);
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, next));
    this.onChange();
  }

  defaultSplit(auto, key) {
    return this.split.value === "auto" ? auto.get(key) || "train" : this.split.value;
  }

  async sendPair(pair, row) {
    const form = new FormData();
    form.append("image", pair.image, pair.image.name);
    form.append("mask", pair.mask, pair.mask.name);
    form.append("split", pair.split);
    const group = pair.group || this.group.value.trim();
    if (group) form.append("group", group);
    try {
      await uploadWithProgress(projectPath(this.project, "/reference"), form, (f) => {
        row.set(f, f < 1 ? `uploading ${Math.round(f * 100)} %` : "validating…");
      });
      row.ok(`stored in ${pair.split}${group ? ` · ${group}` : ""}`);
    } catch (err) {
      row.fail(err.message);
    }
  }
}

/** One line of the list: a name, a progress bar and a status. */
function item(name, size) {
  const progress = h("progress", { max: "1", value: "0" });
  const status = h("span", { class: "status", "data-testid": "import-status", text: "waiting" });
  const details = h("div", { class: "import-details" });
  const li = h(
    "li",
    { class: "upload-item", "data-testid": "import-item", dataset: { state: "waiting" } },
    h(
      "div",
      { class: "upload-name" },
      h("span", { class: "strong file-name", title: name, text: name }),
      h("span", { class: "muted small", text: size }),
    ),
    progress,
    status,
    details,
  );
  const row = {
    li,
    set(f, text, state = "uploading") {
      progress.value = f;
      status.textContent = text;
      li.dataset.state = state;
    },
    ok(text) {
      row.set(1, text, "done");
    },
    fail(text, list) {
      li.dataset.state = "error";
      li.classList.add("failed");
      status.textContent = text;
      if (list) list.append(li);
    },
    done(result) {
      row.set(1, `added ${result.added} · already there ${result.present} · refused ${result.failed}`, "done");
      if (result.failed) clear(details).append(errorTable(result));
    },
  };
  return row;
}

function errorTable(result) {
  return h(
    "details",
    { open: true, "data-testid": "import-errors" },
    h("summary", { text: `${result.failed} pair(s) to fix` }),
    h(
      "table",
      { class: "table compact" },
      h("thead", {}, h("tr", {}, h("th", { text: "Pair" }), h("th", { text: "Why it was refused" }))),
      h(
        "tbody",
        {},
        result.errors.map((e) =>
          h("tr", {}, h("td", { class: "mono small", text: e.key }), h("td", { class: "small", text: e.reason })),
        ),
      ),
    ),
  );
}
