// Reprise's web UI: plain DOM code over the admin JSON API, no framework and no build step.
// Data is only ever written as text (never as HTML), so nothing a guest returns can run here.
// The admin token lives in sessionStorage: asked once per browser session, never in a URL.

const TOKEN_KEY = "reprise.token";
const REFRESH_MS = 2000;
const PAGE_SIZE = 25;
const STATUSES = ["ENQUEUED", "PENDING", "SUCCESS", "ERROR", "CANCELLED",
  "MAX_RECOVERY_ATTEMPTS_EXCEEDED", "PAUSED"];
const ACTIVE = new Set(["ENQUEUED", "PENDING", "PAUSED"]);
const MOVABLE = new Set(["ENQUEUED", "PENDING"]);
const RESUMABLE = new Set(["CANCELLED", "ERROR", "MAX_RECOVERY_ATTEMPTS_EXCEEDED", "PAUSED"]);

const app = document.getElementById("app");
let refreshTimer = null;
let renderCount = 0;

// ---- small DOM helpers ------------------------------------------------------------------

/** An element with attributes (`text` sets its text, `on*` adds listeners) and children. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function time(ms) {
  if (ms === null || ms === undefined) return "—";
  return new Date(ms).toLocaleString(undefined, { hour12: false });
}

function duration(ms) {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
}

function json(value) {
  return JSON.stringify(value, null, 2);
}

function badge(status) {
  return el("span", { class: `badge s-${status.toLowerCase()}`, "data-status": status, text: status });
}

/** A version by its first 12 hex digits; the whole digest is in the tooltip. */
function digestTag(digest) {
  if (!digest) return el("span", { class: "muted", text: "—" });
  return el("span", { class: "mono", title: digest, text: String(digest).slice(0, 12) });
}

function size(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1048576) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1048576).toFixed(1)} MiB`;
}

function workflowLink(id) {
  return el("a", { href: `#/workflows/${encodeURIComponent(id)}`, class: "mono", text: id });
}

function section(title, ...children) {
  return el("section", { class: "panel" }, el("h2", { text: title }), ...children);
}

// ---- the API ------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, message, body = null) {
    super(message);
    this.status = status;
    // A refused upgrade (409) answers with its verdict, not an error message.
    this.body = body;
  }
}

/**
 * Keeps integers JavaScript's numbers cannot hold (beyond 2^53) exactly as the server sent
 * them: parsed as raw JSON, which JSON.stringify writes back digit for digit.
 */
function exactIntegers(_key, value, context) {
  if (typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source) && JSON.rawJSON) {
    return JSON.rawJSON(context.source);
  }
  return value;
}

/** Calls the API with the session's token; a 401 forgets the token and shows the login form. */
async function api(path, options = {}) {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = `Bearer ${token}`;
  // The server takes changes only as JSON, body or not.
  if (options.body !== undefined || (options.method || "GET") !== "GET") headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch (err) {
    throw new ApiFailure(0, `cannot reach the server: ${err.message}`);
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text, exactIntegers) : null;
  } catch {
    throw new ApiFailure(response.status, `the server sent something that is not JSON (HTTP ${response.status})`);
  }
  if (response.status === 401 && !options.probe) {
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin("The token was refused or has changed: sign in again.");
    throw new ApiFailure(401, "unauthorized");
  }
  if (!response.ok) {
    throw new ApiFailure(response.status, (body && body.error) || `HTTP ${response.status}`, body);
  }
  return body;
}

// ---- login --------------------------------------------------------------------------------

