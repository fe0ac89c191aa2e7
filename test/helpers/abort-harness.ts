import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';

// Requests that end badly on purpose, as browsers and networks end them: a connection dropped part-way through
// the body, a client that gives up after some time. Shared by the abort and soak tests.

/** A small seeded random source, so a failing run can be replayed with its seed. */
export function seededRandom(seed: number): { next(): number; int(min: number, max: number): number; pick<T>(items: readonly T[]): T } {
  let x = seed >>> 0 || 1;
  const next = (): number => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
  return {
    next,
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

/**
 * Sends a request's head and the first `sendBytes` of its body over a raw socket, waits `waitMs`, then drops
 * the connection (a closed tab, a lost VPN). The declared Content-Length is the whole body's, or `declaredLength`
 * (a client that claims what it never sends).
 */
export async function dropMidBody(
  url: string,
  init: { method: string; headers: Record<string, string>; body: Buffer; sendBytes: number; waitMs: number; declaredLength?: number },
): Promise<void> {
  const target = new URL(url);
  const socket = connect(Number(target.port), target.hostname);
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const head = [`${init.method} ${target.pathname}${target.search} HTTP/1.1`, `Host: ${target.host}`, `Content-Length: ${init.declaredLength ?? init.body.length}`];
  for (const [name, value] of Object.entries(init.headers)) head.push(`${name}: ${value}`);
  socket.write(`${head.join('\r\n')}\r\n\r\n`);
  if (init.sendBytes > 0 && !socket.write(init.body.subarray(0, init.sendBytes))) {
    // The server may hold the body back (backpressure) for as long as it likes: the client gives up after a while.
    await Promise.race([new Promise((resolve) => socket.once('drain', resolve).once('close', resolve)), sleep(5_000)]);
  }
  await sleep(init.waitMs);
  socket.destroy();
}

/** A request through undici that the client abandons after `afterMs` (its answer, if any came first, is dumped). */
export async function abandonAfter(url: string, init: { method: 'GET' | 'PUT' | 'POST' | 'DELETE'; headers?: Record<string, string>; body?: Buffer | string }, afterMs: number): Promise<number | 'abandoned'> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), afterMs);
  try {
    const response = await request(url, { method: init.method, headers: init.headers ?? {}, body: init.body ?? null, signal: controller.signal });
    // Read the answer, but only until the deadline: a zip is abandoned mid-stream this way.
    for await (const _chunk of response.body) {
      // discarded
    }
    return response.statusCode;
  } catch {
    return 'abandoned';
  } finally {
    clearTimeout(timer);
  }
}
