import assert from 'node:assert/strict';
import { request } from 'undici';
import { md5 } from './sandbox-api.ts';
import type { Launched } from './service.ts';

// The upload API (docs/decisions/0004-upload-protocol.md) driven as the page drives it: announce, parts (in
// parallel, again after 503/422), complete. For tests that go through the real service.

export interface Json {
  status: number;
  body: any;
}

/** One call under the launch's page (`…/uploads` by default), with the CSRF token of `purpose`. */
export async function pageApi(
  page: Launched,
  method: 'GET' | 'POST' | 'PUT' | 'DELETE',
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  purpose = 'uploads',
): Promise<Json> {
  const response = await request(`${page.pageUrl}/${purpose}${path}`, {
    method,
    headers: {
      accept: 'application/json',
      'x-csrf-token': page.token(purpose),
      ...(body === undefined || Buffer.isBuffer(body) ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    body: body === undefined ? null : Buffer.isBuffer(body) ? body : JSON.stringify(body),
  });
  const text = await response.body.text();
  return { status: response.statusCode, body: text ? JSON.parse(text) : null };
}

/** A part's Content-MD5, as the page sends it. */
export const contentMd5 = (part: Buffer): string => Buffer.from(md5(part), 'hex').toString('base64');

/** Sends every part the upload still lacks, `parallel` at a time, resending on 503/422 as the page does. */
export async function sendParts(page: Launched, upload: { id: string; partSize: number; partCount: number; partsDone: number[] }, bytes: Buffer, parallel = 4): Promise<number> {
  const queue = Array.from({ length: upload.partCount }, (_, i) => i + 1).filter((n) => !upload.partsDone.includes(n));
  let puts = 0;
  const worker = async () => {
    for (let n = queue.shift(); n !== undefined; n = queue.shift()) {
      const part = bytes.subarray((n - 1) * upload.partSize, n * upload.partSize);
      for (let attempt = 1; ; attempt++) {
        puts += 1;
        let reply: { status: number; body: unknown };
        try {
          reply = await pageApi(page, 'PUT', `/${upload.id}/parts/${n}`, part, { 'content-md5': contentMd5(part) });
        } catch (error) {
          // As the page does: a connection reset while sending is a transient failure; the part goes again.
          assert.ok(attempt < 10 && /ECONNRESET|EPIPE|socket|closed/i.test(String((error as { code?: string }).code ?? error)), `part ${n}: ${String(error)}`);
          await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
          continue;
        }
        if (reply.status === 200) break;
        // As the page does: 503 part_failed and 422 part_corrupted mean "send it again".
        assert.ok([503, 422].includes(reply.status) && attempt < 10, `part ${n}: ${reply.status} ${JSON.stringify(reply.body)}`);
        await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return puts;
}

/** Announces, sends and completes one file; asserts each step went through. */
export async function uploadThrough(page: Launched, name: string, bytes: Buffer, targets: number[], extra: Record<string, unknown> = {}) {
  const begun = await pageApi(page, 'POST', '', { name, size: bytes.length, targets, ...extra });
  assert.equal(begun.status, 201, JSON.stringify(begun.body));
  await sendParts(page, begun.body.upload, bytes);
  const done = await pageApi(page, 'POST', `/${begun.body.upload.id}/complete`);
  assert.equal(done.status, 200, JSON.stringify(done.body));
  return done.body.upload;
}
