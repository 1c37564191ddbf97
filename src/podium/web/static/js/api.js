// The dashboard's one way to talk to Podium: the control API under /api/v1 and the
// gateway under /endpoints (or /p/{project}/endpoints). Same origin, so the HttpOnly
// session cookie goes along; every request also carries X-CSRF-Token (the readable
// podium_csrf cookie), which the API and the gateway demand of a cookie-authenticated
// call. An answer that is not 2xx becomes an ApiError carrying the problem+json body:
// its `field` and `errors` let a form put each message next to the input it names.

export const API = "/api/v1";

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
    this.field = problem.field || null;
    // [{field, message}]: every invalid field (a 422 lists them all)
    this.errors = problem.errors || (problem.field ? [{ field: problem.field, message: this.message }] : []);
  }

  // The message for one field ("spec.scaling.max_replicas" matches "scaling.max_replicas"
  // and "max_replicas" too), or null.
  forField(name) {
    const hit = this.errors.find(
      (e) => e.field === name || (e.field && (e.field.endsWith("." + name) || name.endsWith("." + e.field)))
    );
    return hit ? hit.message : null;
  }
}

export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)podium_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

// Listeners told when any call answers 401 (the session ended): main.js shows the login.
const unauthorized = new Set();
export function onUnauthorized(fn) {
  unauthorized.add(fn);
  return () => unauthorized.delete(fn);
}

function withQuery(path, query) {
  if (!query) return path;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === "") continue;
    if (Array.isArray(v)) v.forEach((x) => q.append(k, String(x)));
    else q.append(k, String(v));
  }
  const s = q.toString();
  return s ? `${path}${path.includes("?") ? "&" : "?"}${s}` : path;
}

// fetch() with Podium's headers. `path` is absolute ("/endpoints/x/…") or relative to
// /api/v1 ("endpoints"). Returns the Response; throws ApiError when it is not ok.
export async function request(method, path, { body, query, headers, signal, raw } = {}) {
  const url = withQuery(path.startsWith("/") ? path : `${API}/${path}`, query);
  const h = { "X-CSRF-Token": csrfToken(), ...(headers || {}) };
  let payload = body;
  if (body !== undefined && !(body instanceof FormData) && !(body instanceof Blob) && typeof body !== "string") {
    payload = JSON.stringify(body);
    h["Content-Type"] = "application/json";
  }
  const res = await fetch(url, { method, headers: h, body: payload, signal, credentials: "same-origin" });
  if (!res.ok && !raw) throw await toError(res);
  return res;
}

export async function toError(res) {
  let problem = {};
  try {
    problem = await res.json();
  } catch {
    problem = { title: res.statusText };
  }
  const err = new ApiError(res.status, problem);
  if (res.status === 401) unauthorized.forEach((fn) => fn(err));
  return err;
}

// JSON in, JSON out (null for a 204).
export async function api(method, path, opts = {}) {
  const res = await request(method, path, opts);
  if (res.status === 204) return null;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const get = (path, query, opts = {}) => api("GET", path, { ...opts, query });
export const post = (path, body, opts = {}) => api("POST", path, { ...opts, body });
export const put = (path, body, opts = {}) => api("PUT", path, { ...opts, body });
export const patch = (path, body, opts = {}) => api("PATCH", path, { ...opts, body });
export const del = (path, opts = {}) => api("DELETE", path, opts);

// The gateway URL of an endpoint (what curl and the SDKs call), for a project or not.
export function endpointUrl(name, project) {
  const base = project && project !== "default" ? `/p/${encodeURIComponent(project)}/endpoints` : "/endpoints";
  return `${location.origin}${base}/${encodeURIComponent(name)}`;
}

// Upload with progress (fetch has no upload progress): XMLHttpRequest, same headers.
export function upload(method, path, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(method, path.startsWith("/") ? path : `${API}/${path}`);
    xhr.setRequestHeader("X-CSRF-Token", csrfToken());
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let data = null;
      try {
        data = xhr.responseText ? JSON.parse(xhr.responseText) : null;
      } catch {
        data = { title: xhr.statusText };
      }
      if (xhr.status >= 200 && xhr.status < 300) return resolve(data);
      const err = new ApiError(xhr.status, data || {});
      if (xhr.status === 401) unauthorized.forEach((fn) => fn(err)); // as request() does
      return reject(err);
    };
    xhr.onerror = () => reject(new ApiError(0, { title: "network error", detail: "the upload did not reach Podium" }));
    xhr.send(body);
  });
}
