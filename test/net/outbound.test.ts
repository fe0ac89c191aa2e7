import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { serializeError } from '../../src/log.ts';
import { isNetworkError } from '../../src/net/network-errors.ts';
import { outboundDispatcher, proxyRoute, readOutboundProxy, type OutboundProxy } from '../../src/net/outbound.ts';
import { createWebLinkAgent, resolveWebLink, WebLinkRefused } from '../../src/transfer/web-link-policy.ts';
import { PROXY_SOURCE_ADDRESS, startTinyproxy, type Tinyproxy } from '../helpers/tinyproxy.ts';

// The outbound proxy settings as a studio writes them, and requests sent through a real proxy (Debian's tinyproxy,
// which connects onward from its own address): what goes through it, what NO_PROXY sends direct, its credentials.

function proxyFrom(env: Record<string, string>): OutboundProxy {
  const { proxy, problems } = readOutboundProxy(env);
  assert.deepEqual(problems, []);
  assert.ok(proxy);
  return proxy;
}

describe('the proxy settings', () => {
  test('lower-case names win, a bare host:port is an http proxy, credentials are kept secret and never shown', () => {
    const proxy = proxyFrom({ https_proxy: 'http://ops:s3cret@proxy.lan:3128', HTTPS_PROXY: 'http://other:9', HTTP_PROXY: 'proxy.lan:8080', NO_PROXY: 'Intranet.lan, .studio.lan,10.1.2.3:8443 [::1]' });
    assert.equal(proxy.https?.reveal(), 'http://ops:s3cret@proxy.lan:3128/');
    assert.equal(proxy.http?.reveal(), 'http://proxy.lan:8080/');
    assert.deepEqual(proxy.noProxy, ['intranet.lan', '.studio.lan', '10.1.2.3:8443', '[::1]']);
    assert.equal(proxy.describe, 'https:// via http://proxy.lan:3128, http:// via http://proxy.lan:8080, direct for intranet.lan,.studio.lan,10.1.2.3:8443,[::1]');
    assert.equal(JSON.stringify(proxy).includes('s3cret'), false, 'a logged config shows no credential');
    assert.equal(proxyRoute(proxy).httpsProxy, 'http://ops:s3cret@proxy.lan:3128/');
  });

  test('HTTPS_PROXY does not stand in for HTTP_PROXY (nor the reverse); none set is no proxy', () => {
    const proxy = proxyFrom({ HTTPS_PROXY: 'https://proxy.lan:3129' });
    assert.equal(proxy.http, null);
    assert.deepEqual(proxyRoute(proxy), { httpProxy: '', httpsProxy: 'https://proxy.lan:3129/', noProxy: '' });
    assert.deepEqual(readOutboundProxy({ NO_PROXY: 'localhost', HTTP_PROXY: ' ' }), { proxy: null, problems: [] });
  });

  test('what cannot be used is refused at start, naming the variable, never repeating a URL that may hold a password', () => {
    for (const bad of ['socks5://u:pw-one@proxy:1080', 'http://u:pw-two@proxy:3128/path', 'http://u:pw-three@:3128', 'http://u:pw-four@proxy:3128?x=1']) {
      const { problems } = readOutboundProxy({ HTTPS_PROXY: bad });
      assert.equal(problems.length, 1, bad);
      assert.equal(problems[0]!.variable, 'HTTPS_PROXY');
      assert.match(problems[0]!.message, /HTTPS_PROXY must be the proxy's http:\/\/ or https:\/\/ URL/);
      assert.equal(problems[0]!.message.includes('pw-'), false, 'the value is not repeated');
    }
    const { problems } = readOutboundProxy({ https_proxy: 'http://proxy:3128', no_proxy: '10.0.0.0/8,::1,ok.lan,bad_host!' });
    assert.deepEqual(problems.map((problem) => problem.variable), ['no_proxy', 'no_proxy', 'no_proxy']);
    assert.match(problems[0]!.message, /"10\.0\.0\.0\/8" is an address range/);
    assert.match(problems[1]!.message, /"::1" .*brackets/);
    assert.match(problems[2]!.message, /"bad_host!" is not a host name/);
  });

  test('loadConfig: WEB_LINKS_VIA_PROXY needs a proxy; METRICS_PORT must not be the public port', () => {
    const refused = (env: Record<string, string>, variable: string) =>
      assert.throws(() => loadConfig(env), (error: unknown) => error instanceof ConfigError && error.variables.join() === variable);
    refused({ WEB_LINKS_VIA_PROXY: 'true' }, 'WEB_LINKS_VIA_PROXY');
    refused({ PORT: '8080', METRICS_PORT: '8080' }, 'METRICS_PORT');
    refused({ HTTPS_PROXY: 'ftp://proxy' }, 'HTTPS_PROXY');
    assert.throws(() => loadConfig({ WEB_LINKS_VIA_PROXY: 'true' }), /WEB_LINKS_VIA_PROXY=true .* neither HTTPS_PROXY nor HTTP_PROXY is set/);
    const config = loadConfig({ HTTPS_PROXY: 'http://u:p@proxy:3128', WEB_LINKS_VIA_PROXY: 'yes', METRICS_PORT: '9464' });
    assert.equal(config.webLinksViaProxy, true);
    assert.deepEqual(config.metrics, { port: 9464, host: '127.0.0.1' });
    assert.equal(config.readyzCacheSeconds, 10);
    assert.equal(loadConfig({}).outboundProxy, null);
  });
});

describe('requests through a real proxy (tinyproxy)', () => {
  let proxy: Tinyproxy;
  let target: Server;
  let port: number;
  /** Where each request the target server got came from. */
  const seen: string[] = [];

  before(async () => {
    proxy = await startTinyproxy({ user: 'studio', password: 'proxy-pass-4f2a' });
    target = createServer((req, res) => {
      seen.push(req.socket.remoteAddress ?? '');
      res.end('hello');
    });
    target.listen(0, '127.0.0.1');
    await once(target, 'listening');
    port = (target.address() as AddressInfo).port;
  });
  after(async () => {
    target?.closeAllConnections();
    target?.close();
    await proxy?.stop();
  });

  /** GETs url through a dispatcher for `env`'s proxy settings; answers where the target saw it come from. */
  async function cameFrom(env: Record<string, string>, url: string): Promise<string> {
    const dispatcher = outboundDispatcher(proxyRoute(proxyFrom(env)));
    try {
      const response = await request(url, { dispatcher });
      assert.equal(await response.body.text(), 'hello');
      return seen.at(-1)!;
    } finally {
      await dispatcher.close();
    }
  }

  test('requests go through the proxy with its credentials; NO_PROXY sends what it lists direct', async () => {
    const through = { HTTP_PROXY: proxy.url };
    assert.equal(await cameFrom(through, `http://127.0.0.1:${port}/a`), PROXY_SOURCE_ADDRESS, 'through the proxy');
    assert.ok((await proxy.tunnels()).includes(`127.0.0.1:${port}`), 'the proxy saw the tunnel');

    assert.equal(await cameFrom({ ...through, NO_PROXY: '127.0.0.1' }, `http://127.0.0.1:${port}/b`), '127.0.0.1', 'an address listed: direct');
    assert.equal(await cameFrom({ ...through, NO_PROXY: `127.0.0.1:${port}` }, `http://127.0.0.1:${port}/c`), '127.0.0.1', 'address and port listed: direct');
    assert.equal(await cameFrom({ ...through, NO_PROXY: '127.0.0.1:1' }, `http://127.0.0.1:${port}/d`), PROXY_SOURCE_ADDRESS, 'another port listed: proxied');
    assert.equal(await cameFrom({ ...through, NO_PROXY: '*' }, `http://127.0.0.1:${port}/e`), '127.0.0.1', '* : everything direct');
    assert.equal(await cameFrom({ HTTPS_PROXY: proxy.url }, `http://127.0.0.1:${port}/f`), '127.0.0.1', 'HTTPS_PROXY is for https:// only');
  });

  test('without its credentials, or with wrong ones, the proxy refuses and nothing reaches the target; no error names the password', async () => {
    const before = seen.length;
    for (const [url, status] of [[proxy.address, 407], [`http://studio:wrong-pass@127.0.0.1:${proxy.port}`, 401]] as const) {
      const dispatcher = outboundDispatcher(proxyRoute(proxyFrom({ HTTP_PROXY: url })));
      try {
        const error = await request(`http://127.0.0.1:${port}/refused`, { dispatcher }).then(() => null, (caught: unknown) => caught);
        assert.ok(error instanceof Error, 'refused');
        assert.match(error.message, new RegExp(`Proxy response \\(${status}\\)`));
        assert.equal(JSON.stringify(serializeError(error)).includes('wrong-pass'), false);
      } finally {
        await dispatcher.close();
      }
    }
    assert.equal(seen.length, before, 'nothing got through');
  });

  test('a destination the proxy cannot reach fails as a network error (retried, shown as the site unreachable); refused credentials do not', async () => {
    const closed = createServer();
    closed.listen(0, '127.0.0.1');
    await once(closed, 'listening');
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const failure = async (proxyUrl: string, url: string): Promise<unknown> => {
      const dispatcher = outboundDispatcher(proxyRoute(proxyFrom({ HTTP_PROXY: proxyUrl })));
      try {
        return await request(url, { dispatcher }).then(() => assert.fail('answered'), (error: unknown) => error);
      } finally {
        await dispatcher.close();
      }
    };
    const unreachable = await failure(proxy.url, `http://127.0.0.1:${closedPort}/`);
    assert.match(String(unreachable), /Proxy response \(5\d\d\)/);
    assert.equal(isNetworkError(unreachable), true);
    assert.equal(isNetworkError(await failure(proxy.address, `http://127.0.0.1:${port}/`)), false, '407: the settings, not the network');
  });

  test('web links: direct by default, so a private address is refused; through the proxy only when asked, the host list guarding', async () => {
    const policy = { hosts: ['localhost'], allowedPrivateRanges: [], allowHttp: true };
    const direct = createWebLinkAgent(policy);
    const proxied = createWebLinkAgent(policy, undefined, proxyRoute(proxyFrom({ HTTP_PROXY: proxy.url })));
    try {
      const url = `http://localhost:${port}/link`;
      await assert.rejects(resolveWebLink(policy, direct, url), (error: unknown) => serializeError(error)['message'] !== undefined && JSON.stringify(serializeError(error)).includes('private addresses'));
      assert.equal(await resolveWebLink(policy, proxied, url), url);
      assert.equal(seen.at(-1), PROXY_SOURCE_ADDRESS, 'through the proxy');
      // The allow-list still holds through the proxy: another host is refused before any connection.
      await assert.rejects(resolveWebLink(policy, proxied, `http://127.0.0.1:${port}/link`), WebLinkRefused);
    } finally {
      await direct.close();
      await proxied.close();
    }
  });
});
