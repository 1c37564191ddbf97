// The create wizard (#/new): framework → model → instance → runtime (a container's image,
// port, health route, pull policy, registry secret and model mount there too) → scaling →
// environment → summary (the spec as YAML, an editable name, Create). One state object
// holds every step's inputs, so Back and Next (and the step list) keep what was entered.
// Create posts POST /api/v1/endpoints; a 422's errors appear next to the inputs they name,
// on their step (the wizard jumps there); the rest in an ErrorBox on the summary.
import { html, useMemo, useState } from "../../vendor/preact-htm.js";
import { ApiError, get, post } from "../api.js";
import { navigate } from "../router.js";
import { can, useSession } from "../session.js";
import { Code, ErrorBox, Field, PageHeader, fmt, toast, usePoll } from "../ui.js";
import { STEPS, buildSpec, initialState, isShown, modelRef, remapErrors, stepOfField, toYaml } from "./create_spec.js";
import { EnvStep, FrameworkStep, InstanceStep, ModelStep, RuntimeStep, ScalingStep } from "./create_steps.js";

const BODIES = {
  framework: FrameworkStep,
  model: ModelStep,
  instance: InstanceStep,
  runtime: RuntimeStep,
  scaling: ScalingStep,
  env: EnvStep,
};

// The lists a step shows, read again each time the step is entered.
// The runtime step's only list is a container's registry secret.
const REREAD = { model: ["models", "secrets"], env: ["secrets"] };
const rereads = (id, s) => (id === "runtime" && s.framework === "container" ? ["secrets"] : REREAD[id] || []);

// Why Next is not possible yet on a step (null: it is).
function blocker(id, s) {
  if (id === "framework" && !s.framework) return "Choose a framework.";
  if (id === "model" && !modelRef(s)) {
    if (s.modelSource === "upload") return "Upload the file first.";
    return s.modelSource === "hf" ? "Enter a repository id." : "Choose a model.";
  }
  if (id === "runtime" && s.framework === "command" && !s.command.trim()) return "Enter the command to run.";
  if (id === "runtime" && s.framework === "container" && !s.image.trim()) return "Enter the image to run.";
  if (id === "env") {
    const unset = s.env.find((r) => r.source === "secret" && r.key.trim() && !r.secret);
    if (unset) return `Choose the secret for ${unset.key.trim()}.`;
  }
  return null;
}

// What the chosen size costs, as the server prices it (per replica-hour).
function priceLine(s, types) {
  if (s.sizeMode === "custom") return "Custom size: priced per unit by this server's operator; the price per hour shows on the endpoint's page once it is created.";
  const t = (types || []).find((x) => x.name === s.instanceType);
  if (!t) return `Instance type ${s.instanceType}.`;
  const lo = Number(s.minReplicas) || 0;
  const hi = Number(s.maxReplicas) || lo;
  const each = `${t.name}: ${fmt.money(t.price_per_hour)}/h per replica`;
  return `${each}; ${fmt.money(t.price_per_hour * lo)}/h at ${lo} replica${lo === 1 ? "" : "s"}, up to ${fmt.money(t.price_per_hour * hi)}/h at ${hi}.`;
}

// The project the endpoint is made in: the switcher's, else the token's only one, else default.
function targetProject(session) {
  if (session.project) return session.project;
  const mine = session.whoami.projects;
  if (mine && mine.length && !mine.includes("default")) return mine[0];
  return "default";
}

