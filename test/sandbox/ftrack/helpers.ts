import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { request } from 'undici';
import { WebSocket } from 'ws';
import type { FtrackSandbox } from '../../../src/sandbox/ftrack/site.ts';

// Helpers for the ftrack sandbox's tests, written against the wire (../shared/protocol/ftrack.md) rather than the
// sandbox's own code: raw /api calls, storage PUTs with plain undici (the official uploader needs browser globals),
// and a raw socket.io 0.9 client that records every frame the hub sends.

/**
 * @ftrack/api arms a 30 s timer on every publish (and subscribe) that it never clears: a test process would wait for
 * them before it can end. Long timers made while the tests run are unref'd, so they keep nothing alive.
 */
export function unrefLongTimers(): void {
  const original = globalThis.setTimeout;
  if ((original as { unrefLong?: boolean }).unrefLong) return;
  const patched = ((handler: (...args: unknown[]) => void, ms?: number, ...args: unknown[]) => {
    const timer = original(handler, ms, ...args);
    if ((ms ?? 0) >= 10_000) timer.unref();
    return timer;
  }) as typeof setTimeout;
  Object.assign(patched, original, { unrefLong: true });
  globalThis.setTimeout = patched;
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): any;
}

export async function http(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer | null } = {},
): Promise<Reply> {
  const response = await request(url, { method: (init.method ?? 'GET') as 'GET', headers: init.headers ?? {}, body: init.body ?? null });
  const body = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body, json: () => JSON.parse(body.toString('utf8')) };
}

/** POST /api as the JS client does (its headers, ftrack.md), as `user` with `key`. */
export async function apiCall(sandbox: FtrackSandbox, operations: unknown, user = 'artist', key = sandbox.apiKeys.artist): Promise<any> {
  const reply = await http(`${sandbox.url}/api`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json',
      'ftrack-user': user,
      'ftrack-api-key': key,
      'ftrack-clienttoken': 'test',
      'ftrack-pushtoken': 'undefined',
    },
    body: JSON.stringify(operations),
  });
  return reply.json();
}

export const sha256 = (bytes: Buffer): string => createHash('sha256').update(bytes).digest('hex');
export const md5Base64 = (bytes: Buffer): string => createHash('md5').update(bytes).digest('base64');
export const md5Hex = (bytes: Buffer): string => createHash('md5').update(bytes).digest('hex');

/** Bytes that differ from test to test (a seed) but are the same on every run. */
export function testBytes(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let block = createHash('sha256').update(`seed-${seed}`).digest();
  for (let at = 0; at < size; at += block.length) {
    block.copy(out, at);
    block = createHash('sha256').update(block).digest();
  }
  return out;
}

export function randomBytesOf(size: number): Buffer {
  return randomBytes(size);
}

export async function put(url: string, body: Buffer | AsyncIterable<Buffer>, headers: Record<string, string> = {}): Promise<Reply> {
  return http(url, { method: 'PUT', headers, body: body as Buffer });
}

/** A record by type and name from the sandbox's store (tests look things up as a person would: by name). */
export function named(sandbox: FtrackSandbox, type: Parameters<FtrackSandbox['store']['all']>[0], name: string): string {
  const found = sandbox.store.all(type).find((entity) => entity.attrs.name === name);
  if (!found) throw new Error(`no ${type} named ${name}`);
  return found.attrs.id as string;
}

export function versionId(sandbox: FtrackSandbox, assetName: string, version: number): string {
  const asset = named(sandbox, 'Asset', assetName);
  const found = sandbox.store.all('AssetVersion').find((v) => v.attrs.asset_id === asset && v.attrs.version === version);
  if (!found) throw new Error(`no ${assetName} v${version}`);
  return found.attrs.id as string;
}

/**
 * A raw socket.io 0.9 client: handshakes, opens the WebSocket, records every frame, answers heartbeats only when
 * told to, and publishes events as @ftrack/api does (`5:::{"name":"ftrack.event","args":[event]}`).
 */
export class RawHubClient {
  readonly frames: string[] = [];
  readonly events: any[] = [];
  readonly sourceId = randomUUID();
  /** The subscriber that receives `sandbox.barrier` events targeted at this client (see hub.test.ts). */
  readonly barrierId = randomUUID();
  readonly #waiters: { test: () => boolean; resolve: () => void }[] = [];
  #ws: WebSocket | undefined;
  #closed = false;
  answerHeartbeats = true;

  static async connect(sandbox: FtrackSandbox, user: string, key: string): Promise<RawHubClient> {
    const client = new RawHubClient();
    const query = new URLSearchParams({ api_user: user, api_key: key });
    const handshake = await http(`${sandbox.url}/socket.io/1/?${query}`);
    if (handshake.status !== 200) throw new Error(`handshake ${handshake.status}`);
    const sid = handshake.body.toString().split(':')[0];
    await client.open(`${sandbox.url.replace(/^http/, 'ws')}/socket.io/1/websocket/${sid}?${query}`);
    await client.waitFor(() => client.frames.includes('1::'));
    client.subscribe('topic=sandbox.barrier', client.barrierId);
    return client;
  }

  open(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url);
      this.#ws = ws;
      ws.on('open', () => resolve());
      ws.on('error', reject);
      ws.on('close', () => {
        this.#closed = true;
        this.#check();
      });
      ws.on('message', (data) => {
        const frame = data.toString();
        this.frames.push(frame);
        if (frame === '2::' && this.answerHeartbeats) ws.send('2::');
        if (frame.startsWith('5:::')) {
          const payload = JSON.parse(frame.slice(4));
          if (payload.name === 'ftrack.event') this.events.push(payload.args[0]);
        }
        this.#check();
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(frame: string): void {
    this.#ws?.send(frame);
  }

  publish(event: Record<string, unknown>): string {
    const id = (event.id as string | undefined) ?? randomUUID();
    const full = { id, target: '', inReplyToEvent: null, source: { id: this.sourceId, applicationId: 'test', user: { username: 'test' } }, ...event };
    this.send(`5:::${JSON.stringify({ name: 'ftrack.event', args: [full] })}`);
    return id;
  }

  subscribe(subscription: string, subscriberId: string = randomUUID()): void {
    this.publish({ topic: 'ftrack.meta.subscribe', data: { subscriber: { id: subscriberId }, subscription } });
  }

  /** Resolves once `test` holds (checked on every frame and on close). */
  waitFor(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  close(): void {
    this.#ws?.terminate();
  }

  #check(): void {
    for (const waiter of [...this.#waiters]) {
      if (waiter.test()) {
        this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    }
  }
}
