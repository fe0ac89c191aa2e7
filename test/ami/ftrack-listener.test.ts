import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Writable } from 'node:stream';
import { Event, EventHub } from '@ftrack/api';
import { request } from 'undici';
import { HubLaunches, LAUNCH_TOKEN_SECONDS } from '../../src/ami/hub-launches.ts';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startFtrackSandbox, type FtrackSandbox } from '../../src/sandbox/ftrack/site.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { MemoryKeyValueStore } from '../../src/store/memory-store.ts';
import { named, unrefLongTimers, versionId } from '../sandbox/ftrack/helpers.ts';

// ftrack's Actions menu reaching the service (issue 15's entry): the service started in sandbox mode with
// SANDBOX_SITE=ftrack, its action listener on the sandbox's event hub, and a person's menu played by @ftrack/api's
// own EventHub connected as that person (the web UI publishes discover and launch the same way). Real sockets
// throughout; nothing waits on a clock: a reconnection is awaited as the hub's subscription coming back.

let sandbox: FtrackSandbox;
let service: RunningServer;
const hubs: EventHub[] = [];
const logLines: string[] = [];

before(async () => {
  unrefLongTimers();
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logLines.push(chunk.toString('utf8'));
      done();
    },
  });
  const config = loadConfig({ PORT: '0', HOST: '127.0.0.1', SANDBOX_PORT: '0', SANDBOX_STORAGE_PORT: '0', SANDBOX_SITE: 'ftrack', LOG_LEVEL: 'info' });
  service = await startServer(config, {
    log: createLogger({ level: 'info', destination }),
    startFtrackSandbox: async (options) => (sandbox = await startFtrackSandbox(options)),
  });
  await sandbox.hub.whenSubscribed('ftrack.action.discover');
  await sandbox.hub.whenSubscribed('ftrack.action.launch');
});
after(async () => {
  for (const hub of hubs) hub.disconnect();
  await service?.close(0);
});

/**
 * A person's web UI on the hub, one per person: the package shares one socket per user and key, and a second
 * EventHub on a socket already connected never subscribes to its replies.
 */
const menus = new Map<string, EventHub>();
function menuOf(user: 'artist' | 'coord' | 'outsider'): EventHub {
  let hub = menus.get(user);
  if (hub === undefined) {
    hub = new EventHub(sandbox.url, user, sandbox.apiKeys[user]);
    hub.connect();
    hubs.push(hub);
    menus.set(user, hub);
  }
  return hub;
}

type Selection = { entityId: string; entityType: string }[];
interface Item {
  label: string;
  actionIdentifier: string;
}

async function discover(hub: EventHub, selection: Selection): Promise<Item[]> {
  const reply = (await hub.publishAndWaitForReply(new Event('ftrack.action.discover', { selection }), { timeout: 60 })) as { data: { items: Item[] } };
  return reply.data.items;
}

async function launch(hub: EventHub, actionIdentifier: string, selection: Selection): Promise<Record<string, unknown>> {
  const reply = (await hub.publishAndWaitForReply(new Event('ftrack.action.launch', { actionIdentifier, label: 'x', selection }), { timeout: 60 })) as {
    data: Record<string, unknown>;
  };
  return reply.data;
}

async function get(url: string): Promise<{ status: number; location: string | undefined; text: string }> {
  const response = await request(url, { method: 'GET' });
  const location = response.headers['location'];
  return { status: response.statusCode, location: typeof location === 'string' ? location : undefined, text: await response.body.text() };
}

const shot = (name: string) => ({ entityId: named(sandbox, 'Shot', name), entityType: 'task' });
const identifiers = (items: Item[]) => items.map((item) => item.actionIdentifier).sort();

