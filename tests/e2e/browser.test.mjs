// The asset browser in headless Chromium against the real server: sign in, upload
// several files by drag and drop and see their tiles, search, edit metadata, delete
// with confirmation and undo from the trash.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  browserPrerequisite, call, launchBrowser, login, makePng, pagesOrigin, screenshot, searchIds, startServer, unavailable, TINY_JPEG,
} from './lib/harness.mjs';

const missing = await browserPrerequisite();

describe('asset browser', { concurrency: false }, () => {
  let server, pages, browser, page, browserUrl, key;

  before(async () => {
    if (missing) return;
    server = await startServer();
    key = await login(server);
    pages = await pagesOrigin(server);
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (e) => console.log('# page error:', e.message));
    browserUrl = `${pages.origin}${server.prefix}/`;
  });
  after(async () => {
    if (browser) await browser.close();
    if (pages) await pages.close();
    if (server) await server.stop();
  });

  const skipped = (t) => { if (missing) { unavailable(t, missing); return true; } return false; };
  const tile = (name) => page.locator('#grid li.tile', { hasText: name });

  test('sign in shows the (empty) grid', async (t) => {
    if (skipped(t)) return;
    await page.goto(browserUrl);
    await page.getByLabel('User', { exact: true }).fill('admin');
    await page.getByLabel('Password', { exact: true }).fill('admin');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'No assets' }).waitFor();
    assert.ok(await page.getByRole('button', { name: 'Sign out' }).isVisible());
  });

  test('drop several files: progress, then their tiles', async (t) => {
    if (skipped(t)) return;
    const png = await makePng(120, 80, 1);
    const files = [
      { name: 'heron.jpg', type: 'image/jpeg', b64: TINY_JPEG.toString('base64') },
      { name: 'gradient.png', type: 'image/png', b64: png.toString('base64') },
      { name: 'notes.txt', type: 'text/plain', b64: Buffer.from('field notes: a heron by the river\n').toString('base64') },
    ];
    const dt = await page.evaluateHandle((list) => {
      const d = new DataTransfer();
      for (const f of list) {
        const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
        d.items.add(new File([bytes], f.name, { type: f.type }));
      }
      return d;
    }, files);
    await page.dispatchEvent('#dropzone', 'dragenter', { dataTransfer: dt });
    assert.ok(await page.locator('#dropoverlay').isVisible(), 'the drop target shows while dragging');
    await page.dispatchEvent('#dropzone', 'drop', { dataTransfer: dt });

    const uploads = page.getByRole('region', { name: 'Uploads' });
    await uploads.getByText(/^Uploaded \d+ of 3/).waitFor();
    assert.match(await uploads.locator('#uploads-summary').textContent(), /^Uploaded 3 of 3$/, await uploads.innerText());
    assert.equal(await uploads.locator('progress').count(), 3);
    for (const p of await uploads.locator('progress').all()) assert.equal(await p.getAttribute('value'), '100');
    for (const f of files) await tile(f.name).waitFor();
    // No thumbnails yet (or none for text): a file-type tile says what the file is.
    assert.match(await tile('notes.txt').textContent(), /TXT/);
    await screenshot(page, 'browser-after-upload');

    const all = await searchIds(server, key, [{ field: 'id', operation: 'matches', value: '*' }]);
    assert.equal(all.total, 3);

    // When the server makes renditions, the image's tile shows its thumbnail once they exist.
    let asset = null;
    for (let i = 0; i < 60; i++) {
      const r = await call(server, 'POST', 'module/asset/search', {
        key, json: { query: { terms: [{ field: 'name', operation: 'matches', value: 'gradient.png' }] } },
      });
      asset = r.json.results[0];
      const imp = asset.importstatus && asset.importstatus.id;
      const prev = asset.previewstatus && asset.previewstatus.id;
      const working = (imp && imp !== 'complete' && imp !== 'error') || ['0', '1', 'converting'].includes(prev);
      if (!working || (asset.downloads || []).some((d) => d.id === 'thumbimage')) break;
      await new Promise((r) => setTimeout(r, 500));
    }
    if ((asset.downloads || []).some((d) => d.id === 'thumbimage')) {
      await tile('gradient.png').locator('img').waitFor({ timeout: 20000 });
      assert.ok(await tile('gradient.png').locator('img').evaluate((img) => img.complete && img.naturalWidth > 0));
    } else {
      console.log(`# NOTE: no thumbimage rendition from the server yet (previewstatus ${JSON.stringify(asset.previewstatus)}); the tile shows the file type`);
      assert.match(await tile('gradient.png').textContent(), /PNG/);
    }
  });

  test('the file input uploads too', async (t) => {
    if (skipped(t)) return;
    await page.locator('#upload-input').setInputFiles([{ name: 'egret.jpg', mimeType: 'image/jpeg', buffer: TINY_JPEG }]);
    await tile('egret.jpg').waitFor();
  });

  test('search narrows the grid; clearing it shows everything', async (t) => {
    if (skipped(t)) return;
    await page.getByLabel('Search assets').fill('heron');
    await page.getByLabel('Search assets').press('Enter');
    await page.getByRole('heading', { name: /1 asset matching “heron”/ }).waitFor();
    assert.equal(await page.locator('#grid li.tile').count(), 1);
    await page.getByLabel('Search assets').fill('');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByRole('heading', { name: '4 assets' }).waitFor();
  });

  test('asset page: metadata view and edit', async (t) => {
    if (skipped(t)) return;
    await tile('heron.jpg').getByRole('link').click();
    await page.getByRole('heading', { level: 1, name: 'heron.jpg' }).waitFor();
    assert.ok(await page.getByRole('button', { name: 'Download original' }).isVisible());
    await page.getByRole('button', { name: 'Edit metadata' }).click();
    await page.getByLabel('Title').fill('Grey heron at dawn');
    await page.getByLabel('Keywords (comma-separated)').fill('bird, river');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByText('Saved.').waitFor();
    await screenshot(page, 'browser-asset-page');
    const id = decodeURIComponent(page.url().split('#/asset/')[1]);
    const r = await call(server, 'GET', `module/asset/data/${id}`, { key });
    assert.equal(r.json.data.assettitle, 'Grey heron at dawn');
    assert.deepEqual(r.json.data.keywords.map((k) => k.id), ['bird', 'river']);
    // The download is the original, byte for byte.
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download original' }).click()]);
    const saved = await download.createReadStream();
    const chunks = [];
    for await (const c of saved) chunks.push(c);
    assert.deepEqual(Buffer.concat(chunks), TINY_JPEG);
  });

  test('delete asks first, removes the asset, and Undo restores it', async (t) => {
    if (skipped(t)) return;
    const id = decodeURIComponent(page.url().split('#/asset/')[1]);
    // Cancel keeps it.
    await page.getByRole('button', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await call(server, 'GET', `module/asset/data/${id}`, { key })).status, 200);

    await page.getByRole('button', { name: 'Delete' }).click();
    await dialog.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('Deleted “heron.jpg”.').waitFor();
    await page.getByRole('heading', { name: '3 assets' }).waitFor();
    assert.equal(await tile('heron.jpg').count(), 0);
    assert.equal((await searchIds(server, key, [{ field: 'id', operation: 'exact', value: id }])).total, 0);

    const restore = await call(server, 'POST', 'module/asset/trash/restore', { key, json: {} });
    if (restore.status === 404 && /unknown endpoint/.test(restore.text)) {
      assert.equal(await page.getByRole('button', { name: 'Undo' }).count(), 0, 'no Undo without a trash');
      const reason = 'the server has no trash/restore yet (404): Undo is not offered';
      console.log(`# SKIP undo: ${reason}`);
      return t.skip(reason);
    }
    await screenshot(page, 'browser-deleted-undo');
    await page.getByRole('button', { name: 'Undo' }).click();
    await page.getByText('Restored “heron.jpg”.').waitFor();
    await tile('heron.jpg').waitFor();
    assert.equal((await searchIds(server, key, [{ field: 'id', operation: 'exact', value: id }])).total, 1);
    const back = await call(server, 'GET', `module/asset/data/${id}`, { key });
    assert.equal(back.json.data.assettitle, 'Grey heron at dawn', 'restored with its metadata');
  });

  // Facets, renditions, processing states and rotation come from the server as it grows;
  // until it sends them, this test adds them to the real answers (in the browser only)
  // to check that the page shows them and sends the right requests back.
  test('facets, thumbnails, processing states and rotate render from the wire shapes (answers amended in the browser)', async (t) => {
    if (skipped(t)) return;
    const png = await makePng(200, 150, 2);
    const p = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const searches = [];
    const rotations = [];
    try {
      const fake = `${server.prefix}/services/module/asset/generated/e2e-fake`;
      const withMedia = (a, i) => {
        const out = { ...a };
        if (i === 0) {
          out.downloads = [
            { id: 'thumbimage', name: 'Thumbnail', url: `${fake}/thumb.png` },
            { id: 'largeimage', name: 'Large image', url: `${fake}/large.png`, download: `${fake}/large.png` },
          ];
        }
        if (i === 1) out.importstatus = { id: 'imported', name: 'Imported' };
        if (i === 2) out.previewstatus = { id: 'converting', name: 'Converting' };
        return out;
      };
      await p.route('**/services/module/asset/search', async (route) => {
        searches.push(route.request().postDataJSON());
        const resp = await route.fetch();
        const json = await resp.json();
        json.results = json.results.map(withMedia);
        json.filteroptions = [{ id: 'assettype', name: 'Asset Type', children: [
          { id: 'photo', name: 'Photo', count: '3' }, { id: 'document', name: 'Document', count: '1' }] }];
        await route.fulfill({ response: resp, json });
      });
      await p.route('**/services/module/asset/data/*', async (route) => {
        const resp = await route.fetch();
        const json = await resp.json();
        if (json.data) json.data = withMedia(json.data, 0);
        await route.fulfill({ response: resp, json });
      });
      await p.route('**/generated/e2e-fake/**', (route) => route.fulfill({ contentType: 'image/png', body: png }));
      await p.route('**/services/module/asset/media/rotateasset', async (route) => {
        const body = route.request().postDataJSON() || {};
        if (!body.assetid) return route.fulfill({ status: 400, json: { response: { status: 'error', details: 'assetid is required' } } });
        rotations.push(body);
        return route.fulfill({ json: { response: { status: 'ok', width: 150, height: 200 } } });
      });

      await p.goto(browserUrl);
      await p.getByLabel('User', { exact: true }).fill('admin');
      await p.getByLabel('Password', { exact: true }).fill('admin');
      await p.getByRole('button', { name: 'Sign in' }).click();
      const tiles = p.locator('#grid li.tile');
      await tiles.first().waitFor();
      // The first tile shows its thumbnail, the others their states.
      await tiles.nth(0).locator('img').waitFor();
      assert.ok(await tiles.nth(0).locator('img').evaluate((img) => img.complete && img.naturalWidth === 200));
      assert.equal(await tiles.nth(1).locator('.badge').textContent(), 'Importing');
      assert.equal(await tiles.nth(2).locator('.badge').textContent(), 'Converting');

      // A facet value filters the search.
      const facets = p.getByRole('complementary', { name: 'Filters' });
      await facets.getByRole('group', { name: 'Asset Type' }).waitFor();
      await screenshot(p, 'browser-facets-thumbnails');
      await facets.getByLabel('Photo (3)').check();
      await p.waitForURL(/f=assettype%3Aphoto/);
      await p.getByRole('button', { name: 'Remove filter assettype: photo' }).waitFor();
      const last = searches[searches.length - 1];
      assert.deepEqual(last.query.terms, [{ field: 'assettype', operation: 'orsgroup', values: ['photo'] }]);
      assert.equal(last.showfilters, 'true');

      // The asset page shows the large preview and rotates.
      await tiles.nth(0).getByRole('link').click();
      await p.locator('.preview img').waitFor();
      assert.ok(await p.locator('.preview img').evaluate((img) => img.naturalWidth === 200));
      await p.getByRole('button', { name: /Rotate right/ }).click();
      await p.getByText('Rotated.').waitFor();
      assert.equal(rotations.length, 1);
      assert.equal(rotations[0].rotate, '90');
      assert.equal(await p.getByRole('heading', { name: 'Renditions' }).isVisible(), true);
      await screenshot(p, 'browser-asset-preview');
    } finally {
      await p.close();
    }
  });

  test('narrow screen: readable, no sideways scrolling', async (t) => {
    if (skipped(t)) return;
    const narrow = await browser.newPage({ viewport: { width: 390, height: 844 } });
    try {
      // Same tab storage is per page: sign in again.
      await narrow.goto(browserUrl);
      await narrow.getByLabel('User', { exact: true }).fill('admin');
      await narrow.getByLabel('Password', { exact: true }).fill('admin');
      await narrow.getByRole('button', { name: 'Sign in' }).click();
      await narrow.locator('#grid li.tile').first().waitFor();
      const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 1, `no horizontal scrolling (overflow ${overflow}px)`);
      await screenshot(narrow, 'browser-narrow');
    } finally {
      await narrow.close();
    }
  });

  test('sign out revokes the key and shows the sign-in form', async (t) => {
    if (skipped(t)) return;
    const pageKey = await page.evaluate(() => {
      const k = Object.keys(sessionStorage).find((x) => x.startsWith('mediadb.session'));
      return k ? JSON.parse(sessionStorage.getItem(k)).key : null;
    });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal((await call(server, 'POST', 'module/asset/search', { key: pageKey, json: {} })).status, 401);
  });
});
