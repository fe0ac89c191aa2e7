import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { getGlobalDispatcher, request, setGlobalDispatcher, type Dispatcher } from 'undici';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { fetchToFile, gate, heldBody, servedBy, storedMovie, tapStorageParts, versionIds, withZipFolder, zipEntries } from '../helpers/hosting.ts';
import { PUBLIC_PATH, startNginx, steadyPort, type NginxProxy } from '../helpers/nginx.ts';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts';
import { sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, TEST_SESSION_SECRET, type Launched } from '../helpers/service.ts';
import { siteEnvironment, spawnService, type ServiceProcess } from '../helpers/service-process.ts';
import { contentMd5 } from '../helpers/upload-client.ts';

// Two instances of the service, each its own process, sharing one Redis, behind nginx round-robin as the README's
// Deployment section configures it. Any instance serves any request: a launch answered by one has its page on the
// other, an upload's parts alternate between them, a zip prepared by one streams from the other. With Redis paused
// both answer a clear 503 instead of hanging, and carry on by themselves when it answers again. SIGTERM to one
// during an upload lets its parts finish while the upload carries on through the other; during a zip the zip
// completes, or, cut by a second signal, fails visibly and resumes through the other instance, byte-identical.

const MiB = 1024 * 1024;
/** How long any one request may take before the test fails instead of waiting: the service must never hang. */
const REQUEST_BOUND_MS = 20_000;

let site: SandboxSite;
let redis: RedisServer;
let proxy: NginxProxy;
let previousDispatcher: Dispatcher;
let publicUrl: string;
/** The two instances, by the port nginx knows them at (a stopped one is started again on the same port). */
const instances: ServiceProcess[] = [];

const addressOf = (instance: ServiceProcess): string => `127.0.0.1:${instance.port}`;
const instanceAt = (address: string): ServiceProcess => {
  const found = instances.find((instance) => addressOf(instance) === address);
  assert.ok(found, `an instance answered at ${address}`);
  return found;
};

async function startInstance(port: number): Promise<ServiceProcess> {
  return spawnService(siteEnvironment(site, TEST_SESSION_SECRET, { PORT: String(port), PUBLIC_URL: publicUrl, TRUST_PROXY: '1', REDIS_URL: redis.url }));
}

/** SIGTERM; resolves once the instance says it stopped accepting (it exits when its requests are done). */
async function terminate(instance: ServiceProcess): Promise<void> {
  instance.child.kill('SIGTERM');
  await instance.logLine(/^shutting down/);
}

/**
 * Starts a stopped instance again on its port, as a supervisor would, and waits (as a rolling restart does before
 * the next instance) until nginx gives it requests again: it skips a server that refused for fail_timeout.
 */
async function restart(instance: ServiceProcess): Promise<void> {
  const again = await startInstance(instance.port);
  instances[instances.indexOf(instance)] = again;
  for (let tries = 1; ; tries++) {
    const answer = await send(`${proxy.url}/healthz`);
    if (answer.status === 200 && answer.by === addressOf(again)) return;
    assert.ok(tries < 200, 'nginx gives the restarted instance requests again');
    await sleep(50);
  }
}

before(async () => {
  [site, redis] = await Promise.all([startSandboxSite({}), startRedisServer()]);
  // Ports outside the ephemeral range: a stopped instance's cannot be taken before it is started again on it.
  const port = await steadyPort();
  const first = await steadyPort([port]);
  const second = await steadyPort([port, first]);
  publicUrl = `https://127.0.0.1:${port}${PUBLIC_PATH}`;
  instances.push(...(await Promise.all([startInstance(first), startInstance(second)])));
  proxy = await startNginx({ port, upstreams: instances.map(addressOf) });
  previousDispatcher = getGlobalDispatcher();
  setGlobalDispatcher(proxy.dispatcher);
});
after(async () => {
  if (previousDispatcher) setGlobalDispatcher(previousDispatcher);
  await proxy?.dispatcher.close();
  await proxy?.stop();
  await Promise.all(instances.map((instance) => instance.stop()));
  await redis?.stop();
  await site?.close();
});

const throughProxy = () => ({ site, service: { url: proxy.url } });

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The instance that answered. */
  by: string;
}

