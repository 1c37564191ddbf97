// Pieces shared by the playground, async, scaling and settings tabs and the Jobs page:
// the gateway path of an endpoint, a call's request record, JSON helpers, progress bars
// and a field-by-field diff of two specs.
import { html, useEffect, useState } from "../../vendor/preact-htm.js";
import { ApiError, endpointUrl, get } from "../api.js";
import { ErrorBox, Spinner, fmt } from "../ui.js";

// The gateway path of an endpoint (what the browser calls; same origin): the path of
// api.js endpointUrl, which owns the project rule.
export function gatewayPath(endpoint) {
  return new URL(endpointUrl(endpoint.name, endpoint.project)).pathname;
}

// Parse JSON text: {value} or {error: "line 3: …"}.
export function parseJson(text) {
  try {
    return { value: JSON.parse(text) };
  } catch (e) {
    return { error: e.message };
  }
}

// A body as text: pretty JSON when it parses, else as it came.
export function pretty(text) {
  if (text === null || text === undefined) return "";
  const parsed = parseJson(text);
  return parsed.error ? text : JSON.stringify(parsed.value, null, 2);
}

// A non-2xx gateway answer as an ApiError: problem+json, or OpenAI's {"error": {...}}.
export async function gatewayError(res) {
  let body = {};
  try {
    body = await res.json();
  } catch {
    body = {};
  }
  if (body && body.error && typeof body.error === "object") {
    return new ApiError(res.status, { title: `HTTP ${res.status}`, detail: body.error.message || body.error.type, field: body.error.param || undefined });
  }
  return new ApiError(res.status, body && typeof body === "object" ? body : { title: `HTTP ${res.status}` });
}

// The request record of one call, polled until the background writer has stored it
// (records are written a moment after the answer): {record, error, waiting}.
export function useRequestRecord(endpoint, requestId) {
  const [state, setState] = useState({ record: null, error: null, waiting: false });
  useEffect(() => {
    if (!requestId) {
      setState({ record: null, error: null, waiting: false });
      return undefined;
    }
    let stopped = false;
    let timer = null;
    let tries = 0;
    setState({ record: null, error: null, waiting: true });
    const ask = async () => {
      tries++;
      try {
        const page = await get(`endpoints/${encodeURIComponent(endpoint.name)}/requests`, { request_id: requestId, project: endpoint.project, limit: 1 });
        if (stopped) return;
        if (page.items.length) {
          setState({ record: page.items[0], error: null, waiting: false });
          return;
        }
        if (tries >= 40) {
          setState({ record: null, error: new Error(`no request record for ${requestId} yet (records are written in the background; see Request logs)`), waiting: false });
          return;
        }
      } catch (error) {
        if (stopped) return;
        setState({ record: null, error, waiting: false });
        return;
      }
      timer = setTimeout(ask, 500);
    };
    ask();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [endpoint.name, endpoint.project, requestId]);
  return state;
}

// The record of one call: status, latencies, bytes, tokens.
export function RequestRecord({ endpoint, requestId }) {
  const { record, error, waiting } = useRequestRecord(endpoint, requestId);
  if (!requestId) return null;
  return html`<div class="card play-record" data-testid="request-record">
    <h3>Request record <code>${requestId}</code></h3>
    ${error ? html`<${ErrorBox} error=${error} />` : null}
    ${waiting ? html`<span class="muted"><${Spinner} label="Waiting for the record" /> waiting for the record…</span>` : null}
    ${record
      ? html`<dl class="props play-record-props">
          <dt>Status</dt><dd data-testid="record-status">${record.status}${record.error ? html` <span class="muted">(${record.error})</span>` : null}</dd>
          <dt>Latency</dt><dd data-testid="record-latency">${fmt.ms(record.latency_ms)}</dd>
          <dt>Queued</dt><dd>${fmt.ms(record.queue_ms)}</dd>
          <dt>Upstream</dt><dd>${fmt.ms(record.upstream_ms)}</dd>
          <dt>Time to first byte</dt><dd>${fmt.ms(record.ttfb_ms)}</dd>
          ${record.streamed || record.ttft_ms !== null
            ? html`<dt>Time to first token</dt><dd data-testid="record-ttft">${fmt.ms(record.ttft_ms)}</dd>`
            : null}
          ${record.tokens_in !== null || record.tokens_out !== null
            ? html`<dt>Tokens in / out</dt><dd data-testid="record-tokens">${fmt.num(record.tokens_in)} / ${fmt.num(record.tokens_out)}</dd>`
            : null}
          <dt>Bytes in / out</dt><dd>${fmt.bytes(record.bytes_in)} / ${fmt.bytes(record.bytes_out)}</dd>
          <dt>Replica</dt><dd><code>${record.replica_id || "—"}</code> ${record.revision ? html`<span class="muted">revision ${record.revision}</span>` : null}</dd>
          <dt>Route</dt><dd><code>${record.method} ${record.route}</code> <span class="muted">${record.protocol}</span></dd>
        </dl>`
      : null}
  </div>`;
}

// A progress bar of a batch job: succeeded and failed lines of the total.
export function JobProgress({ job }) {
  const total = job.lines_total || 0;
  const ok = total ? (job.lines_succeeded / total) * 100 : 0;
  const bad = total ? (job.lines_failed / total) * 100 : 0;
  return html`<div class="play-progress" data-testid="job-progress" title=${`${job.lines_succeeded} succeeded, ${job.lines_failed} failed, ${total} lines`}>
    <div class="play-bar" role="progressbar" aria-valuemin="0" aria-valuemax=${total} aria-valuenow=${job.lines_done}>
      <div class="play-bar-ok" style=${{ width: `${ok}%` }}></div>
      <div class="play-bar-bad" style=${{ width: `${bad}%` }}></div>
    </div>
    <span class="play-progress-text">${fmt.num(job.lines_done)} / ${fmt.num(total)}${job.lines_failed ? html` <span class="play-bad">(${fmt.num(job.lines_failed)} failed)</span>` : null}</span>
  </div>`;
}

export const JOB_ENDED = new Set(["completed", "cancelled", "failed"]);

// Unix seconds (the jobs and tasks API) → an ISO string for fmt.ago/time.
export const iso = (unix) => (unix === null || unix === undefined ? null : new Date(unix * 1000).toISOString());

function isObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

// Leaf-by-leaf differences of two JSON values: [{path: "scaling.max_replicas", old, new}].
// Objects are walked; arrays and scalars compare whole.
export function diff(oldValue, newValue, prefix = "") {
  if (isObject(oldValue) && isObject(newValue)) {
    const keys = [...new Set([...Object.keys(oldValue), ...Object.keys(newValue)])].sort();
    return keys.flatMap((k) => diff(oldValue[k], newValue[k], prefix ? `${prefix}.${k}` : k));
  }
  if (JSON.stringify(oldValue) === JSON.stringify(newValue)) return [];
  return [{ path: prefix, old: oldValue, new: newValue }];
}

export function show(value) {
  if (value === undefined) return "(absent)";
  return JSON.stringify(value);
}
