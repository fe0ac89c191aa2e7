import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import { request } from 'undici';
import { isFileValue } from '../../src/sandbox/records.ts';
import { csrfToken } from '../../src/web/csrf.ts';
import { launch, startServiceWithSandbox, TEST_SESSION_SECRET, type ServiceWithSandbox } from '../helpers/service.ts';
import { fetchToFile, prepareZip, zipStatus } from '../helpers/zip-client.ts';
import { checkWithAllReaders } from '../transfer/zip/archive-checks.ts';

// The download-zip action through the real service and sandbox: the page lists the files, the zip streams
// with an exact Content-Length, passes unzip, 7z and Python's zipfile, holds every file byte-identical, and
// survives dropped source connections; a source that keeps failing aborts the response and the status says which.

let env: ServiceWithSandbox;
let mount: string;
let folder: string;
const localBytes = Buffer.from('EXR plate stand-in\n'.repeat(1000));

before(async () => {
  mount = await mkdtemp(join(tmpdir(), 'mount-'));
  folder = await mkdtemp(join(tmpdir(), 'zips-'));
  const plate = join(mount, 'demo/shots/sh010/plates/sh010_bg_v001.exr');
  await mkdir(dirname(plate), { recursive: true });
  await writeFile(plate, localBytes);
  env = await startServiceWithSandbox({ LOCAL_STORAGE_MOUNTS: `primary=${mount}` });
});
after(async () => {
  await env.close();
  await rm(mount, { recursive: true, force: true });
  await rm(folder, { recursive: true, force: true });
});
beforeEach(() => env.site.faults.reset());

const shotIds = (...codes: string[]) => codes.map((code) => env.site.store.all('Shot').find((s) => s.fields.code === code)!.id);

async function storedSha(key: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of env.site.storage.createReadStream(key)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** sha256 of every uploaded attachment's bytes by file name (the seed's names are unique per shot). */
async function seededHashes(): Promise<Map<string, string>> {
  const hashes = new Map<string, string>();
  for (const attachment of env.site.store.all('Attachment')) {
    const file = attachment.fields.this_file;
    if (isFileValue(file) && file.link_type === 'upload') hashes.set(file.name, await storedSha(file.key));
  }
  return hashes;
}

/** The zip at url, fetched into this test's folder. */
const fetchZip = (url: string) => fetchToFile(url, folder);

