// The engineer's page: Live, What-if, Run view, Compare, Sweeps. Talks only to this service's API,
// with the bearer token typed in once and kept in sessionStorage (this tab only).
import { Plot, clock, color } from "./plot.js";

const $ = (sel, el = document) => el.querySelector(sel);
const h = (tag, attrs = {}, ...kids) => {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  el.append(...kids.flat().filter((x) => x !== null && x !== undefined));
  return el;
};
const fmt = (v, d = 3) => (v === null || v === undefined ? "—" : typeof v === "number" ? (Math.abs(v) >= 1000 ? v.toLocaleString("en", { maximumFractionDigits: 1 }) : +v.toFixed(d) + "") : String(v));
/** Width of a plot in samples: the page never asks for more points per series than this. */
const TARGET_POINTS = 1000;

// ------------------------------------------------------------------ API access
const session = { token: sessionStorage.getItem("twin-token"), scope: null };

class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || { detail: `HTTP ${status}`, errors: [] };
  }
}

async function api(path, { method = "GET", body, raw = false, signal } = {}) {
  const headers = { Authorization: `Bearer ${session.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
  if (!r.ok) {
    let problem = null;
    try { problem = await r.json(); } catch { /* not JSON */ }
    if (r.status === 401) askToken("the token was refused: " + (problem?.detail || "401"));
    throw new ApiError(r.status, problem);
  }
  return raw ? r : r.status === 204 ? null : r.json();
}

/** Server-sent events over fetch (EventSource cannot send the token): calls onEvent(name, data) per frame. */
async function sse(path, onEvent, signal) {
  const r = await fetch(path, { headers: { Authorization: `Bearer ${session.token}` }, signal });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => null));
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = "message", data = null;
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data = line.slice(5).trim();
      }
      if (data !== null) onEvent(event, JSON.parse(data));
    }
  }
}

/** Download an API response as a file (links cannot carry the token). */
async function download(path, filename) {
  const r = await api(path, { raw: true });
  const url = URL.createObjectURL(await r.blob());
  const a = h("a", { href: url, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

function askToken(message = "") {
  const dlg = $("#token-dialog");
  $("#token-error").textContent = message;
  if (!dlg.open) dlg.showModal();
}

async function checkToken(token) {
  const r = await fetch("/auth/scope", { headers: { Authorization: `Bearer ${token}` } });
  if (!r.ok) return null;
  return (await r.json()).scope;
}

// ------------------------------------------------------------------ views
let teardown = () => {};
const views = { live: liveView, whatif: whatifView, runs: runsView, run: runView, compare: compareView, sweeps: sweepsView, sweep: sweepView };

async function route() {
  teardown();
  teardown = () => {};
  const [name, ...args] = (location.hash.replace(/^#\/?/, "") || "live").split("/");
  const view = views[name] || liveView;
  document.querySelectorAll("header nav a").forEach((a) => a.classList.toggle("active", a.dataset.view === (name === "run" ? "runs" : name === "sweep" ? "sweeps" : name)));
  const main = $("#view");
  main.replaceChildren();
  main.dataset.view = name;
  try {
    await view(main, ...args.map(decodeURIComponent));
  } catch (e) {
    if (e.name === "AbortError") return;
    main.append(h("section", { class: "card" }, h("p", { class: "err", id: "view-error" }, e.message)));
  }
}

function card(title, ...kids) { return h("section", { class: "card" }, h("h2", {}, title), ...kids); }

// ------------------------------------------------------------------ Live
async function liveView(main) {
  const ctl = new AbortController();
  teardown = () => ctl.abort();
  const status = h("p", { class: "muted", id: "live-status" }, "connecting to the live stream…");
  const table = h("table", { id: "live-islands" });
  const events = h("ul", { id: "live-events", class: "events-list" });
  const plots = h("div", { class: "grid" });
  main.append(card("Live twin", status, table), h("section", { class: "card" }, plots), card("Telemetry and what-if events", events));
  main.append(liveWhatIf());
  const mk = (title, unit) => new Plot(plots, { title, unit, height: 200 });
  const pf = mk("Frequency per island", "Hz"), pp = mk("Power by source (all islands)", "MW"), ps = mk("Battery state of charge", "-");
  const pt = mk("Hottest hall: GPU and coolant temperature", "°C"), pm = mk("Reserve and N-1 margin per island", "%");
  const all = [pf, pp, ps, pt, pm];
  const WINDOW = 600;
  const buf = { t: [], f: {}, src: { turbines: [], batteries: [], grid: [], load: [] }, soc: {}, gpu: [], cool: [], res: {}, n1: {} };
  const seen = new Set();
  const markers = [];
  const push = (arr, v) => { arr.push(v); if (arr.length > WINDOW) arr.shift(); };
  const onState = (s) => {
    push(buf.t, s.time_s);
    const isl = Object.entries(s.islands);
    let tu = 0, bs = 0, gr = 0, ld = 0;
    for (const [name, i] of isl) {
      push((buf.f[name] ||= []), i.f_hz);
      push((buf.res[name] ||= []), i.reserve_margin_frac === null ? null : 100 * i.reserve_margin_frac);
      push((buf.n1[name] ||= []), i.n1_margin_frac === null ? null : 100 * i.n1_margin_frac);
      tu += i.p_turbine_mw; bs += i.p_bess_mw; gr += i.p_grid_mw; ld += i.p_load_mw || 0;
    }
    push(buf.src.turbines, tu); push(buf.src.batteries, bs); push(buf.src.grid, gr); push(buf.src.load, ld);
    for (const [name, b] of Object.entries(s.bess)) push((buf.soc[name] ||= []), b.soc);
    const halls = Object.values(s.halls);
    push(buf.gpu, Math.max(...halls.map((x) => x.t_gpu_c ?? -Infinity)));
    push(buf.cool, Math.max(...halls.map((x) => x.t_coolant_c ?? -Infinity)));
    for (const e of s.events || []) {
      const key = `${e.time_s}|${e.source}|${e.message}`;
      if (seen.has(key)) continue;
      seen.add(key);
      markers.push({ x: e.time_s, label: e.source, color: e.source === "whatif" ? "#7b1fa2" : "#b00" });
      events.prepend(h("li", { "data-source": e.source }, `${clock(e.time_s)} ${e.source}: ${e.message}`));
    }
    const x = buf.t;
    pf.setSeries(Object.entries(buf.f).map(([n, y]) => ({ name: n, x, y })));
    pp.setSeries(Object.entries(buf.src).map(([n, y]) => ({ name: n, x, y })));
    ps.setSeries(Object.entries(buf.soc).slice(0, 10).map(([n, y]) => ({ name: n, x, y })));
    pt.setSeries([{ name: "GPU (max over halls)", x, y: buf.gpu }, { name: "coolant (max over halls)", x, y: buf.cool }]);
    pm.setSeries([...Object.entries(buf.res).map(([n, y]) => ({ name: `reserve ${n}`, x, y })),
      ...Object.entries(buf.n1).map(([n, y]) => ({ name: `N-1 ${n}`, x, y }))]);
    for (const p of all) { p.markers = markers; p.setDomain(x[0], Math.max(x[x.length - 1], x[0] + 1)); }
    status.textContent = `${s.site} · ${s.time.replace("T", " ")} · ambient ${fmt(s.t_amb_c, 1)} °C · step ${s.time_s} s` + (s.lag_steps ? ` · ${s.lag_steps} steps behind` : "");
    status.dataset.timeS = s.time_s;
    table.replaceChildren(h("tr", {}, ["island", "f [Hz]", "load [MW]", "turbines [MW]", "batteries [MW]", "grid [MW]", "unserved [MW]", "reserve [%]", "N-1 [%]", "largest unit"].map((c) => h("th", {}, c))),
      ...isl.map(([n, i]) => h("tr", {}, h("td", {}, n), ...[i.f_hz, i.p_load_mw, i.p_turbine_mw, i.p_bess_mw, i.p_grid_mw, i.p_unserved_mw].map((v) => h("td", { class: "num" }, fmt(v, 3))),
        ...[i.reserve_margin_frac, i.n1_margin_frac].map((v) => h("td", { class: "num" + (v !== null && v < 0 ? " bad" : "") }, v === null ? "—" : (100 * v).toFixed(1))),
        h("td", {}, i.largest_unit || "—"))));
  };
  (async () => {
    while (!ctl.signal.aborted) {
      try {
        await sse("/live/stream", (ev, data) => { if (ev === "state") onState(data); }, ctl.signal);
      } catch (e) {
        if (e.name === "AbortError") return;
        status.textContent = `live stream unavailable: ${e.message}; retrying`;
      }
      await new Promise((r) => setTimeout(r, 2000));
    }
  })();
}

/** A what-if from the live state (POST /live/whatif): one event at a time from now, its KPIs. */
function liveWhatIf() {
  const horizon = h("input", { id: "lw-horizon", type: "text", value: "00:05:00", size: 9 });
  const at = h("input", { id: "lw-at", type: "text", value: "00:00:10", size: 9 });
  const doSel = h("select", { id: "lw-do" }, Object.keys(ACTIONS).map((a) => h("option", { value: a }, a)));
  const target = h("input", { id: "lw-target", type: "text", size: 34, list: "targets-trip", placeholder: "site/component-id or a glob" });
  const value = h("input", { id: "lw-value", type: "number", step: "any", style: "width:6em" });
  const general = h("p", { class: "err", id: "lw-error" });
  const out = h("div", { id: "lw-result" });
  const lists = h("div");
  const button = h("button", { type: "submit", id: "lw-submit", disabled: session.scope !== "write" }, "What if, from now?");
  const slot = (name, input, label) => h("label", {}, label, input, h("span", { class: "err", "data-err": name }));
  doSel.addEventListener("change", () => target.setAttribute("list", `targets-${doSel.value}`));
  const form = h("form", { id: "live-whatif", novalidate: true },
    h("div", { class: "row" }, slot("horizon", horizon, "horizon"), slot("events[0].at", at, "at (from now)"), slot("events[0].do", doSel, "action"),
      slot("events[0].target", target, "target"), slot("events[0].value", value, "value"), h("span", { class: "err", "data-err": "events[0]" }), button),
    lists, general, out);
  api("/live/state").then((s) => api(`/sites/${encodeURIComponent(s.site)}/network`)).then((net) => {
    const comps = components(net);
    lists.replaceChildren(...Object.entries(ACTIONS).map(([a, kinds]) => h("datalist", { id: `targets-${a}` }, kinds.flatMap((k) => comps[k] || []).map((id) => h("option", { value: id })))));
  }).catch(() => { /* no component list: targets are typed */ });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (session.scope !== "write") { general.textContent = "this token has read scope; a what-if needs a write token"; return; }
    showProblems(form, general, { detail: "", errors: [] });
    const e = { at: timeValue(at.value), do: doSel.value, target: target.value };
    if (value.value !== "") e.value = Number(value.value);
    button.disabled = true;
    out.replaceChildren(h("p", { class: "muted" }, "running from the live state…"));
    try {
      const r = await api("/live/whatif", { method: "POST", body: { horizon: timeValue(horizon.value), events: target.value ? [e] : [] } });
      out.replaceChildren(h("p", { class: "muted" }, `from ${clock(r.from_time_s)} over ${r.horizon_s} s, computed in ${fmt(r.wall_s, 2)} s`),
        h("table", { id: "lw-kpis" }, kpiRows(r.kpis).map(([k, v]) => h("tr", { "data-kpi": k }, h("td", {}, k), h("td", { class: "num" }, fmt(v, 4))))));
    } catch (err) {
      out.replaceChildren();
      if (err instanceof ApiError) showProblems(form, general, err.problem); else general.textContent = err.message;
    } finally { button.disabled = session.scope !== "write"; }
  });
  return card("What-if from the live state", form);
}

// ------------------------------------------------------------------ What-if
const ACTIONS = { trip: ["turbines", "bess", "lines", "transformers", "grid_ties"], open: ["grid_ties", "lines", "transformers"],
  close: ["grid_ties", "lines", "transformers"], fail: ["chillers", "bess", "turbines"], derate: ["turbines", "chillers", "bess"],
  start: ["turbines"], restore: ["turbines", "bess", "chillers", "lines", "transformers", "grid_ties"], set: ["loads"] };

function components(net) {
  const out = { turbines: [], bess: [], grid_ties: [], lines: [], transformers: [], chillers: [], loads: [] };
  for (const u of net.units) { const k = u.type === "turbine" ? "turbines" : u.type === "grid_tie" ? "grid_ties" : u.type === "bess" ? "bess" : null; if (k) out[k].push(u.id); }
  for (const b of net.branches) (b.type === "line" ? out.lines : out.transformers).push(b.id);
  for (const l of net.loads) { if (l.type === "chiller") out.chillers.push(l.id); else if (l.type === "load") out.loads.push(l.id); }
  return out;
}

async function whatifView(main) {
  const [sites, presets] = await Promise.all([api("/sites"), api("/scenarios")]);
  const canWrite = session.scope === "write";
  const field = (name, input, label) => h("label", {}, label, input, h("span", { class: "err", "data-err": name }));
  const siteSel = h("select", { id: "wf-site" }, sites.data.map((s) => h("option", { value: s.id }, `${s.id} — ${s.label}`)));
  const presetSel = h("select", { id: "wf-preset" }, h("option", { value: "" }, "(none: a quiet day)"), presets.data.map((p) => h("option", { value: p.name }, p.name)));
  const name = h("input", { id: "wf-name", type: "text", value: "whatif" });
  const start = h("input", { id: "wf-start", type: "text", value: "2026-07-15T00:00:00", size: 19 });
  const horizon = h("input", { id: "wf-horizon", type: "text", value: "00:10:00", size: 9 });
  const step = h("input", { id: "wf-step", type: "number", value: "1", step: "any", min: "0.1", max: "60" });
  const design = h("select", { id: "wf-weather" }, ["memphis-0.4pct", "memphis-july-1980"].map((d) => h("option", { value: d }, d)), h("option", { value: "constant" }, "constant ambient"));
  const tamb = h("input", { id: "wf-tamb", type: "number", step: "any", placeholder: "°C" });
  const seed = h("input", { id: "wf-seed", type: "number", value: "0", min: "0" });
  const controls = Object.fromEntries(["secondary", "gpu_capping", "ufls", "auto_start"].map((c) => [c, h("input", { type: "checkbox", id: `wf-ctl-${c}`, checked: true })]));
  const evBody = h("tbody");
  const datalists = h("div");
  const general = h("p", { class: "err", id: "wf-error" });
  const submit = h("button", { type: "submit", id: "wf-submit", disabled: !canWrite }, "Run what-if");
  const progress = h("div", { id: "wf-progress" });
  let comps = {};

  async function loadSite() {
    const net = await api(`/sites/${encodeURIComponent(siteSel.value)}/network`);
    comps = components(net);
    datalists.replaceChildren(...Object.entries(ACTIONS).map(([a, kinds]) => h("datalist", { id: `targets-${a}` }, kinds.flatMap((k) => comps[k] || []).map((id) => h("option", { value: id })))));
  }
  function addEvent(e = { at: "00:01:00", do: "trip", target: "" }) {
    const i = evBody.children.length;
    const doSel = h("select", { class: "ev-do" }, Object.keys(ACTIONS).map((a) => h("option", { value: a, selected: a === e.do }, a)));
    const target = h("input", { class: "ev-target", type: "text", value: e.target || "", list: `targets-${e.do}`, size: 34, placeholder: "site/component-id or a glob" });
    doSel.addEventListener("change", () => target.setAttribute("list", `targets-${doSel.value}`));
    const cell = (name, input) => h("td", {}, input, h("div", { class: "err", "data-err": `events[${i}].${name}` }));
    evBody.append(h("tr", { "data-event": i },
      cell("at", h("input", { class: "ev-at", type: "text", value: e.at, size: 9 })), cell("do", doSel), cell("target", target),
      cell("count", h("input", { class: "ev-count", type: "number", min: "1", value: e.count ?? "", style: "width:5em" })),
      cell("value", h("input", { class: "ev-value", type: "number", step: "any", value: e.value ?? "", style: "width:6em" })),
      h("td", {}, h("button", { type: "button", onclick: (ev) => { ev.target.closest("tr").remove(); renumber(); } }, "remove"),
        h("div", { class: "err", "data-err": `events[${i}]` }))));
  }
  function renumber() {
    [...evBody.children].forEach((tr, i) => {
      tr.dataset.event = i;
      tr.querySelectorAll("[data-err]").forEach((d) => { d.dataset.err = d.dataset.err.replace(/^events\[\d+\]/, `events[${i}]`); });
    });
  }
  async function applyPreset() {
    evBody.replaceChildren();
    if (!presetSel.value) return;
    const p = await api(`/scenarios/${encodeURIComponent(presetSel.value)}`);
    const d = p.doc;
    if ([...siteSel.options].some((o) => o.value === d.scenario.site)) { siteSel.value = d.scenario.site; await loadSite(); }
    name.value = d.scenario.name; start.value = d.scenario.start; horizon.value = d.scenario.horizon; step.value = d.scenario.step_s;
    design.value = d.weather.t_amb_c != null ? "constant" : d.weather.design_day || "memphis-0.4pct";
    tamb.value = d.weather.t_amb_c ?? "";
    seed.value = d.workload.seed;
    for (const [k, box] of Object.entries(controls)) box.checked = d.control[k];
    for (const e of d.events) addEvent(e);
  }
  function doc() {
    const num = (el) => (el.value === "" ? undefined : Number(el.value));
    const weather = design.value === "constant" ? { t_amb_c: num(tamb) ?? null } : { design_day: design.value };
    return {
      scenario: { name: name.value, site: siteSel.value, start: start.value, horizon: timeValue(horizon.value), step_s: num(step) },
      weather, workload: { seed: num(seed) ?? 0 },
      control: Object.fromEntries(Object.entries(controls).map(([k, b]) => [k, b.checked])),
      events: [...evBody.children].map((tr) => {
        const e = { at: timeValue($(".ev-at", tr).value), do: $(".ev-do", tr).value, target: $(".ev-target", tr).value };
        const c = num($(".ev-count", tr)), v = num($(".ev-value", tr));
        if (c !== undefined) e.count = c;
        if (v !== undefined) e.value = v;
        return e;
      }),
    };
  }
  const form = h("form", { id: "whatif-form", novalidate: true },
    h("div", { class: "row" }, field("scenario.site", siteSel, "site"), h("label", {}, "preset", presetSel), field("scenario.name", name, "name"),
      field("scenario.start", start, "start"), field("scenario.horizon", horizon, "horizon (HH:MM:SS or s)"), field("scenario.step_s", step, "step [s]")),
    h("div", { class: "row" }, field("weather.design_day", design, "weather"), field("weather.t_amb_c", tamb, "ambient [°C] (constant)"),
      field("workload.seed", seed, "workload seed"),
      ...Object.entries(controls).map(([k, b]) => h("label", { class: "check" }, b, k.replace("_", " "))), h("span", { class: "err", "data-err": "control" })),
    h("h2", {}, "Events"),
    h("table", { id: "events-table" }, h("thead", {}, h("tr", {}, ["at", "action", "target", "count", "value", ""].map((c) => h("th", {}, c)))), evBody),
    h("p", {}, h("button", { type: "button", id: "wf-add", onclick: () => addEvent() }, "+ event"), h("span", { class: "err", "data-err": "events" })),
    datalists, general,
    h("p", {}, submit, canWrite ? null : h("span", { class: "muted", id: "wf-readonly" }, " this token can look, not submit (a write token is needed)")),
    progress);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    if (session.scope !== "write") { general.textContent = "this token has read scope; submitting needs a write token"; return; }
    showProblems(form, general, { detail: "", errors: [] });
    submit.disabled = true;
    try {
      const acc = await api("/runs", { method: "POST", body: doc() });
      await follow(acc.id, progress);
      location.hash = `#/run/${acc.id}`;
    } catch (e) {
      if (e instanceof ApiError) showProblems(form, general, e.problem); else general.textContent = e.message;
    } finally { submit.disabled = session.scope !== "write"; }
  });
  siteSel.addEventListener("change", loadSite);
  presetSel.addEventListener("change", applyPreset);
  main.append(card("What-if", form));
  await loadSite();
}

