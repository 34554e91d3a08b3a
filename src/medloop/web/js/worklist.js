// Worklist: the review queue (most informative first) and the latest analyses.

import { api, projectPath, UrlBag } from "./api.js";
import { append, badge, clear, empty, fmtDate, fmtNum, h, section, shortId } from "./dom.js";

const THUMB_CONCURRENCY = 4;
// Fixed widths (style.css) for all but the image column, which takes the rest of the row.
const COLUMNS = [
  { cls: "col-thumb", text: "" },
  { cls: "col-image", text: "Image" },
  { cls: "col-uncertainty", text: "Uncertainty" },
  { cls: "col-model", text: "Model" },
  { cls: "col-state", text: "State" },
  { cls: "col-date", text: "Analysed" },
  { cls: "col-open", text: "" },
];

export function mountWorklist(root, ctx) {
  const page = new WorklistPage(root, ctx);
  page.load();
  return () => page.destroy();
}

class WorklistPage {
  constructor(root, ctx) {
    this.project = ctx.project;
    this.bag = new UrlBag();
    this.abort = new AbortController();
    this.thumbs = []; // [img, analysis] waiting for their overlay
    this.build(root);
  }

  destroy() {
    this.abort.abort();
    this.bag.revoke();
  }

  build(root) {
    this.queueBody = h("div", {}, h("div", { class: "loading", text: "Loading the review queue…" }));
    this.recentBody = h("div", {}, h("div", { class: "loading", text: "Loading…" }));
    this.count = h("span", { class: "count", "data-testid": "queue-count" });
    const refresh = h("button", {
      class: "btn btn-small",
      type: "button",
      onclick: () => this.load(),
      text: "Refresh",
    });
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
        section("Review queue", [this.count, refresh], this.queueBody),
        section("Recent analyses", [], this.recentBody),
      ),
    );
  }

  // -- loading -----------------------------------------------------------------------------

  async load() {
    this.bag.revoke();
    this.thumbs.length = 0;
    try {
      const [queue, recent] = await Promise.all([this.get("/review-queue?limit=50"), this.get("/analyses?limit=20")]);
      this.count.textContent = `${queue.total ?? queue.items.length} to review`;
      append(
        clear(this.queueBody),
        queue.items.length
          ? this.table(
              queue.items.map((it) => this.row(it.analysis, it.image, "review")),
              "review-queue",
            )
          : empty("Nothing to review. Upload images to analyse them."),
      );
      const images = await this.imagesOf(queue, recent);
      append(
        clear(this.recentBody),
        recent.items.length
          ? this.table(
              recent.items.map((a) => this.row(a, images.get(a.image_id), a.corrected ? "corrected" : "review")),
              "recent",
            )
          : empty("No analyses yet."),
      );
      this.loadThumbs();
    } catch (err) {
      if (err.name === "AbortError") return;
      append(clear(this.queueBody), h("div", { class: "error", text: err.message }));
    }
  }

  get(rest) {
    return api(projectPath(this.project, rest), { signal: this.abort.signal });
  }

  /** Image records by id for the recent list: reuse what the queue gave, fetch the rest. */
  async imagesOf(queue, recent) {
    const known = new Map(queue.items.map((it) => [it.image.id, it.image]));
    const missing = [...new Set(recent.items.map((a) => a.image_id))].filter((id) => !known.has(id));
    await Promise.all(
      missing.map(async (id) => {
        try {
          known.set(id, await this.get(`/images/${encodeURIComponent(id)}`));
        } catch {
          // shown by id
        }
      }),
    );
    return known;
  }

  /** Fetch the overlay thumbnails of the rows, a few at a time. */
  async loadThumbs() {
    const work = this.thumbs.splice(0);
    const signal = this.abort.signal;
    const next = async () => {
      while (work.length && !signal.aborted) {
        const [img, analysis] = work.shift();
        try {
          img.src = await this.bag.fetch(
            projectPath(this.project, `/analyses/${encodeURIComponent(analysis.id)}/overlay`),
            signal,
          );
        } catch {
          img.alt = "no preview";
          img.classList.add("thumb-missing");
        }
      }
    };
    await Promise.all(Array.from({ length: THUMB_CONCURRENCY }, next));
  }

  // -- tables ------------------------------------------------------------------------------

  table(rows, testid) {
    return h(
      "table",
      { class: "table worklist-table", "data-testid": testid },
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          COLUMNS.map((c) => h("th", { class: c.cls, text: c.text })),
        ),
      ),
      h("tbody", {}, rows),
    );
  }

  row(analysis, image, state) {
    const thumb = h("img", { class: "thumb", alt: "", width: "56", height: "56", loading: "lazy" });
    this.thumbs.push([thumb, analysis]);
    const href = viewerHref(analysis);
    const open = () => {
      location.hash = href;
    };
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
      imageCell(analysis, image),
      uncertaintyCell(analysis),
      h("td", { class: "col-model ellipsis", title: analysis.model_version, text: analysis.model_version }),
      h("td", {}, state === "corrected" ? badge("corrected", "corrected") : badge("to review", "review")),
      h("td", { class: "col-date muted nowrap", text: fmtDate(analysis.created_at) }),
      h("td", { class: "right" }, h("a", { class: "btn btn-small", href, text: "Open" })),
    );
  }
}

function viewerHref(analysis) {
  return `#/viewer/${encodeURIComponent(analysis.id)}`;
}

/** The file name (elided when long, whole on hover; the image's id when unknown), size and analysis id. */
function imageCell(analysis, image) {
  const name = image ? image.filename : shortId(analysis.image_id);
  return h(
    "td",
    {},
    h("div", { class: "strong file-name", title: name, text: name }),
    h("div", {
      class: "muted small",
      text: image ? `${image.width} × ${image.height} px · ${shortId(analysis.id)}` : shortId(analysis.id),
    }),
  );
}

function uncertaintyCell(analysis) {
  const u = Number(analysis.uncertainty);
  const meter = h("meter", {
    min: "0",
    max: "1",
    low: "0.33",
    high: "0.66",
    optimum: "0",
    value: String(Number.isFinite(u) ? u : 0),
  });
  return h("td", {}, h("div", { class: "uncertainty" }, meter, h("span", { class: "num", text: fmtNum(u, 3) })));
}
