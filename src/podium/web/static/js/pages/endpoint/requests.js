// Request logs: the endpoint's request records (GET /endpoints/{name}/requests), newest
// first, filtered (the filters live in the address). The newest 100 first; then every 3 s
// only the records above the newest id held (`after=`), put on top, so the list has no
// hole however many arrive; older pages on demand (`cursor=`), at the bottom. A row opens
// the whole record; "Download CSV" fetches the same filters as CSV from the server
// (through request(), so the session cookie and CSRF header go).
import { html, useEffect, useRef, useState } from "../../../vendor/preact-htm.js";
import { get, request } from "../../api.js";
import { can, useSession } from "../../session.js";
import { ErrorBox, Table, downloadBlob, fmt, useAction, usePoll } from "../../ui.js";
import { epPath, pq } from "../detail_common.js";

const FILTERS = ["status", "min_latency_ms", "since", "until", "replica", "revision", "request_id"];

// The API's filters from the address (since/until are local datetime-local values there).
function apiFilters(query) {
  const f = {};
  for (const k of FILTERS) if (query[k]) f[k] = query[k];
  for (const k of ["since", "until"]) {
    if (f[k]) {
      const d = new Date(f[k]);
      if (Number.isNaN(d.getTime())) delete f[k];
      else f[k] = d.toISOString();
    }
  }
  return f;
}

const statusTone = (s) => (s >= 500 || s === 0 ? "tone-bad" : s >= 400 ? "tone-wait" : "tone-ok");
const when = (t) => fmt.time(t * 1000); // received_at is unix seconds
const PAGE = 100;
const AFTER_PAGE = 1000;
const KEEP = 5000; // rows held at most: past it the oldest go (and "Load older" reads them again)

// The records matching `filters`, newest first: {items, cursor, loaded, error}, and
// `older()` to read the next older page. One request at a time: a tick while one is out
// is skipped, so answers slower than the interval neither pile up nor get lost.
function useRequestLog(endpoint, filters, key, ms) {
  const [state, setState] = useState({ items: [], cursor: null, loaded: false, error: null });
  const acc = useRef(null);
  const path = `${epPath(endpoint.name)}/requests`;
  const base = { ...pq(endpoint), ...filters };
  const show = (a) => setState({ items: a.items, cursor: a.cursor, loaded: a.loaded, error: a.error });
  // Run `step(a)` unless another read is out; drop its result if the filters changed meanwhile.
  // A poll tick skips a busy log; a click (`wait`) runs after the read that is out.
  const exclusive = async (a, step, wait = false) => {
    while (wait && a.busy) await a.busy;
    if (a.busy) return a.busy;
    a.busy = (async () => {
      try {
        await step();
        a.error = null;
      } catch (error) {
        a.error = error;
      } finally {
        a.busy = null;
      }
      if (acc.current === a) show(a);
    })();
    return a.busy;
  };
  useEffect(() => {
    const a = { items: [], cursor: null, loaded: false, error: null, busy: null };
    acc.current = a;
    setState({ items: [], cursor: null, loaded: false, error: null });
    const tick = () =>
      exclusive(a, async () => {
        if (!a.loaded) {
          const page = await get(path, { ...base, limit: PAGE });
          a.items = page.items || [];
          a.cursor = page.next_cursor;
          a.loaded = true;
          return;
        }
        for (;;) {
          const newest = a.items.length ? a.items[0].id : 0;
          const page = await get(path, { ...base, after: newest, limit: AFTER_PAGE }); // oldest first
          const got = (page.items || []).filter((r) => r.id > newest);
          if (got.length) a.items = [...got.reverse(), ...a.items];
          if (a.items.length > KEEP) {
            a.items = a.items.slice(0, KEEP);
            a.cursor = String(a.items[a.items.length - 1].id); // the cursor is the last id (docs/observability.md)
          }
          if (acc.current !== a || (page.items || []).length < AFTER_PAGE) return;
        }
      });
    tick();
    const timer = setInterval(() => document.visibilityState === "visible" && tick(), ms);
    return () => {
      clearInterval(timer);
      acc.current = null;
    };
  }, [endpoint.name, endpoint.project, key]); // eslint-disable-line
  const older = () => {
    const a = acc.current;
    if (!a || !a.cursor) return Promise.resolve();
    return exclusive(a, async () => {
      const page = await get(path, { ...base, limit: PAGE, cursor: a.cursor });
      const oldest = a.items.length ? a.items[a.items.length - 1].id : Infinity;
      a.items = [...a.items, ...(page.items || []).filter((r) => r.id < oldest)];
      a.cursor = page.next_cursor;
    }, true);
  };
  return { ...state, older };
}

