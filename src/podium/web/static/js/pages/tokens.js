// Tokens (admin): the API tokens (GET /tokens), a form that makes one (POST /tokens: its
// secret is in that answer only, so it is shown once with a copy button), and revoke
// (DELETE /tokens/{id}, confirmed). The API keeps no "last used" time, so none is shown.
import { html, useState } from "../../vendor/preact-htm.js";
import { ApiError, del, get, post } from "../api.js";
import { can, useSession } from "../session.js";
import { CopyButton, ErrorBox, Field, PageHeader, StatusBadge, Table, confirm, fmt, toast, usePoll, useAction } from "../ui.js";

const SCOPES = [
  ["read", "read: list and inspect"],
  ["invoke", "invoke: call endpoints"],
  ["deploy", "deploy: create, change, delete"],
  ["admin", "admin: everything, tokens and audit too"],
];

const EXPIRIES = [
  ["", "never"],
  [String(86400), "1 day"],
  [String(7 * 86400), "7 days"],
  [String(30 * 86400), "30 days"],
  [String(90 * 86400), "90 days"],
  [String(365 * 86400), "1 year"],
];

const ALL = "*"; // the "every project" choice (projects: null)

export function tokenState(t) {
  if (t.revoked_at) return "revoked";
  if (t.expires_at && new Date(t.expires_at).getTime() <= Date.now()) return "expired";
  return "active";
}

// The API's message for a field or any of its items ("projects.0"). A 403 is no message
// about what was typed (the caller lacks a right): it goes above the buttons, not under a field.
function fieldMessage(error, name) {
  if (!(error instanceof ApiError) || error.status === 403) return null;
  const hit = error.errors.find((e) => e.field === name || (e.field && e.field.startsWith(name + ".")));
  return hit ? hit.message : null;
}

// The projects this admin may grant: every project for an admin bound to none (and the
// "every project" choice), else those of its own projects that exist.
export function grantable(whoami, projects) {
  const names = projects.map((p) => p.name).filter((p) => can(whoami, "admin", p));
  return [...(whoami.projects === null ? [[ALL, "every project (now and later)"]] : []), ...names.map((p) => [p, p])];
}

