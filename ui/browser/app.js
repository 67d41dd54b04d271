// The MediaDB asset browser: sign in, a thumbnail grid with search, facets and paging,
// drag-and-drop upload with progress, an asset page (preview, metadata view and edit,
// downloads, rotate, delete with undo from the trash).
//
// Plain JavaScript, no build step. It speaks only the EnterMediaDB JSON API under
// `{prefix}/services/`, sending the key in the X-entermedia.key header. Features the
// server does not have yet (trash, rotation, renditions, facets) appear when present.
'use strict';

(function () {
  // ---------------------------------------------------------------- where the API is

  // Served at `/{site}/mediadb/` (or `/mediadb/`): the prefix is the path up to
  // `mediadb`. Served from elsewhere (development), `?api=http://host:port/assets/mediadb`
  // names the server; ignored when the page is served by MediaDB itself.
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
  const SESSION_KEY = 'mediadb.session:' + API.origin + API.prefix;
  const absolute = (p) => (/^https?:\/\//i.test(p) ? p : API.origin + (p.startsWith('/') ? '' : '/') + p);
  const services = (path) => absolute(API.prefix + '/services/' + path);
  // A folder per upload: two files of the same name never collide.
  const UPLOAD_SOURCEPATH = 'Uploads/${user}/${formatteddate}/${guid}/';

  // ---------------------------------------------------------------- session (per tab)

  function session() {
    try { return JSON.parse(sessionStorage.getItem(SESSION_KEY)) || null; } catch (e) { return null; }
  }
  function setSession(s) {
    if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
    else sessionStorage.removeItem(SESSION_KEY);
  }
  const keyHeaders = () => { const s = session(); return s ? { 'X-entermedia.key': s.key } : {}; };

  // ---------------------------------------------------------------- helpers

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
  const idOf = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? (v.id ?? '') : (v ?? ''));
  const nameOf = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? (v.name || v.id || '') : (v ?? ''));
  function details(json, fallback) {
    const r = json && (json.response || json.reponse);
    return (r && (r.details || r.status)) || fallback;
  }
  function formatBytes(n) {
    n = Number(n);
    if (!isFinite(n)) return '';
    const u = ['bytes', 'KB', 'MB', 'GB', 'TB'];
    let i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
  }

  class SessionEnded extends Error {}

  // One API call. A 401 while signed in means the key was revoked or expired.
  async function api(method, path, body) {
    const headers = keyHeaders();
    const sentKey = headers['X-entermedia.key'];
    const init = { method, headers, credentials: 'omit', cache: 'no-store' };
    if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
    let resp;
    try {
      resp = await fetch(services(path), init);
    } catch (e) {
      throw new Error('the server cannot be reached (' + (e.message || e) + ')');
    }
    let json = null;
    try { json = await resp.json(); } catch (e) { /* not JSON */ }
    if (resp.status === 401 && sentKey && session() && session().key === sentKey) {
      setSession(null);
      throw new SessionEnded(details(json, 'your key is no longer valid'));
    }
    return { status: resp.status, ok: resp.ok, json };
  }
  function fail(what, r) {
    return new Error(`${what}: HTTP ${r.status} — ${details(r.json, 'no details')}`);
  }

  function showAlert(text) {
    const a = $('alert');
    a.hidden = !text;
    a.textContent = text || '';
  }
  function handleError(e) {
    if (e instanceof SessionEnded) {
      showSignIn('Your session ended (' + e.message + '). Sign in again.');
      return;
    }
    showAlert(e.message || String(e));
  }

  let toastTimer = null;
  function toast(text, action) {
    const t = $('toast');
    $('toast-text').textContent = text;
    const b = $('toast-action');
    b.hidden = !action;
    b.onclick = null;
    if (action) {
      b.textContent = action.label;
      b.onclick = () => { hideToast(); action.run(); };
    }
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(hideToast, action ? 15000 : 5000);
  }
  function hideToast() { $('toast').hidden = true; }

  // ---------------------------------------------------------------- capabilities

  // Endpoints that are coming: present when the server answers anything but
  // "unknown endpoint" (404). A record-level 404 ("not found") means it exists.
  const caps = { trash: false, trashSearch: false, rotate: false, probed: false };
  async function probe(path, body) {
    try {
      const r = await api('POST', path, body);
      return r.status !== 404 || (r.json && r.json.response && r.json.response.status === 'not found');
    } catch (e) {
      if (e instanceof SessionEnded) throw e;
      return false;
    }
  }
  async function probeCaps() {
    const [trash, trashSearch, rotate] = await Promise.all([
      probe('module/asset/trash/restore', {}),
      probe('module/asset/trash/search', { page: '1', hitsperpage: '1', query: { terms: [{ field: 'id', operation: 'matches', value: '*' }] } }),
      probe('module/asset/media/rotateasset', {}),
    ]);
    Object.assign(caps, { trash, trashSearch, rotate, probed: true });
    $('trash-link').hidden = !trashSearch;
  }

  // ---------------------------------------------------------------- images with the key

  // Previews are fetched with the key header (no cookies) and shown from object URLs.
  const imageCache = new Map();
  function loadImage(url) {
    const full = absolute(url);
    if (!imageCache.has(full)) {
      imageCache.set(full, fetch(full, { headers: keyHeaders(), credentials: 'omit', cache: 'no-cache' })
        .then((r) => (r.ok ? r.blob() : Promise.reject(new Error('HTTP ' + r.status))))
        .then((b) => URL.createObjectURL(b))
        .catch((e) => { imageCache.delete(full); throw e; }));
    }
    return imageCache.get(full);
  }
  function forgetImages(asset) {
    for (const d of asset.downloads || []) {
      for (const u of [d.url, d.download]) {
        if (!u) continue;
        const full = absolute(u);
        const p = imageCache.get(full);
        if (p) p.then((o) => URL.revokeObjectURL(o), () => {});
        imageCache.delete(full);
      }
    }
  }

  function rendition(asset, ids) {
    const list = Array.isArray(asset.downloads) ? asset.downloads : [];
    for (const id of ids) {
      const d = list.find((x) => x && x.id === id && x.url);
      if (d) return d;
    }
    return null;
  }
  const thumbOf = (a) => rendition(a, ['thumbimage', 'webpthumbimage', 'mediumimage']);
  const previewOf = (a) => rendition(a, ['largeimage', 'webplargeimage', 'mediumimage', 'webpmediumimage', 'thumbimage']);

  function extensionOf(a) {
    const f = idOf(a.fileformat);
    if (f) return String(f).toUpperCase();
    const m = /\.([A-Za-z0-9]{1,6})$/.exec(a.name || '');
    return m ? m[1].toUpperCase() : '';
  }
  const RENDER_NAMES = { image: 'Image', video: 'Video', audio: 'Audio', document: 'Document', default: 'File', none: 'Record' };
  function typeTile(a, big) {
    const kind = a.mediarendertype || (a.originalurl ? 'default' : 'none');
    return h('div', { class: 'typetile t-' + kind + (big ? ' big' : ''), role: 'img', 'aria-label': (extensionOf(a) || RENDER_NAMES[kind] || 'File') + ' file, no preview' },
      h('span', { class: 'ext', 'aria-hidden': 'true' }, extensionOf(a) || '—'),
      h('span', { class: 'kind', 'aria-hidden': 'true' }, RENDER_NAMES[kind] || kind));
  }
  // An <img> from a rendition, falling back to the file-type tile if it cannot load.
  function imageOr(a, r, cls, big) {
    if (!r) return typeTile(a, big);
    const holder = h('div', { class: cls + ' loading' });
    loadImage(r.url).then((src) => {
      const img = h('img', { src, alt: big ? 'Preview of ' + (a.name || a.id) : '' });
      holder.classList.remove('loading');
      holder.replaceChildren(img);
    }, () => { holder.classList.remove('loading'); holder.replaceChildren(typeTile(a, big)); });
    return holder;
  }

  // What the server says the asset is doing: importing, converting, error, or nothing.
  const IMPORTING = new Set(['created', 'uploading', 'uploaded', 'needsmetadata', 'needsdownload', 'imported', 'modified', 'reimported']);
  function processing(a) {
    const imp = String(idOf(a.importstatus));
    const prev = String(idOf(a.previewstatus));
    if (imp === 'error' || imp === 'invalidformat') return { kind: 'error', label: 'Error', title: 'Import: ' + nameOf(a.importstatus) };
    if (prev === '3') return { kind: 'error', label: 'Preview error', title: 'Preview: ' + nameOf(a.previewstatus) };
    if (prev === 'converting') return { kind: 'busy', label: 'Converting', title: 'Preview: ' + nameOf(a.previewstatus) };
    if (IMPORTING.has(imp)) return { kind: 'busy', label: imp === 'uploading' ? 'Uploading' : 'Importing', title: 'Import: ' + nameOf(a.importstatus) };
    return null;
  }
  function badge(p) {
    return p ? h('span', { class: 'badge badge-' + p.kind, title: p.title }, p.label) : null;
  }

  // ---------------------------------------------------------------- views and routing

  function showView(name) {
    for (const v of ['signin', 'grid', 'asset', 'trash']) $('view-' + v).hidden = v !== name;
    const signed = !!session();
    $('search').hidden = !signed;
    $('signedin').hidden = !signed;
    $('signedin-user').textContent = signed ? session().user : '';
    $('trash-link').hidden = !(signed && caps.trashSearch);
  }

  function showSignIn(message) {
    stopPolling();
    showView('signin');
    $('signin-message').textContent = message || '';
    $('signin-user').focus();
  }

  let routeSeq = 0;
  async function route() {
    const seq = ++routeSeq;
    showAlert('');
    if (!session()) return showSignIn();
    try {
      if (!caps.probed) await probeCaps();
      if (seq !== routeSeq) return;
      const hash = location.hash || '#/';
      let m;
      if ((m = hash.match(/^#\/asset\/(.+)$/))) return await showAsset(decodeURIComponent(m[1]), seq);
      if (hash === '#/trash') return await showTrash(seq);
      return await showGrid(parseGridHash(hash), seq);
    } catch (e) {
      handleError(e);
    }
  }

  // ---------------------------------------------------------------- grid state in the URL

  const DEFAULTS = { q: '', page: 1, hpp: 24, sort: 'assetaddeddateDown', filters: {} };
  let lastGridHash = '#/';

  function parseGridHash(hash) {
    const st = JSON.parse(JSON.stringify(DEFAULTS));
    const qs = new URLSearchParams((hash.split('?')[1]) || '');
    st.q = qs.get('q') || '';
    st.page = Math.max(1, parseInt(qs.get('page'), 10) || 1);
    st.hpp = [24, 48, 96].includes(parseInt(qs.get('hpp'), 10)) ? parseInt(qs.get('hpp'), 10) : 24;
    st.sort = qs.get('sort') || DEFAULTS.sort;
    for (const f of qs.getAll('f')) {
      const i = f.indexOf(':');
      if (i <= 0) continue;
      (st.filters[f.slice(0, i)] = st.filters[f.slice(0, i)] || []).push(f.slice(i + 1));
    }
    return st;
  }
  function gridHash(st) {
    const qs = new URLSearchParams();
    if (st.q) qs.set('q', st.q);
    if (st.page > 1) qs.set('page', String(st.page));
    if (st.hpp !== 24) qs.set('hpp', String(st.hpp));
    if (st.sort !== DEFAULTS.sort) qs.set('sort', st.sort);
    for (const [f, vals] of Object.entries(st.filters)) for (const v of vals) qs.append('f', f + ':' + v);
    const s = qs.toString();
    return '#/' + (s ? '?' + s : '');
  }
  function go(hash) {
    if (location.hash === hash || (hash === '#/' && !location.hash)) route();
    else location.hash = hash;
  }

  function searchBody(st) {
    const terms = [];
    if (st.q.trim()) terms.push({ field: 'description', operation: 'freeform', value: st.q.trim() });
    for (const [field, values] of Object.entries(st.filters)) {
      if (values.length) terms.push({ field, operation: 'orsgroup', values });
    }
    if (!terms.length) terms.push({ field: 'id', operation: 'matches', value: '*' });
    return { page: String(st.page), hitsperpage: String(st.hpp), showfilters: 'true', assetsortby: st.sort, query: { terms } };
  }

  // ---------------------------------------------------------------- the grid

  let current = null; // the grid state on screen
  let pollTimer = null;
  let pollCount = 0;
  function stopPolling() { clearTimeout(pollTimer); pollTimer = null; }

  async function showGrid(st, seq, quiet) {
    stopPolling();
    current = st;
    lastGridHash = gridHash(st);
    $('q').value = st.q;
    $('sort').value = st.sort;
    $('hpp').value = String(st.hpp);
    const r = await api('POST', 'module/asset/search', searchBody(st));
    if (seq !== routeSeq) return;
    if (!r.ok || !r.json || !Array.isArray(r.json.results)) throw fail('The search failed', r);
    showView('grid');
    const resp = r.json.response || {};
    const total = Number(resp.totalhits) || 0;
    const pages = Math.max(1, Number(resp.pages) || Math.ceil(total / st.hpp));
    if (st.page > pages && total > 0) return go(gridHash(Object.assign({}, st, { page: pages })));

    const countText = total === 0 ? 'No assets' : `${total} asset${total === 1 ? '' : 's'}` + (st.q ? ` matching “${st.q}”` : '');
    if ($('count').textContent !== countText) $('count').textContent = countText; // live: say changes only
    renderActiveFilters(st);
    renderFacets(st, r.json.filteroptions);

    const grid = $('grid');
    grid.replaceChildren();
    let busy = false;
    for (const a of r.json.results) {
      const p = processing(a);
      if (p && p.kind === 'busy') busy = true;
      grid.append(h('li', { class: 'tile', 'data-id': a.id },
        h('a', { href: '#/asset/' + encodeURIComponent(a.id), class: 'tile-link' },
          h('div', { class: 'thumbbox' }, imageOr(a, thumbOf(a), 'thumb', false)),
          h('span', { class: 'tile-name' }, a.name || a.assettitle || a.id)),
        badge(p)));
    }
    if (total === 0) {
      grid.append(h('li', { class: 'empty' }, st.q || Object.keys(st.filters).length
        ? 'Nothing matches. Try other words or clear the filters.'
        : 'No assets yet. Drop files on this page to upload them.'));
    }
    $('pager').hidden = pages <= 1;
    $('pageinfo').textContent = `Page ${st.page} of ${pages}`;
    $('prev').disabled = st.page <= 1;
    $('next').disabled = st.page >= pages;
    if (!quiet) pollCount = 0;
    if (busy && pollCount < 80) {
      pollTimer = setTimeout(() => { pollCount++; if (seq === routeSeq) showGrid(st, seq, true).catch(handleError); }, 2500);
    }
  }

  function renderActiveFilters(st) {
    const box = $('filters-active');
    box.replaceChildren();
    for (const [field, values] of Object.entries(st.filters)) {
      for (const v of values) {
        box.append(h('button', { type: 'button', class: 'chip', 'aria-label': `Remove filter ${field}: ${v}`,
          onclick: () => setFilter(field, v, false) }, `${field}: ${v} ×`));
      }
    }
  }

  function renderFacets(st, options) {
    const aside = $('facets');
    aside.replaceChildren();
    const list = Array.isArray(options) ? options.filter((o) => o && Array.isArray(o.children) && o.children.length) : [];
    aside.hidden = list.length === 0 && Object.keys(st.filters).length === 0;
    if (aside.hidden) return;
    aside.append(h('h2', {}, 'Filters'));
    for (const o of list) {
      const chosen = st.filters[o.id] || [];
      const fs = h('fieldset', {}, h('legend', {}, o.name || o.id));
      for (const c of o.children) {
        const cid = `facet-${o.id}-${c.id}`.replace(/[^A-Za-z0-9_-]/g, '_');
        fs.append(h('div', { class: 'facet' },
          h('input', { type: 'checkbox', id: cid, checked: chosen.includes(String(c.id)),
            onchange: (ev) => setFilter(o.id, String(c.id), ev.target.checked) }),
          h('label', { for: cid }, c.name || c.id, h('span', { class: 'muted' }, ` (${c.count ?? '?'})`))));
      }
      aside.append(fs);
    }
    if (Object.keys(st.filters).length) {
      aside.append(h('button', { type: 'button', onclick: () => go(gridHash(Object.assign({}, current, { filters: {}, page: 1 }))) }, 'Clear filters'));
    }
  }

  function setFilter(field, value, on) {
    const st = JSON.parse(JSON.stringify(current));
    const vals = new Set(st.filters[field] || []);
    if (on) vals.add(value); else vals.delete(value);
    if (vals.size) st.filters[field] = [...vals]; else delete st.filters[field];
    st.page = 1;
    go(gridHash(st));
  }

  // ---------------------------------------------------------------- uploads

  const queue = [];
  let active = 0;
  const CONCURRENCY = 3;
  let batch = { total: 0, done: 0, failed: 0 };

  function uploadFiles(fileList) {
    if (!session()) return showSignIn('Sign in to upload.');
    const files = [...fileList].filter((f) => f && f.size >= 0);
    if (!files.length) return;
    $('uploads').hidden = false;
    if (active === 0 && queue.length === 0) {
      // A new batch: the finished uploads of the last one leave the list (failures stay).
      batch = { total: 0, done: 0, failed: 0 };
      for (const li of [...$('upload-list').children]) if (li.classList.contains('done')) li.remove();
    }
    for (const file of files) {
      const progress = h('progress', { max: '100', value: '0', 'aria-label': 'Upload of ' + file.name });
      const status = h('span', { class: 'up-status' }, 'Waiting');
      const li = h('li', { class: 'upload' }, h('span', { class: 'up-name' }, file.name),
        h('span', { class: 'muted up-size' }, formatBytes(file.size)), progress, status);
      $('upload-list').append(li);
      queue.push({ file, li, progress, status });
      batch.total++;
    }
    updateUploadSummary();
    pump();
  }
  function updateUploadSummary() {
    const left = batch.total - batch.done - batch.failed;
    $('uploads-summary').textContent = left > 0
      ? `Uploading ${batch.done + batch.failed + 1} of ${batch.total}…`
      : `Uploaded ${batch.done} of ${batch.total}` + (batch.failed ? `, ${batch.failed} failed` : '');
  }
  function pump() {
    while (active < CONCURRENCY && queue.length) {
      const item = queue.shift();
      active++;
      uploadOne(item).finally(() => {
        active--;
        updateUploadSummary();
        if (active === 0 && queue.length === 0) uploadsFinished();
        else pump();
      });
    }
  }
  function uploadOne(item) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open('POST', services('module/asset/create'));
      const k = keyHeaders()['X-entermedia.key'];
      if (k) xhr.setRequestHeader('X-entermedia.key', k);
      item.li.classList.add('active');
      item.status.textContent = 'Uploading 0%';
      xhr.upload.onprogress = (e) => {
        if (!e.lengthComputable) return;
        const pct = Math.floor((e.loaded / e.total) * 100);
        item.progress.value = pct;
        item.status.textContent = pct < 100 ? `Uploading ${pct}%` : 'Processing…';
      };
      xhr.onload = () => {
        let json = null;
        try { json = JSON.parse(xhr.responseText); } catch (e) { /* not JSON */ }
        item.li.classList.remove('active');
        if (xhr.status >= 200 && xhr.status < 300 && json && json.response && json.response.id) {
          batch.done++;
          item.progress.value = 100;
          item.li.classList.add('done');
          item.status.replaceChildren('Uploaded · ', h('a', { href: '#/asset/' + encodeURIComponent(json.response.id) }, 'Open'));
        } else {
          batch.failed++;
          item.li.classList.add('failed');
          item.status.textContent = `Failed: HTTP ${xhr.status} — ${details(json, xhr.statusText || 'no details')}`;
          if (xhr.status === 401) setSession(null);
        }
        resolve();
      };
      xhr.onerror = () => {
        batch.failed++;
        item.li.classList.remove('active');
        item.li.classList.add('failed');
        item.status.textContent = 'Failed: the server cannot be reached';
        resolve();
      };
      const fd = new FormData();
      fd.append('jsonrequest', JSON.stringify({ sourcepath: UPLOAD_SOURCEPATH }));
      fd.append('file', item.file, item.file.name);
      xhr.send(fd);
    });
  }
  function uploadsFinished() {
    toast(`Uploaded ${batch.done} of ${batch.total} file${batch.total === 1 ? '' : 's'}` + (batch.failed ? ` (${batch.failed} failed)` : '') + '.');
    if (!session()) return showSignIn('Your session ended during the upload. Sign in again.');
    if (!$('view-grid').hidden) route();
  }

  // Drag and drop anywhere on the page.
  let dragDepth = 0;
  const hasFiles = (ev) => ev.dataTransfer && [...(ev.dataTransfer.types || [])].includes('Files');
  function setupDrop() {
    window.addEventListener('dragenter', (ev) => {
      if (!hasFiles(ev) || !session()) return;
      ev.preventDefault();
      dragDepth++;
      $('dropoverlay').hidden = false;
    });
    window.addEventListener('dragover', (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = session() ? 'copy' : 'none';
    });
    window.addEventListener('dragleave', () => {
      dragDepth = Math.max(0, dragDepth - 1);
      if (dragDepth === 0) $('dropoverlay').hidden = true;
    });
    window.addEventListener('drop', (ev) => {
      if (!hasFiles(ev)) return;
      ev.preventDefault();
      dragDepth = 0;
      $('dropoverlay').hidden = true;
      uploadFiles(ev.dataTransfer.files);
    });
  }

  // ---------------------------------------------------------------- the asset page

  const FIELD_LABELS = {
    id: 'ID', name: 'Name', sourcepath: 'Source path', 'category-exact': 'Category', isfolder: 'Is folder',
    primaryfile: 'Primary file', assettype: 'Asset type', fileformat: 'File format', detectedfileformat: 'Detected format',
    filesize: 'File size', width: 'Width', height: 'Height', pages: 'Pages', length: 'Length', duration: 'Duration',
    framerate: 'Frame rate', videocodec: 'Video codec', audiocodec: 'Audio codec', colorspace: 'Color space',
    colortype: 'Color type', imageorientation: 'Orientation', assetcreationdate: 'Created',
    assetmodificationdate: 'Modified', assetaddeddate: 'Added', recordmodificationdate: 'Record modified',
    owner: 'Owner', importstatus: 'Import status', previewstatus: 'Preview status', editstatus: 'Edit status',
    keywords: 'Keywords', assettitle: 'Title', headline: 'Headline', alternatetext: 'Alternate text',
    longcaption: 'Caption', creator: 'Creator', copyrightnotice: 'Copyright notice', copyrightstatus: 'Copyright status',
    rightsusageterms: 'Rights usage terms', instructions: 'Instructions', credit: 'Credit', md5hex: 'MD5',
    sha256hex: 'SHA-256', geo_point: 'GPS', location: 'Location', region: 'Region', country: 'Country', state: 'State',
    language: 'Language', purpose: 'Purpose', libraries: 'Libraries', cameramake: 'Camera make',
    cameramodel: 'Camera model', datatype: 'Data type', assetviews: 'Views', mediarendertype: 'Render type',
    originalurl: 'Original',
  };
  const EDITABLE = [
    ['assettitle', 'Title', 'text'], ['longcaption', 'Caption', 'textarea'], ['keywords', 'Keywords (comma-separated)', 'list'],
    ['headline', 'Headline', 'text'], ['creator', 'Creator', 'text'], ['copyrightnotice', 'Copyright notice', 'text'],
    ['rightsusageterms', 'Rights usage terms', 'text'], ['location', 'Location', 'text'], ['country', 'Country', 'text'],
  ];
  const HIDDEN_FIELDS = new Set(['downloads']);

  function display(field, v) {
    if (v === null || v === undefined) return '';
    if (Array.isArray(v)) return v.map((x) => display(field, x)).filter(Boolean).join(', ');
    if (typeof v === 'object') {
      if ('id' in v || 'name' in v) return v.name && v.name !== v.id ? `${v.name} (${v.id})` : String(v.id ?? v.name);
      return Object.entries(v).map(([k, x]) => `${k}: ${display(field, x)}`).join('; ');
    }
    if (field === 'filesize') return `${formatBytes(v)} (${v} bytes)`;
    if (/date$/.test(field) && !isNaN(Date.parse(v))) return new Date(v).toLocaleString();
    return String(v);
  }
  function editValue(kind, v) {
    if (kind === 'list') return (Array.isArray(v) ? v : v ? [v] : []).map((x) => idOf(x)).join(', ');
    if (v && typeof v === 'object') return String(v.en ?? Object.values(v)[0] ?? '');
    return v == null ? '' : String(v);
  }

  let assetPoll = null;
  async function showAsset(id, seq, quiet) {
    stopPolling();
    clearTimeout(assetPoll);
    const r = await api('GET', 'module/asset/data/' + encodeURIComponent(id));
    if (seq !== routeSeq) return;
    const view = $('view-asset');
    showView('asset');
    const back = h('p', { class: 'back' }, h('a', { href: lastGridHash }, '← Back to the assets'));
    if (r.status === 404) {
      view.replaceChildren(back, h('h1', { tabindex: '-1' }, 'Asset not found'),
        h('p', {}, `There is no asset “${id}”: it may have been deleted.`));
      view.querySelector('h1').focus();
      return;
    }
    if (!r.ok || !r.json || !r.json.data) throw fail('Loading the asset failed', r);
    const a = r.json.data;
    const p = processing(a);

    const preview = previewOf(a);
    const figure = h('figure', { class: 'preview' }, imageOr(a, preview, 'previewimg', true),
      preview ? null : h('figcaption', { class: 'muted' }, a.originalurl ? 'No preview of this file (yet).' : 'This record has no file.'));

    const actions = h('div', { class: 'actions' });
    if (a.originalurl) {
      actions.append(h('button', { type: 'button', class: 'primary', id: 'download-original',
        onclick: (ev) => saveUrl(ev.currentTarget, API.prefix + '/services/module/asset/downloads/originals/' + a.originalurl, a.name || 'original') }, 'Download original'));
    }
    if (caps.rotate && a.originalurl && (a.mediarendertype === 'image' || preview)) {
      actions.append(
        h('button', { type: 'button', onclick: (ev) => rotate(ev.currentTarget, a, '270') }, '⟲ Rotate left'),
        h('button', { type: 'button', onclick: (ev) => rotate(ev.currentTarget, a, '90') }, '⟳ Rotate right'));
    }
    actions.append(h('button', { type: 'button', class: 'danger', id: 'delete-asset', onclick: () => confirmDelete(a) }, 'Delete'));

    const downloads = (a.downloads || []).filter((d) => d && (d.download || d.url));
    const rends = downloads.length ? h('section', { class: 'renditions' }, h('h2', {}, 'Renditions'),
      h('ul', {}, downloads.map((d) => h('li', {}, h('button', { type: 'button', class: 'linklike',
        onclick: (ev) => saveUrl(ev.currentTarget, d.download || d.url, (d.download || d.url).split('/').pop()) }, d.name || d.id))))) : null;

    const dl = h('dl', { class: 'meta' });
    const order = Object.keys(FIELD_LABELS).filter((k) => k in a).concat(Object.keys(a).filter((k) => !(k in FIELD_LABELS)));
    for (const k of order) {
      if (HIDDEN_FIELDS.has(k)) continue;
      const text = display(k, a[k]);
      if (text === '') continue;
      dl.append(h('dt', {}, FIELD_LABELS[k] || k), h('dd', { title: typeof a[k] === 'string' ? a[k] : null }, text));
    }

    const form = editForm(a);
    const status = h('p', { class: 'statusline' }, badge(p),
      ' Import: ', nameOf(a.importstatus) || '—', ' · Preview: ', nameOf(a.previewstatus) || '—');
    view.replaceChildren(back,
      h('h1', { tabindex: '-1', id: 'asset-name' }, a.name || a.assettitle || a.id),
      status,
      h('div', { class: 'asset-layout' },
        figure,
        h('div', { class: 'side' }, actions, h('p', { id: 'asset-message', class: 'message', role: 'status', 'aria-live': 'polite' }),
          rends,
          h('section', { class: 'metadata' }, h('h2', {}, 'Metadata'), form, dl))));
    if (!quiet) view.querySelector('h1').focus();
    if (p && p.kind === 'busy') assetPoll = setTimeout(() => { if (seq === routeSeq) showAsset(id, seq, true).catch(handleError); }, 2500);
  }

  function editForm(a) {
    const inputs = {};
    const fields = EDITABLE.map(([k, label, kind]) => {
      const id = 'edit-' + k;
      const input = kind === 'textarea' ? h('textarea', { id, rows: '3' }) : h('input', { id, type: 'text' });
      input.value = editValue(kind, a[k]);
      inputs[k] = { input, kind, original: input.value };
      return h('div', { class: 'field' }, h('label', { for: id }, label), input);
    });
    const message = h('p', { class: 'message', role: 'status', 'aria-live': 'polite' });
    const form = h('form', { class: 'edit', hidden: true, id: 'edit-form' }, ...fields,
      h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Save'),
        h('button', { type: 'button', onclick: () => { form.hidden = true; toggle.hidden = false; toggle.focus(); } }, 'Cancel')),
      message);
    const toggle = h('button', { type: 'button', id: 'edit-toggle', onclick: () => { form.hidden = false; toggle.hidden = true; inputs.assettitle.input.focus(); } }, 'Edit metadata');
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = {};
      for (const [k, { input, kind, original }] of Object.entries(inputs)) {
        if (input.value === original) continue;
        body[k] = kind === 'list' ? input.value.split(',').map((s) => s.trim()).filter(Boolean) : input.value;
      }
      if (!Object.keys(body).length) { message.textContent = 'Nothing changed.'; return; }
      const button = form.querySelector('button[type=submit]');
      button.disabled = true;
      message.textContent = 'Saving…';
      try {
        const r = await api('PUT', 'module/asset/data/' + encodeURIComponent(a.id), body);
        if (!r.ok) { message.className = 'message error'; message.textContent = `Not saved: HTTP ${r.status} — ${details(r.json, '')}`; return; }
        const ignored = r.json && r.json.response && r.json.response.ignoredfields;
        await showAsset(a.id, routeSeq, true);
        const m = $('asset-message');
        if (m) m.textContent = 'Saved.' + (ignored && ignored.length ? ' The server ignored: ' + ignored.join(', ') + '.' : '');
        const t = $('edit-toggle');
        if (t) t.focus();
      } catch (e) {
        handleError(e);
      } finally {
        button.disabled = false;
      }
    });
    return h('div', {}, toggle, form);
  }

  // Downloads go through fetch with the key header, then are saved from memory.
  async function saveUrl(button, url, name) {
    const label = button.textContent;
    button.disabled = true;
    button.textContent = 'Downloading…';
    try {
      const resp = await fetch(absolute(url), { headers: keyHeaders(), credentials: 'omit', cache: 'no-cache' });
      if (!resp.ok) {
        let json = null;
        try { json = await resp.json(); } catch (e) { /* not JSON */ }
        throw new Error(`Download failed: HTTP ${resp.status} — ${details(json, resp.statusText || 'no details')}`);
      }
      const disp = resp.headers.get('content-disposition') || '';
      const fromHeader = /filename\*=UTF-8''([^;]+)/i.exec(disp) || /filename="([^"]+)"/i.exec(disp);
      const blob = await resp.blob();
      const href = URL.createObjectURL(blob);
      const a = h('a', { href, download: fromHeader ? decodeURIComponent(fromHeader[1]) : name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 60000);
    } catch (e) {
      handleError(e);
    } finally {
      button.disabled = false;
      button.textContent = label;
    }
  }

  async function rotate(button, a, degrees) {
    button.disabled = true;
    const m = $('asset-message');
    m.textContent = 'Rotating…';
    try {
      const r = await api('POST', 'module/asset/media/rotateasset', { assetid: a.id, rotate: degrees });
      if (!r.ok) { m.textContent = `Not rotated: HTTP ${r.status} — ${details(r.json, '')}`; return; }
      forgetImages(a);
      await showAsset(a.id, routeSeq, true);
      const m2 = $('asset-message');
      if (m2) m2.textContent = 'Rotated.';
    } catch (e) {
      handleError(e);
    } finally {
      button.disabled = false;
    }
  }

  function confirmDelete(a) {
    const dlg = $('confirm');
    $('confirm-h').textContent = `Delete “${a.name || a.id}”?`;
    $('confirm-text').textContent = caps.trash
      ? 'It disappears from search and downloads at once. You can undo right after.'
      : 'It disappears from search and downloads at once. This server has no trash to undo from yet.';
    dlg.returnValue = '';
    dlg.onclose = () => {
      if (dlg.returnValue === 'ok') deleteAsset(a).catch(handleError);
      else { const b = $('delete-asset'); if (b) b.focus(); }
    };
    dlg.showModal();
  }

  async function deleteAsset(a) {
    const r = await api('POST', 'module/asset/deleteassets', { assetid: a.id });
    if (!r.ok || !r.json || !r.json.response || r.json.response.status !== 'ok') {
      throw fail(`Deleting “${a.name || a.id}” failed`, r);
    }
    go(lastGridHash);
    const name = a.name || a.id;
    toast(`Deleted “${name}”.`, caps.trash ? { label: 'Undo', run: () => restore(a.id, name) } : null);
    if (caps.trash) setTimeout(() => { if (!$('toast').hidden) $('toast-action').focus(); }, 50);
  }

  async function restore(id, name) {
    try {
      const r = await api('POST', 'module/asset/trash/restore', { assetid: id });
      if (!r.ok) throw fail(`Restoring “${name}” failed`, r);
      toast(`Restored “${name}”.`);
      route();
    } catch (e) {
      handleError(e);
    }
  }

  // ---------------------------------------------------------------- the trash

  async function showTrash(seq) {
    stopPolling();
    const view = $('view-trash');
    if (!caps.trashSearch) {
      showView('trash');
      view.replaceChildren(h('h1', { tabindex: '-1' }, 'Trash'), h('p', {}, 'This server has no trash yet.'));
      return;
    }
    const r = await api('POST', 'module/asset/trash/search', { page: '1', hitsperpage: '100', query: { terms: [{ field: 'id', operation: 'matches', value: '*' }] } });
    if (seq !== routeSeq) return;
    showView('trash');
    if (!r.ok || !r.json) {
      view.replaceChildren(h('h1', { tabindex: '-1' }, 'Trash'), h('p', { class: 'message error' }, `The trash cannot be listed: HTTP ${r.status} — ${details(r.json, '')}`));
      return;
    }
    const results = Array.isArray(r.json.results) ? r.json.results : [];
    const total = Number(r.json.response && r.json.response.totalhits) || results.length;
    const list = h('ul', { class: 'trashlist' }, results.map((a) => h('li', {},
      h('span', { class: 'tile-name' }, a.name || a.id),
      h('span', { class: 'muted' }, a.sourcepath || ''),
      caps.trash ? h('button', { type: 'button', onclick: () => restore(a.id, a.name || a.id) }, 'Restore') : null)));
    view.replaceChildren(h('p', { class: 'back' }, h('a', { href: lastGridHash }, '← Back to the assets')),
      h('h1', { tabindex: '-1' }, 'Trash'),
      h('p', { class: 'muted' }, total ? `${total} deleted asset${total === 1 ? '' : 's'} can be restored.` : 'The trash is empty.'),
      list);
    view.querySelector('h1').focus();
  }

  // ---------------------------------------------------------------- account

  async function signIn(ev) {
    ev.preventDefault();
    const user = $('signin-user').value.trim();
    const password = $('signin-password').value;
    const button = $('signin').querySelector('button[type=submit]');
    const msg = $('signin-message');
    button.disabled = true;
    msg.textContent = 'Signing in…';
    try {
      const resp = await fetch(services('authentication/login'), {
        method: 'POST', credentials: 'omit', cache: 'no-store',
        headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ id: user, password }),
      });
      let json = null;
      try { json = await resp.json(); } catch (e) { /* not JSON */ }
      const key = json && json.results && json.results.entermediakey;
      if (resp.ok && key) {
        $('signin-password').value = '';
        msg.textContent = '';
        setSession({ key, user: (json.response && json.response.user) || user });
        caps.probed = false;
        route();
      } else if (resp.status === 401 || (json && json.results && json.results.status === 'invalidlogin')) {
        msg.textContent = 'Wrong user name or password.';
        $('signin-password').focus();
      } else {
        msg.textContent = `Sign-in failed: HTTP ${resp.status} — ${details(json, '')}`;
      }
    } catch (e) {
      msg.textContent = 'Sign-in failed: the server cannot be reached (' + e.message + ').';
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    let message = 'Signed out; your key is revoked.';
    try {
      const r = await api('POST', 'authentication/logout', {});
      if (!r.ok) message = `Signed out here, but the server answered HTTP ${r.status} to logout.`;
    } catch (e) {
      if (!(e instanceof SessionEnded)) message = 'Signed out here, but the server could not be told; the key may still work.';
    }
    setSession(null);
    for (const p of imageCache.values()) p.then((o) => URL.revokeObjectURL(o), () => {});
    imageCache.clear();
    $('upload-list').replaceChildren();
    $('uploads').hidden = true;
    showSignIn(message);
  }

  // ---------------------------------------------------------------- start

  document.addEventListener('DOMContentLoaded', () => {
    if (API.dev) {
      const d = $('devmode');
      d.hidden = false;
      d.textContent = 'Development mode: this page is not served by MediaDB; it calls ' + absolute(API.prefix) + '.';
      document.querySelector('a[href="docs/"]').href = '../docs/?api=' + encodeURIComponent(absolute(API.prefix));
    }
    $('signin').addEventListener('submit', signIn);
    $('signout').addEventListener('click', signOut);
    $('search').addEventListener('submit', (ev) => {
      ev.preventDefault();
      go(gridHash(Object.assign({}, current || DEFAULTS, { q: $('q').value.trim(), page: 1 })));
    });
    $('sort').addEventListener('change', () => go(gridHash(Object.assign({}, current || DEFAULTS, { sort: $('sort').value, page: 1 }))));
    $('hpp').addEventListener('change', () => go(gridHash(Object.assign({}, current || DEFAULTS, { hpp: Number($('hpp').value), page: 1 }))));
    $('prev').addEventListener('click', () => go(gridHash(Object.assign({}, current, { page: current.page - 1 }))));
    $('next').addEventListener('click', () => go(gridHash(Object.assign({}, current, { page: current.page + 1 }))));
    const pick = () => $('upload-input').click();
    $('upload-button').addEventListener('click', pick);
    $('choose-files').addEventListener('click', pick);
    $('upload-input').addEventListener('change', (ev) => { uploadFiles(ev.target.files); ev.target.value = ''; });
    $('uploads-clear').addEventListener('click', () => {
      for (const li of [...$('upload-list').children]) if (li.classList.contains('done') || li.classList.contains('failed')) li.remove();
      if (!$('upload-list').children.length) $('uploads').hidden = true;
    });
    $('toast-close').addEventListener('click', hideToast);
    setupDrop();
    window.addEventListener('hashchange', route);
    route();
  });
})();
