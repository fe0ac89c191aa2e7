import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { DEFAULT_CIPHERS } from 'node:tls';
import { Agent, request } from 'undici';
import { ShotgridClient } from '../src/trackers/shotgrid/client.ts';
import { csrfToken } from '../src/web/csrf.ts';
import { PUBLIC_PATH, startNginx, steadyPort, type NginxProxy } from '../test/helpers/nginx.ts';
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.ts';
import {
  benchServiceEnv,
  BENCH_SCRIPT,
  BENCH_SESSION_SECRET,
  benchStorageFolder,
  makeDataDir,
  buildForBench,
  inParallel,
  machineBusySeconds,
  median,
  rotated,
  runBench,
  serviceNodeFlags,
  startChild,
  verdict,
  stopChildren,
  waitFor,
  whileAlive,
  type Child,
} from './bench-kit.ts';

// Production hosting's cost (issue 14): an upload through the page's API (parts 4 at a time, each with its
// Content-MD5) and a zip of the uploaded file, each measured three ways from one run, interleaved over rounds
// (each round starting one variant later): (1) straight to one instance; (2) through nginx with TLS, configured as
// the README's Deployment section (the same block the hosting tests run: request bodies and zips streamed); (3)
// through nginx to two instances sharing Redis, parts alternating between them. Every hop shares this machine's
// cores, so a TLS proxy's CPU is part of what is measured. Targets: (2) and (3) ≥ 0.9 of (1), upload and zip each.
// For the analysis, (2p): the same nginx without TLS, to tell nginx's own cost from TLS's. The client offers TLS
// 1.3's suites in a browser's order (AES-128-GCM first; Node's own default puts AES-256-GCM first).
// BENCH_HOSTING_MIB (256) sets the file's size, BENCH_HOSTING_ROUNDS (5) the rounds.

const MiB = 1024 * 1024;
const TARGET = 0.9;
/** TLS 1.3 suites in the order browsers offer them (the studio's users are browsers). */
const BROWSER_TLS13_ORDER = [
  'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256',
  // TLS 1.2's list as Node has it (a list naming TLS 1.3 suites alone leaves none for the handshake to offer).
  ...DEFAULT_CIPHERS.split(':').filter((suite) => !suite.startsWith('TLS_')),
].join(':');
const PARALLEL_PARTS = 4;
const fileMiB = Number(process.env.BENCH_HOSTING_MIB || 256);
const rounds = Number(process.env.BENCH_HOSTING_ROUNDS || 5);

type VariantName = 'direct' | 'nginx TLS' | 'nginx TLS, 2 × Redis' | 'nginx, plain HTTP';

interface Variant {
  name: VariantName;
  /** Where the client sends its requests (the variant's entry point, with the prefix). */
  base: string;
  /** The service's PUBLIC_URL: what its answers' links start with, rewritten to `base`. */
  publicUrl: string;
}

interface Figures {
  uploadMBps: number;
  zipMBps: number;
  /** Cores the machine kept busy meanwhile (this bench's processes, nginx and Redis included). */
  busyCores: number;
}

interface Setup {
  dispatcher: Agent;
  siteUrl: string;
  versionId: number;
  uploadAmi: number;
  zipAmi: number;
  bytes: Buffer;
  parts: { start: number; end: number; md5: string }[] | null;
}

