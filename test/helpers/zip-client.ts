import assert from 'node:assert/strict';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import type { Launched } from './service.ts';

// The download page's zip as its script drives it: POST …/zip (the kinds, with the page's CSRF token), poll the
// status while the service prepares, then the file's URL. For tests that go through the real service.

export interface PreparedZip {
  id: string;
  /** Absolute URLs. */
  statusUrl: string;
  fileUrl: string;
  /** The status once preparing ended (ready, or failed). */
  status: { state: string; files: number; skipped: number; total: number | null; message: string | null } & Record<string, unknown>;
}

export async function prepareZip(page: Launched, kinds = 'attachments,fields,thumbnails,notes', timeoutMs = 60_000): Promise<PreparedZip> {
  const origin = new URL(page.pageUrl).origin;
  const response = await request(`${page.pageUrl}/zip`, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json', 'x-csrf-token': page.token('zip') },
    body: JSON.stringify({ kinds: kinds.split(',') }),
  });
  const answer = (await response.body.json()) as { download: { id: string; statusUrl: string; fileUrl: string } };
  assert.equal(response.statusCode, 202, JSON.stringify(answer));
  const statusUrl = new URL(answer.download.statusUrl, origin).toString();
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = (await (await request(`${statusUrl}?wait=1`, { headers: { accept: 'application/json' } })).body.json()) as PreparedZip['status'];
    if (status.state !== 'preparing') return { id: answer.download.id, statusUrl, fileUrl: new URL(answer.download.fileUrl, origin).toString(), status };
    assert.ok(Date.now() < deadline, `the zip was still being prepared after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export async function zipStatus(zip: PreparedZip): Promise<PreparedZip['status']> {
  return (await (await request(zip.statusUrl, { headers: { accept: 'application/json' } })).body.json()) as PreparedZip['status'];
}

export interface FetchedFile {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  path: string;
  bytes: number;
  /** How the body ended when it did not end well (a cut connection); null when it arrived whole. */
  error: unknown;
}

/** GETs url into a new file in folder, counting the bytes; a body cut short is reported, not thrown. */
export async function fetchToFile(url: string, folder: string, headers: Record<string, string> = {}): Promise<FetchedFile> {
  const response = await request(url, { headers });
  const path = join(folder, `${Math.random().toString(36).slice(2)}.zip`);
  let bytes = 0;
  let error: unknown = null;
  try {
    await pipeline(
      response.body,
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          bytes += chunk.length;
          yield chunk;
        }
      },
      createWriteStream(path),
    );
  } catch (caught) {
    error = caught;
  }
  return { status: response.statusCode, headers: response.headers, path, bytes, error };
}
