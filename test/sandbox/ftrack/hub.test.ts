import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { Event, EventHub, type EventPayload } from '@ftrack/api';
import { defaultHeartbeatIntervalMs } from '../../../src/sandbox/ftrack/hub/socket-io.ts';
import { startFtrackSandbox, type FtrackSandbox } from '../../../src/sandbox/ftrack/site.ts';
import { http, named, RawHubClient, unrefLongTimers } from './helpers.ts';

// The event hub as @ftrack/api 1.11.2 speaks it (ftrack.md, "Right-click actions: the event hub"), with the package's
// own EventHub on both sides where it fits and a raw socket.io 0.9 client where a frame itself is the point. Nothing
// here waits on a clock: "did not arrive" is shown by a later event on the same connection that did.

let sandbox: FtrackSandbox;
const hubs: EventHub[] = [];
const raws: RawHubClient[] = [];

before(async () => {
  unrefLongTimers();
  // A short heartbeat so that tests see several; a client silent for half a second is dropped.
  sandbox = await startFtrackSandbox({ heartbeatIntervalMs: 100, heartbeatTimeoutMs: 500 });
});
after(async () => {
  for (const hub of hubs) hub.disconnect();
  for (const raw of raws) raw.close();
  await sandbox?.close();
});

/** A connected @ftrack/api EventHub (one per user and key: the package shares a socket between equal ones). */
function eventHub(user: 'artist' | 'coord' | 'outsider' | 'ami-transfer', key: string): EventHub {
  const hub = new EventHub(sandbox.url, user, key);
  hub.connect();
  hubs.push(hub);
  return hub;
}

async function raw(user = 'outsider', key = sandbox.apiKeys.outsider): Promise<RawHubClient> {
  const client = await RawHubClient.connect(sandbox, user, key);
  raws.push(client);
  return client;
}

/**
 * Sends `client` an event targeted at it from `from` and waits for it. The hub handles one connection's frames in
 * order and writes to a connection in order: whatever `from` published before and was routed to `client` has
 * arrived by then. (`client` subscribed to the barrier topic on connecting, before any subscription a test waits for.)
 */
async function barrier(from: RawHubClient, client: RawHubClient): Promise<void> {
  const id = from.publish({ topic: 'sandbox.barrier', data: {}, target: `id=${client.barrierId}` });
  await client.waitFor(() => client.events.some((event) => event.id === id));
}

describe('handshake', () => {
  test('answers "<sid>:60:60:websocket"; a wrong key is refused; a sid opens one WebSocket only', async () => {
    const query = new URLSearchParams({ api_user: 'artist', api_key: sandbox.apiKeys.artist });
    const reply = await http(`${sandbox.url}/socket.io/1/?${query}`);
    assert.equal(reply.status, 200);
    const text = reply.body.toString();
    // "<sid>:<heartbeat timeout>:<close timeout>:websocket": this sandbox drops silent clients after 0.5 s.
    assert.match(text, /^[0-9a-f]{32}:1:60:websocket$/);
    const bad = await http(`${sandbox.url}/socket.io/1/?${new URLSearchParams({ api_user: 'artist', api_key: 'wrong' })}`);
    assert.equal(bad.status, 401);

    const url = `${sandbox.url.replace('http', 'ws')}/socket.io/1/websocket/${text.split(':')[0]}?${query}`;
    const first = new RawHubClient();
    raws.push(first);
    await first.open(url);
    await first.waitFor(() => first.frames.includes('1::'));
    const second = new RawHubClient();
    raws.push(second);
    await second.open(url);
    await second.waitFor(() => second.closed);
    assert.deepEqual(second.frames, ['7:::1+0'], 'a used sid is not handshaken: the client must handshake again');
  });
});