/** One request through the proxy, bounded: a service that hangs fails the test rather than stalling it. */
async function send(url: string, init: { method?: 'GET' | 'POST' | 'PUT'; headers?: Record<string, string>; body?: string | Buffer | Readable } = {}): Promise<Answer> {
  const response = await request(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, body: init.body ?? null, headersTimeout: REQUEST_BOUND_MS, bodyTimeout: REQUEST_BOUND_MS });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text(), by: servedBy(response.headers) };
}

const api = (page: Launched, method: 'GET' | 'POST', path = '', body?: unknown): Promise<Answer> =>
  send(`${page.pageUrl}/uploads${path}`, {
    method,
    headers: { accept: 'application/json', 'x-csrf-token': page.token('uploads'), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });

/**
 * One part, sent again as the page does while an instance goes away (a refused or cut connection, 502/503/504):
 * answers the instance that took it.
 */
async function putPart(page: Launched, uploadId: string, n: number, part: Buffer): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    let answer: Answer | undefined;
    try {
      answer = await send(`${page.pageUrl}/uploads/${uploadId}/parts/${n}`, {
        method: 'PUT',
        headers: { accept: 'application/json', 'content-md5': contentMd5(part), 'x-csrf-token': page.token('uploads') },
        body: part,
      });
      if (answer.status === 200) return answer.by;
    } catch (error) {
      if (!/ECONNRESET|EPIPE|socket|closed/i.test(String((error as { code?: string }).code ?? error))) throw error;
    }
    assert.ok(answer === undefined || [502, 503, 504].includes(answer.status), `part ${n}: ${answer?.status} ${answer?.text}`);
    assert.ok(attempt < 20, `part ${n} kept failing: ${answer?.status} ${answer?.text}`);
    await sleep(50 * attempt);
  }
}

async function beginUpload(page: Launched, name: string, bytes: Buffer, targets: number[]): Promise<{ id: string; partSize: number; partCount: number }> {
  const begun = await api(page, 'POST', '', { name, size: bytes.length, targets });
  assert.equal(begun.status, 201, begun.text);
  return JSON.parse(begun.text).upload;
}

async function complete(page: Launched, uploadId: string): Promise<void> {
  const done = await api(page, 'POST', `/${uploadId}/complete`);
  assert.equal(done.status, 200, done.text);
  const { results } = JSON.parse(done.text).upload as { results: { ok: boolean }[] };
  assert.ok(results.every((result) => result.ok), JSON.stringify(results));
}

const partOf = (bytes: Buffer, partSize: number, n: number): Buffer => bytes.subarray((n - 1) * partSize, n * partSize);

const launchCounts = (): number[] => instances.map((instance) => instance.lines.filter((line) => line['msg'] === 'action launched').length);

/** The instance that logged a launch since `before` (its `action launched` line; logs arrive a moment after answers). */
async function launchedBy(before: number[]): Promise<string> {
  for (let tries = 1; ; tries++) {
    const logged = instances.filter((_instance, index) => launchCounts()[index]! > before[index]!);
    if (logged.length > 0) {
      assert.equal(logged.length, 1, 'exactly one instance took the launch');
      return addressOf(logged[0]!);
    }
    assert.ok(tries < 250, 'an instance logged the launch');
    await sleep(20);
  }
}

/** Prepares the page's zip (kinds: fields) and polls it ready; answers its file's URL and who prepared it. */
async function prepareZip(page: Launched): Promise<{ fileUrl: string; preparedBy: string; lastBy: string }> {
  const posted = await send(`${page.pageUrl}/zip`, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': page.token('zip') },
    body: JSON.stringify({ kinds: ['fields'] }),
  });
  assert.equal(posted.status, 202, posted.text);
  const { statusUrl, fileUrl } = JSON.parse(posted.text).download as { statusUrl: string; fileUrl: string };
  const origin = new URL(page.pageUrl).origin;
  for (let polls = 1; ; polls++) {
    const status = await send(new URL(statusUrl, origin).toString(), { headers: { accept: 'application/json' } });
    const state = JSON.parse(status.text).state as string;
    if (state !== 'preparing') {
      assert.equal(state, 'ready', status.text);
      return { fileUrl: new URL(fileUrl, origin).toString(), preparedBy: posted.by, lastBy: status.by };
    }
    assert.ok(polls < 600, 'the zip was prepared');
    await sleep(50);
  }
}