function showLogin(message) {
  stopRefresh();
  document.getElementById("nav").hidden = true;
  const input = el("input", {
    id: "token", type: "password", autocomplete: "current-password", required: true,
    placeholder: "admin token", "aria-label": "Admin token",
  });
  const error = el("p", { id: "login-error", class: "error", text: message || "" });
  const form = el("form", { id: "login", class: "panel login", onsubmit: async (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, input.value);
    try {
      await api("/counts", { probe: true });
      route();
    } catch (err) {
      sessionStorage.removeItem(TOKEN_KEY);
      error.textContent = err.status === 401 ? "That token was refused." : err.message;
    }
  } },
  el("h1", { text: "Sign in to Reprise" }),
  el("p", { class: "muted", text: "Enter the admin token this server was started with ([server] token or REPRISE_TOKEN). It is kept only for this browser session." }),
  // A password form needs a username for password managers and screen readers: the token's.
  el("input", { type: "text", name: "username", autocomplete: "username", value: "reprise admin", hidden: true }),
  input, el("button", { type: "submit", id: "sign-in", text: "Sign in" }), error);
  app.replaceChildren(form);
  input.focus();
}

/** Whether the API answers with the stored token (or without one, when the server has none). */
async function signedIn() {
  if (!sessionStorage.getItem(TOKEN_KEY)) {
    // /healthz is open: it says whether a token is needed, so no request is refused to find out.
    const health = await fetch("/healthz", { headers: { Accept: "application/json" } }).then((r) => r.json());
    if (health.token_required) return false;
  }
  try {
    await api("/counts", { probe: true });
    return true;
  } catch (err) {
    if (err.status === 401) return false;
    throw err;
  }
}

// ---- routing and live refresh ---------------------------------------------------------------

function stopRefresh() {
  if (refreshTimer !== null) clearInterval(refreshTimer);
  refreshTimer = null;
}

/** Renders now and again every REFRESH_MS while the page stays the same and visible. */
function live(render) {
  stopRefresh();
  const mine = ++renderCount;
  const tick = async () => {
    if (mine !== renderCount || document.hidden) return;
    try {
      await render();
      setStale(false);
    } catch (err) {
      if (err.status !== 401) setStale(err.message);
    }
  };
  tick();
  refreshTimer = setInterval(tick, REFRESH_MS);
}

function setStale(message) {
  const note = document.getElementById("live");
  if (!note) return;
  note.textContent = message ? `not updating: ${message}` : `live · updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`;
  note.classList.toggle("error", Boolean(message));
}

function liveNote() {
  return el("span", { id: "live", class: "muted live", text: "loading…" });
}

function parseHash() {
  const hash = location.hash.replace(/^#\/?/, "");
  const [path, query] = hash.split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(query || "") };
}

async function route() {
  let ok;
  try {
    ok = await signedIn();
  } catch (err) {
    app.replaceChildren(el("p", { class: "error", text: err.message }));
    return;
  }
  if (!ok) return showLogin();
  document.getElementById("nav").hidden = false;
  const { parts, query } = parseHash();
  const page = parts[0] || "workflows";
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("current", link.dataset.nav === page);
  }
  if (page === "workflows" && parts[1]) return workflowPage(parts[1]);
  if (page === "queues") return queuesPage();
  if (page === "versions") return versionsPage();
  return workflowsPage(query);
}

// ---- the workflows list --------------------------------------------------------------------

const FILTERS = ["status", "name", "queue", "instance", "id", "created_after", "created_before"];

