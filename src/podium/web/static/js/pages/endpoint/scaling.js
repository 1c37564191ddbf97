// The scaling tab: edit the endpoint's `scaling` block in place (replica bounds, target
// concurrency, scale-to-zero idle time, scaling rules). Saving sends the whole block with
// PATCH /endpoints/{name} {scaling}: the scaling block never makes a new revision, it
// applies to the running replicas. The API's validation errors appear next to the field
// they name; the form needs scope `deploy` (read-only otherwise).
import { html, useState } from "../../../vendor/preact-htm.js";
import { ApiError, patch } from "../../api.js";
import { can, useSession } from "../../session.js";
import { ErrorBox, Field, fmt, toast } from "../../ui.js";

const METRICS = [
  ["cpu", "CPU (%)"],
  ["memory", "Memory (%)"],
  ["p95_latency_ms", "p95 latency (ms)"],
  ["queue_depth", "Queue depth (requests)"],
  ["custom", "Custom gauge"],
];

// The form's text fields, from a scaling block.
function toForm(scaling) {
  const text = (v) => (v === null || v === undefined ? "" : String(v));
  return {
    min_replicas: text(scaling.min_replicas),
    max_replicas: text(scaling.max_replicas),
    target_concurrency: text(scaling.target_concurrency),
    target_rps: text(scaling.target_rps),
    scale_to_zero_after: text(scaling.scale_to_zero_after),
    scale_down_delay: text(scaling.scale_down_delay),
    rules: (scaling.rules || []).map((r) => ({
      metric: r.metric,
      target: text(r.target),
      gauge: text(r.gauge),
      window: text(r.window),
      watch_period: text(r.watch_period),
    })),
  };
}

