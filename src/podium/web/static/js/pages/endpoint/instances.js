// Instances: one row per replica of `endpoint.replicas` (the frame polls it every 2 s):
// state, revision, uptime, what it served, its size, restarts, and how it started (its
// cold start's phases as a stacked bar, seconds per phase on hover and in the list).
import { html } from "../../../vendor/preact-htm.js";
import { StatusBadge, Table, fmt } from "../../ui.js";

const PHASES = ["waiting", "fork", "spawn", "import", "load", "listen", "first_response"];

function Phases({ replica }) {
  const phases = replica.start_phases || {};
  const names = [...PHASES.filter((p) => p in phases), ...Object.keys(phases).filter((p) => !PHASES.includes(p))];
  if (!names.length) return html`<span class="muted">${replica.state === "ready" ? "not recorded" : "starting…"}</span>`;
  const total = names.reduce((s, p) => s + phases[p], 0) || 1;
  return html`<div class="detail-phases" data-testid="start-phases">
    <div class="detail-phase-bar" title=${names.map((p) => `${p} ${phases[p].toFixed(3)} s`).join(", ")}>
      ${names.map((p) => html`<span class=${`detail-phase phase-${p}`} style=${{ width: `${(phases[p] / total) * 100}%` }} title=${`${p}: ${phases[p].toFixed(3)} s`}></span>`)}
    </div>
    <div class="detail-phase-list muted">
      ${replica.start_mode ? html`<strong>${replica.start_mode}</strong> ` : null}${replica.ready_s !== null && replica.ready_s !== undefined ? `${replica.ready_s.toFixed(2)} s: ` : ""}${names.map((p) => `${p.replace("_", " ")} ${phases[p].toFixed(2)}s`).join(" · ")}
    </div>
  </div>`;
}

const COLUMNS = [
  { key: "replica_id", label: "Replica", render: (r) => html`<code>${r.replica_id}</code>` },
  { key: "state", label: "State", render: (r) => html`<${StatusBadge} status=${r.state} />` },
  { key: "revision", label: "Revision", align: "right" },
  { key: "uptime_s", label: "Uptime", align: "right", render: (r) => fmt.duration(r.uptime_s) },
  { key: "requests", label: "Requests (24 h)", align: "right", render: (r) => fmt.num(r.requests) },
  { key: "requests_per_min", label: "Req/min", align: "right", render: (r) => fmt.num(r.requests_per_min, 1) },
  { key: "avg_latency_ms", label: "Avg latency", align: "right", render: (r) => fmt.ms(r.avg_latency_ms) },
  { key: "cpus", label: "CPU", align: "right", render: (r) => fmt.num(r.cpus, 2) },
  { key: "gpus", label: "GPU", align: "right", render: (r) => fmt.num(r.gpus) },
  { key: "restarts", label: "Restarts", align: "right" },
  { key: "pid", label: "PID / port", render: (r) => html`<span class="muted">${r.pid ?? "—"} · ${r.port}</span>` },
  { key: "ready_s", label: "Cold start", sortable: true, render: (r) => html`<${Phases} replica=${r} />` },
];

export function InstancesTab({ endpoint }) {
  const empty =
    endpoint.status === "paused"
      ? "Paused: no replica runs. Resume the endpoint to start them."
      : endpoint.status === "scaled_to_zero"
        ? "Scaled to zero: the next request (or Wake) starts a replica."
        : "No replica yet: the controller is starting them (see Events).";
  return html`<div class="detail-instances">
    <p class="muted">${endpoint.ready_replicas} of ${endpoint.desired_replicas} desired replicas ready. Figures: requests over the last 24 h, rate and latency over the last 5 minutes.</p>
    <${Table} testid="replicas" columns=${COLUMNS} rows=${endpoint.replicas} rowKey=${(r) => r.replica_id} empty=${empty} />
  </div>`;
}
