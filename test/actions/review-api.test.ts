import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import { request } from 'undici';
import type { EntityRef, StoredRecord } from '../../src/sandbox/records.ts';
import { ShotgridTracker } from '../../src/trackers/shotgrid/tracker.ts';
import { httpErrorFromSiteChange } from '../../src/web/site-errors.ts';
import { HttpError } from '../../src/web/errors.ts';
import { bearer, download, sha256, testBytes } from '../helpers/sandbox-api.ts';
import { launch, startServiceWithSandbox, type Launched, type ServiceWithSandbox } from '../helpers/service.ts';
import { contentMd5, pageApi, uploadThrough, type Json } from '../helpers/upload-client.ts';

// submit-for-review through the real service and the sandbox site: each movie becomes a new Version created as
// the launching user (linked to the Shot or Asset, or the Task's entity and the Task), then its movie goes up
// through the upload API to sg_uploaded_movie. A Version whose movie does not arrive is deleted again. The new
// Versions can go to a new playlist or one of the project's. Someone who may not see the target gets a refusal.

const MiB = 1024 * 1024;
let env: ServiceWithSandbox;

before(async () => {
  env = await startServiceWithSandbox({ MAX_UPLOAD_BYTES: '64MiB' });
});
after(async () => {
  await env.close();
});
beforeEach(() => env.site.faults.reset());

const store = () => env.site.store;
const idOf = (type: 'Shot' | 'Asset' | 'Playlist', code: string) => store().all(type).find((record) => record.fields.code === code)!.id;
const person = (login: string): EntityRef => ({ type: 'HumanUser', id: store().all('HumanUser').find((user) => user.fields.login === login)!.id });
const demo = (): EntityRef => ({ type: 'Project', id: store().all('Project').find((project) => project.fields.name === 'Demo')!.id });
const taskOf = (shotCode: string, content: string) =>
  store()
    .all('Task')
    .find((task) => task.fields.content === content && (task.fields.entity as EntityRef).id === idOf('Shot', shotCode))!;
/** The site's record of a Version the API names (its id a string of digits). */
const version = (id: number | string): StoredRecord | undefined => store().get('Version', Number(id));

const versionsApi = (page: Launched, method: 'GET' | 'POST' | 'DELETE', path = '', body?: unknown): Promise<Json> => pageApi(page, method, path, body, {}, 'versions');
const uploads = (page: Launched, method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown, headers: Record<string, string> = {}) =>
  pageApi(page, method, path, body, headers);

async function createVersion(page: Launched, proposal: Record<string, unknown>): Promise<{ id: number; code: string; state: string }> {
  const reply = await versionsApi(page, 'POST', '', proposal);
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return reply.body.version;
}

async function storedMovie(versionId: number): Promise<Buffer> {
  const reply = await download(env.site, await bearer(env.site), `/api/v1/entity/versions/${versionId}/sg_uploaded_movie?alt=original`);
  assert.equal(reply.status, 200);
  return reply.body;
}

