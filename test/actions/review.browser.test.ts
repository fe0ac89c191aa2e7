import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { EntityRef } from '../../src/sandbox/records.ts';
import { thumbnailPng } from '../../src/sandbox/media.ts';
import { MiB } from '../../src/transfer/part-plan.ts';
import { assertFitsWidth, collectCspViolations, launchChromium, screenshotWidths } from '../helpers/page-checks.ts';
import { bearer, call, download, sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, startServiceWithSandbox, type ServiceWithSandbox } from '../helpers/service.ts';

// The set-thumbnail and submit-for-review pages in Debian's Chromium, against the real service and the sandbox
// site: images matched to Shots by name (a non-image refused by its content), each new thumbnail shown pending
// and then as the image the site serves; movies proposed as Versions, edited, created as the user with their
// movies, and put in a new playlist; a cancelled movie's Version removed again; a refusal shown where it happened.
//
// Set SCREENSHOT_DIR to keep screenshots at 1280 and 640 px.


describe('thumbnails and submissions for review in chromium', { timeout: 300_000 }, () => {
  let env: ServiceWithSandbox;
  let browser: Browser;
  let files: string;
  const contexts: BrowserContext[] = [];
  const cspViolations: string[] = [];

  before(async () => {
    // The transient placeholder stays long enough for the page to show "pending" every time.
    // Sweeps every second, and a page silent for 6 s counts as gone (it says it is there every second).
    env = await startServiceWithSandbox({ UPLOAD_PARALLEL_PARTS: '2', MAX_UPLOAD_BYTES: '100MiB', SWEEP_INTERVAL_SECONDS: '1', REVIEW_SILENCE_SECONDS: '6' }, { thumbnailDelayMs: 2500 });
    browser = await launchChromium();
    files = await mkdtemp(join(tmpdir(), 'ami-review-files-'));
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await env?.close();
    if (files) await rm(files, { recursive: true, force: true });
  });

  const store = () => env.site.store;
  const idOf = (type: 'Shot' | 'Version' | 'Playlist', code: string): number => store().all(type).find((record) => record.fields.code === code)!.id;

  async function newPage(width = 1280): Promise<Page> {
    const context = await browser.newContext({ viewport: { width, height: 900 } });
    contexts.push(context);
    collectCspViolations(context, cspViolations);
    return context.newPage();
  }

  async function writeTestFile(name: string, bytes: Buffer): Promise<{ path: string; bytes: Buffer }> {
    const path = join(files, name);
    await writeFile(path, bytes);
    return { path, bytes };
  }

  const screenshot = screenshotWidths;

  const assertFits = assertFitsWidth;

  test('set-thumbnail: images matched to Shots by name, a non-image refused by content, each new thumbnail pending and then shown', async () => {
    const shots = [idOf('Shot', 'sh010'), idOf('Shot', 'sh020')];
    const { pageUrl } = await launch(env, 'set-thumbnail', 'Shot', shots);
    const page = await newPage();
    await page.goto(pageUrl);
    await page.locator('h1', { hasText: 'Set thumbnail' }).waitFor();
    const images = [await writeTestFile('sh010.png', thumbnailPng(61, 'sh010 new')), await writeTestFile('SH020.png', thumbnailPng(62, 'sh020 new'))];
    const fake = await writeTestFile('sh020_notes.png', Buffer.from('these are notes, not a picture'));
    await page.locator('#upload-file-input').setInputFiles([images[0]!.path, images[1]!.path, fake.path]);
    const plan = page.locator('#upload-plan');
    await plan.getByRole('button', { name: 'Upload 2 files' }).waitFor();
    const rows = await plan.locator('.plan-file').evaluateAll((items) =>
      items.map((item) => [item.querySelector('.file-name')!.textContent, (item.querySelector('.plan-targets, .plan-problem')?.textContent ?? '').replace(/\s+/g, ' ').trim()]),
    );
    assert.deepEqual(rows, [
      ['sh010.png', '→ goes to sh010'],
      ['SH020.png', '→ goes to sh020'],
      ['sh020_notes.png', 'This is not an image: its content is not PNG, JPEG, GIF, WebP, TIFF or BMP, whatever its name says.'],
    ]);
    await assertFits(page, 640);
    assert.doesNotMatch((await page.locator('.plain-submit').textContent()) ?? '', /at most/, 'no form limit above the thumbnails\' own');
    // Both Shots have a thumbnail: the mapping says it is replaced, and asks before anything starts.
    assert.deepEqual(await plan.locator('.plan-warning').allTextContents(), ['Replaces the thumbnail sh010 has now.', 'Replaces the thumbnail sh020 has now.']);
    assert.equal(await plan.getByRole('button', { name: 'Upload 2 files' }).isDisabled(), true, 'not before the replacing is accepted');
    await screenshot(page, 'thumbnail-mapping');
    await plan.getByRole('checkbox', { name: 'Yes, replace 2 thumbnails they have now.' }).check();

    await plan.getByRole('button', { name: 'Upload 2 files' }).click();
    // Pending first: the site is still making them (its transient placeholder), drawn by the page, not loaded.
    const results = page.locator('#upload-progress .result-thumbnail');
    await results.nth(1).waitFor({ timeout: 60_000 });
    for (const id of shots) await page.locator(`#upload-progress [data-thumbnail-for="${id}"][data-state="pending"]`).waitFor();
    await screenshot(page, 'thumbnail-pending');
    // Then the real ones, in the results and in the list of Shots.
    for (const id of shots) await page.locator(`#upload-progress [data-thumbnail-for="${id}"][data-state="ready"] img`).waitFor({ timeout: 30_000 });
    await page.locator('#upload-status', { hasText: /^New thumbnail shown for sh0[12]0\.$/ }).waitFor();
    for (const [i, id] of shots.entries()) {
      const img = page.locator(`#upload-progress [data-thumbnail-for="${id}"] img`);
      await page.waitForFunction((selector) => (document.querySelector(selector) as HTMLImageElement | null)?.naturalWidth ?? 0 > 0, `#upload-progress [data-thumbnail-for="${id}"] img`);
      const src = (await img.getAttribute('src'))!;
      assert.doesNotMatch(src, /\/images\/status\/transient\//);
      assert.equal(sha256((await call(src)).body), sha256(images[i]!.bytes), `the image shown for Shot ${id} is the one sent`);
      assert.equal(await page.locator(`#upload-targets [data-thumbnail-for="${id}"] img`).getAttribute('src'), src, 'the list shows it too');
    }
    assert.match((await page.locator('#upload-progress .result-thumbnail').first().textContent()) ?? '', /New thumbnail/);
    await assertFits(page, 640);
    await screenshot(page, 'thumbnail-done');
  });

  test('submit-for-review: two movies proposed as Versions, edited, created as the user with their movies, and put in a new playlist', async () => {
    const shots = [idOf('Shot', 'sh030'), idOf('Shot', 'sh040')];
    const { pageUrl } = await launch(env, 'submit-for-review', 'Shot', shots);
    const page = await newPage();
    await page.goto(pageUrl);
    await page.locator('h1', { hasText: 'Submit for review' }).waitFor();
    const movies = [await writeTestFile('sh030_comp_v004.mov', testBytes(9 * MiB + 11, 71)), await writeTestFile('SH040-anim-v002.mp4', testBytes(2 * MiB, 72))];
    const stray = await writeTestFile('turntable_take2.mov', testBytes(1000, 73));
    await page.locator('#review-file-input').setInputFiles([movies[0]!.path, movies[1]!.path, stray.path]);

    // Proposed from the names: the Version name, and the Shot whose code begins the file's; the stray needs a choice.
    const panel = page.locator('#review-proposals');
    await panel.locator('.proposal').nth(2).waitFor();
    const proposed = await panel.locator('.proposal').evaluateAll((items) =>
      items.map((item) => {
        const target = item.querySelector('select[id$="-target"]') as HTMLSelectElement;
        return [
          (item.querySelector('input[id$="-code"]') as HTMLInputElement).value,
          target.selectedOptions[0]?.textContent,
          (item.querySelector('select[id$="-status"]') as HTMLSelectElement).value,
          item.querySelector('.plan-problem')?.textContent || null,
        ];
      }),
    );
    assert.deepEqual(proposed, [
      ['sh030_comp_v004', 'sh030', 'rev', null],
      ['SH040-anim-v002', 'sh040', 'rev', null],
      ['turntable_take2', '— choose —', 'rev', 'Choose what this Version is for: no selected entity is named like the file.'],
    ]);
    await panel.getByRole('button', { name: 'Create 2 Versions and upload' }).waitFor();
    await assertFits(page, 640);
    await screenshot(page, 'review-proposals');

    // Edits: a clearer name and a description for the first, a status for the second; the stray goes.
    const first = panel.locator('.proposal').nth(0);
    await first.getByLabel('Version name').fill('sh030_comp_v004_grade');
    await first.getByLabel('Description (optional)').fill('Warmer grade, as asked.');
    await panel.locator('.proposal').nth(1).getByLabel('Status').selectOption('ip');
    await panel.getByRole('button', { name: 'Remove turntable_take2.mov' }).click();
    await page.getByLabel('Add them to a new playlist:').check();
    await page.getByLabel('New playlist name').fill('Browser review');
    await screenshot(page, 'review-edited');
    await panel.getByRole('button', { name: 'Create 2 Versions and upload' }).click();

    const done = page.locator('#review-progress .job[data-state="done"]');
    await done.nth(1).waitFor({ timeout: 120_000 });
    await page.locator('#review-playlist-result', { hasText: '2 Versions added to the playlist Browser review.' }).waitFor({ timeout: 30_000 });
    await page.locator('#review-status', { hasText: 'All finished: 2 of 2 Versions submitted.' }).waitFor();
    const links = await done.locator('.result-done a').evaluateAll((anchors) => anchors.map((a) => [a.textContent, (a as HTMLAnchorElement).href]));
    const codes = ['sh030_comp_v004_grade', 'SH040-anim-v002'];
    assert.deepEqual(links.map(([text]) => text), codes);

    const artist = store().all('HumanUser').find((user) => user.fields.login === 'artist')!.id;
    const token = await bearer(env.site);
    for (const [i, code] of codes.entries()) {
      const version = store().all('Version').find((record) => record.fields.code === code)!;
      assert.equal(links[i]![1], `${env.site.url}/detail/Version/${version.id}`);
      assert.deepEqual(version.fields.entity, { type: 'Shot', id: shots[i] });
      assert.deepEqual(version.fields.user, { type: 'HumanUser', id: artist });
      assert.equal(version.fields.sg_status_list, i === 0 ? 'rev' : 'ip');
      assert.equal(version.fields.description ?? null, i === 0 ? 'Warmer grade, as asked.' : null);
      const movie = await download(env.site, token, `/api/v1/entity/versions/${version.id}/sg_uploaded_movie?alt=original`);
      assert.equal(sha256(movie.body), sha256(movies[i]!.bytes), `${code} holds its movie`);
    }
    const playlist = store().all('Playlist').find((record) => record.fields.code === 'Browser review')!;
    assert.deepEqual((playlist.fields.versions as EntityRef[]).map((ref) => ref.id), codes.map((code) => idOf('Version', code)));
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
    await assertFits(page, 640);
    await screenshot(page, 'review-done');
  });

  test('submit-for-review: a movie cancelled mid-way has its new Version removed again, and a refusal shows where it happened', async () => {
    const shot = idOf('Shot', 'sh050');
    const { pageUrl } = await launch(env, 'submit-for-review', 'Shot', [shot]);
    const page = await newPage(640);
    await page.goto(pageUrl);
    const versions = store().all('Version').length;
    const movie = await writeTestFile('sh050_comp_v004.mov', testBytes(30 * MiB, 74));
    await page.locator('#review-file-input').setInputFiles(movie.path);
    const panel = page.locator('#review-proposals');
    await panel.getByRole('button', { name: 'Create 1 Version and upload' }).waitFor();
    env.site.faults.update({ latencyMs: 400 });
    await panel.getByRole('button', { name: 'Create 1 Version and upload' }).click();
    const job = page.locator('#review-progress .job').first();
    await job.locator('.job-state', { hasText: /^Uploading/ }).waitFor({ timeout: 60_000 });
    assert.equal(store().all('Version').length, versions + 1, 'the Version exists while its movie goes up');
    await page.getByRole('button', { name: 'Cancel sh050_comp_v004' }).click();
    await job.locator('.job-state', { hasText: 'The new Version sh050_comp_v004 was removed again: no empty Version is left.' }).waitFor({ timeout: 30_000 });
    env.site.faults.update({ latencyMs: 0 });
    assert.equal(store().all('Version').length, versions, 'no empty Version left');
    for (let tries = 0; env.site.storage.multipartUploadsInProgress() > 0; tries++) {
      assert.ok(tries < 100, 'the multipart upload is aborted');
      await sleep(50);
    }
    await screenshot(page, 'review-cancelled');

    // The user loses access to the project between opening the page and confirming: the site's refusal shows
    // on the movie it concerns, and nothing is created.
    const again = await writeTestFile('sh050_comp_v005.mov', testBytes(5000, 75));
    await page.locator('#review-file-input').setInputFiles(again.path);
    await panel.getByRole('button', { name: 'Create 1 Version and upload' }).waitFor();
    const demo = store().all('Project').find((project) => project.fields.name === 'Demo')!;
    const members = demo.fields.users;
    store().update(demo, { users: (members as EntityRef[]).filter((user) => store().get('HumanUser', user.id)?.fields.login !== 'artist') });
    try {
      await panel.getByRole('button', { name: 'Create 1 Version and upload' }).click();
      const refused = page.locator('#review-progress .job[data-state="refused"]');
      await refused.waitFor({ timeout: 30_000 });
      assert.match((await refused.locator('.job-state').textContent()) ?? '', /^Refused: ShotGrid does not show this Shot to “artist” \(or it no longer exists\): no Version was created\.$/);
      assert.equal(store().all('Version').length, versions);
      await screenshot(page, 'review-refused');
    } finally {
      store().update(demo, { users: members ?? [] });
    }
  });

  test('submit-for-review: while the page is open its new Version waits for its movie; once it is closed mid-way, the Version is removed', async () => {
    const shot = idOf('Shot', 'sh060');
    const { pageUrl } = await launch(env, 'submit-for-review', 'Shot', [shot]);
    const page = await newPage(640);
    await page.goto(pageUrl);
    const versions = store().all('Version').length;
    const movie = await writeTestFile('sh060_comp_v009.mov', testBytes(30 * MiB, 76));
    await page.locator('#review-file-input').setInputFiles(movie.path);
    const panel = page.locator('#review-proposals');
    await panel.getByRole('button', { name: 'Create 1 Version and upload' }).waitFor();
    // Storage slow enough that the movie is still on its way for a while.
    env.site.faults.update({ latencyMs: 4000 });
    try {
      await panel.getByRole('button', { name: 'Create 1 Version and upload' }).click();
      await page.locator('#review-progress .job .job-state', { hasText: /^Uploading/ }).waitFor({ timeout: 60_000 });
      await sleep(8_000);
      assert.equal(store().all('Version').length, versions + 1, 'past the 6 s of silence allowed, the open page keeps its Version');
      await page.close();
      const deadline = Date.now() + 30_000;
      while (store().all('Version').length !== versions) {
        assert.ok(Date.now() < deadline, 'the closed page\'s empty Version is removed');
        await sleep(250);
      }
    } finally {
      env.site.faults.reset();
    }
    assert.equal(store().all('Version').find((version) => version.fields.code === 'sh060_comp_v009'), undefined, 'no Version of that name left');

    // The user's next launch of the action for that Shot says what became of it.
    const { pageUrl: later } = await launch(env, 'submit-for-review', 'Shot', [shot]);
    const again = await newPage(640);
    await again.goto(later);
    const earlier = again.locator('.launch-record .record-line', { hasText: 'sh060_comp_v009' });
    await earlier.waitFor();
    assert.match((await earlier.textContent())!.replace(/\s+/g, ' '), /sh060_comp_v009 .* Removed again: its page was closed before its movie arrived To: → sh060/);
    assert.equal(await again.locator('.record-heading', { hasText: 'Your earlier “Submit for review”' }).count(), 1);
    await screenshot(again, 'review-record');
  });

  test('no page broke its Content Security Policy', () => {
    assert.deepEqual(cspViolations, []);
  });
});
