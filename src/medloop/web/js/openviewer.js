// Opening an analysis: the volume viewer for a volume analysis, the 2D viewer otherwise.

import { api, projectPath } from "./api.js";
import { h } from "./dom.js";
import { mountViewer } from "./viewer.js";
import { VolumeView } from "./volumeview.js";

/** Mount the viewer that fits the analysis: this one for a volume, the 2D one otherwise. */
export function mountAnyViewer(root, ctx, analysisId) {
  let unmount = null;
  let gone = false;
  const path = projectPath(ctx.project, `/analyses/${encodeURIComponent(analysisId)}`);
  api(path)
    .then((analysis) => {
      if (gone) return;
      if (!analysis.volume) {
        unmount = mountViewer(root, ctx, analysisId);
        return;
      }
      const view = new VolumeView(root, ctx, analysisId, analysis);
      unmount = () => view.destroy();
      view.load().catch((err) => view.fail(err));
    })
    .catch((err) => {
      if (!gone) root.append(h("div", { class: "stage-error", text: `Could not open this analysis: ${err.message}` }));
    });
  return () => {
    gone = true;
    if (unmount) unmount();
  };
}