function CreateToken({ whoami, projects, onCreated, onCancel }) {
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState(["read"]);
  const choices = grantable(whoami, projects);
  const offered = choices.map(([value]) => value);
  // null until the user ticks a box: then "default" if offered, else the first project offered
  const [picked, setPicked] = useState(null);
  const chosen = (picked ?? [offered.includes("default") ? "default" : offered.find((p) => p !== ALL)].filter(Boolean)).filter((p) => offered.includes(p));
  const [expires, setExpires] = useState("");
  const [noProject, setNoProject] = useState(false);
  const { run, busy, error } = useAction(async () => {
    const body = {
      name: name.trim(),
      scopes,
      projects: chosen.includes(ALL) ? null : chosen,
      expires_in_s: expires ? Number(expires) : null,
    };
    const made = await post("tokens", body);
    onCreated(made);
    return made;
  });
  const toggle = (list, set, value) => set(list.includes(value) ? list.filter((x) => x !== value) : [...list, value]);
  const scopesError = fieldMessage(error, "scopes");
  const projectsError = noProject ? "Choose at least one project" : fieldMessage(error, "projects");
  const shownElsewhere = ["name", "scopes", "projects", "expires_in_s"].some((f) => fieldMessage(error, f));
  const submit = (e) => {
    e.preventDefault();
    const none = chosen.length === 0;
    setNoProject(none);
    if (!none) run();
  };
  return html`<form class="card admin-form" aria-label="New token" onSubmit=${submit}>
    <h2>New token</h2>
    <${Field} label="Token name" name="name" error=${error} hint="printable, up to 64 characters; shown in the audit log">
      <input name="name" value=${name} maxlength="64" onInput=${(e) => setName(e.target.value)} required />
    <//>
    <fieldset class=${`admin-choices${scopesError ? " invalid" : ""}`} data-field="scopes">
      <legend>Scopes</legend>
      ${SCOPES.map(
        ([s, label]) => html`<label class="admin-check"><input type="checkbox" name="scope" value=${s} checked=${scopes.includes(s)} onChange=${() => toggle(scopes, setScopes, s)} /> ${label}</label>`
      )}
      ${scopesError ? html`<span class="field-error" role="alert">${scopesError}</span>` : null}
    </fieldset>
    <fieldset class=${`admin-choices${projectsError ? " invalid" : ""}`} data-field="projects">
      <legend>Projects</legend>
      ${choices.map(
        ([value, label]) => html`<label class="admin-check"><input type="checkbox" name="project" value=${value} checked=${chosen.includes(value)} disabled=${value !== ALL && chosen.includes(ALL)} onChange=${() => { setNoProject(false); toggle(chosen, setPicked, value); }} /> ${label}</label>`
      )}
      ${projectsError ? html`<span class="field-error" role="alert">${projectsError}</span>` : null}
    </fieldset>
    <${Field} label="Expires" name="expires_in_s" error=${error}>
      <select name="expires" value=${expires} onChange=${(e) => setExpires(e.target.value)}>
        ${EXPIRIES.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
      </select>
    <//>
    ${error && !shownElsewhere && !noProject ? html`<${ErrorBox} error=${error} />` : null}
    <div class="row">
      <button class="btn primary" type="submit" disabled=${busy}>${busy ? "Creating…" : "Create token"}</button>
      <button class="btn" type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

// The new token's secret, shown once.
function NewSecret({ made, onDone }) {
  return html`<div class="notice admin-secret" role="status" data-testid="new-token">
    <p><strong>Token ${made.name} (${made.id}) created.</strong> Copy it now: it is not shown again (Podium keeps only its hash).</p>
    <div class="row">
      <code class="admin-token" data-testid="new-token-value">${made.token}</code>
      <${CopyButton} text=${made.token} label="Copy token" />
      <button class="btn small" type="button" onClick=${onDone}>Done</button>
    </div>
  </div>`;
}

export function TokensPage() {
  const session = useSession();
  const { whoami } = session;
  const admin = can(whoami, "admin");
  const [showRevoked, setShowRevoked] = useState(false);
  const [creating, setCreating] = useState(false);
  const [made, setMade] = useState(null);
  const list = usePoll(() => (admin ? get("tokens", { include_revoked: showRevoked || undefined }) : Promise.resolve([])), 4000, [showRevoked, admin]);
  const revoke = useAction(async (t) => {
    const ok = await confirm({
      title: `Revoke token ${t.name}?`,
      message: `Token ${t.id} stops working at once; anything that uses it is refused from its next request on. This cannot be undone.`,
      confirmLabel: "Revoke",
      danger: true,
    });
    if (!ok) return;
    await del(`tokens/${encodeURIComponent(t.id)}`);
    toast(`Revoked token ${t.name}`);
    list.reload();
  });
  if (!admin) {
    return html`<div class="page"><${PageHeader} title="Tokens" /><p class="notice">Tokens are managed with the <code>admin</code> scope; yours is ${whoami.scopes.join(", ")}.</p></div>`;
  }
  const rows = list.data || [];
  const columns = [
    { key: "name", label: "Name", render: (t) => html`<strong>${t.name}</strong>${t.id === whoami.id ? html` <span class="muted">(you)</span>` : null}` },
    { key: "id", label: "ID", render: (t) => html`<code>${t.id}</code>` },
    { key: "scopes", label: "Scopes", value: (t) => t.scopes.join(", ") },
    { key: "projects", label: "Projects", value: (t) => (t.projects === null ? "all projects" : t.projects.join(", ")) },
    { key: "created_at", label: "Created", render: (t) => html`<span title=${fmt.time(t.created_at)}>${fmt.ago(t.created_at)}</span>` },
    { key: "expires_at", label: "Expires", render: (t) => (t.expires_at ? html`<span title=${t.expires_at}>${fmt.time(t.expires_at)}</span>` : "never") },
    { key: "state", label: "State", value: tokenState, render: (t) => html`<${StatusBadge} status=${tokenState(t)} title=${t.revoked_at ? `revoked ${fmt.time(t.revoked_at)}` : undefined} />` },
    { key: "creator", label: "Created by", render: (t) => html`<code>${t.creator}</code>` },
    {
      key: "actions",
      label: "",
      sortable: false,
      render: (t) =>
        t.revoked_at || t.id === whoami.id
          ? null
          : html`<button class="btn small danger" type="button" aria-label=${`Revoke ${t.name}`} data-testid=${`revoke-${t.id}`} onClick=${() => revoke.run(t)}>Revoke</button>`,
    },
  ];
  return html`<div class="page admin-page">
    <${PageHeader} title="Tokens" subtitle="API tokens: who may call Podium, with which scopes, in which projects">
      ${creating ? null : html`<button class="btn primary" type="button" onClick=${() => { setMade(null); setCreating(true); }}>New token</button>`}
    <//>
    ${made ? html`<${NewSecret} made=${made} onDone=${() => setMade(null)} />` : null}
    ${creating
      ? html`<${CreateToken}
          whoami=${whoami}
          projects=${session.projects || []}
          onCreated=${(t) => {
            setMade(t);
            setCreating(false);
            list.reload();
          }}
          onCancel=${() => setCreating(false)}
        />`
      : null}
    <${ErrorBox} error=${list.error || revoke.error} />
    <div class="toolbar">
      <label class="admin-check"><input type="checkbox" checked=${showRevoked} onChange=${(e) => setShowRevoked(e.target.checked)} /> Show revoked</label>
      <span class="muted">${list.data ? `${rows.length} token${rows.length === 1 ? "" : "s"}` : "loading…"}</span>
    </div>
    <${Table} testid="tokens" columns=${columns} rows=${rows} rowKey=${(t) => t.id} empty=${list.data ? "No tokens. Make one with New token." : "Loading…"} />
  </div>`;
}