describe('discover', () => {
  test('answers with the actions that fit the selection: a shot, a version, a task', async () => {
    const artist = menuOf('artist');
    assert.deepEqual(identifiers(await discover(artist, [shot('sh010'), shot('sh020')])), [
      'ami-transfer.attach-files',
      'ami-transfer.download-zip',
      'ami-transfer.set-thumbnail',
      'ami-transfer.submit-for-review',
    ]);
    const version = { entityId: versionId(sandbox, 'sh010_comp', 2), entityType: 'assetversion' };
    assert.deepEqual(identifiers(await discover(artist, [version])), [
      'ami-transfer.attach-files',
      'ami-transfer.download-zip',
      'ami-transfer.set-thumbnail',
      'ami-transfer.upload-files',
    ]);
    const task = sandbox.store.all('Task')[0]!.attrs.id as string;
    assert.ok(identifiers(await discover(artist, [{ entityId: task, entityType: 'task' }])).includes('ami-transfer.submit-for-review'));
    const labels = (await discover(artist, [version])).map((item) => item.label);
    assert.ok(labels.includes('Upload files'), 'the registry\'s titles as labels');
  });
});

describe('launch', () => {
  test('a widget reply whose URL opens the action page once, for the user who launched', async () => {
    const coord = menuOf('coord');
    const reply = await launch(coord, 'ami-transfer.attach-files', [shot('sh030')]);
    assert.equal(reply['success'], true);
    assert.equal(reply['type'], 'widget');
    assert.equal(reply['title'], 'Attach files');
    const url = String(reply['url']);
    assert.match(url, new RegExp(`^${service.publicUrl}/ftrack/launch/[A-Za-z0-9_-]{43}$`));

    const opened = await get(url);
    assert.equal(opened.status, 303);
    assert.match(opened.location ?? '', /^\/ami\/attach-files\/[A-Za-z0-9_-]{43}$/);
    const page = await get(`${service.url}${opened.location}`);
    assert.equal(page.status, 200, page.text.slice(0, 500));
    assert.match(page.text, /sh030/);
    assert.match(page.text, /coord/);

    const again = await get(url);
    assert.equal(again.status, 410);
    assert.match(again.text, /already used/);
    const unknown = await get(`${service.url}/ftrack/launch/${'A'.repeat(43)}`);
    assert.equal(unknown.status, 410);
    assert.match(unknown.text, /expired/);
    assert.equal((await get(`${service.url}/ftrack/launch/short`)).status, 410);

    // The page of a launch gone (expired, discarded) sends ftrack's users back to ftrack, not to ShotGrid.
    const gone = await get(`${service.url}/ami/attach-files/${'A'.repeat(43)}`);
    assert.equal(gone.status, 410);
    assert.match(gone.text, /run the action again from ftrack\./);
    assert.match(gone.text, /pick the action again from ftrack(&#39;|')s Actions menu/);
    assert.doesNotMatch(gone.text, /ShotGrid/);

    // So does the home page: the actions are in ftrack's Actions menu, offered through the hub.
    const home = await get(`${service.url}/`);
    assert.equal(home.status, 200);
    assert.match(home.text, /works from ftrack(&#39;|')s Actions menu/);
    assert.match(home.text, /event hub/);
    assert.doesNotMatch(home.text, /ShotGrid|Action Menu Item/);
  });

  test('an action that does not fit the selection is refused in the reply, with no link', async () => {
    const reply = await launch(menuOf('artist'), 'ami-transfer.upload-files', [shot('sh010')]);
    assert.equal(reply['success'], false);
    assert.match(String(reply['message']), /works on Version/);
    assert.equal(reply['url'], undefined);
  });

  test("another tool's launch is left alone: no reply from the service", async () => {
    const artist = menuOf('artist');
    const foreign = new Event('ftrack.action.launch', { actionIdentifier: 'someone-else.publish', selection: [shot('sh010')] });
    const foreignId = foreign.getData().id as string;
    await artist.publish(foreign);
    // Events from one connection are handled in order, and the next one's reply needs the site: once it is back,
    // the foreign launch was handled long before.
    await discover(artist, [shot('sh010')]);
    const replies = sandbox.hub.history.filter((event) => event.topic === 'ftrack.meta.reply' && (event as { inReplyToEvent?: string }).inReplyToEvent === foreignId);
    assert.deepEqual(replies, []);
    assert.ok(sandbox.hub.history.some((event) => (event as { id?: string }).id === foreignId), 'the foreign launch did go through the hub');
  });
});

describe('the hub connection', () => {
  test('is in /readyz; after the hub drops every connection the listener comes back and answers again', async () => {
    const ready = (await get(`${service.url}/readyz`)).text;
    assert.equal(JSON.parse(ready).checks.hub.ok, true);

    await sandbox.socketIo.dropAll();
    // The EventHub reconnects by itself and subscribes again.
    await sandbox.hub.whenSubscribed('ftrack.action.discover');
    await sandbox.hub.whenSubscribed('ftrack.action.launch');
    const items = await discover(menuOf('outsider'), [shot('bl010')]);
    assert.ok(identifiers(items).includes('ami-transfer.download-zip'));
  });

  test('the API key is in no log line', () => {
    assert.ok(logLines.length > 0);
    assert.ok(logLines.some((line) => line.includes('ftrack action listener started')));
    for (const line of logLines) assert.ok(!line.includes(sandbox.apiKey), 'a log line holds the API key');
  });
});

describe('launch links', () => {
  test('expire after their time even while the store still holds them; each works once', async () => {
    let now = Date.now();
    const store = new MemoryKeyValueStore();
    const launches = new HubLaunches(store, { now: () => now });
    const context = { action: 'download-zip' as const, siteUrl: 'http://ftrack.test', user: { id: randomUUID(), login: 'artist' }, signed: true, entityType: 'Shot', selectedIds: [randomUUID()], project: null, title: null };
    const once = await launches.issue(context);
    assert.deepEqual(await launches.redeem(once), { ok: true, context });
    assert.deepEqual(await launches.redeem(once), { ok: false, reason: 'used' });

    const late = await launches.issue(context);
    now += LAUNCH_TOKEN_SECONDS * 1000;
    assert.deepEqual(await launches.redeem(late), { ok: false, reason: 'expired' });
    await store.close();
  });
});

describe('a hub out of reach', () => {
  test('is degraded in /readyz (200), keeps being retried, and its failures print no API key', async () => {
    const apiKey = `key-${randomUUID()}`;
    let handshakes = 0;
    let retried: () => void = () => {};
    const twice = new Promise<void>((resolve) => (retried = resolve));
    // Answers the handshake, then refuses every WebSocket: the client's error path, then its reconnection.
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/socket.io/1/?')) {
        if (++handshakes >= 2) retried();
        res.end(`${randomUUID().replace(/-/g, '')}:60:60:websocket`);
        return;
      }
      res.writeHead(503).end();
    });
    server.on('upgrade', (_req, socket: Socket) => socket.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const printed: string[] = [];
    const original = { error: console.error, log: console.log, warn: console.warn };
    for (const name of ['error', 'log', 'warn'] as const) console[name] = (...args: unknown[]) => void printed.push(inspect(args, { depth: 6 }));
    let down: RunningServer | undefined;
    try {
      down = await startServer(
        loadConfig({
          PORT: '0',
          HOST: '127.0.0.1',
          LOG_LEVEL: 'silent',
          READYZ_CACHE_SECONDS: '1',
          FTRACK_SERVER_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
          FTRACK_API_USER: 'ami-transfer',
          FTRACK_API_KEY: apiKey,
        }),
        { log: createLogger({ level: 'silent' }) },
      );
      await twice;
      const ready = await get(`${down.url}/readyz`);
      assert.equal(ready.status, 200);
      const report = JSON.parse(ready.text);
      assert.equal(report.status, 'degraded');
      assert.equal(report.checks.hub.ok, false);
      assert.equal(report.checks.hub.error.code, 'hub_disconnected');
    } finally {
      Object.assign(console, original);
      await down?.close(0);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    for (const line of printed) assert.ok(!line.includes(apiKey), `printed the key: ${line.slice(0, 200)}`);
  });
});