describe('routing', () => {
  test('an EventHub listening on topic=ftrack.action.discover gets a published discover; its reply reaches only the publisher', async () => {
    const selection = [{ entityId: named(sandbox, 'Shot', 'sh010'), entityType: 'task' }];
    const seen: unknown[] = [];
    const listener = eventHub('ami-transfer', sandbox.apiKey);
    listener.subscribe('topic=ftrack.action.discover', (event: EventPayload) => {
      seen.push((event.data as { selection?: unknown }).selection);
      return { items: [{ label: 'Upload files', actionIdentifier: 'ami-transfer.upload' }] };
    });
    const bystander = await raw();
    bystander.subscribe('topic=ftrack.meta.reply');
    bystander.subscribe('topic=ftrack.action.discover');
    await sandbox.hub.whenSubscribed('ftrack.action.discover', 2);

    const publisher = eventHub('artist', sandbox.apiKeys.artist);
    const discover = new Event('ftrack.action.discover', { selection });
    const reply = (await publisher.publishAndWaitForReply(discover, { timeout: 30 })) as { data: unknown; topic: string; inReplyToEvent: string };
    assert.deepEqual(reply.data, { items: [{ label: 'Upload files', actionIdentifier: 'ami-transfer.upload' }] });
    assert.equal(reply.topic, 'ftrack.meta.reply');
    assert.equal(reply.inReplyToEvent, discover.getData().id);
    assert.deepEqual(seen, [selection]);

    // The bystander saw the discover (untargeted) but not the reply (targeted at the publisher).
    await barrier(await raw('coord', sandbox.apiKeys.coord), bystander);
    assert.ok(bystander.events.some((event) => event.id === discover.getData().id));
    assert.equal(bystander.events.some((event) => event.inReplyToEvent === discover.getData().id), false);
    // The publisher's connection got the reply once, although the JS client subscribes its replies twice (strict).
    const replyFrames = sandbox.socketIo.connections
      .filter((connection) => connection.username === 'artist')
      .flatMap((connection) => connection.sent)
      .filter((frame) => frame.includes(`"inReplyToEvent":"${discover.getData().id}"`));
    assert.equal(replyFrames.length, 1);
  });

  test('a subscriber id subscribed twice is one subscriber: the event arrives once', async () => {
    const client = await raw('coord', sandbox.apiKey);
    const subscriber = randomUUID();
    for (let i = 0; i < 3; i++) client.subscribe('topic=sandbox.test.duplicate', subscriber);
    const publisher = await raw('artist', sandbox.apiKey);
    await sandbox.hub.whenSubscribed('sandbox.test.duplicate');
    const id = publisher.publish({ topic: 'sandbox.test.duplicate', data: {} });
    await barrier(publisher, client);
    assert.equal(client.events.filter((event) => event.id === id).length, 1);
  });

  test('two distinct subscribers on one connection each get a copy (per-subscriber delivery, the pessimistic case)', async () => {
    const client = await raw('ami-transfer', sandbox.apiKeys['ami-transfer']);
    client.subscribe('topic=sandbox.twice.event');
    client.subscribe('topic=sandbox.twice.*');
    const publisher = await raw('artist', sandbox.apiKey);
    await sandbox.hub.whenSubscribed('sandbox.twice.event', 2);
    const id = publisher.publish({ topic: 'sandbox.twice.event', data: {} });
    const other = publisher.publish({ topic: 'sandbox.other', data: {} });
    await barrier(publisher, client);
    assert.equal(client.events.filter((event) => event.id === id).length, 2);
    assert.equal(client.events.some((event) => event.id === other), false, 'only matching topics');
  });

  test('an event whose target the hub cannot read reaches no one', async () => {
    const client = await raw('coord', sandbox.apiKey);
    client.subscribe('topic=sandbox.test.target');
    const publisher = await raw('artist', sandbox.apiKey);
    await sandbox.hub.whenSubscribed('sandbox.test.target');
    const unreadable = publisher.publish({ topic: 'sandbox.test.target', data: {}, target: 'id in (x)' });
    const elsewhere = publisher.publish({ topic: 'sandbox.test.target', data: {}, target: `id=${randomUUID()}` });
    await barrier(publisher, client);
    assert.equal(client.events.some((event) => event.id === unreadable || event.id === elsewhere), false);
  });
});

