import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, type Dispatcher } from 'undici';
import { csrfToken } from '../src/web/csrf.ts';
import { openBenchSite, sandboxProcess, sandboxReadiness, siteEnv, type BenchSite, type BenchSiteKind } from './bench-sites.ts';

export { inParallel } from './in-parallel.ts';

// What every bench needs around its measurement: the sandbox site, the service and a pass-through as child
// processes that never outlive the bench, free ports, readiness polling, and CPU and RSS figures read from /proc.

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
export const RSS_POLL_MS = 50;

/** The list starting `by` places later (wrapping): each round of a bench starts with a different variant. */
export function rotated<T>(list: readonly T[], by: number): T[] {
  const start = by % list.length;
  return [...list.slice(start), ...list.slice(0, start)];
}

export interface Child {
  name: string;
  process: ChildProcess;
  /** The last few KiB of its stdout and stderr, shown when something goes wrong. */
  tail: () => string;
}

export const children: Child[] = [];
let dataDir: string | null = null;
/** Where each child's whole output is also written (a bench's *_LOG_DIR, see benchSettings), or null. */
let logDir: string | null = null;

/**
 * A new folder for the sandbox's objects under `storageFolder`: removed when the children stop, whatever way the
 * bench ends (a bench that made its own once left GiBs in /dev/shm, which later benches then lacked).
 */
export function makeDataDir(storageFolder: string, name: string): string {
  dataDir = mkdtempSync(join(storageFolder, `ami-${name}-bench-`));
  return dataDir;
}

export function currentDataDir(): string | null {
  return dataDir;
}

/**
 * Compiles the service (with the sandbox) and the pass-throughs to JavaScript, as `npm start` runs them: measured
 * from source, every process would also carry Node's TypeScript stripper, its heap and its start-up work.
 */
