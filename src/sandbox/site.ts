import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type RequestHandler } from 'express';
import type { Logger } from 'pino';
import { ApiError, API_CODE, apiErrorHandler, notFound, sendApiError } from './api-errors.ts';
import { accessTokenRouter, requireViewer, TokenIssuer } from './auth.ts';
import { entityRouter } from './entity-routes.ts';
import { FaultInjector, type FaultSettingsInput } from './faults.ts';
import { fileRouter, publicFileRouter } from './file-routes.ts';
import { MalwareScans } from './malware-scan.ts';
import { detailRouter } from './detail-routes.ts';
import { menuRouter } from './menu-routes.ts';
import { RecordStore } from './records.ts';
import { sandboxDefaults } from './defaults.ts';
import { seedSite } from './seed.ts';
import type { SiteContext } from './site-context.ts';
import { ObjectStorage, type ServerSideEncryption } from './storage/object-storage.ts';
import { uploadRouter } from './upload-routes.ts';
import { closeServer, faultsAdminRouter, otherNameFor } from './server-kit.ts';

// The sandbox ShotGrid site: REST API + OAuth on one port, S3-style signed storage on another (a different
// origin, as on a real site), seeded the same on every start. Used by tests, benches and `npm start` when no
// real site is configured.

export interface SandboxOptions {
  port?: number;
  host?: string;
  storagePort?: number;
  /**
   * The host name in storage URLs. Default: another name than the site's for the same machine (`localhost` when
   * the site is on 127.0.0.1, and the reverse), as S3 always has its own. Storage listens on the addresses it
   * resolves to, or on the site's wildcard address.
   */
  storageHost?: string;
  /** 'aws:kms': the bucket is SSE-KMS encrypted (a Media Isolation bucket): its ETags are not MD5s. */
  storageEncryption?: ServerSideEncryption;
  /** Where uploads go: 's3' (default: signed storage URLs, ShotGrid's cloud) or 'sg' (a local install: the site itself). */
  storageService?: 's3' | 'sg';
  /** How long the seeded attachment under malware scan answers 409, seconds from the site's start (default 20). */
  malwareScanSeconds?: number;
  /** Where stored objects live; a temp folder (removed on close) when not given. */
  dataDir?: string;
  /** The ami-transfer service's public URL, where the seeded menu items and the menu page POST. */
  serviceUrl?: string;
  scriptName?: string;
  scriptKey?: string;
  amiSecret?: string;
  /** Access token lifetime (ShotGrid's default: 600 s). */
  tokenTtlSeconds?: number;
  /** Lifetime of signed storage URLs (default 900 s). */
  signedUrlSeconds?: number;
  /** How long a new thumbnail stays the transient placeholder (default 2000 ms). */
  thumbnailDelayMs?: number;
  faults?: FaultSettingsInput;
  log?: Logger;
  /**
   * Connections from client addresses it refuses are closed at once, at the site and its storage: a site reachable
   * only through a proxy (the tests of the outbound proxy).
   */
  acceptClient?: (address: string) => boolean;
}

export interface SandboxSite {
  /** The site URL (the API origin), e.g. http://127.0.0.1:3001. */
  url: string;
  /** Storage's origin, on a host name of its own: http://localhost:PORT when the site is on 127.0.0.1. */
  storageUrl: string;
  /** The page that plays ShotGrid's right-click menu. */
  menuUrl: string;
  scriptName: string;
  scriptKey: string;
  amiSecret: string;
  faults: FaultInjector;
  store: RecordStore;
  storage: ObjectStorage;
  /** Every access and refresh token the site has issued, for tests that look for them where they must not be. */
  issuedTokens(): readonly string[];
  close(): Promise<void>;
}

