// Users (admins of every project): people and devices, their role and project scope, their
// tokens with expiry and last use; create, change, disable, issue and revoke. A new token is
// shown once, with a copy button.

import { api } from "./api.js";
import { append, badge, clear, fmtDate, h, section, shortId, toast } from "./dom.js";
import { field, openDialog, secretBox, select } from "./forms.js";

const ROLES = ["viewer", "annotator", "admin"];
const EXPIRY = [
  ["default", "default (people: the server's lifetime; devices: never)"],
  ["7", "7 days"],
  ["30", "30 days"],
  ["90", "90 days"],
  ["365", "1 year"],
  ["never", "never"],
];

export function mountUsers(root, ctx) {
  const page = new UsersPage(root, ctx);
  page.load();
  return () => {};
}

/** The expiry field of a request body: left out (the default), null (never) or days. */
function expiryBody(choice) {
  if (choice === "default") return {};
  return { expires_in_days: choice === "never" ? null : Number(choice) };
}

class UsersPage {
  constructor(root, ctx) {
    this.me = ctx.me;
    this.projects = [];
    this.open = new Set(); // user ids whose tokens are shown
    this.body = h("div", {}, h("div", { class: "loading", text: "Loading users…" }));
    this.news = h("div", { "data-testid": "new-secret" });
    const add = h("button", {
      class: "btn btn-primary btn-small",
      type: "button",
      "data-testid": "add-user",
      onclick: () => this.create(),
      text: "Add a user…",
    });
    root.append(
      h(
        "div",
        { class: "page" },
        h(
          "div",
          { class: "page-head" },
          h("h1", { text: "Users" }),
          h("p", {
            class: "muted",
            text: "People sign in to the browser; devices (scanners, scripts, a PACS bridge) call the API. A revoked token is refused from its next request on.",
          }),
        ),
        this.news,
        section("Users", [add], this.body),
      ),
    );
  }

  async load() {
    try {
      const [users, projects] = await Promise.all([api("/api/v1/users"), api("/api/v1/projects")]);
      this.projects = projects.items;
      const tokens = await Promise.all(
        users.items.filter((u) => this.open.has(u.id)).map(async (u) => [u.id, await this.tokens(u)]),
      );
      this.render(users.items, new Map(tokens));
    } catch (err) {
      append(clear(this.body), h("div", { class: "error", text: err.message }));
    }
  }

  async tokens(user) {
    return (await api(`/api/v1/users/${encodeURIComponent(user.id)}/tokens`)).items;
  }

  scopeName(projectId) {
    if (!projectId) return "every project";
    return this.projects.find((p) => p.id === projectId)?.name || shortId(projectId);
  }

  render(users, tokens) {
    const head = ["Name", "Kind", "Role", "Project", "State", "Last used", ""].map((t) => h("th", { text: t }));
    const rows = users.flatMap((u) => {
      const row = this.row(u);
      return tokens.has(u.id) ? [row, this.tokenRow(u, tokens.get(u.id))] : [row];
    });
    append(
      clear(this.body),
      h(
        "table",
        { class: "table", "data-testid": "users-table" },
        h("thead", {}, h("tr", {}, head)),
        h("tbody", {}, rows),
      ),
    );
  }

  row(u) {
    const role = select(ROLES, u.role, { class: "select-small", "aria-label": `Role of ${u.name}` });
    role.addEventListener("change", () => this.change(u, { role: role.value }));
    const scopes = [["", "every project"], ...this.projects.map((p) => [p.id, p.name])];
    const scope = select(scopes, u.project_id || "", { class: "select-small", "aria-label": `Project of ${u.name}` });
    scope.addEventListener("change", () => this.change(u, { project: scope.value || null }));
    const shown = this.open.has(u.id);
    return h(
      "tr",
      { "data-testid": "user-row", dataset: { user: u.name } },
      h("td", { class: "strong", text: u.name }),
      h("td", { class: "muted", text: u.kind }),
      h("td", {}, role),
      h("td", {}, scope),
      h("td", {}, u.disabled ? badge("disabled", "failed") : badge("enabled", "succeeded")),
      h("td", { class: "muted nowrap", text: u.last_used_at ? fmtDate(u.last_used_at) : "never" }),
      h(
        "td",
        { class: "right nowrap" },
        h("button", {
          class: "btn btn-small",
          type: "button",
          "data-testid": "show-tokens",
          "aria-expanded": String(shown),
          onclick: () => this.toggle(u),
          text: shown ? "Hide tokens" : "Tokens",
        }),
        h("button", {
          class: `btn btn-small${u.disabled ? "" : " btn-danger"}`,
          type: "button",
          "data-testid": "toggle-user",
          onclick: () => this.change(u, { disabled: !u.disabled }),
          text: u.disabled ? "Enable" : "Disable",
        }),
      ),
    );
  }