export function buildForBench(): void {
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  execFileSync(tsc, ['-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
  execFileSync(tsc, ['-p', join(root, 'bench', 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
}

/**
 * The node flags `npm start` gives the service (its `start` script, e.g. the young generation's size, see
 * docs/decisions/0006-young-generation.md): the service is measured as it runs.
 */
export function serviceNodeFlags(): string[] {
  const { scripts } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [command, ...args] = (scripts['start'] ?? '').split(/\s+/);
  if (command !== 'node') throw new Error(`package.json's start script does not run node: ${scripts['start']}`);
  return args.filter((arg) => arg.startsWith('--'));
}

export { BENCH_SCRIPT } from './bench-sites.ts';
export const BENCH_SESSION_SECRET = 'bench-session-secret-of-at-least-32-characters';

/**
 * Where the sandbox's storage keeps its files: `override` when set, else /dev/shm when it has room for
 * `neededBytes` plus a margin, else the temp folder. In memory, what one variant wrote is not being written back to
 * this machine's disk while the next one runs, which otherwise throttles storage at random and swamps what is
 * measured (real storage is not this machine's disk either).
 */
export function benchStorageFolder(override: string | undefined, neededBytes: number): string {
  if (override) return override;
  try {
    if (existsSync('/dev/shm')) {
      const { bavail, bsize } = statfsSync('/dev/shm');
      if (bavail * bsize > neededBytes + 2 ** 30) return '/dev/shm';
    }
  } catch {
    // no /dev/shm to ask
  }
  return tmpdir();
}

export interface BenchStackOptions {
  /** Names the data folder: ami-<name>-bench-…. */
  name: string;
  /** Where the data folder is made (see benchStorageFolder). */
  storageFolder: string;
  /** --cpu-prof profiles of the sandbox, the service and the pass-through go there. */
  profileDir: string | null;
  /** Node flags for the service and the pass-through (e.g. --trace-gc). */
  relayNodeArgs: readonly string[];
  /** The service's environment beyond what every bench sets. */
  serviceEnv?: Record<string, string>;
  passThrough: { script: string; env?: Record<string, string> };
  /** Which sandbox site: ShotGrid's, or ftrack's (the service then listens on its event hub). */
  site: BenchSiteKind;
  dispatcher: Dispatcher;
}

export interface BenchStack {
  siteUrl: string;
  serviceUrl: string;
  passThroughUrl: string;
  dataDir: string;
  sandbox: Child;
  service: Child;
  passThrough: Child;
  /** The sandbox site, as the bench stores files and launches actions there. */
  site: BenchSite;
}

/**
 * Builds and starts the sandbox site, the service (with `npm start`'s node flags, its site the sandbox) and the
 * pass-through (on V8's defaults) on free ports, and waits until each answers.
 */
export async function startBenchStack(options: BenchStackOptions): Promise<BenchStack> {
  buildForBench();
  const [sitePort, storagePort, servicePort, passThroughPort] = await freePorts(4);
  const siteUrl = `http://127.0.0.1:${sitePort}`;
  const serviceUrl = `http://127.0.0.1:${servicePort}`;
  const passThroughUrl = `http://127.0.0.1:${passThroughPort}`;
  const dataDir = makeDataDir(options.storageFolder, options.name);
  const profileArgs = (name: string) => (options.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${options.profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []);
  const relayArgs = (name: string) => [...options.relayNodeArgs, ...profileArgs(name)];

  // The service's site is the sandbox.
  const sandboxChild = sandboxProcess(options.site, { site: sitePort!, storage: storagePort! }, dataDir, serviceUrl);
  const sandbox = startChild('sandbox', sandboxChild.script, sandboxChild.env, profileArgs('sandbox'));
  const answers = async (url: string, status: number): Promise<boolean> => {
    const response = await request(url, { dispatcher: options.dispatcher });
    await response.body.dump();
    return response.statusCode === status;
  };
  // The site first, as a studio's is: the service's first look at it (and at ftrack's event hub) finds it up.
  const ready = sandboxReadiness(options.site);
  await waitFor(sandbox, () => answers(`${siteUrl}${ready.path}`, ready.status));
  const service = startChild(
    'service',
    'server.js',
    { ...benchServiceEnv(servicePort!, serviceUrl, siteUrl, options.site), ...options.serviceEnv },
    [...serviceNodeFlags(), ...relayArgs('service')],
  );
  const passThrough = startChild('pass-through', options.passThrough.script, { PASS_THROUGH_PORT: String(passThroughPort), ...options.passThrough.env }, relayArgs('pass-through'));

  await waitFor(service, () => answers(`${serviceUrl}/readyz`, 200));
  await waitFor(passThrough, async () => passThrough.tail().includes('listening'));
  const site = await openBenchSite(options.site, siteUrl, serviceUrl, options.dispatcher);
  return { siteUrl, serviceUrl, passThroughUrl, dataDir, sandbox, service, passThrough, site };
}

/** Starts a compiled script (a path under dist/, see buildForBench) as a child process. */
export function startChild(name: string, script: string, env: Record<string, string>, nodeArgs: string[] = []): Child {
  const child = spawn(process.execPath, [...nodeArgs, join(root, 'dist', script)], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const log = logDir ? createWriteStream(join(logDir, `${name}.log`)) : null;
  const keep = (data: Buffer): void => {
    output = (output + data.toString('utf8')).slice(-8192);
    log?.write(data);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const entry: Child = { name, process: child, tail: () => output };
  children.push(entry);
  return entry;
}

export function assertAlive(): void {
  for (const child of children) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) {
      throw new Error(`${child.name} exited (${child.process.exitCode ?? child.process.signalCode}):\n${child.tail()}`);
    }
  }
}

export async function stopChildren(): Promise<void> {
  await Promise.all(
    children.map(async ({ process: child }) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }),
  );
  // Stopped on purpose: a bench may start a new stack after this one (another site).
  children.length = 0;
  removeDataDir();
}

function removeDataDir(): void {
  if (dataDir !== null) rmSync(dataDir, { recursive: true, force: true });
  dataDir = null;
}

/** Last resort, whatever way this process ends: no child outlives it, no stored GiBs stay behind. */
export function killChildrenNow(): void {
  for (const { process: child } of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  removeDataDir();
}
process.on('exit', killChildrenNow);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    killChildrenNow();
    process.exit(130);
  });
}

/** The settings every bench reads from BENCH_<prefix>_*: rounds, profile and log folders, node flags for the relays. */
export function benchSettings(prefix: 'UPLOAD' | 'DOWNLOAD', defaultRounds = 5): { rounds: number; profileDir: string | null; relayNodeArgs: string[]; sites: BenchSiteKind[] } {
  const env = (name: string): string | undefined => process.env[`BENCH_${prefix}_${name}`];
  const rounds = Number(env('ROUNDS') || defaultRounds);
  if (!Number.isInteger(rounds) || rounds < 2) throw new Error(`BENCH_${prefix}_ROUNDS must be a whole number, at least 2`);
  logDir = env('LOG_DIR') || null;
  if (logDir) mkdirSync(logDir, { recursive: true });
  // Every case on each sandbox site in turn (bench-sites.ts).
  const sites = (env('SITES') || 'shotgrid,ftrack').split(',').map((name) => name.trim());
  for (const site of sites) if (site !== 'shotgrid' && site !== 'ftrack') throw new Error(`BENCH_${prefix}_SITES: no site "${site}" (shotgrid, ftrack)`);
  return { rounds, profileDir: env('PROFILE_DIR') || null, relayNodeArgs: (env('RELAY_NODE_ARGS') ?? '').split(/\s+/).filter((arg) => arg !== ''), sites: sites as BenchSiteKind[] };
}

/** A bench's `main`: its title, then `onSite` for each site in turn, then how long it all took. */
export async function onEachSite(title: string, sites: readonly BenchSiteKind[], onSite: (site: BenchSiteKind) => Promise<void>, dispatcher: Dispatcher): Promise<void> {
  const started = performance.now();
  console.log(`${title} (node ${process.version}, ${cpus().length} cores)`);
  try {
    for (const site of sites) await onSite(site);
    console.log(`(bench took ${((performance.now() - started) / 1000).toFixed(0)} s)`);
  } finally {
    await dispatcher.close();
  }
}

/** "met" or "MISSED" for a target; a missed one makes the bench exit non-zero (bench/run.ts then names it). */
export function verdict(met: boolean): string {
  if (!met) process.exitCode = 1;
  return met ? 'met' : 'MISSED';
}

/** Runs a bench's `main` under a watchdog; a failure prints the children's last output, and no child outlives it. */
export async function runBench(name: string, main: () => Promise<void>, watchdogMs: number): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`${name}: gave up after ${watchdogMs / 60_000} minutes`);
    killChildrenNow();
    process.exit(1);
  }, watchdogMs);
  watchdog.unref();
  try {
    await main();
  } catch (error) {
    console.error(`${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    for (const child of children) if (child.tail()) console.error(`--- ${child.name} (last output)\n${child.tail()}`);
    killChildrenNow();
    process.exitCode = 1;
  }
}

/** Runs one measurement; when it fails because a child died, that death is what is reported. */
export async function whileAlive<T>(measure: () => Promise<T>): Promise<T> {
  assertAlive();
  try {
    return await measure();
  } catch (error) {
    assertAlive();
    throw error;
  }
}

/** The CSRF token the action page at `pageUrl` sends with its `purpose` requests (e.g. 'uploads', 'zip'). */
export function pageToken(pageUrl: string, purpose: string): string {
  return csrfToken(BENCH_SESSION_SECRET, new URL(pageUrl).pathname.split('/').pop() ?? '', purpose);
}

/**
 * The service's cap on requests in flight to the site's API (SITE_MAX_CONCURRENT_REQUESTS, which the service
 * inherits from this environment; 8 when unset, the service's default).
 */
export function siteRequestCap(): number {
  return Number(process.env.SITE_MAX_CONCURRENT_REQUESTS || 8);
}

async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const ports = servers.map((server) => (server.address() as AddressInfo).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return ports;
}

/** Polls until `ready` answers true (or the child dies, or 60 s pass). */
export async function waitFor(child: Child, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    assertAlive();
    try {
      if (await ready()) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${child.name} did not become ready within 60 s:\n${child.tail()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// ---- /proc ----

export const clockTicks = (() => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU seconds the process has used (every thread). */
export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / clockTicks;
}

/**
 * The process's CPU seconds by where they went: its main (JavaScript) thread in user and in kernel mode, and
 * every other thread (V8's GC and compiler helpers, libuv's pool) together.
 */
export interface CpuSplit {
  mainUser: number;
  mainSystem: number;
  otherThreads: number;
}

export function cpuSplitOf(pid: number): CpuSplit {
  const split: CpuSplit = { mainUser: 0, mainSystem: 0, otherThreads: 0 };
  for (const task of readdirSync(`/proc/${pid}/task`)) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${task}/stat`, 'utf8');
    } catch {
      continue; // the thread ended
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const user = Number(fields[11]) / clockTicks;
    const system = Number(fields[12]) / clockTicks;
    if (Number(task) === pid) {
      split.mainUser += user;
      split.mainSystem += system;
    } else {
      split.otherThreads += user + system;
    }
  }
  return split;
}

