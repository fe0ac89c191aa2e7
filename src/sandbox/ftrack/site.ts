import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import type { Logger } from 'pino';
import { FaultInjector, type FaultSettingsInput } from '../faults.ts';
import { ObjectStorage } from '../storage/object-storage.ts';
import { QuerySigner } from '../storage/sigv4.ts';
import { Accounts } from './access.ts';
import { apiRouter } from './api-route.ts';
import { downloadRouter } from './download-routes.ts';
import { EventHub, type Delivery } from './hub/event-hub.ts';
import { SocketIoServer } from './hub/socket-io.ts';
import { menuRouter } from './menu-routes.ts';
import type { EncodeJob } from './operations.ts';
import { seedFtrack, seedId, type SeededUser } from './seed.ts';
import { ServerLocation } from './server-location.ts';
import { EntityStore } from './store.ts';
import { closeServer, faultsAdminRouter, otherNameFor } from '../server-kit.ts';

// The sandbox ftrack server: /api, the event hub (socket.io 0.9 over a WebSocket), /component downloads and the
// action menu page on one origin; the server location's S3-style storage on another host name. Seeded the same on
// every start. What it plays and refuses is in ../../../../shared/protocol/ftrack.md; its choices where that is
// UNCONFIRMED are in README.md beside this file.

export interface FtrackSandboxOptions {
  port?: number;
  host?: string;
  storagePort?: number;
  /** Default: another name for the same machine than the API's (`localhost` for 127.0.0.1), as S3 has its own. */
  storageHost?: string;
  /** Where stored objects live; a temp folder (removed on close) when not given. */
  dataDir?: string;
  /** The site's API key: it acts as any active user the request names (default: a fixed seeded key). */
  siteApiKey?: string;
  /** Lifetime of signed storage URLs (default 900 s). Faults' signedUrlTtlSeconds shortens even issued ones. */
  signedUrlSeconds?: number;
  /** Most entities one query answers (default 100); clients page with offset. */
  pageSize?: number;
  /** The hub's heartbeat (default 10 s; must be under 15 s). */
  heartbeatIntervalMs?: number;
  /** A hub client silent this long is dropped (default 60 s). */
  heartbeatTimeoutMs?: number;
  /** See HubOptions.delivery (default 'per-subscriber'). */
  hubDelivery?: Delivery;
  /** How long the menu page waits for discover replies (default 2000 ms) and for a launch reply (default 10000 ms). */
  discoverWaitMs?: number;
  launchWaitMs?: number;
  serverVersion?: string;
  faults?: FaultSettingsInput;
  log?: Logger;
}

export interface FtrackSandbox {
  /** The server URL (API, hub, downloads, menu), e.g. http://127.0.0.1:PORT. */
  url: string;
  /** Storage's origin, on a host name of its own. */
  storageUrl: string;
  /** The page that plays ftrack's action menu. */
  menuUrl: string;
  /** The service's credentials: an administrator and the site's API key. */
  apiUser: string;
  apiKey: string;
  /** Each seeded user's personal API key (artist, coord, outsider, ami-transfer). */
  apiKeys: Readonly<Record<SeededUser, string>>;
  store: EntityStore;
  storage: ObjectStorage;
  hub: EventHub;
  socketIo: SocketIoServer;
  faults: FaultInjector;
  encodeJobs: readonly EncodeJob[];
  close(): Promise<void>;
}

const bucket = 'ftrack-sandbox-server-location';
const region = 'eu-west-1';
const storageCredentials = { accessKeyId: 'AKIAFTRACKSANDBOX001', secretAccessKey: 'ftrack-sandbox-storage-secret' };

export async function startFtrackSandbox(options: FtrackSandboxOptions = {}): Promise<FtrackSandbox> {
  const host = options.host ?? '127.0.0.1';
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'ftrack-sandbox-')));
  const ownsDataDir = options.dataDir === undefined;
  const faults = new FaultInjector(options.faults ?? {});

  const storage = new ObjectStorage({ dir: join(dataDir, 'storage'), bucket, region, credentials: storageCredentials, faults });
  const storageHost = options.storageHost ?? otherNameFor(host);
  const wildcard = host === '0.0.0.0' || host === '::';
  await storage.listen(options.storagePort ?? 0, wildcard ? host : storageHost, storageHost);

  const store = new EntityStore();
  const siteApiKey = options.siteApiKey ?? seedId('site-api-key');
  const accounts = new Accounts(store, siteApiKey);
  const seeded = await seedFtrack(store, accounts, storage, siteApiKey);
  const serverLocation = new ServerLocation({
    storage,
    signer: new QuerySigner(region, storageCredentials),
    bucket,
    signedUrlSeconds: options.signedUrlSeconds ?? 900,
  });
  const hub = new EventHub(options.hubDelivery ? { delivery: options.hubDelivery } : {});
  const socketIo = new SocketIoServer({
    hub,
    accounts,
    ...(options.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: options.heartbeatIntervalMs } : {}),
    ...(options.heartbeatTimeoutMs !== undefined ? { heartbeatTimeoutMs: options.heartbeatTimeoutMs } : {}),
  });
  const encodeJobs: EncodeJob[] = [];

  let siteUrl = '';
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/socket.io/1/', socketIo.handshake());
  app.use(
    apiRouter({
      store,
      accounts,
      faults,
      serverLocation,
      encodeJobs,
      pageSize: options.pageSize ?? 100,
      defaultContextStatusId: seeded.defaultContextStatusId,
      serverVersion: options.serverVersion ?? '4.14.2',
    }),
  );
  app.use(downloadRouter({ store, accounts, serverLocation }));
  app.use(
    menuRouter({
      store,
      accounts,
      hub,
      siteUrl: () => siteUrl,
      discoverWaitMs: options.discoverWaitMs ?? 2000,
      launchWaitMs: options.launchWaitMs ?? 10_000,
    }),
  );
  app.use('/sandbox/admin', faultsAdminRouter(faults));
  app.use((_req, res) => void res.status(404).type('text/plain').send('Not found'));

  const server = createServer(app);
  server.on('upgrade', (req, socket, head) => socketIo.upgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const shownHost = wildcard ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  siteUrl = `http://${shownHost}:${(server.address() as AddressInfo).port}`;
  options.log?.info({ url: siteUrl, storage: storage.origin }, 'sandbox ftrack server listening');

  return {
    url: siteUrl,
    storageUrl: storage.origin,
    menuUrl: `${siteUrl}/sandbox/menu`,
    apiUser: 'ami-transfer',
    apiKey: siteApiKey,
    apiKeys: seeded.apiKeys,
    store,
    storage,
    hub,
    socketIo,
    faults,
    encodeJobs,
    close: async () => {
      socketIo.close();
      await closeServer(server);
      await storage.close();
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}