function workflowsPage(query) {
  const offset = Number(query.get("offset") || 0);
  const field = (name, label, input) => el("label", {}, el("span", { text: label }), input);
  const text = (name) => el("input", { name, value: query.get(name) || "", autocomplete: "off" });
  const when = (name) => {
    const ms = Number(query.get(name));
    const value = ms ? new Date(ms - new Date(ms).getTimezoneOffset() * 60000).toISOString().slice(0, 16) : "";
    return el("input", { name, type: "datetime-local", value });
  };
  const status = el("select", { name: "status" }, el("option", { value: "", text: "any" }),
    STATUSES.map((s) => el("option", { value: s, text: s, selected: query.get("status") === s })));
  const form = el("form", { id: "filters", class: "filters", onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    for (const [key, value] of new FormData(form)) {
      if (!value) continue;
      next.set(key, key.startsWith("created_") ? String(new Date(value).getTime()) : value);
    }
    location.hash = `#/workflows?${next}`;
  } },
  field("status", "Status", status), field("name", "Name", text("name")),
  field("queue", "Queue", text("queue")), field("instance", "Instance", text("instance")),
  field("id", "Id contains", text("id")), field("created_after", "Created after", when("created_after")),
  field("created_before", "Created before", when("created_before")),
  el("div", { class: "buttons" },
    el("button", { type: "submit", id: "apply", text: "Apply" }),
    el("a", { href: "#/workflows", class: "button", text: "Clear" })));

  const counts = el("div", { id: "counts", class: "counts" });
  const body = el("tbody", { id: "workflows" });
  const pager = el("div", { class: "pager" });
  app.replaceChildren(
    el("div", { class: "title" }, el("h1", { text: "Workflows" }), liveNote()),
    counts, form,
    el("table", { class: "list" },
      el("thead", {}, el("tr", {}, ["Id", "Name", "Status", "Queue", "Instance", "Version", "Created", "Updated", "Executions"].map((h) => el("th", { text: h })))),
      body),
    pager);

  const withQuery = (changes) => {
    const next = new URLSearchParams(query);
    for (const [key, value] of Object.entries(changes)) {
      if (value === null || value === "" || value === 0) next.delete(key);
      else next.set(key, String(value));
    }
    return `#/workflows?${next}`;
  };

  live(async () => {
    const params = new URLSearchParams({ limit: String(PAGE_SIZE + 1), offset: String(offset) });
    for (const key of FILTERS) if (query.get(key)) params.set(key, query.get(key));
    const [totals, rows] = await Promise.all([api("/counts"), api(`/workflows?${params}`)]);
    const all = Object.values(totals).reduce((a, b) => a + b, 0);
    counts.replaceChildren(
      el("a", { href: withQuery({ status: null, offset: null }), class: query.get("status") ? "count" : "count current" }, "all ", el("b", { text: all })),
      ...STATUSES.map((s) => el("a", { href: withQuery({ status: s, offset: null }), "data-count": s,
        class: query.get("status") === s ? "count current" : "count" }, badge(s), " ", el("b", { text: totals[s] || 0 }))));
    const shown = rows.slice(0, PAGE_SIZE);
    body.replaceChildren(...(shown.length ? shown.map((w) => el("tr", { "data-id": w.id },
      el("td", {}, workflowLink(w.id)), el("td", { text: w.name }), el("td", {}, badge(w.status)),
      el("td", { text: w.queue_name || "—" }), el("td", { text: w.instance }), el("td", {}, digestTag(w.app_version)),
      el("td", { text: time(w.created_at) }), el("td", { text: time(w.updated_at) }),
      el("td", { class: "num", text: w.executions })))
      : [el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No workflows match." }))]));
    pager.replaceChildren(
      offset > 0 ? el("a", { class: "button", id: "newer", href: withQuery({ offset: Math.max(0, offset - PAGE_SIZE) }), text: "← Newer" }) : "",
      el("span", { class: "muted", text: shown.length ? `${offset + 1}–${offset + shown.length}` : "" }),
      rows.length > PAGE_SIZE ? el("a", { class: "button", id: "older", href: withQuery({ offset: offset + PAGE_SIZE }), text: "Older →" }) : "");
  });
}

// ---- one workflow ----------------------------------------------------------------------------

/** Asks in a modal dialog; resolves true only when the user confirms. */
function confirmAction(title, text) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    const yes = document.getElementById("confirm-yes");
    const no = document.getElementById("confirm-no");
    const done = (answer) => {
      yes.removeEventListener("click", onYes);
      no.removeEventListener("click", onNo);
      dialog.removeEventListener("cancel", onNo);
      dialog.close();
      resolve(answer);
    };
    const onYes = () => done(true);
    const onNo = () => done(false);
    yes.addEventListener("click", onYes);
    no.addEventListener("click", onNo);
    dialog.addEventListener("cancel", onNo);
    dialog.showModal();
  });
}