export function cpuSplitSince(pid: number, before: CpuSplit): CpuSplit {
  const now = cpuSplitOf(pid);
  return { mainUser: now.mainUser - before.mainUser, mainSystem: now.mainSystem - before.mainSystem, otherThreads: now.otherThreads - before.otherThreads };
}

/** CPU seconds the whole machine has been busy (every core, every process, steal included). */
export function machineBusySeconds(): number {
  // user nice system idle iowait irq softirq steal: interrupts are left out (loopback traffic is ours, mostly).
  const [user, nice, system, , , , , steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (steal ?? 0)) / clockTicks;
}

/** CPU seconds used so far by this bench's own processes: this one and its children. */
export function benchCpuSeconds(): number {
  const own = process.cpuUsage();
  let total = (own.user + own.system) / 1e6;
  for (const child of children) if (child.process.pid !== undefined && child.process.exitCode === null) total += cpuSecondsOf(child.process.pid);
  return total;
}

export function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

/** Peak RSS growth of a process while it runs: polled every ~50 ms, minus the value at the start. */
export function watchRss(pid: number): { stop(): number } {
  const base = rssOf(pid);
  let peak = base;
  const sample = (): void => {
    try {
      peak = Math.max(peak, rssOf(pid));
    } catch {
      // the process is gone: the transfer fails and says so
    }
  };
  const timer = setInterval(sample, RSS_POLL_MS);
  return {
    stop() {
      clearInterval(timer);
      sample();
      return peak - base;
    },
  };
}


