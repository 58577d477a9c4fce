// The live page: polls /api/state each second, updates numbers and uPlot charts in place (no reload).
const METRICS = [
  ["backlog", "backlog", v => fmt(v)],
  ["in_flight", "in flight", v => v === null ? "–" : fmt(v)],
  ["dead_letters", "dead letters", v => fmt(v)],
  ["publish_rate", "published/s", v => v === null ? "–" : v.toFixed(0)],
  ["consume_rate", "consumed/s", v => v === null ? "–" : v.toFixed(0)],
  ["consumers", "consumers", v => v === null ? "–" : fmt(v)],
];
const charts = {};  // "stack/workload" -> uPlot
const fmt = v => (v === null || v === undefined) ? "–" : Number(v).toLocaleString("en");

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

function stackSection(stack) {
  let sec = document.getElementById("stack-" + stack.name);
  if (!sec) {
    sec = el("section", {class: "stack", id: "stack-" + stack.name});
    const h2 = el("h2", {}, stack.name, el("span", {class: "dim"}, stack.broker));
    for (const [label, url] of Object.entries(stack.links)) h2.append(el("a", {href: url, target: "_blank"}, label));
    sec.append(h2, el("div", {class: "error"}), el("div", {class: "cards"}));
    document.getElementById("stacks").append(sec);
  }
  sec.querySelector(".error").textContent = stack.error || "";
  return sec;
}

function card(sec, stack, w) {
  const id = `${stack.name}/${w.name}`;
  let c = sec.querySelector(`[data-card="${id}"]`);
  if (!c) {
    c = el("div", {class: "card", "data-card": id});
    const numbers = el("div", {class: "numbers"});
    for (const [key, label] of METRICS) {
      numbers.append(el("div", {"data-metric": key}, el("b", {"data-stack": stack.name, "data-workload": w.name,
        "data-value": key}, "–"), el("span", {}, label)));
    }
    const chart = el("div", {class: "chart"});
    const legend = el("div", {class: "legend"}, el("i", {style: "color:#2563eb"}, "━ backlog"),
      el("i", {style: "color:#16a34a"}, "━ published/s"), el("i", {style: "color:#d97706"}, "━ consumed/s (right axis)"));
    c.append(el("h3", {}, w.name), numbers, chart, legend, el("ul", {class: "reasons"}));
    sec.querySelector(".cards").append(c);
    charts[id] = new uPlot({
      width: 320, height: 110, legend: {show: false}, cursor: {show: false},
      // the last minute, even with one sample so far (uPlot would otherwise span years around a lone point)
      scales: {x: {time: true, range: (u, min, max) => [max - 60, max]}, rate: {auto: true}},
      series: [{}, {label: "backlog", stroke: "#2563eb", width: 1.5, points: {show: false}},
               {label: "pub/s", stroke: "#16a34a", scale: "rate", width: 1, points: {show: false}},
               {label: "cons/s", stroke: "#d97706", scale: "rate", width: 1, points: {show: false}}],
      axes: [{size: 24, font: "10px system-ui"}, {size: 50, font: "10px system-ui"},
             {side: 1, scale: "rate", size: 46, font: "10px system-ui", grid: {show: false}}],
    }, [[], [], [], []], chart);
  }
  for (const [key, , show] of METRICS) {
    const box = c.querySelector(`[data-metric="${key}"]`);
    box.querySelector("b").textContent = show(w[key]);
    box.classList.toggle("bad", key === "dead_letters" && w[key] > 0);
  }
  const reasons = c.querySelector("ul.reasons");
  reasons.replaceChildren(...w.reasons.map(r => el("li", {}, r)));
  const s = w.series;
  charts[id].setData([s.map(p => p.t), s.map(p => p.backlog), s.map(p => p.publish_rate), s.map(p => p.consume_rate)]);
}

async function tick() {
  try {
    const state = await (await fetch("/api/state")).json();
    for (const stack of state.stacks) {
      const sec = stackSection(stack);
      if (!stack.workloads.length && !stack.error && !sec.querySelector(".empty")) {
        sec.querySelector(".cards").append(el("p", {class: "empty"}, "nothing declared yet: start a run"));
      }
      if (stack.workloads.length) sec.querySelector(".empty")?.remove();
      for (const w of stack.workloads) card(sec, stack, w);
    }
    document.getElementById("status").textContent = ` · updated ${new Date(state.t * 1000).toLocaleTimeString()}`;
    document.body.dataset.samples = state.samples;
  } catch (e) {
    document.getElementById("status").textContent = ` · dashboard unreachable (${e})`;
  }
}
tick();
setInterval(tick, 1000);
