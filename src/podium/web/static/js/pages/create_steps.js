// The create wizard's steps. Each gets {s (the wizard's state), set(patch), err (the last
// 422, its block-level errors put on sub-fields), framework (the chosen catalog entry),
// project, data ({frameworks, models, types, secrets}: each a usePoll result)}.
import { html, useState } from "../../vendor/preact-htm.js";
import { upload } from "../api.js";
import { ErrorBox, Field, Spinner, fmt, toast, useAction } from "../ui.js";
import { LLM_TASKS } from "./create_spec.js";

let rowSeq = 0;
const rowId = () => `r${++rowSeq}`;

function Loading({ poll, what }) {
  if (poll.error) return html`<${ErrorBox} error=${poll.error} />`;
  if (poll.data === undefined) return html`<div class="muted"><${Spinner} label=${`Loading ${what}`} /> Loading ${what}…</div>`;
  return null;
}

// Reads a list again on demand (the wizard reads models and secrets when their step is
// entered, not on a timer).
function Reload({ poll, what }) {
  return html`<button type="button" class="btn small" data-testid=${`reload-${what}`} disabled=${poll.loading} onClick=${() => poll.reload()}>Reload ${what}</button>`;
}

// ---------------------------------------------------------------- 1. framework

export function FrameworkStep({ s, set, err, data }) {
  const [q, setQ] = useState("");
  const poll = data.frameworks;
  const all = poll.data || [];
  const needle = q.trim().toLowerCase();
  const shown = needle
    ? all.filter((f) => [f.name, f.summary, f.kind, ...f.tasks, ...f.formats].some((t) => String(t).toLowerCase().includes(needle)))
    : all;
  return html`<div class="create-step" data-step="framework">
    <p class="muted">What serves the model. The list is this server's frameworks catalog; one that is not usable here says why.</p>
    <${Field} label="Framework" name="framework" error=${err}>
      <input type="search" aria-label="Search frameworks" placeholder="Search name, task or format (e.g. text-generation, onnx)" value=${q} onInput=${(e) => setQ(e.target.value)} />
    <//>
    <${Loading} poll=${poll} what="frameworks" />
    <div class="fw-list" role="radiogroup" aria-label="Frameworks">
      ${poll.data && shown.length === 0 ? html`<p class="muted">No framework matches “${q}”. Clear the search to see all ${all.length}.</p>` : null}
      ${shown.map(
        (f) => html`<label key=${f.name} class=${`fw-item${s.framework === f.name ? " selected" : ""}${f.usable ? "" : " unusable"}`} data-testid=${`framework-${f.name}`}>
          <input type="radio" name="framework" value=${f.name} checked=${s.framework === f.name} onChange=${() => set({ framework: f.name, task: "" })} />
          <span class="fw-body">
            <span class="fw-head"><strong>${f.name}</strong> <span class="fw-kind">${f.kind}</span>${f.gpu === "required" ? html` <span class="fw-kind">GPU</span>` : null}</span>
            <span class="fw-summary">${f.summary}</span>
            ${f.tasks.length ? html`<span class="fw-meta">tasks: ${f.tasks.join(", ")}</span>` : null}
            ${f.formats.length ? html`<span class="fw-meta">loads: ${f.formats.join(", ")}</span>` : null}
            ${f.usable ? null : html`<span class="fw-why">Not usable here: ${f.why_not || "not installed"}</span>`}
          </span>
        </label>`
      )}
    </div>
  </div>`;
}

// ---------------------------------------------------------------- 2. model

