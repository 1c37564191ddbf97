// Shared pieces of every page: data hooks, formatting, and small components.
// Pages import from here rather than re-implementing a table, a dialog or a poll.
import { html, useCallback, useEffect, useMemo, useRef, useState } from "../vendor/preact-htm.js";
import { ApiError } from "./api.js";

// ---------------------------------------------------------------- data hooks

// Load `fn()` now and again every `ms` (0: once) while the page shows; pauses while the
// tab is hidden. `deps` reload at once when they change. Returns {data, error, loading,
// reload}. A failed refresh keeps the last data and sets `error`.
// One call at a time: a tick while a call is in flight is skipped (a slow server is not
// piled on, and its answer is drawn however long it takes); `reload()` during a call
// runs once more right after it, so the newest answer wins. A change of `deps` drops
// the answer of a call made for the old ones.
export function usePoll(fn, ms, deps = []) {
  const [state, setState] = useState({ data: undefined, error: null, loading: true });
  const fnRef = useRef(fn);
  fnRef.current = fn;
  const gen = useRef(0); // bumped when deps change or the page goes: older answers are dropped
  const busy = useRef(null); // the call in flight for this generation, if any
  const again = useRef(false); // reload() was asked while a call was in flight
  const reload = useCallback(() => {
    if (busy.current) {
      again.current = true;
      return busy.current;
    }
    const mine = gen.current;
    const call = (async () => {
      try {
        const data = await fnRef.current();
        if (mine === gen.current) setState({ data, error: null, loading: false });
      } catch (error) {
        if (mine === gen.current) setState((s) => ({ data: s.data, error, loading: false }));
      } finally {
        if (mine === gen.current) {
          busy.current = null;
          if (again.current) {
            again.current = false;
            reload();
          }
        }
      }
    })();
    busy.current = call;
    return call;
  }, []);
  useEffect(() => {
    gen.current++;
    busy.current = null;
    again.current = false;
    setState((s) => ({ ...s, loading: true }));
    reload();
    if (!ms) return undefined;
    const timer = setInterval(() => document.visibilityState === "visible" && !busy.current && reload(), ms);
    return () => {
      clearInterval(timer);
      gen.current++;
      busy.current = null;
    };
  }, deps); // eslint-disable-line
  return { ...state, reload };
}

// Run an action (a button's click): {run, busy, error}. `run(...args)` returns the
// action's result, or undefined when it failed (the error is in `error`).
export function useAction(fn) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const run = useCallback(
    async (...args) => {
      setBusy(true);
      setError(null);
      try {
        return await fn(...args);
      } catch (e) {
        setError(e);
        return undefined;
      } finally {
        setBusy(false);
      }
    },
    [fn]
  );
  return { run, busy, error, setError };
}

// ---------------------------------------------------------------- formatting

export const fmt = {
  num(v, digits = 0) {
    if (v === null || v === undefined || Number.isNaN(v)) return "—";
    return Number(v).toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
  },
  ms(v) {
    if (v === null || v === undefined) return "—";
    if (v < 1) return `${v.toFixed(2)} ms`;
    if (v < 1000) return `${v.toFixed(v < 10 ? 1 : 0)} ms`;
    return `${(v / 1000).toFixed(2)} s`;
  },
  pct(v, digits = 1) {
    if (v === null || v === undefined) return "—";
    return `${(v * 100).toFixed(digits)}%`;
  },
  bytes(v) {
    if (v === null || v === undefined) return "—";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    let n = Number(v);
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  },
  // seconds → "3d 4h", "5m 2s"
  duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    let s = Math.max(0, Math.floor(seconds));
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const h = Math.floor(s / 3600);
    s -= h * 3600;
    const m = Math.floor(s / 60);
    s -= m * 60;
    if (d) return `${d}d ${h}h`;
    if (h) return `${h}h ${m}m`;
    if (m) return `${m}m ${s}s`;
    return `${s}s`;
  },
  since(iso) {
    if (!iso) return null;
    return (Date.now() - new Date(iso).getTime()) / 1000;
  },
  ago(iso) {
    if (!iso) return "—";
    return `${fmt.duration(fmt.since(iso))} ago`;
  },
  time(iso) {
    if (!iso) return "—";
    return new Date(iso).toLocaleString();
  },
  money(v) {
    if (v === null || v === undefined) return "—";
    return `$${Number(v).toFixed(v < 1 ? 3 : 2)}`;
  },
};

// ---------------------------------------------------------------- CSV

