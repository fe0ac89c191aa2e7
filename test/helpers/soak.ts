import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { abandonAfter, dropMidBody, seededRandom } from './abort-harness.ts';
import { bearer, download, sha256, testBytes } from './sandbox-api.ts';
import { launch, TEST_SESSION_SECRET, type Launched } from './service.ts';
import { siteEnvironment, spawnService, type ServiceProcess } from './service-process.ts';
import { contentMd5, pageApi, uploadThrough } from './upload-client.ts';
import { prepareZip } from './zip-client.ts';

// The soak of issue 13, shared by its test (test/actions/soak.test.ts: the honest user's bytes land whole, memory
// stays bounded, the process never exits) and its bench (bench/soak-bench.ts: the service's memory and the honest
// user's throughput with and without it). Many clients at once launch, upload, cancel and download, and send the
// hostile requests that once froze, exhausted or flushed the service, while one honest user uploads a file to
// three Versions and downloads a zip of them.

const MiB = 1024 * 1024;
/** The service's resident memory may never pass this (it idles at ~120 MiB). */
export const RSS_BOUND_MIB = 512;

export interface SoakTarget {
  /** The sandbox site, in this process: its store names the rows. */
  site: SandboxSite;
  service: { url: string };
}

export interface SoakStack extends SoakTarget {
  service: ServiceProcess;
  close(): Promise<void>;
}

/**
 * The sandbox in this process and the service as its own process (its memory is its own), with a short client
 * idle time (half-sent requests are cut sooner) and a per-user rate the hostile clients meet but the honest user
 * does not. `script` and `nodeArgs` run it otherwise (the bench runs the build with `npm start`'s flags).
 */
export async function startSoakStack(options: { script?: string; nodeArgs?: readonly string[] } = {}): Promise<SoakStack> {
  const site = await startSandboxSite({});
  let service: ServiceProcess;
  try {
    service = await spawnService(siteEnvironment(site, TEST_SESSION_SECRET, { CLIENT_IDLE_SECONDS: '3', RATE_LIMIT_PER_MINUTE: '600' }), options.nodeArgs, options.script);
  } catch (error) {
    await site.close();
    throw error;
  }
  return {
    site,
    service,
    close: async () => {
      await service.stop();
      await site.close();
    },
  };
}

/** The ids of the site's rows of `type` with these codes. */
function idsOf(site: SandboxSite, type: 'Shot' | 'Version', ...codes: string[]): number[] {
  return codes.map((code) => site.store.all(type).find((record) => record.fields.code === code)!.id);
}

// ---- memory ----

function rssMiB(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

/** Samples a process's resident memory (MiB) every `everyMs` until stopped; a process gone is no longer sampled. */
export function sampleRss(pid: number, everyMs = 100): { stop(): number[] } {
  const samples: number[] = [];
  const sample = (): void => {
    try {
      samples.push(rssMiB(pid));
    } catch {
      // it exited: the caller finds out from the process itself
    }
  };
  sample();
  const timer = setInterval(sample, everyMs);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return samples;
    },
  };
}

// ---- the hostile clients ----

type Random = ReturnType<typeof seededRandom>;

/** A request whose head is sent in part and never finished (slow loris); closed when the soak ends. */
function halfSent(url: string): Socket {
  const target = new URL(url);
  const socket = connect(Number(target.port), target.hostname);
  socket.on('error', () => undefined);
  socket.once('connect', () => socket.write(`POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/x-w`));
  return socket;
}

type HostileRequest = (target: SoakTarget, random: Random, floodPage: Launched, held: Socket[]) => Promise<void>;

/** What the hostile clients send, each kind a request (or a few) that once hurt the service. */
export const hostileRequests: Record<string, HostileRequest> = {
  async 'launch body of valueless fields'({ service }) {
    await abandonAfter(`${service.url}/ami/upload-files`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a&'.repeat(2 * MiB) }, 10_000);
  },
  async 'display name of 256 kB'({ site }, _random, page) {
    await pageApi(page, 'POST', '', { name: 'x.mov', size: 10, targets: [idsOf(site, 'Version', 'sh040_comp_v001')[0]], displayName: 'n'.repeat(256 * 1024) });
  },
  async 'form declaring 9e12 bytes, then 48 MiB, then gone'(target, random) {
    const form = await launch(target, 'attach-files', 'Shot', idsOf(target.site, 'Shot', 'sh040'));
    const boundary = 'soakboundary';
    const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="files"; filename="huge.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
    const body = Buffer.concat([head, testBytes(48 * MiB, random.int(1, 99))]);
    const url = `${form.pageUrl}/form-upload?csrf_token=${form.token('form-upload')}`;
    await dropMidBody(url, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, body, sendBytes: body.length, waitMs: 200, declaredLength: 9e12 });
  },
  async 'flood of status GETs'(_target, _random, page) {
    await Promise.all(Array.from({ length: 40 }, () => request(`${page.pageUrl}/uploads`, { headers: { accept: 'application/json' } }).then((response) => response.body.dump())));
  },
  async 'half-sent requests'({ service }, _random, _page, held) {
    for (let index = 0; index < 25; index++) held.push(halfSent(`${service.url}/ami/upload-files`));
  },
  async 'fan-out upload cancelled mid-way'(target, random) {
    const ids = idsOf(target.site, 'Version', 'sh050_anim_v001', 'sh050_anim_v002');
    const page = await launch(target, 'upload-files', 'Version', ids);
    const bytes = testBytes(17 * MiB, random.int(1, 99));
    const begun = await pageApi(page, 'POST', '', { name: 'soak.mov', size: bytes.length, targets: ids });
    if (begun.status !== 201) return;
    const part = bytes.subarray(0, begun.body.upload.partSize);
    const sending = abandonAfter(`${page.pageUrl}/uploads/${begun.body.upload.id}/parts/1`, { method: 'PUT', headers: { 'content-md5': contentMd5(part), 'x-csrf-token': page.token('uploads') }, body: part }, random.int(0, 200));
    await sleep(random.int(0, 100));
    await pageApi(page, 'DELETE', `/${begun.body.upload.id}`);
    await sending;
  },
  async 'zip abandoned'(target, random) {
    const page = await launch(target, 'download-zip', 'Shot', idsOf(target.site, 'Shot', 'sh010', 'sh030'));
    await abandonAfter((await prepareZip(page)).fileUrl, { method: 'GET' }, random.int(0, 150));
  },
};

