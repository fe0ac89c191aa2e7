import { randomBytes } from 'node:crypto';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { Agent, request } from 'undici';
import {
  BENCH_SCRIPT,
  benchCpuSeconds,
  benchSettings,
  benchStorageFolder,
  chainCpuPerGiB,
  clockTicks,
  cpuSecondsOf,
  cpuSplitOf,
  cpuSplitSince,
  cpuSplitText,
  currentDataDir,
  inParallel,
  launchAction,
  machineBusySeconds,
  mbPerSecond,
  median,
  perGiB,
  rotated,
  RSS_POLL_MS,
  runBench,
  startBenchStack,
  stopChildren,
  watchRss,
  whileAlive,
  type BenchStack,
  type MeasuredRun,
} from './bench-kit.ts';

// A zip download through the service, measured side by side with what it is compared to (issue 5), in one run,
// for (a) 8 files × 256 MiB and (b) 2,000 files × 256 KiB, attachments of a few Shots at the sandbox site:
//
//   (1) service       GET <page>/zip?kinds=attachments on the real service (`node dist/server.js` with the node
//                     flags of `npm start`; every process here runs from the build), launched on the Shots from the
//                     sandbox's menu: it lists the files, plans the zip, asks the site for each file's signed URL
//                     and streams the archive (4 sources ahead);
//   (2) pass-through  the same files, in the same order, through a minimal pass-through
//                     (bench/download-pass-through.ts, plain `node` with V8's defaults): given each file's path at
//                     the site and a token, it opens each source as the protocol requires, the site's 302
//                     (`…/attachments/<id>/this_file?alt=original`, not followed) then its signed Location, the same
//                     number ahead as the service, and pipes the bodies, in order, into one response; nothing else
//                     (no listing, no zip headers, no CRC-32, no manifest, no retries, no status);
//   (2b)              for the analysis: the same pass-through handed the signed URLs instead, asked of the site by
//                     this process before its stream (4 at a time), so that the lookups fall outside its timing;
//   (3) direct        the same URLs, asked the same way, then fetched by this process straight from storage, 4 at a
//                     time;
//   (4) one-by-one    what a script does: each file's URL asked, then its bytes fetched, one file at a time (the
//                     lookups timed apart from the bytes, and counted in its end-to-end figure).
//
// Every hop shares this machine's cores, so a pass-through can never match a direct download: (2) is the limit the
// service is held against (target: service ÷ pass-through >= 0.9), with the service's CPU seconds per GiB beside
// the pass-through's and the service's peak RSS growth (target <= 150 MiB). The limit opens its sources the way
// the service must: signed URLs expire within minutes, so each is asked of the site just before its file is read.
// (2b) shows what the lookups cost: with 2,000 small files, most of the difference. MB/s are of the files' bytes (the zip adds headers and a manifest). Figures are printed, never
// asserted: the exit code is non-zero only when a transfer fails or delivers the wrong number of bytes.
//
// Processes: the sandbox site (`node dist/sandbox/main.js`, its storage in /dev/shm or a temp folder), the service, the
// pass-through, and this client, which discards what it receives and counts it. The files are uploaded to the
// sandbox through its REST upload API (as a script would), before anything is timed. Variants run interleaved after
// an unmeasured warm-up, each round starting one variant later (1,2,2b,3,4, then 2,2b,3,4,1, …) so that none always
// follows the same one; the median of each is reported, with every run's figure so the noise shows.
//
// Env: BENCH_DOWNLOAD_ROUNDS (default 5, at least 2), BENCH_DOWNLOAD_CASES (default "a,b"), BENCH_DOWNLOAD_A_MIB
// (size of (a)'s files, default 256), BENCH_DOWNLOAD_B_FILES (number of (b)'s files, default 2000),
// BENCH_DOWNLOAD_PROFILE_DIR (run the service, the pass-through and the sandbox with --cpu-prof, profiles written there),
// BENCH_DOWNLOAD_DATA_DIR (where the sandbox's storage keeps its files; /dev/shm by default when it has room),
// BENCH_DOWNLOAD_RELAY_NODE_ARGS (node flags for the service and the pass-through, e.g. --trace-gc),
// BENCH_DOWNLOAD_LOG_DIR (every child's output also written there, as <name>.log).

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const AHEAD = 4;
const TARGET_RATIO = 0.9;
const TARGET_RSS_MIB = 150;
const WATCHDOG_MS = 45 * 60_000;
/** Other processes busier than this during a run make its figures suspect (this machine may be shared). */
const BUSY_CORES = 0.2;

