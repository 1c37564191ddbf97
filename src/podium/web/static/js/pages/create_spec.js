// The create wizard's pure half: its initial state, the spec it builds from that state
// (only fields `core/spec.py` has), a small YAML emitter for the summary, and the mapping
// of the API's 422 field paths onto the wizard's steps and inputs.

// The wizard's steps, in order; `fields`: the spec's top-level fields each one edits.
export const STEPS = [
  { id: "framework", label: "Framework", fields: ["framework"] },
  { id: "model", label: "Model", fields: ["model", "model_source"] },
  { id: "instance", label: "Instance", fields: ["instance_type", "resources"] },
  {
    id: "runtime",
    label: "Runtime",
    fields: ["task", "max_concurrency", "max_queue", "timeout_s", "trust_pickle", "batching", "engine_args", "command", "container"],
  },
  { id: "scaling", label: "Scaling", fields: ["scaling"] },
  { id: "env", label: "Environment", fields: ["env", "env_from_secrets"] },
  { id: "summary", label: "Summary", fields: ["name", "project"] },
];

export const DEFAULT_INSTANCE_TYPE = "cpu-small"; // core/spec.py DEFAULT_INSTANCE_TYPE
export const LLM_TASKS = ["text-generation"];

export function initialState() {
  return {
    framework: "",
    modelSource: "repo", // repo | hf | upload
    repoModel: "",
    repoVersion: "", // "": the latest
    hfRepo: "",
    hfRevision: "",
    hfSecret: "",
    upModel: "",
    upRef: "", // the pushed version's ref ("name:3") once the upload is done
    sizeMode: "type", // type | custom
    instanceType: DEFAULT_INSTANCE_TYPE,
    cpus: "1",
    memory: "2Gi",
    gpus: "0",
    gpuType: "",
    task: "",
    maxConcurrency: "",
    maxQueue: "",
    timeoutS: "",
    trustPickle: false,
    batching: false,
    maxBatchSize: "8",
    maxWaitMs: "5",
    engineArgs: [], // [{id, key, value}]
    command: "",
    args: "",
    port: "",
    healthRoute: "",
    // framework `container` (core/container_spec.py): "" leaves the server's default
    image: "",
    ctrPort: "",
    ctrHealthRoute: "",
    pullPolicy: "if_not_present", // always | if_not_present | never
    registrySecret: "",
    modelMount: "",
    minReplicas: "1",
    maxReplicas: "1",
    targetConcurrency: "4",
    scaleToZeroAfter: "300",
    env: [], // [{id, key, source: "value" | "secret", value, secret}]
    name: "",
  };
}