describe('download-zip', { timeout: 180_000 }, () => {
  test('the page lists each entity’s files with sizes, and which stay in the manifest only', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh010', 'sh030'));
    const response = await request(page.pageUrl, { headers: { accept: 'text/html' } });
    const html = await response.body.text();
    assert.equal(response.statusCode, 200);
    for (const name of ['sh010_brief.pdf', 'sh010_shotlist.csv', 'sh030_temp_mix.wav', 'sh010_bg_v001.exr', 'Reference board']) assert.ok(html.includes(name), name);
    assert.match(html, /manifest only: web link not fetched/);
    // The plain form (no script) posts to prepare the zip, with the page's CSRF token.
    assert.ok(html.includes(`<input type="hidden" name="csrf_token" value="${page.token('zip')}">`), 'the form carries its token');
  });

  test('an empty selection says so and offers no live download; rows the user cannot see are counted', async () => {
    const empty = await launch(env, 'download-zip', 'Shot', shotIds('sh010'), 'artist', { selectNothing: true });
    const html = await (await request(empty.pageUrl, { headers: { accept: 'text/html' } })).body.text();
    assert.match(html, /Nothing was selected/);
    assert.match(html, /<button type="submit" class="button" id="download-button" disabled>/);
    const backlot = env.site.store.all('Shot').find((shot) => shot.fields.code === 'bl010')!.id;
    // A launch naming a row the artist cannot see (signed all the same): as if their page had held it.
    const partly = await launch(env, 'download-zip', 'Shot', [backlot], 'outsider', { actAs: 'artist' });
    const partlyHtml = await (await request(partly.pageUrl, { headers: { accept: 'text/html' } })).body.text();
    assert.match(partlyHtml, /1 selected item is not visible to you/);
    assert.doesNotMatch(partlyHtml, /bl010/);
  });

  test('the plain form: POST prepares, 303 to a page that refreshes itself until the zip is ready, then starts it', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh010'));
    const posted = await request(`${page.pageUrl}/zip`, {
      method: 'POST',
      headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf_token=${encodeURIComponent(page.token('zip'))}&kinds=thumbnails`,
    });
    await posted.body.dump();
    assert.equal(posted.statusCode, 303);
    const waiting = new URL(String(posted.headers.location), page.pageUrl).toString();
    let html = '';
    for (let tries = 0; tries < 200; tries++) {
      html = await (await request(waiting, { headers: { accept: 'text/html' } })).body.text();
      if (!html.includes('Preparing the zip')) break;
      assert.match(html, /<meta http-equiv="refresh" content="2">/);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(html, /The zip is ready: \d+ files?/);
    const file = /<meta http-equiv="refresh" content="0;url=([^"]+)">/.exec(html)?.[1];
    assert.ok(file, 'the ready page starts the download');
    const zip = await fetchZip(new URL(file.replaceAll('&amp;', '&'), page.pageUrl).toString());
    assert.equal(zip.status, 200);
    assert.equal(Number(zip.headers['content-length']), zip.bytes);
    const names = (await checkWithAllReaders(zip.path)).map((entry) => entry.name);
    assert.deepEqual(names, ['Shot/sh010/thumbnail.png', 'manifest.csv'], 'only the kind chosen');
  });

  test('preparing on an expired or discarded launch is refused 410, and nothing is started', async () => {
    const response = await request(`${env.service.url}/ami/download-zip/${'x'.repeat(43)}/zip`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': csrfToken(TEST_SESSION_SECRET, 'x'.repeat(43), 'zip') },
      body: '{"kinds":["attachments"]}',
    });
    const body = (await response.body.json()) as { error: { code: string } };
    assert.equal(response.statusCode, 410);
    assert.equal(body.error.code, 'context_expired');
  });

  test('the zip request without the page\'s token is refused 403', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh010'));
    const response = await request(`${page.pageUrl}/zip`, { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/json' }, body: '{}' });
    await response.body.dump();
    assert.equal(response.statusCode, 403);
  });

  test('a launch prepares at most 50 zips: 53 asked at once, 50 are prepared and 3 refused 429 with a stable code', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh010'));
    const answers = await Promise.all(
      Array.from({ length: 53 }, async () => {
        const response = await request(`${page.pageUrl}/zip`, {
          method: 'POST',
          headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': page.token('zip') },
          body: '{"kinds":["thumbnails"]}',
        });
        return { status: response.statusCode, body: (await response.body.json()) as { error?: { code?: string; message?: string }; download?: { statusUrl: string } } };
      }),
    );
    const refused = answers.filter((answer) => answer.status === 429);
    const accepted = answers.filter((answer) => answer.status === 202);
    assert.equal(accepted.length, 50, JSON.stringify(answers.map((answer) => answer.status)));
    assert.equal(refused.length, 3);
    for (const { body } of refused) {
      assert.equal(body.error?.code, 'too_many_zips');
      assert.match(body.error?.message ?? '', /run the action again from ShotGrid/);
    }
    // Every accepted zip is prepared (none left running into the next test).
    const states = await Promise.all(
      accepted.map(async ({ body }) => {
        const statusUrl = new URL(body.download!.statusUrl, page.pageUrl).toString();
        for (let asked = 0; asked < 60; asked++) {
          const status = (await (await request(`${statusUrl}?wait=1`, { headers: { accept: 'application/json' } })).body.json()) as { state: string };
          if (status.state !== 'preparing') return status.state;
        }
        return 'preparing';
      }),
    );
    assert.deepEqual(new Set(states), new Set(['ready']));
    // Another launch of the same user is not held by this one's count.
    const other = await launch(env, 'download-zip', 'Shot', shotIds('sh010'));
    assert.equal((await prepareZip(other, 'thumbnails')).status.state, 'ready');
  });

  test('a status asked with ?wait=1 is held while the zip is prepared: answered "ready" when it is, or "preparing" only after a second', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh010'));
    // Every site and storage request 400 ms away: preparing takes several of them in turn, well over a second.
    env.site.faults.update({ latencyMs: 400 });
    const posted = await request(`${page.pageUrl}/zip`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': page.token('zip') },
      body: '{"kinds":["attachments"]}',
    });
    const { download } = (await posted.body.json()) as { download: { statusUrl: string } };
    const statusUrl = new URL(download.statusUrl, page.pageUrl).toString();
    const ask = async (query: string): Promise<{ state: string; heldMs: number }> => {
      const started = performance.now();
      const status = (await (await request(`${statusUrl}${query}`, { headers: { accept: 'application/json' } })).body.json()) as { state: string };
      return { state: status.state, heldMs: performance.now() - started };
    };
    assert.equal((await ask('')).state, 'preparing', 'without ?wait=1 the status answers at once');
    const answers: { state: string; heldMs: number }[] = [];
    for (let answer = await ask('?wait=1'); ; answer = await ask('?wait=1')) {
      answers.push(answer);
      if (answer.state !== 'preparing') break;
      assert.ok(answers.length < 60, 'the zip was prepared within a minute');
    }
    assert.equal(answers.at(-1)!.state, 'ready');
    assert.ok(answers.length > 1, 'preparing outlasted one hold');
    for (const held of answers.slice(0, -1)) assert.ok(held.heldMs >= 990, `a "preparing" answer came after ${held.heldMs.toFixed(0)} ms, not after the hold`);
  });

  test('the zip has an exact Content-Length, passes three readers, and every file is byte-identical', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh010', 'sh020', 'sh030'));
    const zip = await fetchZip((await prepareZip(page)).fileUrl);
    assert.equal(zip.status, 200);
    assert.equal(zip.error, null);
    assert.equal(Number(zip.headers['content-length']), zip.bytes);
    assert.match(String(zip.headers['content-disposition']), /^attachment; filename="Demo_Shots_\d{4}-\d{2}-\d{2}\.zip"; filename\*=UTF-8''Demo_Shots_/);
    const entries = await checkWithAllReaders(zip.path);
    const names = entries.map((entry) => entry.name);
    assert.equal(names.at(-1), 'manifest.csv');
    assert.ok(names.includes('Shot/sh010/sh010_brief.pdf'));
    assert.ok(names.includes('Shot/sh010/sh010_bg_v001.exr'), 'the local file from its mount');
    assert.ok(names.includes('Shot/sh030/sh030_temp_mix.wav'));
    const hashes = await seededHashes();
    for (const entry of entries) {
      const base = entry.name.split('/').pop()!;
      if (hashes.has(base)) assert.equal(entry.sha256, hashes.get(base), entry.name);
    }
    assert.equal(entries.find((e) => e.name === 'Shot/sh010/sh010_bg_v001.exr')!.sha256, createHash('sha256').update(localBytes).digest('hex'));
  });

  test('dropped source connections are resumed: the zip is still whole and correct', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh030'));
    const prepared = await prepareZip(page, 'attachments');
    env.site.faults.update({ storageGetResetCount: 4 });
    const zip = await fetchZip(prepared.fileUrl);
    assert.equal(zip.error, null);
    assert.equal(Number(zip.headers['content-length']), zip.bytes);
    const entries = await checkWithAllReaders(zip.path);
    const hashes = await seededHashes();
    assert.equal(entries.find((e) => e.name === 'Shot/sh030/sh030_temp_mix.wav')!.sha256, hashes.get('sh030_temp_mix.wav'));
  });

  test('a source that keeps failing aborts the response, and the status names the file', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh030'));
    const prepared = await prepareZip(page, 'attachments');
    env.site.faults.update({ storageGetResetRate: 1 });
    const zip = await fetchZip(prepared.fileUrl);
    env.site.faults.reset();
    assert.ok(zip.error !== null || zip.bytes < Number(zip.headers['content-length']), 'the download must not look complete');
    const body = await zipStatus(prepared);
    assert.equal(body.state, 'failed');
    assert.equal(body.failedFile, 'Shot/sh030/sh030_temp_mix.wav');

    // The browser asks for a cut download again by itself (Chromium, up to five times, from byte 0): the same
    // download is not rebuilt up to the same failure, and its status keeps saying which file failed.
    const again = await request(prepared.fileUrl, { headers: { accept: 'text/html' } });
    const text = await again.body.text();
    assert.equal(again.statusCode, 410);
    assert.match(text, /sh030_temp_mix\.wav/);
    assert.deepEqual(await zipStatus(prepared), body, 'the status is the failure, unchanged');
  });

  test('a download the client cut may start over with the same id (only a source failure is final)', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh030'));
    const prepared = await prepareZip(page, 'attachments');
    env.site.faults.update({ latencyMs: 1500 });
    const cut = new AbortController();
    const response = await request(prepared.fileUrl, { signal: cut.signal });
    for await (const _ of response.body) break; // the first bytes (the entry's header), then the client leaves
    cut.abort();
    const statusOf = () => zipStatus(prepared);
    for (let tries = 0; tries < 50 && (await statusOf()).state !== 'failed'; tries++) await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual({ state: (await statusOf()).state, failedBy: (await statusOf()).failedBy }, { state: 'failed', failedBy: 'browser' });
    env.site.faults.reset();
    const zip = await fetchZip(prepared.fileUrl);
    assert.equal(zip.status, 200);
    assert.equal(zip.error, null);
    assert.equal(Number(zip.headers['content-length']), zip.bytes);
    assert.equal((await statusOf()).state, 'done');
  });

  test('a cut zip resumes where it stopped (Range with If-Range): the bytes are those of an uninterrupted download', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh010', 'sh020', 'sh030'));
    const prepared = await prepareZip(page);
    const whole = await request(prepared.fileUrl);
    const full = Buffer.from(await whole.body.arrayBuffer());
    const etag = String(whole.headers.etag);
    assert.equal(whole.headers['accept-ranges'], 'bytes');
    assert.equal(full.length, Number(whole.headers['content-length']));

    // Cut part-way, as a dropped connection does: the client has the first bytes only.
    const cut = new AbortController();
    const partial = await request(prepared.fileUrl, { signal: cut.signal });
    let have = 0;
    try {
      for await (const chunk of partial.body) {
        have += (chunk as Buffer).length;
        if (have > full.length / 2) cut.abort();
      }
    } catch {
      // the cut
    }
    const from = Math.min(have, full.length - 1) - 123;
    const resumed = await request(prepared.fileUrl, { headers: { range: `bytes=${from}-`, 'if-range': etag } });
    const rest = Buffer.from(await resumed.body.arrayBuffer());
    assert.equal(resumed.statusCode, 206);
    assert.equal(resumed.headers['content-range'], `bytes ${from}-${full.length - 1}/${full.length}`);
    assert.ok(rest.equals(full.subarray(from)), 'the resumed bytes are the uninterrupted download\'s');

    // Another archive's validator: the whole zip, never a mix of two. Past the end: 416.
    const other = await request(prepared.fileUrl, { headers: { range: `bytes=${from}-`, 'if-range': '"zip-other"' } });
    assert.equal(other.statusCode, 200);
    assert.ok(Buffer.from(await other.body.arrayBuffer()).equals(full));
    const beyond = await request(prepared.fileUrl, { headers: { range: `bytes=${full.length}-` } });
    await beyond.body.dump();
    assert.equal(beyond.statusCode, 416);
  });

  test('thumbnails are sized from storage with a Range GET (a URL signed for GET refuses HEAD) and zipped byte-identical', async () => {
    const page = await launch(env, 'download-zip', 'Shot', shotIds('sh010', 'sh020'));
    const zip = await fetchZip((await prepareZip(page, 'thumbnails')).fileUrl);
    assert.equal(zip.error, null);
    assert.equal(Number(zip.headers['content-length']), zip.bytes);
    const entries = await checkWithAllReaders(zip.path);
    for (const code of ['sh010', 'sh020']) {
      const image = env.site.store.all('Shot').find((shot) => shot.fields.code === code)!.fields.image as { key: string };
      const entry = entries.find((e) => e.name === `Shot/${code}/thumbnail.png`);
      assert.ok(entry, `${code}'s thumbnail is in the zip (${entries.map((e) => e.name).join(', ')})`);
      assert.equal(entry.sha256, await storedSha(image.key));
    }
  });
});
