// Who is logged in, what they may do, and which project the pages show.
// `whoami` is GET /api/v1/whoami: {id, name, scopes (implied included), projects|null}.
// Buttons a user may not use are not drawn (`can`); the API refuses anyway.
import { createContext, useContext } from "../vendor/preact-htm.js";

export const SessionContext = createContext(null);

export function useSession() {
  return useContext(SessionContext);
}

// Whether `whoami` grants `scope` ("read" | "invoke" | "deploy" | "admin") in `project`
// (any project the token covers when project is omitted).
export function can(whoami, scope, project) {
  if (!whoami) return false;
  if (!whoami.scopes.includes(scope) && !whoami.scopes.includes("admin")) return false;
  if (project && whoami.projects && !whoami.projects.includes(project)) return false;
  return true;
}

const PROJECT_KEY = "podium.project";
export const ALL_PROJECTS = "";

export function storedProject() {
  return localStorage.getItem(PROJECT_KEY) || ALL_PROJECTS;
}

export function storeProject(name) {
  localStorage.setItem(PROJECT_KEY, name || ALL_PROJECTS);
}

// The project to show for this user: the stored choice if the user may see it (it is in
// `projects`, GET /projects for this token, and in the token's own projects), else all
// projects. A choice left by another user of this browser is not kept.
export function checkedProject(stored, whoami, projects) {
  if (!stored) return ALL_PROJECTS;
  if (projects && !projects.some((p) => p.name === stored)) return ALL_PROJECTS;
  if (whoami && whoami.projects && !whoami.projects.includes(stored)) return ALL_PROJECTS;
  return stored;
}

// At logout or when the session ends: the next user starts from all projects.
export function forgetProject() {
  localStorage.removeItem(PROJECT_KEY);
}
