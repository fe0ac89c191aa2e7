import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request, type Dispatcher } from 'undici';
import { servePassThrough } from './pass-through-server.ts';

// The minimal pass-through the download bench measures the service against (bench/download-bench.ts): an HTTP
// server, in a process of its own like the service, that fetches a list of signed storage URLs with undici, the
// same number ahead as the service (the one being sent and 4 more), and pipes their bodies, in order, into one
// response. Nothing else: no zip headers, no CRC-32, no manifest, no lookups at the site, no retries, no status:
// the least any service that streams many sources through itself into one download must do.
//
//   POST /streams   {"urls": [...], "total": <bytes>}   → 201 {"id"}   (the list, kept until its GET)
//   GET  /streams/<id>                                   → 200, Content-Length total, the bodies in order
//
// For the bench's analysis, the same with the lookups the service makes: given site API paths that answer 302 to
// a signed URL (`…/attachments/<id>/this_file?alt=original`) and a Bearer token, each source is the 302 (not
// followed) and then its Location, opened the same number ahead:
//
//   POST /streams   {"paths": [...], "site": <origin>, "token": <access token>, "total": <bytes>}
//
// Env: PASS_THROUGH_PORT (0 = any), PASS_THROUGH_HOST (127.0.0.1), PASS_THROUGH_AHEAD (4). Prints "listening
// <port>" when ready.

const AHEAD = Number(process.env.PASS_THROUGH_AHEAD ?? 4);
/** A signed URL given, or a site path (with its token) whose 302 gives it. */
type Source = { url: string } | { site: string; path: string; token: string };
const lists = new Map<string, { sources: Source[]; total: number }>();

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** Where a source's bytes are: its URL, or the Location the site's 302 gives. */
async function locate(source: Source, signal: AbortSignal): Promise<string> {
  if ('url' in source) return source.url;
  const response = await request(`${source.site}${source.path}`, { headers: { authorization: `Bearer ${source.token}`, accept: 'application/json' }, signal });
  await response.body.dump();
  const location = response.headers.location;
  if (response.statusCode !== 302 || typeof location !== 'string') throw new Error(`${source.path} answered ${response.statusCode}`);
  return location;
}

async function open(source: Source, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
  return request(await locate(source, signal), { signal });
}

/**
 * Pipes the bodies of the sources into `res`, in order, each with `pipe` (chunks passed on from 'data' events, the
 * body paused while the response is full); each source is opened when the one `AHEAD` before it is reached, as
 * the service's prefetch.
 */
async function pipeSources(sources: readonly Source[], signal: AbortSignal, res: ServerResponse): Promise<void> {
  const opened = new Map<number, Promise<Dispatcher.ResponseData>>();
  const openAt = (index: number): void => {
    if (index >= sources.length || opened.has(index)) return;
    const response = open(sources[index]!, signal);
    response.catch(() => undefined); // surfaces when its turn comes
    opened.set(index, response);
  };
  for (let index = 0; index < sources.length; index++) {
    for (let next = index; next <= index + AHEAD; next++) openAt(next);
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
      const body = (await readJson(req)) as { urls?: unknown; paths?: unknown; site?: unknown; token?: unknown; total?: unknown };
      const strings = (list: unknown): list is string[] => Array.isArray(list) && list.every((item) => typeof item === 'string');
      let sources: Source[];
      if (strings(body.urls)) sources = body.urls.map((url) => ({ url }));
      else if (strings(body.paths) && typeof body.site === 'string' && typeof body.token === 'string') {
        const { site, token } = body;
        sources = body.paths.map((path) => ({ site, path, token }));
      } else {
        res.writeHead(400).end('POST /streams {"urls": [...], "total": <bytes>} or {"paths": [...], "site", "token", "total"}\n');
        return;
      }
      if (typeof body.total !== 'number') {
        res.writeHead(400).end('total: the bytes of all the sources\n');
        return;
      }
      const id = randomUUID();
      lists.set(id, { sources, total: body.total });
      res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
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
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(list.total) });
    try {
      await pipeSources(list.sources, stop.signal, res);
    } catch {
      res.destroy();
    }
  })().catch((error: unknown) => {
    if (!res.headersSent) res.writeHead(500);
    res.end(`pass-through: ${error instanceof Error ? error.message : String(error)}\n`);
  });
});
