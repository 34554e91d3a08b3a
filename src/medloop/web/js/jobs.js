// Jobs: training (with a time budget), fine-tuning, imports and erasures, with live progress
// (polled every 1.5 s) and the loss and validation-Dice curve of the job picked.

import { api, projectPath } from "./api.js";
import { append, badge, clear, empty, fmtDate, h, section, shortId, toast } from "./dom.js";
import { field, openDialog } from "./forms.js";
import { JobLive } from "./jobview.js";
import { roleAtLeast } from "./roles.js";

const POLL_MS = 1500;
const KIND_NAMES = { reference_import: "data import", dicomweb_sync: "DICOMweb sync" };
const COLUMNS = ["Job", "Kind", "State", "Progress", "Last message", "Created", "Started / finished", ""];

export function mountJobs(root, ctx) {
  const page = new JobsPage(root, ctx);
  page.poll();
  return () => page.destroy();
}

class JobsPage {
  constructor(root, ctx) {
    this.project = ctx.project;
    this.isAdmin = roleAtLeast(ctx.me.role, "admin");
    this.alive = true;
    this.timer = 0;
    this.open = new Set(); // job ids whose log is expanded
    this.picked = null; // the job whose curve is shown (null: the newest learning job)
    this.live = new JobLive(this.project);
    this.budgetDefault = this.project.training?.budget_s ?? null;
    this.body = h("div", {}, h("div", { class: "loading", text: "Loading jobs…" }));
    root.append(
      h(
        "div",
        { class: "page" },
        h(
          "div",
          { class: "page-head" },
          h("h1", { text: "Jobs" }),
          h("p", {
            class: "muted",
            text: "Training, fine-tuning and evaluation run in the server's durable job queue.",
          }),
        ),
        section("Live progress", [], this.live.el),
        section("Jobs", this.isAdmin ? this.adminActions() : [], this.body),
      ),
    );
  }

  destroy() {
    this.alive = false;
    clearTimeout(this.timer);
  }

  adminActions() {
    return [
      h("button", {
        class: "btn btn-small btn-primary",
        type: "button",
        "data-testid": "start-train",
        onclick: () => this.train(),
        text: "Train…",
      }),
      h("button", {
        class: "btn btn-small",
        type: "button",
        "data-testid": "start-finetune",
        onclick: () => this.start("finetune"),
        text: "Fine-tune now",
      }),
    ];
  }

  // -- actions -----------------------------------------------------------------------------

  async start(kind, options = {}) {
    try {
      const job = await api(projectPath(this.project, "/jobs"), { method: "POST", json: { kind, options } });
      toast(`${kind} job ${shortId(job.id)} queued`, "ok");
      this.picked = job.id;
      this.poll();
    } catch (err) {
      toast(err.message, "error", 8000);
    }
  }

  /** Train a version from the reference data within a time budget (seconds). */
  async train() {
    const budget = h("input", {
      type: "number",
      min: "10",
      max: "604800",
      step: "1",
      required: true,
      value: String(this.budgetDefault ?? 300),
      "data-testid": "train-budget",
    });
    const help = `Wall-clock seconds for planning, training and the gate. The project's setting is ${this.budgetDefault ?? "—"} s; the plan (steps, patch, network) follows from the data and the budget.`;
    const job = await openDialog({
      title: "Train a new version",
      body: field("Time budget (seconds)", budget, help),
      ok: "Start training",
      testid: "train-dialog",
      onOk: async () => {
        const seconds = Number(budget.value);
        if (!(seconds >= 10)) throw new Error("the budget is at least 10 seconds");
        return api(projectPath(this.project, "/jobs"), {
          method: "POST",
          json: { kind: "train", options: { budget_s: seconds } },
        });
      },
    });
    if (job) {
      toast(`training job ${shortId(job.id)} queued`, "ok");
      this.picked = job.id;
      this.poll();
    }
  }

  async cancel(id) {
    try {
      await api(projectPath(this.project, `/jobs/${encodeURIComponent(id)}/cancel`), { method: "POST" });
    } catch (err) {
      toast(err.message, "error");
    }
    this.poll();
  }

  toggleLog(id) {
    if (this.open.has(id)) this.open.delete(id);
    else this.open.add(id);
    this.poll();
  }