/** Put each of a Problem's field messages next to its field (the nearest enclosing field that has a slot), the rest in `general`. */
function showProblems(form, general, problem) {
  form.querySelectorAll("[data-err]").forEach((d) => { d.textContent = ""; });
  form.querySelectorAll(".invalid").forEach((x) => x.classList.remove("invalid"));
  const loose = [];
  for (const { field: f, message } of problem.errors || []) {
    let key = f.replace(/^body\./, ""), slot = null;
    while (key && !(slot = form.querySelector(`[data-err="${CSS.escape(key)}"]`))) {
      const parent = key.replace(/(\.[^.[\]]*|\[\d+\])$/, "");
      key = parent === key ? "" : parent;
    }
    if (slot) {
      slot.textContent = (slot.textContent ? slot.textContent + "; " : "") + message;
      const input = slot.previousElementSibling;
      if (input && input.matches("input, select")) input.classList.add("invalid");
    } else loose.push(`${f}: ${message}`);
  }
  general.textContent = problem.detail + (loose.length ? " — " + loose.join("; ") : "");
}

/** Follow a run's progress and its sequence of events as they are logged, until it ends. */
async function follow(id, el) {
  const bar = h("progress", { max: 100, value: 0, id: "run-progress" });
  const label = h("span", { class: "muted" }, " queued");
  const list = h("ul", { class: "events-list", id: "run-progress-events" });
  el.replaceChildren(h("p", {}, `run ${id}: `, bar, label), list);
  const ctl = new AbortController();
  const prev = teardown;
  teardown = () => { ctl.abort(); prev(); };
  let last = null;
  await sse(`/runs/${id}/stream`, (ev, d) => {
    if (ev === "progress" || ev === "end") { bar.value = d.progress_pct; label.textContent = ` ${d.status} ${fmt(d.progress_pct, 1)} %` + (d.eta_s ? `, ${Math.ceil(d.eta_s)} s left` : ""); last = d; }
    if (ev === "event") list.append(h("li", {}, `${clock(d.t_s)} ${d.source}: ${d.message}`));
  }, ctl.signal);
  if (last && last.status !== "done") throw new Error(`run ${id} ${last.status}${last.error ? ": " + last.error : ""}`);
}

