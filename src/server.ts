import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { LaunchRecords } from './actions/launch-record.ts';
import { createApp } from './app.ts';
import { ReviewSubmissions } from './actions/review-submissions.ts';
import { ContextStore } from './ami/context-store.ts';
import { ReplayGuard } from './ami/replay-guard.ts';
import { ConfigError, loadConfig, type Config } from './config.ts';
import { createLogger, type Logger } from './log.ts';
import { reachableHost } from './net/addresses.ts';
import { createOutbound } from './net/outbound.ts';
import { Readiness } from './web/health.ts';
import { startMetricsServer, type MetricsServer } from './web/metrics-server.ts';
import { sandboxDefaults } from './sandbox/defaults.ts';
import type { SandboxOptions, SandboxSite } from './sandbox/site.ts';
import { createKeyValueStore } from './store/create-store.ts';
import type { KeyValueStore } from './store/key-value-store.ts';
import { FtrackActionListener } from './ami/ftrack-listener.ts';
import { HubLaunches } from './ami/hub-launches.ts';
import type { FtrackSandbox, FtrackSandboxOptions } from './sandbox/ftrack/site.ts';
import { createTracker, siteUsersOf, type TrackerSettings } from './trackers/create-tracker.ts';
import type { Tracker } from './trackers/tracker.ts';
import { settleWithin } from './shared/settle-within.ts';
import { UploadSessions } from './transfer/upload-session.ts';

/** How long an upload's state is kept after its last part: a week, like a multipart upload left at the site. */
const UPLOAD_STATE_TTL_SECONDS = 7 * 24 * 3600;

// The process: read the config, listen, start the sandbox site when no real site is configured, and shut down
// gracefully. Exit codes: 0 after a clean shutdown, 1 when the config is invalid, start-up fails, or shutdown
// had to cut requests that were still running when the grace period ended.

/**
 * Node's default requestTimeout (300 s for the whole request) would kill long uploads and downloads, so it is off;
 * a client still has to finish sending its headers within headersTimeout. The keep-alive timeout is longer than
 * the idle timeouts of common proxies and load balancers (60 s), so the proxy, not us, closes idle connections,
 * and never sends a request down a connection we are closing.
 */
export const serverTimeouts = {
  requestTimeoutMs: 0,
  headersTimeoutMs: 60_000,
  keepAliveTimeoutMs: 65_000,
} as const;

/** What the server needs of the sandbox site (src/sandbox/site.ts gives more). */
export type SandboxHandle = Pick<SandboxSite, 'url' | 'menuUrl' | 'storageUrl' | 'close'>;
export type StartSandbox = (options: SandboxOptions) => Promise<SandboxHandle>;
/** What the server needs of the ftrack sandbox (src/sandbox/ftrack/site.ts gives more). */
export type FtrackSandboxHandle = Pick<FtrackSandbox, 'url' | 'menuUrl' | 'storageUrl' | 'apiUser' | 'apiKey' | 'close'>;
export type StartFtrackSandbox = (options: FtrackSandboxOptions) => Promise<FtrackSandboxHandle>;

export interface ServerDeps {
  log?: Logger;
  /** How sandbox mode starts its site; `false` makes sandbox mode an error (for tests that configure a site). */
  startSandbox?: StartSandbox | false;
  /** How sandbox mode starts the ftrack sandbox (SANDBOX_SITE=ftrack); `false` makes that an error. */
  startFtrackSandbox?: StartFtrackSandbox | false;
}

export interface RunningServer {
  /** Where this process can be reached directly (not through the proxy), with the base path. */
  url: string;
  /** Where people and ShotGrid reach it (PUBLIC_URL, or the local address when that is not set). */
  publicUrl: string;
  /** The tracking site in use. */
  siteUrl: string;
  /** Its product's name ("ShotGrid", "ftrack"). */
  siteName: string;
  /** In sandbox mode: the sandbox's right-click menu page. */
  sandboxMenuUrl: string | undefined;
  /** Where Prometheus metrics are served (METRICS_PORT), if anywhere. */
  metricsUrl: string | undefined;
  server: Server;
  /**
   * Stops accepting connections, closes idle ones, lets running requests finish for up to `graceMs`
   * (SHUTDOWN_GRACE_SECONDS by default), then cuts the rest. Calling it again during a shutdown with a shorter
   * grace cuts sooner; every call resolves with the same outcome.
   */
  close(graceMs?: number): Promise<{ forced: boolean }>;
}

