// Events: what happened to the endpoint (created, status changes, replicas starting and
// stopping, scaling decisions, rollouts), newest first (a column head sorts otherwise).
// After the first read only newer events are fetched (`after=`), every 2 s, in the log the
// frame's progress line shares (detail_common.js).
import { html, useState } from "../../../vendor/preact-htm.js";
import { ErrorBox, Table, fmt } from "../../ui.js";
import { useEventLog } from "../detail_common.js";

const COLUMNS = [
  { key: "at", label: "Time", value: (e) => e.id, render: (e) => html`<span class="detail-nowrap" title=${e.at}>${fmt.time(e.at)}</span>` },
  { key: "kind", label: "Kind", render: (e) => html`<span class=${`detail-kind kind-${e.kind}`}>${e.kind}</span>` },
  { key: "message", label: "Message" },
];

export function EventsTab({ endpoint }) {
  const { items, error } = useEventLog(endpoint, 2000);
  const [kind, setKind] = useState("");
  const [text, setText] = useState("");
  const kinds = [...new Set(items.map((e) => e.kind))].sort();
  const q = text.trim().toLowerCase();
  const shown = items.filter((e) => (!kind || e.kind === kind) && (!q || e.message.toLowerCase().includes(q))).reverse();
  return html`<div class="detail-events">
    <div class="toolbar">
      <label>Kind <select aria-label="Event kind" value=${kind} onChange=${(e) => setKind(e.target.value)}>
        <option value="">all</option>
        ${kinds.map((k) => html`<option value=${k}>${k}</option>`)}
      </select></label>
      <input type="search" placeholder="Search events" aria-label="Search events" value=${text} onInput=${(e) => setText(e.target.value)} />
      <span class="muted">${shown.length} of ${items.length} events · newest first · live</span>
    </div>
    <${ErrorBox} error=${error} />
    <${Table} testid="events" columns=${COLUMNS} rows=${shown} rowKey=${(e) => e.id} empty=${items.length ? "No event matches the filter." : "No event yet."} />
  </div>`;
}
