import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, beforeEach, describe, test } from 'node:test';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { ShotgridTracker } from '../../src/trackers/shotgrid/tracker.ts';
import { uploadHeld, type TargetOutcome } from '../../src/transfer/held-upload.ts';
import { MiB, planParts } from '../../src/transfer/part-plan.ts';
import { bearer, download, sha256, testBytes } from '../helpers/sandbox-api.ts';

// Service-held uploads through the real sandbox: byte-identical at every size, fan-out reads once, and faults
// (storage 5xx and resets, API 429s) are ridden out with no orphaned multipart upload left behind.

let site: SandboxSite;
let tracker: ShotgridTracker;
const fast = { attempts: 6, baseDelayMs: 5, maxDelayMs: 40 };

before(async () => {
  site = await startSandboxSite();
  tracker = new ShotgridTracker({ siteUrl: site.url, scriptName: site.scriptName, scriptKey: site.scriptKey, retry: fast });
});
after(async () => {
  await tracker.close();
  await site.close();
});
beforeEach(() => site.faults.reset());

const version = (code: string) => ({ type: 'Version', id: String(site.store.all('Version').find((v) => v.fields.code === code)!.id), slot: 'review-media' as const });

/** A stream of the bytes in uneven chunks, counting what was read from it. */
function source(bytes: Buffer): { stream: Readable; read: () => number } {
  let read = 0;
  const chunks: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += 777_777) chunks.push(bytes.subarray(offset, offset + 777_777));
  const stream = Readable.from(chunks.map((chunk) => ((read += chunk.length), chunk)));
  return { stream, read: () => read };
}

async function storedBytes(outcome: TargetOutcome): Promise<Buffer> {
  assert.ok(outcome.ok, outcome.ok ? '' : outcome.error.message);
  const reply = await download(site, await bearer(site), `/file_serve/attachment/${outcome.file.attachmentId}`);
  assert.equal(reply.status, 200);
  return reply.body;
}

describe('uploadHeld', () => {
  for (const size of [1, 5 * MiB - 1, 5 * MiB, 5 * MiB + 1, 37 * MiB]) {
    test(`${size} bytes land byte-identical`, async () => {
      const bytes = testBytes(size, size % 97);
      const plan = planParts(size, 5 * MiB);
      const [outcome] = await uploadHeld({ tracker, login: 'artist', targets: [version('sh060_comp_v001')], filename: `f${size}.mov`, plan }, source(bytes).stream, { retry: fast });
      assert.equal(sha256(await storedBytes(outcome!)), sha256(bytes));
    });
  }

  test('one file to three Versions is read once and written three times', async () => {
    const bytes = testBytes(12 * MiB, 9);
    const { stream, read } = source(bytes);
    const targets = ['sh060_anim_v001', 'sh060_anim_v002', 'sh060_anim_v003'].map(version);
    const outcomes = await uploadHeld({ tracker, login: 'coord', targets, filename: 'fan.mov', plan: planParts(bytes.length, 5 * MiB) }, stream, { retry: fast });
    assert.equal(read(), bytes.length);
    for (const outcome of outcomes) assert.equal(sha256(await storedBytes(outcome)), sha256(bytes));
  });

  test('with 10% of storage PUTs failing and API 429s, 20 uploads all land intact and nothing is orphaned', async () => {
    site.faults.update({ storagePutFailRate: 0.1, apiFailRate: 0.1, apiModes: ['429', '503'], retryAfterSeconds: 0 });
    const codes = site.store.all('Version').map((v) => String(v.fields.code)).filter((code) => code.startsWith('sh0')).slice(0, 20);
    const sent = codes.map((code, i) => ({ code, bytes: testBytes(6 * MiB + i * 1000, 100 + i) }));
    const outcomes = await Promise.all(
      sent.map(({ code, bytes }) =>
        uploadHeld({ tracker, login: 'artist', targets: [version(code)], filename: `${code}.mov`, plan: planParts(bytes.length, 5 * MiB) }, source(bytes).stream, {
          retry: { attempts: 8, baseDelayMs: 5, maxDelayMs: 40 },
        }),
      ),
    );
    site.faults.reset();
    for (const [i, [outcome]] of outcomes.entries()) assert.equal(sha256(await storedBytes(outcome!)), sha256(sent[i]!.bytes), sent[i]!.code);
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
  });

  test('a target the user may not write fails alone; a source that ends early aborts every target', async () => {
    const bytes = testBytes(6 * MiB, 3);
    const hidden = version('bl010_comp_v001');
    const outcomes = await uploadHeld({ tracker, login: 'artist', targets: [version('sh050_comp_v002'), hidden], filename: 'x.mov', plan: planParts(bytes.length, 5 * MiB) }, source(bytes).stream, { retry: fast });
    assert.equal(outcomes[0]!.ok, true);
    assert.equal(outcomes[1]!.ok, false);

    const short = await uploadHeld({ tracker, login: 'artist', targets: [version('sh050_comp_v003')], filename: 'short.mov', plan: planParts(bytes.length + 100, 5 * MiB) }, source(bytes).stream, { retry: fast });
    assert.equal(short[0]!.ok, false);
    assert.match((short[0] as { error: Error }).error.message, /ended after/);
    assert.equal(site.storage.multipartUploadsInProgress(), 0);
    const field = site.store.all('Version').find((v) => v.fields.code === 'sh050_comp_v003')!.fields.sg_uploaded_movie;
    assert.notEqual((field as { name?: string } | null)?.name, 'short.mov');
  });
});
