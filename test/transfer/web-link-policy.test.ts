import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import {
  addressAllowed,
  checkWebLink,
  createWebLinkAgent,
  hostAllowed,
  isPrivateAddress,
  resolveWebLink,
  WebLinkRefused,
  type WebLinkPolicy,
} from '../../src/transfer/web-link-policy.ts';

// No request reaches a host the policy refuses: loopback, private ranges, or a redirect to one.

let allowed: Server;
let forbidden: Server;
const hits = { allowed: 0, forbidden: 0 };
let allowedPort = 0;
let forbiddenPort = 0;

function listen(host: string, onRequest: (url: string, res: import('node:http').ServerResponse) => void): Promise<[Server, number]> {
  const server = createServer((req, res) => onRequest(req.url ?? '/', res));
  return new Promise((resolve) => server.listen(0, host, () => resolve([server, (server.address() as AddressInfo).port])));
}

before(async () => {
  [forbidden, forbiddenPort] = await listen('127.0.0.2', (_url, res) => {
    hits.forbidden += 1;
    res.end('secret');
  });
  [allowed, allowedPort] = await listen('127.0.0.1', (url, res) => {
    hits.allowed += 1;
    if (url === '/to-forbidden-name') res.writeHead(302, { location: `http://internal.test:${forbiddenPort}/x` }).end();
    else if (url === '/to-forbidden-ip') res.writeHead(302, { location: `http://127.0.0.2:${forbiddenPort}/x` }).end();
    else if (url === '/to-unlisted') res.writeHead(302, { location: `http://elsewhere.test/x` }).end();
    else if (url === '/hop') res.writeHead(301, { location: '/final' }).end();
    else res.end('reference');
  });
});
after(() => {
  allowed.close();
  forbidden.close();
});

// Names resolve as the test says: media.test to the allowed server, internal.test to the forbidden one.
const hostsFile: Record<string, string> = { 'media.test': '127.0.0.1', 'internal.test': '127.0.0.2', 'ten.test': '10.1.2.3' };
const lookup = (hostname: string, _options: { all: true }, callback: (error: NodeJS.ErrnoException | null, addresses: { address: string; family: number }[]) => void) => {
  const address = hostsFile[hostname];
  if (!address) return callback(Object.assign(new Error('ENOTFOUND'), { code: 'ENOTFOUND' }), []);
  callback(null, [{ address, family: 4 }]);
};
const policy: WebLinkPolicy = { hosts: ['media.test', 'internal.test', 'ten.test'], allowedPrivateRanges: ['127.0.0.1/32'], allowHttp: true };

test('private and special ranges are recognised', () => {
  for (const address of ['127.0.0.1', '10.9.8.7', '172.20.0.1', '192.168.1.1', '169.254.169.254', '100.64.0.1', '::1', 'fd00::1', 'fe80::1', '::ffff:10.0.0.1', '0.0.0.0']) {
    assert.equal(isPrivateAddress(address), true, address);
  }
  for (const address of ['8.8.8.8', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) assert.equal(isPrivateAddress(address), false, address);
  // IPv6 forms that carry an IPv4 address inside (NAT64, 6to4, IPv4-compatible) reach whatever it is: refused.
  for (const address of ['64:ff9b::a00:1', '64:ff9b::7f00:1', '64:ff9b:1::1', '2002:7f00:1::1', '2002:c0a8:101::1', '::7f00:1', '::a00:1']) {
    assert.equal(isPrivateAddress(address), true, address);
  }
  assert.equal(addressAllowed(policy, '127.0.0.1'), true);
  assert.equal(addressAllowed(policy, '127.0.0.2'), false);
});

test('the host list: exact names and wildcard suffixes only', () => {
  const list: WebLinkPolicy = { hosts: ['media.example.com', '*.cdn.example.com'], allowedPrivateRanges: [] };
  assert.equal(hostAllowed(list, 'media.example.com'), true);
  assert.equal(hostAllowed(list, 'a.cdn.example.com'), true);
  assert.equal(hostAllowed(list, 'cdn.example.com'), false);
  assert.equal(hostAllowed(list, 'evilcdn.example.com'), false);
  assert.equal(hostAllowed(list, 'media.example.com.evil.net'), false);
  assert.throws(() => checkWebLink(list, 'http://media.example.com/x'), /http links/);
  assert.throws(() => checkWebLink(list, 'file:///etc/passwd'), WebLinkRefused);
  assert.throws(() => checkWebLink(list, 'https://user:pw@media.example.com/x'), /credentials/);
  assert.throws(() => checkWebLink(list, 'https://169.254.169.254/latest'), WebLinkRefused);
  assert.equal(checkWebLink(list, 'https://media.example.com/a b').pathname, '/a%20b');
});

test('an allowed host is fetched; a name resolving to a forbidden address is refused before connecting', async () => {
  const agent = createWebLinkAgent(policy, lookup);
  const final = await resolveWebLink(policy, agent, `http://media.test:${allowedPort}/hop`);
  assert.equal(final, `http://media.test:${allowedPort}/final`);
  const body = await (await request(final, { dispatcher: agent })).body.text();
  assert.equal(body, 'reference');
  await assert.rejects(request(`http://internal.test:${forbiddenPort}/x`, { dispatcher: agent }), /private addresses/);
  await assert.rejects(request(`http://ten.test/x`, { dispatcher: agent }), /private addresses/);
  await agent.close();
  assert.equal(hits.forbidden, 0);
});

test('redirects to a forbidden name, a private IP or an unlisted host are refused; nothing reaches them', async () => {
  const agent = createWebLinkAgent(policy, lookup);
  await assert.rejects(resolveWebLink(policy, agent, `http://media.test:${allowedPort}/to-forbidden-name`), /private addresses/);
  await assert.rejects(resolveWebLink(policy, agent, `http://media.test:${allowedPort}/to-forbidden-ip`), /127\.0\.0\.2 is not on the allowed hosts/);
  await assert.rejects(resolveWebLink(policy, agent, `http://media.test:${allowedPort}/to-unlisted`), /elsewhere\.test is not on the allowed hosts/);
  await agent.close();
  assert.equal(hits.forbidden, 0);
  assert.ok(hits.allowed >= 3);
});