describe('heartbeats and frames', () => {
  test('the server sends 2:: (by default every 10 s, under the JS client\'s 15 s) and the client stays', async () => {
    assert.ok(defaultHeartbeatIntervalMs < 15_000);
    const client = await raw('artist', sandbox.apiKeys.artist);
    await client.waitFor(() => client.frames.filter((frame) => frame === '2::').length >= 3);
    assert.equal(client.closed, false);
  });

  test('a client that answers no heartbeat is dropped', async () => {
    const client = await raw('coord', sandbox.apiKeys.coord);
    client.answerHeartbeats = false;
    await client.waitFor(() => client.closed);
    assert.ok(client.frames.includes('2::'));
  });

  test('a client asking for an acknowledgement gets a type-6 frame, and its event is routed', async () => {
    const client = await raw('ami-transfer', sandbox.apiKey);
    client.subscribe('topic=sandbox.test.ack');
    await sandbox.hub.whenSubscribed('sandbox.test.ack');
    const id = randomUUID();
    client.send(`5:7+::${JSON.stringify({ name: 'ftrack.event', args: [{ id, topic: 'sandbox.test.ack', data: {}, target: '' }] })}`);
    await client.waitFor(() => client.frames.includes('6:::7+[]') && client.events.some((event) => event.id === id));
  });

  test('a dropped connection: the JS EventHub reconnects by a new handshake and its subscription works again', async () => {
    const listener = eventHub('coord', sandbox.apiKey);
    let heard!: () => void;
    const heardAfter = new Promise<void>((resolve) => {
      heard = resolve;
    });
    listener.subscribe('topic=sandbox.test.reconnect', (event: EventPayload) => {
      if ((event.data as { n?: string }).n === 'after') heard();
    });
    await sandbox.hub.whenSubscribed('sandbox.test.reconnect');
    await sandbox.socketIo.dropAll();
    assert.equal(sandbox.hub.subscriberCount('sandbox.test.reconnect'), 0);
    await sandbox.hub.whenSubscribed('sandbox.test.reconnect');
    const publisher = await raw('artist', sandbox.apiKeys.artist);
    publisher.publish({ topic: 'sandbox.test.reconnect', data: { n: 'after' } });
    await heardAfter;
  });

  test('no frame with a message id (5:1+::) was sent on any connection: only 1::, 2::, 5:::, 6::: and 7:::', () => {
    const sent = sandbox.socketIo.connections.flatMap((connection) => connection.sent);
    assert.ok(sent.length > 20, 'the tests above exchanged frames');
    for (const frame of sent) {
      assert.doesNotMatch(frame, /^5:\d/);
      assert.match(frame, /^(1::|2::|5:::\{|6:::|7:::)/);
    }
    // And every 5::: frame parses as the JS client parses it.
    for (const frame of sent.filter((f) => f.startsWith('5'))) {
      const { name, args } = JSON.parse(frame.replace(/^\d:::?/, ''));
      assert.equal(name, 'ftrack.event');
      assert.equal(typeof args[0].topic, 'string');
    }
  });
});

describe('transport bounds', () => {
  test('a path that is not the hub is refused; a frame over 1 MiB closes the connection', async () => {
    const stray = new WebSocket(`${sandbox.url.replace('http', 'ws')}/socket.io/1/other`);
    const status = await new Promise<number>((resolve) => stray.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)).on('error', () => resolve(-1)));
    assert.equal(status, 404);
    const client = await raw('outsider', sandbox.apiKeys.outsider);
    client.send(`5:::${'x'.repeat(1024 * 1024 + 10)}`);
    await client.waitFor(() => client.closed);
  });
});