// A text that a spreadsheet would run as a formula (=, +, -, @, tab, CR first) is prefixed
// with ', as the API's own CSV does (core/record_schemas.csv_cell): names, reasons and
// labels come from users and models. Numbers are written as they are.
const FORMULA = /^[=+\-@\t\r]/;
function csvCell(v) {
  let s = v === null || v === undefined ? "" : String(v);
  if (typeof v === "string" && FORMULA.test(s)) s = "'" + s;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv(columns, rows) {
  const head = columns.map((c) => csvCell(c.label)).join(",");
  const body = rows.map((r) => columns.map((c) => csvCell(c.csv ? c.csv(r) : c.value ? c.value(r) : r[c.key])).join(","));
  return [head, ...body].join("\r\n") + "\r\n";
}

export function downloadBlob(filename, blob) {
  const url = URL.createObjectURL(blob);
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

export function downloadCsv(filename, columns, rows) {
  downloadBlob(filename, new Blob([toCsv(columns, rows)], { type: "text/csv" }));
}

// ---------------------------------------------------------------- components

// Status of an endpoint, replica, task or job as a coloured pill.
const TONE = {
  running: "ok", ready: "ok", succeeded: "ok", completed: "ok", healthy: "ok",
  pending: "wait", initializing: "wait", updating: "wait", starting: "wait", queued: "wait",
  in_progress: "wait", validating: "wait", finalizing: "wait", draining: "wait", loading: "wait",
  scaled_to_zero: "idle", paused: "idle", stopped: "idle", exited: "idle", cancelled: "idle", parked: "idle",
  failed: "bad", crashed: "bad", error: "bad", expired: "bad", unhealthy: "bad",
};
export function StatusBadge({ status, title }) {
  const s = String(status || "unknown");
  return html`<span class=${`badge tone-${TONE[s] || "idle"}`} title=${title || s}>${s.replaceAll("_", " ")}</span>`;
}

export function Spinner({ label = "Loading" }) {
  return html`<span class="spinner" role="status" aria-label=${label}></span>`;
}

// An API error (or any error) as a box; names the field when the API did.
export function ErrorBox({ error }) {
  if (!error) return null;
  const detail = error instanceof ApiError ? error.message : String(error.message || error);
  const title = error instanceof ApiError ? error.problem.title || `HTTP ${error.status}` : "Error";
  return html`<div class="error-box" role="alert"><strong>${title}</strong> ${detail}${
    error.field ? html` <code class="field-name">${error.field}</code>` : null
  }</div>`;
}

// A labelled input with its error (the API's message for this field) underneath.
// `name` is the API's field name; `error` an ApiError (its message for `name` is shown).
export function Field({ label, name, error, hint, children }) {
  const message = error instanceof ApiError && name ? error.forField(name) : null;
  return html`<label class=${`field${message ? " invalid" : ""}`} data-field=${name}>
    <span class="field-label">${label}</span>
    ${children}
    ${hint && !message ? html`<span class="field-hint">${hint}</span>` : null}
    ${message ? html`<span class="field-error" role="alert">${message}</span>` : null}
  </label>`;
}

// Tabs: [{id, label, count?}], the active id, and onSelect(id).
export function Tabs({ tabs, active, onSelect }) {
  return html`<nav class="tabs" role="tablist">
    ${tabs.map(
      (t) => html`<button
        role="tab"
        class=${t.id === active ? "tab active" : "tab"}
        aria-selected=${t.id === active}
        data-tab=${t.id}
        onClick=${() => onSelect(t.id)}
      >
        ${t.label}${t.count !== undefined ? html` <span class="count">${t.count}</span>` : null}
      </button>`
    )}
  </nav>`;
}

// `rows` in the order a Table sorted by `sort` ({key, dir}) shows them (a CSV of the view
// uses it too); empty values last; Array.prototype.sort is stable.
export function sortRows(rows, columns, sort) {
  if (!sort || !sort.key) return rows;
  const col = columns.find((c) => c.key === sort.key);
  if (!col) return rows;
  const val = col.value || ((r) => r[col.key]);
  const dir = sort.dir === "desc" ? -1 : 1;
  return [...rows].sort((a, b) => {
    const x = val(a);
    const y = val(b);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * dir;
  });
}

// A table over `rows` with sortable columns. columns: [{key, label, value?(row) (sort
// and CSV), render?(row), csv?(row), align?: "right", sortable?: false}]. Sorting is the
// component's own unless `sort`/`onSort` are given (to keep it in the URL).
export function Table({ columns, rows, rowKey = (r) => r.id ?? r.name, onRowClick, empty = "Nothing here yet.", sort, onSort, testid }) {
  const [own, setOwn] = useState(null);
  const current = sort !== undefined ? sort : own;
  const setSort = onSort || setOwn;
  const sorted = useMemo(() => sortRows(rows, columns, current), [rows, columns, current && current.key, current && current.dir]);
  const clickHead = (c) => {
    if (c.sortable === false) return;
    const dir = current && current.key === c.key && current.dir === "asc" ? "desc" : "asc";
    setSort({ key: c.key, dir });
  };
  return html`<table class="table" data-testid=${testid}>
    <thead>
      <tr>
        ${columns.map(
          (c) => html`<th
            class=${`${c.align === "right" ? "right" : ""} ${c.sortable === false ? "" : "sortable"}`}
            aria-sort=${current && current.key === c.key ? (current.dir === "asc" ? "ascending" : "descending") : "none"}
            data-col=${c.key}
            onClick=${() => clickHead(c)}
          >
            ${c.label}${current && current.key === c.key ? (current.dir === "asc" ? " ▲" : " ▼") : ""}
          </th>`
        )}
      </tr>
    </thead>
    <tbody>
      ${sorted.length === 0
        ? html`<tr><td class="empty" colspan=${columns.length}>${empty}</td></tr>`
        : sorted.map(
            (r) => html`<tr key=${rowKey(r)} class=${onRowClick ? "clickable" : ""} onClick=${onRowClick ? () => onRowClick(r) : undefined}>
              ${columns.map((c) => html`<td class=${c.align === "right" ? "right" : ""}>${c.render ? c.render(r) : c.value ? c.value(r) : r[c.key]}</td>`)}
            </tr>`
          )}
    </tbody>
  </table>`;
}

// A button that copies `text` to the clipboard.
export function CopyButton({ text, label = "Copy" }) {
  const [done, setDone] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const t = document.createElement("textarea");
      t.value = text;
      document.body.appendChild(t);
      t.select();
      document.execCommand("copy");
      t.remove();
    }
    setDone(true);
    setTimeout(() => setDone(false), 1200);
  };
  return html`<button type="button" class="btn small" onClick=${copy}>${done ? "Copied" : label}</button>`;
}

