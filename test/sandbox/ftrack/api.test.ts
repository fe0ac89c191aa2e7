import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Session } from '@ftrack/api';
import { startFtrackSandbox, type FtrackSandbox } from '../../../src/sandbox/ftrack/site.ts';
import { apiCall, http, named, versionId } from './helpers.ts';

// The sandbox ftrack server's /api through real sockets, with @ftrack/api 1.11.2's Session as the client where it
// fits and raw requests where the wire itself is the point (ftrack.md, "The /api endpoint"). Each refusal here is a
// strict rule: the test fails if the sandbox goes lenient.

let sandbox: FtrackSandbox;

before(async () => {
  sandbox = await startFtrackSandbox();
});
after(async () => {
  await sandbox?.close();
});

/** A Session whose start is awaited (a start nobody catches exits the process: ftrack.md). */
async function session(user: 'artist' | 'coord' | 'outsider' = 'artist'): Promise<Session> {
  const started = new Session(sandbox.url, user, sandbox.apiKeys[user]);
  await started.initializing;
  return started;
}

function assertError(reply: unknown, exception: string, content?: RegExp): void {
  assert.ok(reply !== null && typeof reply === 'object' && !Array.isArray(reply), `an error object, not ${JSON.stringify(reply)}`);
  assert.deepEqual(Object.keys(reply).sort(), ['content', 'error_code', 'exception']);
  const error = reply as { exception: string; content: string; error_code: unknown };
  assert.equal(error.exception, exception, error.content);
  assert.equal(error.error_code, null);
  if (content) assert.match(error.content, content);
}

describe('session start and credentials', () => {
  test('a Session starts: server information with time zone support, schemas with id and primary_key', async () => {
    const s = await session();
    assert.equal(s.initialized, true);
    assert.equal((s.serverInformation as { is_timezone_support_enabled?: boolean }).is_timezone_support_enabled, true);
    assert.equal(typeof s.serverVersion, 'string');
    assert.deepEqual(s.getPrimaryKeyAttributes('Metadata'), ['parent_id', 'key']);
    assert.deepEqual(s.getPrimaryKeyAttributes('AssetVersion'), ['id']);
    for (const type of ['Project', 'Shot', 'Sequence', 'Task', 'Asset', 'AssetType', 'AssetVersion', 'FileComponent', 'ComponentLocation', 'Location', 'User', 'Status']) {
      assert.ok(s.getSchema(type), `schema for ${type}`);
    }
    assert.ok((s.getSchema('AssetVersion') as { required: string[] }).required.includes('status_id'));
  });

  test('every request is authenticated from its headers: a wrong key, an unknown or inactive user, no headers are InvalidCredentialsError', async () => {
    const operations = [{ action: 'query', expression: 'select name from Project' }];
    assertError(await apiCall(sandbox, operations, 'artist', 'not-the-key'), 'InvalidCredentialsError');
    assertError(await apiCall(sandbox, operations, 'nobody', sandbox.apiKey), 'InvalidCredentialsError');
    assertError(await apiCall(sandbox, operations, 'former', sandbox.apiKey), 'InvalidCredentialsError');
    // Another user's personal key does not act as this user.
    assertError(await apiCall(sandbox, operations, 'coord', sandbox.apiKeys.artist), 'InvalidCredentialsError');
    const bare = await http(`${sandbox.url}/api`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(operations) });
    assertError(bare.json(), 'InvalidCredentialsError');
    // The right key works, and the site's key acts as the user it names.
    assert.equal((await apiCall(sandbox, operations))[0].action, 'query');
    assert.equal((await apiCall(sandbox, operations, 'artist', sandbox.apiKey))[0].data.length, 1);
  });

  test("a Session with a wrong key: its start rejects (caught here), and so does every later call", async () => {
    const s = new Session(sandbox.url, 'artist', 'wrong-key');
    await assert.rejects(s.initializing, (error: Error) => error.name === 'ServerError' && /API key/.test(error.message));
    await assert.rejects(s.query('select id from Project'), (error: Error) => error.name === 'ServerError');
  });

  test('the site key acts with the named user\'s rights: outsider sees no demo shot', async () => {
    const asOutsider = await apiCall(sandbox, [{ action: 'query', expression: 'select name from Shot' }], 'outsider', sandbox.apiKey);
    assert.deepEqual(asOutsider[0].data.map((shot: { name: string }) => shot.name), ['bl010']);
  });
});

