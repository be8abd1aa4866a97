// Warden console: one ES module, no framework, no build step. Every text
// from the server goes into the page through textContent (the `h` helper
// below), never parsed as markup: an extension's name or description is data.
// The page calls the same REST API as curl does, with the session cookie;
// what a user sees and may do is what the API lets them.

const S = { user: null, csrf: '', can: {} };
const $ = (id) => document.getElementById(id);

// Builds an element: attrs are properties/attributes, children strings
// (made text nodes) or nodes.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'onclick' || k === 'onsubmit' || k === 'onchange') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// Replaces a node's children, skipping the null/false of optional parts
// (DOM's replaceChildren would write a null as the text "null").
function fill(node, ...nodes) {
  node.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined && n !== false));
}

function flash(text, error) {
  const box = $('flash');
  fill(box, h('div', { class: error ? 'msg error' : 'msg', id: error ? 'flash-error' : 'flash-ok' }, text));
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(method, path, body) {
  const headers = { 'x-warden-console': '1' };
  if (method !== 'GET' && method !== 'HEAD') headers['x-csrf-token'] = S.csrf;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  if (!response.ok) {
    const reason = (data && data.error && (data.error.reason || data.error.type)) || (data && data.message) || response.statusText;
    if (response.status === 401 && !path.startsWith('/_warden/console/')) showLogin('Your session has ended: sign in again.');
    throw new ApiError(response.status, `${response.status}: ${reason}`);
  }
  return data;
}

// Runs an action, then re-renders; errors are shown, never swallowed.
async function act(what, fn) {
  try {
    const result = await fn();
    flash(`${what}: done`);
    await route();
    return result;
  } catch (e) {
    flash(`${what}: ${e.message}`, true);
    return null;
  }
}

const enc = encodeURIComponent;
const fmtTime = (ms) => (ms ? new Date(ms).toISOString().replace('.000Z', 'Z') : '');
const stateBadge = (s) => h('span', { class: `state state-${s}` }, s);

// ---- sign-in ----

function showLogin(message) {
  S.user = null;
  $('nav').hidden = true;
  $('logout').hidden = true;
  $('who').textContent = '';
  fill($('view'));
  $('login').hidden = false;
  if (message) flash(message, true);
}

function signedIn(session) {
  S.user = session.user;
  S.csrf = session.csrf_token;
  S.can = session.can || {};
  $('login').hidden = true;
  $('nav').hidden = false;
  $('logout').hidden = false;
  $('who').textContent = `${session.user} (${(session.roles || []).join(', ')})`;
}

async function login(event) {
  event.preventDefault();
  const user = $('login-user').value;
  const password = $('login-password').value;
  try {
    const session = await api('POST', '/_warden/console/_login', { user, password });
    $('login-password').value = '';
    signedIn(session);
    fill($('flash'));
    if (!location.hash || location.hash === '#/') location.hash = '#/extensions';
    else await route();
  } catch (e) {
    flash(e.status === 429 ? 'Too many failed sign-ins: wait and try again.' : `Sign-in failed (${e.message})`, true);
  }
}

async function logout() {
  try { await api('POST', '/_warden/console/_logout'); } catch (_) { /* the cookie is cleared anyway */ }
  showLogin();
  flash('Signed out.');
}

// ---- extensions ----

async function extensionsPage(view) {
  const data = await api('GET', '/_warden/extensions');
  const rows = data.extensions.map((e) => h('tr', { dataset: { ext: e.id } },
    h('td', {}, h('a', { href: `#/extensions/${enc(e.id)}`, class: 'ext-link', dataset: { ext: e.id } }, e.id)),
    h('td', {}, e.version, e.upgrade ? h('span', { class: 'state state-upgrade' }, ` → ${e.upgrade.version} waiting`) : null),
    h('td', {}, stateBadge(e.state), ' ', e.serving ? stateBadge('serving') : null),
    h('td', {}, (e.capabilities || []).join(', ')),
    h('td', { class: 'muted' }, e.review && e.review.description ? e.review.description : ''),
    h('td', { class: 'state-error' }, e.last_error || '')));
  fill(view, 
    h('h1', {}, `Extensions (${data.extensions.length})`),
    h('table', { id: 'extensions' },
      h('thead', {}, h('tr', {}, ['Id', 'Version', 'State', 'Capabilities', 'Description', 'Error'].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows)));
}

function actionLines(lines) {
  return (lines || []).map((a) => h('li', {}, a.permission,
    a.group ? h('span', { class: 'muted' }, ` (group: ${a.group.join(', ')})`) : null,
    a.known_actions && a.known_actions.length ? h('span', { class: 'muted' }, ` covers ${a.known_actions.length} known action(s)`) : null));
}

function patternLines(lines) {
  return (lines || []).map((p) => h('li', {}, p.pattern, ' — ', p.meaning,
    p.could_reach_system_indices ? h('strong', { class: 'state-error' }, ' (could name system indices: refused anyway)') : null));
}

function reviewSection(review) {
  if (!review) return h('p', { class: 'muted' }, 'No review available.');
  const p = review.policy || { cluster: [], indices: [] };
  return h('div', { id: 'review' },
    h('h2', {}, `${review.name} ${review.version}`),
    review.description ? h('p', { id: 'review-description' }, review.description) : null,
    h('h2', {}, 'Capabilities'),
    h('ul', {}, review.capabilities.map((c) => h('li', {}, h('strong', {}, c.name), ': ', c.meaning))),
    h('h2', {}, `Policy (role ${review.policy_role})`),
    h('p', {}, 'Cluster permissions:'), h('ul', {}, actionLines(p.cluster)),
    h('p', {}, 'Index permissions:'),
    h('ul', {}, p.indices.map((i) => h('li', {}, h('ul', {}, patternLines(i.patterns)), h('ul', {}, actionLines(i.actions))))),
    h('h2', {}, 'Roles'),
    h('ul', {}, review.roles.map((r) => h('li', {}, h('strong', {}, r.name), r.description ? ` — ${r.description}` : '',
      h('ul', {}, r.extension_permissions.map((x) => h('li', {}, x)), actionLines(r.permissions.cluster))))),
    h('h2', {}, 'Routes'),
    h('table', { id: 'routes' }, h('tbody', {}, review.routes.map((r) => h('tr', {},
      h('td', {}, `${r.method} ${r.path}`), h('td', {}, r.permission), h('td', {}, r.description || ''),
      h('td', {}, h('ul', {}, actionLines(r.performs), patternLines(r.on))))))),
    h('h2', {}, 'Jobs'),
    h('ul', {}, review.jobs.map((j) => h('li', {}, h('strong', {}, j.name), j.description ? ` — ${j.description}` : '',
      h('ul', {}, actionLines(j.performs), patternLines(j.on))))),
    h('h2', {}, 'Limits'),
    h('ul', {}, (review.limits || []).map((l) => h('li', {}, typeof l === 'string' ? l : Object.values(l).join(': ')))));
}

function deltaItem(x) {
  if (typeof x === 'string') return x;
  if (x.index_pattern !== undefined) return `${x.action} on ${x.index_pattern}`;
  if (x.role !== undefined) return `${x.role}: ${x.permission}`;
  return JSON.stringify(x);
}

function deltaSection(delta) {
  const kinds = ['capabilities', 'cluster_permissions', 'index_permissions', 'roles', 'role_permissions', 'routes', 'jobs', 'limits'];
  const rows = [];
  for (const k of kinds) {
    const c = delta[k] || { added: [], removed: [] };
    for (const a of c.added) rows.push(h('li', { class: 'added', dataset: { kind: k } }, `${k.replace('_', ' ')}: ${deltaItem(a)}`));
    for (const r of c.removed) rows.push(h('li', { class: 'removed', dataset: { kind: k } }, `${k.replace('_', ' ')}: ${deltaItem(r)}`));
  }
  return h('ul', { id: 'delta' }, rows.length ? rows : h('li', { class: 'muted' }, 'No change in permissions.'));
}

function grantsForm(e) {
  const requested = (e.requested && e.requested.capabilities) || e.capabilities || [];
  const granted = new Set((e.granted && e.granted.capabilities) || requested);
  const policy = (e.granted && e.granted.policy) || (e.requested && e.requested.policy) || {};
  const boxes = requested.map((c) => h('label', {}, h('input', { type: 'checkbox', value: c, checked: granted.has(c), class: 'grant-cap' }), c));
  const text = h('textarea', { id: 'grant-policy' });
  text.value = JSON.stringify(policy, null, 2);
  return h('form', {
    id: 'grants-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      let parsed;
      try { parsed = JSON.parse(text.value); } catch (err) { flash(`Policy is not JSON: ${err.message}`, true); return; }
      const capabilities = [...document.querySelectorAll('.grant-cap')].filter((b) => b.checked).map((b) => b.value);
      act('Narrow grants', () => api('PUT', `/_warden/extensions/${enc(e.id)}/grants`, { capabilities, policy: parsed }));
    },
  }, h('h2', {}, 'Grants (at most what the manifest requests)'), h('div', {}, boxes), text, h('button', { type: 'submit', id: 'grants-save' }, 'Save grants'));
}

async function extensionPage(view, id) {
  const e = await api('GET', `/_warden/extensions/${enc(id)}`);
  const admin = S.can.manage_extensions;
  const actions = h('div', { class: 'actions' });
  if (admin && (e.state === 'pending' || e.upgrade)) {
    actions.append(h('button', {
      id: 'approve', class: 'primary',
      onclick: () => act(`Approve ${e.id}`, () => api('POST', `/_warden/extensions/${enc(e.id)}/_approve?digest=${enc(e.review_digest || '')}`)),
    }, e.upgrade ? `Approve upgrade to ${e.upgrade.version}` : 'Approve'));
    actions.append(h('button', {
      id: 'reject', class: 'danger',
      onclick: () => {
        if (e.upgrade) act(`Discard upgrade of ${e.id}`, () => api('DELETE', `/_warden/extensions/${enc(e.id)}/upgrade`));
        else if (confirmed(`Reject and remove the pending ${e.id}?`)) act(`Reject ${e.id}`, () => api('DELETE', `/_warden/extensions/${enc(e.id)}`).then(() => { location.hash = '#/extensions'; }));
      },
    }, e.upgrade ? 'Reject upgrade' : 'Reject'));
  }
  if (admin) {
    actions.append(h('button', { id: 'check', onclick: () => showCheck(e.id) }, 'Missing-permission report'));
    if (e.state !== 'pending') {
      actions.append(h('button', {
        id: 'remove', class: 'danger',
        onclick: () => { if (confirmed(`Remove ${e.id}? Its jobs are suspended and its routes stop at once.`)) act(`Remove ${e.id}`, () => api('DELETE', `/_warden/extensions/${enc(e.id)}`).then(() => { location.hash = '#/extensions'; })); },
      }, 'Remove'));
    }
  }
  fill(view, 
    h('h1', {}, `Extension ${e.id}`),
    h('p', {}, 'Version ', h('strong', { id: 'ext-version' }, e.version), ' · state ', h('span', { id: 'ext-state' }, stateBadge(e.state)),
      e.serving ? ' · serving' : ' · not serving', ` · installed ${fmtTime(e.installed_at)} by ${e.installed_by || '?'}`,
      e.approved_by ? ` · approved by ${e.approved_by}` : ''),
    e.last_error ? h('p', { class: 'state-error' }, e.last_error) : null,
    actions,
    h('div', { id: 'check-report' }),
    e.upgrade ? h('section', { id: 'upgrade' },
      h('h2', {}, `Upgrade waiting: ${e.version} → ${e.upgrade.version}`),
      h('p', { class: 'muted' }, `submitted ${fmtTime(e.upgrade.submitted_at)} by ${e.upgrade.submitted_by || '?'}; highlighted items are added`),
      e.upgrade.delta ? deltaSection(e.upgrade.delta) : h('p', {}, 'No delta available.')) : null,
    reviewSection(e.review),
    admin && e.state !== 'pending' ? grantsForm(e) : null,
    h('h2', {}, 'Manifest'), h('pre', {}, e.manifest || ''));
}

function confirmed(question) {
  // window.confirm is a blocking dialog; the WebDriver tests accept it.
  return window.confirm(question);
}

async function showCheck(id) {
  try {
    const report = await api('GET', `/_warden/extensions/${enc(id)}/_check`);
    fill($('check-report'), h('h2', {}, report.clean ? 'Nothing missing' : 'Missing permissions'), h('pre', { id: 'check-text' }, report.report_text));
  } catch (e) { flash(`Report: ${e.message}`, true); }
}

// ---- jobs ----

async function jobsPage(view, query) {
  const params = new URLSearchParams(query);
  const q = new URLSearchParams();
  if (params.get('extension')) q.set('extension', params.get('extension'));
  if (params.get('user')) q.set('user', params.get('user'));
  const data = await api('GET', `/_warden/jobs?${q}`);
  const stateFilter = params.get('state') || '';
  const jobState = (j) => (j.suspended ? 'suspended' : j.enabled ? 'enabled' : 'disabled');
  const jobs = data.jobs.filter((j) => !stateFilter || jobState(j) === stateFilter);
  const field = (name, label) => h('label', {}, label, h('input', { name, value: params.get(name) || '' }));
  const select = h('select', { name: 'state' }, ['', 'enabled', 'disabled', 'suspended'].map((s) => h('option', { value: s, selected: s === stateFilter }, s || 'any')));
  const filter = h('form', {
    id: 'jobs-filter',
    onsubmit: (ev) => {
      ev.preventDefault();
      const f = new URLSearchParams(new FormData(ev.target));
      for (const [k, v] of [...f]) if (!v) f.delete(k);
      location.hash = `#/jobs?${f}`;
    },
  }, field('extension', 'Extension'), field('user', 'Owner'), h('label', {}, 'State', select), h('button', { type: 'submit' }, 'Filter'));
  const rows = jobs.map((j) => h('tr', { dataset: { job: j.id } },
    h('td', {}, h('a', { href: `#/jobs/${enc(j.id)}` }, j.name || j.id)),
    h('td', {}, j.extension), h('td', {}, j.user), h('td', {}, JSON.stringify(j.schedule)),
    h('td', { class: 'job-state' }, stateBadge(jobState(j))),
    h('td', {}, `${j.runs} runs, ${j.failures} failed`), h('td', {}, fmtTime(j.next_run)),
    h('td', {}, jobActions(j))));
  fill(view, h('h1', {}, `Jobs (${jobs.length})`), filter,
    h('table', { id: 'jobs' },
      h('thead', {}, h('tr', {}, ['Job', 'Extension', 'Owner', 'Schedule', 'State', 'Runs', 'Next run', ''].map((t) => h('th', {}, t)))),
      h('tbody', {}, rows)));
}

function jobActions(j) {
  const base = `/_warden/jobs/${enc(j.id)}`;
  return h('span', { class: 'actions' },
    j.enabled ? h('button', { class: 'job-disable', onclick: () => act('Disable', () => api('POST', `${base}/_disable`)) }, 'Disable')
      : h('button', { class: 'job-enable', onclick: () => act('Enable', () => api('POST', `${base}/_enable`)) }, 'Enable'),
    h('button', { class: 'job-run', onclick: () => act('Run now', () => api('POST', `${base}/_run`)) }, 'Run now'),
    h('button', { class: 'danger job-remove', onclick: () => { if (confirmed('Remove this job?')) act('Remove job', () => api('DELETE', base)); } }, 'Remove'));
}

// A chart of a job's runs over time: each run's lateness (how long after
// its planned time it started) and how long it took, on one time axis,
// coloured by outcome. Built with DOM calls (no markup parsed); the
// colours come from app.css (the CSP allows no inline style).
const SVG = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

function runsChart(runs) {
  const points = runs.filter((r) => Number.isFinite(r.started_at)).sort((a, b) => a.started_at - b.started_at);
  if (points.length === 0) return h('p', { id: 'runs-chart-empty' }, 'No runs yet.');
  const [W, H, L, R, T, B] = [720, 200, 56, 12, 12, 28];
  const t0 = points[0].started_at;
  const t1 = Math.max(points[points.length - 1].started_at, t0 + 1);
  const top = Math.max(1, ...points.map((r) => Math.max(r.lateness_ms || 0, r.duration_ms || 0)));
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (ms) => H - B - (ms / top) * (H - T - B);
  const line = (field, cls) => s('polyline', {
    class: cls, fill: 'none',
    points: points.map((r) => `${x(r.started_at).toFixed(1)},${y(r[field] || 0).toFixed(1)}`).join(' '),
  });
  const dots = points.map((r) => s('circle', {
    class: `run-dot outcome-${String(r.outcome).replace(/[^a-z]/g, '')}`,
    cx: x(r.started_at).toFixed(1), cy: y(r.lateness_ms || 0).toFixed(1), r: 3.5,
  }, s('title', {}, `#${r.seq} ${r.started_at_iso}: ${r.outcome}, ${r.lateness_ms} ms late, took ${r.duration_ms} ms`)));
  return h('figure', { id: 'runs-chart' },
    s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': 'Runs over time: lateness and duration' },
      s('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }),
      s('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }),
      s('text', { class: 'tick', x: L - 6, y: T + 4, 'text-anchor': 'end' }, `${top} ms`),
      s('text', { class: 'tick', x: L - 6, y: H - B, 'text-anchor': 'end' }, '0'),
      s('text', { class: 'tick', x: L, y: H - 8 }, points[0].started_at_iso || ''),
      s('text', { class: 'tick', x: W - R, y: H - 8, 'text-anchor': 'end' }, points[points.length - 1].started_at_iso || ''),
      line('duration_ms', 'took'), line('lateness_ms', 'late'), dots),
    h('figcaption', {}, `${points.length} runs: lateness (line and dots, coloured by outcome) and duration (dashed)`));
}

async function jobPage(view, id) {
  const base = `/_warden/jobs/${enc(id)}`;
  const [j, runs] = await Promise.all([api('GET', base), api('GET', `${base}/runs`)]);
  fill(view, 
    h('h1', {}, `Job ${j.name || j.id}`),
    h('p', {}, `${j.extension} · owner ${j.user} (${j.auth_source}) · `, stateBadge(j.suspended ? 'suspended' : j.enabled ? 'enabled' : 'disabled')),
    jobActions(j),
    S.can.manage_jobs ? h('form', {
      id: 'job-owner',
      onsubmit: (ev) => {
        ev.preventDefault();
        const user = new FormData(ev.target).get('user');
        if (confirmed(`Give this job to ${user}? It will run with their permissions and consent.`)) act('Change owner', () => api('PUT', `${base}/_owner`, { user }));
      },
    }, h('label', {}, 'Re-associate to internal user', h('input', { name: 'user', required: true })), h('button', { type: 'submit' }, 'Change owner')) : null,
    h('h2', {}, `Runs (${runs.total} of at most ${runs.kept} kept)`),
    runsChart(runs.runs),
    h('table', { id: 'runs' },
      h('thead', {}, h('tr', {}, ['#', 'Scheduled', 'Started', 'Late (ms)', 'Took (ms)', 'Attempt', 'Outcome', 'Message'].map((t) => h('th', {}, t)))),
      h('tbody', {}, runs.runs.map((r) => h('tr', {}, h('td', {}, r.seq), h('td', {}, r.scheduled_at_iso), h('td', {}, r.started_at_iso),
        h('td', {}, r.lateness_ms), h('td', {}, r.duration_ms), h('td', {}, r.attempt), h('td', {}, stateBadge(String(r.outcome))), h('td', {}, r.message || ''))))));
}

// ---- consents ----

async function consentsPage(view, query) {
  const params = new URLSearchParams(query || '');
  const extension = params.get('extension') || '';
  const data = await api('GET', `/_warden/consents${extension ? `?extension=${enc(extension)}` : ''}`);
  const admin = S.can.manage_consents ? h('form', {
    id: 'consents-filter',
    onsubmit: (ev) => {
      ev.preventDefault();
      const e = new FormData(ev.target).get('extension');
      location.hash = e ? `#/consents?extension=${enc(e)}` : '#/consents';
    },
  }, h('label', {}, 'Extension (everyone\'s consents)', h('input', { name: 'extension', value: extension })),
  h('button', { type: 'submit' }, 'Show'),
  extension ? h('button', {
    type: 'button', class: 'danger', id: 'consents-revoke-extension',
    onclick: () => { if (confirmed(`Revoke every consent to ${extension}? Their jobs are suspended.`)) act(`Revoke consents to ${extension}`, () => api('DELETE', `/_warden/consents?extension=${enc(extension)}`)); },
  }, `Revoke all consents to ${extension}`) : null) : null;
  const rows = data.consents.map((c) => h('tr', { dataset: { consent: c.id, ext: c.extension } },
    h('td', {}, c.extension), h('td', {}, c.user), h('td', {}, JSON.stringify(c.scopes)),
    h('td', {}, c.live ? stateBadge('active') : stateBadge('ended')),
    h('td', {}, c.live ? h('button', { class: 'danger consent-revoke', onclick: () => act(`Revoke consent to ${c.extension}`, () => api('DELETE', `/_warden/consents/${enc(c.id)}`)) }, 'Revoke') : '')));
  fill(view, h('h1', {}, 'Consents'), admin,
    h('p', { class: 'muted' }, 'Revoking a consent suspends the extension\'s jobs that run as you.'),
    h('table', { id: 'consents' }, h('thead', {}, h('tr', {}, ['Extension', 'User', 'Scopes', 'State', ''].map((t) => h('th', {}, t)))), h('tbody', {}, rows)));
}

// ---- API tokens ----

async function tokensPage(view) {
  const tokens = await api('GET', '/_plugins/_security/api/apitokens');
  const secret = h('div', { id: 'token-secret' });
  const form = h('form', {
    id: 'token-form',
    onsubmit: async (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const body = { name: f.get('name'), cluster_permissions: String(f.get('cluster') || '').split(',').map((s) => s.trim()).filter(Boolean) };
      if (f.get('index')) { try { body.index_permissions = JSON.parse(f.get('index')); } catch (err) { flash(`Index permissions are not JSON: ${err.message}`, true); return; } }
      body.duration_seconds = Number(f.get('days') || 30) * 86400;
      try {
        const created = await api('POST', '/_plugins/_security/api/apitokens', body);
        await tokensPage(view);
        fill($('token-secret'), h('p', {}, `Token ${created.name} — copy it now, it is not shown again:`), h('div', { class: 'secret' }, created.token));
      } catch (e) { flash(`Create token: ${e.message}`, true); }
    },
  }, h('label', {}, 'Name', h('input', { name: 'name', required: true })),
  h('label', {}, 'Cluster permissions (comma-separated)', h('input', { name: 'cluster' })),
  h('label', {}, 'Index permissions (JSON list)', h('input', { name: 'index', placeholder: '[{"index_patterns":["logs-*"],"allowed_actions":["read"]}]' })),
  h('label', {}, 'Days valid', h('input', { name: 'days', type: 'number', min: 1, value: '30', required: true })),
  h('button', { type: 'submit', class: 'primary' }, 'Create token'));
  // OpenSearch 3.7's list shape: `created_by`, times in epoch ms, revoke by id.
  const rows = tokens.map((t) => h('tr', {}, h('td', {}, t.name), h('td', {}, t.created_by), h('td', {}, (t.cluster_permissions || []).join(', ')),
    h('td', {}, JSON.stringify(t.index_permissions || [])), h('td', {}, fmtTime(t.iat)), h('td', {}, fmtTime(t.expires_at)),
    h('td', {}, h('button', { class: 'danger', onclick: () => act(`Revoke token ${t.name}`, () => api('DELETE', `/_plugins/_security/api/apitokens/${enc(t.id)}`)) }, 'Revoke'))));
  // On-behalf-of tokens by user or extension (token administrators only).
  const revoke = S.can.revoke_tokens ? h('form', {
    id: 'obo-revoke',
    onsubmit: (ev) => {
      ev.preventDefault();
      const f = new FormData(ev.target);
      const body = f.get('kind') === 'user' ? { user: f.get('name') } : { extension: f.get('name') };
      if (confirmed(`Revoke every on-behalf-of token of ${f.get('kind')} ${f.get('name')}?`)) act('Revoke OBO tokens', () => api('POST', '/_warden/tokens/_revoke', body));
    },
  }, h('h2', {}, 'Revoke on-behalf-of tokens'),
  h('label', {}, 'Of', h('select', { name: 'kind' }, h('option', { value: 'user' }, 'user'), h('option', { value: 'extension' }, 'extension'))),
  h('label', {}, 'Name', h('input', { name: 'name', required: true })),
  h('button', { type: 'submit', class: 'danger' }, 'Revoke')) : null;
  fill(view, h('h1', {}, 'API tokens'), form, secret,
    h('table', { id: 'tokens' }, h('thead', {}, h('tr', {}, ['Name', 'Creator', 'Cluster', 'Index', 'Created', 'Expires', ''].map((t) => h('th', {}, t)))), h('tbody', {}, rows)), revoke);
}

// ---- audit ----

const CATEGORIES = ['', 'AUTHENTICATED', 'FAILED_LOGIN', 'GRANTED_PRIVILEGES', 'MISSING_PRIVILEGES', 'SECURITY_CONFIG_WRITE', 'API_TOKEN_WRITE',
  'JOB_RUN', 'JOB_WRITE', 'EXTENSION_INSTALL', 'EXTENSION_APPROVE', 'EXTENSION_GRANT', 'EXTENSION_UPGRADE', 'EXTENSION_REMOVE', 'CONSENT_WRITE', 'TOKENS_REVOKED'];
const PAGE = 50;

async function auditPage(view, query) {
  const params = new URLSearchParams(query);
  const q = new URLSearchParams();
  for (const k of ['category', 'user', 'extension', 'job']) if (params.get(k)) q.set(k, params.get(k));
  const toIso = (name) => (params.get(name) ? Date.parse(params.get(name)) : NaN);
  if (!Number.isNaN(toIso('since'))) q.set('from', String(toIso('since')));
  if (params.get('to')) q.set('to', params.get('to'));
  else if (!Number.isNaN(toIso('until'))) q.set('to', String(toIso('until')));
  q.set('size', String(PAGE));
  const data = await api('GET', `/_warden/audit?${q}`);
  const field = (name, label, attrs) => h('label', {}, label, h('input', { name, value: params.get(name) || '', ...(attrs || {}) }));
  const form = h('form', {
    id: 'audit-form',
    onsubmit: (ev) => {
      ev.preventDefault();
      const f = new URLSearchParams(new FormData(ev.target));
      for (const [k, v] of [...f]) if (!v) f.delete(k);
      location.hash = `#/audit?${f}`;
    },
  }, h('label', {}, 'Category', h('select', { name: 'category', id: 'audit-category' }, CATEGORIES.map((c) => h('option', { value: c, selected: c === (params.get('category') || '') }, c || 'any')))),
  field('user', 'User'), field('extension', 'Extension'), field('job', 'Job'),
  field('since', 'From (ISO time)', { placeholder: '2026-01-01T00:00:00Z' }), field('until', 'To (ISO time)'),
  h('button', { type: 'submit', id: 'audit-search', class: 'primary' }, 'Search'));
  const rows = data.events.map((e) => h('tr', { class: 'audit-event', dataset: { category: e.category || '' } },
    h('td', {}, e['@timestamp'] || fmtTime(e.time_ms)), h('td', {}, e.category || ''), h('td', {}, e.user || ''), h('td', {}, e.extension || ''),
    h('td', {}, [e.method, e.path].filter(Boolean).join(' ')), h('td', {}, e.gate || ''), h('td', {}, e.reason || e.action || '')));
  const pager = h('div', { class: 'actions' });
  if (params.get('to')) pager.append(h('button', { onclick: () => { history.back(); } }, '← Newer'));
  if (data.events.length === PAGE) {
    const oldest = data.events[data.events.length - 1].time_ms;
    const next = new URLSearchParams(query); next.set('to', String(oldest - 1));
    pager.append(h('button', { id: 'audit-older', onclick: () => { location.hash = `#/audit?${next}`; } }, 'Older →'));
  }
  fill(view, h('h1', {}, 'Audit log'), form,
    h('p', { class: 'muted' }, `${data.events.length} event(s), most recent first`),
    h('table', { id: 'audit' }, h('thead', {}, h('tr', {}, ['Time', 'Category', 'User', 'Extension', 'Request', 'Gate', 'Detail'].map((t) => h('th', {}, t)))), h('tbody', {}, rows)),
    pager);
}

// ---- overview ----

async function overviewPage(view) {
  const settle = async (p) => { try { return { ok: await p }; } catch (e) { return { error: e.message }; } };
  const hourAgo = Date.now() - 3600 * 1000;
  const [health, exts, jobs, denials] = await Promise.all([
    settle(api('GET', '/_warden/health')),
    settle(api('GET', '/_warden/extensions')),
    settle(api('GET', '/_warden/jobs')),
    settle(api('GET', `/_warden/audit?category=MISSING_PRIVILEGES&from=${hourAgo}&size=10000`)),
  ]);
  const card = (title, body) => h('div', { class: 'card' }, h('div', { class: 'muted' }, title), body);
  const failing = exts.ok ? exts.ok.extensions.filter((e) => e.last_error || (e.state === 'approved' && !e.serving)) : [];
  const suspended = jobs.ok ? jobs.ok.jobs.filter((j) => j.suspended) : [];
  const byGate = {};
  for (const e of (denials.ok ? denials.ok.events : [])) byGate[e.gate || 'rest'] = (byGate[e.gate || 'rest'] || 0) + 1;
  const unavailable = (r) => h('p', { class: 'muted' }, `not available: ${r.error}`);
  fill(view, h('h1', {}, 'Overview'),
    h('div', { class: 'cards' },
      card('Health', health.ok ? h('div', { class: 'n' }, String(health.ok.status || 'ok')) : unavailable(health)),
      card('Failing extensions', exts.ok ? h('div', {}, h('div', { class: 'n' }, String(failing.length)),
        h('ul', {}, failing.map((e) => h('li', {}, h('a', { href: `#/extensions/${enc(e.id)}` }, e.id), ': ', e.last_error || 'not serving')))) : unavailable(exts)),
      card('Suspended jobs', jobs.ok ? h('div', {}, h('div', { class: 'n' }, String(suspended.length)),
        h('ul', {}, suspended.map((j) => h('li', {}, h('a', { href: `#/jobs/${enc(j.id)}` }, `${j.extension}/${j.name}`), ` (${j.user})`)))) : unavailable(jobs)),
      card('Denials in the last hour, by gate', denials.ok ? h('ul', { id: 'denials' }, Object.keys(byGate).length
        ? Object.entries(byGate).map(([g, n]) => h('li', {}, `${g}: ${n}`)) : h('li', {}, 'none')) : unavailable(denials))),
    health.ok ? h('div', {}, h('h2', {}, 'Health detail'), h('pre', {}, JSON.stringify(health.ok, null, 2))) : null);
}

// ---- routing ----

const PAGES = [
  [/^#\/overview$/, overviewPage, 'overview'],
  [/^#\/extensions$/, extensionsPage, 'extensions'],
  [/^#\/extensions\/([^?]+)$/, (v, id) => extensionPage(v, decodeURIComponent(id)), 'extensions'],
  [/^#\/jobs(?:\?(.*))?$/, (v, q) => jobsPage(v, q || ''), 'jobs'],
  [/^#\/jobs\/([^?]+)$/, (v, id) => jobPage(v, decodeURIComponent(id)), 'jobs'],
  [/^#\/consents(?:\?(.*))?$/, (v, q) => consentsPage(v, q || ''), 'consents'],
  [/^#\/tokens$/, tokensPage, 'tokens'],
  [/^#\/audit(?:\?(.*))?$/, (v, q) => auditPage(v, q || ''), 'audit'],
];

async function route() {
  if (!S.user) return;
  const hash = location.hash || '#/extensions';
  const view = $('view');
  for (const [pattern, page, nav] of PAGES) {
    const m = hash.match(pattern);
    if (!m) continue;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.id === `nav-${nav}`);
    try {
      await page(view, ...m.slice(1));
      view.dataset.page = nav;
      // When the page was rendered, for the first-paint measurement.
      view.dataset.renderedMs = String(Math.round(performance.now()));
      view.dataset.loaded = hash;
    } catch (e) {
      fill(view, h('h1', {}, 'Not available'), h('p', { id: 'page-error', class: 'state-error' }, e.message));
      view.dataset.loaded = hash;
    }
    return;
  }
  location.hash = '#/extensions';
}

async function start() {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', () => { route(); });
  try {
    signedIn(await api('GET', '/_warden/console/_session'));
    await route();
  } catch (_) {
    showLogin();
  }
}

start();