describe('two instances behind nginx, sharing Redis', { timeout: 170_000 }, () => {
  test('a launch on one, its page on the other, parts alternating, a zip prepared by one and streamed by the other: byte-identical', async () => {
    const code = 'sh040_comp_v003';
    const ids = versionIds(site, code);
    const counts = launchCounts();
    const page = await launch(throughProxy(), 'upload-files', 'Version', ids);
    const launchInstance = await launchedBy(counts);

    const shown = await send(page.pageUrl, { headers: { accept: 'text/html' } });
    assert.equal(shown.status, 200, shown.text);
    assert.notEqual(shown.by, launchInstance, 'round-robin: the page came from the instance that did not take the launch');

    const bytes = testBytes(5 * 8 * MiB - 11, 51);
    const upload = await beginUpload(page, `${code}.mov`, bytes, ids);
    assert.equal(upload.partCount, 5);
    // One at a time, so round-robin alternates them strictly; each instance stores what it took, for the other to complete.
    const takers: string[] = [];
    for (let n = 1; n <= upload.partCount; n++) takers.push(await putPart(page, upload.id, n, partOf(bytes, upload.partSize, n)));
    for (let n = 1; n < takers.length; n++) assert.notEqual(takers[n], takers[n - 1], `parts ${n} and ${n + 1} went to different instances: ${takers.join(' ')}`);
    await complete(page, upload.id);
    assert.equal(sha256(await storedMovie(site, ids[0]!)), sha256(bytes));

    const zipPage = await launch(throughProxy(), 'download-zip', 'Version', ids);
    const zip = await prepareZip(zipPage);
    // Strict round-robin: the next request goes to the instance that did not answer the last one. Make that the
    // instance that did not prepare the zip, so the file streams from a plan it only knows through Redis.
    if (zip.lastBy !== zip.preparedBy) await send(`${proxy.url}/healthz`);
    await withZipFolder(async (folder) => {
      const fetched = await fetchToFile(zip.fileUrl, folder);
      assert.equal(fetched.status, 200);
      assert.notEqual(servedBy(fetched.headers), zip.preparedBy, 'the zip streamed from the instance that did not prepare it');
      assert.equal(fetched.bytes, Number(fetched.headers['content-length']));
      const entries = (await zipEntries(fetched.path)).filter((entry) => entry.name.startsWith(`Version/${code}/`));
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.sha256, sha256(bytes));
    });
  });

  test('with Redis paused both instances answer a clear 503 without hanging, and carry on by themselves when it answers again', async () => {
    const code = 'sh050_anim_v001';
    const ids = versionIds(site, code);
    const page = await launch(throughProxy(), 'upload-files', 'Version', ids);
    const bytes = testBytes(6 * MiB, 52);
    const upload = await beginUpload(page, `${code}.mov`, bytes, ids);
    for (let n = 1; n <= upload.partCount; n++) await putPart(page, upload.id, n, partOf(bytes, upload.partSize, n));
    await complete(page, upload.id);

    redis.pause();
    let answers: Answer[];
    let launchDuringOutage: unknown;
    let readiness: Answer[];
    try {
      // Started together, so round-robin spreads them over both instances.
      [answers, launchDuringOutage, readiness] = await Promise.all([
        Promise.all([
          send(page.pageUrl, { headers: { accept: 'text/html' } }),
          send(page.pageUrl, { headers: { accept: 'text/html' } }),
          api(page, 'GET'),
          api(page, 'GET'),
        ]),
        launch(throughProxy(), 'upload-files', 'Version', ids).then(
          () => null,
          (error: unknown) => error,
        ),
        // Each instance's readiness, as the load balancer asks it: degraded, not out of rotation (docs/decisions/0011).
        Promise.all(instances.map((instance) => send(`${instance.url}/readyz`))),
      ]);
    } finally {
      redis.resume();
    }
    const [pageA, pageB, jsonA, jsonB] = answers;
    for (const shown of [pageA!, pageB!]) {
      assert.equal(shown.status, 503, shown.text);
      assert.match(String(shown.headers['content-type']), /^text\/html/);
      assert.match(shown.text, /cannot reach its shared store/);
      assert.match(shown.text, /Redis is not answering/);
    }
    for (const json of [jsonA!, jsonB!]) {
      assert.equal(json.status, 503, json.text);
      assert.equal(JSON.parse(json.text).error.code, 'store_unavailable');
      assert.ok(Number(json.headers['retry-after']) > 0, 'Retry-After, which the pages wait out');
    }
    assert.deepEqual(new Set(answers.map((answer) => answer.by)), new Set(instances.map(addressOf)), 'both instances answered');
    assert.match(String(launchDuringOutage), /answered 503/, 'a launch during the outage is refused, not left hanging');
    for (const ready of readiness) {
      assert.equal(ready.status, 200, `a shared outage keeps the instance in the load balancer: ${ready.text}`);
      const report = JSON.parse(ready.text);
      assert.equal(report.status, 'degraded');
      assert.equal(report.checks.store.error.code, 'store_unavailable');
      assert.equal(report.checks.site.ok, true);
    }

    // Redis answers again: each instance carries on by itself, and what was stored before is all there.
    let recovered = 0;
    for (let tries = 1; recovered < 2; tries++) {
      const shown = await send(page.pageUrl, { headers: { accept: 'text/html' } });
      recovered = shown.status === 200 ? recovered + 1 : 0;
      assert.ok(tries < 100, `the service did not recover: ${shown.status} ${shown.text.slice(0, 200)}`);
      if (shown.status !== 200) await sleep(100);
    }
    for (let round = 0; round < 2; round++) {
      const listed = await api(page, 'GET');
      assert.equal(listed.status, 200, listed.text);
      const uploads = JSON.parse(listed.text).uploads as { id: string; status: string }[];
      assert.deepEqual(uploads.map(({ id, status }) => ({ id, status })), [{ id: upload.id, status: 'done' }], `as ${listed.by} lists it`);
    }
    assert.equal(sha256(await storedMovie(site, ids[0]!)), sha256(bytes));
    await launch(throughProxy(), 'upload-files', 'Version', ids);
    for (const instance of instances) {
      assert.equal(instance.child.exitCode, null, `${addressOf(instance)} is still running: ${instance.stderr()}`);
      assert.equal(instance.lines.filter((line) => line['level'] === 'fatal').length, 0);
    }
  });

  test('SIGTERM during an upload: the parts in flight there finish, the upload carries on through the other instance', async () => {
    const code = 'sh060_comp_v001';
    const ids = versionIds(site, code);
    const page = await launch(throughProxy(), 'upload-files', 'Version', ids);
    const bytes = testBytes(6 * 8 * MiB - 3, 53);
    const upload = await beginUpload(page, `${code}.mov`, bytes, ids);
    assert.equal(upload.partCount, 6);
    const victim = instances[0]!;

    // Parts 1-4 together (two on each instance), their second halves held until the victim has been told to stop.
    const tap = tapStorageParts(site);
    const hold = gate();
    let inFlight: Promise<Answer>[] = [];
    try {
      inFlight = [1, 2, 3, 4].map((n) => {
        const part = partOf(bytes, upload.partSize, n);
        return send(`${page.pageUrl}/uploads/${upload.id}/parts/${n}`, {
          method: 'PUT',
          headers: { accept: 'application/json', 'content-length': String(part.length), 'content-md5': contentMd5(part), 'x-csrf-token': page.token('uploads') },
          body: heldBody(part, hold.opened),
        });
      });
      // All four are streaming into storage through their instances: SIGTERM lands mid-part.
      await tap.started(4, REQUEST_BOUND_MS, 'parts 1-4 in flight');
      await terminate(victim);
    } finally {
      hold.open();
      tap.restore();
    }
    const answers = await Promise.all(inFlight);
    for (const [index, answer] of answers.entries()) assert.equal(answer.status, 200, `part ${index + 1}: ${answer.text}`);
    assert.ok(answers.some((answer) => answer.by === addressOf(victim)), `the stopping instance had parts in flight: ${answers.map((a) => a.by).join(' ')}`);
    assert.equal(await victim.exited, 0, 'it exited once its parts were done, cutting nothing');

    // The rest, and the completion, through the instance still running.
    const survivor = addressOf(instances[1]!);
    for (const n of [5, 6]) assert.equal(await putPart(page, upload.id, n, partOf(bytes, upload.partSize, n)), survivor);
    await complete(page, upload.id);
    assert.equal(sha256(await storedMovie(site, ids[0]!)), sha256(bytes));
    await restart(victim);
  });

  test('SIGTERM during a zip: it completes; cut by a second signal, it fails visibly and resumes through the other instance', async () => {
    const code = 'sh060_comp_v001';
    const ids = versionIds(site, code);
    const movie = await storedMovie(site, ids[0]!);
    assert.ok(movie.length > 40 * MiB, 'runs after the upload above: a zip bigger than every buffer between the instance and the test');
    const page = await launch(throughProxy(), 'download-zip', 'Version', ids);
    const { fileUrl } = await prepareZip(page);
    const checkZip = async (path: string): Promise<void> => {
      const entries = (await zipEntries(path)).filter((entry) => entry.name.startsWith(`Version/${code}/`));
      assert.equal(entries.length, 1);
      assert.equal(entries[0]!.sha256, sha256(movie));
    };

    await withZipFolder(async (folder) => {
      // 1. The instance streaming it is told to stop before the test reads a byte: the zip still arrives whole.
      const response = await request(fileUrl, { headersTimeout: REQUEST_BOUND_MS });
      const streamer = instanceAt(servedBy(response.headers));
      const length = Number(response.headers['content-length']);
      await terminate(streamer);
      const chunks: Buffer[] = [];
      for await (const chunk of response.body) chunks.push(chunk as Buffer);
      const whole = Buffer.concat(chunks);
      assert.equal(whole.length, length);
      assert.equal(await streamer.exited, 0, 'the zip finished within the grace period');
      await streamer.logLine(/^shutdown: all requests finished/);
      const shutdownAt = streamer.lines.findIndex((line) => /^shutting down/.test(String(line['msg'])));
      const zipDoneAt = streamer.lines.findLastIndex((line) => line['msg'] === 'request done' && /\/file$/.test(String(line['path'])));
      assert.ok(shutdownAt >= 0 && zipDoneAt > shutdownAt, 'the zip was still streaming when the instance was told to stop');
      const path = join(folder, 'whole.zip');
      await writeFile(path, whole);
      await checkZip(path);
      await restart(streamer);

      // 2. Cut by a second signal mid-stream: the download fails (shorter than its Content-Length, never a
      // complete-looking file), then resumes from where it stopped through the other instance.
      const cut = await request(fileUrl, { headersTimeout: REQUEST_BOUND_MS });
      const cutStreamer = instanceAt(servedBy(cut.headers));
      const etag = String(cut.headers['etag']);
      const received: Buffer[] = [];
      const reader = cut.body[Symbol.asyncIterator]();
      const first = await reader.next();
      if (!first.done) received.push(first.value as Buffer);
      await terminate(cutStreamer);
      cutStreamer.child.kill('SIGTERM');
      assert.equal(await cutStreamer.exited, 1, 'a second signal cuts at once; a shutdown that had to cut exits 1');
      let failure: unknown = null;
      try {
        for (let next = await reader.next(); !next.done; next = await reader.next()) received.push(next.value as Buffer);
      } catch (error) {
        failure = error;
      }
      const head = Buffer.concat(received);
      assert.ok(failure !== null, 'the cut download ended in an error, not as a complete file');
      assert.ok(head.length > 0 && head.length < length, `part of it arrived: ${head.length} of ${length}`);

      const rest = await request(fileUrl, { headers: { range: `bytes=${head.length}-`, 'if-range': etag }, headersTimeout: REQUEST_BOUND_MS });
      assert.equal(rest.statusCode, 206);
      assert.notEqual(servedBy(rest.headers), addressOf(cutStreamer));
      assert.equal(rest.headers['content-range'], `bytes ${head.length}-${length - 1}/${length}`);
      const tail = Buffer.from(await rest.body.arrayBuffer());
      const resumed = join(folder, 'resumed.zip');
      await writeFile(resumed, Buffer.concat([head, tail]));
      assert.equal(head.length + tail.length, length);
      await checkZip(resumed);
      assert.equal(sha256(Buffer.concat([head, tail])), sha256(whole), 'byte for byte the uninterrupted zip');
    });
  });
});
