// Jobs: training and fine-tuning, with live progress (polled every 1.5 s).

import { api, projectPath } from "./api.js";
import { append, badge, clear, empty, fmtDate, h, section, shortId, toast } from "./dom.js";
import { roleAtLeast } from "./roles.js";

const POLL_MS = 1500;

/** One line on how a job went: its outcome when done, else its latest log line. */
function summary(j) {
  const r = j.result;
  if (j.state === "succeeded" && r && r.version) {
    if (r.promoted === true) return `${r.version} promoted`;
    if (r.promoted === false) return `${r.version} rejected by the gate (see Models)`;
    return `${r.version} ready`;
  }
  const line = (j.log_tail || "").trim().split("\n").pop() || "";
  return line.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z?\s*/, "");
}

export function mountJobs(root, ctx) {
  const isAdmin = roleAtLeast(ctx.me.role, "admin");
  let alive = true;
  let timer = 0;
  const body = h("div", {}, h("div", { class: "loading", text: "Loading jobs…" }));
  const actions = [];
  if (isAdmin) {
    actions.push(
      h("button", {
        class: "btn btn-small",
        type: "button",
        "data-testid": "start-train",
        onclick: () => start("train"),
        text: "Train from reference",
      }),
      h("button", {
        class: "btn btn-small",
        type: "button",
        "data-testid": "start-finetune",
        onclick: () => start("finetune"),
        text: "Fine-tune now",
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
        h("h1", { text: "Jobs" }),
        h("p", { class: "muted", text: "Training, fine-tuning and evaluation run in the server's durable job queue." }),
      ),
      section("Jobs", actions, body),
    ),
  );
  const open = new Set(); // job ids whose log is expanded

  async function start(kind) {
    try {
      const job = await api(projectPath(ctx.project, "/jobs"), { method: "POST", json: { kind } });
      toast(`${kind} job ${shortId(job.id)} queued`, "ok");
      poll();
    } catch (err) {
      toast(err.message, "error", 8000);
    }
  }

  async function cancel(id) {
    try {
      await api(projectPath(ctx.project, `/jobs/${encodeURIComponent(id)}/cancel`), { method: "POST" });
    } catch (err) {
      toast(err.message, "error");
    }
    poll();
  }

  function render(jobs) {
    if (!jobs.length) {
      append(clear(body), empty("No jobs yet."));
      return;
    }
    const rows = [];
    for (const j of jobs) {
      const pct = Math.round((j.progress || 0) * 100);
      const progress = h("progress", { max: "100", value: String(j.state === "succeeded" ? 100 : pct) });
      const toggle = h("button", {
        class: "btn btn-small",
        type: "button",
        "aria-expanded": String(open.has(j.id)),
        onclick: () => {
          if (open.has(j.id)) open.delete(j.id);
          else open.add(j.id);
          poll();
        },
        text: open.has(j.id) ? "Hide log" : "Log",
      });
      const buttons = [toggle];
      if (isAdmin && (j.state === "queued" || j.state === "running")) {
        buttons.push(
          h("button", { class: "btn btn-small", type: "button", onclick: () => cancel(j.id), text: "Cancel" }),
        );
      }
      const lastLine = summary(j);
      rows.push(
        h(
          "tr",
          { "data-testid": "job-row", dataset: { job: j.id, kind: j.kind, state: j.state } },
          h("td", { class: "mono", text: shortId(j.id) }),
          h("td", { class: "strong", text: j.kind }),
          h("td", {}, badge(j.state)),
          h(
            "td",
            { class: "progress-cell" },
            progress,
            h("span", { class: "num", text: `${j.state === "succeeded" ? 100 : pct} %` }),
          ),
          h("td", { class: "muted small ellipsis", title: lastLine, text: j.error || lastLine }),
          h("td", { class: "muted nowrap", text: fmtDate(j.created_at) }),
          h("td", { class: "muted nowrap", text: fmtDate(j.finished_at || j.started_at) }),
          h("td", { class: "right nowrap" }, buttons),
        ),
      );
      if (open.has(j.id)) {
        const result = j.result ? JSON.stringify(j.result, null, 2) : "";
        rows.push(
          h(
            "tr",
            { class: "log-row" },
            h(
              "td",
              { colspan: "8" },
              h("pre", {
                class: "log",
                text: [
                  j.log_tail || "(no log yet)",
                  j.error ? `error: ${j.error}` : "",
                  result ? `result: ${result}` : "",
                ]
                  .filter(Boolean)
                  .join("\n"),
              }),
            ),
          ),
        );
      }
    }
    append(
      clear(body),
      h(
        "table",
        { class: "table", "data-testid": "jobs-table" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["Job", "Kind", "State", "Progress", "Last message", "Created", "Started / finished", ""].map((t) =>
              h("th", { text: t }),
            ),
          ),
        ),
        h("tbody", {}, rows),
      ),
    );
  }

  async function poll() {
    clearTimeout(timer);
    try {
      const page = await api(projectPath(ctx.project, "/jobs?limit=50"));
      if (!alive) return;
      render(page.items);
    } catch (err) {
      if (!alive) return;
      append(clear(body), h("div", { class: "error", text: err.message }));
    }
    if (alive) timer = setTimeout(poll, POLL_MS);
  }

  poll();
  return () => {
    alive = false;
    clearTimeout(timer);
  };
}
