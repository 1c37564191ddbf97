// Logs: the replicas' lines. While following, one Server-Sent Events stream
// (GET /endpoints/{name}/logs?follow=true&tail=&replica=, read with an EventSource): the
// last `tail` lines per replica, then each new line as it is written, appended (nothing is
// read twice; the browser reconnects by itself with Last-Event-ID, and the server then
// sends no tail again). The view sticks to the bottom unless scrolled up. Pause closes the
// stream and keeps the lines; Refresh (paused) reads the tail once; Follow starts again
// from the tail. Filter by replica (the server's), search the lines (in the page).
import { html, useEffect, useLayoutEffect, useRef, useState } from "../../../vendor/preact-htm.js";
import { get } from "../../api.js";
import { ErrorBox } from "../../ui.js";
import { epPath, pq } from "../detail_common.js";

const TAILS = [200, 1000, 5000];
const FLUSH_MS = 150; // lines arriving together are drawn together

function streamUrl(endpoint, query) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, String(v));
  return `/api/v1/${epPath(endpoint.name)}/logs?${params}`;
}

// {lines, error, state, refresh}: the lines held (oldest first, each {id, replica_id, line}),
// at most `tail` per replica seen; `state`: "connecting" | "live" | "reconnecting" | "paused".
function useLogLines(endpoint, replica, tail, follow) {
  const [view, setView] = useState({ lines: [], error: null, state: follow ? "connecting" : "paused" });
  const held = useRef([]);
  const seq = useRef(0);
  const keep = (lines) => {
    const replicas = new Set(lines.map((l) => l.replica_id)).size || 1;
    return lines.length > tail * replicas ? lines.slice(lines.length - tail * replicas) : lines;
  };
  const query = { ...pq(endpoint), tail, replica: replica || undefined };
  // One read of the tail (paused, or the reason a stream was refused).
  const readOnce = async () => {
    const page = await get(`${epPath(endpoint.name)}/logs`, query);
    held.current = (page.items || []).map((l) => ({ id: `g${++seq.current}`, replica_id: l.replica_id, line: l.line }));
    return held.current;
  };
  useEffect(() => {
    held.current = [];
    if (!follow) {
      setView((v) => ({ ...v, state: "paused" }));
      return undefined;
    }
    setView({ lines: [], error: null, state: "connecting" });
    let alive = true;
    let source = null;
    let flushTimer = null;
    let retryTimer = null;
    const flush = () => {
      flushTimer = null;
      held.current = keep(held.current);
      if (alive) setView({ lines: held.current, error: null, state: "live" });
    };
    const open = () => {
      held.current = [];
      source = new EventSource(streamUrl(endpoint, { ...query, follow: true }));
      source.onopen = () => alive && setView((v) => ({ ...v, error: null, state: "live" }));
      source.addEventListener("line", (ev) => {
        const d = JSON.parse(ev.data);
        held.current.push({ id: `s${++seq.current}`, replica_id: d.replica, line: d.line });
        if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
      });
      source.onerror = () => {
        if (!alive) return;
        if (source.readyState !== EventSource.CLOSED) {
          setView((v) => ({ ...v, state: "reconnecting" })); // the browser retries by itself
          return;
        }
        // Refused (an HTTP error): read once to show why (or the lines), and try again later.
        source = null;
        readOnce().then(
          (lines) => alive && setView({ lines, error: null, state: "reconnecting" }),
          (error) => alive && setView((v) => ({ ...v, error, state: "reconnecting" }))
        );
        retryTimer = setTimeout(() => alive && open(), 5000);
      };
    };
    open();
    return () => {
      alive = false;
      clearTimeout(flushTimer);
      clearTimeout(retryTimer);
      if (source) source.close();
    };
  }, [endpoint.name, endpoint.project, replica, tail, follow]); // eslint-disable-line
  const refresh = () =>
    readOnce().then(
      (lines) => setView({ lines, error: null, state: "paused" }),
      (error) => setView((v) => ({ ...v, error }))
    );
  return { ...view, refresh };
}

export function LogsTab({ endpoint, query, setQuery }) {
  const replica = query.replica || "";
  const tail = Number(query.tail) || 200;
  const [follow, setFollow] = useState(true);
  const [text, setText] = useState("");
  const box = useRef(null);
  const stick = useRef(true);
  const { lines: items, error, state, refresh } = useLogLines(endpoint, replica, tail, follow);
  const replicas = endpoint.replicas || [];
  const q = text.trim().toLowerCase();
  const lines = q ? items.filter((l) => l.line.toLowerCase().includes(q)) : items;
  const many = new Set(items.map((l) => l.replica_id)).size > 1;

  useLayoutEffect(() => {
    const el = box.current;
    if (el && follow && stick.current) el.scrollTop = el.scrollHeight;
  }, [items, follow, text]);
  useEffect(() => {
    if (follow) stick.current = true;
  }, [follow]);
  const onScroll = (e) => {
    const el = e.currentTarget;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 30;
  };
  const stateText = { connecting: " · connecting…", live: " · following", reconnecting: " · reconnecting…", paused: " · paused" }[state];

  return html`<div class="detail-logs">
    <div class="toolbar">
      <label>Replica <select aria-label="Replica" value=${replica} onChange=${(e) => setQuery({ replica: e.target.value || undefined })}>
        <option value="">all replicas</option>
        ${replicas.map((r) => html`<option value=${r.replica_id}>${r.replica_id} (${r.state})</option>`)}
        ${replica && !replicas.some((r) => r.replica_id === replica) ? html`<option value=${replica}>${replica}</option>` : null}
      </select></label>
      <label>Lines per replica <select aria-label="Lines per replica" value=${String(tail)} onChange=${(e) => setQuery({ tail: e.target.value })}>
        ${TAILS.map((t) => html`<option value=${String(t)}>${t}</option>`)}
      </select></label>
      <input type="search" placeholder="Search lines" aria-label="Search logs" value=${text} onInput=${(e) => setText(e.target.value)} />
      <button class="btn" onClick=${() => setFollow(!follow)}>${follow ? "Pause following" : "Follow"}</button>
      ${follow ? null : html`<button class="btn" onClick=${refresh}>Refresh</button>`}
      <span class="muted" data-testid="log-count">${q ? `${lines.length} of ${items.length} lines` : `${items.length} lines`}${stateText}</span>
    </div>
    <${ErrorBox} error=${error} />
    <div class="log" ref=${box} onScroll=${onScroll} data-testid="logs">
      ${lines.length === 0
        ? html`<span class="muted">${state === "connecting" ? "Loading…" : items.length ? "No line matches the search." : "No log line yet: replicas write here once they start."}</span>`
        : lines.map((l) => html`<div key=${l.id} class="detail-log-line">${many ? html`<span class="detail-log-replica">[${l.replica_id}]</span> ` : null}${l.line}</div>`)}
    </div>
  </div>`;
}
