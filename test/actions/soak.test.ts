import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { abandonAfter, dropMidBody, seededRandom } from '../helpers/abort-harness.ts';
import { bearer, download, sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, TEST_SESSION_SECRET, type Launched } from '../helpers/service.ts';
import { siteEnvironment, spawnService, type ServiceProcess } from '../helpers/service-process.ts';
import { contentMd5, pageApi, uploadThrough } from '../helpers/upload-client.ts';
import { prepareZip } from '../helpers/zip-client.ts';

// A bounded soak: for a fixed time many clients at once launch, upload, cancel and download, and send the hostile
// requests that once froze, exhausted or flushed the service (issue 13), while one honest user uploads a file to
// three Versions and downloads a zip. The service runs as its own process: it must never exit, its memory must
// stay under a fixed bound whatever is declared or sent, and the honest user's bytes must land byte-identical.

const MiB = 1024 * 1024;
const SOAK_MS = 15_000;
const CLIENTS = 8;
/** The service's resident memory may never pass this (it idles at ~120 MiB). */
const RSS_BOUND_MIB = 512;
const SEED = Number(process.env['SOAK_TEST_SEED'] ?? Date.now() % 1_000_000);

let site: SandboxSite;
let service: ServiceProcess;
before(async () => {
  site = await startSandboxSite({});
  service = await spawnService(siteEnvironment(site, TEST_SESSION_SECRET, { CLIENT_IDLE_SECONDS: '3', RATE_LIMIT_PER_MINUTE: '600' }));
});
after(async () => {
  await service?.stop();
  await site?.close();
});

const env = () => ({ site, service });
const idsOf = (type: 'Shot' | 'Version', ...codes: string[]) => codes.map((code) => site.store.all(type).find((record) => record.fields.code === code)!.id);

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

/** A request whose head is sent in part and never finished (slow loris); closed when the soak ends. */
function halfSent(url: string): Socket {
  const target = new URL(url);
  const socket = connect(Number(target.port), target.hostname);
  socket.on('error', () => undefined);
  socket.once('connect', () => socket.write(`POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/x-w`));
  return socket;
}

/** The honest user launches again when the service says it is busy (503), as a person clicks again. */
async function launchPatiently(action: string, type: 'Shot' | 'Version', ids: number[]): Promise<Launched> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(env(), action, type, ids, 'artist');
    } catch (error) {
      if (attempt >= 30) throw error;
      await sleep(500);
    }
  }
}

type Random = ReturnType<typeof seededRandom>;
const hostile: Record<string, (random: Random, page: Launched, held: Socket[]) => Promise<void>> = {
  async 'launch body of valueless fields'() {
    await abandonAfter(`${service.url}/ami/upload-files`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a&'.repeat(2 * MiB) }, 10_000);
  },
  async 'display name of 256 kB'(_random, page) {
    await pageApi(page, 'POST', '', { name: 'x.mov', size: 10, targets: [idsOf('Version', 'sh040_comp_v001')[0]], displayName: 'n'.repeat(256 * 1024) });
  },
  async 'form declaring 9e12 bytes, then 48 MiB, then gone'(random) {
    const form = await launch(env(), 'attach-files', 'Shot', idsOf('Shot', 'sh040'));
    const boundary = 'soakboundary';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="huge.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const body = Buffer.concat([head, testBytes(48 * MiB, random.int(1, 99))]);
    const url = `${form.pageUrl}/form-upload?csrf_token=${form.token('form-upload')}`;
    await dropMidBody(url, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body, sendBytes: body.length, waitMs: 200, declaredLength: 9e12 });
  },
  async 'flood of status GETs'(_random, page) {
    await Promise.all(Array.from({ length: 40 }, () => request(`${page.pageUrl}/uploads`, { headers: { accept: 'application/json' } }).then((response) => response.body.dump())));
  },
  async 'half-sent requests'(_random, _page, held) {
    for (let index = 0; index < 25; index++) held.push(halfSent(`${service.url}/ami/upload-files`));
  },
  async 'fan-out upload cancelled mid-way'(random) {
    const ids = idsOf('Version', 'sh050_anim_v001', 'sh050_anim_v002');
    const page = await launch(env(), 'upload-files', 'Version', ids);
    const bytes = testBytes(17 * MiB, random.int(1, 99));
    const begun = await pageApi(page, 'POST', '', { name: 'soak.mov', size: bytes.length, targets: ids });
    if (begun.status !== 201) return;
    const part = bytes.subarray(0, begun.body.upload.partSize);
    const sending = abandonAfter(`${page.pageUrl}/uploads/${begun.body.upload.id}/parts/1`, { method: 'PUT', headers: { 'content-md5': contentMd5(part), 'x-csrf-token': page.token('uploads') }, body: part }, random.int(0, 200));
    await sleep(random.int(0, 100));
    await pageApi(page, 'DELETE', `/${begun.body.upload.id}`);
    await sending;
  },
  async 'zip abandoned'(random) {
    const page = await launch(env(), 'download-zip', 'Shot', idsOf('Shot', 'sh010', 'sh030'));
    await abandonAfter((await prepareZip(page)).fileUrl, { method: 'GET' }, random.int(0, 150));
  },
};

