import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { RequestHandler } from 'express';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Accounts } from '../access.ts';
import { FtrackError } from '../errors.ts';
import type { Endpoint, EventHub, HubEvent } from './event-hub.ts';

// The hub's transport as @ftrack/api 1.11.2 speaks it (ftrack.md, "Right-click actions: the event hub"):
// socket.io 0.9 framing over a raw WebSocket.
// - Handshake: GET /socket.io/1/?api_user=&api_key= → "<sid>:60:60:websocket" (the Python client needs all four
//   fields). A sid is single-use, bound to its user, and lapses unused after `handshakeTtlMs`.
// - WebSocket /socket.io/1/websocket/<sid>: the server says `1::`, then sends `2::` every `heartbeatIntervalMs`
//   (< 15 s: the JS client reconnects after 15 s of silence) and drops a client silent for `heartbeatTimeoutMs`.
// - Events both ways as `5:::{"name":"ftrack.event","args":[event]}`. The server never sends a frame with a message
//   id (`5:1+::…`): the JS client's JSON.parse throws on it and a Node process exits.

export const defaultHeartbeatIntervalMs = 10_000;
const maxPendingHandshakes = 10_000;
const maxFrameBytes = 1024 * 1024;
/** A connection this far behind on its frames is dropped: a client that does not read cannot grow the server. */
const maxBufferedBytes = 8 * 1024 * 1024;
/** What `connections[].sent` keeps, over every connection: enough for tests, bounded for a long-running sandbox. */
const maxRecordedBytes = 16 * 1024 * 1024;
const maxRecordedFrame = 64 * 1024;

export interface SocketIoOptions {
  hub: EventHub;
  accounts: Accounts;
  heartbeatIntervalMs?: number;
  heartbeatTimeoutMs?: number;
  handshakeTtlMs?: number;
}

export interface HubConnectionInfo {
  username: string;
  /**
   * The frames this server sent on the connection, in order, until the sandbox has recorded 16 MiB in all; a frame
   * over 64 KiB is kept as its first 64 KiB followed by "…" (tests look at what a client was sent).
   */
  sent: string[];
}

export class SocketIoServer {
  readonly #hub: EventHub;
  readonly #accounts: Accounts;
  readonly #heartbeatIntervalMs: number;
  readonly #heartbeatTimeoutMs: number;
  readonly #handshakeTtlMs: number;
  readonly #pending = new Map<string, { username: string; expiresAt: number }>();
  readonly #sockets = new Set<WebSocket>();
  #recordedBytes = 0;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: maxFrameBytes, perMessageDeflate: false });
  /** Every frame sent, per connection (bounded), so tests can check what a client was sent. */
  readonly connections: HubConnectionInfo[] = [];

  constructor(options: SocketIoOptions) {
    this.#hub = options.hub;
    this.#accounts = options.accounts;
    this.#heartbeatIntervalMs = options.heartbeatIntervalMs ?? defaultHeartbeatIntervalMs;
    this.#heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? 60_000;
    this.#handshakeTtlMs = options.handshakeTtlMs ?? 60_000;
    if (!(this.#heartbeatIntervalMs > 0 && this.#heartbeatIntervalMs < 15_000)) {
      throw new RangeError('heartbeatIntervalMs must be under 15 s: the JS client reconnects after 15 s without one');
    }
  }

  /** GET /socket.io/1/ */
  handshake(): RequestHandler {
    return (req, res) => {
      const query = new URLSearchParams(req.originalUrl.split('?')[1] ?? '');
      let username: string;
      try {
        username = this.#accounts.authenticate(query.get('api_user'), query.get('api_key')).username;
      } catch (error) {
        if (!(error instanceof FtrackError)) throw error;
        res.status(401).type('text/plain').send('handshake unauthorized');
        return;
      }
      this.#dropExpired();
      if (this.#pending.size >= maxPendingHandshakes) {
        res.status(503).type('text/plain').send('too many handshakes');
        return;
      }
      const sid = randomBytes(16).toString('hex');
      this.#pending.set(sid, { username, expiresAt: Date.now() + this.#handshakeTtlMs });
      const seconds = Math.round(this.#heartbeatTimeoutMs / 1000);
      res.set('Cache-Control', 'no-store').type('text/plain').send(`${sid}:${seconds}:60:websocket`);
    };
  }

  /** The HTTP server's 'upgrade' event. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://hub');
    const match = /^\/socket\.io\/1\/websocket\/([^/]+)$/.exec(url.pathname);
    if (!match) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const sid = match[1]!;
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#open(ws, sid, url.searchParams.get('api_user')));
  }

  close(): void {
    for (const ws of this.#sockets) ws.terminate();
    this.#sockets.clear();
    this.#wss.close();
  }

  /** Drops every connection as a network failure would (tests of reconnection); resolves once they are gone. */
  async dropAll(): Promise<void> {
    const closing = [...this.#sockets].map((ws) => new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.terminate();
    }));
    await Promise.all(closing);
  }