// ------------------------------------------------------------------ Runs list
async function runsView(main) {
  const runs = await api("/runs?limit=200");
  main.append(card("Runs", runTable(runs.data)));
}

function runTable(rows) {
  return h("table", { id: "runs-table" }, h("tr", {}, ["run", "site", "scenario", "status", "progress [%]", "created"].map((c) => h("th", {}, c))),
    rows.map((r) => h("tr", { class: "click", "data-run": r.id, onclick: () => { location.hash = `#/run/${r.id}`; } },
      h("td", {}, r.id), h("td", {}, r.site), h("td", {}, r.scenario), h("td", { class: r.status === "failed" ? "bad" : "" }, r.status + (r.error ? `: ${r.error}` : "")),
      h("td", { class: "num" }, fmt(r.progress_pct, 1)), h("td", {}, new Date(r.created * 1000).toISOString().slice(0, 19).replace("T", " ")))));
}

// ------------------------------------------------------------------ Run view
function kpiRows(kpis) {
  const rows = [];
  for (const [k, v] of Object.entries(kpis)) {
    if (v && typeof v === "object" && !Array.isArray(v)) { for (const [sub, x] of Object.entries(v)) if (typeof x !== "object") rows.push([`${k} (${sub})`, x]); }
    else if (!Array.isArray(v)) rows.push([k, v]);
  }
  return rows;
}

