import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { abandonAfter, dropMidBody, seededRandom } from '../helpers/abort-harness.ts';
import { bearer, download, sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, TEST_SESSION_SECRET, type Launched } from '../helpers/service.ts';
import { siteEnvironment, spawnService, type ServiceProcess } from '../helpers/service-process.ts';
import { contentMd5, pageApi, uploadThrough } from '../helpers/upload-client.ts';
import { prepareZip } from '../helpers/zip-client.ts';

// No request of any user, however it ends, takes the process down. The service runs as its own process (a crash
// is an exit, not an exception the test runner swallows) against the sandbox site; transfer requests of every kind
// — fan-out parts, completes, cancels, the plain form, zips, launches — are cut at random moments, many at once.
// Then the process must still be up, an honest fan-out upload and a zip must come through whole, and once the
// pages have cancelled what they began, no multipart upload may be left open at storage.

const MiB = 1024 * 1024;
const SEED = Number(process.env['ABORT_TEST_SEED'] ?? Date.now() % 1_000_000);
const ROUNDS = 48;
const CONCURRENCY = 6;

let site: SandboxSite;
let service: ServiceProcess;
before(async () => {
  site = await startSandboxSite({ faults: {} });
  service = await spawnService(siteEnvironment(site, TEST_SESSION_SECRET));
});
after(async () => {
  await service?.stop();
  await site?.close();
});

const env = () => ({ site, service });
const idsOf = (type: 'Shot' | 'Version', ...codes: string[]) => codes.map((code) => site.store.all(type).find((record) => record.fields.code === code)!.id);
const fanOutVersions = () => idsOf('Version', 'sh050_anim_v001', 'sh050_anim_v002', 'sh050_anim_v003');

async function begin(page: Launched, name: string, size: number, targets: number[]): Promise<{ id: string; partSize: number; partCount: number }> {
  const begun = await pageApi(page, 'POST', '', { name, size, targets });
  assert.equal(begun.status, 201, JSON.stringify(begun.body));
  return begun.body.upload;
}

const partHeaders = (page: Launched, part: Buffer) => ({ 'content-md5': contentMd5(part), 'x-csrf-token': page.token('uploads'), accept: 'application/json' });

/** Every scenario begins what a page begins and ends it as a page that went away would (or not at all). */
type Scenario = (random: ReturnType<typeof seededRandom>, begun: { page: Launched; id: string }[]) => Promise<void>;

const scenarios: Record<string, Scenario> = {
  async 'part dropped mid-body'(random, begun) {
    const page = await launch(env(), 'upload-files', 'Version', fanOutVersions());
    const bytes = testBytes(9 * MiB, random.int(1, 1000));
    const upload = await begin(page, 'fan.mov', bytes.length, fanOutVersions());
    begun.push({ page, id: upload.id });
    const part = bytes.subarray(0, upload.partSize);
    await Promise.all(
      Array.from({ length: random.int(1, 3) }, () =>
        dropMidBody(`${page.pageUrl}/uploads/${upload.id}/parts/1`, { method: 'PUT', headers: partHeaders(page, part), body: part, sendBytes: random.pick([0, 1, 65_536, random.int(0, part.length - 1)]), waitMs: random.int(0, 60) }),
      ),
    );
  },
  async 'parts abandoned, then cancelled'(random) {
    const ids = random.next() < 0.5 ? fanOutVersions() : fanOutVersions().slice(0, 1);
    const page = await launch(env(), 'upload-files', 'Version', ids);
    const bytes = testBytes(17 * MiB, random.int(1, 1000));
    const upload = await begin(page, 'fan.mov', bytes.length, ids);
    const sending = [1, 2, 3].map((n) => {
      const part = bytes.subarray((n - 1) * upload.partSize, n * upload.partSize);
      return abandonAfter(`${page.pageUrl}/uploads/${upload.id}/parts/${n}`, { method: 'PUT', headers: partHeaders(page, part), body: part }, random.int(0, 120));
    });
    await sleep(random.int(0, 80));
    const cancelled = await pageApi(page, 'DELETE', `/${upload.id}`);
    assert.ok([200, 409].includes(cancelled.status), `cancel answered ${cancelled.status}`);
    await Promise.all(sending);
  },
  async 'complete abandoned while a cancel runs'(random) {
    const page = await launch(env(), 'attach-files', 'Shot', idsOf('Shot', 'sh010', 'sh020'));
    const bytes = testBytes(random.int(1, 64 * 1024), random.int(1, 1000));
    const upload = await begin(page, 'notes.txt', bytes.length, idsOf('Shot', 'sh010', 'sh020'));
    const part = await pageApi(page, 'PUT', `/${upload.id}/parts/1`, bytes, { 'content-md5': contentMd5(bytes) });
    assert.ok([200, 503, 422].includes(part.status), `part answered ${part.status}`);
    const url = `${page.pageUrl}/uploads/${upload.id}/complete`;
    await Promise.all([
      abandonAfter(url, { method: 'POST', headers: { 'x-csrf-token': page.token('uploads'), accept: 'application/json' } }, random.int(0, 30)),
      sleep(random.int(0, 30)).then(() => pageApi(page, 'DELETE', `/${upload.id}`)),
    ]);
  },
  async 'plain form dropped mid-body'(random) {
    // Attached to two Shots, or sent to Versions by a name that matches none (refused, only drained).
    const attach = random.next() < 0.5;
    const page = attach ? await launch(env(), 'attach-files', 'Shot', idsOf('Shot', 'sh010', 'sh030')) : await launch(env(), 'upload-files', 'Version', fanOutVersions());
    const form = new FormData();
    form.append('files', new Blob([new Uint8Array(testBytes(random.int(1, 12 * MiB), random.int(1, 1000)))]), attach ? 'plate.exr' : 'matches-nothing.mov');
    const encoded = new Response(form);
    const body = Buffer.from(await encoded.arrayBuffer());
    await dropMidBody(`${page.pageUrl}/form-upload?csrf_token=${page.token('form-upload')}`, {
      method: 'POST',
      headers: { 'content-type': encoded.headers.get('content-type')!, accept: 'text/html' },
      body,
      sendBytes: random.int(0, body.length - 1),
      waitMs: random.int(0, 100),
    });
  },
  async 'zip abandoned while prepared or mid-stream'(random) {
    const page = await launch(env(), 'download-zip', 'Shot', idsOf('Shot', 'sh010', 'sh020', 'sh030'));
    if (random.next() < 0.3) {
      // The page goes away while the zip is being prepared.
      await abandonAfter(`${page.pageUrl}/zip`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': page.token('zip') }, body: '{}' }, random.int(0, 20));
      return;
    }
    await abandonAfter((await prepareZip(page)).fileUrl, { method: 'GET' }, random.int(0, 150));
  },
  async 'launch dropped mid-body'(random) {
    const body = Buffer.from(`user_login=artist&entity_type=Version&selected_ids=1&${'x=1&'.repeat(2000)}`);
    await dropMidBody(`${service.url}/ami/upload-files`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body, sendBytes: random.int(0, body.length - 1), waitMs: random.int(0, 30) });
  },
};

