// The orch console: one page per view, drawn from the node's /api/ (console/console.h).
// Every value goes into the page as text (textContent), never as markup.
'use strict';

const S = { who: null, page: '', timer: null, es: null, busy: false };

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const k of kids.flat()) if (k !== null && k !== undefined) e.append(k instanceof Node ? k : String(k));
  return e;
}

async function api(path, body) {
  const opt = body === undefined ? {} : {
    method: 'POST', body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', 'X-Orch-Console': '1' },
  };
  let r;
  for (let tries = 0; ; tries++) {
    // a read the browser dropped (the machine's network changed under it) is asked again;
    // an action is not (it may have been done: undo twice is not undo once)
    try { r = await fetch('/api/' + path, opt); break; } catch (e) {
      if (tries === 2 || body !== undefined) throw e;
      await new Promise(res => setTimeout(res, 200));
    }
  }
  const j = await r.json();
  if (!r.ok || j.rc) throw new Error(j.err || ('HTTP ' + r.status));
  return j;
}

function toast(msg, err) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.className = 'toast' + (err ? ' err' : '');
  clearTimeout(toast.t);
  toast.t = setTimeout(() => t.classList.add('hidden'), 6000);
}

// An action asks first: the modal names what will happen.
function confirmAction(text, extra, run) {
  const m = document.getElementById('modal');
  document.getElementById('modal-text').textContent = text;
  const x = document.getElementById('modal-extra');
  x.replaceChildren(...(extra ? [extra] : []));
  m.classList.remove('hidden');
  S.busy = true;
  const done = () => { m.classList.add('hidden'); S.busy = false; ok.onclick = cancel.onclick = null; };
  const ok = document.getElementById('modal-ok'), cancel = document.getElementById('modal-cancel');
  cancel.onclick = done;
  ok.onclick = async () => {
    done();
    try { await run(); toast('done: ' + text.replace(/\?$/, '')); } catch (e) { toast(e.message, true); }
    refresh();
  };
}