  tokenRow(u, tokens) {
    const state = (t) => (t.revoked_at ? "revoked" : t.active ? "active" : "expired");
    const rows = tokens.map((t) =>
      h(
        "tr",
        { "data-testid": "token-row", dataset: { token: t.id, state: state(t) } },
        h("td", { class: "mono", text: shortId(t.id) }),
        h("td", { text: t.name || "—" }),
        h("td", { class: "muted nowrap", text: fmtDate(t.created_at) }),
        h("td", { class: "muted nowrap", text: t.expires_at ? fmtDate(t.expires_at) : "never" }),
        h("td", { class: "muted nowrap", text: t.last_used_at ? fmtDate(t.last_used_at) : "never" }),
        h("td", {}, badge(state(t), t.active ? "succeeded" : "cancelled")),
        h(
          "td",
          { class: "right" },
          t.active
            ? h("button", {
                class: "btn btn-small btn-danger",
                type: "button",
                "data-testid": "revoke-token",
                onclick: () => this.revoke(u, t),
                text: "Revoke",
              })
            : null,
        ),
      ),
    );
    const issue = h("button", {
      class: "btn btn-small",
      type: "button",
      "data-testid": "issue-token",
      onclick: () => this.issue(u),
      text: "New token…",
    });
    const head = ["Token", "Name", "Created", "Expires", "Last used", "State", ""].map((t) => h("th", { text: t }));
    return h(
      "tr",
      { class: "log-row" },
      h(
        "td",
        { colspan: "7" },
        h("table", { class: "table compact tokens-table" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)),
        issue,
      ),
    );
  }

  toggle(u) {
    if (this.open.has(u.id)) this.open.delete(u.id);
    else this.open.add(u.id);
    this.load();
  }

  async change(u, body) {
    try {
      await api(`/api/v1/users/${encodeURIComponent(u.id)}`, { method: "PATCH", json: body });
      toast(`${u.name} updated`, "ok");
    } catch (err) {
      toast(err.message, "error", 8000);
    }
    this.load();
  }

  async revoke(u, t) {
    const done = await openDialog({
      title: `Revoke ${u.name}'s token?`,
      body: h("p", {
        text: `Token ${shortId(t.id)}${t.name ? ` (${t.name})` : ""} stops working at its next request.`,
      }),
      ok: "Revoke",
      danger: true,
      testid: "revoke-dialog",
      onOk: () =>
        api(`/api/v1/users/${encodeURIComponent(u.id)}/tokens/${encodeURIComponent(t.id)}/revoke`, { method: "POST" }),
    });
    if (done) {
      toast("Token revoked", "ok");
      this.load();
    }
  }

  showSecret(who, secret) {
    append(clear(this.news), section(`Token for ${who}`, [], secretBox(secret)));
  }

  async issue(u) {
    const name = h("input", { type: "text", maxlength: "100", placeholder: "e.g. laptop, scanner 2" });
    const expiry = select(EXPIRY, "default", { "data-testid": "token-expiry" });
    const made = await openDialog({
      title: `New token for ${u.name}`,
      body: [field("What it is for", name), field("Expires", expiry)],
      ok: "Create token",
      testid: "token-dialog",
      onOk: () =>
        api(`/api/v1/users/${encodeURIComponent(u.id)}/tokens`, {
          method: "POST",
          json: { name: name.value.trim(), ...expiryBody(expiry.value) },
        }),
    });
    if (made) {
      this.showSecret(u.name, made.token);
      this.open.add(u.id);
      this.load();
    }
  }

  async create() {
    const form = new UserForm(this.projects);
    const made = await openDialog({
      title: "Add a user",
      body: form.el,
      ok: "Create user",
      testid: "user-dialog",
      onOk: () => api("/api/v1/users", { method: "POST", json: form.body() }),
    });
    if (made) {
      this.showSecret(made.user.name, made.token.token);
      this.load();
    }
  }
}

class UserForm {
  constructor(projects) {
    this.name = h("input", { type: "text", required: true, maxlength: "200", "data-testid": "user-name-input" });
    this.kind = select(
      [
        ["person", "a person (signs in to the browser)"],
        ["device", "a device or a script (calls the API)"],
      ],
      "person",
      { "data-testid": "user-kind" },
    );
    this.role = select(ROLES, "annotator", { "data-testid": "user-role-select" });
    this.project = select([["", "every project"], ...projects.map((p) => [p.id, p.name])], "", {
      "data-testid": "user-project",
    });
    this.expiry = select(EXPIRY, "default", { "data-testid": "user-expiry" });
    this.el = [
      field("Name", this.name),
      field("Kind", this.kind),
      field(
        "Role",
        this.role,
        "viewer: looks; annotator: corrects and adds data; admin: also trains, sets up, erases.",
      ),
      field("Project", this.project, "Bound to one project, the user sees no other."),
      field("First token expires", this.expiry),
    ];
  }

  body() {
    const body = { name: this.name.value.trim(), role: this.role.value, kind: this.kind.value };
    if (this.project.value) body.project = this.project.value;
    return { ...body, ...expiryBody(this.expiry.value) };
  }
}
