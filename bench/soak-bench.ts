import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { seededRandom } from '../test/helpers/abort-harness.ts';
import { honestTransfers, RSS_BOUND_MIB, sampleRss, startHostileClients, startSoakStack, type SoakStack, type Timed } from '../test/helpers/soak.ts';
import { benchCpuSeconds, buildForBench, children, machineBusySeconds, median, runBench, serviceNodeFlags, verdict } from './bench-kit.ts';

// What a soak of hostile clients costs an honest user (issue 13): the honest user's upload (one movie to three
// Versions) and zip (of the three), first alone, then while hostile clients flood the service with everything
// that once froze, exhausted or flushed it — the very scenarios of the soak test (test/helpers/soak.ts). Printed
// side by side: the honest user's throughput (MiB/s, median and spread across rounds) and the service's resident
// memory (sampled every 100 ms: median and max), with the ratio soak ÷ alone.
//
// The service runs from the build with `npm start`'s node flags, as its own process; the sandbox site, the honest
// user and the hostile clients share this process (as in the soak test), and every process here shares this
// machine's cores: a slower honest user during the soak is partly the clients' own CPU, not the service's.
// Target: the service's RSS stays under the soak test's bound (512 MiB) throughout; the exit code is non-zero only
// when it does not, when a transfer arrives damaged, or when the service exits.
// Env: BENCH_SOAK_ROUNDS (rounds alone and rounds during the soak, default 5, at least 2), BENCH_SOAK_MIB (the
// movie, default 40), BENCH_SOAK_CLIENTS (hostile clients, default 8), BENCH_SOAK_SEED (their random choices).

const MiB = 1024 * 1024;
const RSS_SAMPLE_MS = 100;
/** The clients are given this long to get going before the honest user starts. */
const RAMP_UP_MS = 2_000;
const WATCHDOG_MS = 20 * 60_000;

const rounds = Number(process.env.BENCH_SOAK_ROUNDS || 5);
const movieBytes = Number(process.env.BENCH_SOAK_MIB || 40) * MiB + 3;
const clients = Number(process.env.BENCH_SOAK_CLIENTS || 8);
const seed = Number(process.env.BENCH_SOAK_SEED || 13);
if (!Number.isInteger(rounds) || rounds < 2) throw new Error('BENCH_SOAK_ROUNDS must be a whole number, at least 2');
if (!Number.isSafeInteger(movieBytes) || movieBytes < 6 * MiB) throw new Error('BENCH_SOAK_MIB must be a whole number of MiB, at least 6 (more than one part)');
if (!Number.isInteger(clients) || clients < 1) throw new Error('BENCH_SOAK_CLIENTS must be a whole number, at least 1');

type Runs = { upload: Timed; zip: Timed }[];

interface Phase {
  runs: Runs;
  /** The service's RSS, MiB, every RSS_SAMPLE_MS through the phase. */
  rss: number[];
  /** Cores other processes on this machine kept busy meanwhile. */
  otherCores: number;
}

const mibPerSecond = (timed: Timed): number => timed.bytes / MiB / timed.seconds;

/** The honest user's transfers, `rounds` times (each movie from its own seed); every round printed. */
async function honestRounds(stack: SoakStack, label: string, seedBase: number): Promise<Runs> {
  const runs: Runs = [];
  for (let round = 1; round <= rounds; round++) {
    const run = await honestTransfers(stack, { movieBytes, seed: seedBase + round });
    runs.push(run);
    console.log(
      `  ${label.padEnd(16)} round ${round}  upload ${mibPerSecond(run.upload).toFixed(1).padStart(6)} MiB/s (${run.upload.seconds.toFixed(2)} s)  ` +
        `zip ${mibPerSecond(run.zip).toFixed(1).padStart(6)} MiB/s (${run.zip.seconds.toFixed(2)} s)`,
    );
  }
  return runs;
}

/** Runs `work` while sampling the service's memory and what other processes on the machine use. */
async function phase(stack: SoakStack, work: () => Promise<Runs>): Promise<Phase> {
  const rss = sampleRss(stack.service.child.pid!, RSS_SAMPLE_MS);
  const started = performance.now();
  const busy = machineBusySeconds();
  const own = benchCpuSeconds();
  const runs = await work();
  const seconds = (performance.now() - started) / 1000;
  const otherCores = Math.max(0, machineBusySeconds() - busy - (benchCpuSeconds() - own)) / seconds;
  return { runs, rss: rss.stop(), otherCores };
}

