// The playground tab: call the endpoint from the browser through the gateway, like any
// client, and show the answer and the call's request record.
//   chat   LLM endpoints (text-generation, OpenAI presets): POST …/v1/chat/completions
//          with stream: true, read as server-sent events token by token; stop aborts.
//   json   every other endpoint: a JSON body (an example for its task), checked as JSON
//          before it is sent; the answer pretty-printed with its status and time.
//   image  image tasks: a picture sent as base64 in {"inputs": …} (what the HF protocol
//          of the transformers runtime accepts).
// The request id comes from the answer's X-Request-ID header; its record is fetched from
// GET /endpoints/{name}/requests?request_id=… once the background writer stored it.
import { html, useEffect, useRef, useState } from "../../../vendor/preact-htm.js";
import { request } from "../../api.js";
import { can, useSession } from "../../session.js";
import { ErrorBox, Spinner, fmt } from "../../ui.js";
import { RequestRecord, gatewayError, gatewayPath, parseJson, pretty } from "../play_util.js";

const OPENAI_PRESETS = new Set(["vllm", "sglang", "tgi", "llama.cpp"]);
const IMAGE_TASKS = new Set(["image-classification"]);

// Which playground fits the endpoint: "chat", "image" or "json".
export function defaultMode(spec) {
  const task = spec.task || "";
  if (OPENAI_PRESETS.has(spec.framework) || task === "text-generation" || task === "chat") return "chat";
  if (IMAGE_TASKS.has(task)) return "image";
  return "json";
}

// An example body for the endpoint's task (what its runtime takes).
export function exampleBody(spec) {
  const task = spec.task || "";
  const examples = {
    "text-generation": { inputs: "Once upon a time", parameters: { max_new_tokens: 20 } },
    "text-classification": { inputs: "I love this product!" },
    "sentiment-analysis": { inputs: "I love this product!" },
    "token-classification": { inputs: "My name is Sarah and I live in London" },
    ner: { inputs: "My name is Sarah and I live in London" },
    "fill-mask": { inputs: "Paris is the [MASK] of France." },
    "zero-shot-classification": { inputs: "I have a problem with my iphone that needs to be resolved asap!", parameters: { candidate_labels: ["urgent", "not urgent"] } },
    "feature-extraction": { inputs: "The quick brown fox" },
    embeddings: { inputs: "The quick brown fox" },
    "sentence-embeddings": { inputs: "The quick brown fox" },
  };
  if (examples[task]) return examples[task];
  if (spec.framework === "sklearn" || spec.framework === "onnx") return { inputs: [[5.1, 3.5, 1.4, 0.2]] };
  return { inputs: [[1, 2, 3, 4]] };
}

export function PlaygroundTab({ endpoint }) {
  const { whoami } = useSession();
  const [mode, setMode] = useState(() => defaultMode(endpoint.spec));
  if (!can(whoami, "invoke", endpoint.project)) {
    return html`<p class="muted" data-testid="playground-denied">Calling an endpoint needs a token with scope <code>invoke</code> on project <code>${endpoint.project}</code>.</p>`;
  }
  return html`<div class="play-playground">
    <div class="toolbar">
      <label class="play-inline">Mode
        <select aria-label="Mode" value=${mode} onChange=${(e) => setMode(e.target.value)}>
          <option value="chat">Chat (OpenAI, streamed)</option>
          <option value="json">JSON</option>
          <option value="image">Image</option>
        </select>
      </label>
      ${endpoint.status === "paused" ? html`<span class="notice">This endpoint is paused: calls are refused until it is resumed.</span>` : null}
      ${endpoint.status === "scaled_to_zero" ? html`<span class="notice">Scaled to zero: the first call wakes it and waits for a replica.</span>` : null}
    </div>
    ${mode === "chat" ? html`<${ChatBox} endpoint=${endpoint} key="chat" />` : mode === "image" ? html`<${ImageBox} endpoint=${endpoint} key="image" />` : html`<${JsonBox} endpoint=${endpoint} key="json" />`}
  </div>`;
}

