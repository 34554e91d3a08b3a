// Upload: drag and drop images (several at once); each is uploaded with progress, then analysed.

import { projectPath, uploadWithProgress } from "./api.js";
import { fmtBytes, fmtNum, h, svg } from "./dom.js";

const PARALLEL = 2;

export function mountUpload(root, ctx) {
  const page = new UploadPage(root, ctx);
  return () => page.destroy();
}

class UploadPage {
  constructor(root, ctx) {
    this.project = ctx.project;
    this.alive = true;
    this.queue = []; // items waiting for a free upload slot
    this.running = 0;
    this.list = h("ul", { class: "upload-list", "data-testid": "upload-list" });
    root.append(
      h(
        "div",
        { class: "page" },
        h(
          "div",
          { class: "page-head" },
          h("h1", { text: "Upload" }),
          h("p", {
            class: "muted",
            text: `Images are analysed by the production model of ${this.project.name} as soon as they arrive.`,
          }),
        ),
        h("section", { class: "card" }, h("div", { class: "card-body" }, this.dropZone(), this.list)),
      ),
    );
  }

  destroy() {
    this.alive = false;
  }

  /** The drop zone, with the file chooser inside it (click, Enter or Space opens it). */
  dropZone() {
    const input = h("input", {
      type: "file",
      multiple: true,
      class: "visually-hidden",
      id: "file-input",
      "data-testid": "file-input",
      accept: "image/*,.dcm,.dicom,.tif,.tiff,application/dicom",
      onchange: (e) => {
        this.add([...e.target.files]);
        e.target.value = "";
      },
    });
    const zone = h(
      "div",
      {
        class: "dropzone",
        tabindex: "0",
        role: "button",
        "data-testid": "dropzone",
        "aria-label": "Drop images here or choose files",
      },
      uploadIcon(),
      h("div", { class: "dz-title", text: "Drop images here" }),
      h("div", { class: "muted", text: "PNG, JPEG, TIFF, BMP or DICOM · several at once" }),
      h("label", { class: "btn", for: "file-input", text: "Choose files…" }),
      input,
    );
    zone.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") input.click();
    });
    for (const type of ["dragenter", "dragover"]) {
      zone.addEventListener(type, (e) => {
        e.preventDefault();
        zone.classList.add("over");
      });
    }
    for (const type of ["dragleave", "drop"]) {
      zone.addEventListener(type, (e) => {
        e.preventDefault();
        zone.classList.remove("over");
      });
    }
    zone.addEventListener("drop", (e) => this.add([...(e.dataTransfer ? e.dataTransfer.files : [])]));
    return zone;
  }

  // -- uploads -----------------------------------------------------------------------------

  add(files) {
    for (const file of files) {
      const upload = uploadItem(file);
      this.list.append(upload.item);
      this.queue.push(upload);
    }
    this.pump();
  }

  /** Start queued uploads while fewer than PARALLEL run. */
  pump() {
    while (this.alive && this.running < PARALLEL && this.queue.length) {
      const upload = this.queue.shift();
      this.running++;
      this.send(upload).finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  async send({ file, progress, status, action, item }) {
    const form = new FormData();
    form.append("file", file, file.name);
    status.textContent = "uploading 0 %";
    item.dataset.state = "uploading";
    try {
      const analysis = await uploadWithProgress(projectPath(this.project, "/analyses"), form, (f) => {
        progress.value = f;
        status.textContent = f < 1 ? `uploading ${Math.round(f * 100)} %` : "analysing…";
        if (f >= 1) item.dataset.state = "analysing";
      });
      progress.value = 1;
      item.dataset.state = "done";
      status.textContent = `analysed by ${analysis.model_version} · uncertainty ${fmtNum(analysis.uncertainty, 3)}`;
      action.append(
        h("a", {
          class: "btn btn-small btn-primary",
          href: `#/viewer/${encodeURIComponent(analysis.id)}`,
          "data-testid": "open-analysis",
          text: "Open",
        }),
      );
    } catch (err) {
      item.dataset.state = "error";
      item.classList.add("failed");
      status.textContent = err.message;
    }
  }
}

/** One file's line in the list, and the parts `send` updates. */
function uploadItem(file) {
  const progress = h("progress", { max: "1", value: "0" });
  const status = h("span", { class: "status", text: "waiting" });
  const action = h("span", { class: "action" });
  const item = h(
    "li",
    { class: "upload-item", "data-testid": "upload-item" },
    h(
      "div",
      { class: "upload-name" },
      h("span", { class: "strong", title: file.name, text: file.name }),
      h("span", { class: "muted small", text: fmtBytes(file.size) }),
    ),
    progress,
    status,
    action,
  );
  return { file, progress, status, action, item };
}

function uploadIcon() {
  return svg(
    "svg",
    { class: "dz-icon", viewBox: "0 0 24 24", width: "36", height: "36", "aria-hidden": "true" },
    svg("path", { d: "M12 15V4m0 0L7.5 8.5M12 4l4.5 4.5M5 14v4.5A1.5 1.5 0 0 0 6.5 20h11a1.5 1.5 0 0 0 1.5-1.5V14" }),
  );
}
