// Data: the project's reference pairs by split and group, adding more (admins), and deleting
// a pair no model version trained on.

import { api, projectPath } from "./api.js";
import { append, badge, clear, empty, fmtDate, h, section, toast } from "./dom.js";
import { openDialog, select } from "./forms.js";
import { Importer } from "./importer.js";
import { roleAtLeast } from "./roles.js";

const PAGE = 50;
const SPLITS = ["train", "val", "test"];

export function mountData(root, ctx) {
  const page = new DataPage(root, ctx);
  page.load();
  return () => page.destroy();
}

class DataPage {
  constructor(root, ctx) {
    this.project = ctx.project;
    this.isAdmin = roleAtLeast(ctx.me.role, "admin");
    this.filter = { split: "", group: null };
    this.offset = 0;
    this.summaryBox = h("div", { "data-testid": "data-summary" }, h("div", { class: "loading", text: "Loading…" }));
    this.pairsBox = h("div", {}, h("div", { class: "loading", text: "Loading pairs…" }));
    this.filters = h("div", { class: "card-actions" });
    this.importer = this.isAdmin ? new Importer(this.project, () => this.load()) : null;
    root.append(
      h(
        "div",
        { class: "page" },
        h(
          "div",
          { class: "page-head" },
          h("h1", { text: "Data" }),
          h("p", {
            class: "muted",
            text: "Reference images with their masks: train teaches the model, half of val picks the best checkpoint and the other half is the locked set the gate scores; test is never trained on.",
          }),
        ),
        section("Pairs by split and group", [], this.summaryBox),
        this.importer ? section("Add reference data", [], this.importer.el) : null,
        section("Pairs", [this.filters], this.pairsBox),
      ),
    );
  }

  destroy() {
    this.importer?.destroy();
  }

  async load() {
    try {
      const summary = await api(projectPath(this.project, "/reference/summary"));
      this.renderSummary(summary);
      this.renderFilters(summary);
      await this.loadPairs();
    } catch (err) {
      append(clear(this.summaryBox), h("div", { class: "error", text: err.message }));
    }
  }

  async loadPairs() {
    const q = new URLSearchParams({ limit: String(PAGE), offset: String(this.offset) });
    if (this.filter.split) q.set("split", this.filter.split);
    if (this.filter.group !== null) q.set("group", this.filter.group);
    const page = await api(projectPath(this.project, `/reference?${q}`));
    this.renderPairs(page);
  }

  renderSummary(summary) {
    if (!summary.total) {
      append(clear(this.summaryBox), empty("No reference data yet. Add a zip or a folder of images and masks."));
      return;
    }
    const groups = Object.keys(summary.groups).sort();
    const count = (split, group) =>
      summary.cells.find((c) => c.split === split && (c.group || "") === group)?.count || 0;
    const head = h(
      "tr",
      {},
      h("th", { text: "Split" }),
      groups.map((g) => h("th", { class: "num", text: g || "(no group)" })),
      h("th", { class: "num", text: "All" }),
    );
    const rows = SPLITS.filter((s) => summary.splits[s]).map((split) =>
      h(
        "tr",
        { dataset: { split } },
        h("td", { class: "strong", text: split }),
        groups.map((g) => h("td", { class: "num", text: String(count(split, g)) })),
        h("td", { class: "num strong", "data-testid": `count-${split}`, text: String(summary.splits[split]) }),
      ),
    );
    append(
      clear(this.summaryBox),
      h("table", { class: "table compact summary-table" }, h("thead", {}, head), h("tbody", {}, rows)),
      h("p", { class: "muted small", "data-testid": "data-total", text: `${summary.total} pairs in all` }),
    );
  }

  renderFilters(summary) {
    const groups = Object.keys(summary.groups).sort();
    const split = select([["", "all splits"], ...SPLITS], this.filter.split, { "aria-label": "Split" });
    const group = select(
      [["*", "all groups"], ...groups.map((g) => [g, g || "(no group)"])],
      this.filter.group === null ? "*" : this.filter.group,
      { "aria-label": "Group" },
    );
    const apply = () => {
      this.filter = { split: split.value, group: group.value === "*" ? null : group.value };
      this.offset = 0;
      this.loadPairs();
    };
    split.addEventListener("change", apply);
    group.addEventListener("change", apply);
    append(clear(this.filters), split, group);
  }

  renderPairs(page) {
    if (!page.items.length) {
      append(clear(this.pairsBox), empty("No pairs here."));
      return;
    }
    const head = ["Image", "Size", "Split", "Group", "Trained", "Added", ""].map((t) => h("th", { text: t }));
    append(
      clear(this.pairsBox),
      h(
        "table",
        { class: "table data-table", "data-testid": "pairs-table" },
        h("thead", {}, h("tr", {}, head)),
        h(
          "tbody",
          {},
          page.items.map((p) => this.row(p)),
        ),
      ),
      this.pager(page.total),
    );
  }

  row(p) {
    const trained = p.trained_by.length
      ? badge(`by ${p.trained_by.join(", ")}`, "production")
      : h("span", { class: "muted", text: "no" });
    return h(
      "tr",
      { "data-testid": "pair-row", dataset: { pair: p.id } },
      h("td", {}, h("div", { class: "strong file-name", title: p.filename, text: p.filename })),
      h("td", { class: "muted nowrap", text: `${p.width} × ${p.height}` }),
      h("td", {}, badge(p.split, p.split === "test" ? "retired" : "candidate")),
      h("td", { class: "ellipsis", title: p.group || "", text: p.group || "—" }),
      h("td", {}, trained),
      h("td", { class: "muted nowrap", text: fmtDate(p.created_at) }),
      h("td", { class: "right" }, this.deleteButton(p)),
    );
  }

  deleteButton(p) {
    if (!this.isAdmin) return null;
    const trained = p.trained_by.length > 0;
    return h("button", {
      class: "btn btn-small btn-danger",
      type: "button",
      disabled: trained,
      title: trained
        ? `${p.trained_by.join(", ")} trained on it: erase the image from its page instead`
        : "Delete this pair",
      "data-testid": "delete-pair",
      onclick: () => this.remove(p),
      text: "Delete",
    });
  }

  async remove(p) {
    const done = await openDialog({
      title: "Delete this pair?",
      body: h("p", { text: `${p.filename} (${p.split}) and its mask are removed. No model version trained on it.` }),
      ok: "Delete",
      danger: true,
      onOk: async () => {
        await api(projectPath(this.project, `/reference/${encodeURIComponent(p.id)}`), { method: "DELETE" });
        return true;
      },
    });
    if (done !== null) {
      toast(`${p.filename} deleted`, "ok");
      this.load();
    }
  }

  pager(total) {
    const from = this.offset + 1;
    const to = Math.min(this.offset + PAGE, total);
    const go = (offset) => {
      this.offset = offset;
      this.loadPairs();
    };
    return h(
      "div",
      { class: "pager" },
      h("span", { class: "muted small", text: `${from}–${to} of ${total}` }),
      h("button", {
        class: "btn btn-small",
        type: "button",
        disabled: this.offset === 0,
        onclick: () => go(Math.max(0, this.offset - PAGE)),
        text: "Previous",
      }),
      h("button", {
        class: "btn btn-small",
        type: "button",
        disabled: to >= total,
        onclick: () => go(this.offset + PAGE),
        text: "Next",
      }),
    );
  }
}
