// Test harness for the end-to-end tests: starts the real `mediadb` binary on a free port
// with a temporary data directory, finds Debian's Chromium, and serves the UI pages.
//
// Missing prerequisites (the binary, Chromium, playwright-core) skip the tests with a
// printed reason; under MEDIADB_REQUIRE_ALL=1 they fail instead.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const E2E_DIR = path.resolve(here, '..');
export const REPO = path.resolve(E2E_DIR, '../..');
export const UI_DIR = path.join(REPO, 'ui');
export const REQUIRE_ALL = process.env.MEDIADB_REQUIRE_ALL === '1';
export const SITE = 'assets';
export const ADMIN_PASSWORD = 'admin';

/** Skips the test `t` with a printed reason, or fails it under MEDIADB_REQUIRE_ALL=1. */
export function unavailable(t, reason) {
  if (REQUIRE_ALL) throw new Error(`${reason} (MEDIADB_REQUIRE_ALL=1 requires it)`);
  console.log(`# SKIP ${t.name}: ${reason}`);
  t.skip(reason);
}

export function serverBinary() {
  // MEDIADB_BIN is taken relative to the current directory, as a shell would.
  return process.env.MEDIADB_BIN ? path.resolve(process.env.MEDIADB_BIN) : path.join(REPO, 'target/debug/mediadb');
}

export function chromiumPath() {
  if (process.env.CHROMIUM_BIN) return existsSync(process.env.CHROMIUM_BIN) ? process.env.CHROMIUM_BIN : null;
  return ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p)) || null;
}

export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run',
];

/** What is missing for a browser test, or null. */
export async function browserPrerequisite() {
  if (!existsSync(serverBinary())) return `the server binary ${serverBinary()} does not exist (cargo build, or set MEDIADB_BIN)`;
  if (!chromiumPath()) return 'Chromium is not installed (apt-get install chromium)';
  try {
    await import('playwright-core');
  } catch (e) {
    return 'playwright-core is not installed (cd tests/e2e && npm ci)';
  }
  return null;
}

