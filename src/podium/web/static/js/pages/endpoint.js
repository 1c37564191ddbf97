// One endpoint: its header (status with reason, actions) and its tabs. The endpoint is
// polled here every 2 s and handed to the tab as `endpoint` (GET /api/v1/endpoints/{name},
// EndpointPublic); `project` is the `?project=` of the address; `reload()` refreshes it
// at once (after an action).
import { html } from "../../vendor/preact-htm.js";
import { get, post, del } from "../api.js";
import { navigate, setQuery } from "../router.js";
import { can, useSession } from "../session.js";
import { ErrorBox, PageHeader, Spinner, StatusBadge, Tabs, confirm, toast, usePoll, useAction } from "../ui.js";
import { OverviewTab } from "./endpoint/overview.js";
import { InstancesTab } from "./endpoint/instances.js";
import { MonitoringTab } from "./endpoint/monitoring.js";
import { LogsTab } from "./endpoint/logs.js";
import { EventsTab } from "./endpoint/events.js";
import { RequestsTab } from "./endpoint/requests.js";
import { AsyncTab } from "./endpoint/async.js";
import { PlaygroundTab } from "./endpoint/playground.js";
import { ScalingTab } from "./endpoint/scaling.js";
import { SettingsTab } from "./endpoint/settings.js";
import { UsageTab } from "./endpoint/usage.js";
import { LOADING, epPath, useEventLog } from "./detail_common.js";

export const TABS = [
  ["overview", "Overview", OverviewTab],
  ["instances", "Instances", InstancesTab],
  ["monitoring", "Monitoring", MonitoringTab],
  ["logs", "Logs", LogsTab],
  ["events", "Events", EventsTab],
  ["requests", "Request logs", RequestsTab],
  ["async", "Async", AsyncTab],
  ["playground", "Playground", PlaygroundTab],
  ["scaling", "Scaling", ScalingTab],
  ["settings", "Settings", SettingsTab],
  ["usage", "Usage & cost", UsageTab],
];

// The actions of the header: [id, button label, when it applies, the route, confirm text].
// The API's rules (api/services/endpoints.py): pause anything but a paused one; resume a
// paused one; wake a scaled-to-zero one; scale to zero one that has (or will have) replicas.
const ACTIONS = [
  ["pause", "Pause", (s) => !["paused", "deleting"].includes(s), "Its replicas stop and requests are refused until it is resumed."],
  ["resume", "Resume", (s) => s === "paused", "Its replicas start again."],
  ["scale-to-zero", "Scale to zero", (s) => ["running", "updating", "initializing", "pending"].includes(s), "Its replicas stop now; the next request wakes it."],
  ["wake", "Wake", (s) => s === "scaled_to_zero", "Its replicas start ahead of traffic."],
];

function Actions({ endpoint, project, reload }) {
  const { whoami } = useSession();
  const act = useAction(async (id, label, message) => {
    const ok = await confirm({ title: `${label} ${endpoint.name}?`, message, confirmLabel: label, danger: id === "delete" });
    if (!ok) return;
    const q = { query: { project: endpoint.project } };
    if (id === "delete") {
      await del(epPath(endpoint.name), q);
      toast(`Deleting ${endpoint.name}`);
      navigate("/endpoints", project ? { project } : undefined);
      return;
    }
    await post(`${epPath(endpoint.name)}/${id}`, undefined, q);
    toast(`${label}: ${endpoint.name}`);
    reload();
  });
  if (!can(whoami, "deploy", endpoint.project)) return null;
  const s = endpoint.status;
  return html`${ACTIONS.filter(([, , applies]) => applies(s)).map(
      ([id, label, , message]) => html`<button class="btn" disabled=${act.busy} onClick=${() => act.run(id, label, message)}>${label}</button>`
    )}
    ${s !== "deleting"
      ? html`<button class="btn danger" disabled=${act.busy} onClick=${() => act.run("delete", "Delete", "The endpoint and its replicas are removed. This cannot be undone.")}>Delete</button>`
      : null}
    ${act.error ? html`<div class="detail-action-error"><${ErrorBox} error=${act.error} /></div>` : null}`;
}

// While it comes up: ready/desired and the latest event (a download, a replica starting).
function Progress({ endpoint }) {
  const loading = LOADING.includes(endpoint.status);
  const { items } = useEventLog(endpoint, loading ? 2000 : 0);
  if (!loading) return null;
  const last = items.length ? items[items.length - 1] : null;
  const desired = Math.max(endpoint.desired_replicas, 1);
  const pct = Math.min(100, Math.round((endpoint.ready_replicas / desired) * 100));
  return html`<div class="notice detail-progress" data-testid="progress">
    <div class="row">
      <${Spinner} label="In progress" />
      <strong>${endpoint.status.replaceAll("_", " ")}</strong>
      <span>${endpoint.ready_replicas}/${endpoint.desired_replicas} replicas ready</span>
      ${last ? html`<span class="muted" data-testid="progress-event">${last.message}</span>` : null}
    </div>
    <div class="progress"><div style=${{ width: `${pct}%` }}></div></div>
  </div>`;
}

export function EndpointPage({ params, query }) {
  const name = params.name;
  const project = query.project || undefined;
  const tab = params.tab || "overview";
  const poll = usePoll(() => get(`endpoints/${encodeURIComponent(name)}`, { project }), 2000, [name, project]);
  const { error, reload } = poll;
  // main.js gives each endpoint its own page (a key), so this is a second guard: never
  // draw another endpoint's header or actions under this address.
  const endpoint = poll.data && poll.data.name === name ? poll.data : undefined;
  if (!endpoint && error) return html`<div class="page"><${ErrorBox} error=${error} /></div>`;
  if (!endpoint) return html`<div class="page"><${Spinner} /></div>`;
  const entry = TABS.find(([id]) => id === tab) || TABS[0];
  const Tab = entry[2];
  const go = (id) => navigate(`/endpoints/${encodeURIComponent(name)}/${id}`, project ? { project } : undefined);
  const model = endpoint.model_ref.split(":")[0];
  const modelLink = /^(hf|s3):\/\//.test(endpoint.model_ref)
    ? html`<code>${endpoint.model_ref}</code>`
    : html`<a href=${`#/models/${encodeURIComponent(model)}${endpoint.project !== "default" ? `?project=${encodeURIComponent(endpoint.project)}` : ""}`} data-testid="model-link">${endpoint.model_ref}</a>`;
  return html`<div class="page endpoint-page">
    <${PageHeader}
      title=${html`<span data-testid="endpoint-name">${endpoint.name}</span> <span data-testid="endpoint-status"><${StatusBadge} status=${endpoint.status} title=${endpoint.status_reason} /></span>`}
      subtitle=${html`${endpoint.status_reason ? html`<span class="detail-reason" data-testid="status-reason">${endpoint.status_reason} · </span>` : null}revision ${endpoint.revision} · ${modelLink} · ${endpoint.project}`}
    >
      <${Actions} endpoint=${endpoint} project=${project} reload=${reload} />
    <//>
    <${Progress} endpoint=${endpoint} />
    ${error ? html`<${ErrorBox} error=${error} />` : null}
    <${Tabs} tabs=${TABS.map(([id, label]) => ({ id, label }))} active=${entry[0]} onSelect=${go} />
    <section class="tab-body" data-tab-body=${entry[0]}>
      <${Tab} endpoint=${endpoint} project=${project} reload=${reload} query=${query} setQuery=${setQuery} />
    </section>
  </div>`;
}
