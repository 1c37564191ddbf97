// The settings tab: the endpoint's whole spec as a JSON editor. A JSON editor rather than
// a form: the spec has some twenty blocks (probes, env, capture, tasks, rate limits,
// engine arguments…) that change as Podium grows; a JSON document covers every one of
// them as the API defines it, the API validates it and names the field of each error,
// and it reads like the YAML of `podium deploy -f`.
//
// "Review changes" shows the diff (old → new per field) and whether it makes a new
// revision (a field of core/spec.py REVISION_FIELDS: new replicas, rolling update) or
// applies in place; "Apply" sends the changed top-level fields with PATCH
// /endpoints/{name}, then follows the rollout: revision, replicas per revision, status
// until running.
import { html, useState } from "../../../vendor/preact-htm.js";
import { ApiError, patch } from "../../api.js";
import { can, useSession } from "../../session.js";
import { ErrorBox, Spinner, StatusBadge, fmt, toast } from "../../ui.js";
import { diff, parseJson, show } from "../play_util.js";

// core/spec.py REVISION_FIELDS: a change of one of these needs new replica processes.
export const REVISION_FIELDS = new Set([
  "model_source",
  "env_from_secrets",
  "model",
  "framework",
  "task",
  "instance_type",
  "env",
  "trust_pickle",
  "max_concurrency",
  "max_queue",
  "batching",
  "command",
  "container",
  "engine_args",
  "resources",
]);
const FIXED = ["name", "project"]; // not part of an update

// core/spec.py EndpointSpec's defaults (a test keeps them equal): a field removed from the
// editor goes back to its default, sent as that value (PATCH /endpoints/{name} replaces each
// field it is given; a field it is not given keeps its value, so leaving a field out of the
// body would not reset it, and `null` is refused for the fields that are not optional).
// `model` and `framework` have none: they cannot be removed.
export const DEFAULTS = {
  task: null,
  instance_type: "cpu-small",
  resources: null,
  scaling: { min_replicas: 1, max_replicas: 1, target_concurrency: 4.0, target_rps: null, stable_window: 30.0, panic_window: 3.0, scale_up_delay: 0.0, scale_down_delay: 30.0, stability_period: 10.0, scale_to_zero_after: 300.0, max_queued_requests: 1000, wait_timeout: 60.0, rules: [] },
  max_concurrency: 8,
  max_queue: 64,
  timeout_s: 60.0,
  env: {},
  env_from_secrets: {},
  model_source: null,
  visibility: "protected",
  rate_limit: null,
  observability: null,
  tasks: { max_attempts: 3, lease_s: null, result_ttl_s: 86400.0, max_pending: 100000 },
  labels: {},
  readiness: { enabled: true, kind: "http", path: "/health/ready", port: null, command: null, initial_delay_s: 0.0, period_s: 1.0, timeout_s: 1.0, failure_threshold: 3, success_threshold: 1 },
  liveness: { enabled: true, kind: "http", path: "/health/live", port: null, command: null, initial_delay_s: 0.0, period_s: 5.0, timeout_s: 2.0, failure_threshold: 3, success_threshold: 1 },
  trust_pickle: false,
  batching: null,
  command: null,
  engine_args: {},
  container: null,
};

function editable(spec) {
  const out = { ...spec };
  for (const k of FIXED) delete out[k];
  return out;
}

// What saving `edited` over `base` would change: {changes, top, revision, edited, reset,
// missing}. A top-level field removed from the editor is replaced by its default
// (`reset` names those); `missing` names removed fields that have none.
export function plan(base, edited) {
  const effective = { ...edited };
  const reset = [];
  const missing = [];
  for (const f of Object.keys(base)) {
    if (f in edited) continue;
    if (f in DEFAULTS) {
      effective[f] = DEFAULTS[f];
      reset.push(f);
    } else missing.push(f);
  }
  const changes = diff(base, effective).map((c) => ({ ...c, reset: reset.includes(c.path.split(".")[0]) }));
  const top = [...new Set(changes.map((c) => c.path.split(".")[0]))];
  const revision = top.filter((f) => REVISION_FIELDS.has(f));
  return { changes, top, revision, edited: effective, reset: reset.filter((f) => top.includes(f)), missing };
}

