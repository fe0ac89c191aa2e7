import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { pythonSignBodies } from '../helpers/python-ami-signer.ts';

// The launch flow through the real service on a real socket, against the real sandbox site: ShotGrid's POST,
// verified, remembered, answered 303, and the page that follows, looked up as the user. Every rejection too.
//
// Requests are signed by the sandbox itself (its menu page's launch endpoint, as ShotGrid signs them) or, where a
// test needs a payload the sandbox would not build (stale, forged, another project's rows), by Python's hmac: an
// implementation independent of the service's own.

type Fields = [string, string][];

/** The fields with the signature Python's hmac computes over the urlencoded body they make (see the helper). */
function signedWithPython(fields: Fields, secret: string): Fields {
  const unsigned = fields.filter(([name]) => name !== 'signature');
  const [signature] = pythonSignBodies([{ secret, body: new URLSearchParams(unsigned).toString() }]);
  assert.ok(signature);
  return [...unsigned, ['signature', signature]];
}

function amiTimestampOf(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const HTML = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
const CONTEXT_PATH = /^\/ami\/upload-files\/([A-Za-z0-9_-]{43})$/;

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): any;
}

async function send(url: string, init: { method?: 'GET' | 'POST'; headers?: Record<string, string>; body?: string | Buffer } = {}): Promise<Answer> {
  const response = await request(url, { method: init.method ?? 'GET', headers: { accept: HTML, ...init.headers }, body: init.body ?? null });
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, text, json: () => JSON.parse(text) };
}

/** A multipart/form-data body as a browser sends it (serialized by the platform's FormData). */
async function multipart(form: FormData): Promise<{ body: Buffer; contentType: string }> {
  const encoded = new Response(form);
  return { body: Buffer.from(await encoded.arrayBuffer()), contentType: encoded.headers.get('content-type') ?? '' };
}

function postForm(url: string, fields: Fields, headers: Record<string, string> = {}): Promise<Answer> {
  return send(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** Log lines, parsed, from a logger the test owns. */
function capturingLogger() {
  const lines: string[] = [];
  const log = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString().split('\n').filter((line) => line !== ''));
        done();
      },
    }),
  });
  return { log, lines, parsed: () => lines.map((line) => JSON.parse(line) as Record<string, unknown>) };
}

