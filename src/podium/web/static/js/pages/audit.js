// The audit log (admin): every control action and refused attempt (GET /audit).
// The page reads the newest 50 entries (`order=desc`), then every 3 s only those after the
// newest it has (`after_id`), and older ones on demand (`before_id`) when the user pages
// past what it holds; it never reads the whole log. The API filters by actor, action and
// project; "Object" and "since" filter in the browser, among the entries read so far.
import { html, useRef, useState } from "../../vendor/preact-htm.js";
import { get } from "../api.js";
import { setQuery } from "../router.js";
import { can, useSession } from "../session.js";
import { ErrorBox, PageHeader, Table, fmt, usePoll, useAction } from "../ui.js";

const PAGE = 50;
const BATCH = 1000; // the API's largest page
const MAX_ENTRIES = 100000; // kept in the page at most (the oldest are dropped)

// The entries read so far, newest first: {key, entries, more (older ones may exist), pending}.
function freshLog(key) {
  return { key, entries: [], more: false, pending: null };
}

// Brings `acc` up to date: the newest page for new filters, else what came after its newest
// entry. One read at a time (a poll that fires while one is out shares it), and an entry
// already held is never added twice.
function readNew(acc, filters) {
  const key = JSON.stringify(filters);
  if (acc.current.key !== key) acc.current = freshLog(key);
  const log = acc.current;
  if (log.pending) return log.pending;
  log.pending = (async () => {
    try {
      if (!log.entries.length && !log.more) {
        const { entries } = await get("audit", { ...filters, order: "desc", limit: PAGE });
        if (!log.entries.length) {
          log.entries = entries;
          log.more = entries.length === PAGE;
        }
        return log;
      }
      const newest = log.entries.length ? log.entries[0].id : 0;
      const { entries } = await get("audit", { ...filters, after_id: newest, limit: BATCH });
      if (entries.length === BATCH) {
        // more came than one read holds: start again from the newest page (no hole)
        const { entries: top } = await get("audit", { ...filters, order: "desc", limit: PAGE });
        log.entries = top;
        log.more = top.length === PAGE;
        return log;
      }
      const top = log.entries.length ? log.entries[0].id : 0;
      const added = entries.filter((e) => e.id > top).reverse();
      if (added.length) {
        log.entries = added.concat(log.entries);
        if (log.entries.length > MAX_ENTRIES) {
          log.entries = log.entries.slice(0, MAX_ENTRIES);
          log.more = true;
        }
      }
      return log;
    } finally {
      log.pending = null;
    }
  })();
  return log.pending;
}

// Reads `count` entries older than the oldest held.
async function readOlder(log, filters, count) {
  if (!log.more || !log.entries.length) return;
  const oldest = log.entries[log.entries.length - 1].id;
  const { entries } = await get("audit", { ...filters, order: "desc", before_id: oldest, limit: count });
  const bottom = log.entries.length ? log.entries[log.entries.length - 1].id : Infinity;
  log.entries = log.entries.concat(entries.filter((e) => e.id < bottom));
  log.more = entries.length === count;
}

// An object's name and, when its entry names it otherwise (a token's id and its name), that too.
function objectText(e) {
  const alias = (e.after && e.after.name) || (e.before && e.before.name);
  return alias && alias !== e.object_name ? `${e.object_name || ""} (${alias})` : e.object_name || "";
}

function Detail({ entry, onClose }) {
  return html`<section class="card admin-detail" aria-label="Audit entry" data-testid="audit-detail">
    <div class="row">
      <h2>#${entry.id} ${entry.action}</h2>
      <span class="spacer"></span>
      <button class="btn small" type="button" onClick=${onClose}>Close</button>
    </div>
    <dl class="props">
      <dt>Time</dt><dd>${fmt.time(entry.at)}</dd>
      <dt>Actor</dt><dd>${entry.actor_name} <code>${entry.actor}</code></dd>
      <dt>Object</dt><dd>${entry.object_kind} ${objectText(entry)}</dd>
      <dt>Project</dt><dd>${entry.project || "—"}</dd>
      <dt>Result</dt><dd>${entry.result}${entry.detail ? ` · ${entry.detail}` : ""}</dd>
      <dt>Address</dt><dd>${entry.address || "—"}</dd>
    </dl>
    <div class="grid">
      <div><h3>Before</h3><pre class="admin-json">${entry.before ? JSON.stringify(entry.before, null, 2) : "—"}</pre></div>
      <div><h3>After</h3><pre class="admin-json">${entry.after ? JSON.stringify(entry.after, null, 2) : "—"}</pre></div>
    </div>
  </section>`;
}