export function SettingsTab({ endpoint, reload }) {
  const { whoami } = useSession();
  const [base, setBase] = useState(() => editable(endpoint.spec));
  const [text, setText] = useState(() => JSON.stringify(editable(endpoint.spec), null, 2));
  const [review, setReview] = useState(null); // plan() of the edited spec
  const [invalid, setInvalid] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const [rollout, setRollout] = useState(null); // {from, to, newRevision, fields}
  const allowed = can(whoami, "deploy", endpoint.project);
  const live = editable(endpoint.spec);
  const stale = JSON.stringify(live) !== JSON.stringify(base);

  const reset = () => {
    setBase(live);
    setText(JSON.stringify(live, null, 2));
    setReview(null);
    setError(null);
    setInvalid(null);
  };

  const check = (e) => {
    e.preventDefault();
    const parsed = parseJson(text);
    if (parsed.error) {
      setInvalid(`Not valid JSON: ${parsed.error}`);
      setReview(null);
      return;
    }
    if (!parsed.value || typeof parsed.value !== "object" || Array.isArray(parsed.value)) {
      setInvalid("The spec is a JSON object: {\"model\": …, \"scaling\": {…}, …}");
      return;
    }
    const next = plan(base, parsed.value);
    if (next.missing.length) {
      setInvalid(`${next.missing.join(", ")} cannot be removed (it has no default)`);
      setReview(null);
      return;
    }
    setInvalid(null);
    setError(null);
    setReview(next);
  };

  const apply = async () => {
    const body = {};
    // Only the fields that changed: one the user did not touch is not sent, so a change
    // made elsewhere meanwhile is not overwritten.
    for (const f of review.top) body[f] = review.edited[f];
    setBusy(true);
    setError(null);
    const from = endpoint.revision;
    try {
      const out = await patch(`endpoints/${encodeURIComponent(endpoint.name)}`, body, { query: { project: endpoint.project } });
      const newRevision = out.revision !== from;
      setRollout({ from, to: out.revision, newRevision, fields: review.top });
      toast(newRevision ? `Revision ${out.revision} of ${endpoint.name} is rolling out` : `Applied in place to ${endpoint.name}`);
      setBase(editable(out.spec));
      setText(JSON.stringify(editable(out.spec), null, 2));
      setReview(null);
      reload();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (!allowed) {
    return html`<div>
      <p class="muted">Editing the spec needs a token with scope <code>deploy</code> on project <code>${endpoint.project}</code>.</p>
      <pre class="play-pre" data-testid="spec">${JSON.stringify(endpoint.spec, null, 2)}</pre>
    </div>`;
  }

  return html`<div class="play-grid">
    <form class="stack" onSubmit=${check}>
      <label class=${`field${invalid ? " invalid" : ""}`}>
        <span class="field-label">Spec (JSON)</span>
        <textarea name="spec" class="play-editor play-spec" spellcheck="false" value=${text} onInput=${(e) => { setText(e.target.value); setReview(null); }}></textarea>
        ${invalid ? html`<span class="field-error" role="alert">${invalid}</span>` : html`<span class="field-hint">Every field of the endpoint's spec but its name and project. A field removed goes back to its default (shown in the review).</span>`}
      </label>
      ${stale ? html`<div class="notice">The spec changed since you opened it (revision ${endpoint.revision}). <button type="button" class="btn small" onClick=${reset}>Load the current spec</button></div>` : null}
      <div class="row">
        <button class="btn primary" type="submit">Review changes</button>
        <button class="btn" type="button" onClick=${reset}>Reset</button>
      </div>
    </form>
    <div class="stack">
      ${review ? html`<${Review} review=${review} endpoint=${endpoint} busy=${busy} onApply=${apply} onCancel=${() => setReview(null)} />` : html`<p class="muted">Edit the spec, then review the changes before applying them.</p>`}
      ${error ? html`<${ErrorBox} error=${error} />` : null}
      ${error instanceof ApiError && error.errors.length > 1 ? html`<ul class="play-errors">${error.errors.map((x) => html`<li><code>${x.field}</code>: ${x.message}</li>`)}</ul>` : null}
      ${rollout ? html`<${Rollout} rollout=${rollout} endpoint=${endpoint} />` : null}
    </div>
  </div>`;
}

function Review({ review, endpoint, busy, onApply, onCancel }) {
  if (review.changes.length === 0) return html`<div class="card" data-testid="diff"><p>No changes.</p></div>`;
  const makesRevision = review.revision.length > 0;
  return html`<div class="card" data-testid="diff">
    <h3>Changes</h3>
    <table class="play-diff">
      <thead><tr><th>Field</th><th>Old</th><th>New</th><th>Effect</th></tr></thead>
      <tbody>
        ${review.changes.map(
          (c) => html`<tr data-field=${c.path}>
            <td>${c.path}</td>
            <td class="play-old">${show(c.old)}</td>
            <td class="play-new">${show(c.new)}${c.reset ? html` <span class="muted">(default)</span>` : null}</td>
            <td>${REVISION_FIELDS.has(c.path.split(".")[0]) ? html`<span class="badge tone-wait">new revision</span>` : html`<span class="badge tone-idle">in place</span>`}</td>
          </tr>`
        )}
      </tbody>
    </table>
    <p class="play-rev" data-testid="revision-note">
      ${makesRevision
        ? `Makes a new revision (${endpoint.revision} → ${endpoint.revision + 1}): ${review.revision.join(", ")} need${review.revision.length === 1 ? "s" : ""} new replicas, replaced by a rolling update.`
        : `Applies in place to revision ${endpoint.revision}: no new replicas.`}
      ${review.revision.includes("model") && review.revision.length === 1 ? " (A model that resolves to the same version makes none.)" : ""}
      ${review.top.includes("resources") && !review.top.includes("instance_type") && review.edited.resources
        ? ` Setting resources also resets instance_type to ${DEFAULTS.instance_type}.`
        : ""}
      ${review.top.includes("instance_type") && !review.top.includes("resources") ? " Setting instance_type also clears resources." : ""}
    </p>
    ${review.reset.length ? html`<p class="muted" data-testid="reset-note">Removed, back to the default: ${review.reset.join(", ")}.</p>` : null}
    <div class="row">
      <button class="btn primary" type="button" onClick=${onApply} disabled=${busy}>${busy ? "Applying…" : makesRevision ? "Apply and roll out" : "Apply"}</button>
      <button class="btn" type="button" onClick=${onCancel}>Back to editing</button>
    </div>
  </div>`;
}

// Follows the rollout of a change with the endpoint polled by the page.
function Rollout({ rollout, endpoint }) {
  const byRevision = {};
  for (const r of endpoint.replicas || []) (byRevision[r.revision] = byRevision[r.revision] || []).push(r);
  const revisions = Object.keys(byRevision).map(Number).sort((a, b) => b - a);
  const oldLeft = revisions
    .filter((n) => n < rollout.to)
    .reduce((n, rev) => n + byRevision[rev].filter((r) => r.state !== "exited").length, 0);
  const newReady = (byRevision[rollout.to] || []).filter((r) => r.state === "ready").length;
  const done = endpoint.status === "running" && endpoint.revision >= rollout.to && oldLeft === 0;
  return html`<div class="card play-rollout" data-testid="rollout">
    <h3>${rollout.newRevision ? `Rollout of revision ${rollout.to}` : "Applied in place"}</h3>
    <div class="row">
      <span>Revision <strong data-testid="rollout-revision">${endpoint.revision}</strong>${rollout.newRevision ? html` <span class="muted">(was ${rollout.from})</span>` : null}</span>
      <${StatusBadge} status=${endpoint.status} title=${endpoint.status_reason} />
      ${done ? html`<span data-testid="rollout-done">Rollout complete</span>` : rollout.newRevision ? html`<${Spinner} label="Rolling out" />` : null}
    </div>
    ${endpoint.status_reason ? html`<p class="muted">${endpoint.status_reason}</p>` : null}
    ${rollout.newRevision
      ? html`<p>New revision: ${newReady} ready of ${endpoint.desired_replicas} wanted; old revisions: ${oldLeft} replica${oldLeft === 1 ? "" : "s"} left.</p>`
      : null}
    <ul>
      ${revisions.map(
        (rev) => html`<li>revision ${rev}: ${byRevision[rev].map((r) => html`<span key=${r.replica_id}><code>${r.replica_id}</code> <${StatusBadge} status=${r.state} /> </span>`)}</li>`
      )}
    </ul>
    <p class="muted">Changed: ${rollout.fields.join(", ")} · ${fmt.ago(endpoint.updated_at)}</p>
  </div>`;
}
