// Pieces shared by the endpoint page's watching tabs (the 'detail' part of the dashboard).
import { html, useEffect, useRef, useState } from "../../vendor/preact-htm.js";
import { get } from "../api.js";

// Statuses of an endpoint that is coming up or changing (the endpoints list's Loading tab).
export const LOADING = ["pending", "initializing", "updating"];

// The API path of an endpoint (relative to /api/v1).
export const epPath = (name) => `endpoints/${encodeURIComponent(name)}`;

// The `?project=` every call about this endpoint carries.
export const pq = (endpoint) => ({ project: endpoint.project });

const KEEP_EVENTS = 5000;
const EVENT_PAGE = 500;
const KEEP_LOGS = 8;

// One endpoint's event log, shared by every watcher on the page (the frame's Progress and
// the Events tab): ids seen so far, read on with `after=` the last id, one read at a time,
// and not again within `ms` of the last one, however many watchers poll.
const eventLogs = new Map();

function eventLog(endpoint, key) {
  let log = eventLogs.get(key);
  if (!log) {
    log = { items: [], error: null, last: 0, busy: null, readAt: 0, watchers: new Set() };
    log.read = (ms) => {
      if (log.busy || Date.now() - log.readAt < ms * 0.75) return log.busy;
      log.busy = (async () => {
        try {
          for (;;) {
            // The first read takes the newest page (the history can be long); then newer ones.
            const newest = log.last === 0 ? true : undefined;
            const page = await get(`${epPath(endpoint.name)}/events`, { ...pq(endpoint), after: log.last, limit: EVENT_PAGE, newest });
            const got = (page.items || []).filter((e) => e.id > log.last);
            if (got.length) {
              log.last = got[got.length - 1].id;
              log.items = [...log.items, ...got].slice(-KEEP_EVENTS);
            }
            log.error = null;
            if (newest || (page.items || []).length < EVENT_PAGE) break;
          }
        } catch (error) {
          log.error = error;
        } finally {
          log.busy = null;
          log.readAt = Date.now();
        }
        for (const w of log.watchers) w({ items: log.items, error: log.error });
      })();
      return log.busy;
    };
    eventLogs.set(key, log);
    // Kept when nobody watches (back on the tab: only newer events are read); the least
    // recently opened endpoints' logs go past a few.
    for (const [k, old] of eventLogs) if (eventLogs.size > KEEP_LOGS && !old.watchers.size) eventLogs.delete(k);
  }
  return log;
}

// The endpoint's events, oldest first, fetched incrementally every `ms` (0: not polled).
// Returns {items, error}. A re-created endpoint of the same name is another log (its
// `created_at` is in the key).
export function useEventLog(endpoint, ms) {
  const key = `${endpoint.project}/${endpoint.name}/${endpoint.created_at}`;
  const [state, setState] = useState(() => {
    const log = eventLogs.get(key);
    return log ? { items: log.items, error: log.error } : { items: [], error: null };
  });
  useEffect(() => {
    const log = eventLog(endpoint, key);
    setState({ items: log.items, error: log.error });
    if (!ms) return undefined;
    log.watchers.add(setState);
    log.read(ms);
    const timer = setInterval(() => document.visibilityState === "visible" && log.read(ms), ms);
    return () => {
      clearInterval(timer);
      log.watchers.delete(setState);
    };
  }, [key, ms]); // eslint-disable-line
  return state;
}

// localStorage-backed state (a JSON value), for choices that outlive the page.
export function useStored(key, initial) {
  const [value, setValue] = useState(() => {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? initial : JSON.parse(raw);
    } catch {
      return initial;
    }
  });
  const set = (v) => {
    setValue(v);
    try {
      localStorage.setItem(key, JSON.stringify(v));
    } catch {
      /* storage full or refused: the choice lasts for this page only */
    }
  };
  return [value, set];
}

// A key figure: a label over a value (the overview's and the usage tab's cards).
export function Stat({ label, value, testid }) {
  return html`<div class="stat" data-testid=${testid}><div class="label">${label}</div><div class="value">${value}</div></div>`;
}

// A group of span buttons (monitoring's 15m…24h, usage's 24h…90d); the chosen one is pressed.
export function SpanButtons({ label, spans, chosen, onChoose, text = (s) => s }) {
  return html`<div class="row" role="group" aria-label=${label}>
    ${spans.map(
      (s) => html`<button class=${`btn small${s === chosen ? " primary" : ""}`} aria-pressed=${s === chosen} onClick=${() => onChoose(s)}>${text(s)}</button>`
    )}
  </div>`;
}
