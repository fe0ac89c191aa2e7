import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, FrameLocator, Page } from 'playwright-core';
import { request } from 'undici';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startFtrackSandbox, type FtrackSandbox } from '../../src/sandbox/ftrack/site.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { thumbnailPng } from '../../src/sandbox/media.ts';
import { csrfToken } from '../../src/web/csrf.ts';
import { recordStoredParts, testBytes, type StoredPart } from '../helpers/sandbox-api.ts';
import { assertFitsWidth, collectCspViolations, launchChromium, screenshotWidths, tabTo } from '../helpers/page-checks.ts';
import { TEST_SESSION_SECRET } from '../helpers/service.ts';
import { unrefLongTimers } from '../sandbox/ftrack/helpers.ts';
import { formatBytes } from '../../src/shared/format-bytes.ts';
import { checkWithAllReaders, readWithPython } from '../transfer/zip/archive-checks.ts';

// ftrack studios' actions in Debian's Chromium, end to end: the service in sandbox mode with SANDBOX_SITE=ftrack,
// the sandbox's page playing ftrack's action menu (discover and launch through the event hub, the widget URL
// opened in its frame), the service's own pages in that frame. A movie in one piece (its checksum signed when the
// part arrives) and one in parts go to an AssetVersion, byte-identical in ftrack's storage; the zip of the
// selection holds them byte for byte. The download page as the ShotGrid suite checks it (test/actions/
// download.browser.test.ts): sizes listed, a zip that three readers accept, a failing source named, the keyboard,
// an expired page; the upload page's refusals before anything starts; a cancelled submission leaves no empty
// AssetVersion; no page breaks its Content Security Policy. Set SCREENSHOT_DIR to keep screenshots.

const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

