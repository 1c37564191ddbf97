// Monitoring: the endpoint's metrics history (GET /endpoints/{name}/metrics) over a span
// chosen in the address (?span=15m|1h|6h|24h), one plot per group of series, refreshed
// every 10 s. Scaling decisions and replica changes (the answer's `events`) are marked on
// the replicas plot. A plot can be hidden (remembered in localStorage); a series the
// answer lacks (GPU without a GPU) draws no plot.
import { html, useMemo } from "../../../vendor/preact-htm.js";
import { get } from "../../api.js";
import { TimeChart } from "../../chart.js";
import { ErrorBox, Spinner, fmt, usePoll } from "../../ui.js";
import { SpanButtons, epPath, pq, useStored } from "../detail_common.js";

export const SPANS = { "15m": 900, "1h": 3600, "6h": 21600, "24h": 86400 };

const count = (v) => (v === null || v === undefined ? "—" : fmt.num(v, 2));
// Short, for the y axis as well as the legend.
const ms = (v) => (v === null || v === undefined ? "—" : v >= 1000 ? `${fmt.num(v / 1000, 1)} s` : `${fmt.num(v, v < 10 ? 1 : 0)} ms`);
const bytes = (v) => (v === null || v === undefined ? "—" : fmt.bytes(v));
const pct = (v) => (v === null || v === undefined ? "—" : `${fmt.num(v, 1)}%`);
const frac = (v) => (v === null || v === undefined ? "—" : `${fmt.num(v * 100, 1)}%`);

// [id, title, [[series, label]], format, marks?]
const PLOTS = [
  ["requests", "Requests (per step)", [["requests", "requests"], ["ok", "2xx/3xx"]], count],
  ["rpm", "Requests/min", [["rpm", "requests/min"]], count],
  ["latency", "Latency", [["p50_ms", "p50"], ["p95_ms", "p95"], ["p99_ms", "p99"], ["latency_avg_ms", "mean"]], ms],
  ["errors", "Errors (per step)", [["errors_5xx", "5xx"], ["errors_4xx", "4xx"], ["cancelled", "cancelled"]], count],
  ["error_rate", "Error rate (5xx)", [["error_rate", "error rate"]], frac],
  ["load", "In flight and held", [["in_flight", "in flight"], ["held", "held"]], count],
  ["replicas", "Replicas (scaling decisions marked)", [["ready", "ready"], ["desired", "desired"]], count, true],
  ["cpu", "CPU (100% = one core)", [["cpu_percent", "CPU"]], pct],
  ["memory", "Memory (RSS)", [["rss_bytes", "RSS"]], bytes],
  ["gpu", "GPU utilisation (100% = one GPU)", [["gpu_util_percent", "GPU"]], pct],
  ["vram", "GPU memory", [["gpu_memory_bytes", "VRAM"]], bytes],
  ["network", "Network (per step)", [["bytes_in", "in"], ["bytes_out", "out"]], bytes],
];

// What a plot draws: its non-null values and the largest (the tests read them, a user the legend).
function drawn(columns) {
  let values = 0;
  let max = null;
  for (const vs of columns)
    for (const v of vs)
      if (v !== null && v !== undefined) {
        values++;
        if (max === null || v > max) max = v;
      }
  return { values, max };
}

export function MonitoringTab({ endpoint, query, setQuery }) {
  const span = SPANS[query.span] ? query.span : "1h";
  const [hidden, setHidden] = useStored("podium.detail.hiddenPlots", []);
  const { data, error, loading } = usePoll(
    () => {
      const to = Math.floor(Date.now() / 1000);
      return get(`${epPath(endpoint.name)}/metrics`, { ...pq(endpoint), from: to - SPANS[span], to });
    },
    10000,
    [endpoint.name, endpoint.project, span]
  );
  const plots = useMemo(() => {
    if (!data) return [];
    const marks = (data.events || []).map((e) => ({ t: e.ts, label: `${e.kind}: ${e.message}` }));
    return PLOTS.filter(([, , names]) => names.some(([n]) => n in data.series)).map(([id, title, names, format, marked]) => ({
      id,
      title,
      format,
      series: names.filter(([n]) => n in data.series).map(([n, label]) => ({ label, values: data.series[n] })),
      marks: marked ? marks : [],
      ...drawn(names.map(([n]) => data.series[n] || [])),
    }));
  }, [data]);
  const toggle = (id) => setHidden(hidden.includes(id) ? hidden.filter((x) => x !== id) : [...hidden, id]);
  const hasPoint = data && Object.values(data.series).some((vs) => vs.some((v) => v !== null));
  return html`<div class="detail-monitoring">
    <div class="toolbar">
      <${SpanButtons} label="Span" spans=${Object.keys(SPANS)} chosen=${span} onChoose=${(s) => setQuery({ span: s })} />
      <span class="muted">${data ? `step ${data.step} s · ${data.timestamps.length} points · refreshed every 10 s` : ""}</span>
      ${loading && !data ? html`<${Spinner} />` : null}
    </div>
    <div class="detail-plot-toggles" role="group" aria-label="Plots shown">
      ${plots.map(
        (p) => html`<label class="detail-toggle"><input type="checkbox" checked=${!hidden.includes(p.id)} onChange=${() => toggle(p.id)} /> ${p.title}</label>`
      )}
    </div>
    <${ErrorBox} error=${error} />
    ${data && !hasPoint ? html`<p class="notice">No point in this span yet: the server samples every ${data.step} s while the endpoint exists. Call it, or pick a longer span.</p>` : null}
    ${data && data.events && data.events.length
      ? html`<p class="muted">${data.events.length} scaling or replica event${data.events.length === 1 ? "" : "s"} in this span, marked as dashed lines on the replicas plot.</p>`
      : null}
    <div class="grid">
      ${plots
        .filter((p) => !hidden.includes(p.id))
        .map(
          (p) => html`<div key=${p.id} data-testid=${`plot-${p.id}`} data-values=${p.values} data-max=${p.max ?? ""}>
            <${TimeChart} testid=${`chart-${p.id}`} title=${p.title} times=${data.timestamps} series=${p.series} marks=${p.marks} format=${p.format} />
          </div>`
        )}
    </div>
  </div>`;
}