const loadSandbox: StartSandbox = async (options) => {
  // Loaded only in sandbox mode, so a production process never loads the sandbox.
  const { startSandboxSite } = await import('./sandbox/site.ts');
  return startSandboxSite(options);
};

const loadFtrackSandbox: StartFtrackSandbox = async (options) => {
  const { startFtrackSandbox } = await import('./sandbox/ftrack/site.ts');
  return startFtrackSandbox(options);
};

export async function startServer(config: Config, deps: ServerDeps = {}): Promise<RunningServer> {
  const log = deps.log ?? createLogger({ level: config.logLevel });
  for (const warning of config.warnings) log.warn(warning);

  // Listen first: in sandbox mode the sandbox must know our address, and the app must know the sandbox's, so
  // requests that arrive before the app exists are told to come back in a moment.
  let handleRequest = answerStarting;
  const server = createServer(
    {
      requestTimeout: serverTimeouts.requestTimeoutMs,
      headersTimeout: serverTimeouts.headersTimeoutMs,
      keepAliveTimeout: serverTimeouts.keepAliveTimeoutMs,
    },
    (req, res) => handleRequest(req, res),
  );
  // Past this many connections new ones are refused: half-sent requests cannot use up the file descriptors.
  server.maxConnections = config.maxConnections;
  const startDraining = closeConnectionsWhenDraining(server);
  await listen(server, config.port, config.host);

  const port = (server.address() as AddressInfo).port;
  const url = `http://${reachableHost(config.host)}:${port}${config.basePath}`;
  const publicUrl = config.publicUrlIsDefault ? `http://localhost:${port}${config.basePath}` : config.publicUrl;

  // Every request out goes through the outbound proxy when one is set; the sandbox is on this machine.
  const sandboxMode = config.site === null && config.ftrack === null;
  const outbound = createOutbound(sandboxMode ? null : config.outboundProxy, { webLinksViaProxy: config.webLinksViaProxy });
  if (sandboxMode && config.outboundProxy !== null) log.warn('HTTPS_PROXY/HTTP_PROXY are set but not used: the sandbox site runs on this machine.');
  let sandbox: SandboxHandle | undefined;
  let tracker: Tracker | undefined;
  let listener: FtrackActionListener | undefined;
  let hubLaunches: HubLaunches | undefined;
  let metrics: MetricsServer | undefined;
  let store: KeyValueStore | undefined;
  try {
    const shotgrid = (credentials: { siteUrl: string; scriptName: string; scriptKey: string }): TrackerSettings => ({
      kind: 'shotgrid',
      ...credentials,
      reviewMediaField: config.uploadVersionField,
      maxConcurrentRequests: config.siteMaxConcurrentRequests,
    });
    let settings: TrackerSettings;
    if (config.site !== null) {
      settings = shotgrid({ siteUrl: config.site.url, scriptName: config.site.scriptName, scriptKey: config.site.scriptKey.reveal() });
    } else if (config.ftrack !== null) {
      settings = { kind: 'ftrack', serverUrl: config.ftrack.url, apiUser: config.ftrack.apiUser, apiKey: config.ftrack.apiKey.reveal(), maxConcurrentRequests: config.siteMaxConcurrentRequests };
    } else if (config.sandboxSite === 'ftrack') {
      const ftrack = await startFtrackSandboxFor(config, deps.startFtrackSandbox, log);
      sandbox = ftrack;
      // The sandbox's own site key, public by design (production refuses sandbox mode).
      settings = { kind: 'ftrack', serverUrl: ftrack.url, apiUser: ftrack.apiUser, apiKey: ftrack.apiKey, maxConcurrentRequests: config.siteMaxConcurrentRequests };
    } else {
      sandbox = await startSandboxFor(config, publicUrl, deps.startSandbox, log);
      // The sandbox's script, whose credentials are public by design (production refuses sandbox mode).
      settings = shotgrid({ siteUrl: sandbox.url, scriptName: sandboxDefaults.scriptName, scriptKey: sandboxDefaults.scriptKey });
    }
    tracker = createTracker(settings, { log, dispatcher: outbound.site });
    store = await createKeyValueStore(config.redisUrl?.reveal() ?? null, {
      onRedisError: (error) => log.error({ err: error }, 'redis connection error'),
      onWarning: (message) => log.warn(message),
    });
    if (config.metrics !== null) metrics = await startMetricsServer(config.metrics, log);
    if (settings.kind === 'ftrack') {
      // ftrack's right-click menu reaches the service through its event hub.
      const users = siteUsersOf(tracker);
      if (users === null) throw new Error('the ftrack adapter gives no user lookup');
      listener = new FtrackActionListener({
        serverUrl: settings.serverUrl,
        apiUser: settings.apiUser,
        apiKey: settings.apiKey,
        tracker,
        users,
        launches: (hubLaunches = new HubLaunches(store)),
        store,
        publicUrl,
        log: log.child({ component: 'ftrack-hub' }),
      });
      listener.start();
    }
  } catch (error) {
    await new Promise((resolve) => server.close(resolve));
    listener?.close();
    await tracker?.close();
    await outbound.close();
    await store?.close();
    await sandbox?.close();
    throw error;
  }
  const siteUrl = tracker.siteUrl;

  const contexts = new ContextStore(store, config.contextTtlSeconds);
  const uploads = new UploadSessions({ store, tracker, ttlSeconds: UPLOAD_STATE_TTL_SECONDS, maxBytes: config.maxUploadBytes, partLinksAhead: config.uploadParallelParts, dispatcher: outbound.storage });
  const readiness = new Readiness({
    checks: {
      site: () => tracker.checkReachable(),
      store: async () => void (await store.get('readiness-probe')),
      ...(listener === undefined ? {} : { hub: () => listener.check() }),
    },
    cacheMs: config.readyzCacheSeconds * 1000,
    log,
  });
  const records = new LaunchRecords({ store, ttlSeconds: config.recordDays * 24 * 3600 });
  const submissions = new ReviewSubmissions({ store, tracker, uploads, ttlSeconds: UPLOAD_STATE_TTL_SECONDS, records });
  const app = createApp({
    config: { ...config, publicUrl },
    log,
    tracker,
    contexts,
    replay: new ReplayGuard(store),
    store,
    uploads,
    submissions,
    records,
    sandboxMenuUrl: sandbox?.menuUrl,
    readiness,
    outbound,
    // Thumbnails come as signed storage URLs: https anywhere, and the sandbox's plain-http storage.
    imageOrigins: sandbox === undefined ? [] : [sandbox.storageUrl],
    ...(hubLaunches === undefined ? {} : { hubLaunches }),
  });
  handleRequest = app;

  log.info(
    { url, publicUrl, basePath: config.basePath, siteUrl, sandbox: sandbox !== undefined, trustProxy: config.trustProxy, outboundProxy: (sandbox === undefined && config.outboundProxy?.describe) || 'none' },
    'ami-transfer listening',
  );

  // What expired launches and closed pages left: unfinished uploads given up at the site, new Versions that never
  // got their movie removed. One instance at a time does it.
  const sweeper = setInterval(() => {
    void (async () => {
      if (!(await store.setIfAbsent('sweep-lock', '1', Math.max(1, config.sweepIntervalSeconds - 1)))) return;
      const swept = await uploads.sweepAbandoned(async (contextId) => (await contexts.get(contextId)) !== null);
      if (swept > 0) log.info({ uploads: swept }, 'gave up the unfinished uploads of expired launches');
      const removed = await submissions.sweepSilent(config.reviewSilenceSeconds * 1000);
      if (removed > 0) log.info({ versions: removed }, 'removed new Versions whose page went away before their movie arrived');
    })().catch((error: unknown) => log.warn({ err: error }, 'the sweep of expired launches failed; it runs again later'));
  }, config.sweepIntervalSeconds * 1000).unref();

  let shutdown: Promise<{ forced: boolean }> | undefined;
  let cutNow: (() => void) | undefined;
  const close = (graceMs = config.shutdownGraceSeconds * 1000): Promise<{ forced: boolean }> => {
    if (shutdown === undefined) {
      clearInterval(sweeper);
      readiness.stopping();
      startDraining();
      const drain = drainServer(server, graceMs, log);
      cutNow = drain.cutNow;
      shutdown = drain.done.then(async (outcome) => {
        // Only once no request is left to use them. A call to the site may still be running for a request that
        // was cut (or a readiness probe that gave up), and closing waits for it: bounded, so it cannot hold the exit.
        listener?.close();
        await settleWithin(tracker.close(), 1000);
        await settleWithin(outbound.close(), 1000);
        await store.close();
        await metrics?.close();
        await sandbox?.close();
        return outcome;
      });
    } else if (graceMs === 0) {
      cutNow?.();
    }
    return shutdown;
  };

  return { url, publicUrl, siteUrl, siteName: tracker.siteName, sandboxMenuUrl: sandbox?.menuUrl, metricsUrl: metrics?.url, server, close };
}