const COLUMNS = [
  { key: "received_at", label: "Received", render: (r) => html`<span class="detail-nowrap">${when(r.received_at)}</span>` },
  { key: "request_id", label: "Request id", render: (r) => html`<code>${r.request_id}</code>` },
  { key: "method", label: "Method" },
  { key: "route", label: "Route", render: (r) => html`<code>${r.route}</code>` },
  { key: "status", label: "Status", align: "right", render: (r) => html`<span class=${`badge ${statusTone(r.status)}`}>${r.status}</span>` },
  { key: "latency_ms", label: "Latency", align: "right", render: (r) => fmt.ms(r.latency_ms) },
  { key: "queue_ms", label: "Queue", align: "right", render: (r) => fmt.ms(r.queue_ms) },
  { key: "replica_id", label: "Replica", render: (r) => (r.replica_id ? html`<code>${r.replica_id}</code>` : "—") },
  { key: "revision", label: "Rev", align: "right" },
  { key: "bytes_out", label: "Bytes in/out", align: "right", render: (r) => `${fmt.bytes(r.bytes_in)} / ${fmt.bytes(r.bytes_out)}` },
  { key: "tokens_out", label: "Tokens in/out", align: "right", render: (r) => (r.tokens_in === null && r.tokens_out === null ? "—" : `${r.tokens_in ?? "—"} / ${r.tokens_out ?? "—"}`) },
];

function Record({ endpoint, record, onClose }) {
  const { whoami } = useSession();
  const mayPayloads = can(whoami, "deploy", endpoint.project);
  const { data: full, error } = usePoll(
    () =>
      mayPayloads
        ? get(`${epPath(endpoint.name)}/requests`, { ...pq(endpoint), request_id: record.request_id, include_payloads: true, limit: 10 }).then(
            (p) => (p.items || []).find((x) => x.id === record.id) || null
          )
        : Promise.resolve(null),
    0,
    [record.id]
  );
  const shown = full || record;
  const fields = Object.keys(shown).filter((k) => !["request_body", "response_body"].includes(k));
  const value = (k, v) =>
    v === null || v === undefined ? html`<span class="muted">—</span>` : k === "received_at" ? `${when(v)} (${v})` : typeof v === "object" ? JSON.stringify(v) : String(v);
  return html`<div class="card detail-record" data-testid="request-record" role="region" aria-label="Request record">
    <div class="row detail-record-head">
      <h3>Request <code>${record.request_id}</code></h3>
      <div class="spacer"></div>
      <button class="btn small" onClick=${onClose}>Close</button>
    </div>
    <dl class="props">
      ${fields.map((k) => html`<dt>${k}</dt><dd data-field=${k}>${value(k, shown[k])}</dd>`)}
    </dl>
    <${ErrorBox} error=${error} />
    ${mayPayloads
      ? ["request_body", "response_body"].map(
          (k) => html`<h3>${k.replace("_", " ")}</h3>${
            full && full[k] !== null && full[k] !== undefined
              ? html`<pre class="detail-body">${typeof full[k] === "string" ? full[k] : JSON.stringify(full[k], null, 2)}</pre>`
              : html`<p class="muted">${full ? "Not captured (the endpoint's observability settings choose what is kept)." : "…"}</p>`
          }`
        )
      : html`<p class="muted">Request and response bodies need the deploy scope.</p>`}
  </div>`;
}