describe('launching an action (POST /ami/<action> → 303 → GET page)', { timeout: 120_000 }, () => {
  let site: SandboxSite;
  let service: RunningServer;
  const logs = capturingLogger();
  const cleanups: (() => Promise<unknown>)[] = [];
  /** Every context id and signature seen, to check none reaches the logs. */
  const capabilities: string[] = [];

  before(async () => {
    service = await startServer(
      loadConfig({ PORT: '0', HOST: '127.0.0.1', SANDBOX_PORT: '0', SANDBOX_STORAGE_PORT: '0', LOG_LEVEL: 'debug' }),
      { log: logs.log, startSandbox: async (options) => (site = await startSandboxSite(options)) },
    );
    cleanups.push(() => service.close(0));
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  const versionId = (code: string): number => {
    const record = site.store.all('Version').find((version) => version.fields.code === code);
    assert.ok(record, `seeded Version ${code}`);
    return record.id;
  };
  const person = (login: string) => site.store.all('HumanUser').find((user) => user.fields.login === login)!;
  const project = (name: string) => site.store.all('Project').find((record) => record.fields.name === name)!;

  /** A Versions-page payload as ShotGrid builds it, timestamped now (or when told), not yet signed. */
  function versionPayload(selected: number[], options: { login?: string; at?: Date } = {}): Fields {
    const login = options.login ?? 'artist';
    const demo = project('Demo');
    return [
      ['user_id', String(person(login).id)],
      ['user_login', login],
      ['title', 'undefined'],
      ['entity_type', 'Version'],
      ['server_hostname', new URL(site.url).host],
      ['referrer_path', '/page/2279'],
      ['page_id', '2279'],
      ['session_uuid', randomUUID()],
      ['project_name', String(demo.fields.name)],
      ['project_id', String(demo.id)],
      ['view', 'Default'],
      ['cols', 'code,image,entity,sg_status_list'],
      ['column_display_names', 'Version Name,Thumbnail,Link,Status'],
      ['sort_column', 'code'],
      ['sort_direction', 'asc'],
      ['grouping_column', ''],
      ['grouping_method', ''],
      ['grouping_direction', ''],
      ['selected_ids', selected.join(',')],
      ['ids', selected.join(',')],
      ['timestamp', amiTimestampOf(options.at ?? new Date())],
    ];
  }

  /** The signed payload the sandbox's menu page would post for the artist's selection (signed by the sandbox). */
  async function sandboxLaunch(codes: string[], login = 'artist'): Promise<{ url: string; fields: Fields }> {
    const ids = codes.map(versionId);
    const answer = await send(`${site.url}/sandbox/menu/launch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({
        ami_id: site.store.all('ActionMenuItem').find((ami) => ami.fields.title === 'Upload files')!.id,
        login,
        entity_type: 'Version',
        selected_ids: ids,
        page_ids: ids,
        sort_column: 'code',
        sort_direction: 'asc',
        grouping_column: '',
        session_uuid: randomUUID(),
      }),
    });
    assert.equal(answer.status, 200, answer.text);
    const launch = answer.json() as { url: string; fields: Fields };
    capabilities.push(launch.fields.find(([name]) => name === 'signature')![1]);
    return launch;
  }

  /** POSTs the fields and returns the page path the 303 points at. */
  async function launched(fields: Fields, action = 'upload-files', base = service.url): Promise<string> {
    const answer = await postForm(`${base}/ami/${action}`, fields);
    assert.equal(answer.status, 303, answer.text);
    const location = String(answer.headers.location);
    capabilities.push(location.split('/').pop() ?? '');
    return location;
  }

  const origin = () => new URL(service.url).origin;
  const signed = (fields: Fields) => signedWithPython(fields, site.amiSecret);

  // First in the file: the service has not yet learned the site's kind of storage, which the page's plain-form
  // limit asks about (an upload's start) for a selected Version the user can see, never the first one blindly.
  test('a selection whose first Version the user cannot see: the page loads, counting it as not visible', async () => {
    const location = await launched(signed(versionPayload([versionId('bl010_comp_v001'), versionId('sh010_comp_v003')])));
    const page = await send(origin() + location);
    assert.equal(page.status, 200);
    assert.match(page.text, /1 selected item is not visible to you/);
    assert.match(page.text, /sh010_comp_v003/);
  });

  test('acceptance: the sandbox-signed POST is answered 303 to the page, which shows the Versions as the user sees them', async () => {
    const launch = await sandboxLaunch(['sh010_comp_v003', 'sh020_comp_v003']);
    assert.equal(launch.url, `${service.publicUrl}/ami/upload-files`, 'the seeded menu item points at the service');
    const answer = await postForm(`${service.url}/ami/upload-files`, launch.fields);
    assert.equal(answer.status, 303);
    const location = String(answer.headers.location);
    assert.match(location, CONTEXT_PATH, 'a relative path to GET /ami/<action>/<context id>');
    assert.equal(answer.headers['cache-control'], 'no-store');
    assert.equal(answer.headers['set-cookie'], undefined, 'the flow needs no cookie');
    capabilities.push(location.split('/').pop() ?? '');

    const page = await send(origin() + location);
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /^text\/html/);
    assert.equal(page.headers['set-cookie'], undefined);
    assert.equal(page.headers['cache-control'], 'no-store');
    assert.equal(page.headers['x-frame-options'], undefined, 'framing is left to CSP frame-ancestors');
    assert.equal(page.headers['referrer-policy'], 'no-referrer', 'the capability in the URL is not sent to the site or storage');
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, new RegExp(`frame-ancestors ${site.url.replaceAll('.', '\\.')}(;| )`));
    assert.match(csp, new RegExp(`img-src 'self' data: https: ${site.storageUrl.replaceAll('.', '\\.')}(;|$)`));

    assert.match(page.text, /<h1[^>]*>Upload files<\/h1>/);
    for (const code of ['sh010_comp_v003', 'sh020_comp_v003']) {
      assert.match(page.text, new RegExp(`<a class="entity-name" href="${site.url}/detail/Version/${versionId(code)}"[^>]*>${code}</a>`));
    }
    const thumbnails = [...page.text.matchAll(/<img src="([^"]+)"/g)].map((match) => match[1]!.replaceAll('&amp;', '&'));
    assert.equal(thumbnails.length, 2);
    for (const url of thumbnails) {
      assert.ok(url.startsWith(site.storageUrl), 'a signed storage URL');
      const image = await send(url, { headers: { accept: 'image/*' } });
      assert.equal(image.status, 200, 'the signed thumbnail URL loads');
    }
    assert.match(page.text, /<dd>artist<\/dd>/);
    assert.match(page.text, /<dd>Demo<\/dd>/);
    assert.doesNotMatch(page.text, /Unsigned launch/);

    const reload = await send(origin() + location);
    assert.equal(reload.status, 200, 'reload-safe: the page is a GET');
    assert.match(reload.text, /sh020_comp_v003/);
  });

  test("as the user: another project's Version is counted as not visible, never shown", async () => {
    const backlot = versionId('bl010_comp_v001');
    const location = await launched(signed(versionPayload([versionId('sh010_comp_v003'), backlot])));
    const page = await send(origin() + location);
    assert.equal(page.status, 200);
    assert.match(page.text, /sh010_comp_v003/);
    assert.doesNotMatch(page.text, /bl010/);
    assert.doesNotMatch(page.text, new RegExp(`Version ${backlot}\\b`));
    assert.match(page.text, /1 selected item is not visible to you/);
  });

  test("non-ASCII values, '+' and commas survive the trip: the signature verifies and the page shows them", async () => {
    const name = 'Démo + Ödön, 東京 <b>';
    const fields = versionPayload([versionId('sh010_comp_v003')]).map(([field, value]): [string, string] => [field, field === 'project_name' ? name : value]);
    const location = await launched(signed(fields));
    const page = await send(origin() + location);
    assert.ok(page.text.includes('<dd>Démo + Ödön, 東京 &lt;b&gt;</dd>'), 'shown, and escaped');
  });

  test('a browser GET of an action\'s address says what the address is for', async () => {
    const page = await send(`${service.url}/ami/upload-files`);
    assert.equal(page.status, 405);
    assert.equal(page.headers['allow'], 'POST');
    assert.match(page.text, /This address is for ShotGrid&#39;s Action Menu Item|This address is for ShotGrid's Action Menu Item/);
    assert.equal((await send(`${service.url}/ami/no-such-action`)).status, 404);
  });

  test('login CSRF: a launch from another origin is refused, naming it; from the site, or with no real origin, it goes', async () => {
    const fields = () => signed(versionPayload([versionId('sh010_comp_v003')]));
    const evil = await postForm(`${service.url}/ami/upload-files`, fields(), { origin: 'https://evil.example', accept: 'text/html' });
    assert.equal(evil.status, 403);
    assert.match(evil.text, /https:\/\/evil\.example/);
    const json = await postForm(`${service.url}/ami/upload-files`, fields(), { origin: 'https://evil.example', accept: 'application/json' });
    assert.equal(json.json().error.code, 'ami_origin_refused');
    for (const origin of [new URL(site.url).origin, 'null']) {
      const answer = await postForm(`${service.url}/ami/upload-files`, fields(), { origin });
      assert.equal(answer.status, 303, `from ${origin}`);
    }
  });

  test('a value holding CR LF is refused before its signature counts: it could regroup the signed lines', async () => {
    // "title=x\r\nuser_login=coord" signs as the same text as a title "x" and a user_login "coord": a signed
    // request for one user could be re-cut into another's. The forged form verifies; it must still be refused.
    const genuine = versionPayload([versionId('sh010_comp_v003')]).filter(([field]) => field !== 'title' && field !== 'user_login');
    const forged: Fields = [...genuine, ['title', 'x\r\nuser_login=coord']];
    const answer = await postForm(`${service.url}/ami/upload-files`, signed(forged), { accept: 'application/json' });
    assert.equal(answer.status, 400);
    assert.equal(answer.json().error.code, 'ami_payload_invalid');
    assert.equal(answer.json().error.field, 'title');
    // A lone line break is user text (a title over two lines) and stays.
    const twoLines = versionPayload([versionId('sh010_comp_v003')]).map(([field, value]): [string, string] => [field, field === 'title' ? 'line one\nline two' : value]);
    await launched(signed(twoLines));
  });

  test('an empty selection is launched, and the page says nothing was selected', async () => {
    const location = await launched(signed(versionPayload([])));
    const page = await send(origin() + location);
    assert.equal(page.status, 200);
    assert.match(page.text, /Nothing was selected/);
  });

  test('a forged signature is a 401 that says nothing that helps forging', async () => {
    const launch = await sandboxLaunch(['sh010_comp_v003']);
    // The same signed fields, claiming to be someone else.
    const forged = launch.fields.map(([name, value]): [string, string] => [name, name === 'user_login' ? 'coord' : value]);
    const page = await postForm(`${service.url}/ami/upload-files`, forged);
    assert.equal(page.status, 401);
    assert.match(page.text, /The signature of this request is not valid/);
    const signature = launch.fields.find(([name]) => name === 'signature')![1];
    for (const leak of [signature, site.amiSecret, 'Error:', '.ts:']) assert.ok(!page.text.includes(leak), leak);

    const json = await postForm(`${service.url}/ami/upload-files`, signed(forged).map(([n, v]): [string, string] => [n, n === 'signature' ? v.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')) : v]), {
      accept: 'application/json',
    });
    assert.equal(json.status, 401);
    assert.deepEqual(Object.keys(json.json().error).sort(), ['code', 'hint', 'message']);
    assert.equal(json.json().error.code, 'ami_signature_invalid');
    for (const leak of [signature, site.amiSecret]) assert.ok(!JSON.stringify(json.json()).includes(leak), 'nothing that helps forging');
  });

  test('a stale or future timestamp is a 401 ami_timestamp_outside_window (window 60 s)', async () => {
    for (const offsetSeconds of [-120, 120]) {
      const fields = signed(versionPayload([versionId('sh010_comp_v003')], { at: new Date(Date.now() + offsetSeconds * 1000) }));
      const answer = await postForm(`${service.url}/ami/upload-files`, fields, { accept: 'application/json' });
      assert.equal(answer.status, 401, `offset ${offsetSeconds}`);
      assert.equal(answer.json().error.code, 'ami_timestamp_outside_window');
    }
    const withinWindow = signed(versionPayload([versionId('sh010_comp_v003')], { at: new Date(Date.now() - 30_000) }));
    await launched(withinWindow);
  });

  test('a replayed request (the same body twice) is a 401 ami_replayed', async () => {
    const launch = await sandboxLaunch(['sh010_comp_v003']);
    await launched(launch.fields);
    const again = await postForm(`${service.url}/ami/upload-files`, launch.fields, { accept: 'application/json' });
    assert.equal(again.status, 401);
    assert.equal(again.json().error.code, 'ami_replayed');
    const page = await postForm(`${service.url}/ami/upload-files`, launch.fields);
    assert.match(page.text, /already used/);
  });

  test('an unsigned request is a 401 ami_unsigned while unsigned requests are not accepted', async () => {
    const unsigned = versionPayload([versionId('sh010_comp_v003')]).filter(([name]) => name !== 'timestamp');
    const answer = await postForm(`${service.url}/ami/upload-files`, unsigned, { accept: 'application/json' });
    assert.equal(answer.status, 401);
    assert.equal(answer.json().error.code, 'ami_unsigned');
  });

  test('a malformed payload is a 400 naming the field', async () => {
    const good = versionPayload([versionId('sh010_comp_v003')]);
    const badIds = good.map(([name, value]): [string, string] => [name, name === 'selected_ids' ? `${value},abc` : value]);
    const json = await postForm(`${service.url}/ami/upload-files`, signed(badIds), { accept: 'application/json' });
    assert.equal(json.status, 400);
    assert.equal(json.json().error.code, 'ami_payload_invalid');
    assert.equal(json.json().error.field, 'selected_ids');

    const noLogin = good.filter(([name]) => name !== 'user_login');
    const page = await postForm(`${service.url}/ami/upload-files`, signed(noLogin));
    assert.equal(page.status, 400);
    assert.match(page.text, /The problem is with <code>user_login<\/code>/);
    // A new payload (a new session_uuid): the same signature twice would be refused as a replay.
    const noLoginAgain = versionPayload([versionId('sh010_comp_v003')]).filter(([name]) => name !== 'user_login');
    assert.equal((await postForm(`${service.url}/ami/upload-files`, signed(noLoginAgain), { accept: 'application/json' })).json().error.field, 'user_login');

    const badTimestamp = signed(versionPayload([versionId('sh010_comp_v003')]).map(([name, value]): [string, string] => [name, name === 'timestamp' ? 'yesterday' : value]));
    const timestamp = await postForm(`${service.url}/ami/upload-files`, badTimestamp, { accept: 'application/json' });
    assert.equal(timestamp.status, 400);
    assert.equal(timestamp.json().error.field, 'timestamp');
  });

  test('an action launched on an entity type it does not apply to is a clear 400', async () => {
    const shot = site.store.all('Shot')[0]!;
    const shotPayload = (): Fields => versionPayload([shot.id]).map(([name, value]): [string, string] => [name, name === 'entity_type' ? 'Shot' : value]);
    const json = await postForm(`${service.url}/ami/upload-files`, signed(shotPayload()), { accept: 'application/json' });
    assert.equal(json.status, 400);
    assert.equal(json.json().error.code, 'ami_entity_type_unsupported');
    assert.equal(json.json().error.field, 'entity_type');
    assert.match(json.json().error.message, /works on Version, not on Shot/);
    // attach-files applies to any type.
    const attach = await launched(signed(shotPayload()), 'attach-files');
    assert.match(attach, /^\/ami\/attach-files\//);
  });

  test('bodies: several MiB of ids accepted, more than 8 MiB refused with 413, other types with 415, unknown actions 404', async () => {
    // 100 000 rows (the payload parser's cap): ids and selected_ids of over 1 MiB each once urlencoded.
    const many = Array.from({ length: 100_000 }, (_, index) => 100_000_000 + index).join(',');
    const big = signed(versionPayload([]).map(([name, value]): [string, string] => [name, name === 'ids' || name === 'selected_ids' ? many : value]));
    const bigBody = new URLSearchParams(big).toString();
    assert.ok(bigBody.length > 2 * 1024 * 1024, `${bigBody.length} bytes`);
    const accepted = await postForm(`${service.url}/ami/upload-files`, big);
    assert.equal(accepted.status, 303);
    capabilities.push(String(accepted.headers.location).split('/').pop() ?? '');

    const huge = `${new URLSearchParams(signed(versionPayload([]))).toString()}&padding=${'x'.repeat(9 * 1024 * 1024)}`;
    const tooLarge = await send(`${service.url}/ami/upload-files`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: huge,
    });
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.json().error.code, 'body_too_large');

    const json = await send(`${service.url}/ami/upload-files`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(Object.fromEntries(signed(versionPayload([])))),
    });
    assert.equal(json.status, 415);
    assert.equal(json.json().error.code, 'unsupported_media_type');

    const unknown = await postForm(`${service.url}/ami/delete-everything`, signed(versionPayload([])), { accept: 'application/json' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.json().error.code, 'not_found');
  });

  test('a multipart/form-data POST is accepted too; a file part is refused', async () => {
    const form = new FormData();
    for (const [name, value] of signed(versionPayload([versionId('sh020_comp_v003')]))) form.append(name, value);
    const encoded = await multipart(form);
    assert.match(encoded.contentType, /^multipart\/form-data; boundary=/);
    const answer = await send(`${service.url}/ami/upload-files`, { method: 'POST', headers: { 'content-type': encoded.contentType }, body: encoded.body });
    assert.equal(answer.status, 303, answer.text);
    const location = String(answer.headers.location);
    capabilities.push(location.split('/').pop() ?? '');
    assert.match((await send(origin() + location)).text, /sh020_comp_v003/);

    const withFile = new FormData();
    for (const [name, value] of signed(versionPayload([versionId('sh020_comp_v003')]))) withFile.append(name, value);
    withFile.append('movie', new Blob(['not an AMI field']), 'movie.mov');
    const encodedWithFile = await multipart(withFile);
    const refused = await send(`${service.url}/ami/upload-files`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': encodedWithFile.contentType },
      body: encodedWithFile.body,
    });
    assert.equal(refused.status, 400);
    assert.equal(refused.json().error.field, 'movie');

    const oversized = new FormData();
    for (const [name, value] of signed(versionPayload([versionId('sh020_comp_v003')]))) oversized.append(name, value);
    oversized.append('padding', 'x'.repeat(9 * 1024 * 1024));
    const encodedOversized = await multipart(oversized);
    const tooLarge = await send(`${service.url}/ami/upload-files`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': encodedOversized.contentType },
      body: encodedOversized.body,
    });
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.json().error.code, 'body_too_large');
  });

  test('an endless chunked launch body is read only so far: the 413 comes, then the connection closes', async () => {
    const target = new URL(`${service.url}/ami/upload-files`);
    const socket = connect(Number(target.port), target.hostname);
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.on('error', () => undefined);
    socket.write(`POST ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n`);
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
    const closed = new Promise((resolve) => socket.once('close', resolve));
    const chunk = Buffer.concat([Buffer.from(`${(1024 * 1024).toString(16)}\r\n`), Buffer.alloc(1024 * 1024, 0x61), Buffer.from('\r\n')]);
    let sent = 0;
    while (answer === '' && !socket.destroyed && sent < 200 * 1024 * 1024) {
      if (!socket.write(chunk)) await new Promise((resolve) => socket.once('drain', resolve).once('close', resolve));
      sent += 1024 * 1024;
    }
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 10_000))]);
    assert.match(answer, /^HTTP\/1\.1 413 /, 'the browser still sees the 413');
    assert.ok(sent <= 64 * 1024 * 1024, `read ${sent / 1024 / 1024} MiB before answering (the limit is 8 MiB)`);
    assert.ok(socket.destroyed || socket.readableEnded, 'then the connection is closed');
    socket.destroy();
  });

  test('8 MiB of valueless fields (a&a&a…) is refused 413 at once, before it is parsed whole', async () => {
    const started = Date.now();
    const refused = await send(`${service.url}/ami/upload-files`, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a&'.repeat(4 * 1024 * 1024 - 1),
    });
    assert.equal(refused.status, 413);
    assert.equal(refused.json().error.code, 'body_too_large');
    // Loose: it took minutes when the whole body was parsed first; the bound is only there to catch that again.
    assert.ok(Date.now() - started < 20_000, `answered in ${Date.now() - started} ms`);
  });

  test('an unknown, malformed or expired context is a 410 page; a context under another action is a 404', async () => {
    for (const id of [randomBytes(32).toString('base64url'), 'not-a-context']) {
      const page = await send(`${service.url}/ami/upload-files/${id}`);
      assert.equal(page.status, 410);
      assert.match(page.text, /This page has expired — run the action again from ShotGrid/);
      const json = await send(`${service.url}/ami/upload-files/${id}`, { headers: { accept: 'application/json' } });
      assert.equal(json.json().error.code, 'context_expired');
    }
    const location = await launched(signed(versionPayload([versionId('sh010_comp_v003')])));
    const elsewhere = await send(origin() + location.replace('/upload-files/', '/download-zip/'), { headers: { accept: 'application/json' } });
    assert.equal(elsewhere.status, 404);
  });

  test('CSRF: discarding with a wrong or missing token is a 403 that changes nothing; with the right one it discards', async () => {
    const location = await launched(signed(versionPayload([versionId('sh010_comp_v003')])));
    const other = await launched(signed(versionPayload([versionId('sh020_comp_v003')])));
    const page = await send(origin() + location);
    const action = /<form method="post" action="([^"]+)">/.exec(page.text)?.[1];
    const token = /name="csrf_token" value="([^"]+)"/.exec(page.text)?.[1];
    assert.equal(action, `${location}/discard`);
    assert.ok(token);
    const otherToken = /name="csrf_token" value="([^"]+)"/.exec((await send(origin() + other)).text)?.[1];
    assert.ok(otherToken && otherToken !== token, 'each launch has its own token');

    for (const fields of [[['csrf_token', 'A'.repeat(43)]], [], [['csrf_token', otherToken]]] as Fields[]) {
      const refused = await postForm(origin() + action, fields);
      assert.equal(refused.status, 403);
      assert.match(refused.text, /nothing was changed/);
      const json = await postForm(origin() + action, fields, { accept: 'application/json' });
      assert.equal(json.json().error.code, 'csrf_invalid');
      assert.equal((await send(origin() + location)).status, 200, 'the launch still works');
    }

    const discarded = await postForm(origin() + action, [['csrf_token', token]]);
    assert.equal(discarded.status, 200);
    assert.match(discarded.text, /Launch discarded/);
    assert.equal((await send(origin() + location)).status, 410, 'the page is gone');
    assert.equal((await send(origin() + other)).status, 200, 'other launches are untouched');
  });

  test("a user the site will not act as (inactive) gets a 403 saying so; a site that fails gets a 502 with a retry link", async () => {
    const former = await launched(signed(versionPayload([versionId('sh010_comp_v003')], { login: 'former' })));
    const refused = await send(origin() + former);
    assert.equal(refused.status, 403);
    assert.match(refused.text, /refused to act as “former”/);
    assert.equal((await send(origin() + former, { headers: { accept: 'application/json' } })).json().error.code, 'site_refused_user');

    const location = await launched(signed(versionPayload([versionId('sh010_comp_v003')])));
    site.faults.set({ apiFailRate: 1, apiModes: ['502'] });
    try {
      const failing = await send(origin() + location);
      assert.equal(failing.status, 502);
      assert.match(failing.text, /The ShotGrid site did not answer/);
      assert.ok(failing.text.includes(`href="${location}">Try again</a>`), 'a retry link to the same page');
    } finally {
      site.faults.reset();
    }
    assert.equal((await send(origin() + location)).status, 200, 'the retry works once the site is back');
  });

  test('logs: one line per launch with the skew, paths with the context id masked, no capability or signature anywhere', async () => {
    const location = await launched(signed(versionPayload([versionId('sh010_comp_v003')])));
    await send(origin() + location);
    const lines = logs.parsed();
    const launchedLine = lines.findLast((line) => line['msg'] === 'action launched');
    assert.ok(launchedLine);
    assert.equal(launchedLine['user'], 'artist');
    assert.equal(launchedLine['action'], 'upload-files');
    assert.equal(typeof launchedLine['skewSeconds'], 'number');
    const pageLine = lines.findLast((line) => line['msg'] === 'request done' && line['method'] === 'GET');
    assert.equal(pageLine?.['path'], '/ami/upload-files/:contextId');
    assert.ok(lines.some((line) => line['path'] === '/ami/upload-files/:contextId/discard'), 'the discard POST too');

    const all = logs.lines.join('\n');
    assert.ok(capabilities.length > 10);
    for (const secret of [...capabilities, site.amiSecret]) assert.ok(secret !== '' && !all.includes(secret), `"${secret}" is not logged`);
  });
});

describe('launching with other settings', { timeout: 60_000 }, () => {
  let site: SandboxSite;
  const cleanups: (() => Promise<unknown>)[] = [];

  before(async () => {
    site = await startSandboxSite();
    cleanups.push(() => site.close());
  });

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  /** The service against the sandbox, configured as a real site. */
  async function serve(env: Record<string, string>, log = createLogger({ level: 'silent' })): Promise<RunningServer> {
    const running = await startServer(
      loadConfig({
        PORT: '0',
        HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        SHOTGRID_URL: site.url,
        SHOTGRID_SCRIPT_NAME: site.scriptName,
        SHOTGRID_SCRIPT_KEY: site.scriptKey,
        AMI_SECRET_TOKEN: site.amiSecret,
        ...env,
      }),
      { log },
    );
    cleanups.push(() => running.close(0));
    return running;
  }

  function payload(login = 'artist'): Fields {
    const user = site.store.all('HumanUser').find((record) => record.fields.login === login)!;
    const version = site.store.all('Version').find((record) => record.fields.code === 'sh030_comp_v003')!;
    return [
      ['user_id', String(user.id)],
      ['user_login', login],
      ['entity_type', 'Version'],
      ['selected_ids', String(version.id)],
      ['ids', String(version.id)],
      ['title', 'undefined'],
    ];
  }

  test('AMI_ACCEPT_UNSIGNED=true: an unsigned request is accepted, logged as a warning, and its page says it was unsigned', async () => {
    const logs = capturingLogger();
    const running = await serve({ AMI_ACCEPT_UNSIGNED: 'true', LOG_LEVEL: 'info' }, logs.log);
    const answer = await postForm(`${running.url}/ami/upload-files`, payload());
    assert.equal(answer.status, 303);
    const lines = logs.parsed();
    assert.ok(lines.some((line) => line['level'] === 'warn' && /AMI_ACCEPT_UNSIGNED is set/.test(String(line['msg']))), 'warned at start');
    const launched = lines.find((line) => line['msg'] !== undefined && /UNSIGNED request/.test(String(line['msg'])));
    assert.equal(launched?.['level'], 'warn');
    assert.equal(launched?.['signed'], false);

    const page = await send(new URL(running.url).origin + String(answer.headers.location));
    assert.equal(page.status, 200);
    assert.match(page.text, /Unsigned launch/);
    assert.match(page.text, /sh030_comp_v003/);

    // A signed request is still checked: a bad signature is not waved through as "unsigned".
    const forged: Fields = [...payload(), ['timestamp', amiTimestampOf(new Date())], ['signature', '0'.repeat(40)]];
    assert.equal((await postForm(`${running.url}/ami/upload-files`, forged)).status, 401);
  });

  test('behind a proxy: the 303 points under PUBLIC_URL’s path, whether the proxy keeps the prefix or strips it', async () => {
    const kept = await serve({ PUBLIC_URL: 'https://tools.studio.example/ami-transfer' });
    const keptAnswer = await postForm(`${kept.url}/ami/upload-files`, signedWithPython([...payload(), ['timestamp', amiTimestampOf(new Date())]], site.amiSecret));
    assert.equal(keptAnswer.status, 303);
    const keptLocation = String(keptAnswer.headers.location);
    assert.match(keptLocation, /^\/ami-transfer\/ami\/upload-files\/[A-Za-z0-9_-]{43}$/);
    const keptPage = await send(new URL(kept.url).origin + keptLocation);
    assert.equal(keptPage.status, 200);
    assert.match(keptPage.text, /action="\/ami-transfer\/ami\/upload-files\/[A-Za-z0-9_-]{43}\/discard"/);

    const stripped = await serve({ PUBLIC_URL: 'https://tools.studio.example/ami-transfer', BASE_PATH: '/' });
    const strippedAnswer = await postForm(`${stripped.url}/ami/upload-files`, signedWithPython([...payload(), ['timestamp', amiTimestampOf(new Date())]], site.amiSecret));
    assert.equal(strippedAnswer.status, 303);
    const strippedLocation = String(strippedAnswer.headers.location);
    assert.match(strippedLocation, /^\/ami-transfer\/ami\/upload-files\//, 'the browser comes back through the proxy');
    // What the proxy forwards: the path without the prefix.
    const page = await send(stripped.url + strippedLocation.replace(/^\/ami-transfer/, ''));
    assert.equal(page.status, 200);
  });

  test('per-action secrets: an action signed with another action’s token is refused', async () => {
    const running = await serve({ AMI_SECRET_TOKEN_DOWNLOAD_ZIP: 'zip-only-secret' });
    const fields: Fields = [...payload(), ['timestamp', amiTimestampOf(new Date())]];
    const withShared = await postForm(`${running.url}/ami/download-zip`, signedWithPython(fields, site.amiSecret), { accept: 'application/json' });
    assert.equal(withShared.status, 401);
    assert.equal(withShared.json().error.code, 'ami_signature_invalid');
    assert.equal((await postForm(`${running.url}/ami/download-zip`, signedWithPython(fields, 'zip-only-secret'))).status, 303);
    assert.equal((await postForm(`${running.url}/ami/upload-files`, signedWithPython(fields, site.amiSecret))).status, 303);
  });
});
