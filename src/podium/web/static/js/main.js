// The dashboard's entry: asks who is logged in, draws the login form or the shell (top
// bar, project switcher, the page for the address after `#`), and re-asks on any 401.
import { html, render, useEffect, useState } from "../vendor/preact-htm.js";
import { get, onUnauthorized, post, del } from "./api.js";
import { match, parseHash, useRoute } from "./router.js";
import { SessionContext, can, checkedProject, forgetProject, storeProject, storedProject, ALL_PROJECTS } from "./session.js";
import { DialogHost, ErrorBox, Field, Spinner, ToastHost, useAction } from "./ui.js";
// [pattern, the page's module, its component]: a page's module (and what only it imports,
// such as the chart library) is fetched the first time the page is shown, so the first
// page of a visit waits for a handful of files, not for all forty (web/app.py preloads
// the start-up modules and the Endpoints page).
const ROUTES = [
  ["/endpoints", () => import("./pages/endpoints.js"), "EndpointsPage"],
  ["/new", () => import("./pages/create.js"), "CreatePage"],
  ["/endpoints/:name/:tab?", () => import("./pages/endpoint.js"), "EndpointPage"],
  ["/models/:name?", () => import("./pages/models.js"), "ModelsPage"],
  ["/jobs/:id?", () => import("./pages/jobs.js"), "JobsPage"],
  ["/tokens", () => import("./pages/tokens.js"), "TokensPage"],
  ["/secrets", () => import("./pages/secrets.js"), "SecretsPage"],
  ["/audit", () => import("./pages/audit.js"), "AuditPage"],
];

const pages = new Map(); // component name → component, once its module has loaded

function LazyPage({ load, component, ...props }) {
  const [Page, setPage] = useState(() => pages.get(component) || null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (Page) return undefined;
    let live = true;
    load().then(
      (module) => {
        pages.set(component, module[component]);
        if (live) setPage(() => module[component]);
      },
      (e) => live && setError(e)
    );
    return () => {
      live = false;
    };
  }, [component]); // eslint-disable-line
  if (error) return html`<div class="page"><${ErrorBox} error=${error} /></div>`;
  if (!Page) return html`<div class="page"><${Spinner} /></div>`;
  return html`<${Page} ...${props} />`;
}

const NAV = [
  ["/endpoints", "Endpoints", "read"],
  ["/models", "Models", "read"],
  ["/jobs", "Jobs", "invoke"],
  ["/secrets", "Secrets", "read"],
  ["/tokens", "Tokens", "admin"],
  ["/audit", "Audit", "admin"],
];

function Login({ onLogin }) {
  const [token, setToken] = useState("");
  const { run, busy, error } = useAction(async () => onLogin(await post("session", { token })));
  const submit = (e) => {
    e.preventDefault();
    run();
  };
  return html`<main class="login">
    <form class="card login-card" onSubmit=${submit}>
      <h1><span class="logo">◆</span> Podium</h1>
      <p class="muted">Log in with an API token. <code>podium up</code> printed where the admin token is kept; <code>podium tokens create</code> makes more.</p>
      <${Field} label="API token" name="token" error=${error}>
        <input type="password" name="token" autocomplete="current-password" value=${token} onInput=${(e) => setToken(e.target.value)} autofocus required />
      <//>
      ${error && !error.forField?.("token") ? html`<${ErrorBox} error=${error} />` : null}
      <button class="btn primary" type="submit" disabled=${busy}>${busy ? "Logging in…" : "Log in"}</button>
    </form>
  </main>`;
}

function NotFound() {
  return html`<div class="page"><h1>Not found</h1><p>No page at this address. <a href="#/endpoints">Endpoints</a></p></div>`;
}

function Shell({ session }) {
  const route = useRoute();
  const { whoami } = session;
  let page = html`<${NotFound} />`;
  for (const [pattern, load, component] of ROUTES) {
    const params = match(pattern, route.path);
    if (params) {
      // A new key for another endpoint, model or job (or project): the page starts afresh
      // and never shows the previous one's data or actions under the new address.
      const key = [pattern, params.name, params.id, route.query.project].map((x) => x ?? "").join("|");
      page = html`<${LazyPage} key=${key} load=${load} component=${component} params=${params} query=${route.query} />`;
      break;
    }
  }
  return html`<div class="shell">
    <header class="topbar">
      <a class="brand" href="#/endpoints"><span class="logo">◆</span> Podium</a>
      <nav class="mainnav">
        ${NAV.filter(([, , scope]) => can(whoami, scope)).map(
          ([path, label]) => html`<a href=${"#" + path} class=${route.path.startsWith(path) ? "active" : ""}>${label}</a>`
        )}
      </nav>
      <div class="spacer"></div>
      <label class="project-switcher">
        <span class="muted">Project</span>
        <select data-testid="project" value=${session.project} onChange=${(e) => session.setProject(e.target.value)}>
          <option value=${ALL_PROJECTS}>all projects</option>
          ${(session.projects || []).map((p) => html`<option value=${p.name}>${p.name}</option>`)}
        </select>
      </label>
      <span class="whoami" title=${`scopes: ${whoami.scopes.join(", ")}`}>${whoami.name}</span>
      ${session.authOn ? html`<button class="btn small" onClick=${session.logout}>Log out</button>` : null}
    </header>
    <main class="content">${page}</main>
  </div>`;
}

function App() {
  const [whoami, setWhoami] = useState(undefined); // undefined: asking; null: logged out
  const [projects, setProjects] = useState([]);
  const [project, setProjectState] = useState(ALL_PROJECTS);
  const [authOn, setAuthOn] = useState(true);

  const load = async () => {
    try {
      // Both at once (the first page waits for them). The pages draw once the stored
      // project is checked against this user's projects, so none asks for a project the
      // user cannot see.
      const [me, list] = await Promise.all([get("whoami"), get("projects").catch(() => null)]);
      const chosen = checkedProject(storedProject(), me, list);
      if (chosen !== storedProject()) storeProject(chosen);
      setProjects(list || []);
      setProjectState(chosen);
      setAuthOn(me.id !== "-"); // "-": the server runs with PODIUM_AUTH=false
      setWhoami(me);
    } catch {
      setWhoami(null);
    }
  };
  const loggedOut = () => {
    forgetProject();
    setProjectState(ALL_PROJECTS);
    setWhoami(null);
  };
  useEffect(() => {
    load();
    return onUnauthorized(loggedOut);
  }, []);

  if (whoami === undefined) return html`<div class="boot"><${Spinner} /></div>`;
  if (whoami === null) return html`<${Login} onLogin=${load} />`;
  const session = {
    whoami,
    projects,
    project,
    authOn,
    setProject: (p) => {
      storeProject(p);
      setProjectState(p);
    },
    logout: async () => {
      await del("session").catch(() => null);
      loggedOut();
    },
    // After a project is made or deleted: a choice that is gone falls back to all projects.
    reloadProjects: () =>
      get("projects").then((list) => {
        setProjects(list);
        const chosen = checkedProject(project, whoami, list);
        if (chosen !== project) {
          storeProject(chosen);
          setProjectState(chosen);
        }
      }, () => null),
  };
  return html`<${SessionContext.Provider} value=${session}>
    <${Shell} session=${session} />
    <${DialogHost} />
    <${ToastHost} />
  <//>`;
}

if (parseHash().path === "/") history.replaceState(null, "", "#/endpoints");
render(html`<${App} />`, document.getElementById("app"));