async function main(): Promise<void> {
  if (!Number.isFinite(fileMiB) || fileMiB < 16) throw new Error('BENCH_HOSTING_MIB must be at least 16');
  if (!Number.isInteger(rounds) || rounds < 2) throw new Error('BENCH_HOSTING_ROUNDS must be a whole number, at least 2');
  buildForBench();
  const bytes = randomBytes(fileMiB * MiB);
  const dataDir = makeDataDir(benchStorageFolder(process.env.BENCH_HOSTING_STORAGE, 3 * rounds * bytes.length), 'hosting');
  const taken: number[] = [];
  const port = async (): Promise<number> => {
    const found = await steadyPort(taken);
    taken.push(found);
    return found;
  };
  const [sitePort, storagePort, onePort, nginxOnePort, twoAPort, twoBPort, nginxTwoPort, plainPort, nginxPlainPort] = [
    await port(), await port(), await port(), await port(), await port(), await port(), await port(), await port(), await port(),
  ];
  const siteUrl = `http://127.0.0.1:${sitePort}`;
  const sandbox = startChild('sandbox', 'sandbox/main.js', {
    SANDBOX_PORT: String(sitePort),
    SANDBOX_STORAGE_PORT: String(storagePort),
    SANDBOX_HOST: '127.0.0.1',
    SANDBOX_DATA_DIR: dataDir,
    SANDBOX_FAULTS: '',
  });
  let redis: RedisServer | undefined;
  const proxies: NginxProxy[] = [];
  try {
    redis = await startRedisServer();
    const publicOne = `https://127.0.0.1:${nginxOnePort}${PUBLIC_PATH}`;
    const publicTwo = `https://127.0.0.1:${nginxTwoPort}${PUBLIC_PATH}`;
    const service = (name: string, servicePort: number, publicUrl: string, extra: Record<string, string> = {}): Child =>
      startChild(
        name,
        'server.js',
        { ...benchServiceEnv(servicePort, publicUrl, siteUrl), TRUST_PROXY: '1', ...extra },
        serviceNodeFlags(),
      );
    const one = service('service', onePort, publicOne);
    const twoA = service('service 2a', twoAPort, publicTwo, { REDIS_URL: redis.url });
    const twoB = service('service 2b', twoBPort, publicTwo, { REDIS_URL: redis.url });
    const publicPlain = `http://127.0.0.1:${nginxPlainPort}${PUBLIC_PATH}`;
    const plain = service('service plain', plainPort, publicPlain);
    proxies.push(await startNginx({ port: nginxOnePort, upstreams: [`127.0.0.1:${onePort}`] }));
    proxies.push(await startNginx({ port: nginxTwoPort, upstreams: [`127.0.0.1:${twoAPort}`, `127.0.0.1:${twoBPort}`] }));
    proxies.push(await startNginx({ port: nginxPlainPort, upstreams: [`127.0.0.1:${plainPort}`], tls: false }));
    const dispatcher = new Agent({ connect: { ca: proxies[0]!.ca + proxies[1]!.ca, ciphers: BROWSER_TLS13_ORDER } });
    const answers = async (url: string, status: number): Promise<boolean> => {
      const response = await request(url, { dispatcher });
      await response.body.dump();
      return response.statusCode === status;
    };
    await waitFor(sandbox, () => answers(`${siteUrl}/api/v1/entity/projects`, 401));
    for (const [child, servicePort] of [[one, onePort], [twoA, twoAPort], [twoB, twoBPort], [plain, plainPort]] as const) {
      await waitFor(child, () => answers(`http://127.0.0.1:${servicePort}${PUBLIC_PATH}/readyz`, 200));
    }

    const script = new ShotgridClient({ siteUrl, scriptName: BENCH_SCRIPT.name, scriptKey: BENCH_SCRIPT.key }).as(null);
    const [version] = await script.find('Version', [['code', 'is', 'sh040_comp_v003']], ['code']);
    if (!version) throw new Error('the sandbox has no Version sh040_comp_v003');
    const items = await script.find('ActionMenuItem', [], ['url']);
    const amiFor = (path: string): number => {
      const item = items.find((candidate) => String(candidate.url).endsWith(path));
      if (!item) throw new Error(`the sandbox has no ${path} menu item`);
      return item.id;
    };
    const setup: Setup = { dispatcher, siteUrl, versionId: version.id, uploadAmi: amiFor('/ami/upload-files'), zipAmi: amiFor('/ami/download-zip'), bytes, parts: null };
    const variants: Variant[] = [
      { name: 'direct', base: `http://127.0.0.1:${onePort}${PUBLIC_PATH}`, publicUrl: publicOne },
      { name: 'nginx TLS', base: publicOne, publicUrl: publicOne },
      { name: 'nginx TLS, 2 × Redis', base: publicTwo, publicUrl: publicTwo },
      { name: 'nginx, plain HTTP', base: publicPlain, publicUrl: publicPlain },
    ];

    console.log(`hosting: a ${fileMiB} MiB upload (parts ${PARALLEL_PARTS} at a time) and its zip, four ways; ${rounds} interleaved rounds after a warm-up`);
    for (const variant of variants) await whileAlive(() => runVariant(setup, variant));
    const results = new Map<VariantName, Figures[]>(variants.map((variant) => [variant.name, []]));
    for (let round = 0; round < rounds; round++) {
      for (const variant of rotated(variants, round)) results.get(variant.name)!.push(await whileAlive(() => runVariant(setup, variant)));
    }
    report(results);
    await dispatcher.close();
  } finally {
    for (const proxy of proxies) await proxy.stop();
    await stopChildren();
    await redis?.stop();
  }
}