describe('ftrack actions in chromium', { timeout: 300_000 }, () => {
  let sandbox: FtrackSandbox;
  let service: RunningServer;
  let browser: Browser;
  let files: string;
  const contexts: BrowserContext[] = [];
  const cspViolations: string[] = [];
  /** Every part storage stored, in order. */
  const storedParts: StoredPart[] = [];

  before(async () => {
    unrefLongTimers();
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', SANDBOX_PORT: '0', SANDBOX_STORAGE_PORT: '0', SANDBOX_SITE: 'ftrack', LOG_LEVEL: 'silent', MAX_UPLOAD_BYTES: '100MiB', SESSION_SECRET: TEST_SESSION_SECRET });
    service = await startServer(config, {
      log: createLogger({ level: 'silent' }),
      startFtrackSandbox: async (options) => (sandbox = await startFtrackSandbox(options)),
    });
    await sandbox.hub.whenSubscribed('ftrack.action.launch');
    recordStoredParts(sandbox.storage, storedParts);
    browser = await launchChromium();
    files = await mkdtemp(join(tmpdir(), 'ami-ftrack-files-'));
  });
  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await service?.close(0);
    if (files) await rm(files, { recursive: true, force: true });
  });

  /** The sandbox's menu as `login`: tick the first rows of a type, Actions, click the item; the page opens in the frame. */
  async function openAction(type: string, rows: number | readonly string[], label: string, login = 'artist'): Promise<Page> {
    const page = await newPage(1280, 1100);
    await page.goto(`${sandbox.menuUrl}?type=${type}&login=${login}`);
    if (typeof rows === 'number') for (let i = 0; i < rows; i++) await page.locator('tr.row input.row-select').nth(i).check();
    else for (const id of rows) await page.locator(`tr.row[data-id="${id}"] input.row-select`).check();
    await page.click('#actions-button');
    await page.locator('button.action-item', { hasText: label }).click();
    const frame = page.frameLocator('#widget-frame');
    await frame.locator('h1', { hasText: label }).waitFor({ timeout: 30_000 });
    // The heading is there before the page's script runs: a file chosen earlier would go unseen.
    await frame.locator('body').evaluate(() => document.readyState === 'complete' || new Promise((loaded) => addEventListener('load', loaded, { once: true })));
    return page;
  }

  async function newPage(width = 1280, height = 900): Promise<Page> {
    const context = await browser.newContext({ viewport: { width, height }, acceptDownloads: true });
    contexts.push(context);
    collectCspViolations(context, cspViolations);
    return context.newPage();
  }

  /**
   * Launches from the menu and opens the action's page on its own, as ShotGrid's new-tab launches open: the
   * widget's one-time link has become the page's own URL in the frame, which works for as long as the launch.
   */
  async function launchedPage(type: string, rows: number | readonly string[], label: string, width = 1280): Promise<{ page: Page; url: string }> {
    const menu = await openAction(type, rows, label);
    const url = menu.frames().find((frame) => /\/ami\/[a-z-]+\/[A-Za-z0-9_-]{43}$/.test(frame.url()))?.url();
    assert.ok(url, `the frame shows the action's page (${menu.frames().map((frame) => frame.url()).join(', ')})`);
    await menu.close();
    const page = await newPage(width);
    await page.goto(url);
    await page.waitForLoadState('load');
    return { page, url };
  }


  const screenshot = (page: Page, name: string) => screenshotWidths(page, `ftrack-${name}`);

  /** The AssetVersions of the seeded shots, by their names in the menu (e.g. "sh010_comp v002"). */
  function versionIds(...names: string[]): string[] {
    return names.map((name) => {
      const [assetName, v] = name.split(' v');
      const asset = sandbox.store.all('Asset').find((candidate) => candidate.attrs.name === assetName);
      const version = sandbox.store.all('AssetVersion').find((candidate) => candidate.attrs.asset_id === asset?.attrs.id && candidate.attrs.version === Number(v));
      assert.ok(version, `the seed has ${name}`);
      return String(version.attrs.id);
    });
  }

  /** Chooses one file on the upload page and confirms the mapping, accepting what it says first (a replaced movie). */
  async function chooseAndConfirm(frame: FrameLocator | Page, path: string): Promise<void> {
    await frame.locator('#upload-file-input').setInputFiles(path);
    const confirm = frame.locator('.plan-confirm', { hasText: 'Upload 1 file' });
    await confirm.waitFor();
    const accept = frame.locator('.plan-acknowledge input');
    if ((await accept.count()) > 0) await accept.check();
    await confirm.click();
  }

  /** What ftrack's storage serves for a component, fetched as a script would: /component/get, then its redirect. */
  async function componentBytes(componentId: string): Promise<Buffer> {
    const located = await request(`${sandbox.url}/component/get?id=${componentId}&username=artist&apiKey=${sandbox.apiKeys.artist}`);
    await located.body.dump();
    assert.equal(located.statusCode, 302);
    const answer = await request(String(located.headers.location));
    assert.equal(answer.statusCode, 200);
    return Buffer.from(await answer.body.arrayBuffer());
  }

  test('Upload files to an AssetVersion: a movie in one piece and one in parts land byte-identical; the zip of the selection holds them', async () => {
    const page = await openAction('AssetVersion', 1, 'Upload files');
    const frame = page.frameLocator('#widget-frame');
    const name = (await frame.locator('#upload-targets .entity').first().getAttribute('data-name'))!;
    const small = testBytes(3 * MiB + 7, 41);
    const big = testBytes(19 * MiB + 3, 42);
    const uploads: Buffer[] = [];
    for (const [bytes, file] of [
      [small, `${name}.mov`],
      [big, `${name}.mp4`],
    ] as const) {
      const path = join(files, file);
      await writeFile(path, bytes);
      await chooseAndConfirm(frame, path);
      await frame.locator('#upload-progress .job[data-state="done"]').nth(uploads.length).waitFor({ timeout: 60_000 });
      uploads.push(bytes);
    }
    await frame.locator('#upload-status', { hasText: 'All uploads finished: 2 files done.' }).waitFor();
    await screenshot(page, 'upload');

    // In ftrack's storage, as components of the AssetVersion: each file byte-identical.
    const version = (await frame.locator('#upload-targets .entity').first().getAttribute('data-id'))!;
    const stored = sandbox.store.all('FileComponent').filter((component) => component.attrs.version_id === version);
    const hashes = new Set(await Promise.all(stored.map(async (component) => sha256(await componentBytes(String(component.attrs.id))))));
    for (const bytes of uploads) assert.ok(hashes.has(sha256(bytes)), 'stored byte-identical');

    // Download as zip of the same AssetVersion: both movies in it, byte for byte, and the archive reads.
    const zipPage = await openAction('AssetVersion', 1, 'Download as zip');
    const zipFrame = zipPage.frameLocator('#widget-frame');
    const [download] = await Promise.all([zipPage.waitForEvent('download', { timeout: 60_000 }), zipFrame.getByRole('button', { name: /Download zip/ }).click()]);
    const zipPath = join(files, 'selection.zip');
    await download.saveAs(zipPath);
    const entries = await readWithPython(zipPath);
    const inZip = new Set(entries.map((entry) => entry.sha256));
    for (const bytes of uploads) assert.ok(inZip.has(sha256(bytes)), 'the zip holds each movie byte for byte');
    assert.ok(entries.some((entry) => entry.name === 'manifest.csv'));
    assert.ok((await readFile(zipPath)).length > small.length + big.length);
    await page.close();
    await zipPage.close();
  });

  test('Submit for review on a Shot: an AssetVersion is made as the user, with the movie as its review media, byte-identical', async () => {
    const page = await openAction('Shot', 1, 'Submit for review');
    const frame = page.frameLocator('#widget-frame');
    const shot = (await frame.locator('#review-targets .entity').first().getAttribute('data-name'))!;
    const movie = testBytes(6 * MiB + 5, 44);
    const path = join(files, `${shot}_comp_v007.mov`);
    await writeFile(path, movie);
    const versions = sandbox.store.all('AssetVersion').length;
    await frame.locator('#review-file-input').setInputFiles(path);
    const create = frame.getByRole('button', { name: 'Create 1 Version and upload' });
    await create.waitFor();
    await create.click();
    await frame.locator('#review-progress .job[data-state="done"]').waitFor({ timeout: 60_000 });
    assert.equal(sandbox.store.all('AssetVersion').length, versions + 1, 'one new AssetVersion');
    const component = sandbox.store.all('FileComponent').find((candidate) => candidate.attrs.size === movie.length && typeof candidate.attrs.version_id === 'string');
    assert.ok(component, 'the movie is a component of a version');
    assert.ok(sandbox.store.all('AssetVersion').some((version) => version.attrs.id === component.attrs.version_id), 'of an AssetVersion');
    assert.equal(sha256(await componentBytes(String(component.attrs.id))), sha256(movie));
    await screenshot(page, 'review');
    await page.close();
  });

  test('Set thumbnail on a Shot (as a project manager: the sandbox lets only them change a Shot): the image becomes its thumbnail in ftrack, byte-identical, and the page shows it', async () => {
    const page = await openAction('Shot', 1, 'Set thumbnail', 'coord');
    const frame = page.frameLocator('#widget-frame');
    const shot = (await frame.locator('#upload-targets .entity').first().getAttribute('data-id'))!;
    const image = thumbnailPng(77, 'ftrack thumbnail');
    const path = join(files, 'new thumbnail.png');
    await writeFile(path, image);
    await chooseAndConfirm(frame, path);
    await frame.locator(`#upload-progress [data-thumbnail-for="${shot}"][data-state="ready"] img`).waitFor({ timeout: 60_000 });
    const entity = sandbox.store.all('Shot').find((candidate) => candidate.attrs.id === shot)!;
    assert.equal(typeof entity.attrs.thumbnail_id, 'string', 'the Shot has a thumbnail component');
    assert.equal(sha256(await componentBytes(String(entity.attrs.thumbnail_id))), sha256(image));
    await screenshot(page, 'thumbnail');
    await page.close();
  });

  test('Attach files on a Shot: the page names ftrack, and the file lands as an attachment of the Shot', async () => {
    const page = await openAction('Shot', 1, 'Attach files');
    const frame = page.frameLocator('#widget-frame');
    assert.equal(await frame.locator('.eyebrow').first().textContent(), 'ftrack action');
    const bytes = testBytes(200_000, 43);
    const path = join(files, 'layout notes.pdf');
    await writeFile(path, bytes);
    await chooseAndConfirm(frame, path);
    await frame.locator('#upload-progress .job[data-state="done"]').waitFor({ timeout: 60_000 });
    const link = frame.locator('#upload-progress .result-done a').first();
    assert.match((await link.getAttribute('href'))!, new RegExp(`^${sandbox.url.replace(/[.]/g, '\\.')}/#`), 'the result links back to the entity in ftrack');
    const component = sandbox.store.all('FileComponent').find((candidate) => candidate.attrs.name === 'layout notes');
    assert.ok(component, 'a component named after the file');
    assert.equal(sha256(await componentBytes(String(component.attrs.id))), sha256(bytes));
    await screenshot(page, 'attach');
    await page.close();
  });

  test('Download as zip on two AssetVersions: their components listed with sizes, the saved zip passes three readers and matches ftrack\'s storage byte for byte', async () => {
    const ids = versionIds('sh010_comp v002', 'sh020_comp v001');
    const { page } = await launchedPage('AssetVersion', ids, 'Download as zip');
    await page.waitForFunction(() => [...document.querySelectorAll('td.size')].every((cell) => cell.textContent !== 'measuring…'));
    const rows = await page.locator('table.files tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({ kind: tr.getAttribute('data-kind'), cells: Array.from(tr.querySelectorAll('td'), (td) => td.textContent!.replace(/\s+/g, ' ').trim()) })),
    );
    // Every component of the two versions is listed, with the size ftrack states for it.
    const components = sandbox.store.all('FileComponent').filter((component) => ids.includes(String(component.attrs.version_id)));
    assert.ok(components.length >= 3, 'the seed gives the versions a movie each and one a thumbnail');
    const listed = rows.map((row) => `${row.cells[0]} ${row.cells[2]}`).sort();
    const stated = components.map((component) => `${String(component.attrs.name)}${String(component.attrs.file_type)} ${formatBytes(Number(component.attrs.size))}`).sort();
    assert.deepEqual(listed, stated, 'each component listed once, with its size');
    assert.deepEqual(
      (await page.locator('.entity-list .entity-meta, details summary .muted').allTextContents()).map((text) => text.trim().split(' ')[0]),
      ['Version', 'Version'],
      'the type as ftrack\'s users read it',
    );
    await assertFitsWidth(page, 640);
    await screenshot(page, 'download-listing');

    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download zip' }).click()]);
    assert.equal(await download.failure(), null, 'the browser completed the download');
    assert.match(download.suggestedFilename(), /^demo_Versions_\d{4}-\d{2}-\d{2}\.zip$/, 'named with ftrack\'s word for what was selected');
    const path = join(files, 'two-versions.zip');
    await download.saveAs(path);
    const entries = await checkWithAllReaders(path);
    assert.equal(entries.at(-1)!.name, 'manifest.csv', 'the manifest is last');
    const stored = new Set(await Promise.all(components.map(async (component) => sha256(await componentBytes(String(component.attrs.id))))));
    for (const entry of entries.slice(0, -1)) assert.ok(stored.has(String(entry.sha256)), `${entry.name} is byte-identical to a component in ftrack's storage`);
    assert.equal(entries.length - 1, components.length, 'every component is in the zip, once');
    await page.locator('#download-text').filter({ hasText: /^Done: / }).waitFor({ timeout: 30_000 });
    const bar = await page.locator('#download-bar').evaluate((el) => [(el as HTMLProgressElement).value, (el as HTMLProgressElement).max]);
    assert.equal(bar[0], bar[1], 'the bar is full');
    await screenshot(page, 'download-done');
  });

  test('Download as zip while ftrack\'s storage keeps dropping: the browser\'s download fails and the page names the file', async () => {
    const { page } = await launchedPage('AssetVersion', versionIds('sh030_comp v001'), 'Download as zip');
    sandbox.faults.update({ storageGetResetRate: 1 });
    try {
      const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download zip' }).click()]);
      assert.notEqual(await download.failure(), null, 'the browser marks the download failed');
      const text = page.locator('#download-text');
      await text.filter({ hasText: /^The download failed at/ }).waitFor({ timeout: 60_000 });
      assert.match((await text.textContent()) ?? '', /^The download failed at “AssetVersion\/[^/”]+\/main\.\w+”: .+\. The partial zip is not usable; try again\.$/);
      assert.ok(await page.getByRole('button', { name: 'Download zip' }).isEnabled(), 'the button is usable again, to retry');
      await screenshot(page, 'download-failed');
    } finally {
      sandbox.faults.reset();
    }
  });

  test('Download as zip by keyboard, and on a page whose launch has ended: it says so and sends the user back to ftrack\'s Actions menu', async () => {
    const { page, url } = await launchedPage('AssetVersion', versionIds('sh020_comp v001'), 'Download as zip');
    const button = page.getByRole('button', { name: 'Download zip' });
    await tabTo(page, button);
    const [download] = await Promise.all([page.waitForEvent('download'), page.keyboard.press('Enter')]);
    assert.equal(await download.failure(), null);
    await page.locator('#download-text').filter({ hasText: /^Done: / }).waitFor({ timeout: 30_000 });

    // The launch ends behind the open page (discarded from another tab).
    const token = csrfToken(TEST_SESSION_SECRET, url.split('/').pop()!, 'discard');
    const discarded = await request(`${url}/discard`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `csrf_token=${encodeURIComponent(token)}` });
    await discarded.body.dump();
    assert.equal(discarded.statusCode, 200);
    let downloads = 0;
    page.on('download', () => downloads++);
    await button.click();
    const text = page.locator('#download-text');
    await text.filter({ hasText: /expired/ }).waitFor({ timeout: 10_000 });
    assert.match((await text.textContent()) ?? '', /This page has expired — run the action again from ftrack\. .*ftrack's Actions menu/);
    assert.doesNotMatch((await text.textContent()) ?? '', /ShotGrid/);
    await page.waitForTimeout(1000);
    assert.equal(downloads, 0, 'nothing is saved');
    await screenshot(page, 'download-expired');
  });

  test('Upload files: bad input is refused in the mapping before anything starts (empty, too large, two files for one version, no match)', async () => {
    const ids = versionIds('sh010_comp v002', 'sh020_comp v001');
    const { page } = await launchedPage('AssetVersion', ids, 'Upload files');
    const names = await page.locator('#upload-targets .entity').evaluateAll((items) => items.map((item) => item.getAttribute('data-name')!));
    assert.equal(names.length, 2);
    const [first, second] = names as [string, string];
    const componentsBefore = sandbox.store.all('FileComponent').length;
    await page.evaluate(
      ({ mib, first, second }) => {
        const dropped = new DataTransfer();
        dropped.items.add(new File([], `${first}.mov`));
        dropped.items.add(new File([new Uint8Array(3)], `${first}.mp4`));
        dropped.items.add(new File([new Uint8Array(4)], `${first}.mxf`));
        dropped.items.add(new File([new ArrayBuffer(101 * mib)], `${second}.mov`));
        dropped.items.add(new File([new Uint8Array(5)], 'readme.txt'));
        document.getElementById('drop-zone')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dropped, bubbles: true, cancelable: true }));
      },
      { mib: MiB, first, second },
    );
    const plan = page.locator('#upload-plan');
    await plan.waitFor();
    const problems = await plan.locator('.plan-file').evaluateAll((items) => items.map((item) => [item.querySelector('.file-name')!.textContent, item.querySelector('.plan-problem')?.textContent ?? null]));
    assert.deepEqual(problems, [
      [`${first}.mov`, 'This file is empty: there is nothing to upload.'],
      [`${first}.mp4`, null],
      [`${first}.mxf`, `${first} already gets ${first}.mp4: a Version holds one uploaded movie.`],
      [`${second}.mov`, 'This file is 101 MiB; files may be at most 100 MiB.'],
      ['readme.txt', 'No selected Version is named like this file: it will not be uploaded.'],
    ]);
    assert.match((await page.locator('#selection-heading').textContent()) ?? '', /^To Versions/, 'ftrack\'s word for its AssetVersions');
    await page.locator('#upload-status', { hasText: '1 file ready, 3 refused, 1 without a target' }).waitFor();
    await assertFitsWidth(page, 640);
    await screenshot(page, 'upload-refused');
    await plan.getByRole('button', { name: 'Clear' }).click();
    assert.equal(sandbox.store.all('FileComponent').length, componentsBefore, 'nothing was begun at ftrack');
    assert.equal(sandbox.storage.multipartUploadsInProgress(), 0);
  });

  test('Submit for review: a movie cancelled mid-way has its new AssetVersion removed again', async () => {
    const { page } = await launchedPage('Shot', 1, 'Submit for review', 640);
    const shot = (await page.locator('#review-targets .entity').first().getAttribute('data-name'))!;
    const path = join(files, `${shot}_comp_v009.mov`);
    await writeFile(path, testBytes(30 * MiB, 45));
    const versions = sandbox.store.all('AssetVersion').length;
    await page.locator('#review-file-input').setInputFiles(path);
    const create = page.getByRole('button', { name: 'Create 1 Version and upload' });
    await create.waitFor();
    sandbox.faults.update({ latencyMs: 400 });
    try {
      await create.click();
      const job = page.locator('#review-progress .job').first();
      await job.locator('.job-state', { hasText: /^Uploading/ }).waitFor({ timeout: 60_000 });
      assert.equal(sandbox.store.all('AssetVersion').length, versions + 1, 'the AssetVersion exists while its movie goes up');
      await page.getByRole('button', { name: `Cancel ${shot}_comp_v009` }).click();
      await job.locator('.job-state', { hasText: /was removed again: no empty Version is left\.$/ }).waitFor({ timeout: 30_000 });
    } finally {
      sandbox.faults.reset();
    }
    assert.equal(sandbox.store.all('AssetVersion').length, versions, 'no empty AssetVersion left');
    // ftrack has no "abort multipart upload" (ftrack.md): its client deletes the FileComponent, as the service does.
    assert.equal(sandbox.store.all('FileComponent').filter((component) => component.attrs.size === 30 * MiB).length, 0, 'no component of the cancelled movie is left');
    await screenshot(page, 'review-cancelled');
  });

  test('Upload files: a reload mid-upload lists the unfinished upload, and the same file continues from the parts stored (ftrack gave every part\'s link at the start)', async () => {
    const { page } = await launchedPage('AssetVersion', versionIds('sh030_comp v001'), 'Upload files');
    const name = (await page.locator('#upload-targets .entity').first().getAttribute('data-name'))!;
    const PARTS = 12;
    const bytes = testBytes((PARTS - 1) * 8 * MiB + 3, 48);
    const path = join(files, `${name}.mov`);
    await writeFile(path, bytes);
    sandbox.faults.update({ latencyMs: 800 });
    const firstStored = storedParts.length;
    try {
      await chooseAndConfirm(page, path);
      while (storedParts.length - firstStored < 1) await new Promise((resolve) => setTimeout(resolve, 50));
      // Paused first: a reload waits on the service (as slow as the site), and the page would send on meanwhile.
      await page.getByRole('button', { name: 'Pause' }).click();
      await page.locator('.job-state', { hasText: 'Paused' }).waitFor();
    } finally {
      sandbox.faults.reset();
    }
    await page.reload();
    const unfinished = page.locator('#upload-unfinished');
    await unfinished.locator('.file-name', { hasText: `${name}.mov` }).waitFor();
    const stored = Number(new RegExp(`(\\d+) of ${PARTS} parts stored`).exec((await unfinished.textContent()) ?? '')?.[1]);
    assert.ok(stored >= 1 && stored < PARTS, `${stored} of ${PARTS} parts listed as stored`);
    await page.locator('#upload-file-input').setInputFiles(path);
    await page.locator('#upload-plan .plan-resume', { hasText: `Continues an earlier upload: ${stored} of ${PARTS} parts already stored.` }).waitFor();
    await screenshot(page, 'resume-mapping');
    const accept = page.locator('#upload-plan .plan-acknowledge input');
    if ((await accept.count()) > 0) await accept.check();
    await page.locator('#upload-plan').getByRole('button', { name: 'Upload 1 file' }).click();
    await page.locator('#upload-progress .job[data-state="done"]').waitFor({ timeout: 60_000 });
    const parts = storedParts.slice(firstStored);
    assert.equal(new Set(parts.map((part) => part.uploadId)).size, 1, 'one upload at storage throughout: the page continued it');
    assert.ok(parts.length < 2 * PARTS, `${parts.length} part PUTs stored for ${PARTS} parts`);
    const component = sandbox.store.all('FileComponent').find((candidate) => candidate.attrs.size === bytes.length);
    assert.ok(component, 'a component of the file\'s size');
    assert.equal(sha256(await componentBytes(String(component.attrs.id))), sha256(bytes), 'stored byte-identical');
  });

  test('Without JavaScript the plain form uploads to ftrack: each file held whole (ftrack signs its size first) and stored byte-identical; a file over the hold says the page needs JavaScript', async () => {
    const { url } = await launchedPage('AssetVersion', versionIds('sh020_comp v001'), 'Upload files');
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, javaScriptEnabled: false });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(url);
    const name = (await page.locator('#upload-targets .entity').first().getAttribute('data-name'))!;
    assert.match((await page.locator('.plain-submit').textContent()) ?? '', /Without JavaScript, at most 64 MiB a file\./, 'the page says the form\'s limit');
    await screenshot(page, 'form-page');
    const bytes = testBytes(5 * MiB + 3, 46);
    const path = join(files, `${name}.mov`);
    await writeFile(path, bytes);
    await page.locator('#upload-file-input').setInputFiles(path);
    await Promise.all([page.waitForURL(/\/form-upload\?/), page.getByRole('button', { name: 'Upload', exact: true }).click()]);
    await page.locator('h1', { hasText: 'Upload results' }).waitFor();
    assert.match((await page.locator('.lead').textContent()) ?? '', /1 of 1 file uploaded\./);
    const component = sandbox.store.all('FileComponent').find((candidate) => candidate.attrs.size === bytes.length);
    assert.ok(component, 'a component of the file\'s size');
    assert.equal(sha256(await componentBytes(String(component.attrs.id))), sha256(bytes));
    await screenshot(page, 'form-results');

    // Past the 64 MiB the form holds: refused with what to do, nothing left at ftrack.
    await page.getByRole('link', { name: 'Back to the upload page' }).click();
    const big = join(files, `${name}.mp4`);
    await writeFile(big, testBytes(64 * MiB + 1, 47));
    const components = sandbox.store.all('FileComponent').length;
    await page.locator('#upload-file-input').setInputFiles(big);
    await Promise.all([page.waitForURL(/\/form-upload\?/), page.getByRole('button', { name: 'Upload', exact: true }).click()]);
    await page.locator('h1', { hasText: 'Upload results' }).waitFor();
    assert.match((await page.locator('.result-failed').textContent()) ?? '', /over 64 MiB .*with JavaScript on/);
    assert.equal(sandbox.store.all('FileComponent').length, components, 'nothing begun at ftrack');
    await page.close();
  });

  test('no page broke its Content Security Policy', () => {
    assert.deepEqual(cspViolations, []);
  });
});
