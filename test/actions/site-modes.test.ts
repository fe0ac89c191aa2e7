import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { SandboxOptions } from '../../src/sandbox/site.ts';
import { bearer, download, sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, startServiceWithSandbox } from '../helpers/service.ts';
import { uploadThrough } from '../helpers/upload-client.ts';

// The same uploads against the two other kinds of site a studio may have: a Media Isolation bucket that encrypts
// with SSE-KMS (its ETags are not MD5s, so the service checks its own digest of the bytes), and a local install
// (storage_service "sg": the bytes go to the site itself with the user's token, single-part, and the PUT's answer
// goes into upload_info). Bytes are checked by hash as the site serves them back.

const MiB = 1024 * 1024;

async function withSite(sandbox: Partial<SandboxOptions>, run: (env: Awaited<ReturnType<typeof startServiceWithSandbox>>) => Promise<void>): Promise<void> {
  const env = await startServiceWithSandbox({}, sandbox);
  try {
    await run(env);
  } finally {
    await env.close();
  }
}

async function uploadBoth(env: Awaited<ReturnType<typeof startServiceWithSandbox>>): Promise<{ partCount: number }> {
  const version = env.site.store.all('Version').find((v) => v.fields.code === 'sh040_comp_v003')!;
  const page = await launch(env, 'upload-files', 'Version', [version.id]);
  const movie = testBytes(19 * MiB + 11, 61);
  const upload = await uploadThrough(page, 'sh040_comp_v003.mov', movie, [version.id]);
  assert.equal(upload.results[0].ok, true, JSON.stringify(upload.results));
  const token = await bearer(env.site);
  const stored = await download(env.site, token, `/api/v1/entity/versions/${version.id}/sg_uploaded_movie?alt=original`);
  assert.equal(sha256(stored.body), sha256(movie), 'the movie lands byte-identical');

  const shot = env.site.store.all('Shot').find((s) => s.fields.code === 'sh030')!;
  const attachPage = await launch(env, 'attach-files', 'Shot', [shot.id]);
  const notes = testBytes(3 * MiB + 5, 62);
  const attached = await uploadThrough(attachPage, 'notes.pdf', notes, [shot.id]);
  const back = await download(env.site, token, `/api/v1/entity/attachments/${attached.results[0].attachmentId}/this_file?alt=original`);
  assert.equal(sha256(back.body), sha256(notes), 'the attachment lands byte-identical');
  return { partCount: upload.partCount };
}

describe('other kinds of site', { timeout: 120_000 }, () => {
  test('an SSE-KMS bucket: uploads land, proven by the service\'s own digest (the ETags are not MD5s)', async () => {
    await withSite({ storageEncryption: 'aws:kms' }, async (env) => {
      const { partCount } = await uploadBoth(env);
      assert.equal(partCount, 3, 'in parts, as on ShotGrid\'s own bucket');
    });
  });

  test('a local install (storage_service "sg"): one PUT to the site with the user\'s token, its answer completes it', async () => {
    await withSite({ storageService: 'sg' }, async (env) => {
      const { partCount } = await uploadBoth(env);
      assert.equal(partCount, 1, 'no multipart on a local install: learned from the site before the plan');
    });
  });
});
