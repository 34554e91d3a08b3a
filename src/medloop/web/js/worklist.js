// Worklist: the review queue (most informative first) and the latest analyses.

import { api, projectPath, UrlBag } from "./api.js";
import { append, badge, clear, empty, fmtDate, fmtNum, h, section, shortId } from "./dom.js";

const THUMB_CONCURRENCY = 4;

export function mountWorklist(root, ctx) {
  const bag = new UrlBag();
  const abort = new AbortController();
  const queueBody = h("div", {}, h("div", { class: "loading", text: "Loading the review queue…" }));
  const recentBody = h("div", {}, h("div", { class: "loading", text: "Loading…" }));
  const count = h("span", { class: "count", "data-testid": "queue-count" });
  const refresh = h("button", { class: "btn btn-small", type: "button", onclick: () => load(), text: "Refresh" });
  root.append(
    h(
      "div",
      { class: "page" },
      h(
        "div",
        { class: "page-head" },
        h("h1", { text: "Worklist" }),
        h("p", {
          class: "muted",
          text: "Analyses awaiting review, the most uncertain first: correcting those helps the model most.",
        }),
      ),
      section("Review queue", [count, refresh], queueBody),
      section("Recent analyses", [], recentBody),
    ),
  );

  const thumbs = [];
  async function loadThumbs() {
    const work = thumbs.splice(0);
    const next = async () => {
      while (work.length && !abort.signal.aborted) {
        const [img, analysis] = work.shift();
        try {
          img.src = await bag.fetch(
            projectPath(ctx.project, `/analyses/${encodeURIComponent(analysis.id)}/overlay`),
            abort.signal,
          );
        } catch {
          img.alt = "no preview";
          img.classList.add("thumb-missing");
        }
      }
    };
    await Promise.all(Array.from({ length: THUMB_CONCURRENCY }, next));
  }

  function row(analysis, image, state) {
    const thumb = h("img", { class: "thumb", alt: "", width: "56", height: "56", loading: "lazy" });
    thumbs.push([thumb, analysis]);
    const open = () => {
      location.hash = `#/viewer/${encodeURIComponent(analysis.id)}`;
    };
    const u = Number(analysis.uncertainty);
    const meter = h("meter", {
      min: "0",
      max: "1",
      low: "0.33",
      high: "0.66",
      optimum: "0",
      value: String(Number.isFinite(u) ? u : 0),
    });
    const name = image ? image.filename : shortId(analysis.image_id);
    return h(
      "tr",
      {
        class: "clickable",
        tabindex: "0",
        "data-testid": "worklist-row",
        dataset: { analysis: analysis.id },
        onclick: open,
        onkeydown: (e) => e.key === "Enter" && open(),
      },
      h("td", { class: "thumb-cell" }, thumb),
      h(
        "td",
        {},
        h("div", { class: "strong", text: name }),
        h("div", {
          class: "muted small",
          text: image ? `${image.width} × ${image.height} px · ${shortId(analysis.id)}` : shortId(analysis.id),
        }),
      ),
      h("td", {}, h("div", { class: "uncertainty" }, meter, h("span", { class: "num", text: fmtNum(u, 3) }))),
      h("td", { text: analysis.model_version }),
      h("td", {}, state === "corrected" ? badge("corrected", "corrected") : badge("to review", "review")),
      h("td", { class: "muted nowrap", text: fmtDate(analysis.created_at) }),
      h(
        "td",
        { class: "right" },
        h("a", { class: "btn btn-small", href: `#/viewer/${encodeURIComponent(analysis.id)}`, text: "Open" }),
      ),
    );
  }

  function table(rows, testid) {
    return h(
      "table",
      { class: "table", "data-testid": testid },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { text: "" }),
          h("th", { text: "Image" }),
          h("th", { text: "Uncertainty" }),
          h("th", { text: "Model" }),
          h("th", { text: "State" }),
          h("th", { text: "Analysed" }),
          h("th", { text: "" }),
        ),
      ),
      h("tbody", {}, rows),
    );
  }

  async function load() {
    bag.revoke();
    thumbs.length = 0;
    const p = ctx.project;
    try {
      const [queue, recent] = await Promise.all([
        api(projectPath(p, "/review-queue?limit=50"), { signal: abort.signal }),
        api(projectPath(p, "/analyses?limit=20"), { signal: abort.signal }),
      ]);
      count.textContent = `${queue.total ?? queue.items.length} to review`;
      append(
        clear(queueBody),
        queue.items.length
          ? table(
              queue.items.map((it) => row(it.analysis, it.image, "review")),
              "review-queue",
            )
          : empty("Nothing to review. Upload images to analyse them."),
      );
      // image names for the recent list: reuse what the queue gave, fetch the rest
      const known = new Map(queue.items.map((it) => [it.image.id, it.image]));
      const missing = [...new Set(recent.items.map((a) => a.image_id))].filter((id) => !known.has(id));
      await Promise.all(
        missing.map(async (id) => {
          try {
            known.set(id, await api(projectPath(p, `/images/${encodeURIComponent(id)}`), { signal: abort.signal }));
          } catch {
            // shown by id
          }
        }),
      );
      append(
        clear(recentBody),
        recent.items.length
          ? table(
              recent.items.map((a) => row(a, known.get(a.image_id), a.corrected ? "corrected" : "review")),
              "recent",
            )
          : empty("No analyses yet."),
      );
      loadThumbs();
    } catch (err) {
      if (err.name === "AbortError") return;
      append(clear(queueBody), h("div", { class: "error", text: err.message }));
    }
  }

  load();
  return () => {
    abort.abort();
    bag.revoke();
  };
}
