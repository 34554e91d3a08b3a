// Models: versions with status, parent and metrics; Dice per version; lineage; promote / roll back.

import { api, projectPath } from "./api.js";
import { diceChart } from "./chart.js";
import { append, badge, clear, empty, fmtDate, fmtNum, h, section, shortId, toast } from "./dom.js";
import { roleAtLeast } from "./roles.js";

function dice(metrics, key) {
  const m = metrics?.[key];
  return m && typeof m.mean_dice === "number" ? m.mean_dice : null;
}

export function mountModels(root, ctx) {
  const isAdmin = roleAtLeast(ctx.me.role, "admin");
  const abort = new AbortController();
  const chartBox = h("div", { class: "chart-box" });
  const tableBox = h("div", {}, h("div", { class: "loading", text: "Loading versions…" }));
  const lineageBox = h("div", { "data-testid": "lineage" }, empty("Choose a version to see where it came from."));
  const prodChip = h("span", { class: "chip", "data-testid": "production-version" });
  const actions = [prodChip];
  if (isAdmin) {
    actions.push(
      h("button", {
        class: "btn btn-danger",
        type: "button",
        "data-testid": "rollback",
        onclick: () => rollback(),
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
          text: "Every version is immutable. A candidate is promoted only if it does not get worse on the locked validation set and on held-out corrections.",
        }),
      ),
      section("Versions", actions, tableBox),
      section("Dice per version", [], chartBox),
      section("Lineage", [], lineageBox),
    ),
  );

  let versions = [];
  let selected = null;
  let corrections = null;

  async function load() {
    try {
      const page = await api(projectPath(ctx.project, "/models"), { signal: abort.signal });
      versions = page.items;
      render();
      if (selected && versions.some((v) => v.version === selected)) showLineage(selected);
    } catch (err) {
      if (err.name !== "AbortError") append(clear(tableBox), h("div", { class: "error", text: err.message }));
    }
  }

  function render() {
    const prod = versions.find((v) => v.status === "production");
    prodChip.textContent = prod ? `In production: ${prod.version}` : "Nothing in production";
    append(
      clear(chartBox),
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
    if (!versions.length) {
      append(clear(tableBox), empty("No model versions yet."));
      return;
    }
    const rows = versions.map((v) => {
      const nCorr = (v.lineage.data || []).filter((d) => d.role === "correction").length;
      const cells = [
        h("td", { class: "strong", text: v.version }),
        h("td", {}, badge(v.status)),
        h("td", { text: v.kind }),
        h("td", { text: v.parent || "—" }),
        h("td", { class: "muted nowrap", text: fmtDate(v.created_at) }),
        h("td", { class: "num", text: fmtNum(dice(v.metrics, "locked_val"), 3) }),
        h("td", { class: "num", text: fmtNum(dice(v.metrics, "heldout_corrections"), 3) }),
        h("td", { class: "num", text: String(nCorr) }),
      ];
      const buttons = [
        h("button", {
          class: "btn btn-small",
          type: "button",
          "data-testid": `lineage-${v.version}`,
          onclick: () => showLineage(v.version),
          text: "Lineage",
        }),
      ];
      if (isAdmin && v.status !== "production") {
        buttons.push(
          h("button", {
            class: "btn btn-small",
            type: "button",
            "data-testid": `promote-${v.version}`,
            onclick: () => promote(v.version),
            text: "Promote",
          }),
        );
      }
      cells.push(h("td", { class: "actions nowrap" }, buttons));
      return h(
        "tr",
        {
          "data-testid": "model-row",
          dataset: { version: v.version, status: v.status },
          class: v.version === selected ? "selected" : "",
        },
        cells,
      );
    });
    append(
      clear(tableBox),
      h(
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
        h("tbody", {}, rows),
      ),
    );
  }

  async function correctionIndex() {
    if (corrections) return corrections;
    const page = await api(projectPath(ctx.project, "/corrections?limit=1000"), { signal: abort.signal });
    corrections = new Map(page.items.map((c) => [c.id, c]));
    return corrections;
  }

  async function showLineage(name) {
    selected = name;
    for (const tr of tableBox.querySelectorAll("tr[data-version]"))
      tr.classList.toggle("selected", tr.dataset.version === name);
    const v = versions.find((x) => x.version === name);
    if (!v) return;
    const lin = v.lineage || {};
    const data = lin.data || [];
    const byRole = {};
    for (const d of data) byRole[d.role] = (byRole[d.role] || 0) + 1;
    const dl = h("dl", { class: "facts" });
    const fact = (k, val) => dl.append(h("dt", { text: k }), h("dd", { text: val }));
    fact("Version", v.version);
    fact("Status", v.status);
    fact("Kind", lin.kind || v.kind);
    fact("Parent", lin.parent || "—");
    fact("Created", fmtDate(v.created_at));
    fact(
      "Trained on",
      Object.entries(byRole)
        .map(([r, n]) => `${n} ${r}`)
        .join(", ") || "—",
    );
    fact("Held-out corrections", String((lin.held_out_corrections || []).length));
    fact("Seed", lin.seed === undefined ? "—" : String(lin.seed));
    if (lin.software)
      fact(
        "Software",
        Object.entries(lin.software)
          .map(([k, s]) => `${k} ${s}`)
          .join(", "),
      );
    const report = v.report;
    const gate = report
      ? h(
          "div",
          { class: "gate" },
          h(
            "h3",
            {},
            "Gate: ",
            report.accepted ? badge("accepted", "production") : badge("rejected", "rejected"),
            ` against ${report.against || "—"}`,
          ),
          h(
            "ul",
            { class: "reasons" },
            (report.reasons || []).map((r) => h("li", { text: r })),
          ),
        )
      : null;
    const corrRefs = data.filter((d) => d.role === "correction");
    const held = lin.held_out_corrections || [];
    let corrTable = empty("This version was trained on no corrections.");
    if (corrRefs.length || held.length) {
      let index = new Map();
      try {
        index = await correctionIndex();
      } catch {
        // shown by id only
      }
      const line = (id, weight, role) => {
        const c = index.get(id);
        return h(
          "tr",
          { "data-testid": "lineage-correction" },
          h("td", { class: "mono", text: shortId(id) }),
          h("td", { text: c ? `#${c.seq}` : "—" }),
          h("td", { text: role }),
          h("td", { text: c ? c.author || "—" : "—" }),
          h("td", { text: c ? c.model_version : "—" }),
          h("td", { class: "num", text: c ? fmtNum(c.dice_vs_prediction, 3) : "—" }),
          h("td", { class: "num", text: weight === null ? "—" : fmtNum(weight, 1) }),
          h("td", { class: "muted", text: c ? fmtDate(c.created_at) : "—" }),
        );
      };
      corrTable = h(
        "table",
        { class: "table compact" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Correction", "No.", "Use", "Author", "Corrects", "Dice vs prediction", "Weight", "When"].map((t) =>
              h("th", { text: t }),
            ),
          ),
        ),
        h(
          "tbody",
          {},
          corrRefs.map((d) => line(d.key, d.weight, "trained")),
          held.map((id) => line(id, null, "held out")),
        ),
      );
    }
    if (selected !== name) return;
    append(
      clear(lineageBox),
      h(
        "div",
        { class: "lineage" },
        h("div", {}, dl, gate),
        h("div", {}, h("h3", { text: "Corrections that made it" }), corrTable),
      ),
    );
  }

  async function promote(name) {
    if (!window.confirm(`Promote ${name} to production? New analyses will use it.`)) return;
    try {
      await api(projectPath(ctx.project, `/models/${encodeURIComponent(name)}/promote`), { method: "POST" });
      toast(`${name} is in production`, "ok");
    } catch (err) {
      toast(err.message, "error", 8000);
    }
    load();
  }

  async function rollback() {
    const prod = versions.find((v) => v.status === "production");
    if (
      !window.confirm(
        `Roll production back from ${prod ? prod.version : "the current version"} to the version before it?`,
      )
    )
      return;
    try {
      const v = await api(projectPath(ctx.project, "/models/rollback"), { method: "POST" });
      toast(`Rolled back: ${v.version} is in production`, "ok");
    } catch (err) {
      toast(err.message, "error", 8000);
    }
    load();
  }

  load();
  return () => abort.abort();
}