describe(`transfer requests cut at random moments (seed ${SEED}: ABORT_TEST_SEED=${SEED} replays it)`, () => {
  const begun: { page: Launched; id: string }[] = [];

  test(`${ROUNDS} cut requests, ${CONCURRENCY} at a time: the process stays up`, async () => {
    const random = seededRandom(SEED);
    const names = Object.keys(scenarios);
    const queue = Array.from({ length: ROUNDS }, (_, i) => names[i % names.length]!);
    const worker = async (): Promise<void> => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        await scenarios[name]!(random, begun);
        assert.equal(service.child.exitCode, null, `the service exited during "${name}": ${service.stderr()}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const health = await request(`${service.url}/healthz`);
    assert.equal(health.statusCode, 200);
    await health.body.dump();
    assert.equal(service.lines.filter((line) => line['level'] === 'fatal').length, 0, JSON.stringify(service.lines.filter((line) => line['level'] === 'fatal')));
  });

  test('after them, an honest fan-out upload and a zip come through whole', async () => {
    const ids = fanOutVersions();
    const page = await launch(env(), 'upload-files', 'Version', ids);
    const bytes = testBytes(19 * MiB, 77);
    const upload = await uploadThrough(page, 'fan.mov', bytes, ids);
    assert.ok(upload.results.every((result: { ok: boolean }) => result.ok));
    const token = await bearer(site);
    for (const id of ids) {
      const stored = await download(site, token, `/api/v1/entity/versions/${id}/sg_uploaded_movie?alt=original`);
      assert.equal(sha256(stored.body), sha256(bytes));
    }
    const zipPage = await launch(env(), 'download-zip', 'Version', ids);
    const zip = await request((await prepareZip(zipPage)).fileUrl);
    const received = Buffer.from(await zip.body.arrayBuffer());
    assert.equal(zip.statusCode, 200);
    assert.equal(received.length, Number(zip.headers['content-length']));
    assert.ok(received.includes(bytes.subarray(0, 4096)), 'the movie is in the zip');
  });

  test('once the pages cancel what they began, no multipart upload is left open at storage', async () => {
    for (const { page, id } of begun) await pageApi(page, 'DELETE', `/${id}`);
    // Form uploads cut mid-body give up at the site by themselves, as soon as their stream fails.
    for (let waited = 0; site.storage.multipartUploadsInProgress() > 0 && waited < 5000; waited += 100) await sleep(100);
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
    assert.equal(service.child.exitCode, null);
  });
});
