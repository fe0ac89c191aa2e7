import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Download, Page } from 'playwright-core';
import { isFileValue } from '../../src/sandbox/records.ts';
import { formatBytes } from '../../src/shared/format-bytes.ts';
import { collectCspViolations, launchChromium, screenshotWidths, tabTo } from '../helpers/page-checks.ts';
import { launch, startServiceWithSandbox, type ServiceWithSandbox } from '../helpers/service.ts';
import { checkWithAllReaders } from '../transfer/zip/archive-checks.ts';

// The download-zip page in Debian's Chromium, against the real service and the sandbox site: launched on three
// Shots from the sandbox's right-click menu, the page lists their files with sizes; with thumbnails switched off,
// Download gives a zip the browser saves, which unzip, 7z and Python's zipfile accept and whose every entry is
// byte-identical to what the site stores; the page's progress ends at "Done". When storage drops every source
// connection, the browser's download fails (never a complete-looking file) and the page names the file. The
// button is reachable and works by keyboard.
//
// Set SCREENSHOT_DIR to keep screenshots of the page at 1280 and 640 px (before, done, failed).

const SHOTS = ['sh010', 'sh020', 'sh030'];
/** What the zip holds for the three Shots without thumbnails: attachments, the local plate, the Notes' attachments. */
const EXPECTED_ENTRIES = [
  'Shot/sh010/sh010_brief.pdf',
  'Shot/sh010/sh010_reference.png',
  'Shot/sh010/sh010_shotlist.csv',
  'Shot/sh010/sh010_bg_v001.exr',
  'Shot/sh010/sh010_comp_v003_note_1.png',
  'Shot/sh020/sh020_notes.txt',
  'Shot/sh020/sh020_comp_v003_note_2.png',
  'Shot/sh030/sh030_temp_mix.wav',
  'manifest.csv',
];