  #open(ws: WebSocket, sid: string, apiUser: string | null): void {
    this.#dropExpired();
    const pending = this.#pending.get(sid);
    this.#pending.delete(sid);
    if (!pending || (apiUser !== null && apiUser !== pending.username)) {
      // socket.io 0.9's "client not handshaken": the JS client closes and handshakes again.
      ws.send('7:::1+0');
      ws.close();
      return;
    }
    this.#sockets.add(ws);
    const info: HubConnectionInfo = { username: pending.username, sent: [] };
    if (this.connections.length < 10_000 && this.#recordedBytes < maxRecordedBytes) this.connections.push(info);
    const send = (frame: string): void => {
      if (ws.readyState !== ws.OPEN) return;
      if (ws.bufferedAmount > maxBufferedBytes) {
        ws.terminate();
        return;
      }
      this.#record(info, frame);
      ws.send(frame);
    };
    const endpoint: Endpoint = {
      deliver: (event: HubEvent) => send(`5:::${JSON.stringify({ name: 'ftrack.event', args: [event] })}`),
    };
    this.#hub.attach(endpoint);
    let lastHeard = Date.now();
    const heartbeat = setInterval(() => {
      if (Date.now() - lastHeard > this.#heartbeatTimeoutMs) {
        ws.terminate();
        return;
      }
      send('2::');
    }, this.#heartbeatIntervalMs);

    ws.on('message', (data: RawData, isBinary: boolean) => {
      lastHeard = Date.now();
      if (isBinary) return;
      this.#receive(endpoint, send, rawText(data));
    });
    ws.on('close', () => {
      clearInterval(heartbeat);
      this.#hub.detach(endpoint);
      this.#sockets.delete(ws);
    });
    ws.on('error', () => ws.terminate());
    send('1::');
  }

  #receive(endpoint: Endpoint, send: (frame: string) => void, frame: string): void {
    // type[:id[+][:endpoint[:data]]]
    const match = /^(\d)(?::(\d*)(\+?)(?::([^:]*)(?::([\s\S]*))?)?)?$/.exec(frame);
    if (!match) return;
    const [, type, messageId, wantsData, , data] = match;
    if (type === '5' && data !== undefined) {
      let payload: unknown;
      try {
        payload = JSON.parse(data);
      } catch {
        return;
      }
      const { name, args } = (payload ?? {}) as { name?: unknown; args?: unknown };
      if (name === 'ftrack.event' && Array.isArray(args)) this.#hub.publish(endpoint, args[0]);
      // A client that asked for an acknowledgement (the JS one never does) gets a type-6 frame, never a `5:<id>`.
      if (messageId) send(wantsData ? `6:::${messageId}+[]` : `6:::${messageId}`);
    }
  }

  #record(info: HubConnectionInfo, frame: string): void {
    const kept = frame.length > maxRecordedFrame ? `${frame.slice(0, maxRecordedFrame)}…` : frame;
    if (this.#recordedBytes + kept.length > maxRecordedBytes) return;
    this.#recordedBytes += kept.length;
    info.sent.push(kept);
  }

  #dropExpired(): void {
    const now = Date.now();
    for (const [sid, pending] of this.#pending) if (pending.expiresAt <= now) this.#pending.delete(sid);
  }
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data as ArrayBuffer).toString('utf8');
}
