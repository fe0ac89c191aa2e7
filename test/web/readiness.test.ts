import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import express from 'express';
import { request } from 'undici';
import { metricsRegistry } from '../../src/net/metrics.ts';
import { healthRoutes, Readiness } from '../../src/web/health.ts';

// /readyz on a real listening server, around checks the test controls: which outages make it 503 (only the
// instance's own: shutting down), how long a check is reused, and what the metrics say.

async function serve(readiness: Readiness): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(healthRoutes(readiness));
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

async function readyz(url: string): Promise<{ status: number; body: any }> {
  const response = await request(`${url}/readyz`);
  return { status: response.statusCode, body: await response.body.json() };
}

async function dependencyUp(dependency: string): Promise<number | undefined> {
  const metric = await metricsRegistry.getSingleMetric('ami_transfer_dependency_up')?.get();
  return metric?.values.find((value) => value.labels['dependency'] === dependency)?.value;
}

describe('readiness', () => {
  test('a shared dependency down is degraded (200, said in the body and the metrics); shutting down is 503', async () => {
    let siteUp = false;
    const readiness = new Readiness({
      checks: { site: async () => void (siteUp || assert.fail('the site is down')), store: async () => undefined },
      cacheMs: 10,
    });
    const server = await serve(readiness);
    try {
      const degraded = await readyz(server.url);
      assert.equal(degraded.status, 200);
      assert.equal(degraded.body.status, 'degraded');
      assert.deepEqual(degraded.body.checks.site.error, { code: 'site_unreachable', message: "The tracking site did not answer, or refused the service's credentials." });
      assert.equal(degraded.body.checks.store.ok, true);
      assert.equal(await dependencyUp('site'), 0);
      assert.equal(await dependencyUp('store'), 1);

      siteUp = true;
      await sleep(20); // past the 10 ms the last check is reused
      const ok = await readyz(server.url);
      assert.equal(ok.status, 200);
      assert.equal(ok.body.status, 'ok');
      assert.equal(await dependencyUp('site'), 1);

      readiness.stopping();
      const stopping = await readyz(server.url);
      assert.equal(stopping.status, 503, 'an instance going away leaves the load balancer');
      assert.equal(stopping.body.status, 'stopping');
      assert.equal(stopping.body.checks.site.ok, true, 'what was last known');
    } finally {
      await server.close();
    }
  });

  test('probes share one check while it runs and reuse it while fresh; a check that hangs counts as failed', async () => {
    let checks = 0;
    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    const readiness = new Readiness({
      checks: {
        site: async () => {
          checks += 1;
          await held;
        },
        store: () => new Promise<void>(() => {}), // never answers
      },
      cacheMs: 60_000,
      timeoutMs: 200,
    });
    const server = await serve(readiness);
    try {
      const probes = Promise.all(Array.from({ length: 5 }, () => readyz(server.url)));
      await sleep(50);
      release();
      const answers = await probes;
      assert.equal(checks, 1, 'five probes at once, one check');
      for (const answer of answers) {
        assert.equal(answer.status, 200);
        assert.equal(answer.body.checks.site.ok, true);
        assert.equal(answer.body.checks.store.ok, false, 'no answer within the timeout');
        assert.equal(answer.body.checks.store.error.code, 'store_unavailable');
      }
      await readyz(server.url);
      assert.equal(checks, 1, 'reused while fresh');
    } finally {
      await server.close();
    }
  });
});
