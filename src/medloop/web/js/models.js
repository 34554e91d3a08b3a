// Models: versions with status, parent and metrics; Dice per version; lineage; promote / roll back.

import { api, projectPath } from "./api.js";
import { diceChart } from "./chart.js";
import { append, badge, clear, empty, fmtDate, fmtNum, h, section, toast } from "./dom.js";
import { effortByVersion, effortTable } from "./effort.js";
import { effortChart, MEASURES } from "./effortchart.js";
import { lineageCorrections, lineagePanel } from "./lineage.js";
import { roleAtLeast } from "./roles.js";

export function mountModels(root, ctx) {
  const page = new ModelsPage(root, ctx);
  page.load();
  return () => page.destroy();
}

function dice(metrics, key) {
  const m = metrics?.[key];
  return m && typeof m.mean_dice === "number" ? m.mean_dice : null;
}

class ModelsPage {
  constructor(root, ctx) {
    this.project = ctx.project;
    this.isAdmin = roleAtLeast(ctx.me.role, "admin");
    this.abort = new AbortController();
    this.versions = [];
    this.selected = null; // the version whose lineage is shown
    this.corrections = null; // correction records by id, fetched once
    this.build(root);
  }

  destroy() {
    this.abort.abort();
  }

  build(root) {
    this.chartBox = h("div", { class: "chart-box" });
    this.tableBox = h("div", {}, h("div", { class: "loading", text: "Loading versions…" }));
    this.lineageBox = h("div", { "data-testid": "lineage" }, empty("Choose a version to see where it came from."));
    this.effortBox = h(
      "div",
      { "data-testid": "effort" },
      h("div", { class: "loading", text: "Loading corrections…" }),
    );
    this.prodChip = h("span", { class: "chip", "data-testid": "production-version" });
    const actions = [this.prodChip];
    if (this.isAdmin) {
      actions.push(
        h("button", {
          class: "btn btn-danger",
          type: "button",
          "data-testid": "rollback",
          onclick: () => this.rollback(),
          text: "Roll back production",
        }),
      );
    }
    root.append(
      h(
        "div",
        { class: "page" },
        h(
          "div",
          { class: "page-head" },
          h("h1", { text: "Models" }),
          h("p", {
            class: "muted",
            text: "Every version is immutable. A candidate is promoted only if it is shown no worse on the locked validation set and, once there are five, on held-out corrections.",
          }),
        ),
        section("Versions", actions, this.tableBox),
        section("Dice per version", [], this.chartBox),
        section("Effort per correction, by the version corrected", [], this.effortBox),
        section("Lineage", [], this.lineageBox),
      ),
    );
  }

  async load() {
    try {
      const page = await api(projectPath(this.project, "/models"), { signal: this.abort.signal });
      this.versions = page.items;
      this.render();
      this.showEffort();
      if (this.selected && this.versions.some((v) => v.version === this.selected)) this.showLineage(this.selected);
    } catch (err) {
      if (err.name !== "AbortError") append(clear(this.tableBox), h("div", { class: "error", text: err.message }));
    }
  }

  // -- versions ----------------------------------------------------------------------------

  render() {
    const versions = this.versions;
    const prod = versions.find((v) => v.status === "production");
    this.prodChip.textContent = prod ? `In production: ${prod.version}` : "Nothing in production";
    append(
      clear(this.chartBox),
      versions.length
        ? diceChart(
            versions.map((v) => ({
              version: v.version,
              status: v.status,
              locked: dice(v.metrics, "locked_val"),
              heldout: dice(v.metrics, "heldout_corrections"),
            })),
          )
        : empty("No versions yet: train one from the reference data (Jobs)."),
    );
    append(clear(this.tableBox), versions.length ? this.versionsTable() : empty("No model versions yet."));
  }

