import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type FrameLocator, type Page } from 'playwright-core';
import { request } from 'undici';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startFtrackSandbox, type FtrackSandbox } from '../../src/sandbox/ftrack/site.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { thumbnailPng } from '../../src/sandbox/media.ts';
import { testBytes } from '../helpers/sandbox-api.ts';
import { unrefLongTimers } from '../sandbox/ftrack/helpers.ts';
import { readWithPython } from '../transfer/zip/archive-checks.ts';

// ftrack studios' actions in Debian's Chromium, end to end: the service in sandbox mode with SANDBOX_SITE=ftrack,
// the sandbox's page playing ftrack's action menu (discover and launch through the event hub, the widget URL
// opened in its frame), the service's own pages in that frame. A movie in one piece (its checksum signed when the
// part arrives) and one in parts go to an AssetVersion, byte-identical in ftrack's storage; the zip of the
// selection holds them byte for byte. Set SCREENSHOT_DIR to keep screenshots.

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const MiB = 1024 * 1024;
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
const screenshotDir = process.env['SCREENSHOT_DIR'];

describe('ftrack actions in chromium', { timeout: 300_000 }, () => {
  let sandbox: FtrackSandbox;
  let service: RunningServer;
  let browser: Browser;
  let files: string;

  before(async () => {
    unrefLongTimers();
    const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', SANDBOX_PORT: '0', SANDBOX_STORAGE_PORT: '0', SANDBOX_SITE: 'ftrack', LOG_LEVEL: 'silent', MAX_UPLOAD_BYTES: '100MiB' });
    service = await startServer(config, {
      log: createLogger({ level: 'silent' }),
      startFtrackSandbox: async (options) => (sandbox = await startFtrackSandbox(options)),
    });
    await sandbox.hub.whenSubscribed('ftrack.action.launch');
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
    files = await mkdtemp(join(tmpdir(), 'ami-ftrack-files-'));
  });
  after(async () => {
    await browser?.close();
    await service?.close(0);
    if (files) await rm(files, { recursive: true, force: true });
  });

  /** The sandbox's menu as `login`: tick the first rows of a type, Actions, click the item; the page opens in the frame. */
  async function openAction(type: string, rows: number, label: string, login = 'artist'): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 }, acceptDownloads: true });
    await page.goto(`${sandbox.menuUrl}?type=${type}&login=${login}`);
    for (let i = 0; i < rows; i++) await page.locator('tr.row input.row-select').nth(i).check();
    await page.click('#actions-button');
    await page.locator('button.action-item', { hasText: label }).click();
    const frame = page.frameLocator('#widget-frame');
    await frame.locator('h1', { hasText: label }).waitFor({ timeout: 30_000 });
    // The heading is there before the page's script runs: a file chosen earlier would go unseen.
    await frame.locator('body').evaluate(() => document.readyState === 'complete' || new Promise((loaded) => addEventListener('load', loaded, { once: true })));
    return page;
  }

  /** Chooses one file on the upload page and confirms the mapping, accepting what it says first (a replaced movie). */
  async function chooseAndConfirm(frame: FrameLocator, path: string): Promise<void> {
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
    if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'ftrack-upload-1280.png'), fullPage: true });

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
    if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'ftrack-review-1280.png'), fullPage: true });
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
    if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'ftrack-thumbnail-1280.png'), fullPage: true });
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
    if (screenshotDir) await page.screenshot({ path: join(screenshotDir, 'ftrack-attach-1280.png'), fullPage: true });
    await page.close();
  });
});