function UploadModel({ s, set, framework, project, models }) {
  const [file, setFile] = useState(null);
  const [progress, setProgress] = useState(null);
  const push = useAction(async () => {
    setProgress(0);
    const q = new URLSearchParams({ filename: file.name });
    if (framework) q.set("framework", framework.name);
    if (project && project !== "default") q.set("project", project);
    const v = await upload("POST", `models/${encodeURIComponent(s.upModel.trim())}/versions?${q}`, file, setProgress);
    setProgress(1);
    set({ upRef: v.ref });
    models.reload(); // the repository step lists the new version too
    toast(v.created ? `Pushed ${v.ref}` : `${v.ref} already holds these bytes`);
    return v;
  });
  return html`<div class="stack">
    <${Field} label="Model name" name="upload.name" hint="the repository model the file becomes a new version of (created if new)">
      <input name="upModel" value=${s.upModel} placeholder="my-model" onInput=${(e) => set({ upModel: e.target.value, upRef: "" })} />
    <//>
    <${Field} label="Model file or archive" name="upload.file" hint="one file, or a .zip / .tar / .tar.gz / .tgz of a folder">
      <input type="file" onChange=${(e) => {
        setFile(e.target.files[0] || null);
        set({ upRef: "" });
        setProgress(null);
      }} />
    <//>
    <div class="row">
      <button type="button" class="btn" disabled=${!file || !s.upModel.trim() || push.busy} onClick=${() => push.run()}>${push.busy ? "Uploading…" : "Upload"}</button>
      ${progress !== null ? html`<div class="progress create-progress" role="progressbar" aria-label="Upload progress" aria-valuenow=${Math.round(progress * 100)}><div style=${{ width: `${Math.round(progress * 100)}%` }}></div></div><span class="muted">${Math.round(progress * 100)}%</span>` : null}
    </div>
    <${ErrorBox} error=${push.error} />
    ${s.upRef ? html`<div class="notice" data-testid="uploaded">Uploaded: the endpoint will serve <code>${s.upRef}</code>.</div>` : null}
  </div>`;
}

export function ModelStep({ s, set, err, data, framework, project }) {
  const models = data.models.data || [];
  const chosen = models.find((m) => m.name === s.repoModel);
  const secrets = data.secrets.data || [];
  const source = (id, label) => html`<label class="radio"><input type="radio" name="modelSource" value=${id} checked=${s.modelSource === id} onChange=${() => set({ modelSource: id })} /> ${label}</label>`;
  return html`<div class="create-step" data-step="model">
    <div class="row create-sources" role="radiogroup" aria-label="Model source">
      ${source("repo", "From the repository")} ${source("hf", "From Hugging Face")} ${source("upload", "Upload")}
    </div>
    ${s.modelSource === "repo"
      ? html`<div class="stack">
          <${Loading} poll=${data.models} what="models" />
          <div class="row"><${Reload} poll=${data.models} what="models" /></div>
          ${data.models.data && models.length === 0 ? html`<p class="muted">No model in this project's repository yet: upload one here (Upload) or with <code>podium model push</code>.</p>` : null}
          <${Field} label="Model" name="model" error=${err}>
            <select name="repoModel" value=${s.repoModel} onChange=${(e) => set({ repoModel: e.target.value, repoVersion: "" })}>
              <option value="">Choose a model…</option>
              ${models.map((m) => html`<option value=${m.name}>${m.name} (latest v${m.latest}${m.project !== "default" ? `, ${m.project}` : ""})</option>`)}
            </select>
          <//>
          ${chosen
            ? html`<${Field} label="Version" name="model.version">
                <select name="repoVersion" value=${s.repoVersion} onChange=${(e) => set({ repoVersion: e.target.value })}>
                  <option value="">latest (follows new pushes: v${chosen.latest} now)</option>
                  ${[...chosen.versions].sort((a, b) => b.version - a.version).map(
                    (v) => html`<option value=${String(v.version)}>v${v.version} · ${v.framework || "?"} · ${fmt.bytes(v.size_bytes)} · ${fmt.time(v.created_at)}</option>`
                  )}
                </select>
              <//>`
            : null}
          ${chosen && framework && chosen.versions.some((v) => v.framework && v.framework !== framework.name)
            ? html`<div class="notice">Some versions of ${chosen.name} were pushed for another framework (${[...new Set(chosen.versions.map((v) => v.framework))].join(", ")}); you chose ${framework.name}.</div>`
            : null}
        </div>`
      : null}
    ${s.modelSource === "hf"
      ? html`<div class="stack">
          <${Field} label="Repository id" name="model" error=${err} hint="ORG/NAME on the Hugging Face Hub, e.g. sentence-transformers/all-MiniLM-L6-v2">
            <input name="hfRepo" value=${s.hfRepo} placeholder="ORG/NAME" onInput=${(e) => set({ hfRepo: e.target.value })} />
          <//>
          <${Field} label="Revision" name="model.revision" hint="a branch, tag or commit; empty: main">
            <input name="hfRevision" value=${s.hfRevision} placeholder="main" onInput=${(e) => set({ hfRevision: e.target.value })} />
          <//>
          <${Field} label="Token secret" name="model_source.token_secret" error=${err} hint="a stored secret holding a Hugging Face token, for gated or private models">
            <select name="hfSecret" value=${s.hfSecret} onChange=${(e) => set({ hfSecret: e.target.value })}>
              <option value="">none (public model)</option>
              ${secrets.map((x) => html`<option value=${x.name}>${x.name}</option>`)}
            </select>
          <//>
          <div class="row"><${Reload} poll=${data.secrets} what="secrets" /></div>
          ${data.secrets.error ? html`<${ErrorBox} error=${data.secrets.error} />` : null}
        </div>`
      : null}
    ${s.modelSource === "upload" ? html`<${UploadModel} s=${s} set=${set} framework=${framework} project=${project} models=${data.models} />` : null}
  </div>`;
}

