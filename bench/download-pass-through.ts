import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request, type Dispatcher } from 'undici';
import { inParallel, limited } from './in-parallel.ts';
import { servePassThrough } from './pass-through-server.ts';

// The minimal pass-through the download bench measures the service against (bench/download-bench.ts): an HTTP
// server, in a process of its own like the service, that sizes a list of files at storage, then pipes their
// bodies, in order, into one response with that Content-Length, opening them ahead as the service does. Nothing
// else: no listing, no zip headers, no CRC-32, no manifest, no retries, no status: the least any service that
// streams many sources through itself into one download of a stated length must do.
//
//   POST /streams   {"urls": [...]}   → 201 {"id", "total"}   once every source is sized (kept until its GET)
//   GET  /streams/<id>                → 200, Content-Length total, the bodies in order
//
// The site states no size for files uploaded since 2025, so, as the service's preparation does, each source is
// sized by storage (a 1-byte Range GET's Content-Range), PASS_THROUGH_SIZING at a time, before the POST answers.
// For the bench's analysis, the same with the lookups the service makes: given the site's URLs that answer 302 to
// a signed URL (ShotGrid's `…/attachments/<id>/this_file?alt=original` with a Bearer token in the headers, ftrack's
// `/component/get?id=…` with its key in the query), each source is first the 302 (not followed; at most
// PASS_THROUGH_API_CAP of them in flight, as the service caps its requests to the site), and its Location is
// then sized, and read by the GET, as the service reuses a location found while preparing:
//
//   POST /streams   {"lookups": [...], "headers": {...}}
//
// The GET opens sources ahead of the one being sent as the service does: up to PASS_THROUGH_AHEAD, fewer once
// those ahead add up to PASS_THROUGH_AHEAD_BYTES (the first one ahead is always opened).
//
// Env: PASS_THROUGH_PORT (0 = any), PASS_THROUGH_HOST (127.0.0.1), PASS_THROUGH_AHEAD (32),
// PASS_THROUGH_AHEAD_BYTES (64 MiB), PASS_THROUGH_SIZING (32), PASS_THROUGH_API_CAP (8). Prints "listening <port>"
// when ready.

const AHEAD = Number(process.env.PASS_THROUGH_AHEAD || 32);
const AHEAD_BYTES = Number(process.env.PASS_THROUGH_AHEAD_BYTES || 64 * 1024 * 1024);
const SIZING = Number(process.env.PASS_THROUGH_SIZING || 32);
const apiSlot = limited(Number(process.env.PASS_THROUGH_API_CAP || 8));

/** A signed URL given, or the site's URL (with the headers to send) whose 302 gives it. */
type Source = { url: string } | { lookup: string; headers: Record<string, string> };
interface Sized {
  url: string;
  size: number;
}
const lists = new Map<string, Sized[]>();

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** Where a source's bytes are: its URL, or the Location the site's 302 gives. */
async function locate(source: Source): Promise<string> {
  if ('url' in source) return source.url;
  const response = await request(source.lookup, { headers: source.headers });
  await response.body.dump();
  const location = response.headers.location;
  if (response.statusCode !== 302 || typeof location !== 'string') throw new Error(`a lookup answered ${response.statusCode}`);
  return new URL(location, source.lookup).toString();
}

/** The size storage states for a URL, from a 1-byte Range GET (its URL is signed for GET only). */
async function sizeOf(url: string): Promise<number> {
  const response = await request(url, { headers: { range: 'bytes=0-0' } });
  await response.body.dump();
  const total = /\/(\d+)$/.exec(String(response.headers['content-range'] ?? ''));
  if (response.statusCode !== 206 || !total) throw new Error(`storage answered ${response.statusCode} to a Range GET`);
  return Number(total[1]);
}

async function sizeAll(sources: readonly Source[]): Promise<Sized[]> {
  const sized: Sized[] = new Array(sources.length);
  await inParallel(sources.length, SIZING, async (index) => {
    const source = sources[index]!;
    const url = 'url' in source ? source.url : await apiSlot(() => locate(source));
    sized[index] = { url, size: await sizeOf(url) };
  });
  return sized;
}

/**
 * Pipes the bodies of the sources into `res`, in order, each with `pipe` (chunks passed on from 'data' events, the
 * body paused while the response is full); while one is sent, the next ones are opened (see above).
 */
async function pipeSources(sources: readonly Sized[], signal: AbortSignal, res: ServerResponse): Promise<void> {
  const opened = new Map<number, Promise<Dispatcher.ResponseData>>();
  const openAt = (index: number): void => {
    if (index >= sources.length || opened.has(index)) return;
    const response = request(sources[index]!.url, { signal });
    response.catch(() => undefined); // surfaces when its turn comes
    opened.set(index, response);
  };
  for (let index = 0; index < sources.length; index++) {
    openAt(index);
    let aheadBytes = 0;
    for (let next = index + 1; next <= index + AHEAD && next < sources.length; next++) {
      if (next > index + 1 && aheadBytes >= AHEAD_BYTES) break;
      openAt(next);
      aheadBytes += sources[next]!.size;
    }
    const response = await opened.get(index)!;
    opened.delete(index);
    if (response.statusCode !== 200) throw new Error(`source ${index} answered ${response.statusCode}`);
    await new Promise<void>((resolve, reject) => {
      response.body.once('end', resolve).once('error', reject);
      response.body.pipe(res, { end: false });
    });
  }
  res.end();
}

servePassThrough((req, res) => {
  void (async () => {
    const path = req.url ?? '/';
    if (req.method === 'POST' && path === '/streams') {
      const body = (await readJson(req)) as { urls?: unknown; lookups?: unknown; headers?: unknown };
      const strings = (list: unknown): list is string[] => Array.isArray(list) && list.every((item) => typeof item === 'string');
      let sources: Source[];
      if (strings(body.urls)) sources = body.urls.map((url) => ({ url }));
      else if (strings(body.lookups) && body.headers !== null && typeof body.headers === 'object') {
        const headers = body.headers as Record<string, string>;
        sources = body.lookups.map((lookup) => ({ lookup, headers }));
      } else {
        res.writeHead(400).end('POST /streams {"urls": [...]} or {"lookups": [...], "headers": {...}}\n');
        return;
      }
      const sized = await sizeAll(sources);
      const id = randomUUID();
      lists.set(id, sized);
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id, total: sized.reduce((sum, source) => sum + source.size, 0) }));
      return;
    }
    const list = req.method === 'GET' && path.startsWith('/streams/') ? lists.get(path.slice('/streams/'.length)) : undefined;
    if (!list) {
      req.resume();
      res.writeHead(404).end();
      return;
    }
    lists.delete(path.slice('/streams/'.length));
    const stop = new AbortController();
    res.once('close', () => stop.abort());
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(list.reduce((sum, source) => sum + source.size, 0)) });
    try {
      await pipeSources(list, stop.signal, res);
    } catch {
      res.destroy();
    }
  })().catch((error: unknown) => {
    if (!res.headersSent) res.writeHead(500);
    res.end(`pass-through: ${error instanceof Error ? error.message : String(error)}\n`);
  });
});
