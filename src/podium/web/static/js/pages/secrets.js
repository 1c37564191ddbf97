// Secrets: names only (GET /secrets never returns a value), a form that sets one
// (PUT /secrets/{name}?project=: the value goes in a password input and is cleared once
// sent) and delete (confirmed). Listing needs `read`; writing `deploy` on the project, so
// the form and the buttons are drawn only where the token has it.
import { html, useRef, useState } from "../../vendor/preact-htm.js";
import { ApiError, del, get, put } from "../api.js";
import { can, useSession } from "../session.js";
import { ErrorBox, Field, PageHeader, Table, confirm, fmt, toast, usePoll, useAction } from "../ui.js";

function SecretForm({ projects, initial, onSaved, onCancel }) {
  const [name, setName] = useState(initial.name || "");
  const [project, setProject] = useState(initial.project || projects[0] || "default");
  const [value, setValue] = useState("");
  const replacing = Boolean(initial.name);
  const { run, busy, error, setError } = useAction(async () => {
    const saved = await put(`secrets/${encodeURIComponent(name.trim())}`, { value }, { query: { project } });
    setValue(""); // never kept in the page once sent
    onSaved(saved);
    return saved;
  });
  const submit = (e) => {
    e.preventDefault();
    // a name of only spaces would be PUT secrets/ (no such route): say so under the field
    if (!name.trim()) setError(new ApiError(422, { title: "Invalid secret", errors: [{ field: "name", message: "Enter a name" }] }));
    else run();
  };
  const nameError = error instanceof ApiError && error.forField("name");
  const valueError = error instanceof ApiError && error.forField("value");
  const projectError = error instanceof ApiError && error.forField("project");
  return html`<form class="card admin-form" aria-label=${replacing ? "Replace secret" : "New secret"} onSubmit=${submit} autocomplete="off">
    <h2>${replacing ? `Replace the value of ${initial.name}` : "New secret"}</h2>
    <${Field} label="Secret name" name="name" error=${error} hint="lower case letters, digits and dashes; used as secret:NAME in specs">
      <input name="name" value=${name} readonly=${replacing} onInput=${(e) => setName(e.target.value)} required />
    <//>
    <${Field} label="Project" name="project" error=${error}>
      <select name="project" value=${project} disabled=${replacing} onChange=${(e) => setProject(e.target.value)}>
        ${projects.map((p) => html`<option value=${p}>${p}</option>`)}
      </select>
    <//>
    <${Field} label="Value" name="value" error=${error} hint="stored encrypted; never shown again, not even to you">
      <input type="password" name="value" autocomplete="new-password" value=${value} onInput=${(e) => setValue(e.target.value)} required />
    <//>
    ${error && !nameError && !valueError && !projectError ? html`<${ErrorBox} error=${error} />` : null}
    <div class="row">
      <button class="btn primary" type="submit" disabled=${busy}>${busy ? "Saving…" : "Save secret"}</button>
      <button class="btn" type="button" onClick=${onCancel}>Cancel</button>
    </div>
  </form>`;
}

export function SecretsPage() {
  const session = useSession();
  const { whoami, project } = session;
  const [editing, setEditing] = useState(null); // null: no form; {}: new; {name, project}: replace
  const formRef = useRef(null);
  const list = usePoll(() => get("secrets", { project: project || undefined }), 4000, [project]);
  const writable = (session.projects || []).map((p) => p.name).filter((p) => can(whoami, "deploy", p));
  const remove = useAction(async (s) => {
    const ok = await confirm({
      title: `Delete secret ${s.name}?`,
      message: `Endpoints of project ${s.project} that use secret:${s.name} fail to start (or to update) without it.`,
      confirmLabel: "Delete",
      danger: true,
    });
    if (!ok) return;
    await del(`secrets/${encodeURIComponent(s.name)}`, { query: { project: s.project } });
    toast(`Deleted secret ${s.name}`);
    list.reload();
  });
  const rows = list.data || [];
  const columns = [
    { key: "name", label: "Name", render: (s) => html`<code>${s.name}</code>` },
    { key: "project", label: "Project" },
    { key: "updated_at", label: "Updated", value: (s) => s.updated_at, render: (s) => html`<span title=${fmt.time(s.updated_at)}>${fmt.ago(s.updated_at)}</span>` },
    { key: "created_at", label: "Created", value: (s) => s.created_at, render: (s) => html`<span title=${fmt.time(s.created_at)}>${fmt.ago(s.created_at)}</span>` },
    { key: "created_by", label: "Created by", render: (s) => html`<code>${s.created_by}</code>` },
    {
      key: "actions",
      label: "",
      sortable: false,
      render: (s) =>
        can(whoami, "deploy", s.project)
          ? html`<div class="row admin-actions">
              <button class="btn small" type="button" aria-label=${`Replace ${s.name}`} onClick=${() => setEditing({ name: s.name, project: s.project })}>Replace</button>
              <button class="btn small danger" type="button" aria-label=${`Delete ${s.name}`} onClick=${() => remove.run(s)}>Delete</button>
            </div>`
          : null,
    },
  ];
  return html`<div class="page admin-page">
    <${PageHeader} title="Secrets" subtitle=${`Values for endpoints' environment (secret:NAME)${project ? ` in project ${project}` : ", every project"}; values are never shown`}>
      ${writable.length && !editing ? html`<button class="btn primary" type="button" onClick=${() => setEditing({ project: project || undefined })}>New secret</button>` : null}
    <//>
    ${editing
      ? html`<div ref=${formRef}><${SecretForm}
          key=${`${editing.project}/${editing.name || ""}`}
          projects=${editing.name ? [editing.project] : editing.project && writable.includes(editing.project) ? [editing.project, ...writable.filter((p) => p !== editing.project)] : writable}
          initial=${editing}
          onSaved=${(s) => {
            toast(`Saved secret ${s.name}`);
            setEditing(null);
            list.reload();
          }}
          onCancel=${() => setEditing(null)}
        /></div>`
      : null}
    <${ErrorBox} error=${list.error || remove.error} />
    <div class="toolbar"><span class="muted">${list.data ? `${rows.length} secret${rows.length === 1 ? "" : "s"}` : "loading…"}</span></div>
    <${Table}
      testid="secrets"
      columns=${columns}
      rows=${rows}
      rowKey=${(s) => `${s.project}/${s.name}`}
      empty=${list.data ? (writable.length ? "No secrets yet. Add one with New secret." : "No secrets in the projects you can read.") : "Loading…"}
    />
  </div>`;
}