// ---------------------------------------------------------------- 3. instance

export function InstanceStep({ s, set, err, data }) {
  const types = data.types.data || [];
  return html`<div class="create-step" data-step="instance">
    <div class="row create-sources" role="radiogroup" aria-label="Replica size">
      <label class="radio"><input type="radio" name="sizeMode" checked=${s.sizeMode === "type"} onChange=${() => set({ sizeMode: "type" })} /> Named instance type</label>
      <label class="radio"><input type="radio" name="sizeMode" checked=${s.sizeMode === "custom"} onChange=${() => set({ sizeMode: "custom" })} /> Custom resources</label>
    </div>
    <${Loading} poll=${data.types} what="instance types" />
    ${s.sizeMode === "type"
      ? html`<div class="field" data-field="instance_type">
          <div class="it-list" role="radiogroup" aria-label="Instance types">
            ${types.map(
              (t) => html`<label key=${t.name} class=${`it-item${s.instanceType === t.name ? " selected" : ""}`} data-testid=${`instance-${t.name}`}>
                <input type="radio" name="instanceType" value=${t.name} checked=${s.instanceType === t.name} onChange=${() => set({ instanceType: t.name })} />
                <strong>${t.name}</strong>
                <span>${fmt.num(t.cpus, 2)} CPU · ${fmt.bytes(t.memory_mb * 1024 * 1024)}${t.gpus ? ` · ${t.gpus} GPU` : ""}</span>
                <span class="it-price">${fmt.money(t.price_per_hour)}/h per replica</span>
              </label>`
            )}
          </div>
          ${err && err.forField && err.forField("instance_type") ? html`<span class="field-error" role="alert">${err.forField("instance_type")}</span>` : null}
        </div>`
      : html`<div class="stack">
          <div class="create-grid">
            <${Field} label="CPUs" name="resources.cpus" error=${err}>
              <input type="number" min="0.1" step="0.1" name="cpus" value=${s.cpus} onInput=${(e) => set({ cpus: e.target.value })} />
            <//>
            <${Field} label="Memory" name="resources.memory" error=${err} hint="MiB, or a size such as 512Mi, 4Gi">
              <input name="memory" value=${s.memory} onInput=${(e) => set({ memory: e.target.value })} />
            <//>
            <${Field} label="GPUs" name="resources.gpus" error=${err}>
              <input type="number" min="0" step="1" name="gpus" value=${s.gpus} onInput=${(e) => set({ gpus: e.target.value })} />
            <//>
            <${Field} label="GPU type" name="resources.gpu_type" error=${err} hint="optional, e.g. nvidia-a10g (needs GPUs ≥ 1)">
              <input name="gpuType" value=${s.gpuType} onInput=${(e) => set({ gpuType: e.target.value })} />
            <//>
          </div>
          <p class="muted" data-testid="custom-price">
            A custom size is priced per CPU, GiB and GPU hour as this server's operator set it
            (PODIUM_PRICE_PER_*_HOUR); the API does not publish those unit prices, so the price
            per hour shows on the endpoint's page once it is created. For comparison:
            ${types.map((t, i) => html`${i ? ", " : " "}${t.name} ${fmt.money(t.price_per_hour)}/h`)}.
          </p>
        </div>`}
  </div>`;
}