function workflowPage(id) {
  const path = `/workflows/${encodeURIComponent(id)}`;
  const heading = el("h1", { class: "mono" }, id);
  const statusSlot = el("span", { id: "status" });
  const result = el("p", { id: "result", class: "result", hidden: true });
  const forkStep = el("select", { id: "fork-step", "aria-label": "Fork from step" });
  const cancel = el("button", { type: "button", id: "cancel", class: "danger", text: "Cancel…" });
  const resume = el("button", { type: "button", id: "resume", text: "Resume…" });
  const fork = el("button", { type: "button", id: "fork", text: "Fork…" });
  const upgrade = el("button", { type: "button", id: "upgrade", text: "Upgrade…", disabled: true });
  let target = null;
  const summary = el("dl", { id: "summary", class: "summary" });
  const io = el("div", { id: "io", class: "io" });
  const steps = el("div", { id: "steps" });
  const runs = el("div", { id: "runs" });
  let runsOf = null;
  const family = el("div", { id: "family" });
  const waits = el("div", { id: "waits" });
  app.replaceChildren(
    el("p", {}, el("a", { href: "#/workflows", text: "← Workflows" })),
    el("div", { class: "title" }, heading, statusSlot, liveNote()),
    el("div", { class: "actions" }, cancel, resume, upgrade, el("span", { class: "fork" }, forkStep, fork)),
    result,
    section("Summary", summary), io, section("Steps", steps), runs, family, waits);

  const act = async (title, text, run, report) => {
    if (!(await confirmAction(title, text))) return;
    result.hidden = false;
    result.className = "result";
    result.textContent = `${title}…`;
    try {
      const record = await run();
      if (report) result.textContent = `${title}: ${report(record)}`;
      else result.textContent = record.id === id
        ? `${title}: done — the workflow is now ${record.status}.`
        : `${title}: done — created ${record.id} (${record.status}).`;
      if (!report && record.id !== id) result.append(" ", workflowLink(record.id));
      await render();
    } catch (err) {
      result.className = "result error";
      result.textContent = `${title} failed: ${err.message}`;
    }
  };
  cancel.addEventListener("click", () => act("Cancel", `Cancel workflow ${id}? It stops at once, even mid-step; what it committed stays, and Resume goes on from there.`,
    () => api(`${path}/cancel`, { method: "POST" })));
  resume.addEventListener("click", () => act("Resume", `Resume workflow ${id} from its last recorded step?`,
    () => api(`${path}/resume`, { method: "POST" })));
  fork.addEventListener("click", () => {
    const step = Number(forkStep.value);
    act("Fork", `Start a new workflow that replays ${id}'s first ${step} step(s) and runs the rest again?`,
      () => api(`${path}/fork`, { method: "POST", body: { from_step: step } }));
  });
  upgrade.addEventListener("click", () => {
    if (!target) return;
    const { from, to } = target;
    act("Upgrade", `Move workflow ${id} from version ${from.digest.slice(0, 12)} to ${to.digest.slice(0, 12)}, the version ${to.name} serves now? `
      + "Its history is replayed on the new code first; it moves only if that replays cleanly.",
    () => moveTo(path, to.digest),
    (moved) => moved.upgraded ? `moved to ${moved.to.slice(0, 12)}.` : `already on ${moved.to.slice(0, 12)}; nothing changed.`);
  });

  const render = async () => {
    const [workflow, stepList, children, events, messages, streams, components] = await Promise.all([
      api(path), api(`${path}/steps`), api(`/workflows?parent=${encodeURIComponent(id)}&limit=200`),
      api(`${path}/events`), api(`${path}/messages`), api(`${path}/streams`), api("/components")]);
    statusSlot.replaceChildren(badge(workflow.status));
    cancel.disabled = !ACTIVE.has(workflow.status);
    resume.disabled = !RESUMABLE.has(workflow.status);
    const choice = upgradeTarget(workflow, components.versions);
    target = choice.to ? choice : null;
    upgrade.disabled = !target;
    upgrade.title = choice.why;
    const chosen = forkStep.value;
    forkStep.replaceChildren(...Array.from({ length: stepList.length + 1 }, (_, i) =>
      el("option", { value: i, text: i === 0 ? "from the start" : `after step ${i - 1} (${stepList[i - 1].name})` })));
    forkStep.value = chosen && Number(chosen) <= stepList.length ? chosen : String(stepList.length);
    renderSummary(summary, workflow, choice.from);
    renderIo(io, workflow);
    renderSteps(steps, stepList, workflow);
    // Finished runs change only when the workflow continues as new: fetched once per run.
    const run = workflow.run || 0;
    if (run !== runsOf) {
      renderRuns(runs, run > 0 ? (await api(`${path}/runs`)).runs : []);
      runsOf = run;
    }
    renderFamily(family, workflow, children);
    renderWaits(waits, events, messages, streams);
  };
  live(render);
}