export function CreatePage() {
  const session = useSession();
  const project = targetProject(session);
  const [s, setS] = useState(initialState);
  const [step, setStep] = useState(0);
  const [visited, setVisited] = useState(0); // the furthest step reached
  const [apiError, setApiError] = useState(null); // the last Create's ApiError (remapped)
  const [busy, setBusy] = useState(false);
  const allowed = can(session.whoami, "deploy", project);

  // Read once (and again for another project); the models and secrets lists again each
  // time their step is entered (see go), after an upload, or with a step's Reload button:
  // nothing else changes them, and GET /models lists every version of every model.
  const q = { project };
  const frameworks = usePoll(() => get("frameworks"), 0, []);
  const models = usePoll(() => get("models", q), 0, [project]);
  const types = usePoll(() => get("instance-types"), 0, []);
  const secrets = usePoll(() => get("secrets", q), 0, [project]);
  const data = { frameworks, models, types, secrets };
  const framework = (frameworks.data || []).find((f) => f.name === s.framework);

  const set = (patch) => setS((prev) => ({ ...prev, ...patch }));
  const spec = useMemo(() => buildSpec(s, framework, project), [s, framework, project]);
  const yaml = useMemo(() => toYaml(spec), [spec]);

  if (!allowed) {
    return html`<div class="page"><${PageHeader} title="Create endpoint" />
      <p class="notice" data-testid="no-deploy">Creating an endpoint needs the <code>deploy</code> scope in project <code>${project}</code>; this token has ${session.whoami.scopes.join(", ") || "none"}. Ask an admin for a token with deploy.</p>
    </div>`;
  }

  const go = (i) => {
    if (i !== step) for (const what of rereads(STEPS[i].id, s)) data[what].reload();
    setStep(i);
    setVisited((v) => Math.max(v, i));
  };
  const current = STEPS[step];
  const why = blocker(current.id, s);

  // Errors with an input on screen, and those without (the summary's ErrorBox).
  const errors = apiError ? apiError.errors : [];
  const placed = errors.filter((e) => stepOfField(e.field) >= 0 && isShown(e.field, s, framework));
  const unplaced = errors.filter((e) => !placed.includes(e));
  const stepsWithErrors = new Set(placed.map((e) => stepOfField(e.field)));

  const create = async () => {
    setBusy(true);
    setApiError(null);
    try {
      const ep = await post("endpoints", spec);
      toast(`Created ${ep.name}`);
      navigate(`/endpoints/${encodeURIComponent(ep.name)}`, ep.project && ep.project !== "default" ? { project: ep.project } : undefined);
    } catch (e) {
      if (!(e instanceof ApiError)) {
        setApiError(new ApiError(0, { title: "Error", detail: String(e.message || e) }));
        return;
      }
      const remapped = new ApiError(e.status, { ...e.problem, errors: remapErrors(e.errors, s), field: null });
      setApiError(remapped);
      const firstPlaced = remapped.errors.find((x) => stepOfField(x.field) >= 0 && isShown(x.field, s, framework));
      if (firstPlaced) go(stepOfField(firstPlaced.field));
    } finally {
      setBusy(false);
    }
  };

  const Body = BODIES[current.id];
  const unplacedError = unplaced.length
    ? new ApiError(apiError.status, {
        title: apiError.problem.title,
        detail: unplaced.map((e) => (e.field ? `${e.field}: ${e.message}` : e.message)).join("; ") || apiError.message,
      })
    : apiError && errors.length === 0
      ? apiError
      : null;

  return html`<div class="page create-page">
    <${PageHeader} title="Create endpoint" subtitle=${html`in project <code>${project}</code>${session.project ? "" : " (choose another with the project switcher)"}`} />
    <ol class="create-steps" aria-label="Steps">
      ${STEPS.map(
        (st, i) => html`<li key=${st.id}>
          <button
            type="button"
            class=${`create-stepbtn${i === step ? " current" : ""}${i <= visited ? " reached" : ""}${stepsWithErrors.has(i) ? " has-error" : ""}`}
            aria-current=${i === step ? "step" : undefined}
            data-testid=${`step-${st.id}`}
            disabled=${i > visited}
            onClick=${() => go(i)}
          >
            <span class="create-stepnum">${i + 1}</span> ${st.label}
          </button>
        </li>`
      )}
    </ol>
    <section class="card create-body" aria-label=${current.label}>
      <h2>${step + 1}. ${current.label}</h2>
      ${current.id === "summary"
        ? html`<div class="create-step" data-step="summary">
            <${Field} label="Endpoint name" name="name" error=${apiError} hint="optional: empty, the server makes one from the model's name">
              <input name="name" value=${s.name} placeholder="e.g. iris-prod" onInput=${(e) => set({ name: e.target.value })} />
            <//>
            <p data-testid="price">${priceLine(s, types.data)}</p>
            <p class="muted">The spec that Create sends (the same YAML works with <code>podium deploy -f</code>):</p>
            <div data-testid="yaml"><${Code} text=${yaml} lang="yaml" /></div>
            ${unplacedError ? html`<${ErrorBox} error=${unplacedError} />` : null}
            ${placed.length ? html`<p class="field-error" role="alert">Some steps have errors: ${[...stepsWithErrors].map((i) => STEPS[i].label).join(", ")}.</p>` : null}
          </div>`
        : html`<${Body} s=${s} set=${set} err=${apiError} data=${data} framework=${framework} project=${project} />`}
    </section>
    <div class="row create-nav">
      <button type="button" class="btn" disabled=${step === 0} onClick=${() => go(step - 1)}>Back</button>
      <div class="spacer"></div>
      ${why ? html`<span class="muted" data-testid="blocker">${why}</span>` : null}
      ${current.id === "summary"
        ? html`<button type="button" class="btn primary" disabled=${busy || STEPS.some((st) => blocker(st.id, s))} onClick=${create}>${busy ? "Creating…" : "Create endpoint"}</button>`
        : html`<button type="button" class="btn primary" disabled=${!!why} onClick=${() => go(step + 1)}>Next</button>`}
    </div>
  </div>`;
}
