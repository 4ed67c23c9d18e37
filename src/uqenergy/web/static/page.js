// The uqenergy what-if page: controls -> POST /api/run -> SVG figures. No libraries, no network beyond this server.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"];
// values and defaults of each prior: {params: {...}, models: {MODEL: {...}}, dists: {MODEL: dist}}
const page = { info: null, defaults: {}, values: {}, sequence: 0, choices: 0, timer: null, last: null };

async function call(path, body) {
  const response = await fetch(path, body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!response.ok) {
    let message = `HTTP ${response.status}`;
    try { message = (await response.json()).error || message; } catch (_) { /* not JSON */ }
    throw new Error(message);
  }
  return response;
}

function fmt(v) {
  if (v === null || v === undefined || !isFinite(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1e3 && a < 1e5) return Number(v.toPrecision(3)).toLocaleString("en");
  return (a >= 1e-3 && a < 1e5) || v === 0 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}

function el(tag, attrs, parent, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  if (parent) parent.appendChild(node);
  return node;
}

// ---- the request the controls describe

const differs = (a, b) => Object.keys(a).some((k) => a[k] !== b[k]);

function priorChanges() {
  // the changed priors as overrides: changed base parameters, and every per-model table when any of them changed
  const priors = {};
  for (const [name, value] of Object.entries(page.values)) {
    const defaults = page.defaults[name];
    const base = differs(value.params, defaults.params);
    const models = Object.keys(value.models).some((m) => differs(value.models[m], defaults.models[m]));
    if (!base && !models) continue;
    const table = { ...value.params };
    if (Object.keys(value.models).length) {
      table.models = Object.fromEntries(Object.entries(value.models).map(
        ([m, params]) => [m, { dist: value.dists[m], ...params }]));
    }
    priors[name] = table;
  }
  return priors;
}

function measuredChoice() {
  // the request's choice of models, GPUs, boundary and answer length of a measured study (null: not one)
  if (!page.info || !page.info.measured) return null;
  const choice = { boundary: $("measured-boundary").value, output_tokens: $("measured-tokens").value };
  if ($("measured-model").value) choice.models = [$("measured-model").value];
  if ($("measured-gpu").value) choice.gpus = [$("measured-gpu").value];
  return choice;
}

function request() {
  const body = {
    study: $("study").value, series: $("series").value,
    draws: Number($("draws").value), seed: Number($("seed").value), priors: priorChanges(),
  };
  const measured = measuredChoice();
  if (measured) body.measured = measured;
  return body;
}

function schedule() {
  clearTimeout(page.timer);
  page.timer = setTimeout(run, 150);
}

async function run() {
  const sequence = ++page.sequence;
  document.body.classList.add("busy");
  try {
    const result = await (await call("/api/run", request())).json();
    if (sequence !== page.sequence) return; // a newer request is on its way
    page.last = result;
    $("error").hidden = true;
    render(result);
  } catch (error) {
    if (sequence !== page.sequence) return;
    $("error").textContent = error.message;
    $("error").hidden = false;
  } finally {
    if (sequence === page.sequence) document.body.classList.remove("busy");
  }
}

async function download(path, filename) {
  try {
    const blob = await (await call(path, request())).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = filename;
    document.body.appendChild(link);
    link.click();
    link.remove();
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

// ---- controls

function sliderRange(value, bounds) {
  // log scale from value/10 to value*10 (within the physical bounds) for positive values, else linear
  const [low, high] = [bounds[0] === null ? -Infinity : bounds[0], bounds[1] === null ? Infinity : bounds[1]];
  if (value > 0) {
    const lo = Math.max(value / 10, low > 0 ? low : value / 10);
    const hi = Math.min(value * 10, high);
    return { log: hi > lo, lo: hi > lo ? lo : value / 10, hi: hi > lo ? hi : value * 10 };
  }
  const span = Math.max(1, Math.abs(value)) * 3;
  return { log: false, lo: value - span, hi: value + span };
}

const toSlider = (r, v) => 1000 * (r.log ? Math.log(v / r.lo) / Math.log(r.hi / r.lo) : (v - r.lo) / (r.hi - r.lo));
const fromSlider = (r, p) => (r.log ? r.lo * Math.pow(r.hi / r.lo, p / 1000) : r.lo + (r.hi - r.lo) * p / 1000);

function boundsText(bounds) {
  const show = (b, inf) => (b === null ? inf : fmt(b));
  return `[${show(bounds[0], "−∞")}, ${show(bounds[1], "∞")}]`;
}

function paramRows(card, prior, model, state, defaults, bounds) {
  // a slider and a number box per parameter of `state` (a prior's, or one model's), which they change
  for (const [key, value] of Object.entries(state)) {
    const row = document.createElement("div");
    row.className = "param";
    const range = sliderRange(defaults[key], bounds);
    const which = `data-prior="${prior.name}" data-param="${key}"` + (model ? ` data-model="${model}"` : "");
    row.innerHTML = `<label>${key}</label><input type="range" min="0" max="1000" step="1" ${which}>` +
      `<input type="number" step="any" ${which}>`;
    const [slider, number] = row.querySelectorAll("input");
    slider.value = toSlider(range, value);
    number.value = value;
    const set = (v) => {
      state[key] = v;
      markChanged(card, prior.name);
      schedule();
    };
    slider.addEventListener("input", () => {
      const v = Number(fromSlider(range, Number(slider.value)).toPrecision(3));
      number.value = v;
      set(v);
    });
    number.addEventListener("change", () => {
      const v = number.value === "" ? null : Number(number.value);
      if (v !== null && isFinite(v)) slider.value = toSlider(range, v);
      set(v);
    });
    card.appendChild(row);
  }
}

function markChanged(card, name) {
  const value = page.values[name], defaults = page.defaults[name];
  card.classList.toggle("changed", differs(value.params, defaults.params) ||
    Object.keys(value.models).some((m) => differs(value.models[m], defaults.models[m])));
}

function buildPriors(priors, kept) {
  // one card per prior; `kept`: the values before a rebuild, kept for the priors the new study still samples
  const box = $("priors");
  box.replaceChildren();
  page.defaults = {};
  page.values = {};
  for (const prior of priors) {
    const card = document.createElement("div");
    card.className = "prior";
    card.dataset.prior = prior.name;
    card.innerHTML = `<h3><span>${prior.name} <span class="tag">[${prior.unit}]</span></span>` +
      `<span class="tag">${prior.dist}, ${prior.kind}</span></h3>`;
    const models = Object.fromEntries(Object.entries(prior.per_model).filter(([, c]) => c.adjustable));
    if (prior.adjustable) {
      const defaults = { params: { ...prior.parameters }, models: {}, dists: {} };
      for (const [m, c] of Object.entries(models)) {
        defaults.models[m] = { ...c.parameters };
        defaults.dists[m] = c.dist;
      }
      const old = kept && kept[prior.name];
      const same = (a, b) => a && Object.keys(a).join() === Object.keys(b).join();
      page.defaults[prior.name] = defaults;
      page.values[prior.name] = {
        params: same(old && old.params, defaults.params) ? { ...old.params } : { ...defaults.params },
        models: Object.fromEntries(Object.entries(defaults.models).map(([m, d]) =>
          [m, same(old && old.models[m], d) ? { ...old.models[m] } : { ...d }])),
        dists: defaults.dists,
      };
      paramRows(card, prior, null, page.values[prior.name].params, defaults.params, prior.bounds);
    }
    const meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = `bounds ${boundsText(prior.bounds)} · source: ${prior.source}`;
    meta.title = prior.note || "";
    card.appendChild(meta);
    for (const [m, c] of Object.entries(prior.per_model)) {
      const sub = document.createElement("div");
      sub.className = "per-model";
      sub.innerHTML = `<h4>for ${m}: ${c.dist}${c.adjustable ? "" : " (fixed here)"}</h4>`;
      card.appendChild(sub);
      if (prior.adjustable && c.adjustable) {
        paramRows(sub, prior, m, page.values[prior.name].models[m], page.defaults[prior.name].models[m], c.bounds);
      }
      const note = document.createElement("p");
      note.className = "meta";
      note.textContent = `source: ${c.source}`;
      sub.appendChild(note);
    }
    if (prior.adjustable) markChanged(card, prior.name);
    box.appendChild(card);
  }
}

function fillMeasured(measured) {
  // the model, GPU, boundary and answer-length choices of a measured study; GPUs a model was not measured on
  // are disabled
  $("measured").hidden = !measured;
  if (!measured) return;
  const chosen = measured.chosen;
  $("measured-model").replaceChildren(new Option(`all ${Object.keys(measured.models).length} models of the study`, ""),
    ...Object.entries(measured.models).map(([m, gpus]) =>
      new Option(`${m} (${gpus.join(", ")})`, m, false, chosen.models.length === 1 && chosen.models[0] === m)));
  const all = chosen.gpus.length === measured.gpus.length;
  $("measured-gpu").replaceChildren(new Option(`all measured (${measured.gpus.join(", ")})`, "", false, all),
    ...measured.gpus.map((g) => new Option(g, g, false, !all && chosen.gpus[0] === g)));
  $("measured-boundary").replaceChildren(...measured.boundaries.map((b) =>
    new Option(b.prior ? `${b.name} (× ${b.prior})` : `${b.name} (GPU energy as measured)`, b.name, false,
      b.name === chosen.boundary)));
  const lengths = { measured: "measured mean", prior: "output_tokens prior" };
  $("measured-tokens").replaceChildren(...measured.output_tokens.map((t) =>
    new Option(lengths[t] || t, t, false, t === chosen.output_tokens)));
  enableGpus(measured);
}

function enableGpus(measured) {
  const gpus = measured.models[$("measured-model").value] || measured.gpus;
  for (const option of $("measured-gpu").options) option.disabled = option.value !== "" && !gpus.includes(option.value);
  if ($("measured-gpu").selectedOptions[0].disabled) $("measured-gpu").value = "";
}

function showInfo(info, kept) {
  page.info = info;
  $("description").textContent = info.description;
  $("series").replaceChildren(...info.series.map((s) => {
    const blend = info.blends[s];
    const label = blend ? `${s} (${blend.trim.length ? "trimmed" : "untrimmed"} pool of ` +
      `${blend.top ? "top " + blend.top : blend.members.length})` : s;
    return new Option(label, s, false, s === info.default_series);
  }));
  $("draws").value = info.draws;
  $("draws").max = info.max_draws;
  $("seed").value = info.seed;
  $("hardware").textContent = `Hardware and throughput: ${info.hardware}. At most ` +
    `${info.max_draws.toLocaleString("en")} draws per model and ${info.seconds} s per run on this page.`;
  buildPriors(info.priors, kept);
  run();
}

async function loadStudy(name) {
  const info = await (await call(`/api/study?study=${encodeURIComponent(name)}`)).json();
  fillMeasured(info.measured);
  showInfo(info);
}

async function chooseMeasured() {
  // a new choice of models, GPUs or boundary: its series and priors (changed values kept), then a run
  enableGpus(page.info.measured);
  const choice = ++page.choices;
  try {
    const body = { study: $("study").value, seed: Number($("seed").value), measured: measuredChoice() };
    const info = await (await call("/api/study", body)).json();
    if (choice === page.choices) showInfo(info, page.values); // else a newer choice is on its way
  } catch (error) {
    $("error").textContent = error.message;
    $("error").hidden = false;
  }
}

// ---- figures

function logAxis(svg, lo, hi, x0, x1, y, label) {
  const scale = (v) => x0 + (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * (x1 - x0);
  el("line", { x1: x0, x2: x1, y1: y, y2: y, class: "axis", stroke: "#888" }, svg);
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * Math.pow(10, e);
      if (v < lo || v > hi) continue;
      const x = scale(v);
      el("line", { x1: x, x2: x, y1: 8, y2: y, class: "grid" }, svg);
      el("line", { x1: x, x2: x, y1: y, y2: y + (m === 1 ? 5 : 3), stroke: "#888" }, svg);
      el("text", { x, y: y + 16, "text-anchor": "middle", "font-size": m === 1 ? 11 : 9 }, svg, fmt(v));
    }
  }
  el("text", { x: (x0 + x1) / 2, y: y + 30, "text-anchor": "middle" }, svg, label);
  return scale;
}

function intervalMarks(svg, x, record, y, color, h) {
  el("line", { x1: x(record.p5), x2: x(record.p95), y1: y, y2: y, stroke: color, "stroke-width": 2 }, svg);
  el("rect", { x: x(record.p25), y: y - h / 2, width: Math.max(1, x(record.p75) - x(record.p25)), height: h,
    fill: color, "fill-opacity": 0.35, stroke: color }, svg);
  el("line", { x1: x(record.median), x2: x(record.median), y1: y - h / 2 - 3, y2: y + h / 2 + 3,
    stroke: "#000", "stroke-width": 2 }, svg);
}

function labelRows(xs, widths) {
  // the first row (from the top) where each label, in order of x, starts after the previous one ends
  const ends = [];
  return xs.map((x, i) => {
    let row = ends.findIndex((end) => end < x);
    if (row < 0) row = ends.push(-Infinity) - 1;
    ends[row] = x + widths[i];
    return row;
  });
}

function drawDistribution(result) {
  const svg = $("distribution");
  svg.replaceChildren();
  const d = result.distribution;
  const r = result.baseline;
  const estimates = $("show-estimates").checked ? [...result.estimates].sort((a, b) => a.value_wh - b.value_wh) : [];
  const values = [...d.energy_wh, ...estimates.map((e) => e.value_wh)];
  const lo = Math.min(...values) / 1.2, hi = Math.max(...values) * 1.2;
  const labels = estimates.map((e) => `${e.subject} ${fmt(e.value_wh)}`);
  const scale0 = (v) => 20 + (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) * 720;
  const widths = labels.map((t) => 5.2 * t.length + 6);
  // a label starts just right of its line, or further left where it would run past the right edge
  const starts = estimates.map((e, i) => Math.max(2, Math.min(scale0(e.value_wh) + 2, 758 - widths[i])));
  const rows = labelRows(starts, widths);
  const top = 30 + (estimates.length ? (Math.max(...rows) + 1) * 11 : 0), bottom = top + 110;
  const height = bottom + 80;
  svg.setAttribute("viewBox", `0 0 760 ${height}`);
  const x = logAxis(svg, lo, hi, 20, 740, bottom + 30, "energy per query (Wh, log scale)");
  const pts = d.energy_wh.map((v, i) => `${x(v).toFixed(1)},${(bottom - d.density[i] * (bottom - top)).toFixed(1)}`);
  el("path", { d: `M${x(d.energy_wh[0])},${bottom} L${pts.join(" L")} L${x(d.energy_wh.at(-1))},${bottom} Z`,
    fill: COLORS[0], "fill-opacity": 0.25, stroke: COLORS[0], "stroke-width": 1.5 }, svg);
  intervalMarks(svg, x, r, bottom + 14, COLORS[0], 10);
  el("line", { x1: x(r.median), x2: x(r.median), y1: top, y2: bottom, stroke: "#000", "stroke-dasharray": "3 3" }, svg);
  el("text", { x: x(r.median) + 4, y: top + 12, "font-weight": "bold" }, svg, `median ${fmt(r.median)} Wh`);
  estimates.forEach((e, i) => {
    const ex = x(e.value_wh), level = 12 + rows[i] * 11;
    el("line", { x1: ex, x2: ex, y1: level + 2, y2: bottom, stroke: "#D55E00", "stroke-opacity": 0.6 }, svg);
    const label = el("text", { x: starts[i], y: level, fill: "#A04000", "font-size": 9 }, svg, labels[i]);
    el("title", {}, label, `${e.subject}: ${fmt(e.value_wh)} Wh (boundary: ${e.boundary}; ${e.kind}, ${e.date}) — ${e.citation}`);
  });
  const notes = [estimates.length ? "orange: published estimates (hover a label for its source and boundary)" : ""];
  if (d.zero_fraction > 0) notes.push(`${(100 * d.zero_fraction).toPrecision(2)}% of draws are 0 Wh (off the log axis)`);
  el("text", { x: 20, y: height - 6, "font-size": 9 }, svg, notes.filter(Boolean).join(" · "));
}

function drawPathways(result) {
  const svg = $("pathways");
  svg.replaceChildren();
  const rows = result.pathways;
  if (rows.length < 2) {
    const targets = page.info.pathway_targets.join(", ") || "no series";
    el("text", { x: 20, y: 30 }, svg, `This study applies its pathways to ${targets}; choose one of them to see the pathways.`);
    svg.setAttribute("viewBox", "0 0 760 50");
    return;
  }
  const height = 30 + rows.length * 24 + 40;
  svg.setAttribute("viewBox", `0 0 760 ${height}`);
  const lo = Math.min(...rows.map((r) => r.p5)) / 1.5, hi = Math.max(...rows.map((r) => r.p95)) * 1.5;
  const x = logAxis(svg, lo, hi, 110, 520, height - 40, "energy per query (Wh, log scale)");
  rows.forEach((r, i) => {
    const y = 22 + i * 24;
    el("text", { x: 104, y: y + 4, "text-anchor": "end" }, svg, r.pathway);
    intervalMarks(svg, x, r, y, COLORS[i % COLORS.length], 10);
    el("text", { x: 528, y: y + 4 }, svg, `${fmt(r.median)} Wh · 90% ${fmt(r.p5)}–${fmt(r.p95)}`);
  });
}

function drawSobol(result) {
  const svg = $("sobol");
  svg.replaceChildren();
  if (!result.sobol) {
    el("text", { x: 20, y: 30 }, svg, "No untrimmed series of the same models to analyse (trimming depends on the whole sample).");
    svg.setAttribute("viewBox", "0 0 760 50");
    return;
  }
  const rows = result.sobol.records;
  const height = 24 + rows.length * 20 + 44;
  svg.setAttribute("viewBox", `0 0 760 ${height}`);
  const x0 = 150, x1 = 620, scale = (v) => x0 + Math.max(0, Math.min(1, v)) * (x1 - x0);
  el("line", { x1: x0, x2: x0, y1: 10, y2: height - 40, stroke: "#888" }, svg);
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    el("line", { x1: scale(t), x2: scale(t), y1: 10, y2: height - 40, class: "grid" }, svg);
    el("text", { x: scale(t), y: height - 26, "text-anchor": "middle" }, svg, String(t));
  }
  rows.forEach((r, i) => {
    const y = 14 + i * 20;
    el("text", { x: x0 - 6, y: y + 10, "text-anchor": "end" }, svg, r.factor);
    el("rect", { x: x0, y, width: Math.max(0, scale(r.ST) - x0), height: 14, fill: COLORS[2], "fill-opacity": 0.75 }, svg);
    el("line", { x1: scale(r.ST - r.ST_conf), x2: scale(r.ST + r.ST_conf), y1: y + 7, y2: y + 7, stroke: "#000" }, svg);
    el("text", { x: x1 + 8, y: y + 11 }, svg, `ST ${r.ST.toFixed(2)} ± ${r.ST_conf.toFixed(2)}`);
  });
  const r0 = rows[0];
  el("text", { x: 755, y: height - 6, "text-anchor": "end", "font-size": 9 }, svg,
    `${result.sobol.series}, N = ${r0.base_samples}${r0.converged ? "" : ", CIs wider than 0.05"}`);
}

function render(result) {
  const r = result.baseline;
  $("headline").innerHTML = `${result.series}: median <strong id="median" data-wh="${r.median}">${fmt(r.median)} Wh</strong>` +
    ` per query · 50%: ${fmt(r.p25)}–${fmt(r.p75)} · 90%: ${fmt(r.p5)}–${fmt(r.p95)} Wh` +
    ` <span class="meta">(${result.draws.toLocaleString("en")} draws per model, seed ${result.seed})</span>`;
  drawDistribution(result);
  drawPathways(result);
  drawSobol(result);
  $("warnings").replaceChildren(...result.warnings.map((w) => {
    const li = document.createElement("li");
    li.textContent = w.replace(/^[^:]*\//, "");
    return li;
  }));
}

// ---- start

async function start() {
  const { default: chosen, studies } = await (await call("/api/studies")).json();
  $("study").replaceChildren(...studies.map((s) => new Option(s.name, s.name, false, s.name === chosen)));
  $("study").addEventListener("change", () => loadStudy($("study").value));
  for (const id of ["series", "draws", "seed"]) $(id).addEventListener("change", schedule);
  for (const id of ["measured-model", "measured-gpu", "measured-boundary", "measured-tokens"]) {
    $(id).addEventListener("change", chooseMeasured);
  }
  $("show-estimates").addEventListener("change", () => page.last && drawDistribution(page.last));
  $("reset").addEventListener("click", () => { buildPriors(page.info.priors); schedule(); });
  $("download-toml").addEventListener("click", () => download("/api/study.toml", `${$("study").value}_whatif.toml`));
  $("download-json").addEventListener("click", () => download("/api/records.json", "summary.json"));
  $("download-csv").addEventListener("click", () => download("/api/records.csv", "summary.csv"));
  await loadStudy(chosen);
}

start().catch((error) => { $("error").textContent = error.message; $("error").hidden = false; });