// A text field as the API takes it: a number when it reads as one, else the text itself
// (the API names what is wrong with it); "" is null.
function value(text) {
  const t = String(text).trim();
  if (t === "") return null;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

const FIELDS = ["min_replicas", "max_replicas", "target_concurrency", "target_rps", "scale_to_zero_after", "scale_down_delay"];

function toRule(r) {
  const rule = { metric: r.metric, target: value(r.target) };
  for (const key of ["window", "watch_period"]) if (String(r[key]).trim() !== "") rule[key] = value(r[key]);
  // `gauge` belongs to custom rules only (the API refuses it on others); its input is
  // disabled for the other metrics, so a gauge typed before the metric changed is not sent.
  if (r.metric === "custom" && String(r.gauge).trim() !== "") rule.gauge = String(r.gauge).trim();
  return rule;
}

// The scaling block to send: the current (live) block with the fields the user changed
// since the form was loaded from `opened`; a field changed elsewhere meanwhile (CLI,
// Settings tab) and not touched here keeps its new value.
export function toScaling(current, form, opened) {
  const start = toForm(opened || current);
  const out = { ...current };
  for (const key of FIELDS) if (form[key] !== start[key]) out[key] = value(form[key]);
  if (JSON.stringify(form.rules) !== JSON.stringify(start.rules)) out.rules = form.rules.map(toRule);
  return out;
}

// The bounds check of the scaling block names the whole block ("scaling"); its message
// is about max_replicas, so it is shown there.
function placed(error) {
  if (!(error instanceof ApiError)) return error;
  error.errors = error.errors.map((e) =>
    e.field === "scaling" && /min_replicas .* max_replicas/.test(e.message) ? { ...e, field: "scaling.max_replicas" } : e
  );
  return error;
}

export function ScalingTab({ endpoint, reload }) {
  const { whoami } = useSession();
  const scaling = endpoint.spec.scaling;
  const [opened, setOpened] = useState(scaling); // the block the form was loaded from
  const [form, setForm] = useState(() => toForm(scaling));
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const allowed = can(whoami, "deploy", endpoint.project);
  const stale = JSON.stringify(scaling) !== JSON.stringify(opened);
  const load = () => {
    setOpened(scaling);
    setForm(toForm(scaling));
    setError(null);
  };

  const set = (key) => (e) => setForm({ ...form, [key]: e.target.value });
  const setRule = (i, key) => (e) => setForm({ ...form, rules: form.rules.map((r, j) => (j === i ? { ...r, [key]: e.target.value } : r)) });
  const addRule = () => setForm({ ...form, rules: [...form.rules, { metric: "cpu", target: "70", gauge: "", window: "", watch_period: "" }] });
  const removeRule = (i) => setForm({ ...form, rules: form.rules.filter((_, j) => j !== i) });

  const save = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await patch(`endpoints/${encodeURIComponent(endpoint.name)}`, { scaling: toScaling(scaling, form, opened) }, { query: { project: endpoint.project } });
      setOpened(out.spec.scaling);
      setForm(toForm(out.spec.scaling));
      toast(`Saved the scaling of ${endpoint.name}: ${out.spec.scaling.min_replicas}–${out.spec.scaling.max_replicas} replicas`);
      reload();
    } catch (err) {
      setError(placed(err));
    } finally {
      setBusy(false);
    }
  };

  const shownFields = new Set(["scaling.min_replicas", "scaling.max_replicas", "scaling.target_concurrency", "scaling.target_rps", "scaling.scale_to_zero_after", "scaling.scale_down_delay"]);
  const unplaced =
    error instanceof ApiError
      ? error.errors.filter((x) => !x.field || !(shownFields.has(x.field) || /^scaling\.rules\.\d+/.test(x.field)))
      : [];
  const ruleError = (i) => (error instanceof ApiError ? (error.errors.find((x) => x.field === `scaling.rules.${i}`) || {}).message : null);

  const summary = html`<div class="stats">
    <div class="stat"><div class="label">Replicas ready / desired</div><div class="value">${endpoint.ready_replicas} / ${endpoint.desired_replicas}</div></div>
    <div class="stat"><div class="label">Bounds</div><div class="value">${scaling.min_replicas}–${scaling.max_replicas}</div></div>
    <div class="stat"><div class="label">Target concurrency</div><div class="value">${fmt.num(scaling.target_concurrency, 2)}</div></div>
    <div class="stat"><div class="label">Scale to zero after</div><div class="value">${scaling.min_replicas === 0 ? fmt.duration(scaling.scale_to_zero_after) : "never (min ≥ 1)"}</div></div>
  </div>`;

  if (!allowed) {
    return html`<div>${summary}<p class="muted">Changing the scaling needs a token with scope <code>deploy</code> on project <code>${endpoint.project}</code>.</p>
      ${scaling.rules.length ? html`<h3>Rules</h3><ul>${scaling.rules.map((r) => html`<li>${r.metric}${r.gauge ? ` (${r.gauge})` : ""} → ${r.target}</li>`)}</ul>` : null}</div>`;
  }

  return html`<form class="play-form" onSubmit=${save} data-testid="scaling-form">
    ${summary}
    <p class="muted">Changes here apply in place to the running replicas: no new revision, no restart.</p>
    ${stale
      ? html`<div class="notice" data-testid="scaling-stale">The scaling changed since you opened it. Save keeps those changes for the fields you did not edit here. <button type="button" class="btn small" onClick=${load}>Load the current scaling</button></div>`
      : null}
    <div class="play-fields">
      <${Field} label="Min replicas" name="scaling.min_replicas" error=${error} hint="0 allows scale to zero">
        <input type="number" min="0" max="64" name="min_replicas" value=${form.min_replicas} onInput=${set("min_replicas")} />
      <//>
      <${Field} label="Max replicas" name="scaling.max_replicas" error=${error}>
        <input type="number" min="1" max="64" name="max_replicas" value=${form.max_replicas} onInput=${set("max_replicas")} />
      <//>
      <${Field} label="Target concurrency" name="scaling.target_concurrency" error=${error} hint="in-flight requests per replica">
        <input type="number" step="any" name="target_concurrency" value=${form.target_concurrency} onInput=${set("target_concurrency")} />
      <//>
      <${Field} label="Target requests/s" name="scaling.target_rps" error=${error} hint="per replica; empty: none">
        <input type="number" step="any" name="target_rps" value=${form.target_rps} onInput=${set("target_rps")} />
      <//>
      <${Field} label="Scale to zero after" name="scaling.scale_to_zero_after" error=${error} hint="idle seconds, or 30s, 5m, 1h">
        <input name="scale_to_zero_after" value=${form.scale_to_zero_after} onInput=${set("scale_to_zero_after")} />
      <//>
      <${Field} label="Scale down delay" name="scaling.scale_down_delay" error=${error} hint="seconds load stays low first">
        <input name="scale_down_delay" value=${form.scale_down_delay} onInput=${set("scale_down_delay")} />
      <//>
    </div>
    <h3>Scaling rules</h3>
    <p class="muted">Each rule keeps its metric near its target, averaged over the replicas; the largest count any rule or the concurrency target asks for wins.</p>
    ${form.rules.length === 0 ? html`<p class="muted">No rules: the concurrency target alone decides.</p>` : null}
    ${form.rules.map(
      (r, i) => html`<div class="play-rule" key=${i} data-testid="scaling-rule">
        <${Field} label="Metric" name=${`scaling.rules.${i}.metric`} error=${error}>
          <select name=${`rule-${i}-metric`} value=${r.metric} onChange=${setRule(i, "metric")}>
            ${METRICS.map(([v, label]) => html`<option value=${v}>${label}</option>`)}
          </select>
        <//>
        <${Field} label="Target" name=${`scaling.rules.${i}.target`} error=${error}>
          <input type="number" step="any" name=${`rule-${i}-target`} value=${r.target} onInput=${setRule(i, "target")} />
        <//>
        <${Field} label="Gauge" name=${`scaling.rules.${i}.gauge`} error=${error}>
          <input name=${`rule-${i}-gauge`} value=${r.gauge} disabled=${r.metric !== "custom"} placeholder=${r.metric === "custom" ? "gauge name" : "custom only"} onInput=${setRule(i, "gauge")} />
        <//>
        <${Field} label="Window" name=${`scaling.rules.${i}.window`} error=${error}>
          <input name=${`rule-${i}-window`} value=${r.window} placeholder="stable window" onInput=${setRule(i, "window")} />
        <//>
        <${Field} label="Watch period" name=${`scaling.rules.${i}.watch_period`} error=${error}>
          <input name=${`rule-${i}-watch`} value=${r.watch_period} placeholder="1s" onInput=${setRule(i, "watch_period")} />
        <//>
        <button type="button" class="btn small danger" onClick=${() => removeRule(i)}>Remove rule</button>
        ${ruleError(i) ? html`<span class="field-error" role="alert">${ruleError(i)}</span>` : null}
      </div>`
    )}
    <div class="play-actions">
      <button type="button" class="btn" onClick=${addRule}>Add rule</button>
    </div>
    ${unplaced.length ? html`<${ErrorBox} error=${error} />` : error && !(error instanceof ApiError) ? html`<${ErrorBox} error=${error} />` : null}
    <div class="play-actions">
      <button type="submit" class="btn primary" disabled=${busy}>${busy ? "Saving…" : "Save scaling"}</button>
      <button type="button" class="btn" onClick=${load}>Reset</button>
    </div>
  </form>`;
}