const toSeconds = (iso, t0) => (Date.parse(iso + "Z") - t0) / 1000;
/** A time field as the API takes it: seconds as a number, else the text ('HH:MM:SS'). */
const timeValue = (text) => (/^\s*\d+(\.\d+)?\s*$/.test(text) ? Number(text) : text.trim());
/** A scenario's horizon in seconds ('HH:MM:SS', 'MM:SS' or a number). */
const horizonS = (doc) => { const hz = doc.scenario.horizon; return typeof hz === "number" ? hz : hz.split(":").reduce((a, b) => a * 60 + Number(b), 0); };

/** A series request binned for a window: at most TARGET_POINTS samples, with min/max when binned. */
async function fetchBinned(runId, v, entities, x0, x1, stepS, t0) {
  const every = Math.max(stepS, (x1 - x0) / TARGET_POINTS);
  const binned = every > stepS * 1.5;
  const q = (agg) => {
    const p = new URLSearchParams({ var: v, start: String(Math.max(0, Math.floor(x0))), end: String(Math.ceil(x1)), agg });
    if (binned) p.set("every", String(every));
    for (const e of entities) p.append("entity", e);
    return api(`/runs/${runId}/series?${p}`);
  };
  const [mean, lo, hi] = await Promise.all(binned ? [q("mean"), q("min"), q("max")] : [q("mean")]);
  const x = mean.time.map((t) => toSeconds(t, t0));
  return { units: mean.units, long: mean.long_name, every: binned ? every : stepS, points: x.length,
    series: Object.keys(mean.series).map((name) => ({ name, x, y: mean.series[name], lo: lo?.series[name], hi: hi?.series[name] })) };
}

