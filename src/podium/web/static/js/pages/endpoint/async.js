// The async tab: the endpoint's async tasks (GET /endpoints/{name}/tasks, newest first)
// with status, times, result (GET /tasks/{id}/result) and cancel (DELETE /tasks/{id},
// confirmed) for pending and running ones; a form that submits a new task through the
// gateway's async route (POST …/endpoints/{name}/async/{path}); and the endpoint's batch
// jobs (GET /jobs?endpoint=) with their progress. Everything here needs scope `invoke`.
import { html, useState } from "../../../vendor/preact-htm.js";
import { API, del, get, request } from "../../api.js";
import { href } from "../../router.js";
import { can, useSession } from "../../session.js";
import { ErrorBox, StatusBadge, Table, confirm, fmt, toast, usePoll } from "../../ui.js";
import { JobProgress, gatewayError, gatewayPath, iso, parseJson, pretty } from "../play_util.js";
import { exampleBody } from "./playground.js";

const STATUSES = ["pending", "running", "succeeded", "failed", "cancelled", "expired"];
const LIVE = new Set(["pending", "running"]);

function durationText(s) {
  if (s === null) return "—";
  return s < 60 ? fmt.ms(s * 1000) : fmt.duration(s);
}

function duration(task) {
  if (!task.started_at) return null;
  return (task.finished_at || Date.now() / 1000) - task.started_at;
}

export function AsyncTab({ endpoint }) {
  const { whoami } = useSession();
  if (!can(whoami, "invoke", endpoint.project)) {
    return html`<p class="muted" data-testid="async-denied">Async tasks and batch jobs carry the model's answers: they need a token with scope <code>invoke</code> on project <code>${endpoint.project}</code>.</p>`;
  }
  return html`<div>
    <${SubmitTask} endpoint=${endpoint} />
    <${Tasks} endpoint=${endpoint} />
    <${Jobs} endpoint=${endpoint} />
  </div>`;
}