  // -- polling and rendering ---------------------------------------------------------------

  async poll() {
    clearTimeout(this.timer);
    try {
      const page = await api(projectPath(this.project, "/jobs?limit=50"));
      if (!this.alive) return;
      this.render(page.items);
      await this.live.update(page.items, this.picked);
    } catch (err) {
      if (!this.alive) return;
      append(clear(this.body), h("div", { class: "error", text: err.message }));
    }
    if (this.alive) this.timer = setTimeout(() => this.poll(), POLL_MS);
  }

  render(jobs) {
    if (!jobs.length) {
      append(clear(this.body), empty("No jobs yet."));
      return;
    }
    const rows = jobs.flatMap((j) => (this.open.has(j.id) ? [this.row(j), logRow(j)] : [this.row(j)]));
    append(
      clear(this.body),
      h(
        "table",
        { class: "table jobs-table", "data-testid": "jobs-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            COLUMNS.map((t) => h("th", { text: t })),
          ),
        ),
        h("tbody", {}, rows),
      ),
    );
  }

  row(j) {
    const pct = j.state === "succeeded" ? 100 : Math.round((j.progress || 0) * 100);
    const lastLine = summary(j);
    const pick = () => {
      this.picked = j.id;
      this.poll();
    };
    return h(
      "tr",
      {
        class: `clickable${this.picked === j.id ? " selected" : ""}`,
        "data-testid": "job-row",
        dataset: { job: j.id, kind: j.kind, state: j.state },
        onclick: (e) => e.target.closest("button") || pick(),
      },
      h("td", { class: "mono", text: shortId(j.id) }),
      h("td", { class: "strong", text: KIND_NAMES[j.kind] || j.kind }),
      h("td", {}, badge(j.state)),
      h(
        "td",
        { class: "progress-cell" },
        h("progress", { max: "100", value: String(pct) }),
        h("span", { class: "num", text: `${pct} %` }),
      ),
      h("td", { class: "muted small ellipsis", title: lastLine, text: j.error || lastLine }),
      h("td", { class: "muted nowrap", text: fmtDate(j.created_at) }),
      h("td", { class: "muted nowrap", text: fmtDate(j.finished_at || j.started_at) }),
      h("td", { class: "right nowrap" }, this.buttons(j)),
    );
  }

  /** Log (show or hide), and Cancel for an admin while the job is queued or running. */
  buttons(j) {
    const shown = this.open.has(j.id);
    const buttons = [
      h("button", {
        class: "btn btn-small",
        type: "button",
        "aria-expanded": String(shown),
        onclick: () => this.toggleLog(j.id),
        text: shown ? "Hide log" : "Log",
      }),
    ];
    if (this.isAdmin && (j.state === "queued" || j.state === "running")) {
      buttons.push(
        h("button", { class: "btn btn-small", type: "button", onclick: () => this.cancel(j.id), text: "Cancel" }),
      );
    }
    return buttons;
  }
}

/** One line on how a job went: its outcome when done, else its latest log line. */
function summary(j) {
  const r = j.result;
  if (j.state === "succeeded" && r && j.kind === "reference_import") {
    return `${r.archive}: added ${r.added}, already there ${r.present}, refused ${r.failed}`;
  }
  if (j.state === "succeeded" && r && j.kind === "erasure") {
    return `erased ${r.images ?? 0} image(s), ${r.analyses ?? 0} analyses, ${r.corrections ?? 0} corrections`;
  }
  if (j.state === "succeeded" && r && r.version) {
    if (r.promoted === true) return `${r.version} promoted`;
    if (r.promoted === false) return `${r.version} rejected by the gate (see Models)`;
    return `${r.version} ready`;
  }
  const line = (j.log_tail || "").trim().split("\n").pop() || "";
  return line.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z?\s*/, "");
}

/** The expanded log of a job: its log tail, error and result. */
function logRow(j) {
  const result = j.result ? JSON.stringify(j.result, null, 2) : "";
  const text = [j.log_tail || "(no log yet)", j.error ? `error: ${j.error}` : "", result ? `result: ${result}` : ""]
    .filter(Boolean)
    .join("\n");
  return h("tr", { class: "log-row" }, h("td", { colspan: "8" }, h("pre", { class: "log", text })));
}
