import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import { request } from 'undici';
import { useEjsViews } from '../src/app.ts';
import { createLogger, requestLogging } from '../src/log.ts';
import { errorHandler, HttpError, notFoundHandler } from '../src/web/errors.ts';

// The error middleware on a real socket, behind routes that fail in each way a handler can.

const signedUrl = 'https://bucket.s3.amazonaws.com/a.mov?X-Amz-Credential=AKIA1&X-Amz-Signature=5ec12e7';
const logged: string[] = [];
let server: Server;
let base = '';

before(async () => {
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        logged.push(chunk.toString());
        done();
      },
    }),
  });
  const app = express();
  useEjsViews(app, false);
  app.use(requestLogging(log));
  app.use((_req, res, next) => {
    res.locals['base'] = '/ami-transfer';
    // As the app's page locals: the site's name, for the pages' words (here ftrack's, to tell it from the default).
    res.locals['siteName'] = 'ftrack';
    res.locals['actionMenu'] = "ftrack's Actions menu";
    next();
  });
  const routes = express.Router();
  routes.get('/gone', () => {
    throw new HttpError(410, 'context_expired', 'Run it again from {site}.', { hint: 'Pick it again from {menu}.' });
  });
  routes.get('/boom', () => {
    throw new Error(`GET ${signedUrl} failed with token abc`);
  });
  routes.get('/api/boom', async () => {
    await Promise.resolve();
    throw new TypeError('cannot read properties of undefined');
  });
  routes.post('/form', () => {
    throw HttpError.badRequest('Pick at least one file.', { field: 'files' });
  });
  routes.get('/site', () => {
    throw HttpError.siteUnreachable(undefined, { headers: { 'Retry-After': '30' } });
  });
  routes.post('/json', express.json({ limit: '10b' }), (_req, res) => {
    res.json({ ok: true });
  });
  routes.get('/stream', (_req, res, next) => {
    res.write('half of a file');
    setTimeout(() => next(new Error('source failed')), 20);
  });
  app.use('/ami-transfer', routes);
  app.use(notFoundHandler());
  app.use(errorHandler({ basePath: '/ami-transfer', publicPath: '/ami-transfer' }));
  server = app.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => {
  server.close();
});

async function get(path: string, accept = 'text/html', method: 'GET' | 'POST' = 'GET', body?: string) {
  const response = await request(base + path, {
    method,
    headers: { accept, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body }),
  });
  return { status: response.statusCode, headers: response.headers, text: await response.body.text() };
}

describe('error middleware', () => {
  test('an unexpected error is a 500 page that tells nothing of its insides', async () => {
    const page = await get('/ami-transfer/boom');
    assert.equal(page.status, 500);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.match(page.text, /Something went wrong on our side/);
    assert.match(page.text, /give your administrator the request id/);
    assert.match(page.text, /href="\/ami-transfer\/boom">Try again</);
    for (const leak of ['5ec12e7', 'AKIA1', 'abc', 'amazonaws', 'Error:', '.ts:']) assert.ok(!page.text.includes(leak), leak);
    const requestId = String(page.headers['x-request-id']);
    assert.ok(page.text.includes(requestId));

    const lines = logged.join('').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    const errorLine = lines.find((line) => line['requestId'] === requestId && line['msg'] === 'request error');
    assert.ok(errorLine, 'the error is logged with the request id');
    assert.match(String((errorLine['err'] as { message: string }).message), /X-Amz-Signature=\[redacted\]/);
    assert.ok(!logged.join('').includes('5ec12e7'));
    assert.ok(!logged.join('').includes('"stack"'));
  });

  test('JSON for /api paths, whatever the Accept header', async () => {
    const answer = await get('/ami-transfer/api/boom', '*/*');
    assert.equal(answer.status, 500);
    assert.deepEqual(JSON.parse(answer.text), { error: { code: 'internal_error', message: 'Something went wrong on our side.' } });
  });

  test('an HttpError keeps its status, code, message and field', async () => {
    const answer = await get('/ami-transfer/form', 'application/json', 'POST');
    assert.equal(answer.status, 400);
    assert.deepEqual(JSON.parse(answer.text), {
      error: { code: 'bad_request', message: 'Pick at least one file.', field: 'files' },
    });
    const page = await get('/ami-transfer/form', 'text/html', 'POST');
    assert.equal(page.status, 400);
    assert.match(page.text, /Pick at least one file\./);
    assert.match(page.text, /<code>files<\/code>/);
    assert.doesNotMatch(page.text, /Try again</, 'a POST is not offered as a link');
  });

  test('site_unreachable is a 502 with its headers and a retry link', async () => {
    const page = await get('/ami-transfer/site');
    assert.equal(page.status, 502);
    assert.equal(page.headers['retry-after'], '30');
    assert.match(page.text, /The ftrack site did not answer\./);
    assert.match(page.text, /href="\/ami-transfer\/site">Try again</);
    assert.equal(JSON.parse((await get('/ami-transfer/site', 'application/json')).text).error.code, 'site_unreachable');
  });

  test("errors from Express's own parsers get their status and a code", async () => {
    const tooLarge = await get('/ami-transfer/json', 'application/json', 'POST', JSON.stringify({ much: 'more than ten bytes' }));
    assert.equal(tooLarge.status, 413);
    assert.equal(JSON.parse(tooLarge.text).error.code, 'body_too_large');
    const malformed = await get('/ami-transfer/json', 'application/json', 'POST', '{');
    assert.equal(malformed.status, 400);
    assert.equal(JSON.parse(malformed.text).error.code, 'bad_request');
  });

  test('the default hints name the site the service works with', async () => {
    const page = await get('/ami-transfer/nothing', 'text/html');
    assert.equal(page.status, 404);
    assert.match(page.text, /start again from ftrack(&#39;|')s Actions menu/);
  });

  test("the service's texts name the site and where its users pick an action, on pages and in JSON", async () => {
    const page = await get('/ami-transfer/gone', 'text/html');
    assert.equal(page.status, 410);
    assert.match(page.text, /Run it again from ftrack\./);
    assert.match(page.text, /Pick it again from ftrack(&#39;|')s Actions menu\./);
    const json = JSON.parse((await get('/ami-transfer/gone', 'application/json')).text);
    assert.deepEqual(json.error, { code: 'context_expired', message: 'Run it again from ftrack.', hint: "Pick it again from ftrack's Actions menu." });
  });

  test('unknown paths are 404, inside or outside the base path', async () => {
    for (const path of ['/ami-transfer/nothing', '/elsewhere']) {
      const answer = await get(path, 'application/json');
      assert.equal(answer.status, 404);
      assert.equal(JSON.parse(answer.text).error.code, 'not_found');
    }
  });

  test('an error after the body started cuts the connection, so the response never looks complete', async () => {
    const response = await request(`${base}/ami-transfer/stream`);
    assert.equal(response.statusCode, 200);
    await assert.rejects(response.body.text());
  });
});