/**
 * Where Upgrade… would move `w`: the version its own component serves now. `why` says why not,
 * or what it would do (the button's tooltip).
 */
function upgradeTarget(w, versions) {
  const from = versions.find((v) => v.digest === w.app_version);
  if (!MOVABLE.has(w.status)) return { from, why: "Only a PENDING or ENQUEUED workflow can move to another version." };
  if (!from || !from.name) return { from, why: "This workflow's version belongs to no configured component, so there is no newer one to move to." };
  const to = versions.find((v) => v.serving && v.name === from.name);
  if (!to) return { from, why: `No version of ${from.name} is serving on this server.` };
  if (to.digest === from.digest) return { from, why: `Already on the version ${from.name} serves.` };
  return { from, to, why: `Move to ${to.digest}, the version ${to.name} serves now.` };
}

/** Moves the workflow at `path` to `digest`; a refused move throws the verdict in words. */
async function moveTo(path, digest) {
  try {
    return await api(`${path}/upgrade`, { method: "POST", body: { to: digest } });
  } catch (err) {
    const v = err.body;
    if (err.status !== 409 || !v || !v.verdict) throw err;
    const where = v.position === undefined ? "" : ` at position ${v.position}`;
    const why = v.message || (v.recorded ? `recorded ${v.recorded}, the new code calls ${v.requested}` : "");
    throw new ApiFailure(409, `nothing changed, its history does not replay on the new code (${v.verdict}${where}): ${why}`);
  }
}