// ---- figures ----

const GiB = 1024 ** 3;

/** What every bench records of a measured run, beside its own timings. */
export interface MeasuredRun {
  /** The files' bytes (what MB/s and s/GiB are of). */
  bytes: number;
  /** The relay's (service's or pass-through's) CPU, null for variants without one. */
  serverCpuSeconds: number | null;
  serverCpuSplit: CpuSplit | null;
  serverRssGrowth: number | null;
  sandboxCpuSeconds: number;
  clientCpuSeconds: number;
  /** Cores other processes kept busy meanwhile. */
  otherCores: number;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export const mbPerSecond = (run: { bytes: number }, seconds: number): number => run.bytes / 1e6 / seconds;
export const perGiB = (seconds: number, run: { bytes: number }): number => seconds / (run.bytes / GiB);

/** The relay's CPU per GiB by thread (medians): "main thread … user + … sys, other threads …". */
export function cpuSplitText(runs: readonly MeasuredRun[]): string {
  const part = (pick: (split: CpuSplit) => number) => median(runs.map((run) => perGiB(pick(run.serverCpuSplit!), run))).toFixed(2);
  return `main thread ${part((s) => s.mainUser)} user + ${part((s) => s.mainSystem)} sys, other threads ${part((s) => s.otherThreads)}`;
}

/**
 * The CPU the whole chain (relay, sandbox, client) spends per GiB (median). On shared cores a CPU-bound chain runs
 * at a speed inversely proportional to it: the ratio that follows is far less disturbed by other load than the
 * wall-clock one.
 */
export function chainCpuPerGiB(runs: readonly MeasuredRun[]): number {
  return median(runs.map((run) => perGiB((run.serverCpuSeconds ?? 0) + run.sandboxCpuSeconds + run.clientCpuSeconds, run)));
}

/** The service's settings in every bench: on `port`, reached at `publicUrl`, against the bench's sandbox site. */
export function benchServiceEnv(port: number, publicUrl: string, siteUrl: string, site: BenchSiteKind = 'shotgrid'): Record<string, string> {
  return {
    PORT: String(port),
    HOST: '127.0.0.1',
    PUBLIC_URL: publicUrl,
    NODE_ENV: 'development',
    ...siteEnv(site, siteUrl),
    SESSION_SECRET: BENCH_SESSION_SECRET,
    // BENCH_LOG_LEVEL=info (with a bench's *_LOG_DIR) keeps the service's timings, e.g. each zip's listedMs and preparedMs.
    LOG_LEVEL: process.env.BENCH_LOG_LEVEL || 'warn',
    SHUTDOWN_GRACE_SECONDS: '2',
    REDIS_URL: '',
  };
}
