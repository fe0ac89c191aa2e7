import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

// What every bench needs around its measurement: child processes (the sandbox, the service, a pass-through)
// that never outlive the bench, free ports, readiness polling, and CPU and RSS figures read from /proc.

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
let logDir: string | null = null;

/** Where each child's whole output is also written (a bench's *_LOG_DIR), or null. */
export function setLogDir(dir: string | null): void {
  logDir = dir;
}

/** The folder the sandbox keeps its objects in: removed when the children stop, whatever way the bench ends. */
export function setDataDir(dir: string): string {
  dataDir = dir;
  return dir;
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

export async function freePorts(count: number): Promise<number[]> {
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