// "" → undefined; a number-looking text → a number; anything else as typed (the API
// then says what is wrong with it, next to its field).
export function num(v) {
  if (v === undefined || v === null) return undefined;
  const t = String(v).trim();
  if (t === "") return undefined;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

// An engine argument's value: true/false → a bool, a number → a number, else the text.
export function engineValue(v) {
  const t = String(v).trim();
  if (t === "true") return true;
  if (t === "false") return false;
  return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
}

export function modelRef(s) {
  if (s.modelSource === "repo") {
    if (!s.repoModel) return "";
    return s.repoVersion ? `${s.repoModel}:${s.repoVersion}` : s.repoModel;
  }
  if (s.modelSource === "hf") {
    const repo = s.hfRepo.trim().replace(/^hf:\/\//, "");
    if (!repo) return "";
    return `hf://${repo}${s.hfRevision.trim() ? "@" + s.hfRevision.trim() : ""}`;
  }
  return s.upRef;
}

function put(obj, key, value) {
  if (value !== undefined && value !== "") obj[key] = value;
}

// The POST /api/v1/endpoints body. `framework` is the catalog entry (or undefined).
export function buildSpec(s, framework, project) {
  const spec = {};
  put(spec, "name", s.name.trim());
  if (project && project !== "default") spec.project = project;
  spec.model = modelRef(s);
  put(spec, "framework", s.framework);
  if (s.modelSource === "hf" && s.hfSecret) spec.model_source = { token_secret: s.hfSecret };
  if (s.sizeMode === "custom") {
    const r = {};
    put(r, "cpus", num(s.cpus));
    put(r, "memory", num(s.memory));
    put(r, "gpus", num(s.gpus));
    put(r, "gpu_type", s.gpuType.trim());
    spec.resources = r;
  } else {
    spec.instance_type = s.instanceType || DEFAULT_INSTANCE_TYPE;
  }
  const kind = framework ? framework.kind : "";
  put(spec, "task", s.task);
  put(spec, "max_concurrency", num(s.maxConcurrency));
  put(spec, "max_queue", num(s.maxQueue));
  put(spec, "timeout_s", num(s.timeoutS));
  if (s.framework === "sklearn" && s.trustPickle) spec.trust_pickle = true;
  if ((kind === "builtin" || kind === "plugin") && s.batching) {
    const b = {};
    put(b, "max_batch_size", num(s.maxBatchSize));
    put(b, "max_wait_ms", num(s.maxWaitMs));
    spec.batching = b;
  }
  if (kind === "preset") {
    const args = {};
    for (const row of s.engineArgs) if (row.key.trim()) args[row.key.trim()] = engineValue(row.value);
    if (Object.keys(args).length) spec.engine_args = args;
  }
  if (kind === "command") {
    const c = { command: s.command.trim() };
    const args = s.args.split("\n").map((a) => a.trim()).filter(Boolean);
    if (args.length) c.args = args;
    put(c, "port", num(s.port));
    put(c, "health_route", s.healthRoute.trim());
    spec.command = c;
  }
  if (kind === "container") {
    const c = { image: s.image.trim() };
    put(c, "port", num(s.ctrPort));
    put(c, "health_route", s.ctrHealthRoute.trim());
    put(c, "pull_policy", s.pullPolicy);
    put(c, "registry_secret", s.registrySecret);
    put(c, "model_mount", s.modelMount.trim());
    spec.container = c;
  }
  const scaling = {};
  put(scaling, "min_replicas", num(s.minReplicas));
  put(scaling, "max_replicas", num(s.maxReplicas));
  put(scaling, "target_concurrency", num(s.targetConcurrency));
  put(scaling, "scale_to_zero_after", num(s.scaleToZeroAfter));
  spec.scaling = scaling;
  const env = {};
  const fromSecrets = {};
  for (const row of s.env) {
    const key = row.key.trim();
    if (!key) continue;
    if (row.source === "secret") fromSecrets[key] = row.secret;
    else env[key] = row.value;
  }
  if (Object.keys(env).length) spec.env = env;
  if (Object.keys(fromSecrets).length) spec.env_from_secrets = fromSecrets;
  return spec;
}

// ---------------------------------------------------------------- YAML

// A string is written plain only when every YAML reader (PyYAML's 1.1 as `podium deploy -f`
// uses it, and 1.2 ones) takes it back as that same string; anything else is double-quoted.
// Plain: letters, digits and _./:@+- (single spaces inside), not starting with a YAML
// indicator or a space, no ": " and no ":" at the end.
const PLAIN = /^[A-Za-z0-9_./][A-Za-z0-9_./:@+-]*(?: [A-Za-z0-9_./:@+-]+)*$/;
// Booleans (1.1: y/n/yes/no/on/off too) and nulls, in any case.
const RESERVED = /^(true|false|yes|no|on|off|y|n|null|~)$/i;
// What may be a number, a date or a time in some YAML: ints in any base (0b, 0o, 0x,
// 0-octal, base 60 as in 1:30), floats, .inf/.nan, dates and timestamps. Cautious on
// purpose: a plain string that starts with a digit or "." and has only these characters
// is quoted ("1Gi" has a G, so it stays plain).
const NUMBERISH = /^[0-9.][0-9a-fA-F._:+ xXoOtTzZ-]*$/;
const SPECIAL_FLOAT = /^[-+]?\.(inf|nan)$/i;

// A YAML double-quoted string: JSON's escapes are YAML's, plus the characters YAML
// readers refuse or fold when written raw (C1 controls, DEL, line/paragraph separators,
// the BOM and non-characters).
function quoted(s) {
  return JSON.stringify(s).replace(/[\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

function plainOk(s) {
  return PLAIN.test(s) && !RESERVED.test(s) && !NUMBERISH.test(s) && !SPECIAL_FLOAT.test(s) && !/:( |$)/.test(s);
}

function number(v) {
  if (Number.isNaN(v)) return ".nan";
  if (!Number.isFinite(v)) return v > 0 ? ".inf" : "-.inf";
  const t = String(v);
  // 1e+21 → 1.0e+21: YAML 1.1 (PyYAML) reads a float only with a "."
  return /e/.test(t) && !t.includes(".") ? t.replace("e", ".0e") : t;
}

function scalar(v) {
  if (v === null || v === undefined) return "null";
  if (typeof v === "boolean") return String(v);
  if (typeof v === "number") return number(v);
  const s = String(v);
  return plainOk(s) ? s : quoted(s);
}

// A mapping key: the same rules as a value, and no ":" at all in a plain one.
function key(k) {
  const s = String(k);
  return plainOk(s) && !s.includes(":") ? s : quoted(s);
}

function isBlock(v) {
  return v !== null && typeof v === "object" && (Array.isArray(v) ? v.length > 0 : Object.keys(v).length > 0);
}

function emptyOf(v) {
  return Array.isArray(v) ? "[]" : "{}";
}

// Plain dicts, lists and scalars as block YAML (what `podium deploy -f` reads).
export function toYaml(value, indent = "") {
  if (Array.isArray(value)) {
    if (!value.length) return `${indent}[]\n`;
    return value
      .map((item) => {
        if (isBlock(item)) {
          const inner = toYaml(item, indent + "  ");
          return `${indent}- ${inner.slice(indent.length + 2)}`;
        }
        return `${indent}- ${typeof item === "object" && item !== null ? emptyOf(item) : scalar(item)}\n`;
      })
      .join("");
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value);
    if (!keys.length) return `${indent}{}\n`;
    return keys
      .map((k) => {
        const v = value[k];
        if (isBlock(v)) return `${indent}${key(k)}:\n${toYaml(v, indent + "  ")}`;
        return `${indent}${key(k)}: ${typeof v === "object" && v !== null ? emptyOf(v) : scalar(v)}\n`;
      })
      .join("");
  }
  return `${indent}${scalar(value)}\n`;
}

// ---------------------------------------------------------------- errors → steps

// The sub-fields each block's inputs show (an error naming the block itself is put on the
// first of these its message mentions: "min_replicas (3) must not exceed max_replicas").
const BLOCK_FIELDS = {
  scaling: ["min_replicas", "max_replicas", "target_concurrency", "scale_to_zero_after"],
  resources: ["cpus", "memory", "gpus", "gpu_type"],
  batching: ["max_batch_size", "max_wait_ms"],
  command: ["command", "args", "port", "health_route"],
  container: ["image", "port", "health_route", "pull_policy", "registry_secret", "model_mount"],
  model_source: ["token_secret"],
};

// The API's path without a leading "body." / "spec.".
export function cleanField(field) {
  return String(field || "").replace(/^(body|spec)\./, "");
}

// The row of a dict block (env, env_from_secrets, engine_args) a block-level message
// names in quotes ("'bad key' is not a valid key"), as its field path; or null.
function rowField(block, message, s) {
  const quoted = [...String(message || "").matchAll(/'([^']*)'/g)].map((m) => m[1]);
  const rows = block === "engine_args" ? s.engineArgs : s.env.filter((r) => (r.source === "secret") === (block === "env_from_secrets"));
  for (const q of quoted) {
    const row = rows.find((r) => r.key.trim() === q || (block === "env_from_secrets" && r.secret === q));
    if (row && row.key.trim()) return `${block}.${row.key.trim()}`;
  }
  return null;
}

// A 422's errors with block-level ones put on the sub-field (or the row, for `s`'s
// env and engine_args) their message names.
export function remapErrors(errors, s) {
  return (errors || []).map((e) => {
    // "command.args.0" → "command.args": the input is the list's
    const field = cleanField(e.field).replace(/\.\d+(\..*)?$/, "");
    const subs = BLOCK_FIELDS[field];
    if (subs) {
      let best = null;
      for (const sub of subs) {
        const at = String(e.message || "").search(new RegExp(`\\b${sub}\\b`));
        if (at >= 0 && (best === null || at < best.at)) best = { sub, at };
      }
      if (best) return { ...e, field: `${field}.${best.sub}` };
    }
    if (s && ["env", "env_from_secrets", "engine_args"].includes(field)) {
      const row = rowField(field, e.message, s);
      if (row) return { ...e, field: row };
    }
    return { ...e, field };
  });
}

export function stepOfField(field) {
  const top = cleanField(field).split(".")[0];
  const i = STEPS.findIndex((st) => st.fields.includes(top));
  return i;
}

// Whether an input for `field` (after remapErrors) is on screen for state `s`.
export function isShown(field, s, framework) {
  const kind = framework ? framework.kind : "";
  const [top, sub] = [field.split(".")[0], field.split(".").slice(1).join(".")];
  switch (top) {
    case "framework":
    case "name":
    case "max_concurrency":
    case "max_queue":
    case "timeout_s":
      return !sub;
    case "model":
      return !sub;
    case "model_source":
      return s.modelSource === "hf" && sub === "token_secret";
    case "instance_type":
      return !sub && s.sizeMode === "type";
    case "resources":
      return s.sizeMode === "custom" && BLOCK_FIELDS.resources.includes(sub);
    case "task":
      return !sub && !!framework && framework.tasks.length > 0;
    case "trust_pickle":
      return s.framework === "sklearn";
    case "batching":
      return s.batching && (kind === "builtin" || kind === "plugin") && BLOCK_FIELDS.batching.includes(sub);
    case "engine_args":
      return kind === "preset" && s.engineArgs.some((r) => r.key.trim() === sub);
    case "command":
      return kind === "command" && BLOCK_FIELDS.command.includes(sub.split(".")[0]);
    case "container": // the block itself too: no engine here, or the Ray backend
      return kind === "container" && (!sub || BLOCK_FIELDS.container.includes(sub.split(".")[0]));
    case "scaling":
      return BLOCK_FIELDS.scaling.includes(sub);
    case "env":
      return s.env.some((r) => r.source !== "secret" && r.key.trim() === sub.split(".")[0]);
    case "env_from_secrets":
      return s.env.some((r) => r.source === "secret" && r.key.trim() === sub);
    default:
      return false;
  }
}
