// Overview: what the endpoint is, where to call it (snippets that work as shown) and its
// key figures (from the endpoint's own answer, polled by the frame every 2 s).
import { html, useEffect, useState } from "../../../vendor/preact-htm.js";
import { endpointUrl, request } from "../../api.js";
import { href } from "../../router.js";
import { can, useSession } from "../../session.js";
import { Code, CopyButton, StatusBadge, fmt } from "../../ui.js";
import { Stat } from "../detail_common.js";

const LLM_PRESETS = ["vllm", "tgi", "sglang", "llama.cpp"];
const TENSOR = ["sklearn", "onnx"];

// The number of input columns of a tabular model, from the replica's Open Inference
// Protocol v2 metadata (`shape: [-1, n]`), when the user may invoke it. A model version
// records no input shape, so this is a GET through the gateway (it shows in the request
// logs). It is read once per endpoint revision: an answer (even "no shape", or a 4xx) is
// kept for the page's life; a network error or a 5xx (a replica restarting) is retried
// after 2, 4, 8 … 60 s while the tab shows, then the sample keeps 4 columns.
const widths = new Map(); // key → {n} once answered
const asking = new Map(); // key → the call out
const RETRY_S = [2, 4, 8, 16, 32, 60];
function useInputWidth(endpoint, base) {
  const { whoami } = useSession();
  const key = `${endpoint.project}/${endpoint.name}/${endpoint.revision}`;
  const [width, setWidth] = useState(widths.get(key)?.n ?? null);
  const wanted = TENSOR.includes(endpoint.spec.framework) && endpoint.status === "running" && can(whoami, "invoke", endpoint.project);
  useEffect(() => {
    const known = widths.get(key);
    setWidth(known ? known.n : null);
    if (!wanted || known) return undefined;
    let alive = true;
    let timer = null;
    const url = `${new URL(base).pathname}/v2/models/${encodeURIComponent(endpoint.name)}`;
    const ask = async (attempt) => {
      try {
        // one call per revision at a time, however many overviews mount meanwhile
        if (!asking.has(key)) {
          const call = (async () => {
            const res = await request("GET", url, { raw: true });
            if (res.status >= 500) throw new Error(`HTTP ${res.status}`);
            const meta = res.ok ? await res.json() : null;
            const shape = meta && meta.inputs && meta.inputs[0] && meta.inputs[0].shape;
            widths.set(key, { n: shape && shape.length === 2 && shape[1] > 0 ? shape[1] : null });
          })();
          asking.set(key, call);
          call.then(
            () => asking.delete(key),
            () => asking.delete(key)
          );
        }
        await asking.get(key);
        if (alive) setWidth(widths.get(key).n);
      } catch {
        if (alive && attempt < RETRY_S.length) timer = setTimeout(() => ask(attempt + 1), RETRY_S[attempt] * 1000);
      }
    };
    ask(0);
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [key, wanted]);
  return width;
}

// What to send, by framework and task: the body of `POST {url}/` (HF style).
function sampleBody(endpoint, width) {
  const task = endpoint.spec.task || "";
  const fw = endpoint.spec.framework;
  if (task === "text-generation") return { inputs: "Once upon a time", parameters: { max_new_tokens: 20 } };
  if (task === "feature-extraction") return { inputs: "a sentence to embed" };
  if (task === "fill-mask") return { inputs: "Paris is the [MASK] of France." };
  if (task.startsWith("text") || task.endsWith("classification")) return { inputs: "I love this!" };
  if (TENSOR.includes(fw)) return { inputs: [Array.from({ length: width || 4 }, (_, i) => [5.1, 3.5, 1.4, 0.2][i % 4])] };
  return { inputs: "…" };
}

export function isLlm(endpoint) {
  return LLM_PRESETS.includes(endpoint.spec.framework) || endpoint.spec.task === "text-generation";
}

function snippets(endpoint, url, width) {
  const name = endpoint.name;
  const projectArg = endpoint.project !== "default" ? `, project=${JSON.stringify(endpoint.project)}` : "";
  const out = [];
  const openaiOnly = LLM_PRESETS.includes(endpoint.spec.framework);
  if (openaiOnly) {
    const chat = { model: name, messages: [{ role: "user", content: "Hi" }], max_tokens: 16 };
    out.push([
      "curl",
      `curl -s ${url}/v1/chat/completions \\\n  -H "Authorization: Bearer $PODIUM_TOKEN" \\\n  -H 'content-type: application/json' \\\n  -d '${JSON.stringify(chat)}'`,
    ]);
  } else {
    const body = JSON.stringify(sampleBody(endpoint, width));
    out.push([
      "curl",
      `curl -s ${url}/ \\\n  -H "Authorization: Bearer $PODIUM_TOKEN" \\\n  -H 'content-type: application/json' \\\n  -d '${body}'`,
    ]);
    out.push([
      "Python (Podium SDK)",
      `import os\nimport podium\n\nclient = podium.Client(${JSON.stringify(location.origin)}, token=os.environ["PODIUM_TOKEN"])\nprint(client.invoke(${JSON.stringify(name)}, ${body}${projectArg}))`,
    ]);
    const task = endpoint.spec.task;
    const hfCall = {
      "text-generation": `client.text_generation("Once upon a time", max_new_tokens=20)`,
      "feature-extraction": `client.feature_extraction("a sentence to embed")`,
      "text-classification": `client.text_classification("I love this!")`,
      "token-classification": `client.token_classification("My name is Ada and I live in London")`,
      "fill-mask": `client.fill_mask("Paris is the [MASK] of France.")`,
    }[task];
    if (hfCall) {
      out.push([
        "Python (huggingface_hub)",
        `import os\nfrom huggingface_hub import InferenceClient\n\nclient = InferenceClient(model=${JSON.stringify(url)}, token=os.environ["PODIUM_TOKEN"])\nprint(${hfCall})`,
      ]);
    }
  }
  if (isLlm(endpoint) || endpoint.spec.task === "feature-extraction") {
    const call =
      endpoint.spec.task === "feature-extraction"
        ? `reply = client.embeddings.create(model=${JSON.stringify(name)}, input=["a sentence to embed"])\nprint(reply.data[0].embedding[:8])`
        : `reply = client.chat.completions.create(\n    model=${JSON.stringify(name)},\n    messages=[{"role": "user", "content": "Hi"}],\n    max_tokens=16,\n)\nprint(reply.choices[0].message.content)`;
    out.push(["Python (openai)", `import os\nfrom openai import OpenAI\n\nclient = OpenAI(base_url=${JSON.stringify(url + "/v1")}, api_key=os.environ["PODIUM_TOKEN"])\n${call}`]);
  }
  return out;
}

export function OverviewTab({ endpoint }) {
  const url = endpointUrl(endpoint.name, endpoint.project);
  const width = useInputWidth(endpoint, url);
  const list = snippets(endpoint, url, width);
  const [chosen, setChosen] = useState(0);
  const shown = list[Math.min(chosen, list.length - 1)];
  const spec = endpoint.spec;
  const size = endpoint.size;
  return html`<div class="detail-overview">
    <div class="stats" data-testid="key-figures">
      <${Stat} label="Requests (24 h)" value=${fmt.num(endpoint.requests)} testid="stat-requests" />
      <${Stat} label="Requests/min (5 min)" value=${fmt.num(endpoint.requests_per_min, 1)} testid="stat-rpm" />
      <${Stat} label="Avg latency (5 min)" value=${fmt.ms(endpoint.avg_latency_ms)} testid="stat-latency" />
      <${Stat} label="Error rate (5 min)" value=${fmt.pct(endpoint.error_rate)} testid="stat-errors" />
      <${Stat} label="Replicas ready/desired" value=${`${endpoint.ready_replicas}/${endpoint.desired_replicas}`} testid="stat-replicas" />
      <${Stat} label="Uptime" value=${fmt.duration(endpoint.uptime_s)} testid="stat-uptime" />
    </div>
    <div class="detail-columns">
      <div class="card">
        <h3>Endpoint</h3>
        <dl class="props">
          <dt>Status</dt>
          <dd><${StatusBadge} status=${endpoint.status} /> ${endpoint.status_reason ? html`<span class="muted">${endpoint.status_reason}</span>` : null}</dd>
          <dt>URL</dt>
          <dd class="detail-url"><code data-testid="endpoint-url">${url}</code> <${CopyButton} text=${url} label="Copy URL" /></dd>
          <dt>Revision</dt>
          <dd>${endpoint.revision}</dd>
          <dt>Model</dt>
          <dd>${/^(hf|s3):\/\//.test(endpoint.model_ref) ? html`<code>${endpoint.model_ref}</code>` : html`<a href=${href(`/models/${encodeURIComponent(endpoint.model_ref.split(":")[0])}`, endpoint.project !== "default" ? { project: endpoint.project } : undefined)}>${endpoint.model_ref}</a>`}</dd>
          <dt>Framework</dt>
          <dd>${spec.framework}${spec.task ? ` · ${spec.task}` : ""}</dd>
          ${spec.container
            ? html`<dt>Image</dt>
                <dd data-testid="container-image"><code>${spec.container.image || "the preset's own"}</code> · port ${spec.container.port}, health ${spec.container.health_route}, pull ${spec.container.pull_policy.replaceAll("_", " ")}${spec.container.registry_secret ? html`, registry secret <code>${spec.container.registry_secret}</code>` : ""}, model at <code>${spec.container.model_mount}</code></dd>`
            : null}
          <dt>Size</dt>
          <dd>${size ? `${size.name}: ${fmt.num(size.cpus, 2)} CPU, ${fmt.bytes(size.memory_mb * 1048576)}${size.gpus ? `, ${size.gpus} GPU` : ""} · ${fmt.money(size.price_per_hour)}/h` : spec.instance_type}</dd>
          <dt>Scaling</dt>
          <dd>${spec.scaling.min_replicas}–${spec.scaling.max_replicas} replicas${spec.scaling.min_replicas === 0 ? `, to zero after ${fmt.duration(spec.scaling.scale_to_zero_after)} idle` : ""}</dd>
          <dt>Project</dt>
          <dd>${endpoint.project} · ${endpoint.visibility}</dd>
          <dt>Created</dt>
          <dd>${fmt.time(endpoint.created_at)}</dd>
          <dt>Updated</dt>
          <dd>${fmt.time(endpoint.updated_at)}</dd>
        </dl>
      </div>
      <div class="card detail-snippets">
        <h3>Call it</h3>
        <p class="muted">Set <code>PODIUM_TOKEN</code> to a token with the <code>invoke</code> scope (<code>podium tokens create</code>).</p>
        <div class="row detail-snippet-tabs" role="tablist">
          ${list.map(
            ([label], i) => html`<button role="tab" class=${`btn small${list[chosen] && i === chosen ? " primary" : ""}`} aria-selected=${i === chosen} onClick=${() => setChosen(i)}>${label}</button>`
          )}
        </div>
        <div data-testid="snippet" data-lang=${shown[0]}><${Code} text=${shown[1]} lang=${shown[0]} /></div>
      </div>
    </div>
  </div>`;
}