export async function launchBrowser() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: chromiumPath(), args: CHROMIUM_ARGS });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `mediadb serve` on a free port with a new data directory. */
export async function startServer() {
  const bin = serverBinary();
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'mediadb-e2e-'));
  const port = await freePort();
  const log = [];
  const child = spawn(bin, ['serve', '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`], {
    env: { ...process.env, MEDIADB_ADMIN_PASSWORD: ADMIN_PASSWORD, RUST_LOG: process.env.RUST_LOG || 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const keep = (d) => { log.push(d.toString()); if (log.length > 400) log.shift(); };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  child.on('exit', (code, signal) => { exited = { code, signal }; });
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30000;
  for (;;) {
    if (exited) {
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`mediadb exited (${JSON.stringify(exited)}) before it was ready:\n${log.join('')}`);
    }
    try {
      const r = await fetch(origin + '/healthz');
      if (r.ok) break;
    } catch (e) { /* not yet */ }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dataDir, { recursive: true, force: true });
      throw new Error(`mediadb did not answer /healthz within 30 s:\n${log.join('')}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const server = {
    origin,
    prefix: `/${SITE}/mediadb`,
    services: `${origin}/${SITE}/mediadb/services`,
    log,
    async stop() {
      if (!exited) {
        child.kill('SIGTERM');
        await new Promise((r) => { const t = setTimeout(() => { child.kill('SIGKILL'); r(); }, 5000); child.once('exit', () => { clearTimeout(t); r(); }); });
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return server;
}

// ------------------------------------------------------------------ the pages

// The headers the binary should send with the pages too: the pages need nothing else.
export const PAGE_HEADERS = {
  'Cache-Control': 'no-cache',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json' };

// Until the binary serves the pages itself, a small front serves ui/ at the same URLs
// (`/assets/mediadb/docs/...`, `/assets/mediadb/...`) and passes everything else to the
// server, so the pages compute their API prefix exactly as in production.
function startFront(server) {
  const files = {
    [`${server.prefix}/docs/`]: 'docs/index.html',
    [`${server.prefix}/docs/index.html`]: 'docs/index.html',
    [`${server.prefix}/docs/app.js`]: 'docs/app.js',
    [`${server.prefix}/docs/style.css`]: 'docs/style.css',
    [`${server.prefix}/`]: 'browser/index.html',
    [`${server.prefix}/index.html`]: 'browser/index.html',
    [`${server.prefix}/app.js`]: 'browser/app.js',
    [`${server.prefix}/style.css`]: 'browser/style.css',
    // Where the API page looks for the catalog when lists/search/endpoint has none.
    [`${server.prefix}/catalog/endpoints.json`]: 'catalog/endpoints.json',
    [`${server.prefix}/catalog/docsections.json`]: 'catalog/docsections.json',
  };
  const target = new URL(server.origin);
  const front = http.createServer((req, res) => {
    const p = new URL(req.url, 'http://x').pathname;
    const file = files[p];
    if (file && (req.method === 'GET' || req.method === 'HEAD')) {
      const body = readFileSync(path.join(UI_DIR, file));
      res.writeHead(200, { 'Content-Type': TYPES[path.extname(file)] || 'application/octet-stream', ...PAGE_HEADERS });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const up = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
    req.pipe(up);
  });
  return new Promise((resolve) => front.listen(0, '127.0.0.1', () => resolve(front)));
}

/**
 * Where the browser opens the pages: the server itself when it serves them, else a
 * front serving ui/ (printed; refused under MEDIADB_REQUIRE_ALL=1).
 */
export async function pagesOrigin(server) {
  let served = false;
  try {
    const r = await fetch(`${server.origin}${server.prefix}/docs/`);
    served = r.ok && /html/.test(r.headers.get('content-type') || '');
  } catch (e) { /* no */ }
  if (served) return { origin: server.origin, close: async () => {} };
  const reason = `the server does not serve ${server.prefix}/docs/ yet; the test serves ui/ itself in front of it`;
  if (REQUIRE_ALL) throw new Error(`${reason} (MEDIADB_REQUIRE_ALL=1 requires the pages built into the binary)`);
  console.log(`# NOTE: ${reason}`);
  const front = await startFront(server);
  return {
    origin: `http://127.0.0.1:${front.address().port}`,
    close: () => new Promise((r) => { front.closeAllConnections?.(); front.close(() => r()); }),
  };
}

// ------------------------------------------------------------------ API helpers

export async function call(server, method, pathAndQuery, { key, json, body, headers } = {}) {
  const h = { ...(headers || {}) };
  if (key) h['X-entermedia.key'] = key;
  let b = body;
  if (json !== undefined) { h['Content-Type'] = 'application/json'; b = typeof json === 'string' ? json : JSON.stringify(json); }
  const resp = await fetch(`${server.services}/${pathAndQuery}`, { method, headers: h, body: b });
  const text = await resp.text();
  let data = null;
  try { data = JSON.parse(text); } catch (e) { /* not JSON */ }
  return { status: resp.status, headers: resp.headers, text, json: data };
}

export async function login(server, user = 'admin', password = ADMIN_PASSWORD) {
  const r = await call(server, 'POST', 'authentication/login', { json: { id: user, password } });
  const key = r.json && r.json.results && r.json.results.entermediakey;
  if (r.status !== 200 || !key) throw new Error(`login failed: ${r.status} ${r.text}`);
  return key;
}

export async function upload(server, key, { name, bytes, type = 'application/octet-stream', meta = {} }) {
  const fd = new FormData();
  fd.append('jsonrequest', JSON.stringify({ sourcepath: 'E2E/', ...meta }));
  fd.append('file', new Blob([bytes], { type }), name);
  const r = await call(server, 'POST', 'module/asset/create', { key, body: fd });
  if (r.status !== 200 || !r.json || !r.json.response || !r.json.response.id) throw new Error(`upload failed: ${r.status} ${r.text}`);
  return r.json;
}

export async function searchIds(server, key, terms) {
  const r = await call(server, 'POST', 'module/asset/search', {
    key, json: { page: '1', hitsperpage: '100', query: { terms } },
  });
  if (r.status !== 200) throw new Error(`search failed: ${r.status} ${r.text}`);
  return { total: r.json.response.totalhits, ids: r.json.results.map((a) => a.id) };
}

// ------------------------------------------------------------------ test media

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A real PNG image of w x h pixels: a colour gradient, so previews have something to show. */
export async function makePng(w = 64, h = 48, seed = 0) {
  const { deflateSync } = await import('node:zlib');
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0;
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = (x * 255 / w + seed * 40) & 255;
      raw[o + 1] = (y * 255 / h) & 255;
      raw[o + 2] = (128 + seed * 70) & 255;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0); ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0)),
  ]);
}

/** Saves a screenshot when E2E_SCREENSHOTS names a folder (never committed). */
export async function screenshot(page, name) {
  const dir = process.env.E2E_SCREENSHOTS;
  if (!dir) return;
  await page.screenshot({ path: path.join(path.resolve(dir), name + '.png'), fullPage: true });
}

/** A real 48x32 baseline JPEG (a gradient), 270 bytes. */
export const TINY_JPEG = Buffer.from(
  '/9j/4AAQSkZJRgABAgAAAQABAAD//gAQTGF2YzU5LjM3LjEwMAD/2wBDAAgMDA4MDhAQEBAQEBMSExQUFBMTExMUFBQVFRUZGRkVFRUUFBUVGBgZGRscGxoaGRocHB4eHiQkIiIqKiszMz7/xABVAAEBAQAAAAAAAAAAAAAAAAAABwUBAQEBAAAAAAAAAAAAAAAAAAAGBRABAAAAAAAAAAAAAAAAAAAAABEBAAEFAQAAAAAAAAAAAAAAAOIWohVkY6P/wAARCAAgADADASIAAhEAAxEA/9oADAMBAAIRAxEAPwDEAUjAAAAABRBAVNresFTh+1kk7FECptb1gYftZJOxRAqbW9YGH7WSf//Z',
  'base64');