async function startSandboxFor(
  config: Config,
  serviceUrl: string,
  startSandbox: StartSandbox | false | undefined,
  log: Logger,
): Promise<SandboxHandle> {
  if (startSandbox === false) throw new Error('No ShotGrid site is configured and the sandbox is disabled.');
  const sharedSecret = config.ami.sharedSecret?.reveal();
  return (startSandbox ?? loadSandbox)({
    port: config.sandbox.port,
    scriptName: sandboxDefaults.scriptName,
    scriptKey: sandboxDefaults.scriptKey,
    storagePort: config.sandbox.storagePort,
    ...(config.sandbox.dataDir === null ? {} : { dataDir: config.sandbox.dataDir }),
    serviceUrl,
    ...(sharedSecret === undefined ? {} : { amiSecret: sharedSecret }),
    faults: config.sandbox.faults,
    log: log.child({ component: 'sandbox' }),
  });
}

async function startFtrackSandboxFor(config: Config, startSandbox: StartFtrackSandbox | false | undefined, log: Logger): Promise<FtrackSandboxHandle> {
  if (startSandbox === false) throw new Error('No ftrack server is configured and the ftrack sandbox is disabled.');
  return (startSandbox ?? loadFtrackSandbox)({
    port: config.sandbox.port,
    storagePort: config.sandbox.storagePort,
    ...(config.sandbox.dataDir === null ? {} : { dataDir: config.sandbox.dataDir }),
    faults: config.sandbox.faults,
    log: log.child({ component: 'ftrack-sandbox' }),
  });
}