// ---------------------------------------------------------------- 4. runtime

function Rows({ rows, onChange, render, addLabel, make }) {
  const update = (id, patch) => onChange(rows.map((r) => (r.id === id ? { ...r, ...patch } : r)));
  return html`<div class="stack">
    ${rows.map(
      (r, i) => html`<div class="create-rowline" key=${r.id} data-row=${i}>
        ${render(r, (patch) => update(r.id, patch), i)}
        <button type="button" class="btn small" aria-label=${`Remove row ${i + 1}`} onClick=${() => onChange(rows.filter((x) => x.id !== r.id))}>Remove</button>
      </div>`
    )}
    <div><button type="button" class="btn small" onClick=${() => onChange([...rows, { id: rowId(), ...make() }])}>${addLabel}</button></div>
  </div>`;
}

const ENGINE_HINTS = {
  vllm: "e.g. max_model_len 4096, gpu_memory_utilization 0.9, dtype half, enforce_eager true",
  sglang: "e.g. context_length 4096, mem_fraction_static 0.8",
  tgi: "e.g. max_input_length 2048, max_total_tokens 4096, quantize bitsandbytes",
  "llama.cpp": "e.g. ctx_size 4096, -ngl 99 (a key starting with - is used as written)",
  triton: "e.g. log_verbose 1",
  torchserve: "flags after torchserve's base command",
};

// Framework `container`: the image and how Podium runs it (core/container_spec.py). The
// block's own error (no container engine on this server, or the Ray backend) shows at its
// top; each input's under it.
function ContainerSettings({ s, set, err, data }) {
  const secrets = data.secrets.data || [];
  const whole = err && err.forField ? err.forField("container") : null;
  return html`<h4>Container image</h4>
    <p class="muted">Any OCI image whose server answers HTTP: Podium runs one container per replica with this server's container engine (podman, or docker), gives the server its port in <code>PORT</code>, and mounts the model's files read-only. Environment variables (next steps) reach the container too.</p>
    ${whole ? html`<p class="field-error" role="alert" data-testid="container-error">${whole}</p>` : null}
    <${Field} label="Image" name="container.image" error=${err} hint="[REGISTRY/]NAME[:TAG][@sha256:DIGEST], e.g. ghcr.io/org/server:1.2">
      <input name="image" value=${s.image} placeholder="ghcr.io/org/server:1.2" onInput=${(e) => set({ image: e.target.value })} />
    <//>
    <div class="create-grid">
      <${Field} label="Container port" name="container.port" error=${err} hint="the port the server listens on inside; default 8080">
        <input type="number" min="1" max="65535" name="ctrPort" placeholder="8080" value=${s.ctrPort} onInput=${(e) => set({ ctrPort: e.target.value })} />
      <//>
      <${Field} label="Container health route" name="container.health_route" error=${err} hint="answers 200 when ready; default /health">
        <input name="ctrHealthRoute" placeholder="/health" value=${s.ctrHealthRoute} onInput=${(e) => set({ ctrHealthRoute: e.target.value })} />
      <//>
      <${Field} label="Pull policy" name="container.pull_policy" error=${err} hint="when the engine pulls the image before a replica starts">
        <select name="pullPolicy" value=${s.pullPolicy} onChange=${(e) => set({ pullPolicy: e.target.value })}>
          <option value="if_not_present">if not present (default)</option>
          <option value="always">always (a moving tag is refreshed)</option>
          <option value="never">never (the image must be on the node)</option>
        </select>
      <//>
      <${Field} label="Model mount" name="container.model_mount" error=${err} hint="where the model's files appear inside (read-only); default /repository">
        <input name="modelMount" placeholder="/repository" value=${s.modelMount} onInput=${(e) => set({ modelMount: e.target.value })} />
      <//>
    </div>
    <${Field} label="Registry secret" name="container.registry_secret" error=${err} hint="a stored secret holding the registry's credentials, for a private image">
      <select name="registrySecret" value=${s.registrySecret} onChange=${(e) => set({ registrySecret: e.target.value })}>
        <option value="">none (a public or local image)</option>
        ${secrets.map((x) => html`<option value=${x.name}>${x.name}</option>`)}
      </select>
    <//>
    <div class="row"><${Reload} poll=${data.secrets} what="secrets" /></div>
    ${data.secrets.error ? html`<${ErrorBox} error=${data.secrets.error} />` : null}`;
}

