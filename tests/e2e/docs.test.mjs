// The API page (CONTRACT §3) in headless Chromium against the real server: sign in,
// Files -> Delete Asset executed on an uploaded asset, errors, deep links, keyboard,
// narrow screens, sign out revoking the key.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  browserPrerequisite, call, launchBrowser, login, pagesOrigin, screenshot, searchIds, startServer, unavailable, upload, TINY_JPEG,
} from './lib/harness.mjs';

const missing = await browserPrerequisite();

describe('API page', { concurrency: false }, () => {
  let server, pages, browser, page, docsUrl;

  before(async () => {
    if (missing) return;
    server = await startServer();
    pages = await pagesOrigin(server);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => console.log('# page error:', e.message));
    docsUrl = `${pages.origin}${server.prefix}/docs/`;
  });
  after(async () => {
    if (browser) await browser.close();
    if (pages) await pages.close();
    if (server) await server.stop();
  });

  const skipped = (t) => { if (missing) { unavailable(t, missing); return true; } return false; };

  test('a wrong password is refused on the page', async (t) => {
    if (skipped(t)) return;
    await page.goto(docsUrl);
    await page.getByLabel('User', { exact: true }).fill('admin');
    await page.getByLabel('Password', { exact: true }).fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('wrong user name or password').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Sign out' }).isVisible(), false);
  });

  test('sign in, find Files -> Delete Asset, execute it on an uploaded asset', async (t) => {
    if (skipped(t)) return;
    const key = await login(server);
    const created = await upload(server, key, { name: 'delete-me.jpg', bytes: TINY_JPEG, type: 'image/jpeg' });
    const id = created.response.id;
    assert.equal((await searchIds(server, key, [{ field: 'id', operation: 'exact', value: id }])).total, 1);

    await page.goto(docsUrl);
    await page.getByLabel('User', { exact: true }).fill('admin');
    await page.getByLabel('Password', { exact: true }).fill('admin');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('Signed in as').first().waitFor();
    // The key is kept for the tab only.
    const stored = await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('mediadb.session')).length);
    assert.equal(stored, 1);

    const nav = page.getByRole('navigation', { name: 'Endpoints' });
    const files = nav.locator('section', { has: page.getByRole('heading', { name: 'Files', exact: true }) });
    await files.getByRole('link', { name: 'Delete Asset', exact: true }).click();
    await page.waitForURL(/#\/endpoint\/deleteasset$/);
    await page.getByRole('heading', { level: 1, name: 'Delete Asset' }).waitFor();
    assert.equal(await page.locator('#ep-method').textContent(), 'POST');
    assert.match(await page.getByLabel('URL').inputValue(), /\/assets\/mediadb\/services\/module\/asset\/deleteassets$/);
    const editor = page.getByLabel('Request body (JSON)');
    assert.equal(await editor.inputValue(), '{"assetid": "101",}');
    await screenshot(page, 'docs-delete-asset');

    // Fill in the id, keep the EMDB trailing comma, and execute.
    await editor.fill(`{"assetid": "${id}",}`);
    await page.getByRole('button', { name: 'Execute' }).click();
    const status = page.locator('#ep-status');
    await status.waitFor();
    assert.match(await status.textContent(), /HTTP 200/);
    const body = await page.locator('#ep-body-out').textContent();
    assert.match(body, /"status": "ok"/);
    assert.match(body, /"rowsedited": "1"/);
    await screenshot(page, 'docs-delete-asset-executed');

    // The asset is gone.
    assert.equal((await searchIds(server, key, [{ field: 'id', operation: 'exact', value: id }])).total, 0);
    assert.equal((await call(server, 'GET', `module/asset/data/${id}`, { key })).status, 404);
  });

  test('errors are shown as clearly as successes', async (t) => {
    if (skipped(t)) return;
    await page.goto(docsUrl + '#/endpoint/getassetdetails');
    await page.getByRole('heading', { level: 1, name: 'Get Asset Details' }).waitFor();
    const url = page.getByLabel('URL');
    await url.fill((await url.inputValue()).replace(/101$/, 'no-such-asset'));
    await page.getByRole('button', { name: 'Execute' }).click();
    await page.locator('#ep-status').waitFor();
    assert.match(await page.locator('#ep-status').textContent(), /HTTP 404/);
    assert.match(await page.locator('#ep-error').textContent(), /not found/);

    // A broken body is a 400 with the server's explanation.
    await page.goto(docsUrl + '#/endpoint/searchforfiles');
    await page.getByRole('heading', { level: 1, name: 'Search For Files' }).waitFor();
    await page.getByLabel('Request body (JSON)').fill('{"query": {"terms": [');
    await page.getByRole('button', { name: 'Execute' }).click();
    await page.locator('#ep-status').waitFor();
    assert.match(await page.locator('#ep-status').textContent(), /HTTP 400/);
    assert.match(await page.locator('#ep-error').textContent(), /error/);
  });

  test('deep links open an endpoint; the keyboard alone can execute', async (t) => {
    if (skipped(t)) return;
    // A new tab has no key (it is kept per tab).
    const fresh = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      await fresh.goto(docsUrl + '#/endpoint/systemstatus');
      const heading = fresh.getByRole('heading', { level: 1, name: 'System Status' });
      const needsKey = fresh.getByText('Sign in to open “systemstatus”.');
      await heading.or(needsKey).waitFor();
      if (await needsKey.isVisible()) {
        // The server keeps its catalog for signed-in users: the link opens after sign-in.
        await fresh.getByLabel('User', { exact: true }).fill('admin');
        await fresh.getByLabel('Password', { exact: true }).fill('admin');
        await fresh.getByLabel('Password', { exact: true }).press('Enter');
        await heading.waitFor();
      }
      assert.equal(await fresh.evaluate(() => document.activeElement && document.activeElement.tagName), 'H1');
      // Tab to the Execute button and press Enter.
      let reached = false;
      for (let i = 0; i < 12 && !reached; i++) {
        await fresh.keyboard.press('Tab');
        reached = await fresh.evaluate(() => document.activeElement && document.activeElement.textContent === 'Execute');
      }
      assert.ok(reached, 'Execute is reachable with Tab');
      await fresh.keyboard.press('Enter');
      await fresh.locator('#ep-status').waitFor();
      assert.match(await fresh.locator('#ep-status').textContent(), /HTTP 200/);
      assert.match(await fresh.locator('#ep-body-out').textContent(), /"status": "ok"/);

      // Ctrl+Enter in the editor executes too.
      await fresh.goto(docsUrl + '#/endpoint/searchforfiles');
      await fresh.getByRole('heading', { level: 1, name: 'Search For Files' }).waitFor();
      await fresh.getByLabel('Request body (JSON)').focus();
      await fresh.keyboard.press('Control+Enter');
      await fresh.locator('#ep-status').waitFor();
      assert.match(await fresh.locator('#ep-status').textContent(), /HTTP (200|401)/);
    } finally {
      await fresh.close();
    }
  });

  test('narrow screens: the endpoint list opens from a button', async (t) => {
    if (skipped(t)) return;
    const narrow = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      await narrow.goto(docsUrl);
      await narrow.getByLabel('User', { exact: true }).fill('admin');
      await narrow.getByLabel('Password', { exact: true }).fill('admin');
      await narrow.getByRole('button', { name: 'Sign in' }).click();
      await narrow.getByText('Signed in as').first().waitFor();
      const toggle = narrow.getByRole('button', { name: 'Endpoints' });
      await toggle.waitFor();
      const list = narrow.getByRole('navigation', { name: 'Endpoints' });
      assert.equal(await list.isVisible(), false);
      await toggle.click();
      assert.equal(await list.isVisible(), true);
      await list.getByRole('link', { name: 'Upload File' }).click();
      await narrow.getByRole('heading', { level: 1, name: 'Upload File' }).waitFor();
      assert.equal(await list.isVisible(), false);
      // Upload endpoints have a file input.
      assert.equal(await narrow.getByLabel('File', { exact: true }).getAttribute('type'), 'file');
      const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `no horizontal scrolling (overflow ${overflow}px)`);
      await screenshot(narrow, 'docs-narrow-upload');
    } finally {
      await narrow.close();
    }
  });

  test('signing in while the first catalog load is still out: the catalog and the key survive', async (t) => {
    if (skipped(t)) return;
    const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    try {
      // Hold the page's first (keyless) catalog requests until after the sign-in.
      await p.route('**/services/lists/search/**', async (route) => {
        if (!route.request().headers()['x-entermedia.key']) await new Promise((r) => setTimeout(r, 1500));
        await route.continue();
      });
      await p.goto(docsUrl + '#/endpoint/searchforfiles');
      await p.getByLabel('User', { exact: true }).fill('admin');
      await p.getByLabel('Password', { exact: true }).fill('admin');
      await p.getByRole('button', { name: 'Sign in' }).click();
      await p.getByRole('heading', { level: 1, name: 'Search For Files' }).waitFor();
      await p.waitForTimeout(2000); // the held requests answer 401 now
      assert.ok(await p.getByRole('heading', { level: 1, name: 'Search For Files' }).isVisible());
      assert.ok(await p.getByRole('button', { name: 'Sign out' }).isVisible(), 'still signed in');
      assert.ok(await p.getByRole('navigation', { name: 'Endpoints' }).getByRole('link', { name: 'Delete Asset', exact: true }).isVisible());
    } finally {
      await p.close();
    }
  });

  test('Upload File from the page sends the file and the JSON', async (t) => {
    if (skipped(t)) return;
    await page.goto(docsUrl + '#/endpoint/uploadfile');
    await page.getByRole('heading', { level: 1, name: 'Upload File' }).waitFor();
    await page.getByLabel('File', { exact: true }).setInputFiles({ name: 'from-docs.jpg', mimeType: 'image/jpeg', buffer: TINY_JPEG });
    await page.getByRole('button', { name: 'Execute' }).click();
    await page.locator('#ep-status').waitFor();
    assert.match(await page.locator('#ep-status').textContent(), /HTTP 200/);
    const out = JSON.parse(await page.locator('#ep-body-out').textContent());
    assert.equal(out.data.name, 'from-docs.jpg');
    assert.equal(out.data.sourcepath, 'Clients/Demo/from-docs.jpg');
    assert.deepEqual(out.data.keywords.map((k) => k.id), ['bird']);
  });

  test('Sign out revokes the key', async (t) => {
    if (skipped(t)) return;
    await page.goto(docsUrl);
    const key = await page.evaluate(() => {
      const k = Object.keys(sessionStorage).find((x) => x.startsWith('mediadb.session'));
      return k ? JSON.parse(sessionStorage.getItem(k)).key : null;
    });
    assert.ok(key, 'signed in from an earlier test');
    assert.equal((await call(server, 'POST', 'module/asset/search', { key, json: {} })).status, 200);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal((await call(server, 'POST', 'module/asset/search', { key, json: {} })).status, 401);
    assert.equal(await page.evaluate(() => Object.keys(sessionStorage).filter((k) => k.startsWith('mediadb.session')).length), 0);
  });
});
