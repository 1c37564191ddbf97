// Hash routes: every page's address is after the `#` (`/#/endpoints/iris/monitoring?span=1h`),
// so the server serves one file for all of them and a reload or a shared link opens
// the same page. Ray's dashboard does the same.
import { useEffect, useState } from "../vendor/preact-htm.js";

export function parseHash(hash = location.hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [path, qs = ""] = raw.split("?");
  return { path: path || "/", query: Object.fromEntries(new URLSearchParams(qs)) };
}

// Match "/endpoints/:name/:tab?" against a path; returns params or null.
export function match(pattern, path) {
  const p = pattern.split("/").filter(Boolean);
  const s = path.split("/").filter(Boolean);
  const params = {};
  for (let i = 0; i < Math.max(p.length, s.length); i++) {
    const part = p[i];
    if (part === undefined) return null;
    if (part.startsWith(":")) {
      const optional = part.endsWith("?");
      const key = part.slice(1, optional ? -1 : undefined);
      if (s[i] === undefined) {
        if (!optional) return null;
        continue;
      }
      params[key] = decodeURIComponent(s[i]);
    } else if (part !== s[i]) return null;
  }
  return params;
}

export function href(path, query) {
  const qs = query ? new URLSearchParams(Object.entries(query).filter(([, v]) => v !== undefined && v !== null && v !== "")).toString() : "";
  return `#${path}${qs ? "?" + qs : ""}`;
}

export function navigate(path, query) {
  location.hash = href(path, query);
}

// Change the query of the current page without a new history entry (filters, tabs' state).
export function setQuery(patch) {
  const { path, query } = parseHash();
  const next = { ...query, ...patch };
  history.replaceState(null, "", href(path, next));
  window.dispatchEvent(new HashChangeEvent("hashchange"));
}

export function useRoute() {
  const [route, setRoute] = useState(parseHash());
  useEffect(() => {
    const on = () => setRoute(parseHash());
    window.addEventListener("hashchange", on);
    on(); // a change between the first render and this effect is not missed
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}