export interface HostileClients {
  /** Lets each client finish the request it is on, closes the half-sent ones; resolves with how many of each kind were sent. */
  stop(): Promise<Record<string, number>>;
}

/**
 * Starts `clients` hostile clients, each sending a kind of hostile request picked at random, one after the other,
 * until stopped. The status floods go to a launch of their own user ('coord'), never the honest user's.
 */
export async function startHostileClients(target: SoakTarget, options: { clients: number; random: Random }): Promise<HostileClients> {
  const { random } = options;
  const floodPage = await launch(target, 'attach-files', 'Shot', idsOf(target.site, 'Shot', 'sh020'), 'coord');
  const held: Socket[] = [];
  const names = Object.keys(hostileRequests);
  const counts: Record<string, number> = {};
  let stopping = false;
  const client = async (): Promise<void> => {
    while (!stopping) {
      const name = random.pick(names);
      counts[name] = (counts[name] ?? 0) + 1;
      // A refusal or a cut connection is what these requests are for: the service's health is checked elsewhere.
      await hostileRequests[name]!(target, random, floodPage, held).catch(() => undefined);
    }
  };
  const running = Promise.all(Array.from({ length: options.clients }, client));
  return {
    async stop() {
      stopping = true;
      await running;
      for (const socket of held) socket.destroy();
      return counts;
    },
  };
}

// ---- the honest user ----

/** The honest user launches again when the service says it is busy (503), as a person clicks again. */
async function launchPatiently(target: SoakTarget, action: string, type: 'Shot' | 'Version', ids: number[]): Promise<Launched> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(target, action, type, ids, 'artist');
    } catch (error) {
      if (attempt >= 30) throw error;
      await sleep(500);
    }
  }
}

export interface Timed {
  /** What was moved: the file's bytes for the upload (once, whatever its targets), the zip's for the download. */
  bytes: number;
  seconds: number;
}

/**
 * The honest user: one movie (`movieBytes`, its bytes from `seed`) to three Versions, then a zip of them, as the
 * pages do it. Asserts every stored copy and the zip are whole. Times the upload from its announcement to its
 * completion and the zip from the click (prepare) to its last byte; launching and checking are not timed.
 */
export async function honestTransfers(target: SoakTarget, options: { movieBytes?: number; seed?: number } = {}): Promise<{ upload: Timed; zip: Timed }> {
  const { site } = target;
  const ids = idsOf(site, 'Version', 'sh060_comp_v001', 'sh060_comp_v002', 'sh060_comp_v003');
  const movie = testBytes(options.movieBytes ?? 40 * MiB + 3, options.seed ?? 99);
  const page = await launchPatiently(target, 'upload-files', 'Version', ids);
  const uploadStarted = performance.now();
  const upload = await uploadThrough(page, 'honest.mov', movie, ids);
  const uploadSeconds = (performance.now() - uploadStarted) / 1000;
  assert.ok(upload.results.every((result: { ok: boolean }) => result.ok), JSON.stringify(upload.results));
  const token = await bearer(site);
  for (const id of ids) {
    const stored = await download(site, token, `/api/v1/entity/versions/${id}/sg_uploaded_movie?alt=original`);
    assert.equal(sha256(stored.body), sha256(movie), `Version ${id} holds the honest bytes`);
  }

  const zipPage = await launchPatiently(target, 'download-zip', 'Version', ids);
  const zipStarted = performance.now();
  const zip = await request((await prepareZip(zipPage, 'fields')).fileUrl);
  const received = Buffer.from(await zip.body.arrayBuffer());
  const zipSeconds = (performance.now() - zipStarted) / 1000;
  assert.equal(zip.statusCode, 200);
  assert.equal(received.length, Number(zip.headers['content-length']));
  for (let offset = 0; offset < 3; offset++) assert.ok(received.includes(movie.subarray(offset * 4096, offset * 4096 + 4096)), 'the movie is in the zip');
  return { upload: { bytes: movie.length, seconds: uploadSeconds }, zip: { bytes: received.length, seconds: zipSeconds } };
}