test(`a ${SOAK_MS / 1000} s soak (seed ${SEED}): the honest user's transfers land whole, memory stays bounded, the process never exits`, { timeout: 180_000 }, async () => {
  const random = seededRandom(SEED);
  const held: Socket[] = [];
  let peak = 0;
  const sampler = setInterval(() => {
    if (service.child.pid !== undefined && service.child.exitCode === null) peak = Math.max(peak, rssMiB(service.child.pid));
  }, 100);
  const floodPage = await launch(env(), 'attach-files', 'Shot', idsOf('Shot', 'sh020'), 'coord');
  const deadline = Date.now() + SOAK_MS;
  const names = Object.keys(hostile);
  const counts: Record<string, number> = {};
  const client = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const name = random.pick(names);
      counts[name] = (counts[name] ?? 0) + 1;
      await hostile[name]!(random, floodPage, held).catch(() => undefined);
    }
  };

  // The honest user, at the same time: one movie to three Versions, then a zip of them.
  const honest = (async () => {
    const ids = idsOf('Version', 'sh060_comp_v001', 'sh060_comp_v002', 'sh060_comp_v003');
    const page = await launchPatiently('upload-files', 'Version', ids);
    const movie = testBytes(40 * MiB + 3, 99);
    const upload = await uploadThrough(page, 'honest.mov', movie, ids);
    assert.ok(upload.results.every((result: { ok: boolean }) => result.ok), JSON.stringify(upload.results));
    const token = await bearer(site);
    for (const id of ids) {
      const stored = await download(site, token, `/api/v1/entity/versions/${id}/sg_uploaded_movie?alt=original`);
      assert.equal(sha256(stored.body), sha256(movie), `Version ${id} holds the honest bytes`);
    }
    const zipPage = await launchPatiently('download-zip', 'Version', ids);
    const zip = await request((await prepareZip(zipPage, 'fields')).fileUrl);
    const received = Buffer.from(await zip.body.arrayBuffer());
    assert.equal(zip.statusCode, 200);
    assert.equal(received.length, Number(zip.headers['content-length']));
    for (let offset = 0; offset < 3; offset++) assert.ok(received.includes(movie.subarray(offset * 4096, offset * 4096 + 4096)), 'the movie is in the zip');
  })();

  await Promise.all([honest, ...Array.from({ length: CLIENTS }, client)]);
  for (const socket of held) socket.destroy();
  clearInterval(sampler);
  const health = await request(`${service.url}/healthz`);
  await health.body.dump();
  assert.equal(health.statusCode, 200);
  assert.equal(service.child.exitCode, null, `the service exited: ${service.stderr()}`);
  assert.equal(service.lines.filter((line) => line['level'] === 'fatal').length, 0);
  assert.ok(peak > 0 && peak < RSS_BOUND_MIB, `peak RSS ${peak.toFixed(0)} MiB (bound ${RSS_BOUND_MIB})`);
  process.stdout.write(`# soak: peak RSS ${peak.toFixed(0)} MiB; ran ${JSON.stringify(counts)}\n`);
});