export function RequestsTab({ endpoint, query, setQuery }) {
  const filters = apiFilters(query);
  const key = JSON.stringify(filters);
  const [open, setOpen] = useState(null);
  const log = useRequestLog(endpoint, filters, key, 3000);
  const rows = log.items;
  const cursor = log.cursor;
  const more = useAction(() => log.older());
  const csv = useAction(async () => {
    const res = await request("GET", `/api/v1/${epPath(endpoint.name)}/requests`, { query: { ...pq(endpoint), ...filters, format: "csv" } });
    downloadBlob(`${endpoint.name}-requests.csv`, await res.blob());
  });
  const set = (k) => (e) => setQuery({ [k]: e.target.value || undefined });
  const anyFilter = FILTERS.some((k) => query[k]);
  return html`<div class="detail-requests">
    <form class="toolbar detail-filters" onSubmit=${(e) => e.preventDefault()}>
      <label>Status <select aria-label="Status class" value=${query.status || ""} onChange=${set("status")}>
        <option value="">any</option>
        ${["2xx", "3xx", "4xx", "5xx", "error"].map((s) => html`<option value=${s}>${s}</option>`)}
      </select></label>
      <label>Min latency (ms) <input type="number" min="0" class="detail-narrow" aria-label="Min latency (ms)" value=${query.min_latency_ms || ""} onChange=${set("min_latency_ms")} /></label>
      <label>Since <input type="datetime-local" aria-label="Since" value=${query.since || ""} onChange=${set("since")} /></label>
      <label>Until <input type="datetime-local" aria-label="Until" value=${query.until || ""} onChange=${set("until")} /></label>
      <label>Replica <select aria-label="Replica" value=${query.replica || ""} onChange=${set("replica")}>
        <option value="">any</option>
        ${[...new Set([...endpoint.replicas.map((r) => r.replica_id), ...rows.map((r) => r.replica_id).filter(Boolean), ...(query.replica ? [query.replica] : [])])].map(
          (id) => html`<option value=${id}>${id}</option>`
        )}
      </select></label>
      <label>Revision <input type="number" min="1" class="detail-narrow" aria-label="Revision" value=${query.revision || ""} onChange=${set("revision")} /></label>
      <label>Request id <input type="search" aria-label="Request id" value=${query.request_id || ""} onChange=${set("request_id")} /></label>
      ${anyFilter ? html`<button type="button" class="btn" onClick=${() => setQuery(Object.fromEntries(FILTERS.map((k) => [k, undefined])))}>Clear filters</button>` : null}
      <div class="spacer"></div>
      <button type="button" class="btn" disabled=${csv.busy} onClick=${() => csv.run()}>${csv.busy ? "Downloading…" : "Download CSV"}</button>
    </form>
    <${ErrorBox} error=${log.error || csv.error || more.error} />
    <p class="muted" data-testid="request-count">${rows.length} record${rows.length === 1 ? "" : "s"} shown${cursor ? " (more are older)" : ""} · newest first · live</p>
    ${open ? html`<${Record} endpoint=${endpoint} record=${open} onClose=${() => setOpen(null)} />` : null}
    <${Table}
      testid="requests"
      columns=${COLUMNS}
      rows=${rows}
      rowKey=${(r) => r.id}
      onRowClick=${(r) => setOpen(r)}
      empty=${log.loaded ? (anyFilter ? "No record matches these filters." : "No request yet: call the endpoint (see Overview or the Playground) and its calls appear here.") : "Loading…"}
    />
    ${cursor ? html`<div class="toolbar"><button class="btn" disabled=${more.busy} onClick=${() => more.run()}>${more.busy ? "Loading…" : "Load older"}</button></div>` : null}
  </div>`;
}
