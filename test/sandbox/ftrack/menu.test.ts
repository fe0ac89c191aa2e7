import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { EventHub, type EventPayload } from '@ftrack/api';
import { startFtrackSandbox, type FtrackSandbox } from '../../../src/sandbox/ftrack/site.ts';
import { http, named, unrefLongTimers, versionId } from './helpers.ts';

// The page that plays ftrack's action menu, driven over HTTP as its script drives it: an @ftrack/api EventHub
// stands in for the service's action listener; the sandbox publishes discover and launch as the web UI would.

let sandbox: FtrackSandbox;
let listener: EventHub;
const discovered: EventPayload[] = [];
const launched: EventPayload[] = [];
const WIDGET_URL = 'http://service.test/ftrack/launch/signed-context';

before(async () => {
  unrefLongTimers();
  sandbox = await startFtrackSandbox({ discoverWaitMs: 5000, launchWaitMs: 300 });
  listener = new EventHub(sandbox.url, sandbox.apiUser, sandbox.apiKey);
  listener.connect();
  listener.subscribe('topic=ftrack.action.discover', (event: EventPayload) => {
    discovered.push(event);
    return { items: [{ label: 'Upload files', actionIdentifier: 'ami-transfer.upload', description: 'Upload to the selection' }] };
  });
  // The JS client receives every launch: a listener answers only its own actions (ftrack.md).
  listener.subscribe('topic=ftrack.action.launch', (event: EventPayload) => {
    launched.push(event);
    const data = event.data as { actionIdentifier?: string };
    if (data.actionIdentifier !== 'ami-transfer.upload') return undefined;
    return { success: true, message: 'Opening the upload page', type: 'widget', url: WIDGET_URL, title: 'Upload files' };
  });
  await sandbox.hub.whenSubscribed('ftrack.action.launch');
  await sandbox.hub.whenSubscribed('ftrack.action.discover');
});
after(async () => {
  listener?.disconnect();
  await sandbox?.close();
});

const postJson = (path: string, body: unknown) =>
  http(`${sandbox.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

test('the page lists what the chosen user may see, with its own script and a strict CSP', async () => {
  const page = await http(`${sandbox.url}/sandbox/menu?type=Shot&login=artist`);
  assert.equal(page.status, 200);
  const html = page.body.toString();
  for (const shot of ['sh010', 'sh020', 'sh030', 'sh040']) assert.match(html, new RegExp(`>${shot}<`));
  assert.doesNotMatch(html, />bl010</);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  assert.equal((await http(`${sandbox.url}/public/sandbox/ftrack/menu.js`)).status, 200);
  assert.match((await http(`${sandbox.url}/sandbox/menu?type=Shot&login=outsider`)).body.toString(), />bl010</);
  const versions = (await http(`${sandbox.url}/sandbox/menu?type=AssetVersion&login=artist`)).body.toString();
  assert.match(versions, /sh010_comp v002/);
});

test('discover goes through the hub with data.selection and the user; the items replied come back', async () => {
  const ids = [named(sandbox, 'Shot', 'sh010'), named(sandbox, 'Shot', 'sh020')];
  const reply = await postJson('/sandbox/menu/discover', { login: 'artist', type: 'Shot', ids });
  assert.equal(reply.status, 200, reply.body.toString());
  assert.deepEqual(reply.json().items, [{ label: 'Upload files', actionIdentifier: 'ami-transfer.upload', description: 'Upload to the selection' }]);
  const event = discovered.at(-1)!;
  assert.deepEqual((event.data as { selection: unknown }).selection, ids.map((entityId) => ({ entityId, entityType: 'task' })));
  assert.equal(event.source.user.username, 'artist');
  const versions = await postJson('/sandbox/menu/discover', { login: 'coord', type: 'AssetVersion', ids: [versionId(sandbox, 'sh010_comp', 2)] });
  assert.equal(versions.status, 200);
  assert.deepEqual((discovered.at(-1)!.data as { selection: unknown }).selection, [{ entityId: versionId(sandbox, 'sh010_comp', 2), entityType: 'assetversion' }]);
});

test('launch publishes the item with the selection; a widget reply carries the URL the page opens', async () => {
  const ids = [named(sandbox, 'Shot', 'sh030')];
  const item = { label: 'Upload files', actionIdentifier: 'ami-transfer.upload', description: 'Upload to the selection' };
  const reply = await postJson('/sandbox/menu/launch', { login: 'coord', type: 'Shot', ids, item });
  assert.equal(reply.status, 200, reply.body.toString());
  assert.deepEqual(reply.json(), { reply: { success: true, message: 'Opening the upload page', type: 'widget', url: WIDGET_URL, title: 'Upload files' } });
  const event = launched.at(-1)!;
  assert.equal(event.topic, 'ftrack.action.launch');
  assert.deepEqual(event.data, { ...item, selection: [{ entityId: ids[0], entityType: 'task' }] });
  assert.equal(event.source.user.username, 'coord');
});

test("a launch no listener answers is said so; bad selections are refused before anything is published", async () => {
  const ids = [named(sandbox, 'Shot', 'sh030')];
  const silent = await postJson('/sandbox/menu/launch', { login: 'coord', type: 'Shot', ids, item: { actionIdentifier: 'someone-else.action' } });
  assert.deepEqual(silent.json(), { reply: null, timedOut: true });
  const published = sandbox.hub.history.length;
  const refusals = [
    { login: 'outsider', type: 'Shot', ids },
    { login: 'artist', type: 'Shot', ids: ['not-a-uuid'] },
    { login: 'artist', type: 'User', ids: [] },
    { login: 'nobody', type: 'Shot', ids },
    { login: 'artist', type: 'Shot', ids: [randomUUID()] },
  ];
  for (const body of refusals) assert.equal((await postJson('/sandbox/menu/discover', body)).status, 400, JSON.stringify(body));
  assert.equal(sandbox.hub.history.length, published);
});

test('with default settings the handshake says "<sid>:60:60:websocket"', async () => {
  const query = new URLSearchParams({ api_user: 'artist', api_key: sandbox.apiKeys.artist });
  assert.match((await http(`${sandbox.url}/socket.io/1/?${query}`)).body.toString(), /^[0-9a-f]{32}:60:60:websocket$/);
});