// POST a body to the gateway; returns {status, ms, requestId, text, type}.
async function call(endpoint, path, text) {
  const started = performance.now();
  const res = await request("POST", gatewayPath(endpoint) + path, { body: text, headers: { "Content-Type": "application/json" }, raw: true });
  const body = await res.text();
  return {
    status: res.status,
    ok: res.ok,
    ms: performance.now() - started,
    requestId: res.headers.get("x-request-id"),
    text: body,
    type: res.headers.get("content-type") || "",
  };
}

function Answer({ answer }) {
  if (!answer) return null;
  return html`<div class="card play-answer" data-testid="answer">
    <div class="row">
      <span class=${`badge ${answer.ok ? "tone-ok" : "tone-bad"}`} data-testid="answer-status">HTTP ${answer.status}</span>
      <span class="muted" data-testid="answer-time">${fmt.ms(answer.ms)}</span>
      <span class="muted">${answer.type}</span>
    </div>
    <pre class="play-pre" data-testid="answer-body">${pretty(answer.text)}</pre>
  </div>`;
}

function JsonBox({ endpoint }) {
  const [path, setPath] = useState("/");
  const [text, setText] = useState(() => JSON.stringify(exampleBody(endpoint.spec), null, 2));
  const [invalid, setInvalid] = useState(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [answer, setAnswer] = useState(null);
  const send = async (e) => {
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
      setAnswer(await call(endpoint, path.startsWith("/") ? path : `/${path}`, JSON.stringify(parsed.value)));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="play-grid" onSubmit=${send}>
    <div class="stack">
      <label class="field">
        <span class="field-label">Path</span>
        <input name="path" value=${path} onInput=${(e) => setPath(e.target.value)} />
        <span class="field-hint">after <code>${gatewayPath(endpoint)}</code>; the built-in runtimes predict on <code>/</code></span>
      </label>
      <label class=${`field${invalid ? " invalid" : ""}`}>
        <span class="field-label">Request body (JSON)</span>
        <textarea name="body" class="play-editor" spellcheck="false" value=${text} onInput=${(e) => setText(e.target.value)}></textarea>
        ${invalid ? html`<span class="field-error" role="alert">${invalid}</span>` : null}
      </label>
      <div class="row">
        <button class="btn primary" type="submit" disabled=${busy}>${busy ? "Sending…" : "Send"}</button>
        <button class="btn" type="button" onClick=${() => setText(JSON.stringify(exampleBody(endpoint.spec), null, 2))}>Example</button>
        ${busy ? html`<${Spinner} label="Sending" />` : null}
      </div>
    </div>
    <div class="stack">
      <${ErrorBox} error=${error} />
      ${answer ? html`<${Answer} answer=${answer} />` : html`<p class="muted">Send a request to see the answer here.</p>`}
      ${answer ? html`<${RequestRecord} endpoint=${endpoint} requestId=${answer.requestId} />` : null}
    </div>
  </form>`;
}

function ImageBox({ endpoint }) {
  const [image, setImage] = useState(null); // {name, dataUrl}
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const [answer, setAnswer] = useState(null);
  const pick = (e) => {
    const file = e.target.files && e.target.files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => setImage({ name: file.name, dataUrl: String(reader.result) });
    reader.onerror = () => setError(new Error(`could not read ${file.name}`));
    reader.readAsDataURL(file);
  };
  const send = async (e) => {
    e.preventDefault();
    if (!image) return;
    setError(null);
    setBusy(true);
    try {
      const base64 = image.dataUrl.slice(image.dataUrl.indexOf(",") + 1);
      setAnswer(await call(endpoint, "/", JSON.stringify({ inputs: base64 })));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="play-grid" onSubmit=${send}>
    <div class="stack">
      <label class="field">
        <span class="field-label">Image</span>
        <input type="file" name="image" accept="image/*" onChange=${pick} />
        <span class="field-hint">sent as base64 in <code>{"inputs": …}</code>, as the image tasks take it</span>
      </label>
      ${image ? html`<img class="play-preview" src=${image.dataUrl} alt=${image.name} />` : null}
      <div class="row">
        <button class="btn primary" type="submit" disabled=${busy || !image}>${busy ? "Sending…" : "Send"}</button>
      </div>
    </div>
    <div class="stack">
      <${ErrorBox} error=${error} />
      ${answer ? html`<${Answer} answer=${answer} />` : html`<p class="muted">Choose an image and send it.</p>`}
      ${answer ? html`<${RequestRecord} endpoint=${endpoint} requestId=${answer.requestId} />` : null}
    </div>
  </form>`;
}

// Read an SSE stream of OpenAI chat chunks; calls onDelta(text) per content delta.
// Returns true when the stream ended with `data: [DONE]`, false when the connection
// closed before it (an answer cut off). The reader is cancelled once [DONE] is read.
export async function readStream(res, onDelta) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  const lines = function* (final) {
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      yield buffer.slice(0, nl).replace(/\r$/, "");
      buffer = buffer.slice(nl + 1);
    }
    if (final && buffer) {
      yield buffer.replace(/\r$/, "");
      buffer = "";
    }
  };
  const handle = (line) => {
    if (!line.startsWith("data:")) return false;
    const data = line.slice(5).trim();
    if (data === "[DONE]") return true;
    const parsed = parseJson(data);
    if (parsed.error) return false;
    const chunk = parsed.value;
    if (chunk.error) throw new Error(chunk.error.message || "the stream reported an error");
    const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
    if (delta && delta.content) onDelta(delta.content);
    return false;
  };
  for (;;) {
    const { value, done } = await reader.read();
    buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
    for (const line of lines(done)) {
      if (handle(line)) {
        reader.cancel().catch(() => {});
        return true;
      }
    }
    if (done) return false;
  }
}

