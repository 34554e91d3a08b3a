// medloop in the browser: sign in with a token, pick (or create) a project, then
// Worklist · Upload · Data · Models · Jobs · Settings, and Users for admins of every
// project. Every call goes to the public API.

import { ApiError, api, clearToken, getToken, setToken } from "./api.js";
import { mountData } from "./data.js";
import { clear, h, toast } from "./dom.js";
import { mountJobs } from "./jobs.js";
import { mountModels } from "./models.js";
import { archivedProjects, newProjectCard } from "./newproject.js";
import { mountAnyViewer } from "./openviewer.js";
import { roleAtLeast } from "./roles.js";
import { mountSettings } from "./settings.js";
import { mountUpload } from "./upload.js";
import { mountUsers } from "./users.js";
import { mountWorklist } from "./worklist.js";

const PROJECT_KEY = "medloop.project";
const app = document.getElementById("app");

const state = { me: null, projects: [], project: null };
let unmount = null;

// `everyProject`: for admins bound to no project; `global`: needs no project picked.
const PAGES = [
  { id: "worklist", title: "Worklist", role: "viewer", mount: mountWorklist },
  { id: "upload", title: "Upload", role: "annotator", mount: mountUpload },
  { id: "data", title: "Data", role: "viewer", mount: mountData },
  { id: "models", title: "Models", role: "viewer", mount: mountModels },
  { id: "jobs", title: "Jobs", role: "viewer", mount: mountJobs },
  { id: "settings", title: "Settings", role: "admin", mount: mountSettings },
  { id: "users", title: "Users", role: "admin", everyProject: true, global: true, mount: mountUsers },
];

function allowed(page) {
  return Boolean(state.me) && roleAtLeast(state.me.role, page.role) && (!page.everyProject || isFullAdmin());
}

/** An admin bound to no project: may create projects and manage users. */
function isFullAdmin() {
  return Boolean(state.me) && state.me.role === "admin" && !state.me.project_id;
}

// -- sign in ----------------------------------------------------------------------------------

function showSignIn(message) {
  teardown();
  clear(app);
  const form = signInForm(message);
  app.append(h("main", { class: "signin" }, form));
  form.elements.token.focus();
}

function signInForm(message) {
  const input = h("input", {
    type: "password",
    id: "token",
    name: "token",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "mlp_…",
    "data-testid": "token-input",
    required: true,
  });
  const form = h(
    "form",
    { class: "signin-card", "data-testid": "signin" },
    h("div", { class: "brand big" }, brandMark()),
    h("p", {
      class: "muted",
      text: "Review and correct segmentations. Your corrections teach the next model version.",
    }),
    h("label", { for: "token", class: "field-label", text: "Access token" }),
    input,
    h("p", { class: "error", role: "alert", "data-testid": "signin-error", text: message || "" }),
    h("button", { class: "btn btn-primary wide", type: "submit", "data-testid": "signin-submit", text: "Sign in" }),
    h("p", {
      class: "muted small",
      text: "Your administrator creates tokens with “medloop users add”. The token stays in this browser tab only.",
    }),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    signIn(input.value.trim());
  });
  return form;
}

async function signIn(token) {
  if (!token) return;
  setToken(token);
  try {
    await start();
  } catch (err) {
    clearToken();
    showSignIn(
      err instanceof ApiError && err.status === 401 ? "This token is not valid." : `Cannot sign in: ${err.message}`,
    );
  }
}

/** The logo and the name, in the top bar and on the sign-in card. */
function brandMark() {
  return [h("span", { class: "logo", "aria-hidden": "true" }), h("span", { text: "medloop" })];
}

function signOut() {
  clearToken();
  sessionStorage.removeItem(PROJECT_KEY);
  state.me = null;
  state.project = null;
  location.hash = "";
  showSignIn();
}

// -- shell ------------------------------------------------------------------------------------

async function start() {
  state.me = await api("/api/v1/me");
  await loadProjects();
  renderShell();
  route();
}

async function loadProjects() {
  const page = await api("/api/v1/projects");
  state.projects = page.items;
  const wanted = sessionStorage.getItem(PROJECT_KEY);
  state.project =
    state.projects.find((p) => p.id === wanted) || (state.projects.length === 1 ? state.projects[0] : null);
  if (state.project) sessionStorage.setItem(PROJECT_KEY, state.project.id);
}

/** After a project was made (or its settings changed): reload the list and show it. */
async function projectChanged(project, page = "data") {
  sessionStorage.setItem(PROJECT_KEY, project.id);
  await loadProjects();
  renderShell();
  if (location.hash === `#/${page}`) route();
  else location.hash = `#/${page}`;
}

function renderShell() {
  clear(app);
  const header = h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "#/worklist" }, brandMark()),
    projectSelect(),
    h(
      "nav",
      { class: "nav", "aria-label": "Main" },
      PAGES.filter(allowed).map((p) =>
        h("a", { href: `#/${p.id}`, dataset: { page: p.id }, "data-testid": `nav-${p.id}`, text: p.title }),
      ),
    ),
    h("div", { class: "spacer" }),
    userBox(),
  );
  state.main = h("main", { class: "content", id: "main" });
  app.append(header, state.main);
}