function SubmitTask({ endpoint }) {
  const [open, setOpen] = useState(false);
  const [path, setPath] = useState("/");
  const [text, setText] = useState(() => JSON.stringify(exampleBody(endpoint.spec), null, 2));
  const [invalid, setInvalid] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  if (!open) {
    return html`<div class="toolbar"><button class="btn primary" onClick=${() => setOpen(true)}>New async task</button></div>`;
  }
  const submit = async (e) => {
    e.preventDefault();
    const parsed = parseJson(text);
    if (parsed.error) {
      setInvalid(`Not valid JSON: ${parsed.error}`);
      return;
    }
    setInvalid(null);
    setError(null);
    setBusy(true);
    try {
      const sub = path.replace(/^\/+/, "");
      const res = await request("POST", `${gatewayPath(endpoint)}/async/${sub}`, { body: JSON.stringify(parsed.value), headers: { "Content-Type": "application/json" }, raw: true });
      if (!res.ok) throw await gatewayError(res);
      const out = await res.json();
      toast(`Task ${out.task_id} queued`);
      setOpen(false);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card play-form" onSubmit=${submit} data-testid="task-form">
    <h3>New async task</h3>
    <label class="field">
      <span class="field-label">Task path</span>
      <input name="task_path" value=${path} onInput=${(e) => setPath(e.target.value)} />
      <span class="field-hint">the replica path, after <code>${gatewayPath(endpoint)}/async</code></span>
    </label>
    <label class=${`field${invalid ? " invalid" : ""}`}>
      <span class="field-label">Task body (JSON)</span>
      <textarea name="task_body" spellcheck="false" value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
      ${invalid ? html`<span class="field-error" role="alert">${invalid}</span>` : null}
    </label>
    <${ErrorBox} error=${error} />
    <div class="row">
      <button class="btn primary" type="submit" disabled=${busy}>${busy ? "Submitting…" : "Submit task"}</button>
      <button class="btn" type="button" onClick=${() => setOpen(false)}>Cancel</button>
    </div>
  </form>`;
}

// At most this much of a task's result is shown (a larger one, or a binary one, is offered
// as a download): a multi-MB result pretty-printed into the page would freeze the tab.
export const RESULT_SHOWN = 256 * 1024;

// The first `limit` bytes of a body as text: {text, truncated}; the rest is not read.
export async function readHead(res, limit) {
  if (!res.body) return { text: "", truncated: false };
  const reader = res.body.getReader();
  const parts = [];
  let n = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    parts.push(value);
    n += value.length;
    if (n > limit) {
      reader.cancel().catch(() => {});
      break;
    }
  }
  const all = new Uint8Array(Math.min(n, limit));
  let at = 0;
  for (const p of parts) {
    const take = Math.min(p.length, all.length - at);
    all.set(p.subarray(0, take), at);
    at += take;
    if (at >= all.length) break;
  }
  return { text: new TextDecoder().decode(all), truncated: n > limit };
}

function Tasks({ endpoint }) {
  const [status, setStatus] = useState("");
  const [result, setResult] = useState(null); // {task, status, replicaStatus, type, text} | {task, error}
  const { data, error, reload } = usePoll(
    () => get(`endpoints/${encodeURIComponent(endpoint.name)}/tasks`, { project: endpoint.project, status: status || undefined, limit: 100 }),
    3000,
    [endpoint.name, endpoint.project, status]
  );
  const open = async (task) => {
    try {
      const res = await request("GET", `tasks/${encodeURIComponent(task.id)}/result`);
      const type = res.headers.get("content-type") || "";
      const size = Number(res.headers.get("content-length")) || null;
      const textual = !type || /json|text|xml|javascript/.test(type);
      const head = textual ? await readHead(res, RESULT_SHOWN) : (res.body && res.body.cancel().catch(() => {}), null);
      setResult({ task, status: res.status, replicaStatus: res.headers.get("x-podium-result-status"), type, size, textual, text: head && head.text, truncated: head && head.truncated });
    } catch (err) {
      setResult({ task, error: err });
    }
  };
  const cancel = async (task) => {
    const ok = await confirm({ title: `Cancel task ${task.id}?`, message: task.status === "running" ? "The running call is dropped by its dispatcher." : "It will not run.", confirmLabel: "Cancel task", danger: true });
    if (!ok) return;
    try {
      await del(`tasks/${encodeURIComponent(task.id)}`);
      toast(`Cancelled ${task.id}`);
    } catch (err) {
      toast(`Could not cancel ${task.id}: ${err.message}`, "bad");
    }
    reload();
  };
  const columns = [
    { key: "id", label: "Task", render: (t) => html`<code>${t.id}</code>${t.job_id ? html` <a href=${href(`/jobs/${t.job_id}`)} class="muted">job line ${t.line}</a>` : null}` },
    {
      key: "status",
      label: "Status",
      render: (t) => html`<${StatusBadge} status=${t.status} title=${t.error || t.status} />${t.queue_position ? html` <span class="muted">#${t.queue_position} in queue</span>` : null}${
        t.error ? html`<div class="play-task-error">${t.error}</div>` : null
      }`,
    },
    { key: "created_at", label: "Created", render: (t) => html`<span title=${fmt.time(iso(t.created_at))}>${fmt.ago(iso(t.created_at))}</span>` },
    { key: "duration", label: "Duration", align: "right", value: duration, render: (t) => durationText(duration(t)) },
    { key: "attempts", label: "Attempts", align: "right", render: (t) => `${t.attempts} / ${t.max_attempts}` },
    { key: "path", label: "Path", render: (t) => html`<code>${t.method} ${t.path}</code>` },
    {
      key: "actions",
      label: "",
      sortable: false,
      render: (t) => html`<div class="row">
        ${t.result_url || t.result !== null ? html`<button class="btn small" onClick=${() => open(t)}>Result</button>` : null}
        ${LIVE.has(t.status) ? html`<button class="btn small danger" onClick=${() => cancel(t)}>Cancel</button>` : null}
      </div>`,
    },
  ];
  return html`<section class="play-section">
    <div class="toolbar">
      <h2>Async tasks</h2>
      <div class="spacer"></div>
      <label class="play-inline">Status
        <select aria-label="Task status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
          <option value="">all</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
        </select>
      </label>
    </div>
    <${ErrorBox} error=${error} />
    <${Table}
      testid="tasks"
      columns=${columns}
      rows=${(data && data.items) || []}
      empty=${data ? html`No tasks${status ? ` ${status}` : ""}. Send one with <strong>New async task</strong>, or POST to <code>${gatewayPath(endpoint)}/async/</code>.` : "Loading…"}
    />
    ${result
      ? html`<div class="card play-result" data-testid="task-result">
          <div class="row">
            <h3>Result of <code>${result.task.id}</code></h3>
            <div class="spacer"></div>
            <button class="btn small" onClick=${() => setResult(null)}>Close</button>
          </div>
          ${result.error
            ? html`<${ErrorBox} error=${result.error} />`
            : html`<div class="row">
                  ${result.replicaStatus ? html`<span class="badge tone-idle">replica answered ${result.replicaStatus}</span>` : null}
                  <span class="muted">${result.type}</span>
                </div>
                ${result.textual && !result.truncated ? html`<pre class="play-pre" data-testid="task-result-body">${pretty(result.text)}</pre>` : null}
                ${result.textual && result.truncated
                  ? html`<p class="notice" data-testid="task-result-truncated">Showing the first ${fmt.bytes(RESULT_SHOWN)}${result.size ? ` of ${fmt.bytes(result.size)}` : ""}: download the whole result below.</p>
                      <pre class="play-pre" data-testid="task-result-body">${result.text}</pre>`
                  : null}
                ${!result.textual ? html`<p class="muted">A ${result.type} result${result.size ? ` of ${fmt.bytes(result.size)}` : ""} is not shown here.</p>` : null}
                <a class="btn small" data-testid="task-result-download" href=${`${API}/tasks/${encodeURIComponent(result.task.id)}/result`} download=${`${result.task.id}.result`}>Download the result</a>`}
        </div>`
      : null}
  </section>`;
}

function Jobs({ endpoint }) {
  const { data, error } = usePoll(() => get("jobs", { endpoint: endpoint.name, project: endpoint.project, limit: 100 }), 3000, [endpoint.name, endpoint.project]);
  const columns = [
    { key: "id", label: "Job", render: (j) => html`<a href=${href(`/jobs/${j.id}`)}><code>${j.id}</code></a>` },
    { key: "status", label: "Status", render: (j) => html`<${StatusBadge} status=${j.status} title=${j.error || j.status} />` },
    { key: "progress", label: "Progress", value: (j) => (j.lines_total ? j.lines_done / j.lines_total : 0), render: (j) => html`<${JobProgress} job=${j} />` },
    { key: "eta_s", label: "ETA", align: "right", render: (j) => (j.eta_s === null ? "—" : fmt.duration(j.eta_s)) },
    { key: "created_at", label: "Created", render: (j) => fmt.ago(iso(j.created_at)) },
  ];
  return html`<section class="play-section">
    <h2>Batch jobs</h2>
    <${ErrorBox} error=${error} />
    <${Table} testid="endpoint-jobs" columns=${columns} rows=${(data && data.items) || []} empty=${data ? html`No batch jobs for this endpoint. <code>podium jobs create ${endpoint.name} --input lines.jsonl</code> starts one.` : "Loading…"} />
  </section>`;
}
