import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { projectRoot } from '../src/paths.ts';
import { startServer, type RunningServer, type StartSandbox } from '../src/server.ts';
import { spawnService as spawnProcess, type ServiceProcess } from './helpers/service-process.ts';

// The real server on real sockets: in-process through startServer for routes and headers, and as a child
// process (`node src/server.ts`) for signals and graceful shutdown.

/** A stand-in tracking site for readiness: answers like a site that is up, fails like one that is down, or holds. */
class FakeSite {
  mode: 'up' | 'failing' | 'refusing' | 'holding' = 'up';
  probes = 0;
  readonly #held: ServerResponse[] = [];
  readonly #server: Server;
  #probed: (() => void) | undefined;

  constructor() {
    this.#server = createServer((req, res) => this.#answer(req, res));
  }

  async start(): Promise<string> {
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** Resolves when the next probe arrives. */
  nextProbe(): Promise<void> {
    return new Promise((resolve) => {
      this.#probed = resolve;
    });
  }

  /** Answers every held probe as a site that is up. */
  release(): void {
    for (const res of this.#held.splice(0)) this.#sendUp(res);
  }

  async stop(): Promise<void> {
    this.release();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #answer(_req: IncomingMessage, res: ServerResponse): void {
    this.probes += 1;
    this.#probed?.();
    this.#probed = undefined;
    if (this.mode === 'holding') this.#held.push(res);
    else if (this.mode === 'failing') res.writeHead(502).end('Bad Gateway');
    else if (this.mode === 'refusing') {
      // ShotGrid's answer to wrong script credentials.
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"errors":[{"status":400,"code":102,"title":"Can\'t authenticate script"}]}');
    }
    else this.#sendUp(res);
  }

  #sendUp(res: ServerResponse): void {
    // Readiness asks for a token with the service's script credentials, as every API call starts.
    res.writeHead(200, { 'content-type': 'application/json' }).end(
      JSON.stringify({ access_token: 'fake-access-token', token_type: 'Bearer', expires_in: 600, refresh_token: 'fake-refresh-token' }),
    );
  }
}

const silent = createLogger({ level: 'silent' });
const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function fakeSite(): Promise<FakeSite> {
  const site = new FakeSite();
  await site.start();
  cleanups.push(() => site.stop());
  return site;
}

function siteEnv(site: FakeSite, env: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    SHOTGRID_URL: site.url,
    SHOTGRID_SCRIPT_NAME: 'ami-transfer',
    SHOTGRID_SCRIPT_KEY: 'test-key',
    ...env,
  };
}

async function serve(env: Record<string, string>, startSandbox?: StartSandbox | false): Promise<RunningServer> {
  const running = await startServer(loadConfig(env), {
    log: silent,
    ...(startSandbox === undefined ? {} : { startSandbox }),
  });
  cleanups.push(() => running.close(0));
  return running;
}