function projectSelect() {
  return h(
    "select",
    {
      class: "project-select",
      "aria-label": "Project",
      "data-testid": "project-select",
      onchange: (e) => pickProject(e.target.value),
    },
    h("option", {
      value: "",
      text: state.projects.length ? "Choose a project…" : "No projects",
      disabled: true,
      selected: !state.project,
    }),
    state.projects.map((p) =>
      h("option", { value: p.id, selected: state.project && p.id === state.project.id, text: p.name }),
    ),
    isFullAdmin() ? h("option", { value: NEW_PROJECT, text: "+ New or archived project…" }) : null,
  );
}

const NEW_PROJECT = "__new__";

/** The signed-in user's name and role, and Sign out. */
function userBox() {
  return h(
    "div",
    { class: "user" },
    h("span", { class: "user-name", "data-testid": "user-name", text: state.me.name }),
    h("span", { class: `role role-${state.me.role}`, "data-testid": "user-role", text: state.me.role }),
    h("button", {
      class: "btn btn-ghost btn-small",
      type: "button",
      "data-testid": "signout",
      onclick: signOut,
      text: "Sign out",
    }),
  );
}

function pickProject(id) {
  if (id === NEW_PROJECT) {
    location.hash = "#/new-project";
    return;
  }
  state.project = state.projects.find((p) => p.id === id) || null;
  if (state.project) sessionStorage.setItem(PROJECT_KEY, state.project.id);
  if (location.hash.startsWith("#/viewer/") || !location.hash) location.hash = "#/worklist";
  else route();
}

function teardown() {
  if (unmount) {
    try {
      unmount();
    } catch (err) {
      console.error(err);
    }
  }
  unmount = null;
}

function route() {
  if (!state.me) return;
  teardown();
  const main = state.main;
  clear(main);
  const [, name = "worklist", arg] = (location.hash || "#/worklist").split("/");
  for (const a of document.querySelectorAll(".nav a")) {
    a.classList.toggle("active", a.dataset.page === name || (name === "viewer" && a.dataset.page === "worklist"));
  }
  const ctx = { me: state.me, project: state.project, projectChanged };
  const page = PAGES.find((p) => p.id === name && allowed(p));
  if (page?.global) {
    unmount = page.mount(main, ctx);
    document.title = `${page.title} · medloop`;
    return;
  }
  if (name === "new-project" && isFullAdmin()) {
    main.append(
      h(
        "div",
        { class: "page narrow" },
        newProjectCard((p) => projectChanged(p)),
        archivedProjects((p) => projectChanged(p)),
      ),
    );
    document.title = "New project · medloop";
    return;
  }
  if (!state.project) {
    main.append(projectChooser());
    return;
  }
  if (name === "viewer" && arg) {
    unmount = mountAnyViewer(main, ctx, decodeURIComponent(arg));
    document.title = "Viewer · medloop";
    return;
  }
  const shown = page || PAGES[0];
  unmount = shown.mount(main, ctx);
  document.title = `${shown.title} · ${state.project.name} · medloop`;
}

/** The page shown until a project is picked: one card per project the user can see, and
 * (for an admin of every project) the form to create one. */
function projectChooser() {
  const card = (p) =>
    h(
      "button",
      { class: "project-card", type: "button", "data-testid": `project-${p.name}`, onclick: () => pickProject(p.id) },
      h("span", { class: "strong", text: p.name }),
      h("span", {
        class: "muted small",
        text: `${p.image_kind} · ${p.labels.map((l) => l.name).join(", ")} · ${p.production_version ? `model ${p.production_version}` : "no model yet"}`,
      }),
    );
  const none = state.projects.length === 0;
  const nothing = isFullAdmin()
    ? "There are no projects yet: create the first one below."
    : "There are no projects you can see yet. An administrator can create one or give you access.";
  return h(
    "div",
    { class: "page narrow" },
    h("h1", { text: none && isFullAdmin() ? "Welcome to medloop" : "Choose a project" }),
    h("p", { class: "muted", text: none ? nothing : "Pick the segmentation task to work on." }),
    none
      ? null
      : h(
          "ul",
          { class: "project-list" },
          state.projects.map((p) => h("li", {}, card(p))),
        ),
    isFullAdmin() ? newProjectCard((p) => projectChanged(p)) : null,
    isFullAdmin() ? archivedProjects((p) => projectChanged(p)) : null,
  );
}

window.addEventListener("hashchange", route);
window.addEventListener("medloop:unauthorized", () => {
  if (state.me) {
    clearToken();
    state.me = null;
    showSignIn("Your session has ended: sign in again.");
  }
});
window.addEventListener("unhandledrejection", (e) => {
  const err = e.reason;
  if (err && err.name === "AbortError") return;
  toast(err?.message || String(err), "error");
});

if (getToken()) {
  start().catch((err) => {
    clearToken();
    showSignIn(err instanceof ApiError && err.status === 401 ? "Your session has ended: sign in again." : err.message);
  });
} else {
  showSignIn();
}