const { rounds, profileDir, relayNodeArgs } = benchSettings('DOWNLOAD');
const caseNames = (process.env.BENCH_DOWNLOAD_CASES || 'a,b').split(',').map((name) => name.trim());
const aFileBytes = Number(process.env.BENCH_DOWNLOAD_A_MIB || 256) * MiB;
const bFileCount = Number(process.env.BENCH_DOWNLOAD_B_FILES || 2000);
if (!Number.isSafeInteger(aFileBytes) || aFileBytes < MiB) throw new Error('BENCH_DOWNLOAD_A_MIB must be a whole number of MiB, at least 1');
if (!Number.isInteger(bFileCount) || bFileCount < 8) throw new Error('BENCH_DOWNLOAD_B_FILES must be a whole number, at least 8');

interface BenchCase {
  name: string;
  label: string;
  shots: number;
  filesPerShot: number;
  fileBytes: number;
  /** Uploads to the sandbox at once while preparing. */
  uploadParallel: number;
}

const CASES: Record<string, BenchCase> = {
  a: { name: 'a', label: `(a) 8 x ${aFileBytes / MiB} MiB`, shots: 2, filesPerShot: 4, fileBytes: aFileBytes, uploadParallel: 2 },
  b: { name: 'b', label: `(b) ${(4 * Math.ceil(bFileCount / 4)).toLocaleString('en')} x 256 KiB`, shots: 4, filesPerShot: Math.ceil(bFileCount / 4), fileBytes: 256 * KiB, uploadParallel: 8 },
};
for (const name of caseNames) if (!CASES[name]) throw new Error(`BENCH_DOWNLOAD_CASES: no case "${name}" (a, b)`);

type Variant = 'service' | 'pass-through' | 'pass-through-handed-urls' | 'direct' | 'one-by-one';
const VARIANTS: readonly Variant[] = ['service', 'pass-through', 'pass-through-handed-urls', 'direct', 'one-by-one'];
const LABELS: Record<Variant, string> = {
  service: '(1) service',
  'pass-through': '(2) minimal pass-through',
  'pass-through-handed-urls': '(2b) … handed signed URLs',
  direct: '(3) direct, 4 at a time',
  'one-by-one': '(4) one-by-one',
};

// ---- the site, the service, the pass-through ----

const agent = new Agent({ keepAliveTimeout: 60_000, connections: 16 });

type Setup = BenchStack;

function start(): Promise<Setup> {
  return startBenchStack({
    name: 'download',
    storageFolder: benchStorageFolder(process.env.BENCH_DOWNLOAD_DATA_DIR, caseNames.reduce((sum, name) => sum + caseBytes(CASES[name]!), 0) + GiB),
    profileDir,
    relayNodeArgs,
    passThrough: { script: 'bench/download-pass-through.js', env: { PASS_THROUGH_AHEAD: String(AHEAD) } },
    menuItem: '/ami/download-zip',
    dispatcher: agent,
  });
}

const caseBytes = (benchCase: BenchCase): number => benchCase.shots * benchCase.filesPerShot * benchCase.fileBytes;

// ---- the files: uploaded through the site's REST API, as a script would ----

interface SourceFile {
  attachmentId: number;
  name: string;
  size: number;
}

interface Prepared {
  benchCase: BenchCase;
  shotIds: number[];
  /** In the service's order: Shot by Shot as selected, then by name. */
  files: SourceFile[];
  bytes: number;
}