async function get(url: string, headers: Record<string, string> = {}) {
  const response = await request(url, { headers });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

describe('the service in-process', () => {
  test('/healthz answers ok', async () => {
    const running = await serve(siteEnv(await fakeSite()));
    const answer = await get(`${running.url}/healthz`);
    assert.equal(answer.status, 200);
    assert.deepEqual(JSON.parse(answer.text), { status: 'ok' });
    assert.equal(answer.headers['cache-control'], 'no-store');
  });

  test('/readyz says what the instance can do: the site and the store in its body; a shared outage is degraded, still 200', async () => {
    const site = await fakeSite();
    const running = await serve(siteEnv(site));

    const ready = await get(`${running.url}/readyz`);
    assert.equal(ready.status, 200);
    const body = JSON.parse(ready.text);
    assert.equal(body.status, 'ok');
    assert.equal(body.checks.site.ok, true);
    assert.equal(body.checks.store.ok, true);
    assert.equal(site.probes, 1, 'the site itself was asked');
    // Probes come every few seconds: the last check is reused (READYZ_CACHE_SECONDS, 10), no new token each time.
    for (let i = 0; i < 5; i++) assert.equal((await get(`${running.url}/readyz`)).status, 200);
    assert.equal(site.probes, 1, 'no token minted for each probe');

    // A site every instance shares is down or refuses the script: each instance still serves its own error pages,
    // so none is taken out of the load balancer; the body (and the metrics) say what is wrong.
    for (const mode of ['refusing', 'failing'] as const) {
      const failing = await fakeSite();
      failing.mode = mode;
      const instance = await serve(siteEnv(failing));
      const answer = await get(`${instance.url}/readyz`);
      assert.equal(answer.status, 200, mode);
      assert.match(String(answer.headers['content-type']), /^application\/json/);
      const report = JSON.parse(answer.text);
      assert.equal(report.status, 'degraded', mode);
      assert.equal(report.checks.site.ok, false, mode);
      assert.equal(report.checks.site.error.code, 'site_unreachable', mode);
      assert.equal(report.checks.store.ok, true, mode);
    }
  });

  test('no overall request timeout (long transfers), but bounded header and keep-alive timeouts', async () => {
    const { server } = await serve(siteEnv(await fakeSite()));
    assert.equal(server.requestTimeout, 0);
    assert.ok(server.headersTimeout > 0 && server.headersTimeout <= 120_000, `headersTimeout ${server.headersTimeout}`);
    assert.ok(server.keepAliveTimeout > 60_000, 'longer than the usual 60 s proxy idle timeout');
    assert.ok(server.keepAliveTimeout < server.headersTimeout + 10_000);
  });

  test('pages may be framed by the site only: CSP frame-ancestors, no X-Frame-Options, scripts from self', async () => {
    const site = await fakeSite();
    const running = await serve(siteEnv(site));
    const page = await get(`${running.url}/`);
    assert.equal(page.status, 200);
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, new RegExp(`frame-ancestors ${site.url.replaceAll('.', '\\.')}(;|$)`));
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.equal(page.headers['x-frame-options'], undefined);
    assert.equal(page.headers['x-powered-by'], undefined);
    assert.equal(page.headers['strict-transport-security'], undefined, 'no HSTS for a plain-http address');
  });

  test('FRAME_ANCESTORS replaces the default, and an https PUBLIC_URL adds HSTS', async () => {
    const running = await serve(
      siteEnv(await fakeSite(), {
        FRAME_ANCESTORS: 'https://studio.shotgrid.autodesk.com,https://*.studio.example',
        PUBLIC_URL: 'https://tools.studio.example',
      }),
    );
    const page = await get(`${running.url}/`);
    assert.match(
      String(page.headers['content-security-policy']),
      /frame-ancestors https:\/\/studio\.shotgrid\.autodesk\.com https:\/\/\*\.studio\.example(;|$)/,
    );
    assert.match(String(page.headers['strict-transport-security']), /max-age=\d+/);
  });

  test('an unknown path is a JSON error for JSON clients and a page for browsers', async () => {
    const running = await serve(siteEnv(await fakeSite()));
    const json = await get(`${running.url}/no-such-page`, { accept: 'application/json' });
    assert.equal(json.status, 404);
    assert.match(String(json.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(json.text), {
      error: { code: 'not_found', message: 'There is nothing at this address.' },
    });

    const html = await get(`${running.url}/no-such-page`, {
      accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
    });
    assert.equal(html.status, 404);
    assert.match(String(html.headers['content-type']), /^text\/html/);
    assert.match(html.text, /<h1[^>]*>404 Not Found<\/h1>/);
    assert.match(html.text, /What to do:/);
    assert.ok(html.text.includes(String(html.headers['x-request-id'])));
  });

  test('a sane X-Request-Id from the proxy is kept and answered', async () => {
    const running = await serve(siteEnv(await fakeSite()));
    assert.equal((await get(`${running.url}/healthz`, { 'x-request-id': 'proxy-42' })).headers['x-request-id'], 'proxy-42');
    assert.notEqual((await get(`${running.url}/healthz`, { 'x-request-id': 'no good' })).headers['x-request-id'], 'no good');
  });

  test('everything is mounted under the base path, links included', async () => {
    const running = await serve(siteEnv(await fakeSite(), { PUBLIC_URL: 'https://tools.studio.example/ami-transfer' }));
    const origin = new URL(running.url).origin;
    assert.equal(running.url, `${origin}/ami-transfer`);
    assert.equal((await get(`${origin}/ami-transfer/healthz`)).status, 200);
    assert.equal((await get(`${origin}/healthz`)).status, 404);
    const home = await get(`${origin}/ami-transfer`);
    assert.equal(home.status, 200);
    assert.match(home.text, /href="\/ami-transfer\/public\/style\.css"/);
    const css = await get(`${origin}/ami-transfer/public/style.css`);
    assert.equal(css.status, 200);
    assert.match(String(css.headers['content-type']), /^text\/css/);
  });

  test('behind a proxy that strips the prefix (BASE_PATH=/), routes are at the root and links keep the prefix', async () => {
    const running = await serve(
      siteEnv(await fakeSite(), { PUBLIC_URL: 'https://tools.studio.example/ami-transfer', BASE_PATH: '/' }),
    );
    const home = await get(`${running.url}/`);
    assert.equal(home.status, 200);
    assert.match(home.text, /href="\/ami-transfer\/public\/style\.css"/);
    assert.equal((await get(`${running.url}/public/style.css`)).status, 200);
  });
});

describe('sandbox mode', () => {
  test('with no site configured, the sandbox is started with our address and linked from the home page', async () => {
    const sandboxSite = await fakeSite();
    let received: Parameters<StartSandbox>[0] | undefined;
    let closed = false;
    const startSandbox: StartSandbox = async (options) => {
      received = options;
      return {
        url: sandboxSite.url,
        menuUrl: 'http://localhost:47001/sandbox/menu',
        storageUrl: 'http://127.0.0.1:47002',
        close: async () => {
          closed = true;
        },
      };
    };
    const running = await startServer(
      loadConfig({ PORT: '0', HOST: '127.0.0.1', SANDBOX_PORT: '0', SANDBOX_STORAGE_PORT: '0', LOG_LEVEL: 'silent' }),
      { log: silent, startSandbox },
    );
    try {
      const port = new URL(running.url).port;
      assert.equal(received?.serviceUrl, `http://localhost:${port}`, 'the menu posts to where we really listen');
      assert.equal(received?.amiSecret, 'sandbox-secret');
      assert.equal(received?.port, 0);
      assert.equal(running.siteUrl, sandboxSite.url);
      assert.equal(running.sandboxMenuUrl, 'http://localhost:47001/sandbox/menu');

      const home = await get(`${running.url}/`);
      assert.match(home.text, /href="http:\/\/localhost:47001\/sandbox\/menu"/);
      assert.match(
        String(home.headers['content-security-policy']),
        new RegExp(`frame-ancestors ${sandboxSite.url.replaceAll('.', '\\.')} http://localhost:47001(;|$)`),
      );
      // Thumbnails are signed URLs on the site's storage: any https host, and the sandbox's plain-http storage.
      assert.match(String(home.headers['content-security-policy']), /img-src 'self' data: https: http:\/\/127\.0\.0\.1:47002(;|$)/);
      assert.equal((await get(`${running.url}/readyz`)).status, 200);
      assert.equal(sandboxSite.probes, 1, 'readiness asks the sandbox site');
    } finally {
      await running.close(0);
    }
    assert.ok(closed, 'closing the server closes the sandbox');
  });

  test('the real sandbox site starts in-process and the service is ready against it', async () => {
    const running = await serve({
      PORT: '0',
      HOST: '127.0.0.1',
      SANDBOX_PORT: '0',
      SANDBOX_STORAGE_PORT: '0',
      LOG_LEVEL: 'silent',
    });
    assert.ok(running.sandboxMenuUrl, 'a menu URL to print');
    const home = await get(`${running.url}/`);
    assert.ok(home.text.includes(`href="${running.sandboxMenuUrl}"`));
    assert.equal((await get(`${running.url}/readyz`)).status, 200);
  });

  test('refusing the sandbox with no site configured fails the start and frees the port', async () => {
    await assert.rejects(
      startServer(loadConfig({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent' }), { log: silent, startSandbox: false }),
      /No ShotGrid site is configured/,
    );
  });
});

// ---- the process: signals and graceful shutdown ----

async function spawnService(env: Record<string, string>, nodeArgs: readonly string[] = []): Promise<ServiceProcess> {
  const service = await spawnProcess(env, nodeArgs);
  cleanups.push(() => service.stop());
  return service;
}

/** An idle keep-alive connection: one request answered, the socket left open. */
async function idleKeepAliveConnection(port: number): Promise<{ closed: Promise<void> }> {
  const socket: Socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const closed = once(socket, 'close').then(() => undefined);
  socket.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
  const [chunk] = (await once(socket, 'data')) as [Buffer];
  assert.match(chunk.toString(), /^HTTP\/1\.1 200 OK/);
  return { closed };
}

function connectionRefused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code === 'ECONNREFUSED'));
  });
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  // An unref'd timer: a deadline that is never reached must not keep the test process alive.
  const deadline = sleep(ms, undefined, { ref: false }).then(() => Promise.reject(new Error(`${what}: not within ${ms} ms`)));
  return Promise.race([promise, deadline]);
}