// A code block with a copy button.
export function Code({ text, lang }) {
  return html`<div class="code"><pre data-lang=${lang}><code>${text}</code></pre><${CopyButton} text=${text} /></div>`;
}

// ---------------------------------------------------------------- dialogs

// `await confirm({title, message, confirmLabel, danger})` → true/false. One dialog at a
// time, drawn by <DialogHost/> (mounted once by main.js): a second confirm() while one is
// open answers the first with false. The confirm button has the focus; Escape cancels.
let showDialog = null;
let openDialog = null; // the dialog on screen (its `resolve` is still owed an answer)
export function confirm(opts) {
  return new Promise((resolve) => {
    if (!showDialog) return resolve(window.confirm(opts.message || opts.title));
    if (openDialog) openDialog.resolve(false);
    openDialog = { ...opts, resolve };
    showDialog(openDialog);
    return undefined;
  });
}

export function DialogHost() {
  const [dialog, setDialog] = useState(null);
  const confirmButton = useRef(null);
  useEffect(() => {
    showDialog = setDialog;
    return () => (showDialog = null);
  }, []);
  const close = (answer) => {
    if (!dialog) return;
    if (openDialog === dialog) openDialog = null;
    setDialog(null);
    dialog.resolve(answer);
  };
  useEffect(() => {
    if (!dialog) return undefined;
    if (confirmButton.current) confirmButton.current.focus();
    const onKey = (e) => {
      if (e.key === "Escape") {
        e.preventDefault();
        close(false);
      }
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [dialog]);
  if (!dialog) return null;
  return html`<div class="modal-backdrop" onClick=${(e) => e.target === e.currentTarget && close(false)}>
    <div class="modal" role="dialog" aria-modal="true" aria-labelledby="dialog-title">
      <h3 id="dialog-title">${dialog.title}</h3>
      ${dialog.message ? html`<p>${dialog.message}</p>` : null}
      <div class="modal-actions">
        <button class="btn" onClick=${() => close(false)}>Cancel</button>
        <button ref=${confirmButton} class=${`btn ${dialog.danger ? "danger" : "primary"}`} data-testid="confirm" onClick=${() => close(true)}>
          ${dialog.confirmLabel || "Confirm"}
        </button>
      </div>
    </div>
  </div>`;
}

// A notice at the bottom of the page: toast("Paused iris").
let pushToast = null;
export function toast(message, tone = "ok") {
  if (pushToast) pushToast({ message, tone, id: Math.random() });
}

export function ToastHost() {
  const [items, setItems] = useState([]);
  useEffect(() => {
    pushToast = (t) => {
      setItems((xs) => [...xs, t]);
      setTimeout(() => setItems((xs) => xs.filter((x) => x.id !== t.id)), 4000);
    };
    return () => (pushToast = null);
  }, []);
  return html`<div class="toasts">${items.map((t) => html`<div key=${t.id} class=${`toast tone-${t.tone}`} role="status">${t.message}</div>`)}</div>`;
}

// A page's header: title, a line under it, and actions on the right.
export function PageHeader({ title, subtitle, children }) {
  return html`<header class="page-header">
    <div><h1>${title}</h1>${subtitle ? html`<div class="subtitle">${subtitle}</div>` : null}</div>
    <div class="actions">${children}</div>
  </header>`;
}