export function RuntimeStep({ s, set, err, framework, data }) {
  if (!framework) return html`<p class="muted">Choose a framework first.</p>`;
  const kind = framework.kind;
  const llm = framework.tasks.some((t) => LLM_TASKS.includes(t));
  return html`<div class="create-step" data-step="runtime">
    <h3>${framework.name} settings</h3>
    ${framework.tasks.length
      ? html`<${Field} label="Task" name="task" error=${err} hint="what the endpoint does with the model; default: the model's own">
          <select name="task" value=${s.task} onChange=${(e) => set({ task: e.target.value })}>
            <option value="">default (from the model)</option>
            ${framework.tasks.map((t) => html`<option value=${t}>${t}</option>`)}
          </select>
        <//>`
      : null}
    ${llm
      ? html`<div class="notice" data-testid="generation-note">
          Generation settings (max_new_tokens, temperature, top_p, stop…) are not part of an endpoint's spec:
          each request sets them (<code>parameters</code> in the Hugging Face API, the OpenAI API's own fields),
          for example from the Playground. ${kind === "preset" ? "A server's own defaults can be set with its engine arguments below." : ""}
        </div>`
      : null}
    ${kind === "preset"
      ? html`<h4>Engine arguments</h4>
          <p class="muted">Flags after ${framework.name}'s command: <code>max_model_len: 4096</code> becomes <code>--max-model-len 4096</code>; true is a bare flag, false none. ${ENGINE_HINTS[framework.name] || ""}</p>
          <${Rows}
            rows=${s.engineArgs}
            onChange=${(engineArgs) => set({ engineArgs })}
            addLabel="Add engine argument"
            make=${() => ({ key: "", value: "" })}
            render=${(r, up, i) => html`
              <${Field} label=${`Argument ${i + 1}`} name=${r.key.trim() ? `engine_args.${r.key.trim()}` : "engine_args"} error=${err}>
                <input aria-label=${`Argument ${i + 1} name`} placeholder="max_model_len" value=${r.key} onInput=${(e) => up({ key: e.target.value })} />
              <//>
              <${Field} label="Value" name=${`engine_args.${r.key.trim()}.value`}>
                <input aria-label=${`Argument ${i + 1} value`} placeholder="4096" value=${r.value} onInput=${(e) => up({ value: e.target.value })} />
              <//>`}
          />`
      : null}
    ${kind === "command"
      ? html`<h4>Your server</h4>
          <p class="muted"><code>{port}</code> and <code>{model_path}</code> are replaced; the process also gets PORT and PODIUM_MODEL_PATH.</p>
          <${Field} label="Command" name="command.command" error=${err}>
            <input name="command" value=${s.command} placeholder="python" onInput=${(e) => set({ command: e.target.value })} />
          <//>
          <${Field} label="Arguments (one per line)" name="command.args" error=${err}>
            <textarea name="args" value=${s.args} placeholder=${"serve.py\n--port\n{port}"} onInput=${(e) => set({ args: e.target.value })}></textarea>
          <//>
          <div class="create-grid">
            <${Field} label="Port" name="command.port" error=${err} hint="empty: Podium picks a free one">
              <input type="number" name="port" value=${s.port} onInput=${(e) => set({ port: e.target.value })} />
            <//>
            <${Field} label="Health route" name="command.health_route" error=${err} hint="default /health">
              <input name="healthRoute" value=${s.healthRoute} placeholder="/health" onInput=${(e) => set({ healthRoute: e.target.value })} />
            <//>
          </div>`
      : null}
    ${kind === "container" ? html`<${ContainerSettings} s=${s} set=${set} err=${err} data=${data} />` : null}
    ${kind === "builtin" || kind === "plugin"
      ? html`<label class="check"><input type="checkbox" checked=${s.batching} onChange=${(e) => set({ batching: e.target.checked })} /> Dynamic batching (group concurrent requests into one model call)</label>
          ${s.batching
            ? html`<div class="create-grid">
                <${Field} label="Max batch size" name="batching.max_batch_size" error=${err}>
                  <input type="number" min="1" name="maxBatchSize" value=${s.maxBatchSize} onInput=${(e) => set({ maxBatchSize: e.target.value })} />
                <//>
                <${Field} label="Max wait (ms)" name="batching.max_wait_ms" error=${err}>
                  <input type="number" min="0" name="maxWaitMs" value=${s.maxWaitMs} onInput=${(e) => set({ maxWaitMs: e.target.value })} />
                <//>
              </div>`
            : null}`
      : null}
    ${framework.name === "sklearn"
      ? html`<div class="field" data-field="trust_pickle">
          <label class="check"><input type="checkbox" checked=${s.trustPickle} onChange=${(e) => set({ trustPickle: e.target.checked })} /> Trust pickle</label>
          <span class="field-hint">.pkl/.joblib models run their own code when loaded: allow them only for models you trust (.skops needs nothing)</span>
          ${err && err.forField && err.forField("trust_pickle") ? html`<span class="field-error" role="alert">${err.forField("trust_pickle")}</span>` : null}
        </div>`
      : null}
    <h4>Requests</h4>
    <div class="create-grid">
      <${Field} label="Max concurrency" name="max_concurrency" error=${err} hint="in-flight requests per replica; default 8">
        <input type="number" min="1" name="maxConcurrency" placeholder="8" value=${s.maxConcurrency} onInput=${(e) => set({ maxConcurrency: e.target.value })} />
      <//>
      <${Field} label="Max queue" name="max_queue" error=${err} hint="waiting requests per replica; default 64">
        <input type="number" min="0" name="maxQueue" placeholder="64" value=${s.maxQueue} onInput=${(e) => set({ maxQueue: e.target.value })} />
      <//>
      <${Field} label="Timeout (s)" name="timeout_s" error=${err} hint="gateway timeout per request; default 60">
        <input type="number" min="1" name="timeoutS" placeholder="60" value=${s.timeoutS} onInput=${(e) => set({ timeoutS: e.target.value })} />
      <//>
    </div>
  </div>`;
}