describe('submit-for-review', () => {
  test('on Shots: a Version per movie, linked to its Shot and project, the launching user as artist; the movie byte-identical', async () => {
    const shots = [idOf('Shot', 'sh010'), idOf('Shot', 'sh020')];
    const page = await launch(env, 'submit-for-review', 'Shot', shots, 'coord');
    const html = await (await request(page.pageUrl)).body.text();
    assert.match(html, /id="review-form"/);
    assert.match(html, /Dailies 2026-11-20/, "the project's playlists are offered");

    const movies = [testBytes(9 * MiB + 3, 51), testBytes(700_000, 52)];
    const created = [];
    for (const [i, shot] of shots.entries()) {
      const code = `sh0${i + 1}0_comp_v004`;
      const made = await createVersion(page, { code: ` ${code} `, targetId: shot, description: i === 0 ? 'First pass\nwith notes' : null, status: 'rev' });
      assert.equal(made.code, code, 'the name is trimmed');
      assert.equal(made.state, 'awaiting-movie');
      const upload = await uploadThrough(page, `${code}.mov`, movies[i]!, [made.id]);
      assert.equal(upload.results[0].ok, true);
      created.push(made);
    }

    for (const [i, made] of created.entries()) {
      const record = version(made.id)!;
      assert.deepEqual(record.fields.entity, { type: 'Shot', id: shots[i] });
      assert.equal(record.fields.sg_task ?? null, null);
      assert.deepEqual(record.fields.project, demo());
      assert.deepEqual(record.fields.user, person('coord'), 'the artist is the launching user');
      assert.deepEqual(record.fields.created_by, person('coord'), 'created as the user, not the script');
      assert.equal(record.fields.sg_status_list, 'rev');
      assert.equal(record.fields.description ?? null, i === 0 ? 'First pass\nwith notes' : null);
      assert.equal(sha256(await storedMovie(made.id)), sha256(movies[i]!));
    }
    const listed = await versionsApi(page, 'GET');
    assert.deepEqual(listed.body.versions.map((v: { id: number; state: string }) => [v.id, v.state]), created.map((made) => [made.id, 'submitted']));
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);

    // Uploads go only to the launch's new Versions still waiting for a movie: not a submitted one, not a Shot.
    for (const target of [created[0]!.id, shots[0]!]) {
      const refused = await uploads(page, 'POST', '', { name: 'again.mov', size: 10, targets: [target] });
      assert.equal(refused.status, 403);
      assert.equal(refused.body.error.code, 'target_not_created_here');
    }
    const stays = await versionsApi(page, 'DELETE', `/${created[0]!.id}`);
    assert.equal(stays.status, 409, 'a Version whose movie arrived is not removed');
    assert.ok(version(created[0]!.id));
  });

  test('on a Task: the Version is for the Task’s Shot, with the Task as sg_task', async () => {
    const task = taskOf('sh030', 'comp');
    const page = await launch(env, 'submit-for-review', 'Task', [task.id]);
    const made = await createVersion(page, { code: 'sh030_comp_v004', targetId: task.id });
    const record = version(made.id)!;
    assert.deepEqual(record.fields.entity, { type: 'Shot', id: idOf('Shot', 'sh030') });
    assert.deepEqual(record.fields.sg_task, { type: 'Task', id: task.id });
    assert.deepEqual(record.fields.user, person('artist'));
    assert.deepEqual(record.fields.project, demo());
    const movie = testBytes(123_456, 53);
    await uploadThrough(page, 'sh030_comp_v004.mov', movie, [made.id]);
    assert.equal(sha256(await storedMovie(made.id)), sha256(movie));
  });

  test('a cancelled upload takes its new Version away again, and nothing stays at storage', async () => {
    const page = await launch(env, 'submit-for-review', 'Asset', [idOf('Asset', 'sword')]);
    const versions = store().all('Version').length;
    const made = await createVersion(page, { code: 'sword_lookdev_v002', targetId: idOf('Asset', 'sword') });
    assert.deepEqual(version(made.id)!.fields.entity, { type: 'Asset', id: idOf('Asset', 'sword') });
    const bytes = testBytes(20 * MiB, 54);
    const begun = (await uploads(page, 'POST', '', { name: 'sword_lookdev_v002.mov', size: bytes.length, targets: [made.id] })).body.upload;
    const part = bytes.subarray(0, begun.partSize);
    assert.equal((await uploads(page, 'PUT', `/${begun.id}/parts/1`, part, { 'content-md5': contentMd5(part) })).status, 200);
    assert.equal(env.site.storage.multipartUploadsInProgress(), 1);

    const cancelled = await uploads(page, 'DELETE', `/${begun.id}`);
    assert.equal(cancelled.body.upload.status, 'aborted');
    assert.equal(version(made.id), undefined, 'the empty Version is gone');
    assert.equal(store().all('Version').length, versions);
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
    const listed = await versionsApi(page, 'GET');
    assert.deepEqual(listed.body.versions.map((v: { state: string; note: string }) => [v.state, v.note]), [['removed', 'its upload was cancelled or refused']]);
    // The page asks too (it cannot know the service already did): the same answer, nothing more happens.
    const again = await versionsApi(page, 'DELETE', `/${made.id}`);
    assert.equal(again.status, 200);
    assert.equal(again.body.version.state, 'removed');
    const gone = await uploads(page, 'POST', '', { name: 'x.mov', size: 10, targets: [made.id] });
    assert.equal(gone.status, 403, 'a removed Version takes no upload');
  });

  test('storage refusing every part: the page gives up, and the new Version is removed again', async () => {
    const page = await launch(env, 'submit-for-review', 'Shot', [idOf('Shot', 'sh040')]);
    const made = await createVersion(page, { code: 'sh040_comp_v004', targetId: idOf('Shot', 'sh040') });
    const bytes = testBytes(6 * MiB, 55);
    const begun = (await uploads(page, 'POST', '', { name: 'sh040_comp_v004.mov', size: bytes.length, targets: [made.id] })).body.upload;
    env.site.faults.update({ storagePutFailCount: 1_000, storagePutModes: ['500'] });
    for (let attempt = 0; attempt < 3; attempt++) {
      const failed = await uploads(page, 'PUT', `/${begun.id}/parts/1`, bytes, { 'content-md5': contentMd5(bytes) });
      assert.equal(failed.status, 503);
      assert.equal(failed.body.error.code, 'part_failed');
    }
    env.site.faults.reset();
    // What the page does once its attempts are spent: it gives the upload up.
    await uploads(page, 'DELETE', `/${begun.id}`);
    assert.equal(version(made.id), undefined);
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
  });

  test('removing a new Version while its movie is on the way gives the upload up first', async () => {
    const page = await launch(env, 'submit-for-review', 'Shot', [idOf('Shot', 'sh050')]);
    const made = await createVersion(page, { code: 'sh050_comp_v004', targetId: idOf('Shot', 'sh050') });
    const bytes = testBytes(17 * MiB, 56);
    const begun = (await uploads(page, 'POST', '', { name: 'sh050_comp_v004.mov', size: bytes.length, targets: [made.id] })).body.upload;
    const part = bytes.subarray(0, begun.partSize);
    await uploads(page, 'PUT', `/${begun.id}/parts/1`, part, { 'content-md5': contentMd5(part) });
    const removed = await versionsApi(page, 'DELETE', `/${made.id}`);
    assert.equal(removed.status, 200);
    assert.equal(removed.body.version.state, 'removed');
    assert.equal(version(made.id), undefined);
    assert.equal((await uploads(page, 'GET', `/${begun.id}`)).body.upload.status, 'aborted');
    assert.equal(env.site.storage.multipartUploadsInProgress(), 0);
  });

  test('playlists: a new one named by the user, or one of the project; only Versions whose movie arrived', async () => {
    const page = await launch(env, 'submit-for-review', 'Shot', [idOf('Shot', 'sh060')]);
    const shot = idOf('Shot', 'sh060');
    const first = await createVersion(page, { code: 'sh060_comp_v004', targetId: shot });
    const second = await createVersion(page, { code: 'sh060_comp_v005', targetId: shot });
    await uploadThrough(page, 'a.mov', testBytes(1000, 57), [first.id]);
    const early = await pageApi(page, 'POST', '', { versionIds: [second.id], playlistName: 'Too soon' }, {}, 'playlist');
    assert.equal(early.status, 403, 'a Version still waiting for its movie is not added');
    await uploadThrough(page, 'b.mov', testBytes(1000, 58), [second.id]);

    const fresh = await pageApi(page, 'POST', '', { versionIds: [first.id], playlistName: ' Review sh060 ' }, {}, 'playlist');
    assert.equal(fresh.status, 200, JSON.stringify(fresh.body));
    assert.equal(fresh.body.added, 1);
    const playlist = store().get('Playlist', Number(fresh.body.playlist.id))!;
    assert.equal(playlist.fields.code, 'Review sh060');
    assert.deepEqual(playlist.fields.project, demo());
    assert.deepEqual(playlist.fields.versions, [{ type: 'Version', id: Number(first.id) }]);
    assert.deepEqual(playlist.fields.created_by, person('artist'));
    assert.deepEqual(version(first.id)!.fields.playlists, [{ type: 'Playlist', id: playlist.id }], 'the other end of the connection shows it');

    const dailies = idOf('Playlist', 'Dailies 2026-11-20');
    const held = (store().get('Playlist', dailies)!.fields.versions as EntityRef[]).length;
    const existing = await pageApi(page, 'POST', '', { versionIds: [first.id, second.id], playlistId: dailies }, {}, 'playlist');
    assert.equal(existing.status, 200, JSON.stringify(existing.body));
    const versions = store().get('Playlist', dailies)!.fields.versions as EntityRef[];
    assert.equal(versions.length, held + 2, 'added to what it held');
    assert.ok(versions.some((ref) => String(ref.id) === String(second.id)));
    assert.equal((await pageApi(page, 'POST', '', { versionIds: [first.id], playlistId: 99_999 }, {}, 'playlist')).status, 404);
  });
});

