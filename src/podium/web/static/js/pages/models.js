// The Models page: #/models lists the repository's models (GET /api/v1/models, polled
// every 5 s; each version carries `used_by`, the endpoints whose revision serves it), and
// #/models/NAME?project=P shows one model's versions. Both upload a new version (a file,
// an archive, or a folder packed in the browser as a .tar) with a progress bar.
import { html, useRef, useState } from "../../vendor/preact-htm.js";
import { del, get, upload } from "../api.js";
import { href, navigate } from "../router.js";
import { can, useSession } from "../session.js";
import { CopyButton, ErrorBox, Field, PageHeader, Spinner, Table, confirm, fmt, toast, usePoll } from "../ui.js";
import { deployProjects, tarFolder, unplacedError } from "./list_common.js";

function projectQuery(project) {
  return project && project !== "default" ? { project } : undefined;
}

function modelHref(m) {
  return href(`/models/${encodeURIComponent(m.name)}`, projectQuery(m.project));
}

function endpointLinks(names, project) {
  if (!names || !names.length) return html`<span class="muted">—</span>`;
  return html`<span class="used-by">${names.map(
    (n, i) => html`${i ? ", " : ""}<a href=${href(`/endpoints/${encodeURIComponent(n)}`, projectQuery(project))}>${n}</a>`
  )}</span>`;
}

function latestOf(m) {
  return m.versions.find((v) => v.version === m.latest) || m.versions[m.versions.length - 1] || {};
}

function usedBy(m) {
  return [...new Set(m.versions.flatMap((v) => v.used_by || []))].sort();
}

// ---------------------------------------------------------------- upload

