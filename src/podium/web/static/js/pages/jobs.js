// The Jobs page: every batch job the token may invoke (GET /jobs, newest first) with its
// status, endpoint, progress and age (#/jobs), and one job (#/jobs/ID, GET /jobs/{id}):
// its counts, rate and ETA, its error, links to its input, output and error files
// (GET /files/{id}/content), and cancel (POST /jobs/{id}/cancel, confirmed).
import { html, useEffect, useRef, useState } from "../../vendor/preact-htm.js";
import { API, get, post, upload } from "../api.js";
import { href, navigate } from "../router.js";
import { can, useSession } from "../session.js";
import { ErrorBox, Field, PageHeader, Spinner, StatusBadge, Table, confirm, fmt, toast, usePoll } from "../ui.js";
import { JOB_ENDED, JobProgress, iso } from "./play_util.js";

const STATUSES = ["validating", "in_progress", "finalizing", "completed", "cancelling", "cancelled", "failed"];

export function JobsPage({ params }) {
  return params.id ? html`<${JobDetail} id=${params.id} />` : html`<${JobList} />`;
}

function endpointLink(job) {
  if (!job.endpoint) return html`<span class="muted">—</span>`;
  const query = job.project && job.project !== "default" ? { project: job.project } : undefined;
  return html`<a href=${href(`/endpoints/${encodeURIComponent(job.endpoint)}/async`, query)} onClick=${(e) => e.stopPropagation()}>${job.endpoint}</a>`;
}

