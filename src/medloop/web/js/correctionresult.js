// What a submitted correction answers in the viewer (2D and volumes): its agreement with
// the prediction, how many corrections remain before the next fine-tune, and the way to the
// next analysis in the review queue.

import { api, projectPath } from "./api.js";
import { append, clear, fmtNum, h, shortId, toast } from "./dom.js";

/** Fill `box` with the answer `res` to a correction; `onNext` opens the next analysis. */
export function renderCorrectionResult(box, res, onNext) {
  clear(box);
  box.hidden = false;
  const until = res.corrections_until_finetune;
  const next = h("button", {
    class: "btn btn-primary btn-small",
    type: "button",
    "data-testid": "next",
    onclick: onNext,
    text: "Next in queue →",
  });
  append(
    box,
    h("h3", { text: `Correction #${res.seq} saved` }),
    h(
      "div",
      { class: "result-grid" },
      h(
        "div",
        { class: "metric" },
        h("div", { class: "metric-value", "data-testid": "agreement", text: fmtNum(res.dice_vs_prediction, 3) }),
        h("div", { class: "metric-label", text: "Agreement with the prediction (Dice)" }),
      ),
      h(
        "div",
        { class: "metric" },
        h("div", {
          class: "metric-value",
          "data-testid": "until-finetune",
          text: until == null ? "—" : String(until),
        }),
        h("div", {
          class: "metric-label",
          text: until == null ? "Automatic fine-tuning is off" : "Corrections until the next fine-tune",
        }),
      ),
    ),
    res.finetune_job_id
      ? h(
          "p",
          { class: "note", "data-testid": "finetune-started" },
          "A fine-tune has started: ",
          h("a", { href: "#/jobs", text: `job ${shortId(res.finetune_job_id)}` }),
          ".",
        )
      : null,
    res.held_out
      ? h("p", {
          class: "muted small",
          text: "This correction is held out: it scores new versions and is never trained on.",
        })
      : null,
    h("div", { class: "row" }, next),
  );
}

/** Open the next analysis of the review queue other than `analysisId` (or the worklist). */
export async function openNextInQueue(project, analysisId) {
  try {
    const q = await api(projectPath(project, "/review-queue?limit=5"));
    const item = q.items.find((it) => it.analysis.id !== analysisId);
    if (item) location.hash = `#/viewer/${encodeURIComponent(item.analysis.id)}`;
    else {
      toast("The review queue is empty", "ok");
      location.hash = "#/worklist";
    }
  } catch (err) {
    toast(err.message, "error");
  }
}
