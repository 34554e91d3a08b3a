// Create a project (admins of every project): name, labels with colour pickers, image kind, 2D/3D.

import { api } from "./api.js";
import { append, clear, h, section, toast } from "./dom.js";
import { field, select } from "./forms.js";

const COLORS = ["#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de", "#ff9500", "#5ac8fa", "#ff2d55"];
const KINDS = ["microscopy", "histology", "ct", "mri", "x-ray", "ultrasound", "endoscopy", "fundus", "dermatology"];

/**
 * The "Create a project" card. `onCreated(project)` is called with the new project.
 */
export function newProjectCard(onCreated) {
  const form = new NewProjectForm(onCreated);
  return section("Create a project", [], form.el);
}

class NewProjectForm {
  constructor(onCreated) {
    this.onCreated = onCreated;
    this.name = h("input", {
      type: "text",
      name: "name",
      required: true,
      maxlength: "64",
      pattern: "[A-Za-z0-9][A-Za-z0-9_.\\-]*",
      placeholder: "e.g. nuclei",
      "data-testid": "new-project-name",
    });
    this.kind = h("input", {
      type: "text",
      list: "image-kinds",
      value: "microscopy",
      "data-testid": "new-project-kind",
    });
    this.dims = select(
      [
        [2, "2D images (a multi-frame DICOM's frames are 2D images)"],
        [3, "3D volumes (NIfTI, NRRD)"],
      ],
      2,
      { "data-testid": "new-project-dims" },
    );
    this.labels = h("div", { class: "label-rows", "data-testid": "label-rows" });
    this.error = h("p", { class: "error", role: "alert", "data-testid": "new-project-error" });
    this.addLabel("");
    this.el = this.build();
  }

  build() {
    const form = h(
      "form",
      { class: "form-grid", "data-testid": "new-project-form" },
      field("Name", this.name, "Letters, digits, '.', '_' and '-'; it names the project in the API too."),
      h(
        "div",
        { class: "field" },
        h("span", { class: "field-label", text: "Labels" }),
        this.labels,
        h("button", {
          class: "btn btn-small",
          type: "button",
          "data-testid": "add-label",
          onclick: () => this.addLabel(""),
          text: "Add a label",
        }),
        h("div", { class: "field-help", text: "What the model segments; background is implied. Values are 1, 2, …" }),
      ),
      field("Image kind", this.kind, "For people: what the images are."),
      h(
        "datalist",
        { id: "image-kinds" },
        KINDS.map((k) => h("option", { value: k })),
      ),
      field("Dimensions", this.dims),
      this.error,
      h("button", {
        class: "btn btn-primary",
        type: "submit",
        "data-testid": "create-project",
        text: "Create project",
      }),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit();
    });
    return form;
  }

  addLabel(name) {
    const i = this.labels.children.length;
    const row = h(
      "div",
      { class: "label-row", "data-testid": "label-row" },
      h("span", { class: "label-value mono", text: String(i + 1) }),
      h("input", {
        type: "text",
        class: "label-name",
        value: name,
        required: true,
        maxlength: "64",
        placeholder: "label name, e.g. nucleus",
        "aria-label": `Label ${i + 1} name`,
        "data-testid": "label-name",
      }),
      h("input", {
        type: "color",
        class: "label-color",
        value: COLORS[i % COLORS.length],
        "aria-label": `Label ${i + 1} colour`,
        "data-testid": "label-color",
      }),
      h("button", {
        class: "btn btn-small",
        type: "button",
        "aria-label": `Remove label ${i + 1}`,
        onclick: () => this.removeLabel(row),
        text: "Remove",
      }),
    );
    this.labels.append(row);
  }

  removeLabel(row) {
    if (this.labels.children.length <= 1) return;
    row.remove();
    [...this.labels.children].forEach((r, i) => {
      r.querySelector(".label-value").textContent = String(i + 1);
    });
  }

  body() {
    const labels = [...this.labels.children].map((row, i) => ({
      value: i + 1,
      name: row.querySelector(".label-name").value.trim(),
      color: row.querySelector(".label-color").value,
    }));
    return {
      name: this.name.value.trim(),
      labels,
      image_kind: this.kind.value.trim() || "microscopy",
      spatial_dims: Number(this.dims.value),
    };
  }

  async submit() {
    this.error.textContent = "";
    try {
      const project = await api("/api/v1/projects", { method: "POST", json: this.body() });
      this.onCreated(project);
    } catch (err) {
      this.error.textContent = err.message;
    }
  }
}

/** Archived projects (fetched when opened), each with Restore. `onRestored(project)` after. */
export function archivedProjects(onRestored) {
  const list = h("ul", { class: "project-list", "data-testid": "archived-list" });
  const details = h("details", { class: "archived" }, h("summary", { text: "Archived projects" }), list);
  details.addEventListener("toggle", async () => {
    if (!details.open) return;
    const page = await api("/api/v1/projects?archived=true");
    const restore = async (p) => {
      const back = await api(`/api/v1/projects/${encodeURIComponent(p.id)}/restore`, { method: "POST" });
      toast(`${p.name} restored`, "ok");
      onRestored(back);
    };
    append(
      clear(list),
      page.items.length
        ? page.items.map((p) =>
            h(
              "li",
              { class: "archived-item" },
              h("span", { class: "strong", text: p.name }),
              h("button", { class: "btn btn-small", type: "button", onclick: () => restore(p), text: "Restore" }),
            ),
          )
        : h("li", { class: "muted", text: "None." }),
    );
  });
  return details;
}