// Upload a JSONL file (POST /files, with progress), then POST /jobs; opens the new job.
function NewJob({ project, onClose }) {
  const [endpoint, setEndpoint] = useState("");
  const [file, setFile] = useState(null);
  const [path, setPath] = useState("/");
  const [concurrency, setConcurrency] = useState("8");
  const [progress, setProgress] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const { data: endpoints } = usePoll(() => get("endpoints", { project }), 0, [project]);
  const submit = async (e) => {
    e.preventDefault();
    if (!file) return;
    setBusy(true);
    setError(null);
    try {
      const form = new FormData();
      form.append("file", file);
      form.append("purpose", "batch");
      const q = `?project=${encodeURIComponent(project)}`;
      setProgress(0);
      const stored = await upload("POST", `files${q}`, form, setProgress);
      const n = Number(concurrency);
      const job = await post("jobs", { endpoint, input_file: stored.id, path, concurrency: Number.isInteger(n) && String(concurrency).trim() ? n : concurrency }, { query: { project } });
      toast(`Job ${job.id} created`);
      navigate(`/jobs/${job.id}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card play-form" onSubmit=${submit} data-testid="new-job">
    <h3>New batch job <span class="muted">in project ${project}</span></h3>
    <div class="play-fields">
      <${Field} label="Endpoint" name="endpoint" error=${error}>
        <input name="endpoint" list="play-job-endpoints" value=${endpoint} onInput=${(e) => setEndpoint(e.target.value)} required />
        <datalist id="play-job-endpoints">${((endpoints && endpoints.items) || []).map((x) => html`<option value=${x.name} />`)}</datalist>
      <//>
      <${Field} label="Path" name="path" error=${error} hint="replica path of each line">
        <input name="path" value=${path} onInput=${(e) => setPath(e.target.value)} />
      <//>
      <${Field} label="Concurrency" name="concurrency" error=${error} hint="lines at once">
        <input name="concurrency" type="number" min="1" value=${concurrency} onInput=${(e) => setConcurrency(e.target.value)} />
      <//>
    </div>
    <${Field} label="Input file (JSONL)" name="file" error=${error} hint="one JSON request body a line">
      <input type="file" name="file" accept=".jsonl,.json,.txt,application/jsonl" onChange=${(e) => setFile(e.target.files[0] || null)} required />
    <//>
    ${progress !== null && busy ? html`<div class="progress" role="progressbar" aria-label="Upload"><div style=${{ width: `${Math.round(progress * 100)}%` }}></div></div>` : null}
    ${error && !(error.forField && ["endpoint", "path", "concurrency", "file"].some((f) => error.forField(f))) ? html`<${ErrorBox} error=${error} />` : null}
    <div class="row">
      <button class="btn primary" type="submit" disabled=${busy || !file}>${busy ? "Starting…" : "Start job"}</button>
      <button class="btn" type="button" onClick=${onClose}>Cancel</button>
    </div>
  </form>`;
}

function JobList() {
  const { project, whoami } = useSession();
  const [creating, setCreating] = useState(false);
  const [status, setStatus] = useState("");
  const [search, setSearch] = useState("");
  const { data, error } = usePoll(() => get("jobs", { project: project || undefined, limit: 500 }), 3000, [project]);
  const rows = ((data && data.items) || []).filter(
    (j) => (!status || j.status === status) && (!search || (j.endpoint || "").includes(search) || j.id.includes(search))
  );
  const columns = [
    { key: "id", label: "Job", render: (j) => html`<a href=${href(`/jobs/${j.id}`)}><code>${j.id}</code></a>` },
    { key: "status", label: "Status", render: (j) => html`<${StatusBadge} status=${j.status} title=${j.error || j.status} />` },
    { key: "endpoint", label: "Endpoint", render: endpointLink },
    { key: "project", label: "Project" },
    { key: "progress", label: "Progress", value: (j) => (j.lines_total ? j.lines_done / j.lines_total : 0), render: (j) => html`<${JobProgress} job=${j} />` },
    { key: "rate_per_s", label: "Lines/s", align: "right", render: (j) => fmt.num(j.rate_per_s, 1) },
    { key: "eta_s", label: "ETA", align: "right", render: (j) => (j.eta_s === null ? "—" : fmt.duration(j.eta_s)) },
    { key: "created_at", label: "Created", render: (j) => html`<span title=${fmt.time(iso(j.created_at))}>${fmt.ago(iso(j.created_at))}</span>` },
  ];
  return html`<div class="page">
    <${PageHeader} title="Batch jobs" subtitle="Every line of a JSONL file through an endpoint; each line is an async task.">
      ${can(whoami, "invoke", project || "default") && !creating ? html`<button class="btn primary" onClick=${() => setCreating(true)}>New batch job</button>` : null}
    <//>
    ${creating ? html`<${NewJob} project=${project || "default"} onClose=${() => setCreating(false)} />` : null}
    <div class="toolbar">
      <input type="search" aria-label="Search jobs" placeholder="Endpoint or job id" value=${search} onInput=${(e) => setSearch(e.target.value)} />
      <label class="play-inline">Status
        <select aria-label="Job status" value=${status} onChange=${(e) => setStatus(e.target.value)}>
          <option value="">all</option>
          ${STATUSES.map((s) => html`<option value=${s}>${s.replaceAll("_", " ")}</option>`)}
        </select>
      </label>
      ${data ? html`<span class="muted">${rows.length} of ${data.items.length}</span>` : html`<${Spinner} />`}
    </div>
    <${ErrorBox} error=${error} />
    <${Table}
      testid="jobs"
      columns=${columns}
      rows=${rows}
      onRowClick=${(j) => navigate(`/jobs/${j.id}`)}
      empty=${data
        ? data.items.length
          ? "No job matches these filters."
          : html`No batch jobs yet. Start one with <code>podium jobs create ENDPOINT --input lines.jsonl</code> (or <code>POST /api/v1/jobs</code> after uploading the file to <code>/api/v1/files</code>).`
        : "Loading…"}
    />
  </div>`;
}

function FileLink({ id, label }) {
  if (!id) return html`<span class="muted">—</span>`;
  return html`<a href=${`${API}/files/${encodeURIComponent(id)}/content`} download=${`${id}.jsonl`} data-testid=${`file-${label}`}>${label}</a> <code class="muted">${id}</code>`;
}

function JobDetail({ id }) {
  const { whoami } = useSession();
  // Polled every 2 s until the job has ended (completed, failed and cancelled never
  // change again): `ended` in the deps restarts the poll once, with no interval.
  const [over, setOver] = useState(false);
  const { data: polled, error, reload } = usePoll(() => get(`jobs/${encodeURIComponent(id)}`), over ? 0 : 2000, [id, over]);
  const kept = useRef(null);
  if (polled && polled.id === id) kept.current = polled;
  const job = polled || (kept.current && kept.current.id === id ? kept.current : null);
  useEffect(() => setOver(Boolean(job && JOB_ENDED.has(job.status))), [job && job.status]);
  const [busy, setBusy] = useState(false);
  if (!job && error) return html`<div class="page"><p><a href="#/jobs">← Jobs</a></p><${ErrorBox} error=${error} /></div>`;
  if (!job) return html`<div class="page"><${Spinner} /></div>`;
  const ended = JOB_ENDED.has(job.status) || job.status === "cancelling";
  const cancel = async () => {
    const ok = await confirm({
      title: `Cancel job ${job.id}?`,
      message: `${job.lines_pending} line${job.lines_pending === 1 ? "" : "s"} not done yet will not run; lines done keep their results.`,
      confirmLabel: "Cancel job",
      danger: true,
    });
    if (!ok) return;
    setBusy(true);
    try {
      await post(`jobs/${encodeURIComponent(job.id)}/cancel`);
      toast(`Cancelling ${job.id}`);
    } catch (err) {
      toast(`Could not cancel ${job.id}: ${err.message}`, "bad");
    } finally {
      setBusy(false);
      reload();
    }
  };
  const stat = (label, value, testid) => html`<div class="stat"><div class="label">${label}</div><div class="value" data-testid=${testid}>${value}</div></div>`;
  return html`<div class="page" data-testid="job">
    <p><a href="#/jobs">← Jobs</a></p>
    <${PageHeader} title=${html`<code>${job.id}</code> <${StatusBadge} status=${job.status} title=${job.error || job.status} />`} subtitle=${html`endpoint ${endpointLink(job)} · project ${job.project} · <code>${job.path}</code> · concurrency ${job.concurrency}`}>
      ${!ended && can(whoami, "invoke", job.project) ? html`<button class="btn danger" onClick=${cancel} disabled=${busy}>Cancel job</button>` : null}
    <//>
    ${error ? html`<${ErrorBox} error=${error} />` : null}
    ${job.error ? html`<div class="error-box" role="alert" data-testid="job-error"><strong>Job failed</strong> ${job.error}</div>` : null}
    <div class="card"><${JobProgress} job=${job} /></div>
    <div class="play-counts">
      ${stat("Lines", fmt.num(job.lines_total), "lines-total")}
      ${stat("Done", fmt.num(job.lines_done), "lines-done")}
      ${stat("Succeeded", fmt.num(job.lines_succeeded), "lines-succeeded")}
      ${stat("Failed", fmt.num(job.lines_failed), "lines-failed")}
      ${stat("Pending", fmt.num(job.lines_pending), "lines-pending")}
      ${stat("Rate", job.rate_per_s === null ? "—" : `${fmt.num(job.rate_per_s, 1)}/s`)}
      ${stat("ETA", job.eta_s === null ? "—" : fmt.duration(job.eta_s))}
    </div>
    <div class="card">
      <dl class="props">
        <dt>Created</dt><dd>${fmt.time(iso(job.created_at))}</dd>
        <dt>Started</dt><dd>${fmt.time(iso(job.started_at))}</dd>
        <dt>Finished</dt><dd>${fmt.time(iso(job.finished_at))}</dd>
        <dt>Took</dt><dd>${job.started_at ? fmt.duration((job.finished_at || Date.now() / 1000) - job.started_at) : "—"}</dd>
        <dt>Input</dt><dd><${FileLink} id=${job.input_file} label="input" /></dd>
        <dt>Output</dt><dd>${job.output_file ? html`<${FileLink} id=${job.output_file} label="output" />` : html`<span class="muted">written when the job ends</span>`}</dd>
        <dt>Errors</dt><dd>${job.error_file ? html`<${FileLink} id=${job.error_file} label="errors" />` : html`<span class="muted">none</span>`}</dd>
      </dl>
      <p class="muted">The output has one JSON line per input line, in input order: <code>{"line", "status", "status_code", "result", "error"}</code>.</p>
    </div>
  </div>`;
}
