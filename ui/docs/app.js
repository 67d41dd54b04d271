// The MediaDB API page (CONTRACT §3): sign in, pick an endpoint from the catalog,
// edit its sample request, execute it with the user's key and read the answer.
//
// Plain JavaScript, no build step, no network beyond the server itself. The catalog
// is data served by `POST {prefix}/services/lists/search/endpoint` (and `docsection`).
'use strict';

(function () {
  // ---------------------------------------------------------------- where the API is

  // The page lives at `/{site}/mediadb/docs/` (or `/mediadb/docs/`); the API prefix is
  // the path up to `mediadb`. Served from anywhere else (development: `python3 -m
  // http.server` in ui/), `?api=http://host:port/assets/mediadb` names the server; the
  // override is ignored when the page is served by MediaDB itself.
  function computeApi() {
    const m = location.pathname.match(/^(.*?\/mediadb)(?:\/|$)/);
    if (m) return { origin: location.origin, prefix: m[1], dev: false };
    const given = new URLSearchParams(location.search).get('api') || sessionStorage.getItem('mediadb.devapi');
    if (given) {
      try {
        const u = new URL(given, location.href);
        sessionStorage.setItem('mediadb.devapi', u.href);
        return { origin: u.origin, prefix: u.pathname.replace(/\/+$/, ''), dev: true };
      } catch (e) { /* fall through */ }
    }
    return { origin: location.origin, prefix: '/assets/mediadb', dev: true };
  }
  const API = computeApi();
  const APPLICATION_ID = API.prefix.replace(/^\//, '');
  const SESSION_KEY = 'mediadb.session:' + API.origin + API.prefix;

  function absolute(pathOrUrl) {
    if (/^https?:\/\//i.test(pathOrUrl)) return pathOrUrl;
    return API.origin + (pathOrUrl.startsWith('/') ? '' : '/') + pathOrUrl;
  }
  function services(path) { return absolute(API.prefix + '/services/' + path); }
  // The catalog writes URLs as EnterMediaDB does: `/${applicationid}/services/...`.
  function resolveUrl(url) {
    const path = String(url || '').split('${applicationid}').join(APPLICATION_ID).replace(/^\/\//, '/');
    return API.dev ? absolute(path) : path;
  }

  // ---------------------------------------------------------------- session (per tab)

  function session() {
    try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null; } catch (e) { return null; }
  }
  function setSession(s) {
    if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(SESSION_KEY);
    renderAccount();
  }
  function keyHeaders() {
    const s = session();
    return s && s.key ? { 'X-entermedia.key': s.key } : {};
  }

  // ---------------------------------------------------------------- small DOM helpers

  const $ = (id) => document.getElementById(id);
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (v === true) el.setAttribute(k, '');
      else el.setAttribute(k, v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }
  function notice(text, kind) {
    const n = $('notice');
    n.textContent = text || '';
    n.className = 'notice' + (kind ? ' notice-' + kind : '');
  }

  // ---------------------------------------------------------------- API calls

  async function callJson(method, url, body, extraHeaders) {
    const headers = Object.assign({}, keyHeaders(), extraHeaders || {});
    const init = { method, headers, credentials: 'omit', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
    }
    const resp = await fetch(url, init);
    let json = null;
    try { json = await resp.json(); } catch (e) { /* not JSON */ }
    return { status: resp.status, json };
  }
  function details(json, fallback) {
    const r = json && (json.response || json.reponse);
    return (r && (r.details || r.status)) || fallback;
  }

  // ---------------------------------------------------------------- the catalog

  const state = { endpoints: [], sections: [], loaded: false, needsSignIn: false, error: '' };
  const idOf = (v) => (v && typeof v === 'object' ? (v.id ?? '') : (v ?? ''));
  const nameOf = (v) => (v && typeof v === 'object' ? (v.name || v.id || '') : (v ?? ''));
  const truthy = (v) => String(idOf(v)).toLowerCase() === 'true';

  class NeedsSignIn extends Error {}

  // Reads every record of a list table, page by page.
  async function searchList(type) {
    const out = [];
    const sentKey = keyHeaders()['X-entermedia.key'];
    for (let page = 1; page < 100; page++) {
      const body = { page: String(page), hitsperpage: '500', query: { terms: [{ field: 'id', operation: 'matches', value: '*' }] } };
      const r = await callJson('POST', services('lists/search/' + type), body);
      if (r.status === 401 && sentKey && session() && session().key === sentKey) {
        // The key kept for this tab was revoked or has expired.
        setSession(null);
        notice('Your key is no longer valid: sign in again.', 'error');
      }
      if (r.status === 401 || r.status === 403) throw new NeedsSignIn(details(r.json, 'sign in first'));
      if (r.status === 404) return null;
      if (r.status !== 200 || !r.json || !Array.isArray(r.json.results)) {
        throw new Error(`lists/search/${type} answered ${r.status}: ${details(r.json, 'no JSON')}`);
      }
      out.push(...r.json.results);
      const pages = Number(r.json.response && r.json.response.pages) || 1;
      if (page >= pages) break;
    }
    return out;
  }
  // Development fallback while the server has no lists/search/endpoint: the catalog files.
  async function catalogFile(name) {
    try {
      const resp = await fetch(new URL('../catalog/' + name, location.href), { cache: 'no-store' });
      if (!resp.ok) return null;
      return await resp.json();
    } catch (e) { return null; }
  }

  // Loads may overlap (the first one at start-up, another after sign-in): the last
  // one started wins, whatever order they finish in.
  let catalogSeq = 0;
  async function loadCatalog() {
    const seq = ++catalogSeq;
    const wasLoaded = state.loaded;
    const stale = () => seq !== catalogSeq;
    try {
      // An unknown or empty table means the server does not serve the catalog (yet).
      let endpoints = await searchList('endpoint');
      let sections = endpoints && endpoints.length ? await searchList('docsection') : null;
      if (!endpoints || !endpoints.length) endpoints = await catalogFile('endpoints.json');
      if (!sections || !sections.length) sections = await catalogFile('docsections.json');
      if (!endpoints || !endpoints.length) throw new Error('the server has no endpoint catalog (lists/search/endpoint found nothing)');
      if (stale()) return;
      state.error = '';
      state.needsSignIn = false;
      state.endpoints = endpoints.map((e) => ({
        id: String(idOf(e.id)),
        name: String(nameOf(e.name) || e.id),
        url: String(e.url || ''),
        method: String(idOf(e.httpmethod) || 'POST').toUpperCase(),
        section: String(idOf(e.docsection) || 'other'),
        sample: e.samplerequest == null ? '' : String(e.samplerequest),
        description: String(e.description || e.caption || ''),
        upload: truthy(e.uploadfile),
      }));
      state.sections = (sections || []).map((s) => ({
        id: String(idOf(s.id)), name: String(nameOf(s.name) || s.id), ordering: Number(s.ordering) || 1000,
      }));
      state.sections.sort((a, b) => a.ordering - b.ordering || a.name.localeCompare(b.name));
      state.endpoints.sort((a, b) => a.name.localeCompare(b.name));
      const known = new Set(state.sections.map((s) => s.id));
      if (state.endpoints.some((e) => !known.has(e.section))) state.sections.push({ id: '__other', name: 'Other', ordering: 9999 });
      state.loaded = true;
    } catch (e) {
      if (stale()) return;
      state.loaded = false;
      state.needsSignIn = e instanceof NeedsSignIn;
      state.error = state.needsSignIn ? '' : e.message || String(e);
    }
    renderSidebar();
    // Keep an endpoint page that is already open (and what was typed into it).
    if (wasLoaded && state.loaded && lastId && currentEndpointId() === lastId) {
      for (const c of $('main').querySelectorAll('.signin-hint')) c.remove();
      return;
    }
    route();
  }

  // ---------------------------------------------------------------- sidebar

  function renderSidebar() {
    const box = $('sections');
    box.replaceChildren();
    if (!state.loaded) {
      box.append(h('p', { class: 'muted' }, state.needsSignIn
        ? 'Sign in to see the endpoint catalog.'
        : state.error ? 'The endpoint catalog could not be loaded: ' + state.error : 'Loading the endpoint catalog…'));
      return;
    }
    const filter = $('filter').value.trim().toLowerCase();
    const known = new Set(state.sections.map((s) => s.id));
    const current = currentEndpointId();
    let shown = 0;
    for (const s of state.sections) {
      const eps = state.endpoints.filter((e) => (s.id === '__other' ? !known.has(e.section) : e.section === s.id))
        .filter((e) => !filter || (e.name + ' ' + e.url + ' ' + s.name).toLowerCase().includes(filter));
      if (filter && eps.length === 0) continue;
      const headingId = 'sec-' + s.id;
      const list = h('ul', { 'aria-labelledby': headingId });
      for (const e of eps) {
        shown++;
        list.append(h('li', {}, h('a', {
          href: '#/endpoint/' + encodeURIComponent(e.id),
          'aria-current': e.id === current ? 'page' : null,
        }, h('span', { class: 'm m-' + e.method.toLowerCase(), 'aria-hidden': 'true' }, e.method), ' ', e.name)));
      }
      box.append(h('section', { class: 'navsec' }, h('h2', { id: headingId }, s.name),
        eps.length ? list : h('p', { class: 'muted small' }, 'No endpoints yet.')));
    }
    if (filter && shown === 0) box.append(h('p', { class: 'muted' }, 'No endpoint matches “' + filter + '”.'));
  }

  // ---------------------------------------------------------------- routing

  function currentEndpointId() {
    const m = location.hash.match(/^#\/endpoint\/(.+)$/);
    return m ? decodeURIComponent(m[1]) : null;
  }
  function route() {
    const id = currentEndpointId();
    if (id === null) return renderHome();
    if (!state.loaded) return renderHome(id);
    const ep = state.endpoints.find((e) => e.id === id);
    if (!ep) return renderMissing(id);
    renderEndpoint(ep);
  }

  function setMain(...children) {
    const main = $('main');
    main.replaceChildren(...children.filter((c) => c !== null && c !== undefined && c !== false));
  }
  function focusHeading() {
    const h1 = $('main').querySelector('h1');
    if (h1) { h1.setAttribute('tabindex', '-1'); h1.focus({ preventScroll: false }); }
  }

  function renderHome(pendingId) {
    const s = session();
    const parts = [
      h('h1', {}, 'MediaDB API'),
      h('p', {}, 'Every call this server answers, with a sample request you can edit and execute. ',
        'Pick an endpoint from the list; the request is sent with your key (header X-entermedia.key).'),
      h('p', {}, 'Server: ', h('code', {}, absolute(API.prefix + '/services/'))),
    ];
    if (!s) parts.push(h('p', { class: 'callout' }, 'You are not signed in. Sign in above (User, Password) so that Execute can act as you.'));
    if (pendingId) parts.push(h('p', { class: 'muted' }, state.needsSignIn
      ? 'Sign in to open “' + pendingId + '”.' : state.error ? state.error : 'Loading “' + pendingId + '”…'));
    if (state.loaded) {
      const list = h('ul', { class: 'overview' });
      for (const sec of state.sections) {
        const n = state.endpoints.filter((e) => e.section === sec.id).length;
        const first = state.endpoints.find((e) => e.section === sec.id);
        list.append(h('li', {}, first ? h('a', { href: '#/endpoint/' + encodeURIComponent(first.id) }, sec.name) : sec.name,
          h('span', { class: 'muted' }, ` ${n} endpoint${n === 1 ? '' : 's'}`)));
      }
      parts.push(h('h2', {}, 'Sections'), list);
    }
    document.title = 'MediaDB API';
    setMain(...parts);
  }

  function renderMissing(id) {
    setMain(h('h1', {}, 'No such endpoint'),
      h('p', {}, 'The catalog has no endpoint “' + id + '”. ', h('a', { href: '#/' }, 'Back to the overview')));
    focusHeading();
  }

  // ---------------------------------------------------------------- one endpoint

  let lastId = null;
  function renderEndpoint(ep) {
    const section = state.sections.find((s) => s.id === ep.section);
    const hasBody = !(ep.method === 'GET' || ep.method === 'HEAD');
    const url = h('input', { id: 'ep-url', class: 'url', value: resolveUrl(ep.url), spellcheck: 'false', autocomplete: 'off' });
    const body = h('textarea', { id: 'ep-body', spellcheck: 'false', autocomplete: 'off', rows: String(Math.min(24, Math.max(6, ep.sample.split('\n').length + 2))) });
    body.value = ep.sample;
    const file = ep.upload ? h('input', { id: 'ep-file', type: 'file', name: 'file' }) : null;
    const response = h('section', { id: 'ep-response', class: 'response', 'aria-labelledby': 'ep-response-h' });
    const curl = h('pre', { id: 'ep-curl', class: 'code curl', hidden: true });

    const form = h('form', { id: 'ep-form', class: 'ep-form', onsubmit: (ev) => { ev.preventDefault(); execute(ep, url, body, file, response); } },
      h('div', { class: 'field' }, h('label', { for: 'ep-url' }, 'URL'),
        h('div', { class: 'req-line' }, h('span', { class: 'm m-' + ep.method.toLowerCase(), id: 'ep-method' }, ep.method), url)),
      h('div', { class: 'field' },
        h('label', { for: 'ep-body' }, ep.upload ? 'Request (JSON, sent as the form field “jsonrequest”)' : 'Request body (JSON)'),
        body,
        hasBody ? null : h('p', { class: 'muted small' }, ep.method + ' sends no body; put parameters in the URL.')),
      file ? h('div', { class: 'field' }, h('label', { for: 'ep-file' }, 'File'), file,
        h('p', { class: 'muted small' }, 'Sent as the multipart field “file”.')) : null,
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary', id: 'ep-execute' }, 'Execute'),
        h('button', { type: 'button', onclick: () => { body.value = ep.sample; url.value = resolveUrl(ep.url); body.focus(); } }, 'Reset sample'),
        h('button', { type: 'button', 'aria-controls': 'ep-curl', onclick: () => showCurl(ep, url, body, file, curl) }, 'Show as curl'),
        h('span', { class: 'muted small hint' }, 'Ctrl+Enter in the editor executes.')),
      curl);
    if (!hasBody) body.disabled = !ep.sample;
    body.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) { ev.preventDefault(); form.requestSubmit(); }
    });

    setMain(
      h('p', { class: 'crumbs' }, h('a', { href: '#/' }, 'API'), ' › ', section ? section.name : ep.section),
      h('h1', { id: 'ep-name' }, ep.name),
      h('div', { class: 'description', id: 'ep-description' }, ...ep.description.split(/\n\s*\n/).map((p) => h('p', {}, p))),
      session() ? null : h('p', { class: 'callout signin-hint' }, 'You are not signed in: Execute sends no key.'),
      form,
      response);
    document.title = ep.name + ' · MediaDB API';
    if (lastId !== ep.id) focusHeading();
    lastId = ep.id;
    renderSidebar();
  }

  const REASONS = { 200: 'OK', 201: 'Created', 204: 'No Content', 206: 'Partial Content', 304: 'Not Modified', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable' };

  function buildRequest(ep, urlInput, body, file) {
    const method = ep.method;
    const headers = keyHeaders();
    const init = { method, headers, credentials: 'omit', cache: 'no-store' };
    if (method !== 'GET' && method !== 'HEAD') {
      if (ep.upload) {
        const fd = new FormData();
        if (body.value.trim()) fd.append('jsonrequest', body.value);
        if (file && file.files.length) fd.append('file', file.files[0], file.files[0].name);
        init.body = fd;
      } else if (body.value.trim()) {
        headers['Content-Type'] = 'application/json';
        init.body = body.value; // as typed: the server reads JSON leniently (trailing commas)
      }
    }
    return { url: absolute(urlInput.value.trim()), init };
  }

  async function execute(ep, urlInput, body, file, out) {
    const button = $('ep-execute');
    const { url, init } = buildRequest(ep, urlInput, body, file);
    const sentKey = init.headers['X-entermedia.key'];
    button.disabled = true;
    out.setAttribute('aria-busy', 'true');
    out.replaceChildren(h('h2', { id: 'ep-response-h' }, 'Response'), h('p', { class: 'muted' }, 'Sending ' + ep.method + ' ' + url + ' …'));
    const t0 = performance.now();
    let resp;
    try {
      resp = await fetch(url, init);
    } catch (e) {
      button.disabled = false;
      out.removeAttribute('aria-busy');
      $('announce').textContent = ep.name + ': no response from the server';
      out.replaceChildren(h('h2', { id: 'ep-response-h' }, 'Response'),
        h('p', { class: 'status status-error', id: 'ep-status' }, '✗ No response'),
        h('p', {}, 'The request did not reach the server or its answer could not be read (' + (e.message || e) + '). ',
          'Check the URL and that the server is running.'));
      return;
    }
    const blob = await resp.blob();
    const ms = Math.round(performance.now() - t0);
    button.disabled = false;
    out.removeAttribute('aria-busy');
    const ok = resp.status >= 200 && resp.status < 300;
    const ctype = resp.headers.get('content-type') || '';
    const reason = resp.statusText || REASONS[resp.status] || '';
    const parts = [h('h2', { id: 'ep-response-h' }, 'Response'),
      h('p', { class: 'status ' + (ok ? 'status-ok' : 'status-error'), id: 'ep-status' },
        (ok ? '✓ ' : '✗ ') + 'HTTP ' + resp.status + (reason ? ' ' + reason : ''),
        h('span', { class: 'muted' }, ` · ${ms} ms · ${blob.size} bytes`))];

    let json;
    let text = null;
    if (/json|text\//i.test(ctype) || blob.size === 0) {
      text = await blob.text();
      try { json = text ? JSON.parse(text) : undefined; } catch (e) { json = undefined; }
    }
    const r = json && (json.response || json.reponse);
    if (r && !ok) {
      parts.push(h('p', { class: 'error-details', id: 'ep-error' },
        'The server says: ', h('strong', {}, String(r.status || 'error')), r.details ? ' — ' + r.details : ''));
      if (resp.status === 401) parts.push(h('p', { class: 'muted' }, session() ? 'Your key was refused: sign in again.' : 'Sign in first (User, Password at the top).'));
    }
    const hdrs = [...resp.headers.entries()];
    parts.push(h('details', { class: 'headers' }, h('summary', {}, `Headers (${hdrs.length})`),
      h('table', {}, h('tbody', {}, hdrs.map(([k, v]) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, v)))))));

    if (json !== undefined) {
      parts.push(h('pre', { class: 'code json', id: 'ep-body-out', tabindex: '0' }, highlight(JSON.stringify(json, null, 2))));
    } else if (text !== null) {
      parts.push(h('pre', { class: 'code', id: 'ep-body-out', tabindex: '0' }, text.length > 200000 ? text.slice(0, 200000) + '\n… (cut)' : text || '(empty body)'));
    } else {
      const href = URL.createObjectURL(blob);
      const name = (/filename="([^"]+)"/.exec(resp.headers.get('content-disposition') || '') || [])[1] || 'download';
      parts.push(h('p', { id: 'ep-body-out' }, `${ctype || 'binary'} body of ${blob.size} bytes. `, h('a', { href, download: name }, 'Save ' + name)));
      if (/^image\//.test(ctype)) parts.push(h('img', { class: 'preview', src: href, alt: 'The image the server returned' }));
    }
    out.replaceChildren(...parts);
    // Screen readers hear the outcome, not the whole body.
    $('announce').textContent = `${ep.name}: HTTP ${resp.status}${reason ? ' ' + reason : ''}` + (r && !ok && r.details ? ' — ' + r.details : '');

    // Logout executed with the page's own key revoked it: the page is signed out.
    if (ok && sentKey && /authentication\/logout/.test(url) && session() && session().key === sentKey) {
      setSession(null);
      notice('That key is revoked: you are signed out.', 'info');
    }
  }

  // A small JSON highlighter: keys, strings, numbers, literals. Works on text, never HTML.
  function highlight(text) {
    const frag = document.createDocumentFragment();
    const re = /("(?:[^"\\]|\\.)*")(\s*:)?|\b(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)\b|\b(true|false|null)\b/g;
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) frag.append(text.slice(last, m.index));
      if (m[1]) {
        frag.append(h('span', { class: m[2] ? 'j-key' : 'j-str' }, m[1]));
        if (m[2]) frag.append(m[2]);
      } else if (m[3]) frag.append(h('span', { class: 'j-num' }, m[3]));
      else frag.append(h('span', { class: 'j-lit' }, m[4]));
      last = re.lastIndex;
    }
    frag.append(text.slice(last));
    return frag;
  }

  function shq(s) { return "'" + String(s).replace(/'/g, "'\\''") + "'"; }
  function showCurl(ep, urlInput, body, file, pre) {
    const parts = ['curl', '-X', ep.method, shq(absolute(urlInput.value.trim())), '-H', shq('X-entermedia.key: $KEY')];
    if (ep.method !== 'GET' && ep.method !== 'HEAD') {
      if (ep.upload) {
        if (body.value.trim()) parts.push('-F', shq('jsonrequest=' + body.value));
        parts.push('-F', shq('file=@' + (file && file.files.length ? file.files[0].name : 'yourfile.jpg')));
      } else if (body.value.trim()) {
        parts.push('-H', shq('Content-Type: application/json'), '--data-binary', shq(body.value));
      }
    }
    pre.textContent = parts.join(' ').replace("'X-entermedia.key: $KEY'", '"X-entermedia.key: $KEY"');
    pre.hidden = false;
    if (navigator.clipboard && window.isSecureContext) navigator.clipboard.writeText(pre.textContent).then(() => notice('Copied the curl command (set KEY to your key).', 'info'), () => {});
  }

  // ---------------------------------------------------------------- account

  function renderAccount() {
    const s = session();
    $('signin').hidden = !!s;
    $('signedin').hidden = !s;
    $('signedin-user').textContent = s ? s.user : '';
  }

  async function signIn(ev) {
    ev.preventDefault();
    const user = $('signin-user').value.trim();
    const password = $('signin-password').value;
    const button = ev.submitter || $('signin').querySelector('button');
    button.disabled = true;
    notice('Signing in…');
    try {
      const r = await callJson('POST', services('authentication/login'), { id: user, password }, {});
      const key = r.json && r.json.results && r.json.results.entermediakey;
      if (r.status === 200 && key) {
        $('signin-password').value = '';
        setSession({ key, user: (r.json.response && r.json.response.user) || user });
        notice('Signed in as ' + session().user + '.', 'ok');
        await loadCatalog();
      } else if (r.status === 401 || (r.json && r.json.results && r.json.results.status === 'invalidlogin')) {
        notice('Sign-in failed: wrong user name or password.', 'error');
        $('signin-password').focus();
      } else {
        notice('Sign-in failed: HTTP ' + r.status + ' ' + details(r.json, ''), 'error');
      }
    } catch (e) {
      notice('Sign-in failed: the server cannot be reached (' + e.message + ').', 'error');
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    const s = session();
    if (!s) return;
    let msg = 'Signed out; the key is revoked.';
    try {
      const r = await callJson('POST', services('authentication/logout'), {});
      if (r.status !== 200 && r.status !== 401) msg = 'Signed out here, but the server answered ' + r.status + ' to logout: ' + details(r.json, '');
    } catch (e) {
      msg = 'Signed out here, but the server could not be told (' + e.message + '); the key may still work.';
    }
    setSession(null);
    notice(msg, 'info');
    $('signin-user').focus();
    route();
  }

  // ---------------------------------------------------------------- narrow screens

  function closeNav() {
    document.body.classList.remove('nav-open');
    $('nav-toggle').setAttribute('aria-expanded', 'false');
  }
  function toggleNav() {
    const open = !document.body.classList.contains('nav-open');
    document.body.classList.toggle('nav-open', open);
    $('nav-toggle').setAttribute('aria-expanded', String(open));
    if (open) $('filter').focus();
  }

  // ---------------------------------------------------------------- start

  document.addEventListener('DOMContentLoaded', () => {
    if (API.dev) {
      const d = $('devmode');
      d.hidden = false;
      d.textContent = 'Development mode: this page is not served by MediaDB; it calls ' + absolute(API.prefix) + '.';
      document.querySelector('a.browse').href = '../browser/?api=' + encodeURIComponent(absolute(API.prefix));
    }
    $('signin').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('nav-toggle').addEventListener('click', toggleNav);
    $('filter').addEventListener('input', renderSidebar);
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && document.body.classList.contains('nav-open')) { closeNav(); $('nav-toggle').focus(); }
    });
    // The narrow-screen list closes when the reader picks an endpoint, not when the page
    // re-renders by itself (a catalog reload after sign-in must not snatch it away).
    $('sections').addEventListener('click', (ev) => { if (ev.target.closest('a')) closeNav(); });
    window.addEventListener('hashchange', () => { closeNav(); route(); });
    renderAccount();
    route();
    loadCatalog();
  });
})();