function answerStarting(_req: IncomingMessage, res: ServerResponse): void {
  res.writeHead(503, { 'Content-Type': 'text/plain; charset=utf-8', 'Retry-After': '1' });
  res.end('ami-transfer is starting; try again in a moment.\n');
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen({ port, host }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/**
 * Graceful shutdown of the HTTP server. `server.close()` stops accepting and closes the idle keep-alive
 * connections; connections busy with a request become idle when their response ends, so they are swept again
 * until none is left or the grace period ends, when the rest are cut.
 */
function drainServer(server: Server, graceMs: number, log: Logger): { done: Promise<{ forced: boolean }>; cutNow: () => void } {
  let cut: () => void = () => {};
  const cutRequested = new Promise<void>((resolve) => {
    cut = resolve;
  });

  const done = (async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const sweep = setInterval(() => server.closeIdleConnections(), 100);
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, graceMs);
    });
    const active = await connectionCount(server);
    log.info({ activeConnections: active, graceMs }, 'shutting down: no new connections; waiting for running requests');

    const outcome = await Promise.race([closed.then(() => 'drained' as const), graceOver.then(() => 'cut' as const), cutRequested.then(() => 'cut' as const)]);
    clearInterval(sweep);
    clearTimeout(timer);
    if (outcome === 'drained') {
      log.info('shutdown: all requests finished');
      return { forced: false };
    }
    const remaining = await connectionCount(server);
    log.warn({ connections: remaining }, 'shutdown: grace period over, cutting the remaining connections');
    server.closeAllConnections();
    await closed;
    return { forced: true };
  })();

  return { done, cutNow: () => cut() };
}

