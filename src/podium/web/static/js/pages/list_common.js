// Helpers shared by the Endpoints and Models pages (the 'list' part of the dashboard).
import { can } from "../session.js";

// The projects `whoami` may deploy to: its own list when the token is bound to projects,
// else every project the server knows (GET /projects), "default" included.
export function deployProjects(whoami, projects) {
  if (!can(whoami, "deploy")) return [];
  const names = whoami.projects ? [...whoami.projects] : (projects || []).map((p) => p.name);
  if (!whoami.projects && !names.includes("default")) names.unshift("default");
  return names.filter((p) => can(whoami, "deploy", p));
}

// The error to show in an ErrorBox, unless every message it carries is already shown
// under one of the form's `fields` (a Field shows `error.forField(name)`): null then.
// Not an API error, or one naming no field (or a field the form does not show): shown.
export function unplacedError(error, fields) {
  if (!error) return null;
  if (!(error.errors && error.errors.length && error.forField)) return error;
  const placed = (e) => fields.some((f) => e.field && (e.field === f || e.field.endsWith("." + f) || f.endsWith("." + e.field)));
  return error.errors.every(placed) ? null : error;
}

// "2026-12-05T09-30-00" for file names.
export function stamp(date = new Date()) {
  const p = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${p(date.getMonth() + 1)}-${p(date.getDate())}T${p(date.getHours())}-${p(date.getMinutes())}-${p(date.getSeconds())}`;
}

// "KEY=VALUE, K2=V2" → [[KEY, VALUE], …]; a term without "=" matches the key alone.
export function parseLabels(text) {
  return String(text || "")
    .split(/[,\s]+/)
    .filter(Boolean)
    .map((term) => {
      const i = term.indexOf("=");
      return i < 0 ? [term, null] : [term.slice(0, i), term.slice(i + 1)];
    });
}

export function matchLabels(labels, wanted) {
  const have = labels || {};
  return wanted.every(([k, v]) => Object.prototype.hasOwnProperty.call(have, k) && (v === null || String(have[k]) === v));
}

// ---------------------------------------------------------------- a tar archive in the browser

// The API takes one body per version (a file, or a .zip/.tar/.tar.gz/.tgz archive), so a
// folder picked with <input webkitdirectory> is packed here as an uncompressed POSIX tar
// archive. The Blob is made of the picked File objects themselves: nothing is read into
// memory before the upload streams it.
//
// ustar's header holds a name of 100 bytes (plus a 155-byte prefix split at a "/") and a
// size of 11 octal digits (8 GiB - 1). Past those limits an entry is preceded by a POSIX
// PAX extended header ("x") carrying `path=` and/or `size=` (POSIX.1-2001, read by
// Python's tarfile, which the server unpacks with); a size past 8 GiB is also written in
// the ustar field in GNU base-256, so a reader that skips PAX still gets it right.
const enc = new TextEncoder();
const USTAR_MAX_SIZE = 8 ** 11 - 1; // 8 GiB - 1
const MAX_COMPONENT_BYTES = 255; // the server's limit for one file or folder name

function octal(n, width) {
  return n.toString(8).padStart(width - 1, "0") + "\0";
}

// A 12-byte numeric field: octal when it fits, else GNU base-256 (0x80, big-endian).
function numberField(n) {
  if (n <= USTAR_MAX_SIZE) return enc.encode(octal(n, 12));
  const f = new Uint8Array(12);
  f[0] = 0x80;
  let v = BigInt(n);
  for (let i = 11; i > 0; i--) {
    f[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return f;
}

// [prefix, name] for ustar, or null when the path cannot be split into ≤155 + ≤100 bytes.
function ustarSplit(path) {
  if (enc.encode(path).length <= 100) return ["", path];
  for (let i = path.lastIndexOf("/"); i > 0; i = path.lastIndexOf("/", i - 1)) {
    if (enc.encode(path.slice(i + 1)).length <= 100 && enc.encode(path.slice(0, i)).length <= 155) {
      return [path.slice(0, i), path.slice(i + 1)];
    }
  }
  return null;
}

// An ASCII stand-in of at most `width` bytes for the ustar name field of an entry whose
// real path is in a PAX record (readers that know PAX never use it).
function fallbackName(path, width) {
  const ascii = path.replace(/[^\x20-\x7e]/g, "_");
  return ascii.length <= width ? ascii : ascii.slice(ascii.length - width);
}

function block(name, prefix, size, mtime, type) {
  const h = new Uint8Array(512);
  const put = (bytes, offset) => h.set(typeof bytes === "string" ? enc.encode(bytes) : bytes, offset);
  put(name, 0);
  put("0000644\0", 100); // mode
  put("0000000\0", 108); // uid
  put("0000000\0", 116); // gid
  put(numberField(size), 124);
  put(octal(Math.max(0, Math.floor(mtime / 1000)), 12), 136);
  put("        ", 148); // checksum: spaces while it is computed
  put(type, 156);
  put("ustar\0", 257);
  put("00", 263);
  put(prefix, 345);
  let sum = 0;
  for (const b of h) sum += b;
  put(octal(sum, 7) + " ", 148);
  return h;
}

// One PAX record: "LEN key=value\n", LEN counting its own digits.
function paxRecord(key, value) {
  const body = enc.encode(` ${key}=${value}\n`).length;
  let len = body + 1;
  while (len !== body + String(len).length) len = body + String(len).length;
  return `${len} ${key}=${value}\n`;
}

// The blocks that precede one file's bytes: [PAX header + its data,] ustar header.
// Throws (with the reason) only for what no tar reader on the server would take.
export function entryHeaders(path, size, mtime) {
  for (const part of path.split("/")) {
    if (enc.encode(part).length > MAX_COMPONENT_BYTES)
      throw new Error(`"${part}" is a name of ${enc.encode(part).length} bytes; Podium takes file and folder names of at most ${MAX_COMPONENT_BYTES} bytes (UTF-8)`);
  }
  const split = ustarSplit(path);
  const records = [];
  if (!split) records.push(paxRecord("path", path));
  if (size > USTAR_MAX_SIZE) records.push(paxRecord("size", String(size)));
  const [prefix, name] = split || ["", fallbackName(path, 100)];
  const out = [];
  if (records.length) {
    const data = enc.encode(records.join(""));
    out.push(block(fallbackName(`PaxHeaders/${name}`, 100), "", data.length, mtime, "x"));
    const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
    padded.set(data);
    out.push(padded);
  }
  out.push(block(name, prefix, size, mtime, "0"));
  return out;
}

// files: File objects from a directory input (webkitRelativePath "folder/a/b.bin").
// Returns {blob, name: "folder.tar", count}.
export function tarFolder(files) {
  const list = Array.from(files).filter((f) => f.webkitRelativePath || f.name);
  if (!list.length) throw new Error("the folder is empty");
  const root = (list[0].webkitRelativePath || list[0].name).split("/")[0] || "model";
  const parts = [];
  for (const f of list) {
    // paths inside the archive are relative to the picked folder
    const rel = (f.webkitRelativePath || f.name).split("/").slice(1).join("/") || f.name;
    parts.push(...entryHeaders(rel, f.size, f.lastModified || Date.now()), f);
    const pad = (512 - (f.size % 512)) % 512;
    if (pad) parts.push(new Uint8Array(pad));
  }
  parts.push(new Uint8Array(1024)); // two zero blocks end the archive
  return { blob: new Blob(parts, { type: "application/x-tar" }), name: `${root}.tar`, count: list.length };
}
