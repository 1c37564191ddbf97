// The Endpoints page (#/endpoints): every endpoint of the session's project (or of every
// project the token reads) from ONE poll of GET /api/v1/endpoints every 3 s; tabs, search,
// filters, sorting and the CSV are computed here. The view lives in the address
// (?tab=&q=&label=&status=&framework=&sort=&dir=) so a reload or a shared link keeps it.
import { html, useEffect, useMemo, useState } from "../../vendor/preact-htm.js";
import { get } from "../api.js";
import { href, navigate, setQuery } from "../router.js";
import { can, useSession } from "../session.js";
import { CopyButton, ErrorBox, PageHeader, Spinner, StatusBadge, Table, Tabs, downloadCsv, fmt, sortRows, usePoll } from "../ui.js";
import { matchLabels, parseLabels, stamp } from "./list_common.js";

// Which tab each status goes under. `deleting` is a change under way, like a rollout:
// it shows under Loading (with its own badge) until the row is gone.
export const TAB_OF = {
  running: "active",
  pending: "loading",
  initializing: "loading",
  updating: "loading",
  deleting: "loading",
  scaled_to_zero: "zero",
  paused: "paused",
  failed: "failed",
};
const TAB_LIST = [
  ["all", "All"],
  ["active", "Active"],
  ["loading", "Loading"],
  ["zero", "Scaled to zero"],
  ["paused", "Paused"],
  ["failed", "Failed"],
];
const STATUSES = ["pending", "initializing", "running", "updating", "paused", "scaled_to_zero", "failed", "deleting"];

function absUrl(url) {
  return url && url.startsWith("/") ? location.origin + url : url;
}

function columns(showProject) {
  return [
    {
      key: "name",
      label: "Endpoint",
      value: (e) => e.name,
      render: (e) =>
        html`<a class="ep-name" href=${href(`/endpoints/${encodeURIComponent(e.name)}`, e.project !== "default" ? { project: e.project } : undefined)}
          >${e.name}</a
        >${showProject && e.project !== "default" ? html` <span class="muted ep-project">${e.project}</span>` : null}`,
    },
    { key: "model", label: "Model", value: (e) => e.model_ref, render: (e) => html`<code>${e.model_ref}</code>` },
    {
      key: "status",
      label: "Status",
      value: (e) => e.status,
      render: (e) => html`<${StatusBadge} status=${e.status} title=${e.status_reason || e.status} />`,
    },
    {
      key: "replicas",
      label: "Replicas",
      align: "right",
      value: (e) => e.ready_replicas,
      render: (e) => html`<span title="ready / desired">${e.ready_replicas}/${e.desired_replicas}</span>`,
    },
    {
      key: "url",
      label: "URL",
      value: (e) => absUrl(e.url),
      render: (e) => html`<span class="ep-url"><code title=${absUrl(e.url)}>${absUrl(e.url)}</code><${CopyButton} text=${absUrl(e.url)} /></span>`,
    },
    { key: "uptime", label: "Uptime", align: "right", value: (e) => e.uptime_s, render: (e) => fmt.duration(e.uptime_s) },
    { key: "requests", label: "Requests (24 h)", align: "right", value: (e) => e.requests, render: (e) => fmt.num(e.requests) },
    { key: "rpm", label: "Req/min", align: "right", value: (e) => e.requests_per_min, render: (e) => fmt.num(e.requests_per_min, 1) },
    { key: "latency", label: "Avg latency", align: "right", value: (e) => e.avg_latency_ms, render: (e) => fmt.ms(e.avg_latency_ms) },
    { key: "errors", label: "Error rate", align: "right", value: (e) => e.error_rate, render: (e) => fmt.pct(e.error_rate) },
  ];
}

// The CSV: raw numbers (seconds, ms, a 0–1 rate) so a spreadsheet can compute with them.
const CSV_COLUMNS = [
  { label: "endpoint", csv: (e) => e.name },
  { label: "project", csv: (e) => e.project },
  { label: "model", csv: (e) => e.model_ref },
  { label: "framework", csv: (e) => e.spec.framework },
  { label: "status", csv: (e) => e.status },
  { label: "status_reason", csv: (e) => e.status_reason },
  { label: "ready_replicas", csv: (e) => e.ready_replicas },
  { label: "desired_replicas", csv: (e) => e.desired_replicas },
  { label: "url", csv: (e) => absUrl(e.url) },
  { label: "uptime_s", csv: (e) => e.uptime_s },
  { label: "requests_24h", csv: (e) => e.requests },
  { label: "requests_per_min", csv: (e) => e.requests_per_min },
  { label: "avg_latency_ms", csv: (e) => e.avg_latency_ms },
  { label: "error_rate", csv: (e) => e.error_rate },
];

// The label filter applies on Enter or when the box is left; what is typed meanwhile is
// kept here, so the 3 s refresh does not wipe it.
function LabelFilter({ value }) {
  const [draft, setDraft] = useState(value);
  useEffect(() => setDraft(value), [value]);
  return html`<input
    type="text"
    aria-label="Filter by label"
    placeholder="label KEY=VALUE"
    value=${draft}
    onInput=${(e) => setDraft(e.target.value)}
    onChange=${(e) => setQuery({ label: e.target.value.trim() || undefined })}
  />`;
}