function renderSummary(dl, w, version) {
  const rows = [
    ["Name", w.name], ["Status", badge(w.status)],
    ["Run", el("span", { id: "run" }, String(w.run || 0),
      w.run > 0 ? el("span", { class: "muted", text: ` (after ${w.run} finished run${w.run === 1 ? "" : "s"}, listed under Runs)` }) : "")],
    ["Instance", w.instance],
    ["Version (digest)", el("span", {}, el("span", { class: "mono", text: w.app_version }),
      version && version.name ? el("span", { class: "muted", text: ` (${version.name}${version.serving ? ", serving" : ""})` }) : "")],
    ["Executor", w.executor_id], ["Executions", w.executions], ["Traps", w.traps],
    ["Created", time(w.created_at)], ["Started", time(w.started_at)], ["Updated", time(w.updated_at)],
    ["Queue", w.queue_name || "—"], ["Priority", w.priority],
    ["Partition key", w.partition_key || "—"], ["Deduplication id", w.deduplication_id || "—"],
    ["Timeout", w.timeout_ms ? duration(w.timeout_ms) : "—"], ["Deadline", time(w.deadline_at)],
    ["Not before", time(w.not_before)],
    ["Memory limit", w.memory_limit ? `${(w.memory_limit / 1048576).toFixed(1)} MiB` : "instance default"],
    ["Max recovery attempts", w.max_recovery_attempts],
    ["Config", Object.keys(w.config || {}).length ? el("pre", { text: json(w.config) }) : "—"],
  ];
  dl.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

function renderIo(div, w) {
  const parts = [section("Input", el("pre", { id: "input", text: json(w.input) }))];
  if (w.output !== undefined && w.output !== null) parts.push(section("Output", el("pre", { id: "output", text: json(w.output) })));
  if (w.error || w.trap_class) {
    parts.push(section("Error", el("div", { id: "error", class: "error-box" },
      w.trap_class ? el("p", {}, el("b", { text: "Trap: " }), el("span", { class: "mono", text: w.trap_class }), w.trap_message ? ` — ${w.trap_message}` : "") : "",
      w.error ? el("pre", { text: w.error }) : "")));
  }
  div.replaceChildren(...parts);
}

function renderSteps(div, steps, w) {
  if (!steps.length) {
    div.replaceChildren(el("p", { class: "muted", text: "No step recorded yet." }));
    return;
  }
  const start = Math.min(w.created_at, ...steps.map((s) => s.started_at));
  const end = Math.max(...steps.map((s) => s.completed_at), start + 1);
  const span = end - start;
  const rows = steps.map((s) => {
    const left = ((s.started_at - start) / span) * 100;
    const width = Math.max(((s.completed_at - s.started_at) / span) * 100, 0.5);
    const bar = el("div", { class: `bar ${s.error ? "failed" : "ok"}` });
    bar.style.marginLeft = `${left}%`;
    bar.style.width = `${width}%`;
    const errors = s.error ? el("ol", { class: "attempts" }, s.error.attempt_errors.map((e, i) =>
      el("li", {}, el("span", { class: "muted", text: `attempt ${i + 1}: ` }), e))) : "";
    return el("tr", { "data-step": s.function_id },
      el("td", { class: "num", text: s.function_id }),
      el("td", {}, el("span", { class: "mono", text: s.name }), errors),
      el("td", {}, outcome(s)),
      el("td", { class: "num", text: s.attempts }),
      el("td", { class: "num", text: duration(s.completed_at - s.started_at) }),
      el("td", {}, el("span", { class: s.replayed ? "tag replayed" : "tag executed", text: s.replayed ? "replayed" : "executed" })),
      el("td", { class: "timeline" }, bar));
  });
  div.replaceChildren(el("table", { class: "list steps" },
    el("thead", {}, el("tr", {}, ["#", "Step", "Outcome", "Attempts", "Duration", "Latest execution", "Timeline"].map((h) => el("th", { text: h })))),
    el("tbody", {}, rows)),
  el("p", { class: "muted", text: "“executed”: the latest execution ran the step; “replayed”: it reused the outcome an earlier execution committed." }));
}

/** A step's outcome as a badge: ok, or failed (and whether its retries ran out). */
function outcome(s) {
  if (!s.error) return el("span", { class: "badge s-success", text: "ok" });
  return el("span", { class: "badge s-error", text: s.error.retries_exhausted ? "failed (retries exhausted)" : "failed" });
}

/** JSON text as sent, cut short when long (all of it in the tooltip). */
function jsonText(text, cls) {
  const long = text.length > 60;
  return el("code", { class: cls, title: long ? text : null, text: long ? `${text.slice(0, 57)}…` : text });
}

/** The runs that ended with continue_as_new, oldest first; each opens onto its history. */
function renderRuns(div, runs) {
  if (!runs.length) {
    div.replaceChildren();
    return;
  }
  div.replaceChildren(section("Runs",
    el("p", { class: "muted", text: "Finished runs: each ended with continue_as_new, and the workflow started again under this id with the input it continued with. Their history is kept but no longer replayed." }),
    el("div", { class: "runs" }, runs.map(runRow))));
}

function runRow(r) {
  const field = (label, value) => el("span", { class: "field" }, el("span", { class: "muted", text: label }), value);
  const positions = r.steps.length;
  const history = positions ? el("table", { class: "list" },
    el("thead", {}, el("tr", {}, ["#", "Step", "Outcome", "Attempts", "Committed"].map((h) => el("th", { text: h })))),
    el("tbody", {}, r.steps.map((s) => el("tr", { "data-step": s.function_id },
      el("td", { class: "num", text: s.function_id }),
      el("td", {}, el("span", { class: "mono", text: s.name }),
        s.error ? el("p", { class: "error", text: s.error.message }) : ""),
      el("td", {}, outcome(s)), el("td", { class: "num", text: s.attempts }),
      el("td", { text: time(s.completed_at) })))))
    : el("p", { class: "muted", text: "No step recorded in this run." });
  return el("details", { class: "run", "data-run": r.run },
    el("summary", {},
      el("b", { text: `Run ${r.run}` }),
      field("version", digestTag(r.app_version)),
      field("input", jsonText(r.input, "run-input")),
      field("continued with", jsonText(r.next_input, "run-next")),
      field("history", `${positions} position${positions === 1 ? "" : "s"}`),
      field("ended", el("span", { title: r.started_at ? `started ${time(r.started_at)}` : null, text: time(r.ended_at) }))),
    el("div", { class: "run-body" },
      el("div", { class: "io" }, section("Input", el("pre", { text: r.input })), section("Continued with", el("pre", { text: r.next_input }))),
      history));
}

function renderFamily(div, w, children) {
  const parts = [];
  if (w.parent_workflow_id) parts.push(el("p", { id: "parent" }, "Parent: ", workflowLink(w.parent_workflow_id)));
  if (children.length) {
    parts.push(el("table", { class: "list", id: "children" },
      el("thead", {}, el("tr", {}, ["Child", "Name", "Status", "Created"].map((h) => el("th", { text: h })))),
      el("tbody", {}, children.map((c) => el("tr", {}, el("td", {}, workflowLink(c.id)), el("td", { text: c.name }),
        el("td", {}, badge(c.status)), el("td", { text: time(c.created_at) }))))));
  }
  div.replaceChildren(...(parts.length ? [section("Parent and children", ...parts)] : []));
}

function renderWaits(div, events, messages, streams) {
  const table = (id, heads, rows) => rows.length
    ? el("table", { class: "list", id }, el("thead", {}, el("tr", {}, heads.map((h) => el("th", { text: h })))), el("tbody", {}, rows))
    : el("p", { class: "muted", id, text: "none" });
  div.replaceChildren(
    section("Events", table("events", ["Key", "Value", "Set"], events.map((e) =>
      el("tr", {}, el("td", { class: "mono", text: e.key }), el("td", {}, el("pre", { text: json(e.value) })), el("td", { text: time(e.updated_at) }))))),
    section("Messages", table("messages", ["Topic", "Message", "Sent", "Received"], messages.map((m) =>
      el("tr", {}, el("td", { class: "mono", text: m.topic }), el("td", {}, el("pre", { text: json(m.message) })),
        el("td", { text: time(m.created_at) }),
        el("td", { text: m.consumed_at ? `${time(m.consumed_at)} (step ${m.consumed_by})` : "waiting" }))))),
    section("Streams", table("streams", ["Key", "Values", "State"], streams.map((s) =>
      el("tr", {}, el("td", { class: "mono", text: s.key }), el("td", { class: "num", text: s.values }), el("td", { text: s.closed ? "closed" : "open" }))))));
}

// ---- queues and executors ------------------------------------------------------------------

function queuesPage() {
  const queues = el("tbody", { id: "queues" });
  const executors = el("tbody", { id: "executors" });
  const instances = el("p", { id: "instances", class: "muted" });
  app.replaceChildren(
    el("div", { class: "title" }, el("h1", { text: "Queues & executors" }), liveNote()),
    section("Queues", el("table", { class: "list" },
      el("thead", {}, el("tr", {}, ["Queue", "Waiting", "Running", "Concurrency", "Per worker", "Rate limit", "Starts/s here", "Mean wait"].map((h) => el("th", { text: h })))),
      queues)),
    section("Executors", el("table", { class: "list" },
      el("thead", {}, el("tr", {}, ["Executor", "Started", "Lease age", "Lease", "State", "Owns (pending)"].map((h) => el("th", { text: h })))),
      executors), instances));
  const previous = new Map();
  live(async () => {
    const [list, health] = await Promise.all([api("/queues"), api("/healthz")]);
    const now = Date.now();
    queues.replaceChildren(...(list.length ? list.map((q) => {
      const before = previous.get(q.queue);
      previous.set(q.queue, { at: now, started: q.started_here });
      const rate = before && now > before.at ? ((q.started_here - before.started) * 1000) / (now - before.at) : null;
      return el("tr", { "data-queue": q.queue },
        el("td", { class: "mono", text: q.queue + (q.partitioned ? " (partitioned)" : "") }),
        el("td", { class: "num", text: q.enqueued }), el("td", { class: "num", text: q.pending }),
        el("td", { class: "num", text: q.concurrency ?? "∞" }), el("td", { class: "num", text: q.worker_concurrency ?? "∞" }),
        el("td", { text: q.rate_limit ? `${q.rate_limit.limit} per ${duration(q.rate_limit.period_ms)}` : "none" }),
        el("td", { class: "num", text: rate === null ? "…" : rate.toFixed(1) }),
        el("td", { class: "num", text: q.mean_wait_ms === null || q.mean_wait_ms === undefined ? "—" : duration(Math.round(q.mean_wait_ms)) }));
    }) : [el("tr", {}, el("td", { colspan: 8, class: "muted", text: "No queues configured." }))]));
    executors.replaceChildren(...health.executors.map((x) => el("tr", { "data-executor": x.executor_id },
      el("td", { class: "mono" }, x.executor_id, x.executor_id === health.executor_id ? el("span", { class: "tag executed", text: "this server" }) : ""),
      el("td", { text: time(x.started_at) }), el("td", { class: "num", text: duration(x.lease_age_ms) }),
      el("td", { class: "num", text: duration(x.lease_ms) }),
      el("td", {}, el("span", { class: x.expired ? "badge s-error" : "badge s-success", text: x.expired ? "lease expired" : "live" })),
      el("td", { class: "num", text: x.pending }))));
    const i = health.instances;
    instances.textContent = `This server: ${health.in_flight} running, ${health.parked} parked; instances ${i.in_use} of ${i.capacity} in use, ${i.waiting} waiting.`;
  });
}

// ---- component versions --------------------------------------------------------------------

/** A version's state: new starts get it (serving), workflows still run on it, or neither. */
function versionState(v) {
  if (v.serving) return el("span", { class: "badge s-success", text: "serving" });
  if (v.in_flight === 0) return el("span", { class: "badge s-cancelled", text: "drained" });
  return el("span", { class: "badge s-paused", text: "draining" });
}

function versionsPage() {
  const body = el("tbody", { id: "versions" });
  app.replaceChildren(
    el("div", { class: "title" }, el("h1", { text: "Versions" }), liveNote()),
    section("Component versions", el("table", { class: "list" },
      el("thead", {}, el("tr", {}, ["Component", "Digest", "Size", "First seen", "In flight", "State"].map((h) => el("th", { text: h })))),
      body),
    el("p", { class: "muted", text: "Workflows keep the version they started on; Upgrade… on a workflow moves it to its component's serving version when its history replays cleanly there." })));
  live(async () => {
    const { versions } = await api("/components");
    // Grouped by component, newest first within each.
    const sorted = [...versions].sort((a, b) => (a.name || "").localeCompare(b.name || "") || b.first_seen - a.first_seen);
    body.replaceChildren(...(sorted.length ? sorted.map((v) => el("tr", { "data-digest": v.digest },
      el("td", { class: "mono", text: v.name || "—" }), el("td", {}, digestTag(v.digest)),
      el("td", { class: "num", text: size(v.size) }), el("td", { text: time(v.first_seen) }),
      el("td", { class: "num", text: v.in_flight }), el("td", {}, versionState(v))))
      : [el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No component stored yet." }))]));
  });
}

// ---- start ---------------------------------------------------------------------------------

document.getElementById("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  showLogin("Signed out.");
});
window.addEventListener("hashchange", route);
route();