describe('submit-for-review refusals change nothing', () => {
  test('a user who cannot see the Shot: the page says so, creating is refused, nothing is created', async () => {
    const shot = idOf('Shot', 'sh010');
    const page = await launch(env, 'submit-for-review', 'Shot', [shot], 'artist', { actAs: 'outsider' });
    const versions = store().all('Version').length;
    const html = await (await request(page.pageUrl)).body.text();
    assert.match(html, /1 selected item is not visible to you/);
    assert.doesNotMatch(html, /id="review-form"/, 'nothing to submit to');
    const refused = await versionsApi(page, 'POST', '', { code: 'sh010_comp_v009', targetId: shot });
    assert.equal(refused.status, 403);
    assert.equal(refused.body.error.code, 'target_not_visible');
    assert.match(refused.body.error.message, /ShotGrid does not show this Shot to “outsider”/);
    assert.equal(store().all('Version').length, versions);
  });

  test('the site itself refuses a Version the user may not create, in words the page can show', async () => {
    const tracker = new ShotgridTracker({ siteUrl: env.site.url, scriptName: env.site.scriptName, scriptKey: env.site.scriptKey });
    try {
      const versions = store().all('Version').length;
      const error = await tracker
        .createVersion('outsider', { code: 'sneaky', projectId: String(demo().id), entity: { type: 'Shot', id: String(idOf('Shot', 'sh010')) }, taskId: null, userId: String(person('outsider').id), description: null, status: null })
        .then(() => null, (caught: unknown) => caught);
      assert.ok(error, 'refused');
      const shown = httpErrorFromSiteChange(error, 'outsider', 'create the Version “sneaky”');
      assert.ok(shown instanceof HttpError);
      assert.ok([403, 422].includes(shown.status));
      assert.equal(shown.code, 'site_refused_change');
      assert.match(shown.message, /^ShotGrid did not let “outsider” create the Version “sneaky”: /);
      assert.equal(store().all('Version').length, versions);
      // Nor may they delete what they cannot see: the site answers as for a record that is not there (which
      // deleteEntity takes as already deleted), and the Version stays.
      const hidden = store().all('Version')[0]!.id;
      await tracker.deleteEntity('outsider', 'Version', String(hidden));
      assert.ok(version(hidden), 'still there');
    } finally {
      await tracker.close();
    }
  });

  test('bad proposals and targets outside the launch are refused before the site is asked', async () => {
    const page = await launch(env, 'submit-for-review', 'Shot', [idOf('Shot', 'sh020')]);
    const versions = store().all('Version').length;
    const expect = async (body: unknown, status: number, field: string) => {
      const reply = await versionsApi(page, 'POST', '', body);
      assert.equal(reply.status, status, JSON.stringify(reply.body));
      assert.equal(reply.body.error.field, field);
    };
    await expect({ code: '   ', targetId: idOf('Shot', 'sh020') }, 400, 'code');
    await expect({ code: 'x'.repeat(256), targetId: idOf('Shot', 'sh020') }, 400, 'code');
    await expect({ code: 'ok', targetId: idOf('Shot', 'sh020'), status: 'Pending Review' }, 400, 'status');
    await expect({ code: 'ok', targetId: idOf('Shot', 'sh030') }, 403, 'targetId');
    await expect({ code: 'ok' }, 400, 'targetId');
    const wrongToken = await pageApi(page, 'POST', '', { code: 'ok', targetId: idOf('Shot', 'sh020') }, { 'x-csrf-token': page.token('uploads') }, 'versions');
    assert.equal(wrongToken.status, 403);
    assert.equal(wrongToken.body.error.code, 'csrf_invalid');
    assert.equal(store().all('Version').length, versions);
    // No plain-form upload for this action: it needs the page's script.
    const form = new FormData();
    form.append('files', new Blob(['abc']), 'sh020_comp_v009.mov');
    const encoded = new Response(form);
    const plain = await request(`${page.pageUrl}/form-upload?csrf_token=${page.token('form-upload')}`, {
      method: 'POST',
      headers: { 'content-type': encoded.headers.get('content-type')!, accept: 'application/json' },
      body: Buffer.from(await encoded.arrayBuffer()),
    });
    assert.equal(plain.statusCode, 400);
    await plain.body.dump();
  });
});
