import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fieldsFromUrlEncoded, parseAmiPayload } from '../../src/ami/payload.ts';
import { ReplayGuard } from '../../src/ami/replay-guard.ts';
import { parseAmiTimestamp, verifyAmiRequest, type VerifyOptions } from '../../src/ami/verify.ts';
import { MemoryKeyValueStore } from '../../src/store/memory-store.ts';
import { pythonSignBodies } from '../helpers/python-ami-signer.ts';

// Signed AMI requests as raw form bodies, signed by Python (an implementation independent of ours), then decoded
// and verified by ours: acceptance, and each rejection.

const secret = 'sandbox-secret';
const signedAt = '2026-11-20T10:11:12Z';
const signedAtMs = Date.parse(signedAt);
const window = 60;

/** Raw bodies as a browser would post them: percent-escapes and '+' written by hand, not by our encoder. */
const bodies = {
  realistic: [
    'user_id=24',
    'user_login=artist',
    'entity_type=Version',
    'selected_ids=9155%2C9156',
    'ids=9155%2C+9156+%2C9157',
    'title=undefined',
    'page_id=2279',
    'server_hostname=studio.shotgrid.autodesk.com',
    'referrer_path=%2Fpage%2F2279',
    'session_uuid=4f1c8a2e-6a7b-11ef-9a43-0242ac120002',
    'view=Default',
    'cols=code%2Cimage%2Centity%2Csg_status_list',
    'column_display_names=Version+Name%2CThumbnail%2CLink%2C+notes%2CStatus',
    'sort_column=created_at',
    'sort_direction=desc',
    'grouping_column=',
    'grouping_method=',
    'grouping_direction=',
    'project_id=116',
    'project_name=D%C3%A9mo+%E2%80%93+%C3%96d%C3%B6n+%E6%9D%B1%E4%BA%AC+%F0%9F%8E%AC',
    `timestamp=${encodeURIComponent(signedAt)}`,
  ].join('&'),
  // '+' is a space, %2B a plus, %2C a comma that is not a separator for our parser until decoded.
  plusAndCommas: [
    'user_id=7',
    'user_login=a%2Bb',
    'entity_type=Shot',
    'selected_ids=1',
    'title=a+b%2Bc%2C+d+%25+e',
    'empty=',
    'also_empty',
    `timestamp=${signedAt}`,
  ].join('&'),
  bigSelection: [
    'user_id=24',
    'user_login=coord',
    'entity_type=CustomEntity01',
    `selected_ids=${Array.from({ length: 5000 }, (_, index) => 10_000 + index).join('%2C')}`,
    `ids=${Array.from({ length: 5000 }, (_, index) => 10_000 + index).join('%2C+')}`,
    `timestamp=${signedAt}`,
  ].join('&'),
  unsignedTimestamp: ['user_id=24', 'user_login=artist', 'entity_type=Version', 'selected_ids=1'].join('&'),
};

function signed(body: string, signature: string): string {
  return `${body}&signature=${signature}`;
}

/** The realistic body without its blank fields: what a verifier reading the form with cgi.FieldStorage signs. */
const realisticNonBlank = bodies.realistic.split('&').filter((pair) => !pair.endsWith('=') && pair.includes('=')).join('&');

const [realisticSig, plusSig, bigSig, noTimestampSig, otherSecretSig, rotatedSig, nonBlankSig] = pythonSignBodies([
  { secret, body: bodies.realistic },
  { secret, body: bodies.plusAndCommas },
  { secret, body: bodies.bigSelection },
  { secret, body: bodies.unsignedTimestamp },
  { secret: 'some other secret', body: bodies.realistic },
  { secret: 'sécret-トークン-🔑 new', body: bodies.plusAndCommas },
  { secret, body: realisticNonBlank },
]) as [string, string, string, string, string, string, string];

function options(overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return {
    secrets: [secret],
    windowSeconds: window,
    acceptUnsigned: false,
    replay: new ReplayGuard(new MemoryKeyValueStore()),
    now: new Date(signedAtMs + 3_000),
    ...overrides,
  };
}

async function verifyBody(body: string, opts: VerifyOptions) {
  return verifyAmiRequest(fieldsFromUrlEncoded(body), opts);
}

async function assertRejected(body: string, opts: VerifyOptions, reason: string, message?: RegExp): Promise<void> {
  const result = await verifyBody(body, opts);
  assert.equal(result.ok, false, `expected ${reason}`);
  if (result.ok) return;
  assert.equal(result.reason, reason, result.message);
  if (message) assert.match(result.message, message);
  assert.ok(!/[0-9a-f]{40}/.test(result.message), 'no signature in the message');
}