// Pushes one version of `fixedName` (or of the name typed in) into `project`; with no
// `project` (the "all projects" view) the form picks one among `choices`, the projects
// the token may deploy to.
function Upload({ fixedName, project: fixedProject, choices, onDone }) {
  const [name, setName] = useState(fixedName || "");
  const [choice, setChosen] = useState("");
  // the list may grow while GET /projects answers: keep a valid pick, "default" first
  const chosen = choices ? (choices.includes(choice) ? choice : choices.includes("default") ? "default" : choices[0] || "") : "";
  const project = fixedProject || chosen || undefined;
  const [framework, setFramework] = useState("");
  const [picked, setPicked] = useState(null); // {blob, name, what}
  const [progress, setProgress] = useState(null); // 0..1 while sending
  const [state, setState] = useState("idle"); // idle | sending | processing | done
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const fileRef = useRef(null);
  const folderRef = useRef(null);

  const pickFile = (e) => {
    const f = e.target.files && e.target.files[0];
    if (folderRef.current) folderRef.current.value = "";
    setError(null);
    setPicked(f ? { blob: f, name: f.name, what: `${f.name} (${fmt.bytes(f.size)})` } : null);
  };
  const pickFolder = (e) => {
    if (fileRef.current) fileRef.current.value = "";
    setError(null);
    try {
      const files = e.target.files;
      if (!files || !files.length) return setPicked(null);
      const t = tarFolder(files);
      setPicked({ blob: t.blob, name: t.name, what: `folder ${t.name.replace(/\.tar$/, "")}: ${t.count} files, packed as ${t.name} (${fmt.bytes(t.blob.size)})` });
    } catch (err) {
      setPicked(null);
      setError(err);
    }
  };

  const send = async (e) => {
    e.preventDefault();
    if (!picked) return setError(new Error("pick a file, an archive or a folder first"));
    setError(null);
    setResult(null);
    setState("sending");
    setProgress(0);
    const q = new URLSearchParams({ filename: picked.name });
    if (project && project !== "default") q.set("project", project);
    if (framework.trim()) q.set("framework", framework.trim());
    try {
      const v = await upload("POST", `models/${encodeURIComponent(name.trim())}/versions?${q}`, picked.blob, (p) => {
        setProgress(p);
        if (p >= 1) setState("processing");
      });
      setProgress(1);
      setState("done");
      setResult(v);
      toast(v.created ? `Pushed ${v.name} v${v.version}` : `${v.name} v${v.version} already holds these bytes`);
      if (onDone) onDone(v);
    } catch (err) {
      setState("idle");
      setProgress(null);
      setError(err);
    }
  };

  const busy = state === "sending" || state === "processing";
  const pct = progress === null ? 0 : Math.round(progress * 100);
  return html`<form class="card model-upload" onSubmit=${send} data-testid="model-upload">
    <h2>${fixedName ? "Upload a new version" : "Upload a model"}</h2>
    <p class="muted">
      ${fixedProject ? html`Into project <strong>${fixedProject}</strong>. ` : null}Podium unpacks and hashes it; the same bytes as the latest version make no new version.
    </p>
    <div class="upload-grid">
      ${fixedProject
        ? null
        : html`<${Field} label="Project" name="project" error=${error} hint="the projects this token may deploy to">
            <select name="project" value=${chosen} onChange=${(e) => setChosen(e.target.value)}>
              ${(choices || []).map((p) => html`<option value=${p}>${p}</option>`)}
            </select>
          <//>`}
      ${fixedName
        ? null
        : html`<${Field} label="Model name" name="name" error=${error} hint="a new name makes a new model; an existing one gets a new version">
            <input name="name" value=${name} onInput=${(e) => setName(e.target.value)} required />
          <//>`}
      <${Field} label="Framework (optional)" name="framework" error=${error} hint="guessed from the files when empty: sklearn, onnx, python, …">
        <input name="framework" value=${framework} onInput=${(e) => setFramework(e.target.value)} />
      <//>
      <${Field} label="Model file or archive" name="filename" error=${error} hint="one file, or .zip .tar .tar.gz .tgz">
        <input type="file" ref=${fileRef} onChange=${pickFile} />
      <//>
      <${Field} label="Model folder" name="folder" hint="packed here as an uncompressed .tar, then sent">
        <input type="file" ref=${folderRef} webkitdirectory=${true} multiple onChange=${pickFolder} />
      <//>
    </div>
    ${picked ? html`<p class="muted" data-testid="upload-picked">${picked.what}</p>` : null}
    ${state !== "idle" || progress !== null
      ? html`<div class="upload-progress">
          <div class="progress" role="progressbar" aria-label="Upload progress" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${pct}>
            <div style=${{ width: `${pct}%` }}></div>
          </div>
          <span data-testid="upload-status">${
            state === "sending"
              ? `Uploading… ${pct}%`
              : state === "processing"
                ? "Uploaded; Podium is unpacking and hashing it…"
                : state === "done" && result
                  ? `Done: ${result.ref} (${fmt.bytes(result.size_bytes)}, sha256 ${result.sha256.slice(0, 12)})${result.created ? "" : " — the latest version already held these bytes"}`
                  : ""
          }</span>
        </div>`
      : null}
    ${unplacedError(error, [...(fixedName ? [] : ["name"]), ...(fixedProject ? [] : ["project"]), "framework", "filename"])
      ? html`<${ErrorBox} error=${error} />`
      : null}
    <div class="row">
      <button class="btn primary" type="submit" disabled=${busy || !picked || !name.trim() || !project}>${busy ? "Uploading…" : "Upload"}</button>
      ${result && !fixedName
        ? html`<a href=${modelHref({ name: result.name, project: result.project })}>Open ${result.name}</a>`
        : null}
    </div>
  </form>`;
}

// ---------------------------------------------------------------- the list

const LIST_COLUMNS = [
  { key: "name", label: "Model", value: (m) => m.name, render: (m) => html`<a href=${modelHref(m)}>${m.name}</a>` },
  { key: "project", label: "Project", value: (m) => m.project },
  { key: "latest", label: "Latest version", align: "right", value: (m) => m.latest, render: (m) => `v${m.latest}` },
  { key: "framework", label: "Framework", value: (m) => latestOf(m).framework || null, render: (m) => latestOf(m).framework || "—" },
  { key: "size", label: "Size", align: "right", value: (m) => latestOf(m).size_bytes, render: (m) => fmt.bytes(latestOf(m).size_bytes) },
  { key: "versions", label: "Versions", align: "right", value: (m) => m.versions.length },
  { key: "created", label: "Created", value: (m) => latestOf(m).created_at, render: (m) => html`<span title=${fmt.time(latestOf(m).created_at)}>${fmt.ago(latestOf(m).created_at)}</span>` },
  { key: "used", label: "Used by", value: (m) => usedBy(m).join(", ") || null, render: (m) => endpointLinks(usedBy(m), m.project) },
];

function ModelList() {
  const session = useSession();
  const project = session.project || undefined;
  const { data, error, reload } = usePoll(() => get("models", { project }), 5000, [project]);
  const [q, setQ] = useState("");
  // in "all projects" the form offers the projects this token may deploy to (none: no form)
  const choices = project ? null : deployProjects(session.whoami, session.projects);
  const canPush = project ? can(session.whoami, "deploy", project) : choices.length > 0;
  const rows = data ? data.filter((m) => m.name.toLowerCase().includes(q.trim().toLowerCase())) : [];
  return html`<div class="page list-page">
    <${PageHeader} title="Models" subtitle=${project ? `project ${project}` : "all projects"} />
    ${error ? html`<${ErrorBox} error=${error} />` : null}
    ${!data && !error ? html`<${Spinner} />` : null}
    ${data
      ? html`<div class="toolbar">
            <input type="search" aria-label="Search models" placeholder="Search models" value=${q} onInput=${(e) => setQ(e.target.value)} />
            <span class="muted">${rows.length} of ${data.length} models</span>
          </div>
          <${Table}
            testid="models-table"
            columns=${LIST_COLUMNS}
            rows=${rows}
            rowKey=${(m) => m.key || `${m.project}.${m.name}`}
            empty=${data.length
              ? "No model matches."
              : html`No model yet. Upload one below, or from a shell: <code>podium models push ./model --name NAME</code>`}
          />`
      : null}
    ${canPush ? html`<${Upload} key=${project || ""} project=${project} choices=${choices} onDone=${reload} />` : null}
  </div>`;
}

// ---------------------------------------------------------------- one model

function ModelDetail({ name, project }) {
  const session = useSession();
  const { data: model, error, reload } = usePoll(() => get(`models/${encodeURIComponent(name)}`, { project }), 5000, [name, project]);
  const [actionError, setActionError] = useState(null);
  const canDelete = can(session.whoami, "deploy", project || "default");

  const deleteVersion = async (v) => {
    const ok = await confirm({
      title: `Delete ${name} v${v.version}?`,
      message: "Its files are removed. Podium refuses while an endpoint serves this version.",
      confirmLabel: "Delete version",
      danger: true,
    });
    if (!ok) return;
    setActionError(null);
    try {
      await del(`models/${encodeURIComponent(name)}/versions/${v.version}`, { query: { project } });
      toast(`Deleted ${name} v${v.version}`);
      if (model && model.versions.length === 1) navigate("/models");
      else reload();
    } catch (err) {
      setActionError(err);
    }
  };
  const deleteModel = async () => {
    const ok = await confirm({
      title: `Delete the model ${name}?`,
      message: `All ${model.versions.length} version(s) and their files are removed. Podium refuses while an endpoint serves any of them.`,
      confirmLabel: "Delete model",
      danger: true,
    });
    if (!ok) return;
    setActionError(null);
    try {
      await del(`models/${encodeURIComponent(name)}`, { query: { project } });
      toast(`Deleted ${name}`);
      navigate("/models");
    } catch (err) {
      setActionError(err);
    }
  };

  if (!model && error) return html`<div class="page"><p><a href="#/models">← Models</a></p><${ErrorBox} error=${error} /></div>`;
  if (!model) return html`<div class="page"><${Spinner} /></div>`;

  const columns = [
    { key: "version", label: "Version", align: "right", value: (v) => v.version, render: (v) => html`<span>v${v.version}</span>${v.version === model.latest ? html` <span class="badge tone-ok">latest</span>` : null}` },
    { key: "size", label: "Size", align: "right", value: (v) => v.size_bytes, render: (v) => html`<span title=${`${v.size_bytes} bytes, ${v.files} file(s)`}>${fmt.bytes(v.size_bytes)}</span>` },
    { key: "files", label: "Files", align: "right", value: (v) => v.files },
    {
      key: "digest",
      label: "Digest",
      value: (v) => v.sha256,
      render: (v) => html`<span class="digest"><code title=${`sha256:${v.sha256}`}>${v.sha256.slice(0, 12)}</code><${CopyButton} text=${v.sha256} /></span>`,
    },
    { key: "framework", label: "Framework", value: (v) => v.framework || null, render: (v) => v.framework || "—" },
    { key: "created", label: "Created", value: (v) => v.created_at, render: (v) => html`<span title=${fmt.time(v.created_at)}>${fmt.ago(v.created_at)}</span>` },
    { key: "source", label: "Source", value: (v) => v.source, render: (v) => html`<code>${v.source}</code>` },
    { key: "used", label: "Used by", value: (v) => (v.used_by || []).join(", ") || null, render: (v) => endpointLinks(v.used_by, model.project) },
  ];
  if (canDelete)
    columns.push({
      key: "actions",
      label: "",
      sortable: false,
      render: (v) => html`<button class="btn small danger" aria-label=${`Delete version ${v.version}`} onClick=${() => deleteVersion(v)}>Delete</button>`,
    });

  return html`<div class="page list-page">
    <p class="crumbs"><a href="#/models">← Models</a></p>
    <${PageHeader}
      title=${model.name}
      subtitle=${`project ${model.project} · ${model.versions.length} version(s) · latest v${model.latest}`}
    >
      ${canDelete ? html`<button class="btn danger" onClick=${deleteModel}>Delete model</button>` : null}
    <//>
    ${error ? html`<${ErrorBox} error=${error} />` : null}
    ${actionError ? html`<${ErrorBox} error=${actionError} />` : null}
    <${Table} testid="versions-table" columns=${columns} rows=${[...model.versions].sort((a, b) => b.version - a.version)} rowKey=${(v) => v.version} />
    ${can(session.whoami, "deploy", project || "default") ? html`<${Upload} fixedName=${model.name} project=${model.project} onDone=${reload} />` : null}
  </div>`;
}

export function ModelsPage({ params, query }) {
  if (params.name) return html`<${ModelDetail} name=${params.name} project=${query.project || undefined} />`;
  return html`<${ModelList} />`;
}
