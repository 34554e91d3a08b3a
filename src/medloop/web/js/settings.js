// Settings (admins): labels' names and colours, the learning policy, the gate and training,
// each field with one line of help and its default, from the server's schema. A change is
// audited with before and after, and applies to the next job (never to a running one).

import { api, projectPath } from "./api.js";
import { append, clear, h, section, toast } from "./dom.js";
import { openDialog } from "./forms.js";
import { schemaField } from "./schemafields.js";

const GROUPS = [
  { key: null, title: "Project", fields: ["image_kind", "spatial_dims", "finetune_every", "max_frames"] },
  { key: "learning", title: "Learning from corrections (fine-tune)" },
  { key: "acceptance", title: "Promotion gate" },
  { key: "training", title: "Training from scratch" },
];

export function mountSettings(root, ctx) {
  const page = new SettingsPage(root, ctx);
  page.load();
  return () => {};
}

class SettingsPage {
  constructor(root, ctx) {
    this.ctx = ctx;
    this.project = ctx.project;
    this.fields = []; // {group, name, read, current}
    this.body = h("div", { class: "stack" }, h("div", { class: "loading", text: "Loading settings…" }));
    this.result = h("div", { "data-testid": "settings-result" });
    root.append(
      h(
        "div",
        { class: "page" },
        h(
          "div",
          { class: "page-head" },
          h("h1", { text: "Settings" }),
          h("p", {
            class: "muted",
            text: "Changes apply to the next job, never to one that is running, and the audit trail keeps each value before and after.",
          }),
        ),
        this.body,
      ),
    );
  }

  async load() {
    try {
      const [schema, project] = await Promise.all([
        api("/api/v1/schemas/project-settings"),
        api(projectPath(this.project, "")),
      ]);
      this.render(schema, project);
    } catch (err) {
      append(clear(this.body), h("div", { class: "error", text: err.message }));
    }
  }

  render(schema, project) {
    const defs = schema.$defs || {};
    this.fields = [];
    this.labels = project.labels.map((l) => ({ ...l }));
    const cards = GROUPS.map((g) => {
      const props = g.key ? defs[schema.properties[g.key].$ref.split("/").pop()].properties : schema.properties;
      const names = g.fields || Object.keys(props);
      const current = g.key ? project[g.key] || {} : project;
      const controls = names.map((name) => {
        const f = schemaField(g.key ? `${g.key}.${name}` : name, props[name], defs, current[name]);
        this.fields.push({ group: g.key, name, read: f.read, current: current[name] });
        return f.el;
      });
      return section(g.title, [], h("div", { class: "settings-grid" }, controls));
    });
    const save = h("button", {
      class: "btn btn-primary",
      type: "button",
      "data-testid": "save-settings",
      onclick: () => this.save(),
      text: "Save changes",
    });
    append(
      clear(this.body),
      this.labelsCard(),
      cards,
      h("div", { class: "form-actions" }, save),
      this.result,
      this.archiveCard(),
    );
  }

  archiveCard() {
    const archive = async () => {
      const project = await openDialog({
        title: `Archive ${this.project.name}?`,
        body: h("p", {
          text: "It becomes read-only and leaves the project list; nothing is deleted. An admin of every project can restore it from the project list.",
        }),
        ok: "Archive",
        danger: true,
        testid: "archive-dialog",
        onOk: () => api(projectPath(this.project, "/archive"), { method: "POST" }),
      });
      if (project) {
        toast(`${this.project.name} archived`, "ok");
        await this.ctx.projectChanged(project, "worklist");
      }
    };
    return section(
      "Archive",
      [],
      h("p", { class: "muted", text: "Archive a project that is done: its data and models stay, read-only." }),
      h("button", {
        class: "btn btn-danger",
        type: "button",
        "data-testid": "archive-project",
        onclick: archive,
        text: "Archive this project…",
      }),
    );
  }

  labelsCard() {
    const rows = this.labels.map((lab) => {
      const name = h("input", { type: "text", value: lab.name, maxlength: "64", "aria-label": `Label ${lab.value}` });
      const color = h("input", { type: "color", value: lab.color, "aria-label": `Colour of ${lab.name}` });
      name.addEventListener("input", () => {
        lab.name = name.value.trim();
      });
      color.addEventListener("input", () => {
        lab.color = color.value;
      });
      return h(
        "div",
        { class: "label-row" },
        h("span", { class: "label-value mono", text: String(lab.value) }),
        name,
        color,
      );
    });
    const note = "Names and colours may change at any time; the values are fixed once the project holds data.";
    return section("Labels", [], h("div", { class: "label-rows" }, rows), h("p", { class: "field-help", text: note }));
  }

  /** The merge patch of what changed. */
  patch() {
    const out = {};
    for (const f of this.fields) {
      const value = f.read();
      if (JSON.stringify(value) === JSON.stringify(f.current ?? null)) continue;
      if (f.group) out[f.group] = { ...(out[f.group] || {}), [f.name]: value };
      else out[f.name] = value;
    }
    const labels = this.labels.map((l) => ({ value: l.value, name: l.name, color: l.color }));
    if (JSON.stringify(labels) !== JSON.stringify(this.project.labels)) out.labels = labels;
    return out;
  }

  async save() {
    clear(this.result);
    let patch;
    try {
      patch = this.patch();
    } catch (err) {
      this.result.append(h("p", { class: "error", role: "alert", text: err.message }));
      return;
    }
    if (!Object.keys(patch).length) {
      toast("Nothing changed", "info");
      return;
    }
    try {
      const project = await api(projectPath(this.project, ""), { method: "PATCH", json: patch });
      toast("Saved: the next job uses the new settings", "ok");
      await this.ctx.projectChanged(project, "settings");
    } catch (err) {
      this.result.append(h("p", { class: "error", role: "alert", "data-testid": "settings-error", text: err.message }));
    }
  }
}