async function runView(main, id) {
  const run = await api(`/runs/${id}`);
  const head = h("p", {}, `${run.id} · ${run.site} · ${run.scenario} · `, h("b", { id: "run-status" }, run.status));
  main.append(card(`Run ${run.scenario}`, head));
  if (run.status === "queued" || run.status === "running") {
    const prog = h("div");
    main.append(card("Progress", prog));
    await follow(id, prog);
    return route();
  }
  if (run.status !== "done") { main.append(card("Error", h("p", { class: "err" }, run.error || run.status))); return; }
  const sc = run.scenario_doc;
  const stepS = sc.scenario.step_s, t0 = Date.parse(sc.scenario.start + "Z");
  const [kpis, events] = await Promise.all([api(`/runs/${id}/kpis`), api(`/runs/${id}/events`)]);
  const horizon = horizonS(sc);

  // KPI table
  const rows = kpiRows(kpis.kpis), per = Math.ceil(rows.length / 3);
  main.append(card("KPIs", h("div", { id: "kpi-table", class: "kpis" }, [0, 1, 2].map((c) => h("table", {}, h("tr", {}, h("th", {}, "KPI"), h("th", { class: "num" }, "value")),
    rows.slice(c * per, (c + 1) * per).map(([k, v]) => h("tr", { "data-kpi": k }, h("td", {}, k), h("td", { class: "num" }, fmt(v, 4)))))))));

  // time series explorer
  const vars = [...(sc.record?.full_rate || []), ...(sc.record?.per_minute || [])];
  const varSel = h("select", { id: "series-var" }, vars.map((v) => h("option", { value: v, selected: v === "f_hz" }, v)));
  const entBox = h("div", { class: "entities", id: "series-entities" });
  const info = h("span", { class: "muted", id: "series-info" });
  const plotBox = h("div", { id: "series-plot" });
  const dl = h("span", {}, h("button", { type: "button", id: "dl-csv", onclick: () => download(seriesUrl("csv"), `${id}-${varSel.value}.csv`) }, "CSV"), " ",
    h("button", { type: "button", id: "dl-nc", onclick: () => download(seriesUrl("netcdf"), `${id}-${varSel.value}.nc`) }, "netCDF"), " ",
    h("button", { type: "button", id: "dl-report", onclick: () => download(`/runs/${id}/report`, `${id}-report.md`) }, "report"));
  main.append(card("Time series", h("div", { class: "row" }, h("label", {}, "variable", varSel), h("span", {}, "download: ", dl), info), entBox, plotBox));
  let window_ = [0, horizon], gen = 0;
  const plot = new Plot(plotBox, { title: "", height: 300, onView: (a, b) => { window_ = [a, b]; refresh(); }, onPick: (x) => setDiagramTime(x) });
  plot.markers = events.events.map((e) => ({ x: e.t_s, label: e.source === "scenario" ? `${e.kind} ${e.component.split("/").pop()}` : "", color: e.source === "scenario" ? "#b00" : "#e69500" }));
  const chosen = () => [...entBox.querySelectorAll("input:checked")].map((c) => c.value);
  function seriesUrl(format) {
    const every = Math.max(stepS, (window_[1] - window_[0]) / TARGET_POINTS);
    const p = new URLSearchParams({ var: varSel.value, start: String(Math.floor(window_[0])), end: String(Math.ceil(window_[1])), format });
    if (every > stepS * 1.5) p.set("every", String(every));
    for (const e of chosen()) p.append("entity", e);
    return `/runs/${id}/series?${p}`;
  }
  async function loadVar() {
    const probe = await api(`/runs/${id}/series?var=${encodeURIComponent(varSel.value)}&start=0&end=0`);
    const names = Object.keys(probe.series);
    const multi = probe.dims.length > 1;
    entBox.replaceChildren(...(multi ? names.map((n, i) => h("label", { class: "check" }, h("input", { type: "checkbox", value: n, checked: i < 8, onchange: refresh }), n)) : []));
    plot.setTitle(probe.long_name || varSel.value, probe.units);
    plot.setDomain(0, horizon);
    window_ = [...plot.view];
    await refresh();
  }
  async function refresh() {
    const my = ++gen;
    const d = await fetchBinned(id, varSel.value, chosen(), window_[0], window_[1], stepS, t0);
    if (my !== gen) return;
    plot.setSeries(d.series);
    plotBox.dataset.points = d.points;
    plotBox.dataset.every = d.every;
    plotBox.dataset.series = d.series.length;
    plotBox.dataset.loads = (Number(plotBox.dataset.loads || 0) + 1);
    info.textContent = `${d.points} samples per series, ${d.every > stepS ? `binned to ${fmt(d.every, 1)} s with min/max bands` : `every ${stepS} s`} (${clock(window_[0])} – ${clock(window_[1])})`;
  }
  varSel.addEventListener("change", loadVar);

  // sequence of events, linked to the time axis
  main.append(card(`Sequence of events (${events.events.length})`, h("div", { class: "events-list" }, h("table", { id: "soe-table" },
    h("tr", {}, ["time", "source", "kind", "component", "island", "message"].map((c) => h("th", {}, c))),
    events.events.map((e) => h("tr", { class: "click", onclick: () => { plot.setView(Math.max(0, e.t_s - 30), Math.min(horizon, e.t_s + 90)); setDiagramTime(e.t_s); } },
      h("td", {}, clock(e.t_s)), h("td", {}, e.source), h("td", {}, e.kind), h("td", {}, e.component), h("td", {}, e.island), h("td", {}, e.message)))))));

  // one-line diagram coloured by loading
  const slider = h("input", { type: "range", min: 0, max: Math.max(0, horizon - stepS), step: stepS, value: events.events[0]?.t_s ?? 0, id: "diagram-time", style: "width:400px" });
  const tLabel = h("span", { class: "muted" });
  const svgBox = h("div", { class: "oneline", id: "oneline" });
  main.append(card("One-line diagram (branch loading at a time)", h("div", { class: "row" }, h("label", {}, "time", slider), tLabel), svgBox));
  const net = await api(`/sites/${encodeURIComponent(run.site)}/network`);
  const draw = oneLine(net, svgBox);
  let dgen = 0;
  async function setDiagramTime(t) {
    t = Math.max(0, Math.min(horizon - stepS, Math.round(t / stepS) * stepS));
    slider.value = t;
    tLabel.textContent = clock(t);
    const my = ++dgen;
    const d = await api(`/runs/${id}/series?var=loading_pct&start=${t}&end=${t}`).catch(() => null);
    if (my !== dgen || !d) return;
    draw(Object.fromEntries(Object.entries(d.series).map(([k, v]) => [k, v[0]])));
  }
  slider.addEventListener("change", () => setDiagramTime(Number(slider.value)));
  await Promise.all([loadVar(), setDiagramTime(Number(slider.value))]);
}