function EmptyState({ canDeploy }) {
  return html`<div class="card list-empty" data-testid="endpoints-empty">
    <h2>No endpoints yet</h2>
    <p>An endpoint serves a model over HTTP. Create one here${canDeploy ? "" : " (with a token that has the deploy scope)"}, or from a shell:</p>
    <pre><code>${"podium models push ./model.skops --name iris\npodium deploy iris --model iris"}</code></pre>
    ${canDeploy ? html`<a class="btn primary" href="#/new">Create endpoint</a>` : null}
  </div>`;
}

export function EndpointsPage({ query }) {
  const session = useSession();
  const project = session.project || undefined;
  const { data, error, loading } = usePoll(() => get("endpoints", { project }), 3000, [project]);
  const items = data ? data.items : null;

  const tab = TAB_LIST.some(([id]) => id === query.tab) ? query.tab : "all";
  const q = query.q || "";
  const label = query.label || "";
  const status = query.status || "";
  const framework = query.framework || "";
  const sort = query.sort ? { key: query.sort, dir: query.dir === "desc" ? "desc" : "asc" } : null;
  const showProject = !project;
  const cols = useMemo(() => columns(showProject), [showProject]);

  const view = useMemo(() => {
    if (!items) return null;
    const needle = q.trim().toLowerCase();
    const wanted = parseLabels(label);
    const base = items.filter(
      (e) =>
        (!needle || e.name.toLowerCase().includes(needle)) &&
        (!status || e.status === status) &&
        (!framework || e.spec.framework === framework) &&
        (!wanted.length || matchLabels(e.spec.labels, wanted))
    );
    const counts = { all: base.length, active: 0, loading: 0, zero: 0, paused: 0, failed: 0 };
    for (const e of base) counts[TAB_OF[e.status]] = (counts[TAB_OF[e.status]] || 0) + 1;
    const inTab = tab === "all" ? base : base.filter((e) => TAB_OF[e.status] === tab);
    const frameworks = [...new Set(items.map((e) => e.spec.framework))].sort();
    return { counts, rows: sortRows(inTab, cols, sort), frameworks };
  }, [items, q, label, status, framework, tab, sort && sort.key, sort && sort.dir, cols]);

  const canDeploy = can(session.whoami, "deploy", project);
  const filtered = Boolean(q || label || status || framework);
  const download = () => {
    const what = [tab, project || "all-projects", filtered ? "filtered" : null].filter(Boolean).join("-");
    downloadCsv(`podium-endpoints-${what}-${stamp()}.csv`, CSV_COLUMNS, view.rows);
  };

  return html`<div class="page list-page">
    <${PageHeader} title="Endpoints" subtitle=${project ? `project ${project}` : "all projects"}>
      ${view ? html`<button class="btn" onClick=${download} disabled=${!view.rows.length}>Download CSV</button>` : null}
      ${canDeploy ? html`<button class="btn primary" onClick=${() => navigate("/new", project ? { project } : undefined)}>Create endpoint</button>` : null}
    <//>
    ${error ? html`<${ErrorBox} error=${error} />` : null}
    ${!items && loading ? html`<${Spinner} />` : null}
    ${items && items.length === 0 ? html`<${EmptyState} canDeploy=${canDeploy} />` : null}
    ${items && items.length > 0
      ? html`
          <${Tabs}
            tabs=${TAB_LIST.map(([id, text]) => ({ id, label: text, count: view.counts[id] }))}
            active=${tab}
            onSelect=${(id) => setQuery({ tab: id === "all" ? undefined : id })}
          />
          <div class="toolbar list-filters">
            <input
              type="search"
              aria-label="Search by name"
              placeholder="Search by name"
              value=${q}
              onInput=${(e) => setQuery({ q: e.target.value || undefined })}
            />
            <${LabelFilter} value=${label} />
            <select aria-label="Filter by status" value=${status} onChange=${(e) => setQuery({ status: e.target.value || undefined })}>
              <option value="">any status</option>
              ${STATUSES.map((s) => html`<option value=${s}>${s.replaceAll("_", " ")}</option>`)}
            </select>
            <select aria-label="Filter by framework" value=${framework} onChange=${(e) => setQuery({ framework: e.target.value || undefined })}>
              <option value="">any framework</option>
              ${(framework && !view.frameworks.includes(framework) ? [...view.frameworks, framework] : view.frameworks).map(
                (f) => html`<option value=${f}>${f}</option>`
              )}
            </select>
            ${filtered
              ? html`<button class="btn small" onClick=${() => setQuery({ q: undefined, label: undefined, status: undefined, framework: undefined })}>Clear filters</button>`
              : null}
            <span class="muted" data-testid="shown-count">${view.rows.length} of ${items.length} shown</span>
          </div>
          <div class="list-table-wrap">
            <${Table}
              testid="endpoints-table"
              columns=${cols}
              rows=${view.rows}
              rowKey=${(e) => e.key || `${e.project}.${e.name}`}
              sort=${sort}
              onSort=${(s) => setQuery({ sort: s.key, dir: s.dir })}
              empty=${filtered ? "No endpoint matches these filters." : "No endpoint in this tab."}
            />
          </div>
        `
      : null}
  </div>`;
}