async function prepare(setup: Setup, benchCase: BenchCase, data: Buffer): Promise<Prepared> {
  const started = performance.now();
  const shotIds: number[] = [];
  for (let s = 1; s <= benchCase.shots; s++) {
    const shot = await setup.script.create('Shot', {
      code: `bench_${benchCase.name}_${String(s).padStart(2, '0')}`,
      description: `download bench ${benchCase.label}`,
      project: { type: 'Project', id: setup.demoProjectId },
    });
    shotIds.push(shot.id);
  }
  const uploads = shotIds.flatMap((shotId, s) =>
    Array.from({ length: benchCase.filesPerShot }, (_, f) => ({ shotId, name: `bench_${benchCase.name}_${s + 1}_${String(f + 1).padStart(4, '0')}.bin` })),
  );
  await inParallel(uploads.length, benchCase.uploadParallel, async (index) => {
    const { shotId, name } = uploads[index]!;
    const begun = await setup.script.beginUpload({ type: 'Shot', id: shotId, field: null }, name, false);
    const put = await request(begun.uploadUrl, {
      method: 'PUT',
      dispatcher: agent,
      headers: { 'content-length': String(benchCase.fileBytes) },
      body: data.subarray(0, benchCase.fileBytes),
    });
    const text = await put.body.text();
    if (put.statusCode !== 200) throw new Error(`storage refused ${name}: ${put.statusCode} ${text.slice(0, 300)}`);
    await setup.script.completeUpload(begun.completePath, begun.info, {});
  });

  const found = await setup.script.find('Attachment', [['attachment_links', 'in', shotIds.map((id) => ({ type: 'Shot', id }))]], ['filename', 'file_size', 'attachment_links'], {
    sort: 'id',
  });
  const position = new Map(shotIds.map((id, index) => [id, index]));
  const shotOf = (attachment: (typeof found)[number]) => ((attachment.attachment_links as { id: number }[])[0]?.id ?? -1);
  const files = found
    .map((attachment) => ({ attachment, shot: position.get(shotOf(attachment)) ?? -1 }))
    .sort((x, y) => x.shot - y.shot || String(x.attachment.filename).localeCompare(String(y.attachment.filename)))
    .map(({ attachment }) => ({ attachmentId: attachment.id, name: String(attachment.filename), size: Number(attachment.file_size) }));
  if (files.length !== uploads.length || files.some((file) => file.size !== benchCase.fileBytes)) {
    throw new Error(`${benchCase.label}: the site lists ${files.length} attachments of the Shots, expected ${uploads.length} of ${benchCase.fileBytes} bytes`);
  }
  console.log(
    `  ${benchCase.label}: ${files.length} files (${(caseBytes(benchCase) / MiB).toFixed(0)} MiB) uploaded to ${benchCase.shots} Shots through the REST API ` +
      `in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  return { benchCase, shotIds, files, bytes: caseBytes(benchCase) };
}

// ---- one measured download ----

/** Relay CPU over the stream; sandbox CPU over the lookups and the stream; other cores during the stream. */
interface Run extends MeasuredRun {
  variant: Variant;
  /** The client's URL lookups at the site, before the stream (0 for the service, which looks up inside). */
  lookupSeconds: number;
  /** The transfer: for the service its whole request (listing, planning, lookups, zip); for the others the bytes. */
  streamSeconds: number;
  /** The service's time to the response headers: listing and planning. */
  headersSeconds: number | null;
}

const endToEnd = (run: Run): number => run.lookupSeconds + run.streamSeconds;

/** Reads a body to its end, discarding it; resolves with the byte count. */
async function drain(body: AsyncIterable<Uint8Array>): Promise<number> {
  let bytes = 0;
  for await (const chunk of body) bytes += chunk.length;
  return bytes;
}

/** A token for the site's API as the script acting as `login` (sudo), as the service holds one. */
async function accessToken(setup: Setup, login: string): Promise<string> {
  const response = await request(`${setup.siteUrl}/api/v1/auth/access_token`, {
    method: 'POST',
    dispatcher: agent,
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: BENCH_SCRIPT.name, client_secret: BENCH_SCRIPT.key, scope: `sudo_as_login:${login}` }).toString(),
  });
  const grant = (await response.body.json()) as { access_token?: string };
  if (response.statusCode !== 200 || typeof grant.access_token !== 'string') throw new Error(`the site refused a token: ${response.statusCode}`);
  return grant.access_token;
}

/** Asks the site for each file's signed storage URL (the 302's Location), `parallel` at a time, as the script. */
async function lookUp(setup: Setup, files: readonly SourceFile[], parallel: number): Promise<string[]> {
  const urls: string[] = new Array(files.length);
  await inParallel(files.length, parallel, async (index) => {
    urls[index] = await setup.script.locate(`/api/v1/entity/attachments/${files[index]!.attachmentId}/this_file`, { alt: 'original' });
  });
  return urls;
}

async function fetchFile(url: string, size: number): Promise<number> {
  const response = await request(url, { dispatcher: agent });
  if (response.statusCode !== 200) throw new Error(`storage answered ${response.statusCode}: ${(await response.body.text()).slice(0, 300)}`);
  const bytes = await drain(response.body);
  if (bytes !== size) throw new Error(`storage sent ${bytes} bytes of a ${size}-byte file`);
  return bytes;
}

function runVariant(setup: Setup, prepared: Prepared, variant: Variant, pageUrl: string): Promise<Run> {
  return whileAlive(() => measured(setup, prepared, variant, pageUrl));
}

async function measured(setup: Setup, prepared: Prepared, variant: Variant, pageUrl: string): Promise<Run> {
  const { files, bytes } = prepared;
  const server = variant === 'service' ? setup.service : variant.startsWith('pass-through') ? setup.passThrough : null;
  const serverPid = server?.process.pid ?? null;
  const sandbox0 = cpuSecondsOf(setup.sandbox.process.pid!);
  const client0 = process.cpuUsage();

  // The URLs, for the variants that are given them.
  const lookupStarted = performance.now();
  const urls = variant === 'service' || variant === 'pass-through' ? [] : await lookUp(setup, files, variant === 'one-by-one' ? 1 : AHEAD);
  const lookupSeconds = (performance.now() - lookupStarted) / 1000;
  let streamId: string | null = null;
  if (variant.startsWith('pass-through')) {
    const list =
      variant === 'pass-through-handed-urls'
        ? { urls, total: bytes }
        : {
            paths: files.map((file) => `/api/v1/entity/attachments/${file.attachmentId}/this_file?alt=original`),
            site: setup.siteUrl,
            token: await accessToken(setup, 'artist'),
            total: bytes,
          };
    const posted = await request(`${setup.passThroughUrl}/streams`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(list),
    });
    if (posted.statusCode !== 201) throw new Error(`the pass-through refused the list: ${posted.statusCode} ${await posted.body.text()}`);
    streamId = ((await posted.body.json()) as { id: string }).id;
  }

  const rss = serverPid === null ? null : watchRss(serverPid);
  const server0 = serverPid === null ? 0 : cpuSecondsOf(serverPid);
  const split0 = serverPid === null ? null : cpuSplitOf(serverPid);
  const machine0 = machineBusySeconds();
  const bench0 = benchCpuSeconds();
  const streamStarted = performance.now();
  let headersSeconds: number | null = null;

  switch (variant) {
    case 'service': {
      const response = await request(`${pageUrl}/zip?kinds=attachments`, { dispatcher: agent });
      headersSeconds = (performance.now() - streamStarted) / 1000;
      if (response.statusCode !== 200) throw new Error(`service: the zip answered ${response.statusCode}: ${(await response.body.text()).slice(0, 300)}`);
      const announced = Number(response.headers['content-length']);
      const received = await drain(response.body);
      if (received !== announced) throw new Error(`service: ${received} bytes received, ${announced} announced`);
      if (received < bytes) throw new Error(`service: a ${received}-byte zip cannot hold ${bytes} bytes of files`);
      break;
    }
    case 'pass-through':
    case 'pass-through-handed-urls': {
      const response = await request(`${setup.passThroughUrl}/streams/${streamId}`, { dispatcher: agent });
      if (response.statusCode !== 200) throw new Error(`${variant}: ${response.statusCode}`);
      const received = await drain(response.body);
      if (received !== bytes) throw new Error(`${variant}: ${received} bytes received, ${bytes} expected`);
      break;
    }
    case 'direct':
    case 'one-by-one': {
      let received = 0;
      await inParallel(files.length, variant === 'direct' ? AHEAD : 1, async (index) => {
        const got = await fetchFile(urls[index]!, files[index]!.size);
        received += got;
      });
      if (received !== bytes) throw new Error(`${variant}: ${received} bytes received, ${bytes} expected`);
      break;
    }
  }

  const streamSeconds = (performance.now() - streamStarted) / 1000;
  const otherCpuSeconds = machineBusySeconds() - machine0 - (benchCpuSeconds() - bench0);
  const client = process.cpuUsage(client0);
  return {
    variant,
    bytes,
    lookupSeconds,
    streamSeconds,
    headersSeconds,
    serverCpuSeconds: serverPid === null ? null : cpuSecondsOf(serverPid) - server0,
    serverCpuSplit: serverPid === null || split0 === null ? null : cpuSplitSince(serverPid, split0),
    serverRssGrowth: rss?.stop() ?? null,
    sandboxCpuSeconds: cpuSecondsOf(setup.sandbox.process.pid!) - sandbox0,
    clientCpuSeconds: (client.user + client.system) / 1e6,
    otherCores: Math.max(0, otherCpuSeconds / streamSeconds),
  };
}

// ---- figures ----

function report(prepared: Prepared, runs: Run[]): void {
  const of = (variant: Variant) => runs.filter((run) => run.variant === variant);
  const rate = (variant: Variant) => median(of(variant).map((run) => mbPerSecond(run, run.streamSeconds)));
  const e2eRate = (variant: Variant) => median(of(variant).map((run) => mbPerSecond(run, endToEnd(run))));
  const fixed = (value: number, digits: number, width: number) => value.toFixed(digits).padStart(width);

  console.log(`\n${prepared.benchCase.label}: ${(prepared.bytes / MiB).toFixed(0)} MiB of files`);
  console.log(
    `${'variant'.padEnd(26)} ${'MB/s'.padStart(6)}  ${'runs (MB/s)'.padEnd(18)} ${'stream s'.padStart(8)} ${'lookup s'.padStart(8)} ${'e2e MB/s'.padStart(8)}` +
      `  ${'relay CPU'.padStart(9)} ${'relay RSS+'.padStart(10)}  ${'site CPU'.padStart(8)} ${'client CPU'.padStart(10)}`,
  );
  console.log(`${''.padEnd(26)} ${'stream'.padStart(6)}  ${''.padEnd(18)} ${''.padStart(8)} ${''.padStart(8)} ${''.padStart(8)}  ${'s/GiB'.padStart(9)} ${'MiB (max)'.padStart(10)}  ${'s/GiB'.padStart(8)} ${'s/GiB'.padStart(10)}`);
  for (const variant of VARIANTS) {
    const list = of(variant);
    const relayCpu = list[0]!.serverCpuSeconds === null ? '—' : fixed(median(list.map((run) => perGiB(run.serverCpuSeconds!, run))), 2, 9);
    const relayRss = list[0]!.serverRssGrowth === null ? '—' : fixed(Math.max(...list.map((run) => run.serverRssGrowth!)) / MiB, 1, 10);
    console.log(
      `${LABELS[variant].padEnd(26)} ${fixed(rate(variant), 0, 6)}  ${list.map((run) => mbPerSecond(run, run.streamSeconds).toFixed(0)).join(', ').padEnd(18)} ` +
        `${fixed(median(list.map((run) => run.streamSeconds)), 2, 8)} ${fixed(median(list.map((run) => run.lookupSeconds)), 2, 8)} ${fixed(e2eRate(variant), 0, 8)}  ` +
        `${relayCpu.padStart(9)} ${relayRss.padStart(10)}  ${fixed(median(list.map((run) => perGiB(run.sandboxCpuSeconds, run))), 2, 8)} ` +
        `${fixed(median(list.map((run) => perGiB(run.clientCpuSeconds, run))), 2, 10)}`,
    );
  }

  const paired = (other: Variant, time: (run: Run) => number) =>
    of('service')
      .map((run, i) => {
        const against = of(other)[i];
        return against ? (time(against) / run.streamSeconds).toFixed(2) : '?';
      })
      .join(', ');
  const service = rate('service');
  const ratio = service / rate('pass-through');
  console.log(`\nratios (medians; per round in brackets):`);
  console.log(
    `  service ÷ pass-through          ${ratio.toFixed(3)}  [${paired('pass-through', (run) => run.streamSeconds)}]  target >= ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? 'met' : 'MISSED'}`,
  );
  console.log(
    `  service ÷ (2b), URLs handed     ${(service / rate('pass-through-handed-urls')).toFixed(3)}  [${paired('pass-through-handed-urls', (run) => run.streamSeconds)}];  ` +
      `counting the lookups made for it ${(service / e2eRate('pass-through-handed-urls')).toFixed(3)}`,
  );
  console.log(`  service ÷ direct, 4 at a time   ${(service / rate('direct')).toFixed(2)}  [${paired('direct', (run) => run.streamSeconds)}];  counting its lookups ${(service / e2eRate('direct')).toFixed(2)}`);
  console.log(`  speed-up over one-by-one        ×${(service / e2eRate('one-by-one')).toFixed(2)}  [${paired('one-by-one', endToEnd)}]  (its lookups counted, as a script makes them)`);
  const cpu = (variant: Variant) => median(of(variant).map((run) => perGiB(run.serverCpuSeconds!, run)));
  const serviceCpu = cpu('service');
  const passCpu = cpu('pass-through');
  console.log(
    `  CPU s/GiB, service vs pass-through: ${serviceCpu.toFixed(2)} vs ${passCpu.toFixed(2)} (×${(serviceCpu / passCpu).toFixed(2)}, +${(serviceCpu - passCpu).toFixed(2)} s/GiB); ` +
      `(2b) ${cpu('pass-through-handed-urls').toFixed(2)}`,
  );
  console.log(`    service:      ${cpuSplitText(of('service'))}`);
  console.log(`    pass-through: ${cpuSplitText(of('pass-through'))}`);
  console.log(`    (2b):         ${cpuSplitText(of('pass-through-handed-urls'))}`);
  const chainCpu = (variant: Variant) => chainCpuPerGiB(of(variant));
  console.log(
    `    whole chain (relay + site/storage + client, lookups included): ${chainCpu('service').toFixed(2)} vs ${chainCpu('pass-through').toFixed(2)} s/GiB → ` +
      `service ÷ pass-through expected from CPU alone ${(chainCpu('pass-through') / chainCpu('service')).toFixed(2)}`,
  );
  console.log(`  service: response headers (listing + planning) after ${median(of('service').map((run) => run.headersSeconds!)).toFixed(2)} s (median)`);
  const rssPeak = Math.max(...of('service').map((run) => run.serverRssGrowth!)) / MiB;
  console.log(`  service peak RSS growth         ${rssPeak.toFixed(1)} MiB  target <= ${TARGET_RSS_MIB} MiB: ${rssPeak <= TARGET_RSS_MIB ? 'met' : 'MISSED'}`);
  const busy = runs.filter((run) => run.otherCores > BUSY_CORES);
  if (busy.length > 0) {
    console.log(`  NOTE: other processes used more than ${BUSY_CORES} cores during ${busy.length} of ${runs.length} runs: those figures are noisy.`);
  }
}

// ---- main ----

async function main(): Promise<void> {
  const benchStarted = performance.now();
  console.log(`zip download through the service vs a minimal pass-through, direct and one-by-one (node ${process.version}, ${cpus().length} cores)`);
  const setup = await start();
  try {
    console.log(`storage's files in ${dirname(currentDataDir()!)}; uploading the files…`);
    const data = randomBytes(Math.max(...caseNames.map((name) => CASES[name]!.fileBytes)));
    const prepared: Prepared[] = [];
    for (const name of caseNames) prepared.push(await prepare(setup, CASES[name]!, data));
    const pages = new Map<Prepared, string>();
    for (const item of prepared) {
      const pageUrl = await launchAction(setup, agent, 'Shot', item.shotIds);
      const started = performance.now();
      const page = await request(pageUrl, { dispatcher: agent });
      await page.body.dump();
      if (page.statusCode !== 200) throw new Error(`the download page answered ${page.statusCode}`);
      console.log(`  ${item.benchCase.label}: the page listing ${item.files.length} files rendered in ${((performance.now() - started) / 1000).toFixed(2)} s`);
      pages.set(item, pageUrl);
    }

    // Warm-up, unmeasured: each variant once on each case (JIT, connections, the site's caches, the heap).
    for (const item of prepared) {
      console.log(`warming up on ${item.benchCase.label}…`);
      for (const variant of VARIANTS) await runVariant(setup, item, variant, pages.get(item)!);
    }

    const allRuns = new Map<Prepared, Run[]>(prepared.map((item) => [item, []]));
    for (let round = 1; round <= rounds; round++) {
      for (const item of prepared) {
        for (const variant of rotated(VARIANTS, round - 1)) {
          const run = await runVariant(setup, item, variant, pages.get(item)!);
          allRuns.get(item)!.push(run);
          console.log(
            `  round ${round} ${item.benchCase.label.padEnd(20)} ${LABELS[variant].padEnd(26)} ${mbPerSecond(run, run.streamSeconds).toFixed(0).padStart(5)} MB/s ` +
              `(stream ${run.streamSeconds.toFixed(2)} s${run.lookupSeconds > 0 ? `, lookups ${run.lookupSeconds.toFixed(2)} s` : ''}; ` +
              `other processes used ${run.otherCores.toFixed(2)} cores)`,
          );
        }
      }
    }
    for (const item of prepared) report(item, allRuns.get(item)!);
    console.log(
      `\n${rounds} interleaved rounds, medians; ${AHEAD} sources ahead (service, pass-through) or in flight (direct); CPU from /proc (${clockTicks} ticks/s), ` +
        `RSS polled every ${RSS_POLL_MS} ms; every transfer's byte count checked. (bench took ${((performance.now() - benchStarted) / 1000).toFixed(0)} s)`,
    );
  } finally {
    await setup.scriptClient.close();
    await agent.close();
    await stopChildren();
  }
}

await runBench('download bench', main, WATCHDOG_MS);