/** Launches `ami` on the Version through the variant, as ShotGrid's menu posts it; answers the page's URL there. */
async function launch(setup: Setup, variant: Variant, ami: number, action: string): Promise<{ pageUrl: string; contextId: string }> {
  const signed = await request(`${setup.siteUrl}/sandbox/menu/launch`, {
    method: 'POST',
    dispatcher: setup.dispatcher,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ami_id: ami, login: 'artist', entity_type: 'Version', selected_ids: [setup.versionId], page_ids: [setup.versionId], sort_column: 'code', sort_direction: 'asc', grouping_column: '', session_uuid: randomUUID() }),
  });
  const { fields } = (await signed.body.json()) as { fields: [string, string][] };
  const posted = await request(`${variant.base}/ami/${action}`, {
    method: 'POST',
    dispatcher: setup.dispatcher,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  await posted.body.dump();
  if (posted.statusCode !== 303) throw new Error(`${variant.name}: the launch answered ${posted.statusCode}`);
  const pageUrl = rebase(variant, String(posted.headers.location));
  return { pageUrl, contextId: pageUrl.split('/').pop()! };
}

/** A link the service made (absolute, or a path under its public prefix) as reached through the variant. */
function rebase(variant: Variant, link: string): string {
  const absolute = new URL(link, variant.publicUrl).toString();
  if (!absolute.startsWith(variant.publicUrl)) throw new Error(`${variant.name}: a link outside the service: ${link}`);
  return variant.base + absolute.slice(variant.publicUrl.length);
}

async function call(setup: Setup, url: string, method: 'POST' | 'GET', token: string, body?: unknown): Promise<any> {
  const response = await request(url, {
    method,
    dispatcher: setup.dispatcher,
    headers: { accept: 'application/json', 'x-csrf-token': token, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? null : JSON.stringify(body),
  });
  const text = await response.body.text();
  if (response.statusCode >= 300) throw new Error(`${method} ${new URL(url).pathname.replace(/\/ami\/([^/]+)\/[^/]+/, '/ami/$1/…')}: ${response.statusCode} ${text}`);
  return JSON.parse(text);
}

async function runVariant(setup: Setup, variant: Variant): Promise<Figures> {
  const busyBefore = machineBusySeconds();
  const startedAt = process.hrtime.bigint();

  // The upload, as the page drives it.
  const uploadPage = await launch(setup, variant, setup.uploadAmi, 'upload-files');
  const uploadToken = csrfToken(BENCH_SESSION_SECRET, uploadPage.contextId, 'uploads');
  const uploadStart = process.hrtime.bigint();
  const begun = (await call(setup, `${uploadPage.pageUrl}/uploads`, 'POST', uploadToken, { name: 'sh040_comp_v003.mov', size: setup.bytes.length, targets: [setup.versionId] })).upload as { id: string; partSize: number; partCount: number };
  setup.parts ??= Array.from({ length: begun.partCount }, (_, i) => {
    const start = i * begun.partSize;
    const end = Math.min(setup.bytes.length, start + begun.partSize);
    return { start, end, md5: createHash('md5').update(setup.bytes.subarray(start, end)).digest('base64') };
  });
  const parts = setup.parts;
  await inParallel(parts.length, PARALLEL_PARTS, async (index) => {
    const part = parts[index]!;
    const n = index + 1;
    const response = await request(`${uploadPage.pageUrl}/uploads/${begun.id}/parts/${n}`, {
      method: 'PUT',
      dispatcher: setup.dispatcher,
      headers: { 'content-length': String(part.end - part.start), 'content-md5': part.md5, 'x-csrf-token': uploadToken, accept: 'application/json' },
      body: setup.bytes.subarray(part.start, part.end),
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`${variant.name}: part ${n} answered ${response.statusCode} ${text}`);
  });
  const done = (await call(setup, `${uploadPage.pageUrl}/uploads/${begun.id}/complete`, 'POST', uploadToken)).upload as { results: { ok: boolean }[] };
  if (!done.results.every((result) => result.ok)) throw new Error(`${variant.name}: the upload did not complete: ${JSON.stringify(done.results)}`);
  const uploadSeconds = Number(process.hrtime.bigint() - uploadStart) / 1e9;

  // The zip of what was uploaded: prepared, then its file streamed (timed: the file's GET, first byte to last).
  const zipPage = await launch(setup, variant, setup.zipAmi, 'download-zip');
  const zipToken = csrfToken(BENCH_SESSION_SECRET, zipPage.contextId, 'zip');
  const { download } = (await call(setup, `${zipPage.pageUrl}/zip`, 'POST', zipToken, { kinds: ['fields'] })) as { download: { statusUrl: string; fileUrl: string } };
  for (;;) {
    const status = (await call(setup, rebase(variant, download.statusUrl), 'GET', zipToken)) as { state: string; message: string | null };
    if (status.state === 'ready') break;
    if (status.state !== 'preparing') throw new Error(`${variant.name}: the zip ${status.state}: ${status.message}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const zipStart = process.hrtime.bigint();
  const response = await request(rebase(variant, download.fileUrl), { dispatcher: setup.dispatcher });
  let received = 0;
  for await (const chunk of response.body) received += (chunk as Buffer).length;
  const zipSeconds = Number(process.hrtime.bigint() - zipStart) / 1e9;
  if (response.statusCode !== 200 || received !== Number(response.headers['content-length']) || received < setup.bytes.length) {
    throw new Error(`${variant.name}: the zip answered ${response.statusCode} with ${received} of ${String(response.headers['content-length'])} bytes`);
  }

  const wallSeconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
  return {
    uploadMBps: setup.bytes.length / 1e6 / uploadSeconds,
    zipMBps: received / 1e6 / zipSeconds,
    busyCores: (machineBusySeconds() - busyBefore) / wallSeconds,
  };
}

function report(results: Map<VariantName, Figures[]>): void {
  const direct = results.get('direct')!;
  const fixed = (value: number, digits: number, width: number): string => value.toFixed(digits).padStart(width);
  console.log(`\n${'variant'.padEnd(22)} ${'upload MB/s'.padStart(11)}  every round            ${'zip MB/s'.padStart(9)}  every round            busy cores`);
  for (const [name, figures] of results) {
    const each = (pick: (figure: Figures) => number) => figures.map((figure) => pick(figure).toFixed(0)).join(' ').padEnd(22);
    console.log(
      `${name.padEnd(22)} ${fixed(median(figures.map((figure) => figure.uploadMBps)), 0, 11)}  ${each((figure) => figure.uploadMBps)} ` +
        `${fixed(median(figures.map((figure) => figure.zipMBps)), 0, 9)}  ${each((figure) => figure.zipMBps)} ${fixed(median(figures.map((figure) => figure.busyCores)), 2, 10)}`,
    );
  }
  console.log(`\nratios to direct (medians; per round in brackets), target ≥ ${TARGET}:`);
  for (const [name, figures] of results) {
    if (name === 'direct') continue;
    const analysis = name === 'nginx, plain HTTP';
    for (const [what, pick] of [['upload', (figure: Figures) => figure.uploadMBps], ['zip', (figure: Figures) => figure.zipMBps]] as const) {
      const ratio = median(figures.map(pick)) / median(direct.map(pick));
      const perRound = figures.map((figure, round) => (pick(figure) / pick(direct[round]!)).toFixed(2)).join(' ');
      console.log(`  ${name.padEnd(22)} ${what.padEnd(7)} ${ratio.toFixed(2)}  [${perRound}]  ${analysis ? '(analysis: no target)' : verdict(ratio >= TARGET)}`);
    }
  }
  console.log('\n(busy cores: what the machine as a whole did meanwhile, this bench\'s processes included, over 2 cores)');
}

await runBench('hosting-bench', main, 30 * 60_000);
