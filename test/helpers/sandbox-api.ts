import { createHash } from 'node:crypto';
import type { ObjectStorage } from '../../src/sandbox/storage/object-storage.ts';
import { request } from 'undici';
import type { SandboxSite } from '../../src/sandbox/site.ts';

// Small helpers for tests that talk to the sandbox site over real sockets, written against the protocol
// (../shared/protocol/shotgrid-rest.md) rather than the service's own client, so the two check each other.

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  json(): any;
}

export async function call(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Reply> {
  const response = await request(url, {
    method: (init.method ?? 'GET') as 'GET',
    headers: init.headers ?? {},
    body: init.body ?? null,
  });
  const body = Buffer.from(await response.body.arrayBuffer());
  return {
    status: response.statusCode,
    headers: response.headers,
    body,
    json: () => JSON.parse(body.toString('utf8')),
  };
}

/** A token through client_credentials, parameters in the query string as the official clients send them. */
export async function scriptToken(site: SandboxSite, options: { sudoAs?: string; key?: string } = {}): Promise<Reply> {
  const query = new URLSearchParams({ grant_type: 'client_credentials', client_id: site.scriptName, client_secret: options.key ?? site.scriptKey });
  if (options.sudoAs) query.set('scope', `sudo_as_login:${options.sudoAs}`);
  return call(`${site.url}/api/v1/auth/access_token?${query}`, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
    body: '',
  });
}

export async function bearer(site: SandboxSite, sudoAs?: string): Promise<string> {
  const reply = await scriptToken(site, sudoAs === undefined ? {} : { sudoAs });
  if (reply.status !== 200) throw new Error(`token request failed: ${reply.status} ${reply.body.toString()}`);
  return reply.json().access_token as string;
}

export function api(site: SandboxSite, token: string) {
  const send = (method: string, path: string, body?: unknown, contentType = 'application/json') =>
    call(path.startsWith('http') ? path : `${site.url}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        ...(body === undefined ? {} : { 'content-type': contentType }),
      },
      ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
    });
  return {
    get: (path: string) => send('GET', path),
    post: (path: string, body?: unknown, contentType?: string) => send('POST', path, body, contentType),
    put: (path: string, body: unknown) => send('PUT', path, body),
    delete: (path: string) => send('DELETE', path),
    search: (entity: string, filters: unknown, extra: Record<string, unknown> = {}, syntax: 'array' | 'hash' = 'array') =>
      send('POST', `/api/v1/entity/${entity}/_search`, { filters, ...extra }, `application/vnd+shotgun.api3_${syntax}+json`),
  };
}

/** A part storage stored: which multipart upload, which part. */
export interface StoredPart {
  uploadId: string;
  partNumber: number;
}

/** Records every part the sandbox's storage (either site's) stores, in order, into `into`. */
export function recordStoredParts(storage: ObjectStorage, into: StoredPart[]): void {
  const uploadPart = storage.uploadPart.bind(storage);
  storage.uploadPart = async (...args: Parameters<typeof uploadPart>) => {
    const stored = await uploadPart(...args);
    into.push({ uploadId: args[1], partNumber: args[2] });
    return stored;
  };
}

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');
export const md5 = (data: Buffer): string => createHash('md5').update(data).digest('hex');

/** Deterministic pseudo-random bytes (fast, no crypto needed), so failures reproduce. */
export function testBytes(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Follows one 302 to signed storage without forwarding the Bearer token (as a client must), returns the bytes. */
export async function download(site: SandboxSite, token: string, path: string, headers: Record<string, string> = {}): Promise<Reply> {
  const first = await call(`${site.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  if (first.status !== 302) return first;
  return call(String(first.headers.location), { headers });
}