export async function startSandboxSite(options: SandboxOptions = {}): Promise<SandboxSite> {
  const host = options.host ?? '127.0.0.1';
  const scriptName = options.scriptName ?? sandboxDefaults.scriptName;
  const scriptKey = options.scriptKey ?? sandboxDefaults.scriptKey;
  const amiSecret = options.amiSecret ?? sandboxDefaults.amiSecret;
  const serviceUrl = options.serviceUrl ?? 'http://localhost:3000';
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), 'ami-sandbox-')));
  const ownsDataDir = options.dataDir === undefined;

  const faults = new FaultInjector(options.faults ?? {});
  const store = new RecordStore();
  const storage = new ObjectStorage({
    dir: join(dataDir, 'storage'),
    bucket: 'sandbox-media',
    region: 'us-west-2',
    credentials: { accessKeyId: 'AKIASANDBOXSTORAGE01', secretAccessKey: 'sandbox-storage-secret-key' },
    faults,
    ...(options.storageEncryption ? { serverSideEncryption: options.storageEncryption } : {}),
    ...(options.acceptClient ? { acceptClient: options.acceptClient } : {}),
  });
  const storageHost = options.storageHost ?? otherNameFor(host);
  const wildcard = host === '0.0.0.0' || host === '::';
  await storage.listen(options.storagePort ?? 0, wildcard ? host : storageHost, storageHost);
  const scans = new MalwareScans();
  const credentials = await seedSite(store, storage, { scriptName, scriptKey, amiSecret, serviceUrl, scans });

  let siteUrl = '';
  const authOptions = { store, credentials, faults, tokenTtlSeconds: options.tokenTtlSeconds ?? 600 };
  const tokens = new TokenIssuer(authOptions);
  const site: SiteContext = {
    store,
    storage,
    tokens,
    faults,
    siteUrl: () => siteUrl,
    signedUrlSeconds: options.signedUrlSeconds ?? 900,
    thumbnailDelayMs: options.thumbnailDelayMs ?? 2000,
    storageService: options.storageService ?? 's3',
    scans,
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(['/api', '/file_serve'], injectApiFaults(faults));
  app.use(publicFileRouter());
  app.use(accessTokenRouter(authOptions, tokens));
  app.use(['/api/v1/entity', '/file_serve'], requireViewer(tokens));
  app.use(uploadRouter(site));
  app.use(fileRouter(site));
  app.use(entityRouter(site));
  app.use('/sandbox/admin', faultsAdminRouter(faults));
  app.use(menuRouter(site));
  app.use(detailRouter(site));
  app.use('/api', () => {
    throw notFound('No such API endpoint');
  });
  app.use(apiErrorHandler);

  const server = createServer(app);
  const accept = options.acceptClient;
  if (accept) server.on('connection', (socket: Socket) => void (accept(socket.remoteAddress ?? '') || socket.destroy()));
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  siteUrl = `http://${host}:${(server.address() as AddressInfo).port}`;
  scans.startClock(options.malwareScanSeconds ?? 20);
  options.log?.info({ url: siteUrl, storage: storage.origin }, 'sandbox ShotGrid site listening');

  return {
    url: siteUrl,
    storageUrl: storage.origin,
    menuUrl: `${siteUrl}/sandbox/menu`,
    scriptName,
    scriptKey,
    amiSecret,
    faults,
    store,
    storage,
    issuedTokens: () => tokens.issued(),
    close: async () => {
      await closeServer(server);
      await storage.close();
      if (ownsDataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}


/** Latency and injected API errors (429 with Retry-After, 502 from a proxy, 503) before any API handler. */
function injectApiFaults(faults: FaultInjector): RequestHandler {
  return async (_req, res, next) => {
    await faults.delay();
    const fault = faults.apiFault();
    if (fault === '429') {
      res.set('Retry-After', String(faults.settings.retryAfterSeconds));
      sendApiError(res, new ApiError(429, API_CODE.server, 'Too many requests: slow down'));
    } else if (fault === '502') {
      // A proxy in front of the site answers, not the site: HTML, not ShotGrid's JSON.
      res.status(502).type('text/html').send('<html><body><h1>502 Bad Gateway</h1></body></html>');
    } else if (fault === '503') {
      sendApiError(res, new ApiError(503, API_CODE.server, 'Service temporarily unavailable'));
    } else {
      next();
    }
  };
}