describe('verifyAmiRequest: signatures made by Python', () => {
  test('accepts a realistic request with non-ASCII, percent-escapes, + and empty fields', async () => {
    const result = await verifyBody(signed(bodies.realistic, realisticSig), options());
    assert.deepEqual(result, { ok: true, signed: true, skewSeconds: 3 });
    const payload = parseAmiPayload(fieldsFromUrlEncoded(bodies.realistic));
    assert.deepEqual(payload.project, { id: 116, name: 'Démo – Ödön 東京 🎬' });
  });

  test("accepts '+', %2B, %2C, %25 and empty or bare fields exactly as Python decoded them", async () => {
    assert.equal((await verifyBody(signed(bodies.plusAndCommas, plusSig), options())).ok, true);
    const fields = fieldsFromUrlEncoded(bodies.plusAndCommas);
    assert.deepEqual(fields.find(([name]) => name === 'title'), ['title', 'a b+c, d % e']);
    assert.deepEqual(fields.find(([name]) => name === 'user_login'), ['user_login', 'a+b']);
  });

  test('accepts a signature over the non-blank fields only (as Autodesk\'s sample verifies), sent with the blank ones', async () => {
    assert.notEqual(realisticNonBlank, bodies.realistic, 'the body has blank fields');
    assert.equal((await verifyBody(signed(bodies.realistic, nonBlankSig), options())).ok, true);
    assert.equal((await verifyBody(signed(realisticNonBlank, nonBlankSig), options())).ok, true);
    assert.equal((await verifyBody(signed(`${bodies.realistic}&extra=1`, nonBlankSig), options())).ok, false, 'a changed field still fails');
  });

  test('form bodies decode as URLSearchParams decodes them', () => {
    for (const body of [...Object.values(bodies), 'a=%ZZ&b=%E2%82&c=%&d', '&&a=1&&b&=2&', '']) {
      assert.deepEqual(fieldsFromUrlEncoded(body), [...new URLSearchParams(body)], body.slice(0, 60));
    }
  });

  test('accepts a request listing 5000 ids', async () => {
    assert.equal((await verifyBody(signed(bodies.bigSelection, bigSig), options())).ok, true);
    assert.equal(parseAmiPayload(fieldsFromUrlEncoded(bodies.bigSelection)).selectedIds.length, 5000);
  });

  test('fields in any order, the signature anywhere', async () => {
    const shuffled = [...bodies.realistic.split('&').reverse(), `signature=${realisticSig}`].reverse().join('&');
    assert.equal((await verifyBody(shuffled, options())).ok, true);
  });

  test('reports the skew either way within the window', async () => {
    assert.deepEqual(await verifyBody(signed(bodies.realistic, realisticSig), options({ now: new Date(signedAtMs - 2_500) })), {
      ok: true,
      signed: true,
      skewSeconds: -2.5,
    });
  });
});