export function AuditPage({ query }) {
  const session = useSession();
  const { whoami, project } = session;
  const admin = can(whoami, "admin");
  const q = query || {};
  // the form's fields; applied (into the address) by Filter
  const [form, setForm] = useState({ actor: q.actor || "", action: q.action || "", object: q.object || "", since: q.since || "" });
  const [pageNo, setPageNo] = useState(0);
  const [open, setOpen] = useState(null);
  const acc = useRef(freshLog(null));
  const [, redraw] = useState(0);
  const filters = { actor: q.actor || undefined, action: q.action || undefined, project: project || undefined };
  const log = usePoll(() => (admin ? readNew(acc, filters) : Promise.resolve(null)), 3000, [admin, q.actor, q.action, project]);
  const older = useAction(async (next) => {
    const held = acc.current;
    // with a browser-side filter, read more at once: few of the entries may match
    await readOlder(held, filters, q.object || q.since ? BATCH : PAGE);
    if (acc.current === held) {
      redraw((n) => n + 1);
      next();
    }
  });
  if (!admin) {
    return html`<div class="page"><${PageHeader} title="Audit log" /><p class="notice">The audit log needs the <code>admin</code> scope.</p></div>`;
  }
  const since = q.since ? new Date(q.since).getTime() : null;
  const object = (q.object || "").toLowerCase();
  const loaded = Boolean(log.data) && acc.current.key === JSON.stringify(filters);
  const held = loaded ? acc.current : freshLog(null);
  const all = held.entries;
  const sinceOk = since !== null && !Number.isNaN(since);
  const shown = all.filter(
    (e) => !(sinceOk && new Date(e.at).getTime() < since) && !(object && !`${e.object_kind} ${objectText(e)}`.toLowerCase().includes(object))
  );
  // older entries may exist, and may match: not when the oldest held is already before "since"
  const more = held.more && !(sinceOk && all.length && new Date(all[all.length - 1].at).getTime() < since);
  const pages = Math.max(1, Math.ceil(shown.length / PAGE));
  const current = Math.min(pageNo, pages - 1);
  const rows = shown.slice(current * PAGE, current * PAGE + PAGE);
  const apply = (e) => {
    e.preventDefault();
    setPageNo(0);
    setQuery({ actor: form.actor.trim(), action: form.action.trim(), object: form.object.trim(), since: form.since });
  };
  const clear = () => {
    setForm({ actor: "", action: "", object: "", since: "" });
    setPageNo(0);
    setQuery({ actor: "", action: "", object: "", since: "" });
  };
  const input = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  const columns = [
    { key: "at", label: "Time", value: (e) => e.id, render: (e) => html`<span title=${e.at}>${fmt.time(e.at)}</span>` },
    { key: "actor", label: "Actor", value: (e) => e.actor_name, render: (e) => html`${e.actor_name} <code class="muted">${e.actor}</code>` },
    { key: "action", label: "Action", render: (e) => html`<code>${e.action}</code>` },
    { key: "object", label: "Object", value: (e) => `${e.object_kind} ${objectText(e)}`, render: (e) => html`<span class="muted">${e.object_kind}</span> ${objectText(e)}` },
    { key: "project", label: "Project", value: (e) => e.project || "" },
    { key: "result", label: "Result", align: "right", render: (e) => html`<span class=${`badge ${e.result < 400 ? "tone-ok" : "tone-bad"}`} title=${e.detail || ""}>${e.result}</span>` },
    { key: "address", label: "Address", value: (e) => e.address || "" },
  ];
  return html`<div class="page admin-page">
    <${PageHeader} title="Audit log" subtitle=${`Every control action and refused attempt${project ? ` in project ${project}` : ""}, newest first; live`} />
    <form class="toolbar admin-filters" aria-label="Filter the audit log" onSubmit=${apply}>
      <label>Actor <input name="actor" placeholder="token name or id" value=${form.actor} onInput=${input("actor")} /></label>
      <label>Action <input name="action" placeholder="token.create or token" value=${form.action} onInput=${input("action")} /></label>
      <label>Object <input name="object" placeholder="name contains" value=${form.object} onInput=${input("object")} /></label>
      <label>Since <input name="since" type="datetime-local" value=${form.since} onInput=${input("since")} /></label>
      <button class="btn primary" type="submit">Filter</button>
      <button class="btn" type="button" onClick=${clear}>Clear</button>
    </form>
    <${ErrorBox} error=${log.error || older.error} />
    ${open ? html`<${Detail} entry=${open} onClose=${() => setOpen(null)} />` : null}
    <${Table}
      testid="audit"
      columns=${columns}
      rows=${rows}
      rowKey=${(e) => e.id}
      onRowClick=${setOpen}
      empty=${!loaded ? "Loading…" : more ? "No entries match among those read so far: press Older to search further back." : "No entries match. Actions made through the API or the CLI appear here."}
    />
    <div class="toolbar admin-pager">
      <button class="btn small" type="button" disabled=${current === 0} onClick=${() => setPageNo(current - 1)}>Newer</button>
      <span class="muted" data-testid="audit-page">${shown.length ? `${current * PAGE + 1}–${current * PAGE + rows.length} of ${shown.length}${more ? "+" : ""}` : more ? "none among the newest read" : "0 entries"} · page ${current + 1} of ${pages}${more ? "+" : ""}</span>
      <button
        class="btn small"
        type="button"
        disabled=${older.busy || (current >= pages - 1 && !more)}
        onClick=${() => (current < pages - 1 ? setPageNo(current + 1) : older.run(() => setPageNo(current + 1)))}
      >${older.busy ? "Loading…" : "Older"}</button>
    </div>
  </div>`;
}