function report(alone: Phase, soak: Phase, counts: Record<string, number>): void {
  const rates = (runs: Phase['runs'], pick: 'upload' | 'zip') => runs.map((run) => mibPerSecond(run[pick]));
  const spread = (values: number[]) => `${median(values).toFixed(1)} [${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)}]`;
  const column = (text: string) => text.padEnd(34);
  console.log(`\n${''.padEnd(24)}${column('alone')}${column('during the soak')}soak ÷ alone`);
  for (const pick of ['upload', 'zip'] as const) {
    const [by, during] = [rates(alone.runs, pick), rates(soak.runs, pick)];
    console.log(`${`${pick} MiB/s`.padEnd(24)}${column(spread(by))}${column(spread(during))}${(median(during) / median(by)).toFixed(2)}`);
  }
  const memory = (samples: number[]) => `median ${median(samples).toFixed(0)}, max ${Math.max(...samples).toFixed(0)}`;
  console.log(`${'service RSS MiB'.padEnd(24)}${column(memory(alone.rss))}${column(memory(soak.rss))}${(median(soak.rss) / median(alone.rss)).toFixed(2)} (medians)`);
  console.log(`${'other processes, cores'.padEnd(24)}${column(alone.otherCores.toFixed(2))}${column(soak.otherCores.toFixed(2))}`);
  const peak = Math.max(...alone.rss, ...soak.rss);
  console.log(`\ntarget: the service's RSS stays under ${RSS_BOUND_MIB} MiB (the soak test's bound): max ${peak.toFixed(0)} MiB, ${verdict(peak < RSS_BOUND_MIB)}`);
  console.log(`hostile requests sent by ${clients} clients (seed ${seed}): ${Object.entries(counts).map(([name, count]) => `${name} ${count}`).join(', ')}`);
  console.log(
    `\n${((movieBytes - 3) / MiB).toFixed(0)} MiB movie (+3 bytes) to 3 Versions, then the zip of them (${(alone.runs[0]!.zip.bytes / MiB).toFixed(0)} MiB); ` +
      `MiB/s of the file for the upload (announce → complete), of the zip from the click to its last byte; medians [min–max] of ${rounds} rounds ` +
      `each, after one unmeasured warm-up; every stored copy and every zip checked. RSS from /proc every ${RSS_SAMPLE_MS} ms.`,
  );
}

async function main(): Promise<void> {
  console.log(`the honest user's upload and zip, alone and during a soak of ${clients} hostile clients (node ${process.version}, ${cpus().length} cores)`);
  buildForBench();
  const stack = await startSoakStack({ script: 'dist/server.js', nodeArgs: serviceNodeFlags() });
  // As one of the bench's children: never outlives it, whatever way it ends.
  children.push({ name: 'service', process: stack.service.child, tail: () => stack.service.stderr().slice(-8192) });
  try {
    await honestTransfers(stack, { movieBytes, seed: 1 });
    const alone = await phase(stack, () => honestRounds(stack, 'alone', 100));
    console.log(`  starting ${clients} hostile clients…`);
    let counts: Record<string, number> = {};
    // Sampled from the clients' start to their last request, the ramp-up included.
    const soak = await phase(stack, async () => {
      const hostile = await startHostileClients(stack, { clients, random: seededRandom(seed) });
      try {
        await sleep(RAMP_UP_MS);
        return await honestRounds(stack, 'during the soak', 200);
      } finally {
        counts = await hostile.stop();
      }
    });
    if (stack.service.child.exitCode !== null) throw new Error(`the service exited during the soak: ${stack.service.stderr()}`);
    const health = await request(`${stack.service.url}/healthz`);
    await health.body.dump();
    if (health.statusCode !== 200) throw new Error(`/healthz answered ${health.statusCode} after the soak`);
    report(alone, soak, counts);
  } finally {
    await stack.close();
  }
}

await runBench('soak bench', main, WATCHDOG_MS);