// ---------------------------------------------------------------- 5. scaling

export function ScalingStep({ s, set, err }) {
  return html`<div class="create-step" data-step="scaling">
    <p class="muted">Serverless settings: with min replicas 0 the endpoint scales to zero when idle and the next request wakes it (that request waits for a cold start).</p>
    <div class="create-grid">
      <${Field} label="Min replicas" name="scaling.min_replicas" error=${err} hint="active workers kept running (0 or more)">
        <input type="number" min="0" max="64" name="minReplicas" value=${s.minReplicas} onInput=${(e) => set({ minReplicas: e.target.value })} />
      <//>
      <${Field} label="Max replicas" name="scaling.max_replicas" error=${err} hint="the most workers the autoscaler starts">
        <input type="number" min="1" max="64" name="maxReplicas" value=${s.maxReplicas} onInput=${(e) => set({ maxReplicas: e.target.value })} />
      <//>
      <${Field} label="Target concurrency" name="scaling.target_concurrency" error=${err} hint="in-flight requests per replica the autoscaler aims at">
        <input type="number" min="0.1" step="any" name="targetConcurrency" value=${s.targetConcurrency} onInput=${(e) => set({ targetConcurrency: e.target.value })} />
      <//>
      <${Field} label="Scale to zero after" name="scaling.scale_to_zero_after" error=${err} hint=${`idle time before going to zero (seconds, or 30s, 5m, 1h), when the minimum is 0`}>
        <input name="scaleToZeroAfter" value=${s.scaleToZeroAfter} onInput=${(e) => set({ scaleToZeroAfter: e.target.value })} />
      <//>
    </div>
    <p class="muted">Windows, delays and metric rules keep their defaults here; the endpoint's Scaling tab edits them later.</p>
  </div>`;
}