function ChatBox({ endpoint }) {
  const [system, setSystem] = useState("You are a helpful assistant.");
  const [temperature, setTemperature] = useState("0.7");
  const [maxTokens, setMaxTokens] = useState("128");
  const [messages, setMessages] = useState([]); // [{role, content}]
  const [draft, setDraft] = useState("");
  const [streaming, setStreaming] = useState(false);
  const [error, setError] = useState(null);
  const [last, setLast] = useState(null); // {requestId, status, ms, stopped}
  const abort = useRef(null);
  // Leaving the tab (another tab, page or mode) ends the stream: the replica stops
  // generating and its concurrency slot is freed.
  useEffect(() => () => abort.current && abort.current.abort(), []);

  const send = async (e) => {
    e.preventDefault();
    const text = draft.trim();
    if (!text || streaming) return;
    const history = [...messages, { role: "user", content: text }];
    setMessages([...history, { role: "assistant", content: "" }]);
    setDraft("");
    setError(null);
    setStreaming(true);
    const controller = new AbortController();
    abort.current = controller;
    const started = performance.now();
    let requestId = null;
    let status = 0;
    let stopped = false;
    let cut = false;
    try {
      const body = {
        model: endpoint.name,
        messages: [...(system.trim() ? [{ role: "system", content: system }] : []), ...history],
        stream: true,
        stream_options: { include_usage: true },
      };
      const t = parseFloat(temperature);
      if (!Number.isNaN(t)) body.temperature = t;
      const m = parseInt(maxTokens, 10);
      if (!Number.isNaN(m)) body.max_tokens = m;
      const res = await request("POST", `${gatewayPath(endpoint)}/v1/chat/completions`, { body, raw: true, signal: controller.signal });
      requestId = res.headers.get("x-request-id");
      status = res.status;
      if (!res.ok) throw await gatewayError(res);
      const complete = await readStream(res, (delta) =>
        setMessages((ms) => {
          const copy = ms.slice();
          const lastMsg = copy[copy.length - 1];
          copy[copy.length - 1] = { ...lastMsg, content: lastMsg.content + delta };
          return copy;
        })
      );
      cut = !complete;
    } catch (err) {
      if (err && err.name === "AbortError") stopped = true;
      else {
        setError(err);
        // A failed call leaves no empty answer behind (the next send would carry it in
        // the history); what arrived before a mid-stream error stays.
        setMessages((ms) => {
          const lastMsg = ms[ms.length - 1];
          return lastMsg && lastMsg.role === "assistant" && !lastMsg.content ? ms.slice(0, -1) : ms;
        });
      }
    } finally {
      if (abort.current === controller) abort.current = null;
      setStreaming(false);
      setLast({ requestId, status, ms: performance.now() - started, stopped, cut });
    }
  };
  const stop = () => abort.current && abort.current.abort();
  const clear = () => {
    setMessages([]);
    setLast(null);
    setError(null);
  };

  return html`<div class="play-grid">
    <div class="stack">
      <label class="field">
        <span class="field-label">System prompt</span>
        <textarea name="system" class="play-system" value=${system} onInput=${(e) => setSystem(e.target.value)}></textarea>
      </label>
      <div class="row">
        <label class="field">
          <span class="field-label">Temperature</span>
          <input name="temperature" type="number" min="0" max="2" step="0.1" value=${temperature} onInput=${(e) => setTemperature(e.target.value)} />
        </label>
        <label class="field">
          <span class="field-label">Max tokens</span>
          <input name="max_tokens" type="number" min="1" step="1" value=${maxTokens} onInput=${(e) => setMaxTokens(e.target.value)} />
        </label>
      </div>
      <p class="muted">Streams from <code>${gatewayPath(endpoint)}/v1/chat/completions</code> (<code>stream: true</code>).</p>
    </div>
    <div class="stack">
      <div class="play-chat" data-testid="chat-log" aria-live="polite">
        ${messages.length === 0 ? html`<p class="muted">Write a message below; the answer appears token by token.</p>` : null}
        ${messages.map(
          (m, i) => html`<div key=${i} class=${`play-msg play-${m.role}`} data-role=${m.role}>
            <span class="play-role">${m.role}</span>
            <div class="play-bubble"><span class="play-content">${m.content}</span>${streaming && i === messages.length - 1 ? html`<span class="play-caret" aria-hidden="true">▍</span>` : null}</div>
          </div>`
        )}
      </div>
      <form class="play-compose" onSubmit=${send}>
        <textarea
          name="message"
          aria-label="Message"
          class="play-message"
          placeholder="Your message (Enter sends, Shift+Enter: new line)"
          value=${draft}
          onInput=${(e) => setDraft(e.target.value)}
          onKeyDown=${(e) => {
            // Enter while an IME composition is open (CJK input) confirms the
            // composition, it does not send.
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) send(e);
          }}
        ></textarea>
        <div class="row">
          ${streaming
            ? html`<button class="btn danger" type="button" onClick=${stop}>Stop</button>`
            : html`<button class="btn primary" type="submit" disabled=${!draft.trim()}>Send</button>`}
          <button class="btn" type="button" onClick=${clear} disabled=${streaming || messages.length === 0}>Clear</button>
          ${last ? html`<span class="muted" data-testid="chat-status">HTTP ${last.status || "—"} · ${fmt.ms(last.ms)}${last.stopped ? " · stopped" : ""}${last.cut ? " · cut off: the stream ended without [DONE]" : ""}</span>` : null}
        </div>
      </form>
      <${ErrorBox} error=${error} />
      ${last && last.requestId ? html`<${RequestRecord} endpoint=${endpoint} requestId=${last.requestId} />` : null}
    </div>
  </div>`;
}
