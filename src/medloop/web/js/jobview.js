// One learning job followed live: its progress, its loss and validation-Dice curve, and the
// version it made. The Jobs page shows the job picked in its table, else the newest one.

import { api, projectPath } from "./api.js";
import { curveChart } from "./curve.js";
import { append, badge, clear, fmtNum, h, shortId } from "./dom.js";

const LEARNING = new Set(["train", "finetune"]);

export class JobLive {
  constructor(project) {
    this.project = project;
    this.jobId = null;
    this.points = [];
    this.last = 0;
    this.el = h("div", { "data-testid": "job-live" }, h("p", { class: "muted", text: "No training job yet." }));
  }

  /** Follow `id` (or, when null, the newest learning job of `jobs`) and redraw. */
  async update(jobs, id) {
    const job = jobs.find((j) => j.id === id) || jobs.find((j) => LEARNING.has(j.kind));
    if (!job) return;
    if (job.id !== this.jobId) {
      this.jobId = job.id;
      this.points = [];
      this.last = 0;
    }
    const curve = await api(projectPath(this.project, `/jobs/${encodeURIComponent(job.id)}/curve?after=${this.last}`));
    this.points.push(...curve.points);
    this.last = curve.last;
    this.render(job);
  }

  render(job) {
    const pct = job.state === "succeeded" ? 100 : Math.round((job.progress || 0) * 100);
    const loss = this.points.filter((p) => p.metric === "loss").pop();
    const dice = this.points.filter((p) => p.metric === "val_dice").pop();
    const facts = [
      `job ${shortId(job.id)}`,
      loss ? `step ${loss.step} · loss ${fmtNum(loss.value, 4)}` : null,
      dice ? `validation Dice ${fmtNum(dice.value, 3)}` : null,
      job.options?.budget_s ? `budget ${Math.round(job.options.budget_s)} s` : null,
    ].filter(Boolean);
    append(
      clear(this.el),
      h(
        "div",
        { class: "job-live-head", dataset: { state: job.state, job: job.id } },
        h("span", { class: "strong", text: job.kind }),
        badge(job.state),
        h("progress", { max: "100", value: String(pct), "data-testid": "job-live-progress" }),
        h("span", { class: "num", text: `${pct} %` }),
        h("span", { class: "muted small", text: facts.join(" · ") }),
      ),
      this.points.length ? curveChart(this.points) : h("p", { class: "muted", text: "Waiting for the first steps…" }),
      outcome(job),
    );
  }
}

/** What the job made: the new version and whether the gate promoted it, or its error. */
function outcome(job) {
  if (job.state === "failed") return h("p", { class: "error", text: job.error || "failed" });
  const r = job.result;
  if (job.state !== "succeeded" || !r?.version) return null;
  const verdict = r.promoted ? "promoted to production" : "kept as a candidate: the gate rejected it";
  return h(
    "p",
    { class: "job-outcome", "data-testid": "job-outcome" },
    h("span", { class: "strong", text: `${r.version} ${verdict}. ` }),
    h("a", { href: "#/models", "data-testid": "see-models", text: "See it on the Models page" }),
  );
}