describe('verifyAmiRequest: rejections', () => {
  test('unsigned: refused unless accepted by configuration', async () => {
    await assertRejected(bodies.realistic, options(), 'unsigned', /secret token/);
    assert.deepEqual(await verifyBody(bodies.realistic, options({ acceptUnsigned: true })), { ok: true, signed: false });
    assert.deepEqual(await verifyBody(bodies.realistic, options({ acceptUnsigned: true, secrets: [] })), { ok: true, signed: false });
  });

  test('bad_signature: a changed value, a wrong secret, garbage, two signatures', async () => {
    const tampered = bodies.realistic.replace('selected_ids=9155%2C9156', 'selected_ids=9155%2C9156%2C1');
    await assertRejected(signed(tampered, realisticSig), options(), 'bad_signature', /does not match/);
    await assertRejected(signed(bodies.realistic.replace('user_login=artist', 'user_login=coord'), realisticSig), options(), 'bad_signature');
    await assertRejected(signed(`${bodies.realistic}&extra=1`, realisticSig), options(), 'bad_signature', /does not match/);
    await assertRejected(signed(bodies.realistic, otherSecretSig), options(), 'bad_signature');
    await assertRejected(signed(bodies.realistic, 'not-hex'), options(), 'bad_signature', /hex/);
    await assertRejected(signed(bodies.realistic, ''), options({ acceptUnsigned: true }), 'bad_signature', /hex/);
    await assertRejected(signed(bodies.realistic, realisticSig.slice(0, 39)), options(), 'bad_signature');
    await assertRejected(`${signed(bodies.realistic, realisticSig)}&signature=${realisticSig}`, options(), 'bad_signature', /more than one/);
  });

  test('bad_signature when signed but no secret is configured, even if unsigned ones are accepted', async () => {
    await assertRejected(signed(bodies.realistic, realisticSig), options({ secrets: [], acceptUnsigned: true }), 'bad_signature', /AMI_SECRET_TOKEN/);
  });

  test('bad_timestamp: missing, malformed, impossible or repeated', async () => {
    await assertRejected(signed(bodies.unsignedTimestamp, noTimestampSig), options(), 'bad_timestamp', /YYYY-MM-DDTHH:MM:SSZ/);
    for (const timestamp of ['2026-11-20 10:11:12', '2026-11-20T10:11:12.000Z', '2026-11-20T10:11:12+00:00', '1795169472', '2026-02-30T10:11:12Z', '2026-11-20T24:00:00Z']) {
      const body = bodies.unsignedTimestamp + `&timestamp=${encodeURIComponent(timestamp)}`;
      const [signature] = pythonSignBodies([{ secret, body }]) as [string];
      await assertRejected(signed(body, signature), options(), 'bad_timestamp', undefined);
    }
    const twice = `${bodies.unsignedTimestamp}&timestamp=${signedAt}&timestamp=${signedAt}`;
    const [twiceSig] = pythonSignBodies([{ secret, body: twice }]) as [string];
    await assertRejected(signed(twice, twiceSig), options(), 'bad_timestamp');
  });

  test('stale: older than the window (the window itself is fine)', async () => {
    const body = signed(bodies.realistic, realisticSig);
    assert.equal((await verifyBody(body, options({ now: new Date(signedAtMs + window * 1000) }))).ok, true);
    await assertRejected(body, options({ now: new Date(signedAtMs + window * 1000 + 1000) }), 'stale', /61 s ago.*older than 60 s/);
  });

  test('future: further ahead than the window allows for clock skew', async () => {
    const body = signed(bodies.realistic, realisticSig);
    assert.equal((await verifyBody(body, options({ now: new Date(signedAtMs - window * 1000) }))).ok, true);
    await assertRejected(body, options({ now: new Date(signedAtMs - window * 1000 - 1000) }), 'future', /61 s in the future/);
  });

  test('replayed: the second use of a signature is refused, in any hex case', async () => {
    const opts = options();
    assert.equal((await verifyBody(signed(bodies.realistic, realisticSig), opts)).ok, true);
    await assertRejected(signed(bodies.realistic, realisticSig), opts, 'replayed', /already used/);
    await assertRejected(signed(bodies.realistic, realisticSig.toUpperCase()), opts, 'replayed');
    // Reordering fields does not make a new request either: the signature is the same.
    await assertRejected(`signature=${realisticSig}&${bodies.realistic.split('&').reverse().join('&')}`, opts, 'replayed');
  });

  test('replay is remembered for the whole time the signature could pass', async () => {
    let clock = signedAtMs - window * 1000;
    const store = new MemoryKeyValueStore({ now: () => clock });
    const opts = (): VerifyOptions => options({ replay: new ReplayGuard(store), now: new Date(clock) });
    const body = signed(bodies.realistic, realisticSig);
    assert.equal((await verifyBody(body, opts())).ok, true, 'first seen at the earliest acceptable moment');
    clock = signedAtMs + window * 1000;
    await assertRejected(body, opts(), 'replayed', undefined);
  });

  test('a forged request does not use up the replay slot of the genuine one', async () => {
    const opts = options();
    const forged = signed(bodies.realistic.replace('user_login=artist', 'user_login=admin'), realisticSig);
    await assertRejected(forged, opts, 'bad_signature');
    await assertRejected(forged, opts, 'bad_signature', /does not match/);
    assert.equal((await verifyBody(signed(bodies.realistic, realisticSig), opts)).ok, true);
  });

  test('a stale request does not use up the replay slot either', async () => {
    const replay = new ReplayGuard(new MemoryKeyValueStore());
    const body = signed(bodies.realistic, realisticSig);
    await assertRejected(body, options({ replay, now: new Date(signedAtMs + 120_000) }), 'stale');
    assert.equal((await verifyBody(body, options({ replay }))).ok, true);
  });

  test('rotation: any configured secret may match', async () => {
    const secrets = ['sécret-トークン-🔑 new', secret];
    assert.equal((await verifyBody(signed(bodies.plusAndCommas, rotatedSig), options({ secrets }))).ok, true);
    assert.equal((await verifyBody(signed(bodies.realistic, realisticSig), options({ secrets }))).ok, true);
    await assertRejected(signed(bodies.plusAndCommas, plusSig), options({ secrets: ['sécret-トークン-🔑 new', 'third'] }), 'bad_signature');
  });

  test('a failing replay store surfaces as an error, not as acceptance', async () => {
    const store = new MemoryKeyValueStore();
    await store.close();
    await assert.rejects(verifyBody(signed(bodies.realistic, realisticSig), options({ replay: new ReplayGuard(store) })));
  });
});

describe('parseAmiTimestamp', () => {
  test('UTC to the second, real dates only', () => {
    assert.equal(parseAmiTimestamp('2026-11-20T10:11:12Z'), Date.UTC(2026, 10, 20, 10, 11, 12));
    assert.equal(parseAmiTimestamp('2028-02-29T23:59:59Z'), Date.UTC(2028, 1, 29, 23, 59, 59));
    for (const bad of ['', '2026-11-20T10:11:12', '2026-11-20t10:11:12z', '2027-02-29T00:00:00Z', '2026-13-01T00:00:00Z', '2026-11-20T10:60:00Z', ' 2026-11-20T10:11:12Z']) {
      assert.equal(parseAmiTimestamp(bad), null, bad);
    }
  });
});