/**
 * While the server drains, its answers say `Connection: close`, so a proxy does not put the connection back in its
 * pool and send its next request down it just as drainServer's sweep closes it (nginx cannot pass a POST, or a body
 * it streamed, on to another instance then: the client would get a 502). Answers under way learn it when the
 * draining starts; answers whose headers are out already close once idle, as before.
 */
function closeConnectionsWhenDraining(server: Server): () => void {
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) {
      res.shouldKeepAlive = false;
      return;
    }
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  return () => {
    draining = true;
    for (const res of inFlight) if (!res.headersSent) res.shouldKeepAlive = false;
    inFlight.clear();
  };
}


function connectionCount(server: Server): Promise<number> {
  return new Promise((resolve) => server.getConnections((error, count) => resolve(error ? 0 : count)));
}

/**
 * V8 counts the memory of the buffers a transfer passes through against the old generation's limit, which it
 * sets just above the live heap; once one full collection ran mid-transfer, that room was gone again within a few
 * scavenges and full collections followed back to back. Three times the live heap ends that
 * (docs/decisions/0007-heap-growing.md). Set here, not on the command line: NODE_OPTIONS refuses this flag.
 */
const HEAP_GROWING_FLAG = '--heap-growing-percent=200';

/** The entry point: `node dist/server.js` (or `node src/server.ts` in development). */
async function main(): Promise<void> {
  setFlagsFromString(HEAP_GROWING_FLAG);
  let config: Config;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    process.stderr.write(`${error.message}\n`);
    process.exit(1);
  }
  const log = createLogger({ level: config.logLevel });

  let running: RunningServer;
  try {
    running = await startServer(config, { log });
  } catch (error) {
    log.fatal({ err: error }, 'could not start');
    log.flush();
    process.stderr.write(`ami-transfer could not start: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  }

  if (running.sandboxMenuUrl !== undefined) {
    process.stdout.write(
      `\nNo site is configured: running the ${running.siteName} sandbox at ${running.siteUrl}\n` +
        `Open its right-click menu in a browser:  ${running.sandboxMenuUrl}\n` +
        `The service:                             ${running.publicUrl}\n\n`,
    );
  }

  // One way out, whatever asks for it: stop accepting, let running requests finish (bounded), then exit.
  let stopping = false;
  const shutDown = (exitCode: (forced: boolean) => number): void => {
    if (stopping) {
      void running.close(0);
      return;
    }
    stopping = true;
    void running.close().then(({ forced }) => {
      log.flush(() => process.exit(exitCode(forced)));
    });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) log.warn({ signal }, 'second signal: cutting running requests now');
    else log.info({ signal }, 'shutdown requested');
    shutDown((forced) => (forced ? 1 : 0));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // Every stream's errors are handled where the stream is made. Should something unforeseen still escape, the
  // process can no longer be trusted (state may be half-written): it says so and shuts down as on SIGTERM, so the
  // other users' transfers get their grace period, and exits 1 for the supervisor to restart it.
  const onFatal = (error: unknown, origin: string): void => {
    log.fatal({ err: error, origin }, 'unexpected error: shutting down');
    if (!stopping) shutDown(() => 1);
  };
  process.on('uncaughtException', (error, origin) => onFatal(error, origin));
  process.on('unhandledRejection', (reason) => onFatal(reason, 'unhandledRejection'));
}

if (import.meta.main) {
  await main();
}