// ---------------------------------------------------------------- 6. environment

export function EnvStep({ s, set, err, data }) {
  const secrets = data.secrets.data || [];
  return html`<div class="create-step" data-step="env">
    <p class="muted">Variables every replica gets. A value from a stored secret is decrypted when the replica starts and never shown.</p>
    ${data.secrets.error ? html`<${ErrorBox} error=${data.secrets.error} />` : null}
    ${s.env.length === 0 ? html`<p class="muted">No variables. Add one if the model's code reads its settings from the environment.</p>` : null}
    <${Rows}
      rows=${s.env}
      onChange=${(env) => set({ env })}
      addLabel="Add variable"
      make=${() => ({ key: "", source: "value", value: "", secret: "" })}
      render=${(r, up, i) => {
        const key = r.key.trim();
        const path = r.source === "secret" ? `env_from_secrets.${key}` : `env.${key}`;
        return html`
          <${Field} label=${`Variable ${i + 1}`} name=${key ? path : r.source === "secret" ? "env_from_secrets" : "env"} error=${err}>
            <input aria-label=${`Variable ${i + 1} name`} placeholder="LOG_LEVEL" value=${r.key} onInput=${(e) => up({ key: e.target.value })} />
          <//>
          <${Field} label="From">
            <select aria-label=${`Variable ${i + 1} source`} value=${r.source} onChange=${(e) => up({ source: e.target.value })}>
              <option value="value">a value</option>
              <option value="secret">a secret</option>
            </select>
          <//>
          ${r.source === "secret"
            ? html`<${Field} label="Secret">
                <select aria-label=${`Variable ${i + 1} secret`} value=${r.secret} onChange=${(e) => up({ secret: e.target.value })}>
                  <option value="">Choose a secret…</option>
                  ${secrets.map((x) => html`<option value=${x.name}>${x.name}</option>`)}
                </select>
              <//>`
            : html`<${Field} label="Value">
                <input aria-label=${`Variable ${i + 1} value`} value=${r.value} onInput=${(e) => up({ value: e.target.value })} />
              <//>`}`;
      }}
    />
    ${data.secrets.data && secrets.length === 0 ? html`<p class="muted">No stored secret in this project: an admin adds them on the Secrets page, then Reload secrets.</p>` : null}
    <div class="row"><${Reload} poll=${data.secrets} what="secrets" /></div>
  </div>`;
}