describe('query', () => {
  test('select with dotted paths, where with and/in, order by; every entity has __entity_type__ and its id', async () => {
    const s = await session();
    const sh010 = named(sandbox, 'Shot', 'sh010');
    const sh020 = named(sandbox, 'Shot', 'sh020');
    const reply = await s.query(`select name, parent.name, project.full_name from Shot where id in ("${sh010}", "${sh020}") and parent.name is "sq010" order by name descending`);
    assert.deepEqual(reply.data.map((shot) => [shot.__entity_type__, shot.name, shot.parent.name, shot.project.full_name]), [
      ['Shot', 'sh020', 'sq010', 'Demo'],
      ['Shot', 'sh010', 'sq010', 'Demo'],
    ]);
    assert.deepEqual(reply.metadata, { next: { offset: null } });
    for (const shot of reply.data) assert.match(shot.id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });

  test('an entity appears once in full, later as a reference {__entity_type__, id}', async () => {
    const [reply] = await apiCall(sandbox, [{ action: 'query', expression: 'select name, parent.name from Shot where parent.name is "sq010" order by name' }]);
    const [first, second] = reply.data;
    assert.deepEqual(Object.keys(first.parent).sort(), ['__entity_type__', 'id', 'name']);
    assert.deepEqual(second.parent, { __entity_type__: 'Sequence', id: first.parent.id });
  });

  test('an abstract type answers its concrete subtypes; datetimes travel as {"__type__": "datetime"}', async () => {
    const sh010 = named(sandbox, 'Shot', 'sh010');
    const task = sandbox.store.all('Task').find((t) => t.attrs.parent_id === sh010)!.attrs.id;
    const [reply] = await apiCall(sandbox, [{ action: 'query', expression: `select name, created_at from TypedContext where id in ("${sh010}", "${task}")` }]);
    assert.deepEqual(reply.data.map((entity: { __entity_type__: string }) => entity.__entity_type__).sort(), ['Shot', 'Task']);
    for (const entity of reply.data) {
      assert.equal(entity.created_at.__type__, 'datetime');
      assert.match(entity.created_at.value, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$/);
    }
  });

  test('like / not_like, has (a relation) and any (a collection), or and not', async () => {
    const query = async (expression: string) => (await apiCall(sandbox, [{ action: 'query', expression }]))[0].data;
    const names = (rows: { name: string }[]) => rows.map((row) => row.name).sort();
    assert.deepEqual(names(await query('select name from Shot where name like "SH0_0" and name not_like "%40"')), ['sh010', 'sh020', 'sh030']);
    assert.deepEqual(names(await query('select name from Shot where not (name is "sh010" or name is "sh020")')), ['sh030', 'sh040']);
    assert.deepEqual(names(await query('select name from Asset where parent has (name is "sh010")')), ['sh010_comp']);
    const review = await query('select version, asset.name from AssetVersion where components any (name is "ftrackreview-mp4")');
    assert.deepEqual(review.map((v: { version: number; asset: { name: string } }) => [v.asset.name, v.version]), [['sh010_comp', 2]]);
    // Many wildcards against a long value: matched without a regular expression's backtracking blow-up.
    const sq010 = named(sandbox, 'Sequence', 'sq010');
    const long = await apiCall(sandbox, [{ action: 'create', entity_type: 'Shot', entity_data: { name: 'sh_long', parent_id: sq010, description: 'a'.repeat(5000) } }], 'coord', sandbox.apiKeys.coord);
    assert.equal(long[0].action, 'create');
    assert.deepEqual(await query(`select name from Shot where description like "${'%a'.repeat(500)}%b"`), []);
    assert.deepEqual(names(await query(`select name from Shot where description like "${'%a'.repeat(500)}%"`)), ['sh_long']);
    await apiCall(sandbox, [{ action: 'delete', entity_type: 'Shot', entity_key: [long[0].data.id] }], 'coord', sandbox.apiKeys.coord);
  });

  test('limit and offset page with metadata.next.offset until null', async () => {
    const s = await session();
    const all = (await s.query('select id from Task')).data.map((task) => task.id);
    assert.equal(all.length, 8);
    const paged: string[] = [];
    let offset: number | null = 0;
    let pages = 0;
    while (offset !== null) {
      const page: { data: { id?: unknown }[]; metadata: { next: { offset: number | null } } } = await s.query(`select id from Task offset ${offset} limit 3`);
      paged.push(...page.data.map((task) => String(task.id)));
      offset = page.metadata.next.offset;
      pages++;
    }
    assert.equal(pages, 3);
    assert.deepEqual(paged, all);
  });

  test('a query without limit is cut to a page: the client must follow next.offset', async () => {
    const small = await startFtrackSandbox({ pageSize: 5 });
    try {
      const [first] = await apiCall(small, [{ action: 'query', expression: 'select id from Task' }]);
      assert.equal(first.data.length, 5);
      assert.equal(first.metadata.next.offset, 5);
      const [big] = await apiCall(small, [{ action: 'query', expression: 'select id from Task limit 50' }]);
      assert.equal(big.data.length, 5, 'a limit above the page size is answered a page at a time');
      const [rest] = await apiCall(small, [{ action: 'query', expression: 'select id from Task offset 5' }]);
      assert.equal(rest.data.length, 3);
      assert.equal(rest.metadata.next.offset, null);
    } finally {
      await small.close();
    }
  });
});

describe('create, update, delete', () => {
  test('round trip through the Session as coord: create a Shot, read it, update it, delete it', async () => {
    const s = await session('coord');
    const sq010 = named(sandbox, 'Sequence', 'sq010');
    const created = await s.create('Shot', { name: 'sh900', parent_id: sq010, description: 'new' });
    assert.equal(created.action, 'create');
    const id = created.data.id as string;
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(created.data.__entity_type__, 'Shot');
    const [shot] = (await s.query(`select name, description, project.name, status.name from Shot where id is "${id}"`)).data;
    assert.deepEqual([shot?.name, shot?.description, shot?.project.name, shot?.status.name], ['sh900', 'new', 'demo', 'Not started']);
    const updated = await s.update('Shot', [id], { description: 'changed' });
    assert.equal(updated.data.description, 'changed');
    assert.equal((await s.query(`select description from Shot where id is "${id}"`)).data[0]?.description, 'changed');
    assert.deepEqual(await s.delete('Shot', [id]), { action: 'delete', data: true });
    assert.deepEqual((await s.query(`select id from Shot where id is "${id}"`)).data, []);
  });

  test('a reference sets the relation; ensure() finds or creates by its identifying keys (needs the schemas)', async () => {
    const s = await session();
    const sh040 = named(sandbox, 'Shot', 'sh040');
    const upload = named(sandbox, 'AssetType', 'Upload');
    const first = await s.ensure('Asset', { name: 'sh040_plate', context_id: sh040, type_id: upload });
    const again = await s.ensure('Asset', { name: 'sh040_plate', context_id: sh040, type_id: upload });
    assert.equal(again.id, first.id);
    const status = named(sandbox, 'Status', 'Pending Review');
    const version = await s.create('AssetVersion', { asset: { __entity_type__: 'Asset', id: first.id }, status_id: status, comment: 'first' });
    assert.equal(version.data.version, 1, 'the server numbers a version in its asset');
    assert.equal(version.data.asset_id, first.id);
    assert.equal(version.data.user_id, sandbox.store.all('User').find((u) => u.attrs.username === 'artist')!.attrs.id);
  });

  test('datetimes the Session encodes are stored and read back', async () => {
    const s = await session();
    const asset = named(sandbox, 'Asset', 'sh020_comp');
    const status = named(sandbox, 'Status', 'Pending Review');
    const when = new Date('2025-06-01T12:34:56Z');
    const created = await s.create('AssetVersion', { asset_id: asset, status_id: status, date: when });
    const [reply] = await apiCall(sandbox, [{ action: 'query', expression: `select date from AssetVersion where id is "${created.data.id}"` }]);
    assert.deepEqual(reply.data[0].date, { __type__: 'datetime', value: '2025-06-01T12:34:56' });
    const back = await s.query(`select date from AssetVersion where id is "${created.data.id}" and date >= "2025-06-01T00:00:00Z"`);
    assert.equal(back.data.length, 1);
  });
});

describe('errors, as ftrack answers them', () => {
  const status = () => named(sandbox, 'Status', 'Pending Review');

  test('ValidationError: unknown type, unknown attribute (select, where, create), a missing required attribute, a wrong kind', async () => {
    const asset = named(sandbox, 'Asset', 'sh010_comp');
    const cases: [unknown, RegExp][] = [
      [{ action: 'query', expression: 'select name from Spaceship' }, /Unknown entity type/],
      [{ action: 'query', expression: 'select nickname from Shot' }, /Unknown attribute "nickname"/],
      [{ action: 'query', expression: 'select name from Shot where nickname is "x"' }, /Unknown attribute "nickname"/],
      [{ action: 'query', expression: 'select name from Shot where' }, /Expected an attribute/],
      [{ action: 'create', entity_type: 'Spaceship', entity_data: {} }, /Unknown entity type/],
      [{ action: 'create', entity_type: 'AssetVersion', entity_data: { asset_id: asset, status_id: status(), colour: 'red' } }, /Unknown attribute "colour"/],
      // status_id has no default on AssetVersion (ftrack.md).
      [{ action: 'create', entity_type: 'AssetVersion', entity_data: { asset_id: asset } }, /Missing required attribute "status_id"/],
      [{ action: 'create', entity_type: 'AssetVersion', entity_data: { asset_id: asset, status_id: status(), version: 'three' } }, /must be an integer/],
      [{ action: 'create', entity_type: 'AssetVersion', entity_data: { asset_id: randomUUID(), status_id: status() } }, /does not exist/],
      [{ action: 'create', entity_type: 'AssetVersion', entity_data: { asset_id: asset, status_id: status(), link: [] } }, /computed/],
      [{ action: 'create', entity_type: 'TypedContext', entity_data: { name: 'x' } }, /abstract/],
      [{ action: 'create', entity_type: 'FileComponent', entity_data: { id: 'not-a-uuid', name: 'x' } }, /not a valid id/],
      [{ action: 'update', entity_type: 'Asset', entity_key: [asset], entity_data: { id: randomUUID() } }, /cannot be changed/],
      [{ action: 'frobnicate' }, /Unknown action/],
    ];
    for (const [operation, message] of cases) assertError(await apiCall(sandbox, [operation]), 'ValidationError', message);
    const s = await session();
    await assert.rejects(s.query('select nickname from Shot'), (error: Error) => error.name === 'ServerValidationError');
  });

  test('PermissionError where the user may not act: an artist creating a Shot or deleting a Project', async () => {
    const sq010 = named(sandbox, 'Sequence', 'sq010');
    assertError(await apiCall(sandbox, [{ action: 'create', entity_type: 'Shot', entity_data: { name: 'sh999', parent_id: sq010 } }]), 'PermissionError');
    assertError(await apiCall(sandbox, [{ action: 'delete', entity_type: 'Project', entity_key: [named(sandbox, 'Project', 'demo')] }], 'coord', sandbox.apiKeys.coord), 'PermissionError');
    const s = await session();
    await assert.rejects(s.create('Shot', { name: 'sh999', parent_id: sq010 }), (error: Error) => error.name === 'ServerPermissionDeniedError');
    assert.equal(sandbox.store.all('Shot').some((shot) => shot.attrs.name === 'sh999'), false);
  });

  test("another project's entities do not exist for a user: outsider can neither read nor change them", async () => {
    const version = versionId(sandbox, 'sh010_comp', 1);
    const [read] = await apiCall(sandbox, [{ action: 'query', expression: `select id from AssetVersion where id is "${version}"` }], 'outsider', sandbox.apiKeys.outsider);
    assert.deepEqual(read.data, []);
    assertError(await apiCall(sandbox, [{ action: 'update', entity_type: 'AssetVersion', entity_key: [version], entity_data: { comment: 'mine' } }], 'outsider', sandbox.apiKeys.outsider), 'ValidationError', /was found/);
  });

  test('a failing operation replaces the whole batch reply, and the operations before it stay done (no rollback)', async () => {
    const version = versionId(sandbox, 'sh020_comp', 1);
    const componentId = randomUUID();
    const batch = [
      { action: 'create', entity_type: 'FileComponent', entity_data: { id: componentId, name: 'orphan', file_type: '.mov', size: 10, version_id: version } },
      { action: 'create', entity_type: 'AssetVersion', entity_data: { asset_id: named(sandbox, 'Asset', 'sh020_comp') } },
    ];
    assertError(await apiCall(sandbox, batch), 'ValidationError', /status_id/);
    const [left] = await apiCall(sandbox, [{ action: 'query', expression: `select name from FileComponent where id is "${componentId}"` }]);
    assert.deepEqual(left.data.map((c: { name: string }) => c.name), ['orphan'], 'the first create was kept');
    // Sending the same batch again trips over the id it already created.
    assertError(await apiCall(sandbox, batch), 'ValidationError', /already exists/);
  });

  test('inputs are bounded before they are parsed: expression length, operations per batch, body size, JSON', async () => {
    assertError(await apiCall(sandbox, [{ action: 'query', expression: `select id from Shot where name is "${'x'.repeat(70_000)}"` }]), 'ValidationError', /longer than/);
    assertError(await apiCall(sandbox, Array.from({ length: 1001 }, () => ({ action: 'query_server_information' }))), 'ValidationError', /at most 1000/);
    assertError(await apiCall(sandbox, { action: 'query' }), 'ValidationError', /list of operations/);
    const headers = { 'content-type': 'application/json', 'ftrack-user': 'artist', 'ftrack-api-key': sandbox.apiKeys.artist };
    const notJson = await http(`${sandbox.url}/api`, { method: 'POST', headers, body: '[{"action": ' });
    assertError(notJson.json(), 'ValidationError', /not valid JSON/);
    const huge = await http(`${sandbox.url}/api`, { method: 'POST', headers, body: Buffer.alloc(9 * 1024 * 1024, 0x20) });
    assert.equal(huge.status, 413);
    assertError(huge.json(), 'ValidationError', /larger than/);
  });

  test('faults: a proxy 502 is HTML (the JS client throws a SyntaxError on it), then the API answers again', async () => {
    sandbox.faults.update({ apiFailCount: 1, apiModes: ['502'] });
    try {
      const reply = await http(`${sandbox.url}/api`, { method: 'POST', headers: { 'ftrack-user': 'artist', 'ftrack-api-key': sandbox.apiKeys.artist }, body: '[]' });
      assert.equal(reply.status, 502);
      assert.match(String(reply.headers['content-type']), /text\/html/);
      assert.deepEqual(await apiCall(sandbox, []), [], 'the next request goes through');
    } finally {
      sandbox.faults.reset();
    }
  });
});