  versionsTable() {
    return h(
      "table",
      { class: "table", "data-testid": "models-table" },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["Version", "Status", "Kind", "Parent", "Created"].map((t) => h("th", { text: t })),
          h("th", { class: "num", title: "Mean Dice on the locked validation set", text: "Locked val Dice" }),
          h("th", { class: "num", title: "Mean Dice on held-out corrections", text: "Held-out Dice" }),
          h("th", { class: "num", title: "Corrections trained on", text: "Corrections" }),
          h("th", { text: "" }),
        ),
      ),
      h(
        "tbody",
        {},
        this.versions.map((v) => this.versionRow(v)),
      ),
    );
  }

  versionRow(v) {
    return h(
      "tr",
      {
        "data-testid": "model-row",
        dataset: { version: v.version, status: v.status },
        class: v.version === this.selected ? "selected" : "",
      },
      h("td", { class: "strong", text: v.version }),
      h(
        "td",
        {},
        badge(v.status),
        v.erased_data
          ? h(
              "span",
              {
                class: "badge badge-erased",
                title: `${v.erased_data} of the pairs and corrections it trained on or was gated on were erased since: retrain without them if needed`,
                "data-testid": "saw-erased",
              },
              "saw erased data",
            )
          : null,
      ),
      h("td", { text: v.kind }),
      h("td", { text: v.parent || "—" }),
      h("td", { class: "muted nowrap", text: fmtDate(v.created_at) }),
      h("td", { class: "num", text: fmtNum(dice(v.metrics, "locked_val"), 3) }),
      h("td", { class: "num", text: fmtNum(dice(v.metrics, "heldout_corrections"), 3) }),
      h("td", { class: "num", text: String(lineageCorrections(v).trained.length) }),
      h("td", { class: "actions nowrap" }, this.versionButtons(v)),
    );
  }

  /** Lineage, and Promote for an admin when the version is not in production. */
  versionButtons(v) {
    const button = (action, text, onclick) =>
      h("button", { class: "btn btn-small", type: "button", "data-testid": `${action}-${v.version}`, onclick, text });
    const buttons = [button("lineage", "Lineage", () => this.showLineage(v.version))];
    if (this.isAdmin && v.status !== "production") {
      buttons.push(button("promote", "Promote", () => this.promote(v.version)));
    }
    return buttons;
  }

  // -- lineage -----------------------------------------------------------------------------

  async correctionIndex() {
    if (this.corrections) return this.corrections;
    const page = await api(projectPath(this.project, "/corrections?limit=1000"), { signal: this.abort.signal });
    this.corrections = new Map(page.items.map((c) => [c.id, c]));
    return this.corrections;
  }

  /** How much work each version's predictions still left to the clinicians. */
  async showEffort() {
    try {
      const corrections = [...(await this.correctionIndex()).values()];
      const rows = effortByVersion(corrections);
      if (!rows.length) {
        append(clear(this.effortBox), empty("No corrections yet."));
        return;
      }
      const plot = h("div", { class: "chart-box" });
      const show = (measure) => {
        append(clear(plot), effortChart(corrections, measure));
        for (const b of toggle.children) b.setAttribute("aria-pressed", String(b.dataset.measure === measure));
      };
      const toggle = h(
        "div",
        { class: "segmented" },
        Object.entries(MEASURES).map(([key, m]) =>
          h("button", {
            type: "button",
            class: "seg",
            "data-testid": `effort-${key}`,
            dataset: { measure: key },
            onclick: () => show(key),
            text: m.name,
          }),
        ),
      );
      append(clear(this.effortBox), h("div", { class: "row" }, toggle), plot, effortTable(rows));
      show("edits");
    } catch (err) {
      if (err.name !== "AbortError") append(clear(this.effortBox), h("div", { class: "error", text: err.message }));
    }
  }

  async showLineage(name) {
    this.selected = name;
    for (const tr of this.tableBox.querySelectorAll("tr[data-version]")) {
      tr.classList.toggle("selected", tr.dataset.version === name);
    }
    const v = this.versions.find((x) => x.version === name);
    if (!v) return;
    const corrections = lineageCorrections(v);
    let index = new Map();
    if (corrections.trained.length || corrections.heldOut.length) {
      try {
        index = await this.correctionIndex();
      } catch {
        // shown by id only
      }
    }
    if (this.selected !== name) return;
    append(clear(this.lineageBox), lineagePanel(v, corrections, index));
  }

  // -- admin actions -----------------------------------------------------------------------

  async promote(name) {
    const rejected = this.versions.some((v) => v.version === name && v.status === "rejected");
    let reason = null;
    if (rejected) {
      reason = window.prompt(`The gate rejected ${name}. Why promote it anyway? (kept in the model's events)`);
      if (!reason?.trim()) return;
    } else if (!window.confirm(`Promote ${name} to production? New analyses will use it.`)) return;
    try {
      const options = reason ? { method: "POST", json: { reason } } : { method: "POST" };
      await api(projectPath(this.project, `/models/${encodeURIComponent(name)}/promote`), options);
      toast(`${name} is in production`, "ok");
    } catch (err) {
      toast(err.message, "error", 8000);
    }
    this.load();
  }

  async rollback() {
    const prod = this.versions.find((v) => v.status === "production");
    const from = prod ? prod.version : "the current version";
    if (!window.confirm(`Roll production back from ${from} to the version before it?`)) return;
    try {
      const v = await api(projectPath(this.project, "/models/rollback"), { method: "POST" });
      toast(`Rolled back: ${v.version} is in production`, "ok");
    } catch (err) {
      toast(err.message, "error", 8000);
    }
    this.load();
  }
}