const fmtBytes = b => { const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB']; let i = 0; b = Number(b) || 0; while (b >= 1024 && i < 4) { b /= 1024; i++; } return b.toFixed(i ? 1 : 0) + ' ' + u[i]; };
const fmtCpu = m => ((Number(m) || 0) / 1000).toFixed(2);
const stateTag = s => h('span', { class: 'st-' + String(s).replace(/[^a-z_]/g, '') }, s || '-');
const card = (k, v, id) => h('div', { class: 'card' }, h('div', { class: 'k' }, k), h('div', { class: 'v', id }, v));
function bar(n, d) { const b = h('span', { class: 'bar' }, h('span')); b.firstChild.style.width = (d ? Math.min(100, 100 * n / d) : 0) + '%'; return b; }
function table(heads, rows, id) {
  return h('table', { id }, h('thead', {}, h('tr', {}, heads.map(x => h('th', {}, x)))), h('tbody', {}, rows));
}
const specOf = s => s.spec || {};
function reservation(spec) {
  const r = ((spec.deploy || {}).resources || {}).reservations || {};
  return { cpu: 1000 * (Number(r.cpus) || 0), mem: Number(r.memory) || 0 }; // cpus: CPUs as text, like "0.25"
}
const can = role => ({ viewer: 1, operator: 2, admin: 3 }[S.who.role] || 0) >= ({ viewer: 1, operator: 2, admin: 3 }[role]);

// ---- pages -------------------------------------------------------------------------------

async function pageCluster(main) {
  const [st, nodes, svcs, tasks, top, hashes] = await Promise.all([api('status'), api('nodes'), api('services'), api('tasks'),
    api('top').catch(() => ({ tasks: [] })), api('hashes').catch(() => ({ nodes: [] }))]);
  // nodes at the same applied index must hold the same state
  const byIndex = {}, hashOf = {};
  for (const x of hashes.nodes) {
    hashOf[x.name] = x;
    if (x.hash) (byIndex[x.applied] || (byIndex[x.applied] = new Set())).add(x.hash);
  }
  const groups = Object.entries(byIndex), split = groups.filter(([, v]) => v.size > 1).map(([k]) => k);
  const answered = hashes.nodes.filter(x => x.hash).length;
  const agreement = split.length ? 'DIFFER at ' + split.join(', ') :
    groups.some(([k]) => hashes.nodes.filter(x => String(x.applied) === k).length > 1) ? 'agree (' + answered + ' of ' + hashes.nodes.length + ' nodes)' :
    answered > 1 ? 'no two at one index yet' : answered + ' of ' + hashes.nodes.length + ' answered';
  const res = {}, used = {};
  const specs = Object.fromEntries(svcs.services.map(s => [s.name, specOf(s)]));
  for (const t of tasks.tasks) {
    if (t.desired !== 'running') continue;
    const r = reservation(specs[t.service] || {}), n = res[t.node] || (res[t.node] = { cpu: 0, mem: 0, tasks: 0 });
    n.cpu += r.cpu; n.mem += r.mem; n.tasks++;
  }
  for (const t of top.tasks || []) {
    const u = used[t.node] || (used[t.node] = { cpu: 0, mem: 0 });
    u.cpu += (t.cpu_pct || 0) * 10; u.mem += t.memory || 0;
  }
  const ready = nodes.nodes.filter(n => n.state === 'ready').length;
  main.replaceChildren(
    h('h2', {}, 'Cluster ', h('span', { class: 'muted' }, st.cluster)),
    h('div', { class: 'cards' },
      card('leader', st.leader_name || '(none)', 'c-leader'), card('term', st.term, 'c-term'),
      card('nodes ready', ready + ' / ' + nodes.nodes.length, 'c-nodes'), card('services', svcs.services.length, 'c-services'),
      card('tasks', tasks.tasks.length, 'c-tasks'),
      card('applied / commit', (st.applied_index ?? '-') + ' / ' + (st.commit_index ?? '-')),
      card('state hashes', agreement, 'c-hash')),
    table(['node', 'role', 'kind', 'state', 'availability', 'tasks', 'CPU reserved / used / total', 'memory reserved / used / total', 'labels', 'state hash @ applied', ''],
      nodes.nodes.map(n => {
        const r = res[n.name] || { cpu: 0, mem: 0, tasks: 0 }, u = used[n.name] || { cpu: 0, mem: 0 };
        const acts = h('td', {});
        if (can('admin')) {
          const to = n.availability === 'active' ? 'drain' : 'active';
          acts.append(h('button', { 'data-node': n.name, onclick: () => confirmAction((to === 'drain' ? 'Drain' : 'Activate') + ' node ' + n.name + '?', null,
            () => api('node.update', { node: n.id, availability: to })) }, to === 'drain' ? 'Drain' : 'Activate'));
        }
        return h('tr', { 'data-node': n.name },
          h('td', {}, n.name, n.leader ? h('span', { class: 'tag' }, 'leader') : null, n.self ? h('span', { class: 'tag' }, 'this node') : null),
          h('td', {}, n.role), h('td', {}, n.kind), h('td', { class: 'state' }, stateTag(n.state)), h('td', {}, n.availability),
          h('td', { class: 'num' }, r.tasks),
          h('td', { class: 'num' }, fmtCpu(r.cpu) + ' / ' + fmtCpu(u.cpu) + ' / ' + fmtCpu(n.cpus_milli)),
          h('td', { class: 'num' }, fmtBytes(r.mem) + ' / ' + fmtBytes(u.mem) + ' / ' + fmtBytes(n.memory)),
          h('td', {}, Object.entries(n.labels || {}).map(([k, v]) => h('span', { class: 'tag' }, k + '=' + v))),
          h('td', { class: 'muted hash' }, hashOf[n.name] ? (hashOf[n.name].hash ? hashOf[n.name].hash.slice(0, 12) + ' @ ' + hashOf[n.name].applied : hashOf[n.name].err) : ''), acts);
      }), 'nodes'));
}

function ports(spec) {
  return (spec.ports || []).map(p => typeof p === 'object' ? (p.published || '') + ':' + (p.target || '') + (p.protocol && p.protocol !== 'tcp' ? '/' + p.protocol : '') : String(p)).join(', ');
}

function serviceActions(s) {
  const td = h('td', {});
  if (!can('operator')) return td;
  const inp = h('input', { type: 'number', min: 0, value: s.replicas, 'data-scale': s.name });
  td.append(inp, h('button', { 'data-scale-go': s.name, onclick: () => {
    const n = Number(inp.value);
    confirmAction('Scale ' + s.name + ' from ' + s.replicas + ' to ' + n + ' replicas?', null, () => api('service.scale', { name: s.name, replicas: n }));
  } }, 'Scale'));
  for (const a of ['pause', 'resume', 'undo'])
    td.append(' ', h('button', { 'data-rollout': a + ':' + s.name, onclick: () => confirmAction(
      (a === 'undo' ? 'Roll ' + s.name + ' back to its previous version' : (a === 'pause' ? 'Pause' : 'Resume') + ' the rollout of ' + s.name) + '?', null,
      () => api('service.update', { name: s.name, action: a })) }, a));
  return td;
}

async function pageServices(main) {
  const [svcs, imgs] = await Promise.all([api('services'), api('images').catch(() => ({ images: [] }))]);
  const digest = {};
  for (const i of imgs.images || []) digest[i.name] = i.digest;
  main.replaceChildren(h('h2', {}, 'Services'),
    table(['service', 'replicas (running / desired)', 'image', 'digest', 'ports', 'rollout', 'generation', '', 'actions'],
      svcs.services.map(s => {
        const sp = specOf(s);
        return h('tr', { 'data-service': s.name },
          h('td', {}, h('a', { href: '#/service/' + encodeURIComponent(s.name) }, s.name)),
          h('td', { class: 'num' }, h('span', { class: 'replicas' }, s.running + ' / ' + s.desired), ' ', bar(s.running, s.desired)),
          h('td', {}, sp.image || ''), h('td', { class: 'muted' }, String(digest[sp.image] || '').replace('sha256:', '').slice(0, 12)),
          h('td', {}, ports(sp)), h('td', {}, stateTag(s.update_state || 'completed'), ' ', h('span', { class: 'muted' }, s.update_msg || '')),
          h('td', { class: 'num' }, s.generation), h('td', {}, h('a', { href: '#/logs/' + encodeURIComponent(s.name) }, 'logs')),
          serviceActions(s));
      }), 'services'));
}

async function pageService(main, name) {
  const [s, ev] = await Promise.all([api('service.get?name=' + encodeURIComponent(name)), api('events?limit=500')]);
  const sv = Object.assign({}, s.service || {}, s);
  const mine = (ev.events || []).filter(e => e.service === name);
  const scaling = mine.filter(e => /scal/.test(e.kind)), rollout = mine.filter(e => /roll|updat/.test(e.kind));
  const sp = specOf(sv), prev = s.previous_spec || null;
  // rollout progress: the live tasks already at the service's generation
  const live = (s.tasks || []).filter(t => t.desired === 'running'), updated = live.filter(t => t.generation === sv.generation).length;
  main.replaceChildren(h('h2', {}, 'Service ' + name),
    h('div', { class: 'cards' }, card('replicas', sv.running + ' / ' + sv.replicas), card('generation', sv.generation),
      card('rollout', sv.update_state || 'completed'), card('at this generation', h('span', {}, updated + ' / ' + live.length + ' ', bar(updated, live.length)), 's-updated'), card('image', sp.image || ''), card('previous image', prev ? prev.image || '' : '(none)')),
    table(['', 'actions'], [h('tr', {}, h('td', {}, sv.update_msg || ''), serviceActions({ name, replicas: sv.replicas }))]),
    h('h3', {}, 'Rollout history (generations)'),
    table(['time', 'event', 'message'], rollout.slice().reverse().map(e => h('tr', {}, h('td', {}, new Date(e.at).toLocaleTimeString()), h('td', {}, e.kind), h('td', {}, e.message)))),
    h('h3', {}, 'Autoscaler and scaling decisions'),
    table(['time', 'event', 'message'], scaling.slice().reverse().map(e => h('tr', {}, h('td', {}, new Date(e.at).toLocaleTimeString()), h('td', {}, e.kind), h('td', {}, e.message)))),
    h('h3', {}, 'Tasks'),
    table(['task', 'slot', 'node', 'state', 'health', 'generation'], (s.tasks || []).map(t => h('tr', {},
      h('td', {}, String(t.id)), h('td', {}, t.slot), h('td', {}, t.node), h('td', {}, stateTag(t.state)), h('td', {}, t.health || ''), h('td', {}, t.generation)))));
}

async function pageTasks(main) {
  const t = await api('tasks');
  const by = {};
  for (const x of t.tasks) (by[x.node || '(unplaced)'] || (by[x.node || '(unplaced)'] = [])).push(x);
  main.replaceChildren(h('h2', {}, 'Tasks per node ', h('span', { class: 'muted', id: 'task-count' }, t.tasks.length + ' tasks')),
    ...Object.keys(by).sort().map(n => {
      const d = h('details', { 'data-node': n }, h('summary', {}, n + ' — ' + by[n].length + ' tasks'));
      // rows only when opened: a node of 10,000 tasks costs nothing until looked at
      d.addEventListener('toggle', () => {
        if (!d.open || d.querySelector('table')) return;
        d.append(table(['task', 'service', 'slot', 'state', 'desired', 'health', 'restarts'], by[n].map(x => h('tr', {},
          h('td', {}, String(x.id)), h('td', {}, x.service), h('td', {}, x.slot), h('td', {}, stateTag(x.state)), h('td', {}, x.desired), h('td', {}, x.health || ''), h('td', {}, x.restarts)))));
      });
      return d;
    }));
}

function pageEvents(main) {
  const feed = h('div', { class: 'feed', id: 'feed' }), dot = h('span', { class: 'live off', id: 'live' });
  main.replaceChildren(h('h2', {}, dot, 'Events (live)'), feed);
  S.es = new EventSource('/api/stream');
  S.es.onopen = () => dot.classList.remove('off');
  S.es.onerror = () => dot.classList.add('off');
  S.es.onmessage = m => {
    const e = JSON.parse(m.data);
    feed.prepend(h('div', { 'data-kind': e.kind },
      h('span', { class: 'muted' }, new Date(e.at).toLocaleTimeString() + ' '), h('span', { class: 'kind' }, e.kind),
      e.service ? h('span', { class: 'tag' }, e.service) : null, e.node ? h('span', { class: 'tag' }, e.node) : null, ' ', e.message));
    while (feed.childNodes.length > 1000) feed.lastChild.remove();
  };
}

async function pageLogs(main, name) {
  const pre = h('pre', { class: 'logs', id: 'logs' }, '…');
  main.replaceChildren(h('h2', {}, 'Logs of ' + name + ' ', h('button', { onclick: () => pageLogs(main, name) }, 'Reload')), pre);
  try {
    const r = await api('logs.cluster?service=' + encodeURIComponent(name));
    const lines = [];
    for (const f of r.frames) {
      if (f.warn) lines.push('! ' + f.warn);
      else for (const l of String(f.text || '').split('\n')) if (l) lines.push(f.prefix + ' | ' + l);
    }
    pre.textContent = lines.slice(-2000).join('\n') || '(no output)';
    pre.scrollTop = pre.scrollHeight;
  } catch (e) { pre.textContent = e.message; }
}

// A line plot in SVG: the samples of one figure over the last hour, and a second line
// (more, drawn in orange) when given.
function plot(title, pts, now, fmt, floor, more) {
  const W = 400, H = 140, L = 44, B = 18, ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H + B}`);
  const mk = (t, a) => { const e = document.createElementNS(ns, t); for (const k in a) e.setAttribute(k, a[k]); svg.append(e); return e; };
  const all = more ? pts.concat(more) : pts;
  const max = Math.max(floor, ...all.map(p => p[1])) * 1.1, t0 = now - 3600e3;
  const x = t => L + (W - L) * Math.max(0, (t - t0) / 3600e3), y = v => H - H * v / max;
  mk('line', { x1: L, y1: H, x2: W, y2: H, stroke: '#aab' });
  mk('line', { x1: L, y1: 0, x2: L, y2: H, stroke: '#aab' });
  for (const f of [0.5, 1]) { const t = mk('text', { x: 2, y: y(max * f / 1.1) + 4, 'font-size': 10, fill: '#667' }); t.textContent = fmt(max * f / 1.1); }
  for (const m of [60, 30, 0]) { const t = mk('text', { x: x(now - m * 60e3) - (m ? 14 : 22), y: H + 14, 'font-size': 10, fill: '#667' }); t.textContent = m ? '-' + m + 'm' : 'now'; }
  const line = (ps, colour) => {
    if (ps.length) mk('polyline', { points: ps.map(p => x(p[0]).toFixed(1) + ',' + y(p[1]).toFixed(1)).join(' '), fill: 'none', stroke: colour, 'stroke-width': 1.5 });
    // a line of one point draws nothing: a few samples (a fresh console, sparse latency) get dots
    if (ps.length < 60) for (const p of ps) mk('circle', { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 2, fill: colour });
  };
  line(pts, '#2458d6');
  if (more) line(more, '#d9822b');
  return h('div', { class: 'plot' }, h('div', { class: 'title' }, title), svg);
}

async function pagePlots(main) {
  const hs = await api('history');
  const blocks = hs.services.map(s => [h('h3', {}, s.name), h('div', { class: 'plots' },
    plot('requests/s', s.samples.map(p => [p[0], p[1]]), hs.now, v => v.toFixed(1), 1),
    plot('CPU %', s.samples.map(p => [p[0], p[2]]), hs.now, v => v.toFixed(1), 1),
    plot('memory', s.samples.map(p => [p[0], p[3]]), hs.now, fmtBytes, 1 << 20),
    // a sample with no request timed has no latency (null): no point rather than a zero
    plot('latency ms, p50 (blue) and p95', s.samples.filter(p => p[4] !== null).map(p => [p[0], p[4]]), hs.now,
      v => v.toFixed(1), 1, s.samples.filter(p => p[5] !== null).map(p => [p[0], p[5]])))]);
  main.replaceChildren(h('h2', {}, 'Plots (last hour, a sample every ' + hs.period_ms / 1000 + ' s)'),
    h('p', { class: 'muted' }, 'Requests through the routing mesh, CPU and memory summed over each service\'s tasks. Latency: HTTP requests through the mesh, from the request\'s first byte to the backend\'s first answer byte, p50 and p95 of the requests in each sample\'s 5 s.'),
    ...(blocks.length ? blocks.flat() : [h('p', { class: 'muted' }, 'No samples yet.')]));
}

// ---- routing -----------------------------------------------------------------------------

async function refresh() {
  if (S.busy || (document.activeElement && document.activeElement.tagName === 'INPUT')) return;
  const [page, arg] = (location.hash.replace(/^#\//, '') || 'cluster').split('/');
  const main = document.getElementById('main');
  const fn = { cluster: pageCluster, services: pageServices, service: pageService, tasks: pageTasks, plots: pagePlots }[page];
  if (!fn) return;
  try {
    const t0 = performance.now();
    await fn(main, decodeURIComponent(arg || ''));
    document.body.dataset.loaded = page;
    document.body.dataset.loadMs = Math.round(performance.now() - t0);
  } catch (e) { main.replaceChildren(h('p', { class: 'st-failed' }, e.message)); }
}

function route() {
  clearInterval(S.timer);
  delete document.body.dataset.loaded;
  if (S.es) { S.es.close(); S.es = null; }
  const [page, arg] = (location.hash.replace(/^#\//, '') || 'cluster').split('/');
  for (const a of document.querySelectorAll('nav a')) a.classList.toggle('on', a.dataset.page === page);
  const main = document.getElementById('main');
  if (page === 'events') {
    const t0 = performance.now();
    pageEvents(main);
    // drawn once the stream is open (its first events come with it)
    S.es.addEventListener('open', () => { document.body.dataset.loaded = 'events'; document.body.dataset.loadMs = Math.round(performance.now() - t0); });
    return;
  }
  if (page === 'logs') {
    const t0 = performance.now();
    pageLogs(main, decodeURIComponent(arg || '')).then(() => { document.body.dataset.loaded = 'logs'; document.body.dataset.loadMs = Math.round(performance.now() - t0); });
    return;
  }
  refresh();
  S.timer = setInterval(refresh, page === 'tasks' ? 10000 : 3000);
}

async function start() {
  try { S.who = await api('whoami'); } catch (e) { S.who = { role: 'viewer', node: '?' }; }
  document.getElementById('who').textContent = S.who.node + ' · ' + (S.who.user ? S.who.user + ' · ' : '') + S.who.role;
  window.addEventListener('hashchange', route);
  route();
}
start();