/** An SVG one-line diagram: one block per island, buses in rows by distance from the island's highest-voltage bus. */
function oneLine(net, box) {
  const adj = {};
  for (const b of net.buses) adj[b.id] = [];
  for (const br of net.branches) {
    const a = br.from_bus ?? br.hv_bus, b = br.to_bus ?? br.lv_bus;
    if (a in adj && b in adj) { adj[a].push(b); adj[b].push(a); }
  }
  const pos = {};
  let x0 = 0, H = 0;
  const islands = [...new Set(net.buses.map((b) => b.island))];
  for (const isl of islands) {
    const buses = net.buses.filter((b) => b.island === isl);
    const root = buses.reduce((a, b) => ((b.vn_kv ?? 0) > (a.vn_kv ?? 0) ? b : a)).id;
    const depth = { [root]: 0 }, queue = [root];
    while (queue.length) { const u = queue.shift(); for (const v of adj[u]) if (!(v in depth)) { depth[v] = depth[u] + 1; queue.push(v); } }
    for (const b of buses) if (!(b.id in depth)) depth[b.id] = 0;
    const rows = {};
    for (const [b, d] of Object.entries(depth)) (rows[d] ||= []).push(b);
    const width = Math.max(...Object.values(rows).map((r) => r.length)) * 70;
    for (const [d, bs] of Object.entries(rows)) {
      bs.sort();
      const off = (width - bs.length * 70) / 2;
      bs.forEach((b, i) => { pos[b] = [x0 + off + i * 70 + 35, 40 + d * 70 + (bs.length > 8 && i % 2 ? 25 : 0)]; H = Math.max(H, pos[b][1]); });
    }
    x0 += width + 40;
  }
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${Math.max(x0, 100)} ${H + 50}`);
  const el = (tag, attrs) => { const e = document.createElementNS(NS, tag); for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v); return e; };
  const lines = {};
  for (const br of net.branches) {
    const a = pos[br.from_bus ?? br.hv_bus], b = pos[br.to_bus ?? br.lv_bus];
    if (!a || !b) continue;
    const ln = el("line", { x1: a[0], y1: a[1], x2: b[0], y2: b[1], stroke: "#999", "stroke-width": 3, "data-branch": br.id });
    const t = el("title", {}); t.textContent = br.id; ln.append(t);
    svg.append(ln);
    lines[br.id] = ln;
  }
  for (const b of net.buses) {
    const p = pos[b.id];
    svg.append(el("circle", { cx: p[0], cy: p[1], r: 4, fill: "#14233a" }));
    const t = el("text", { x: p[0] + 5, y: p[1] - 5 }); t.textContent = b.id.split("/").pop(); svg.append(t);
  }
  box.replaceChildren(svg, h("div", { class: "legend" }, ...[[0, "0 %"], [50, "50 %"], [80, "80 %"], [100, "≥ 100 %"]].map(([v, l]) => h("span", {}, h("i", { style: `background:${loadColor(v)}` }), l))));
  return (loading) => {
    let coloured = 0;
    for (const [id, ln] of Object.entries(lines)) {
      const v = loading[id];
      if (v !== undefined && v !== null) coloured++;
      ln.setAttribute("stroke", v === undefined || v === null ? "#bbb" : loadColor(v));
      ln.querySelector("title").textContent = `${id}: ${v === undefined || v === null ? "—" : v.toFixed(1) + " %"}`;
    }
    box.dataset.coloured = coloured;
    box.dataset.branches = Object.keys(lines).length;
  };
}

function loadColor(pct) {
  const f = Math.max(0, Math.min(1, pct / 100));
  const hue = 120 * (1 - f); // green → red
  return `hsl(${hue}, 75%, ${pct >= 100 ? 35 : 45}%)`;
}

// ------------------------------------------------------------------ Compare
async function compareView(main, a = "", b = "") {
  const runs = (await api("/runs?status=done&limit=200")).data;
  const opt = (sel) => runs.map((r) => h("option", { value: r.id, selected: r.id === sel }, `${r.scenario} · ${r.id}`));
  const selA = h("select", { id: "cmp-a" }, opt(a || runs[1]?.id)), selB = h("select", { id: "cmp-b" }, opt(b || runs[0]?.id));
  const varSel = h("select", { id: "cmp-var" }, ["f_hz", "p_turbine_mw", "p_bess_mw", "soc_bess", "p_grid_mw", "p_unserved_mw", "t_gpu_c", "loading_pct"].map((v) => h("option", { value: v }, v)));
  const plotBox = h("div", { id: "cmp-plot" }), table = h("table", { id: "cmp-kpis" });
  main.append(card("Compare two runs", h("div", { class: "row" }, h("label", {}, "run A", selA), h("label", {}, "run B", selB), h("label", {}, "variable", varSel)), plotBox), card("KPI deltas (B − A)", table));
  if (runs.length < 1) { table.append(h("tr", {}, h("td", {}, "no finished runs yet"))); return; }
  let details = [], horizons = [], gen = 0;
  const plot = new Plot(plotBox, { height: 300, onView: (a, b) => drawSeries(a, b) });
  async function drawSeries(x0, x1) {
    const my = ++gen;
    const ids = [selA.value, selB.value];
    const data = await Promise.all(details.map((d, i) => fetchBinned(ids[i], varSel.value, [], Math.min(x0, horizons[i]), Math.min(x1, horizons[i]),
      d.scenario_doc.scenario.step_s, Date.parse(d.scenario_doc.scenario.start + "Z")).catch(() => ({ series: [] }))));
    if (my !== gen) return;
    const series = [];
    data.forEach((d, i) => d.series.slice(0, 6).forEach((s, k) => series.push({ ...s, name: `${"AB"[i]}: ${s.name}`, lo: null, hi: null, color: color(i * 6 + k) })));
    plot.setTitle(varSel.value, data.find((d) => d.units)?.units);
    plot.setSeries(series);
    plotBox.dataset.series = series.length;
  }
  async function load() {
    const ids = [selA.value, selB.value];
    details = await Promise.all(ids.map((r) => api(`/runs/${r}`)));
    horizons = details.map((d) => horizonS(d.scenario_doc));
    plot.follow = true;
    plot.setDomain(0, Math.max(...horizons));
    await drawSeries(0, Math.max(...horizons));
    const [ka, kb] = await Promise.all(ids.map((r) => api(`/runs/${r}/kpis`)));
    const rb = Object.fromEntries(kpiRows(kb.kpis));
    table.replaceChildren(h("tr", {}, ["KPI", "A", "B", "B − A"].map((c) => h("th", {}, c))),
      ...kpiRows(ka.kpis).filter(([k]) => k in rb).map(([k, va]) => {
        const vb = rb[k], d = typeof va === "number" && typeof vb === "number" ? vb - va : null;
        return h("tr", { "data-kpi": k }, h("td", {}, k), h("td", { class: "num" }, fmt(va, 4)), h("td", { class: "num" }, fmt(vb, 4)),
          h("td", { class: "num" }, d === null ? "" : (d > 0 ? "+" : "") + fmt(d, 4)));
      }));
  }
  for (const s of [selA, selB, varSel]) s.addEventListener("change", load);
  await load();
}

// ------------------------------------------------------------------ Sweeps
async function sweepsView(main) {
  const sweeps = await api("/sweeps?limit=200");
  main.append(card("Sweeps", h("table", { id: "sweeps-table" }, h("tr", {}, ["sweep", "site", "base scenario", "status", "progress [%]"].map((c) => h("th", {}, c))),
    sweeps.data.map((s) => h("tr", { class: "click", onclick: () => { location.hash = `#/sweep/${s.id}`; } },
      h("td", {}, s.id), h("td", {}, s.site), h("td", {}, s.scenario), h("td", {}, s.status), h("td", { class: "num" }, fmt(s.progress_pct, 1)))))));
}