describe('graceful shutdown (node src/server.ts)', () => {
  test('SIGTERM: no new connections, idle ones closed, the running request finishes, exit 0', async () => {
    const site = await fakeSite();
    const service = await spawnService({ ...siteEnv(site, { LOG_LEVEL: 'info', SHUTDOWN_GRACE_SECONDS: '20' }) });

    const idle = await idleKeepAliveConnection(service.port);
    site.mode = 'holding';
    const probed = site.nextProbe();
    let finished = false;
    const inFlight = request(`${service.url}/readyz`).then(async (response) => {
      const body = await response.body.text();
      finished = true;
      return { status: response.statusCode, body };
    });
    await probed; // the request is now running inside the service, waiting on the site

    const signalledAt = Date.now();
    service.child.kill('SIGTERM');
    await service.logLine(/shutting down/);

    await within(idle.closed, 2000, 'the idle keep-alive connection is closed');
    assert.equal(await connectionRefused(service.port), true, 'new connections are refused');
    await sleep(300);
    assert.equal(finished, false, 'the running request is still being served');

    site.release();
    const answer = await within(inFlight, 5000, 'the running request completes');
    assert.equal(answer.status, 200);
    assert.equal(JSON.parse(answer.body).status, 'ok', 'checked before the shutdown began');

    assert.equal(await within(service.exited, 5000, 'the process exits'), 0);
    assert.ok(Date.now() - signalledAt < 20_000, 'well within the grace period');
  });

  test('a request still running when the grace period ends is cut, and the exit code says so', async () => {
    const site = await fakeSite();
    const service = await spawnService({ ...siteEnv(site, { LOG_LEVEL: 'info', SHUTDOWN_GRACE_SECONDS: '1' }) });
    site.mode = 'holding';
    const probed = site.nextProbe();
    const inFlight = request(`${service.url}/readyz`).then((response) => response.body.text());
    await probed;

    const signalledAt = Date.now();
    service.child.kill('SIGTERM');
    await assert.rejects(within(inFlight, 4000, 'the running request is cut'));
    assert.equal(await within(service.exited, 4000, 'the process exits'), 1);
    const elapsed = Date.now() - signalledAt;
    assert.ok(elapsed >= 900, `waited for the grace period (${elapsed} ms)`);
  });

  test('an error that escapes every handler is logged as fatal, and the process shuts down as on SIGTERM, exit 1', async () => {
    const site = await fakeSite();
    const service = await spawnService({ ...siteEnv(site, { LOG_LEVEL: 'info', SHUTDOWN_GRACE_SECONDS: '20' }) }, ['--import', './test/fixtures/throw-on-signal.ts']);
    site.mode = 'holding';
    const probed = site.nextProbe();
    const inFlight = request(`${service.url}/readyz`).then((response) => response.statusCode);
    await probed;

    service.child.kill('SIGUSR2');
    const fatal = await within(service.logLine(/unexpected error/), 5000, 'the fatal line');
    assert.equal(fatal['level'], 'fatal');
    await service.logLine(/shutting down: no new connections/);
    site.release();
    assert.equal(await within(inFlight, 5000, 'the running request completes'), 200);
    assert.equal(await within(service.exited, 5000, 'the process exits'), 1);
  });

  test('a bad variable stops the process at start with a message naming it', async () => {
    const child = spawn(process.execPath, ['src/server.ts'], {
      cwd: projectRoot,
      env: { PATH: process.env['PATH'] ?? '', PORT: 'eighty' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const [code] = await within(once(child, 'exit'), 10_000, 'the process exits');
    assert.equal(code, 1);
    assert.match(stderr, /PORT must be a port number/);
  });
});
