// Usage & cost: the endpoint's replica time and its cost over a span (?uspan=24h|7d|30d|90d),
// per instance type and per UTC day (GET /api/v1/usage?project=&endpoint=&group_by=).
// Cost = replica hours × the instance type's price in this server's catalog.
import { html } from "../../../vendor/preact-htm.js";
import { get } from "../../api.js";
import { ErrorBox, Spinner, Table, fmt, usePoll } from "../../ui.js";
import { SpanButtons, Stat, pq } from "../detail_common.js";

const SPANS = { "24h": 1, "7d": 7, "30d": 30, "90d": 90 };
const hours = (s) => `${fmt.num(s / 3600, 2)} h`;

const TYPE_COLUMNS = [
  { key: "instance_type", label: "Instance type", render: (r) => html`<code>${r.instance_type}</code>${r.cpus !== undefined && r.cpus !== null ? html` <span class="muted">${fmt.num(r.cpus, 2)} CPU, ${r.memory_mb} MiB${r.gpus ? `, ${r.gpus} GPU` : ""}</span>` : null}` },
  { key: "replica_seconds", label: "Replica-hours", align: "right", render: (r) => hours(r.replica_seconds) },
  { key: "cost", label: "Cost", align: "right", render: (r) => fmt.money(r.cost) },
];
const DAY_COLUMNS = [{ key: "day", label: "Day (UTC)" }, ...TYPE_COLUMNS];

export function UsageTab({ endpoint, query, setQuery }) {
  const span = SPANS[query.uspan] ? query.uspan : "7d";
  const { data, error } = usePoll(
    async () => {
      const to = new Date();
      const from = new Date(to.getTime() - SPANS[span] * 86400 * 1000);
      const q = { ...pq(endpoint), endpoint: endpoint.name, from: from.toISOString(), to: to.toISOString() };
      const [byType, byDay] = await Promise.all([get("usage", { ...q, group_by: "endpoint" }), get("usage", { ...q, group_by: "day" })]);
      return { byType, byDay };
    },
    30000,
    [endpoint.name, endpoint.project, span]
  );
  const size = endpoint.size;
  return html`<div class="detail-usage">
    <div class="toolbar">
      <${SpanButtons} label="Usage span" spans=${Object.keys(SPANS)} chosen=${span} onChoose=${(s) => setQuery({ uspan: s })} text=${(s) => `Last ${s}`} />
      ${size ? html`<span class="muted">Now: ${endpoint.ready_replicas} × ${size.name} at ${fmt.money(size.price_per_hour)}/h = ${fmt.money(endpoint.ready_replicas * size.price_per_hour)}/h</span>` : null}
    </div>
    <${ErrorBox} error=${error} />
    ${!data
      ? html`<${Spinner} />`
      : html`<div class="stats">
            <${Stat} label="Replica-hours" value=${hours(data.byType.total_replica_seconds)} testid="usage-hours" />
            <${Stat} label=${`Cost (${data.byType.currency})`} value=${fmt.money(data.byType.total_cost)} testid="usage-cost" />
          </div>
          ${(data.byType.notes || []).map((n) => html`<p class="notice">${n}</p>`)}
          <h3>By instance type</h3>
          <${Table} testid="usage-types" columns=${TYPE_COLUMNS} rows=${data.byType.rows} rowKey=${(r) => `${r.instance_type}/${r.cpus}/${r.memory_mb}/${r.gpus}`} empty="No replica ran in this span." />
          <h3>By day</h3>
          <${Table} testid="usage-days" columns=${DAY_COLUMNS} rows=${data.byDay.rows} rowKey=${(r) => `${r.day}/${r.instance_type}/${r.cpus}/${r.memory_mb}`} empty="No replica ran in this span." />
          <p class="muted">From the replicas' start and stop times (a running replica counts up to now), priced by this server's instance-type catalog.</p>`}
  </div>`;
}
