import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { request } from 'undici';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { MiB } from '../../src/transfer/part-plan.ts';
import { assertFitsWidth, collectCspViolations, launchChromium, screenshotWidths } from '../helpers/page-checks.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { api, bearer, download, recordStoredParts, sha256, testBytes, type StoredPart } from '../helpers/sandbox-api.ts';

// The upload pages in Debian's Chromium, against the real service and the sandbox site: files dropped on
// Versions go up in parts and land byte-identical; an upload survives the service being stopped and started again
// (state in Redis); attach-files makes named attachments; the plain form works without JavaScript; bad input is
// refused before anything starts.
//
// Set SCREENSHOT_DIR to keep screenshots of the mapping, the progress and the results at 1280 and 640 px.

const SESSION_SECRET = 'upload-browser-test-session-secret-0123456789';

describe('uploading from the action pages in chromium', { timeout: 600_000 }, () => {
  let redis: RedisServer;
  let site: SandboxSite | undefined;
  let service: RunningServer;
  let port = 0;
  let browser: Browser;
  let files: string;
  const contexts: BrowserContext[] = [];
  const cspViolations: string[] = [];
  /** Every part storage stored (after its bytes were all in and checked), in order. */
  const storedParts: StoredPart[] = [];

  /** A service on `port` (0: any), sharing Redis and the sandbox site with every other one this test starts. */
  async function startService(onPort: number): Promise<RunningServer> {
    const running = await startServer(
      loadConfig({
        PORT: String(onPort),
        HOST: '127.0.0.1',
        SANDBOX_PORT: '0',
        SANDBOX_STORAGE_PORT: '0',
        LOG_LEVEL: 'silent',
        REDIS_URL: redis.url,
        // The same on every instance, so the page's tokens stay valid across the restart.
        SESSION_SECRET,
        UPLOAD_PARALLEL_PARTS: '2',
        MAX_UPLOAD_BYTES: '100MiB',
      }),
      {
        log: createLogger({ level: 'silent' }),
        startSandbox: async (options) => {
          site ??= await startSandboxSite(options);
          // The site outlives each service: closing a service must not close it.
          return { url: site.url, menuUrl: site.menuUrl, storageUrl: site.storageUrl, close: async () => {} };
        },
      },
    );
    return running;
  }

  before(async () => {
    redis = await startRedisServer();
    service = await startService(0);
    port = Number(new URL(service.url).port);
    recordStoredParts(site!.storage, storedParts);
    browser = await launchChromium();
    files = await mkdtemp(join(tmpdir(), 'ami-upload-files-'));
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await service?.close(0);
    await site?.close();
    await redis?.stop();
    if (files) await rm(files, { recursive: true, force: true });
  });

  const sandbox = (): SandboxSite => {
    assert.ok(site, 'the sandbox site is running');
    return site;
  };
  const idOf = (type: Parameters<SandboxSite['store']['all']>[0], code: string): number => sandbox().store.all(type).find((record) => record.fields.code === code)!.id;

  async function newPage(options: { javaScriptEnabled?: boolean; width?: number } = {}): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport: { width: options.width ?? 1280, height: 900 }, javaScriptEnabled: options.javaScriptEnabled ?? true });
    contexts.push(context);
    collectCspViolations(context, cspViolations);
    return { context, page: await context.newPage() };
  }

  /** Launches `title` on the records as the sandbox's menu signs it, and returns the page's URL (after the 303). */
  async function launch(title: string, entityType: string, ids: number[]): Promise<string> {
    const ami = sandbox().store.all('ActionMenuItem').find((item) => item.fields.title === title)!;
    const signed = await request(`${sandbox().url}/sandbox/menu/launch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        ami_id: ami.id,
        login: 'artist',
        entity_type: entityType,
        selected_ids: ids,
        page_ids: ids,
        sort_column: 'code',
        sort_direction: 'asc',
        grouping_column: '',
        session_uuid: randomUUID(),
      }),
    });
    assert.equal(signed.statusCode, 200);
    const { url, fields } = (await signed.body.json()) as { url: string; fields: [string, string][] };
    const answer = await request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(fields).toString(),
    });
    await answer.body.dump();
    assert.equal(answer.statusCode, 303);
    return new URL(String(answer.headers.location), url).href;
  }

  async function writeTestFile(name: string, size: number, seed: number): Promise<{ path: string; bytes: Buffer }> {
    const bytes = testBytes(size, seed);
    const path = join(files, name);
    await writeFile(path, bytes);
    return { path, bytes };
  }

  /** What the site stores in the Version's movie field, fetched as a script would (API, then signed storage). */
  async function versionMovie(id: number): Promise<Buffer | null> {
    const token = await bearer(sandbox());
    const reply = await api(sandbox(), token).get(`/api/v1/entity/versions/${id}?fields=sg_uploaded_movie`);
    assert.equal(reply.status, 200);
    const movie = reply.json().data.attributes.sg_uploaded_movie as { url?: string } | null;
    if (!movie?.url) return null;
    const file = await download(sandbox(), token, new URL(movie.url).pathname);
    assert.equal(file.status, 200);
    return file.body;
  }

  const screenshot = (page: Page, name: string) => screenshotWidths(page, `upload-${name}`);

  const assertFits = assertFitsWidth;

  /** Confirms the mapping, accepting what it says first (a Version's movie replaced), as a user who read it does. */
  async function confirmUpload(plan: ReturnType<Page['locator']>, label: string): Promise<void> {
    const confirm = plan.getByRole('button', { name: label });
    // The mapping is drawn once the files are read (their first bytes are checked): wait for it, then read it.
    await confirm.waitFor();
    const accept = plan.locator('.plan-acknowledge input');
    if ((await accept.count()) > 0) await accept.check();
    await confirm.click();
  }

  test('upload-files from the right-click menu: two files matched to two Versions by name, shown, confirmed, stored byte-identical', async () => {
    const codes = ['sh010_comp_v003', 'sh020_comp_v003'];
    const [first, second] = [await writeTestFile(`${codes[0]}.mov`, 7 * MiB, 11), await writeTestFile(`${codes[1]}.mov`, 12 * MiB + 5, 12)];
    const { context, page: menu } = await newPage();
    await menu.goto(`${sandbox().menuUrl}?entity_type=Version&login=artist`);
    for (const code of codes) await menu.locator(`tr.row[data-id="${idOf('Version', code)}"] input.row-select`).check();
    await menu.locator('#selection-count').filter({ hasText: '2 of' }).waitFor();
    await menu.locator(`tr.row[data-id="${idOf('Version', codes[0]!)}"] .col-description`).click({ button: 'right' });
    const actions = menu.getByRole('menu', { name: 'Actions' });
    await actions.getByLabel('In a new tab').check();
    const [page] = await Promise.all([context.waitForEvent('page'), actions.getByRole('menuitem', { name: 'Upload files' }).click()]);
    await page.locator('h1', { hasText: 'Upload files' }).waitFor();
    // A tab opened from the menu is handed over before its module scripts ran: files chosen earlier go unseen.
    await page.waitForLoadState('load');

    // Chosen, not started: the mapping shows each file with its Version, and waits for the confirmation.
    await page.locator('#upload-file-input').setInputFiles([second.path, first.path]);
    const plan = page.locator('#upload-plan');
    await plan.waitFor();
    const rows = await plan.locator('.plan-file').evaluateAll((items) => items.map((item) => [item.querySelector('.file-name')!.textContent, item.querySelector('.plan-targets')?.textContent?.replace(/\s+/g, ' ').trim()]));
    assert.deepEqual(rows, [
      [`${codes[1]}.mov`, `→ goes to ${codes[1]}`],
      [`${codes[0]}.mov`, `→ goes to ${codes[0]}`],
    ]);
    assert.equal(await plan.locator('.plan-unmatched').count(), 0, 'every Version has its file');
    await assertFits(page, 640);
    // Both Versions have a movie: the mapping says which it replaces, and asks before anything starts.
    const warnings = await plan.locator('.plan-warning').allTextContents();
    assert.equal(warnings.length, 2);
    for (const [i, code] of [codes[1]!, codes[0]!].entries()) assert.match(warnings[i]!, new RegExp(`^Replaces the movie ${code} has now \\(${code}\\.(mov|mp4)\\)\\.$`));
    const confirm = plan.getByRole('button', { name: 'Upload 2 files' });
    assert.equal(await confirm.isDisabled(), true, 'not before the replacing is accepted');
    await screenshot(page, 'mapping');
    assert.equal(storedParts.length, 0, 'nothing was sent before the confirmation');
    await plan.getByRole('checkbox', { name: 'Yes, replace 2 movies they have now.' }).check();
    await confirm.focus();
    await page.keyboard.press('Enter');

    const jobs = page.locator('#upload-progress .job');
    await page.locator('#upload-progress .job[data-state="done"]').nth(1).waitFor({ timeout: 120_000 });
    assert.deepEqual(await jobs.locator('.job-percent').allTextContents(), ['100%', '100%']);
    const total = await page.locator('.total-bar').evaluate((bar) => [(bar as HTMLProgressElement).value, (bar as HTMLProgressElement).max]);
    assert.equal(total[0], total[1], 'the total bar is full');
    assert.equal(total[1], first.bytes.length + second.bytes.length);
    await page.locator('#upload-status', { hasText: 'All uploads finished: 2 files done.' }).waitFor();
    const links = await jobs.locator('.result-done a').evaluateAll((anchors) => anchors.map((a) => [a.textContent, (a as HTMLAnchorElement).href]));
    assert.deepEqual(links, [
      [codes[1], `${sandbox().url}/detail/Version/${idOf('Version', codes[1]!)}`],
      [codes[0], `${sandbox().url}/detail/Version/${idOf('Version', codes[0]!)}`],
    ]);
    await assertFits(page, 640);
    await screenshot(page, 'results');

    assert.equal(sha256((await versionMovie(idOf('Version', codes[0]!)))!), sha256(first.bytes), `${codes[0]} holds the 7 MiB file`);
    assert.equal(sha256((await versionMovie(idOf('Version', codes[1]!)))!), sha256(second.bytes), `${codes[1]} holds the 12 MiB file`);
    assert.equal(sandbox().storage.multipartUploadsInProgress(), 0, 'no multipart upload left behind');
  });

  test('bad input is refused in the mapping, before anything starts: empty, too large, two files for one Version, no match', async () => {
    const pageUrl = await launch('Upload files', 'Version', [idOf('Version', 'sh010_comp_v002'), idOf('Version', 'sh020_comp_v002')]);
    const { page } = await newPage();
    await page.goto(pageUrl);
    const storedBefore = storedParts.length;
    // Dropped, as from a file manager: a DataTransfer with files, on the drop zone.
    await page.evaluate((mib) => {
      const dropped = new DataTransfer();
      dropped.items.add(new File([], 'sh010_comp_v002.mov'));
      dropped.items.add(new File([new Uint8Array(3)], 'sh010_comp_v002.mp4'));
      dropped.items.add(new File([new Uint8Array(4)], 'SH010_comp.v002.mxf'));
      dropped.items.add(new File([new ArrayBuffer(101 * mib)], 'sh020_comp_v002.mov'));
      dropped.items.add(new File([new Uint8Array(5)], 'readme.txt'));
      document.getElementById('drop-zone')!.dispatchEvent(new DragEvent('drop', { dataTransfer: dropped, bubbles: true, cancelable: true }));
    }, MiB);
    const plan = page.locator('#upload-plan');
    await plan.waitFor();
    const problems = await plan.locator('.plan-file').evaluateAll((items) => items.map((item) => [item.querySelector('.file-name')!.textContent, item.querySelector('.plan-problem')?.textContent ?? null]));
    assert.deepEqual(problems, [
      ['sh010_comp_v002.mov', 'This file is empty: there is nothing to upload.'],
      ['sh010_comp_v002.mp4', null],
      ['SH010_comp.v002.mxf', 'sh010_comp_v002 already gets sh010_comp_v002.mp4: a Version holds one uploaded movie.'],
      ['sh020_comp_v002.mov', 'This file is 101 MiB; files may be at most 100 MiB.'],
      ['readme.txt', 'No selected Version is named like this file: it will not be uploaded.'],
    ]);
    assert.match((await plan.locator('.plan-unmatched').textContent()) ?? '', /No file for: sh020_comp_v002/);
    await plan.getByRole('button', { name: 'Upload 1 file' }).waitFor();
    await page.locator('#upload-status', { hasText: '1 file ready, 3 refused, 1 without a target' }).waitFor();

    // Only the empty one left: nothing to confirm.
    for (const name of ['sh010_comp_v002.mp4', 'SH010_comp.v002.mxf', 'sh020_comp_v002.mov', 'readme.txt']) {
      await plan.getByRole('button', { name: `Remove ${name}` }).click();
    }
    assert.equal(await plan.getByRole('button', { name: 'Nothing to upload' }).isDisabled(), true);
    await plan.getByRole('button', { name: 'Clear' }).click();
    assert.equal(await plan.isHidden(), true);

    // And the service refuses an empty file itself, whatever a page sends.
    const token = await page.locator('#upload-form').getAttribute('data-upload-token');
    const apiUrl = new URL((await page.locator('#upload-form').getAttribute('data-upload-api'))!, pageUrl).href;
    const refused = await request(apiUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': token! },
      body: JSON.stringify({ name: 'sh010_comp_v002.mov', size: 0, targets: [idOf('Version', 'sh010_comp_v002')] }),
    });
    assert.equal(refused.statusCode, 400);
    assert.equal(((await refused.body.json()) as { error: { code: string } }).error.code, 'empty_file');
    const listed = await request(apiUrl, { headers: { accept: 'application/json' } });
    assert.deepEqual(((await listed.body.json()) as { uploads: unknown[] }).uploads, [], 'no upload was begun');
    assert.equal(storedParts.length, storedBefore, 'no part reached storage');
    assert.equal(sandbox().storage.multipartUploadsInProgress(), 0);
  });

  test('attach-files on a Shot: a display name per file (the file name by default), each keeping its own file name and bytes', async () => {
    const shot = idOf('Shot', 'sh030');
    const pageUrl = await launch('Attach files', 'Shot', [shot]);
    const { page } = await newPage({ width: 640 });
    await page.goto(pageUrl);
    await page.locator('h1', { hasText: 'Attach files' }).waitFor();
    const notes = await writeTestFile('layout notes.pdf', 300 * 1024 + 7, 13);
    const board = await writeTestFile('board.png', 20 * 1024 + 3, 14);
    await page.locator('#upload-file-input').setInputFiles([notes.path, board.path]);
    const plan = page.locator('#upload-plan');
    await plan.getByRole('checkbox', { name: 'sh030' }).waitFor();
    assert.equal(await plan.getByRole('checkbox', { name: 'sh030' }).isChecked(), true, 'every selected Shot is ticked');
    assert.equal(await page.locator('#upload-display-name').isVisible(), false, 'no one name for the whole batch');
    const names = plan.getByLabel('Display name');
    assert.equal(await names.count(), 2, 'a display name per file');
    assert.equal(await names.nth(1).getAttribute('placeholder'), 'board.png', 'the file name by default');
    await names.nth(0).fill('Layout notes, take 2');
    await assertFits(page, 640);
    await screenshot(page, 'attach-mapping');
    await plan.getByRole('button', { name: 'Upload 2 files' }).click();
    const done = page.locator('#upload-progress .job[data-state="done"]');
    await done.nth(1).waitFor({ timeout: 60_000 });
    const link = done.first().locator('.result-done a');
    assert.equal(await link.getAttribute('href'), `${sandbox().url}/detail/Shot/${shot}`);

    const token = await bearer(sandbox());
    const attachments = await api(sandbox(), token).search('Attachment', [['attachment_links', 'is', { type: 'Shot', id: shot }]], { fields: 'this_file,filename' });
    const byFile = new Map((attachments.json().data as { attributes: { filename: string; this_file: { name: string } }; id: number }[]).map((a) => [a.attributes.filename, a]));
    assert.equal(byFile.get('layout notes.pdf')?.attributes.this_file.name, 'Layout notes, take 2', 'the display name given');
    assert.equal(byFile.get('board.png')?.attributes.this_file.name, 'board.png', 'no name given: the file name');
    assert.equal(sha256((await download(sandbox(), token, `/file_serve/attachment/${byFile.get('layout notes.pdf')!.id}`)).body), sha256(notes.bytes));
    assert.equal(sha256((await download(sandbox(), token, `/file_serve/attachment/${byFile.get('board.png')!.id}`)).body), sha256(board.bytes));
    await screenshot(page, 'attach-results');
  });

  test('without JavaScript the plain form uploads: every file to every Version, attachments with a display name, results pages with links; an empty file is refused', async () => {
    const versions = [idOf('Version', 'sh040_comp_v003'), idOf('Version', 'sh040_comp_v002')];
    const pageUrl = await launch('Upload files', 'Version', versions);
    const { page } = await newPage({ javaScriptEnabled: false });
    await page.goto(pageUrl);
    const submit = page.getByRole('button', { name: 'Upload', exact: true });
    assert.equal(await submit.isVisible(), true, 'the plain submit shows when no script runs');
    assert.doesNotMatch((await page.locator('.plain-submit').textContent()) ?? '', /at most/, 'a movie goes in parts: no limit of the form\'s own');
    // Named like neither Version: only "every file to every Version" sends it anywhere, so the mode must arrive.
    const file = await writeTestFile('sh040_plate.mov', 6 * MiB + 1, 14);
    await page.getByLabel('Send every file to every selected Version').check();
    await page.locator('#upload-file-input').setInputFiles(file.path);
    await Promise.all([page.waitForURL(/\/form-upload\?/), submit.click()]);
    await page.locator('h1', { hasText: 'Upload results' }).waitFor();
    assert.match((await page.locator('.lead').textContent()) ?? '', /1 of 1 file uploaded\./);
    const links = await page.locator('.result-done a').evaluateAll((anchors) => anchors.map((a) => [a.textContent, a.getAttribute('href')]));
    assert.deepEqual(links, [
      ['sh040_comp_v003', `${sandbox().url}/detail/Version/${versions[0]}`],
      ['sh040_comp_v002', `${sandbox().url}/detail/Version/${versions[1]}`],
    ]);
    for (const version of versions) assert.equal(sha256((await versionMovie(version))!), sha256(file.bytes));
    await screenshot(page, 'form-results');

    // Back, and an empty file: refused with a message, the Versions' movies unchanged.
    await page.getByRole('link', { name: 'Back to the upload page' }).click();
    const empty = await writeTestFile('sh040_comp_v003.mov', 0, 1);
    await page.locator('#upload-file-input').setInputFiles(empty.path);
    await Promise.all([page.waitForURL(/\/form-upload\?/), page.getByRole('button', { name: 'Upload', exact: true }).click()]);
    await page.locator('h1', { hasText: 'Upload results' }).waitFor();
    assert.match((await page.locator('.result-failed').textContent()) ?? '', /empty/);
    assert.equal(sha256((await versionMovie(versions[0]!))!), sha256(file.bytes), 'the earlier upload is untouched');
    assert.equal(sandbox().storage.multipartUploadsInProgress(), 0, 'the begun upload was aborted');

    // attach-files: the display name field arrives before the file, and names the attachment.
    const shot = idOf('Shot', 'sh040');
    await page.goto(await launch('Attach files', 'Shot', [shot]));
    assert.match((await page.locator('.plain-submit').textContent()) ?? '', /Without JavaScript, at most 64 MiB a file\./, 'an attachment goes in one piece: held whole');
    const notes = await writeTestFile('plate notes.txt', 2_000, 18);
    await page.getByLabel('Display name').fill('Plate notes');
    await page.locator('#upload-file-input').setInputFiles(notes.path);
    await Promise.all([page.waitForURL(/\/form-upload\?/), page.getByRole('button', { name: 'Upload', exact: true }).click()]);
    const done = page.locator('.result-done');
    assert.equal(await done.locator('a').getAttribute('href'), `${sandbox().url}/detail/Shot/${shot}`);
    assert.doesNotMatch((await done.textContent()) ?? '', /attachment \d+/, 'no internal ids shown to people');
    const attachmentId = Number(await done.getAttribute('data-attachment-id'));
    const token = await bearer(sandbox());
    const reply = await api(sandbox(), token).get(`/api/v1/entity/attachments/${attachmentId}?fields=this_file`);
    assert.equal(reply.json().data.attributes.this_file.name, 'Plate notes');
    assert.equal(sha256((await download(sandbox(), token, `/file_serve/attachment/${attachmentId}`)).body), sha256(notes.bytes));
  });

  test('the service stops mid-upload and a new one starts: the page finishes the upload without starting over', async () => {
    const code = 'sh050_comp_v003';
    const version = idOf('Version', code);
    const pageUrl = await launch('Upload files', 'Version', [version]);
    const { page } = await newPage();
    await page.goto(pageUrl);
    const file = await writeTestFile(`${code}.mov`, 44 * MiB + 9, 15);
    await page.locator('#upload-file-input').setInputFiles(file.path);
    const plan = page.locator('#upload-plan');
    await plan.getByRole('button', { name: 'Upload 1 file' }).waitFor();

    // Slow storage and API (every answer waits), so parts are in flight when the service goes away.
    sandbox().faults.update({ latencyMs: 700 });
    const firstStored = storedParts.length;
    await confirmUpload(plan, 'Upload 1 file');
    const deadline = Date.now() + 60_000;
    while (storedParts.length - firstStored < 2) {
      assert.ok(Date.now() < deadline, 'two parts stored within a minute');
      await sleep(50);
    }
    await screenshot(page, 'progress');

    const apiUrl = new URL((await page.locator('#upload-form').getAttribute('data-upload-api'))!, pageUrl).href;
    const listed = await request(apiUrl, { headers: { accept: 'application/json' } });
    const [before] = ((await listed.body.json()) as { uploads: { id: string; partCount: number; partsDone: number[] }[] }).uploads;
    assert.ok(before, 'the upload is listed');
    assert.equal(before.partCount, 6);
    assert.ok(before.partsDone.length >= 1 && before.partsDone.length < before.partCount, `some parts stored before the cut (${before.partsDone.join(',')})`);

    // Cut: running requests are dropped, the port closes; the page sees refused connections and keeps retrying.
    await service.close(0);
    await page.locator('#upload-status', { hasText: 'cannot be reached' }).waitFor({ timeout: 30_000 });
    await sleep(1000);
    service = await startService(port);
    await page.locator('#upload-status', { hasText: 'reachable again' }).waitFor({ timeout: 60_000 });
    sandbox().faults.update({ latencyMs: 0 });

    const done = page.locator('#upload-progress .job[data-state="done"]');
    await done.waitFor({ timeout: 120_000 });
    assert.equal(await done.locator('.job-percent').textContent(), '100%');
    assert.equal(await done.locator('.result-done a').textContent(), code);
    assert.equal(sha256((await versionMovie(version))!), sha256(file.bytes), 'stored byte-identical');

    // Not started over: the same upload went on, parts stored before the cut were not stored again, and storage
    // took fewer than two PUTs per part in all.
    const parts = storedParts.slice(firstStored);
    const uploadIds = new Set(parts.map((part) => part.uploadId));
    assert.equal(uploadIds.size, 1, 'one multipart upload at storage, from start to end');
    const timesStored = (n: number) => parts.filter((part) => part.partNumber === n).length;
    for (const n of before.partsDone) assert.equal(timesStored(n), 1, `part ${n}, stored before the cut, was not sent again`);
    for (let n = 1; n <= before.partCount; n++) assert.ok(timesStored(n) >= 1, `part ${n} stored`);
    assert.ok(parts.length < 2 * before.partCount, `${parts.length} part PUTs stored for ${before.partCount} parts`);
    const after = await request(apiUrl, { headers: { accept: 'application/json' } });
    const uploads = ((await after.body.json()) as { uploads: { id: string; status: string }[] }).uploads;
    assert.deepEqual(uploads.map((upload) => [upload.id, upload.status]), [[before.id, 'done']], 'no second upload was begun');
    await screenshot(page, 'resumed-results');
  });

  test('a reload mid-upload: the page lists the unfinished upload, and the same file continues from the parts stored; pause and cancel', async () => {
    const code = 'sh060_comp_v003';
    const version = idOf('Version', code);
    const pageUrl = await launch('Upload files', 'Version', [version]);
    const { page } = await newPage();
    await page.goto(pageUrl);
    // 12 parts of 8 MiB: with 2 in flight and slow storage, parts are still to come when the page reloads, even
    // on a loaded machine (with fewer, all could be stored and the upload completed before the reload).
    const PARTS = 12;
    const file = await writeTestFile(`${code}.mov`, (PARTS - 1) * 8 * MiB + 3, 16);
    const plan = page.locator('#upload-plan');
    await page.locator('#upload-file-input').setInputFiles(file.path);
    sandbox().faults.update({ latencyMs: 800 });
    const firstStored = storedParts.length;
    await confirmUpload(plan, 'Upload 1 file');
    while (storedParts.length - firstStored < 1) await sleep(50);

    // Pause: the parts in flight are dropped, nothing more is stored until Resume.
    await page.getByRole('button', { name: 'Pause' }).click();
    await page.locator('.job-state', { hasText: 'Paused' }).waitFor();
    await sleep(1500);
    const whilePaused = storedParts.length;
    await sleep(1500);
    assert.equal(storedParts.length, whilePaused, 'nothing is sent while paused');
    await page.getByRole('button', { name: 'Resume' }).click();
    await page.locator('.job-state', { hasText: /^Uploading/ }).waitFor();
    while (storedParts.length === whilePaused) await sleep(50);

    // Reload: the transfers stop; the page comes back listing what is unfinished.
    await page.reload();
    sandbox().faults.update({ latencyMs: 0 });
    const unfinished = page.locator('#upload-unfinished');
    await unfinished.locator('.file-name', { hasText: `${code}.mov` }).waitFor();
    const storedBefore = storedParts.slice(firstStored).map((part) => part.partNumber);
    const stored = Number(new RegExp(`(\\d+) of ${PARTS} parts stored`).exec((await unfinished.textContent()) ?? '')?.[1]);
    assert.ok(stored >= 1 && stored < PARTS, `${stored} of ${PARTS} parts listed as stored`);
    await page.locator('#upload-file-input').setInputFiles(file.path);
    await plan.locator('.plan-resume', { hasText: `Continues an earlier upload: ${stored} of ${PARTS} parts already stored.` }).waitFor();
    await screenshot(page, 'resume-mapping');
    // What the service holds now (a part whose bytes had all left the page before the reload may still land).
    const apiUrl = new URL((await page.locator('#upload-form').getAttribute('data-upload-api'))!, pageUrl).href;
    const listed = await request(apiUrl, { headers: { accept: 'application/json' } });
    const [held] = ((await listed.body.json()) as { uploads: { partsDone: number[] }[] }).uploads;
    assert.ok(held && held.partsDone.length >= stored);
    await confirmUpload(plan, 'Upload 1 file');
    await page.locator('#upload-progress .job[data-state="done"]').waitFor({ timeout: 60_000 });
    assert.equal(sha256((await versionMovie(version))!), sha256(file.bytes), 'stored byte-identical');
    const parts = storedParts.slice(firstStored);
    assert.equal(new Set(parts.map((part) => part.uploadId)).size, 1, 'one upload at storage throughout: the page continued it');
    for (const n of held.partsDone) assert.equal(parts.filter((part) => part.partNumber === n).length, 1, `part ${n}, stored before the reload, was not sent again`);
    assert.ok(parts.length < 2 * PARTS, `${parts.length} part PUTs stored for ${PARTS} parts (${storedBefore.length} before the reload)`);

    // Cancel mid-way: the multipart upload is aborted at the site and nothing is created.
    const other = await writeTestFile(`${code}.mov`, 20 * MiB, 17);
    const beforeCancel = storedParts.length;
    sandbox().faults.update({ latencyMs: 500 });
    await page.locator('#upload-file-input').setInputFiles(other.path);
    await confirmUpload(plan, 'Upload 1 file');
    while (storedParts.length === beforeCancel) await sleep(50);
    await page.getByRole('button', { name: `Cancel ${code}.mov` }).click();
    await page.locator('#upload-progress .job[data-state="cancelled"]').waitFor();
    sandbox().faults.update({ latencyMs: 0 });
    for (let tries = 0; ; tries++) {
      const listed = await request(apiUrl, { headers: { accept: 'application/json' } });
      const statuses = ((await listed.body.json()) as { uploads: { status: string }[] }).uploads.map((upload) => upload.status);
      if (statuses.at(-1) === 'aborted') break;
      assert.ok(tries < 100, `the cancelled upload is aborted (${statuses.join(', ')})`);
      await sleep(50);
    }
    assert.equal(sandbox().storage.multipartUploadsInProgress(), 0, 'no multipart upload left at storage');
    assert.equal(sha256((await versionMovie(version))!), sha256(file.bytes), 'the Version keeps the finished upload');
  });

  test('the record of a launch: done, failed and flagged files listed after a reload and on the next launch; a text "movie" is sent once accepted; the totals count the failed file', async () => {
    const codes = ['sh030_comp_v001', 'sh030_comp_v002', 'sh030_anim_v001'];
    const ids = codes.map((code) => idOf('Version', code));
    const pageUrl = await launch('Upload files', 'Version', ids);
    const { page } = await newPage();
    await page.goto(pageUrl);
    const movie = await writeTestFile(`${codes[0]}.mov`, 3 * MiB + 1, 21);
    const notes = join(files, `${codes[1]}.mov`);
    const notesBytes = Buffer.from('Grade notes for sh030: warmer, slower camera, hold the last frame.\n'.repeat(40));
    await writeFile(notes, notesBytes);
    const gone = await writeTestFile(`${codes[2]}.mov`, 1 * MiB, 22);
    await page.locator('#upload-file-input').setInputFiles([movie.path, notes, gone.path]);

    // The text file is flagged, not refused: sent once the user says so.
    const plan = page.locator('#upload-plan');
    const flagged = plan.locator('.plan-file', { has: page.locator('.plan-warning') });
    await flagged.waitFor();
    assert.deepEqual(await plan.locator('.plan-warning').allTextContents(), ['This file is plain text, not a movie: ShotGrid will keep it but cannot play it.']);
    assert.equal(await flagged.locator('.file-name').textContent(), `${codes[1]}.mov`);
    const confirm = plan.getByRole('button', { name: 'Upload 3 files' });
    assert.equal(await confirm.isDisabled(), true, 'not before the warning is accepted');
    await assertFits(page, 640);
    await screenshot(page, 'text-warning');
    await plan.getByRole('checkbox', { name: 'Yes, send 1 file that is not a movie.' }).check();

    // One Version is deleted at the site meanwhile: its file fails, the others land.
    sandbox().store.retire(sandbox().store.get('Version', ids[2]!)!);
    await confirm.click();
    await page.locator('#upload-status', { hasText: 'All uploads finished: 2 files done, 1 failed.' }).waitFor({ timeout: 60_000 });
    assert.equal(await page.locator('#upload-progress .job[data-state="failed"] .file-name').textContent(), `${codes[2]}.mov`);
    assert.match((await page.locator('.total-numbers').textContent())!, /^Finished: 2 files done, 1 failed · \d/);
    assert.equal(await page.getByRole('button', { name: 'Pause' }).isDisabled(), true);
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Uploads', 'focus moved to the heading, not dropped to the page');
    assert.equal(sha256((await versionMovie(ids[0]!))!), sha256(movie.bytes));
    assert.equal(sha256((await versionMovie(ids[1]!))!), sha256(notesBytes), 'the text file, sent as the user chose');
    await screenshot(page, 'finished-with-failure');

    // After a reload the page still says what this launch did, with links.
    await page.reload();
    const record = page.locator('.launch-record');
    const lineOf = (name: string) => record.locator('.record-line', { has: page.locator('.file-name', { hasText: name }) }).first();
    await lineOf(`${codes[0]}.mov`).waitFor();
    const texts = async (name: string) => (await lineOf(name).textContent())!.replace(/\s+/g, ' ');
    assert.match(await texts(`${codes[0]}.mov`), new RegExp(`Uploaded To: → ${codes[0]}`));
    assert.match(await texts(`${codes[1]}.mov`), new RegExp(`Uploaded To: → ${codes[1]}`));
    assert.match(await texts(`${codes[2]}.mov`), /Failed: .* To: → a Version you no longer see/);
    assert.equal(await lineOf(`${codes[0]}.mov`).locator('a', { hasText: codes[0]! }).getAttribute('href'), `${sandbox().url}/detail/Version/${ids[0]}`);
    assert.equal(await record.locator('.record-heading', { hasText: 'From this launch' }).count(), 1);
    await screenshot(page, 'record');

    // The next launch of the action lists them as earlier.
    const { page: next } = await newPage({ width: 640 });
    await next.goto(await launch('Upload files', 'Version', [ids[0]!]));
    const earlier = next.locator('.launch-record');
    await earlier.locator('.record-heading', { hasText: 'Your earlier “Upload files”' }).waitFor();
    assert.equal(await earlier.locator('.record-heading', { hasText: 'From this launch' }).count(), 0);
    assert.ok((await earlier.locator('.record-line', { hasText: `${codes[0]}.mov` }).count()) >= 1);
    await assertFits(next, 640);
  });

  test('the expiry is shown in the reader\'s time zone; when it comes the page asks, shows the new time while the launch lives, and says so once it has expired', async () => {
    const pageUrl = await launch('Upload files', 'Version', [idOf('Version', 'sh010_anim_v001')]);
    const context = await browser.newContext({ viewport: { width: 640, height: 900 }, timezoneId: 'Asia/Tokyo', locale: 'en-GB' });
    contexts.push(context);
    const page = await context.newPage();
    await page.clock.install();
    await page.goto(pageUrl);
    const expiry = page.locator('.launch-expiry time');
    const iso = (await expiry.getAttribute('datetime'))!;
    const tokyo = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'Asia/Tokyo' }).format(new Date(iso));
    await page.locator('.launch-expiry time', { hasText: tokyo }).waitFor();
    assert.doesNotMatch((await page.locator('.launch-expiry').textContent())!, /UTC/);

    // The time comes while the launch still lives (here: its lifetime not yet over at the service): still valid.
    const asked: string[] = [];
    page.on('request', (sent) => {
      if (sent.url().endsWith('/expiry')) asked.push(sent.url());
    });
    await page.clock.fastForward(Date.parse(iso) - Date.now() + 2000);
    await page.waitForResponse((answer) => answer.url().endsWith('/expiry') && answer.status() === 200);
    assert.equal(await page.locator('.page-expired').count(), 0);

    // Discarded (as expiry does): the next ask finds it gone, and the page says so at its top.
    const discard = await request(`${pageUrl}/discard`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf_token=${encodeURIComponent((await page.locator('.launch-end input[name="csrf_token"]').getAttribute('value'))!)}`,
    });
    await discard.body.dump();
    assert.equal(discard.statusCode, 200);
    await page.clock.fastForward(10_000);
    await page.locator('.notice.page-expired[role="alert"]', { hasText: 'This page has expired' }).waitFor();
    assert.ok(asked.length >= 2, 'asked at the time shown, then again');
    await screenshot(page, 'expired');
  });

  test('a long selection stays compact in the 640 px overlay: the file chooser is near the top, and "No file for" says how many', async () => {
    const ids = sandbox().store.all('Version').filter((version) => String(version.fields.code).startsWith('sh0')).map((version) => version.id);
    assert.ok(ids.length > 20, `${ids.length} Versions`);
    const { page } = await newPage({ width: 640 });
    await page.goto(await launch('Upload files', 'Version', ids));
    await page.locator('h1', { hasText: 'Upload files' }).waitFor();
    const top = await page.locator('#drop-zone').evaluate((el) => el.getBoundingClientRect().top + window.scrollY);
    assert.ok(top < 900, `the file chooser starts at ${Math.round(top)} px`);
    const file = await writeTestFile('sh010_comp_v001.mov', 1000, 31);
    await page.locator('#upload-file-input').setInputFiles(file.path);
    const unmatched = page.locator('#upload-plan .plan-unmatched');
    await unmatched.waitFor();
    assert.match((await unmatched.textContent()) ?? '', /^No file for: (?:[^,]+, ){7}[^,]+ and \d+ more$/);
    await assertFits(page, 640);
    await screenshot(page, 'long-selection');
  });

  test('no page broke its Content Security Policy', () => {
    assert.deepEqual(cspViolations, []);
  });
});