async function sweepView(main, id) {
  const k = await api(`/sweeps/${id}/kpis`);
  const byCase = Object.fromEntries(k.cases.map((c) => [c.case, c]));
  const minOf = (v) => (v && typeof v === "object" ? Math.min(...Object.values(v).filter((x) => typeof x === "number")) : v);
  const cols = [["unserved_energy_mwh", "unserved [MWh]"], ["gpu_hours_lost", "GPU·h lost"], ["f_min_hz", "f min [Hz]"], ["loading_max_pct", "max loading [%]"], ["t_gpu_max_c", "t GPU max [°C]"]];
  const ranked = [...k.ranking, ...k.cases.map((c) => c.case).filter((c) => !k.ranking.includes(c))];
  main.append(card(`Sweep ${id}: cases ranked worst first${k.complete ? "" : " (not complete)"}`, h("table", { id: "ranking-table" },
    h("tr", {}, h("th", {}, "rank"), h("th", {}, "case"), h("th", {}, "status"), cols.map(([, l]) => h("th", { class: "num" }, l))),
    ranked.map((name, i) => {
      const c = byCase[name];
      return h("tr", { class: "click", "data-run": c.run_id, onclick: () => { location.hash = `#/run/${c.run_id}`; } },
        h("td", {}, k.ranking.includes(name) ? String(i + 1) : ""), h("td", {}, name), h("td", {}, c.status),
        cols.map(([key]) => h("td", { class: "num" }, fmt(c.kpis ? minOf(c.kpis[key]) : null, 3))));
    }))));
}

// ------------------------------------------------------------------ start
async function start() {
  $("#token-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const token = $("#token-input").value.trim();
    const scope = token ? await checkToken(token) : null;
    if (!scope) { $("#token-error").textContent = "this token is not accepted by the service"; return; }
    session.token = token;
    session.scope = scope;
    sessionStorage.setItem("twin-token", token);
    $("#token-dialog").close();
    showScope();
    route();
  });
  $("#forget").addEventListener("click", () => { sessionStorage.removeItem("twin-token"); session.token = null; session.scope = null; showScope(); askToken(); });
  window.addEventListener("hashchange", () => { if (session.scope) route(); });
  if (session.token) session.scope = await checkToken(session.token);
  showScope();
  if (!session.scope) askToken(session.token ? "the stored token is no longer accepted" : "");
  else route();
}

function showScope() {
  $("#scope").textContent = session.scope ? `${session.scope} token` : "no token";
  $("#scope").dataset.scope = session.scope || "";
  $("#forget").hidden = !session.scope;
}

start();