describe('download-zip in chromium', { timeout: 300_000 }, () => {
  let env: ServiceWithSandbox;
  let browser: Browser;
  let mount: string;
  let folder: string;
  const contexts: BrowserContext[] = [];
  const cspViolations: string[] = [];
  const localBytes = Buffer.from('EXR plate stand-in for the browser test\n'.repeat(2000));

  before(async () => {
    mount = await mkdtemp(join(tmpdir(), 'ami-download-mount-'));
    folder = await mkdtemp(join(tmpdir(), 'ami-download-browser-'));
    const plate = join(mount, 'demo/shots/sh010/plates/sh010_bg_v001.exr');
    await mkdir(dirname(plate), { recursive: true });
    await writeFile(plate, localBytes);
    env = await startServiceWithSandbox({ LOCAL_STORAGE_MOUNTS: `primary=${mount}` });
    assert.match(env.service.publicUrl, /^http:\/\/localhost:\d+$/);
    assert.match(env.site.url, /^http:\/\/127\.0\.0\.1:\d+$/, 'the menu page is on another site than the service');
    browser = await launchChromium();
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await env?.close();
    if (mount) await rm(mount, { recursive: true, force: true });
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  const shotId = (code: string): number => env.site.store.all('Shot').find((shot) => shot.fields.code === code)!.id;

  async function newContext(width = 1280): Promise<BrowserContext> {
    const context = await browser.newContext({ acceptDownloads: true, viewport: { width, height: 900 } });
    contexts.push(context);
    collectCspViolations(context, cspViolations);
    return context;
  }

  /** sha256 of every uploaded attachment's stored bytes, by file name (the seed's names are unique). */
  async function storedHashes(): Promise<Map<string, string>> {
    const hashes = new Map<string, string>();
    for (const attachment of env.site.store.all('Attachment')) {
      const file = attachment.fields.this_file;
      if (!isFileValue(file) || file.link_type !== 'upload') continue;
      const hash = createHash('sha256');
      for await (const chunk of env.site.storage.createReadStream(file.key)) hash.update(chunk as Buffer);
      hashes.set(file.name, hash.digest('hex'));
    }
    return hashes;
  }

  const screenshot = (page: Page, name: string) => screenshotWidths(page, `download-${name}`);

  /** Nothing on the page is wider than the viewport (ShotGrid's 640 px modal included). */
  async function assertFits(page: Page, width: number): Promise<void> {
    const viewport = page.viewportSize()!;
    await page.setViewportSize({ width, height: viewport.height });
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(overflow, 0, `nothing wider than ${width} px`);
    // The listing's kinds and notes wrap between words, never inside one ("attachment / s").
    const brokenWords = await page.evaluate(() => {
      const broken: string[] = [];
      for (const cell of document.querySelectorAll('table.files td:nth-child(2), table.files td:nth-child(4)')) {
        const text = cell.firstChild;
        if (!(text instanceof Text)) continue;
        for (const match of text.data.matchAll(/\S+/g)) {
          const range = document.createRange();
          range.setStart(text, match.index);
          range.setEnd(text, match.index + match[0].length);
          if (range.getClientRects().length > 1) broken.push(match[0]);
        }
      }
      return broken;
    });
    assert.deepEqual(brokenWords, [], `no word broken at ${width} px`);
    await page.setViewportSize(viewport);
  }

  /** Saves the browser's download; resolves with where, and its failure (null when the browser completed it). */
  async function saved(download: Download, name: string): Promise<{ path: string; failure: string | null }> {
    const failure = await download.failure();
    if (failure !== null) return { path: '', failure };
    const path = join(folder, name);
    await download.saveAs(path);
    return { path, failure: null };
  }

  test('from the right-click menu: the files listed with sizes, thumbnails off, the saved zip passes three readers and matches the site byte for byte', async () => {
    const context = await newContext();
    const menu = await context.newPage();
    await menu.goto(`${env.site.menuUrl}?entity_type=Shot&login=artist`);
    for (const code of SHOTS) await menu.locator(`tr.row[data-id="${shotId(code)}"] input.row-select`).check();
    await menu.locator('#selection-count').filter({ hasText: `${SHOTS.length} of` }).waitFor();
    await menu.locator(`tr.row[data-id="${shotId('sh010')}"] .col-description`).click({ button: 'right' });
    const actions = menu.getByRole('menu', { name: 'Actions' });
    await actions.getByLabel('In a new tab').check();
    const [page] = await Promise.all([context.waitForEvent('page'), actions.getByRole('menuitem', { name: 'Download as zip' }).click()]);
    await page.locator('h1', { hasText: 'Download as zip' }).waitFor();
    // A tab opened from the menu is handed over before its module scripts ran: files chosen earlier go unseen.
    await page.waitForLoadState('load');
    assert.match(page.url(), new RegExp(`^${env.service.publicUrl}/ami/download-zip/[A-Za-z0-9_-]{43}$`));

    // The listing: each Shot, each of its attachments with its size (the site states none for files since 2025:
    // the page fills them in from storage once it has shown), a thumbnail each.
    assert.deepEqual((await page.locator('.entity-name').allTextContents()).map((text) => text.trim()), SHOTS);
    await page.waitForFunction(() => [...document.querySelectorAll('td.size')].every((cell) => cell.textContent !== 'measuring…'));
    const rows = await page.locator('table.files tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({ kind: tr.getAttribute('data-kind'), cells: Array.from(tr.querySelectorAll('td'), (td) => td.textContent!.replace(/\s+/g, ' ').trim()) })),
    );
    const shots = new Set(SHOTS.map(shotId));
    for (const attachment of env.site.store.all('Attachment')) {
      const file = attachment.fields.this_file;
      const links = (attachment.fields.attachment_links ?? []) as { type: string; id: number }[];
      if (!isFileValue(file) || file.link_type !== 'upload' || !links.some((link) => link.type === 'Shot' && shots.has(link.id))) continue;
      const row = rows.find((r) => r.cells[0] === file.name);
      assert.ok(row, `${file.name} is listed`);
      assert.equal(row.kind, 'attachments');
      assert.equal(row.cells[2], formatBytes(env.site.storage.head(file.key)!.size), `${file.name}'s size`);
    }
    assert.equal(rows.filter((row) => row.kind === 'thumbnails').length, 3, 'a thumbnail per Shot');
    const plate = rows.find((row) => row.cells[0] === 'sh010_bg_v001.exr');
    assert.equal(plate?.cells[2], formatBytes(localBytes.length), 'the local file sized from its mount');
    assert.match(rows.find((row) => row.cells[0] === 'Reference board')?.cells[3] ?? '', /^manifest only: web link not fetched/);
    await assertFits(page, 640);
    await screenshot(page, 'listing');

    // Thumbnails off: the summary counts what will be in the zip. Download; the browser's download saved and checked.
    const summary = page.locator('#download-summary');
    assert.match((await summary.textContent())!.replace(/\s+/g, ' '), /^ ?11 files, 5\.8 MiB; 1 listed in the manifest only\./, 'every size measured, thumbnails too');
    await page.getByRole('checkbox', { name: /Thumbnails/ }).uncheck();
    assert.match((await summary.textContent())!.replace(/\s+/g, ' '), /^ ?8 files, 5\.7 MiB; 1 listed in the manifest only\./);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download zip' }).click()]);
    assert.match(download.suggestedFilename(), /^Demo_Shots_\d{4}-\d{2}-\d{2}\.zip$/);
    const zip = await saved(download, 'three-shots.zip');
    assert.equal(zip.failure, null, 'the browser completed the download');
    const entries = await checkWithAllReaders(zip.path);
    assert.deepEqual(entries.map((entry) => entry.name).sort(), [...EXPECTED_ENTRIES].sort());
    assert.equal(entries.at(-1)!.name, 'manifest.csv', 'the manifest is last');
    const hashes = await storedHashes();
    for (const entry of entries) {
      if (entry.name === 'manifest.csv') continue;
      const expected = entry.name.endsWith('.exr') ? createHash('sha256').update(localBytes).digest('hex') : hashes.get(entry.name.split('/').pop()!);
      assert.equal(entry.sha256, expected, `${entry.name} is byte-identical to its source`);
    }

    // The page's progress ends at done, with the bar full.
    const text = page.locator('#download-text');
    await text.filter({ hasText: /^Done: 8 files, / }).waitFor({ timeout: 30_000 });
    const bar = await page.locator('#download-bar').evaluate((el) => [(el as HTMLProgressElement).value, (el as HTMLProgressElement).max]);
    assert.equal(bar[0], bar[1], 'the bar is full');
    assert.equal(bar[1], (await stat(zip.path)).size, 'the bar counts the bytes of the zip');
    assert.equal(await page.locator('#download-live').textContent(), await text.textContent(), 'announced to screen readers');
    assert.ok(await page.getByRole('button', { name: 'Download zip' }).isEnabled(), 'the button is usable again');
    await assertFits(page, 640);
    await screenshot(page, 'done');
  });

  test('a source storage keeps dropping: the browser’s download fails and the page names the file', async () => {
    const launched = await launch(env, 'download-zip', 'Shot', [shotId('sh030')]);
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(launched.pageUrl);
    for (const kind of [/Thumbnails/, /File fields/, /Attachments of their notes/]) await page.getByRole('checkbox', { name: kind }).uncheck();
    // Every status the page reads: a download that failed must not start over (the browser retries a cut
    // download from byte 0 by itself) and hide the failure behind a new, restarted progress.
    const statuses: { state: string; sent: number }[] = [];
    page.on('response', (response) => {
      if (/\/zip\/[^/]+\/status$/.test(new URL(response.url()).pathname)) void response.json().then((status) => statuses.push(status), () => undefined);
    });
    env.site.faults.update({ storageGetResetRate: 1 });
    try {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download zip' }).click()]);
      const result = await saved(download, 'failing.zip');
      assert.notEqual(result.failure, null, 'the browser marks the download failed');
      const text = page.locator('#download-text');
      await text.filter({ hasText: /^The download failed at/ }).waitFor({ timeout: 60_000 });
      assert.match((await text.textContent()) ?? '', /^The download failed at “Shot\/sh030\/sh030_temp_mix\.wav”: .+\. The partial zip is not usable; try again\.$/);
      assert.ok(await text.evaluate((el) => el.classList.contains('error')), 'shown as an error');
      assert.ok(await page.locator('#download-bar').isHidden(), 'no progress bar that looks nearly complete');
      for (const [i, status] of statuses.entries()) {
        if (i > 0) assert.ok(status.sent >= statuses[i - 1]!.sent, `the download never started over: ${JSON.stringify(statuses)}`);
      }
      assert.equal(statuses.at(-1)?.state, 'failed');
      assert.equal(await page.locator('#download-live').textContent(), await text.textContent(), 'announced to screen readers');
      assert.ok(await page.getByRole('button', { name: 'Download zip' }).isEnabled(), 'the button is usable again, to retry');
      await assertFits(page, 640);
      await screenshot(page, 'failed');
    } finally {
      env.site.faults.reset();
    }
  });

  test('by keyboard: Tab reaches the Download button, Enter starts the download', async () => {
    const launched = await launch(env, 'download-zip', 'Shot', [shotId('sh020')]);
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(launched.pageUrl);
    const button = page.getByRole('button', { name: 'Download zip' });
    await tabTo(page, button);
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    const zip = await saved(download, 'keyboard.zip');
    assert.equal(zip.failure, null);
    const entries = await checkWithAllReaders(zip.path);
    const names = entries.map((entry) => entry.name);
    assert.ok(names.includes('Shot/sh020/sh020_notes.txt'), 'the attachment is in the zip');
    // Every kind is on by default, the thumbnail too: sized from storage (the site does not say), byte-identical.
    const thumbnail = entries.find((entry) => /^Shot\/sh020\/thumbnail\.\w+$/.test(entry.name));
    assert.ok(thumbnail, `the thumbnail is in the zip (${names.join(', ')})`);
    const image = env.site.store.all('Shot').find((shot) => shot.fields.code === 'sh020')!.fields.image as { key: string };
    const hash = createHash('sha256');
    for await (const chunk of env.site.storage.createReadStream(image.key)) hash.update(chunk as Buffer);
    assert.equal(thumbnail.sha256, hash.digest('hex'), 'the thumbnail is byte-identical to the stored one');
    await page.locator('#download-text').filter({ hasText: /^Done: / }).waitFor({ timeout: 30_000 });
  });

  test('on a page whose launch has expired, Download says so and what to do; nothing is saved, nothing keeps polling', async () => {
    const launched = await launch(env, 'download-zip', 'Shot', [shotId('sh020')]);
    const context = await newContext();
    const page = await context.newPage();
    await page.goto(launched.pageUrl);
    // The launch ends behind the open page (expired, or discarded from another tab).
    const discarded = await fetch(`${launched.pageUrl}/discard`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf_token=${encodeURIComponent(launched.token('discard'))}`,
    });
    assert.equal(discarded.status, 200);
    let downloads = 0;
    page.on('download', () => downloads++);
    let polls = 0;
    page.on('request', (request) => {
      if (/\/status$/.test(new URL(request.url()).pathname)) polls++;
    });
    await page.getByRole('button', { name: 'Download zip' }).click();
    const text = page.locator('#download-text');
    await text.filter({ hasText: /expired/ }).waitFor({ timeout: 10_000 });
    assert.match((await text.textContent()) ?? '', /This page has expired — run the action again from ShotGrid\. Select the entities in ShotGrid and pick the action again from ShotGrid's right-click menu/);
    assert.ok(await text.evaluate((el) => el.classList.contains('error')), 'shown as an error');
    await page.waitForTimeout(1500);
    assert.equal(downloads, 0, 'no zip.html or anything else is saved');
    assert.equal(polls, 0, 'nothing polls a download that never began');
    await screenshot(page, 'expired');
  });

  test('no page broke its Content Security Policy', () => {
    assert.deepEqual(cspViolations, []);
  });
});
