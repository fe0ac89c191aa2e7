import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { seededRandom } from '../helpers/abort-harness.ts';
import { honestTransfers, RSS_BOUND_MIB, sampleRss, startHostileClients, startSoakStack, type SoakStack } from '../helpers/soak.ts';

// A bounded soak (issue 13): for a fixed time many clients at once launch, upload, cancel and download, and send
// the hostile requests that once froze, exhausted or flushed the service, while one honest user uploads a file to
// three Versions and downloads a zip (test/helpers/soak.ts, shared with bench/soak-bench.ts). The service runs as
// its own process: it must never exit, its memory must stay under a fixed bound whatever is declared or sent, and
// the honest user's bytes must land byte-identical.

const SOAK_MS = 15_000;
const CLIENTS = 8;
const SEED = Number(process.env['SOAK_TEST_SEED'] ?? Date.now() % 1_000_000);

let stack: SoakStack;
before(async () => {
  stack = await startSoakStack();
});
after(async () => {
  await stack?.close();
});

test(`a ${SOAK_MS / 1000} s soak (seed ${SEED}): the honest user's transfers land whole, memory stays bounded, the process never exits`, { timeout: 180_000 }, async () => {
  const { service } = stack;
  const rss = sampleRss(service.child.pid!);
  const soak = await startHostileClients(stack, { clients: CLIENTS, random: seededRandom(SEED) });
  let counts: Record<string, number>;
  try {
    // The honest user, at the same time: one movie to three Versions, then a zip of them.
    await Promise.all([honestTransfers(stack), sleep(SOAK_MS)]);
  } finally {
    counts = await soak.stop();
  }
  const peak = Math.max(...rss.stop());
  const health = await request(`${service.url}/healthz`);
  await health.body.dump();
  assert.equal(health.statusCode, 200);
  assert.equal(service.child.exitCode, null, `the service exited: ${service.stderr()}`);
  assert.equal(service.lines.filter((line) => line['level'] === 'fatal').length, 0);
  assert.ok(peak > 0 && peak < RSS_BOUND_MIB, `peak RSS ${peak.toFixed(0)} MiB (bound ${RSS_BOUND_MIB})`);
  process.stdout.write(`# soak: peak RSS ${peak.toFixed(0)} MiB; ran ${JSON.stringify(counts)}\n`);
});
