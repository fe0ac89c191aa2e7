import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, test } from 'node:test';
import { createLogger, redactUrl, requestIdFrom, scrubText } from '../src/log.ts';

/** A logger whose JSON lines are kept for inspection. */
function capturedLogger(): { log: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  const log = createLogger({ level: 'debug', destination });
  const text = () => chunks.join('');
  return { log, text, lines: () => text().trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>) };
}

const signedUrl =
  'https://bucket.s3.us-west-2.amazonaws.com/media/a.mov?X-Amz-Algorithm=AWS4-HMAC-SHA256' +
  '&X-Amz-Credential=AKIAEXAMPLE%2F20261123%2Fus-west-2%2Fs3%2Faws4_request&X-Amz-Date=20261123T010000Z' +
  '&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Security-Token=session-token-value&X-Amz-Signature=0123abcd';

describe('redaction', () => {
  test('signed URL parameters are masked, the rest kept for debugging', () => {
    const masked = redactUrl(signedUrl);
    assert.ok(!masked.includes('0123abcd'));
    assert.ok(!masked.includes('AKIAEXAMPLE'));
    assert.ok(!masked.includes('session-token-value'));
    assert.match(masked, /^https:\/\/bucket\.s3\.us-west-2\.amazonaws\.com\/media\/a\.mov\?/);
    assert.match(masked, /X-Amz-Expires=900/);
    assert.match(masked, /X-Amz-Signature=\[redacted\]/);
  });

  test('URLs and credentials inside free text are masked', () => {
    const text = scrubText(
      `PUT ${signedUrl} failed; retried with Authorization: Bearer eyJhbGciOi.payload.sig and ` +
        'https://site.example.com/upload?expiration=1&signature=f00d&user_id=3',
    );
    for (const secret of ['0123abcd', 'eyJhbGciOi', 'f00d']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
    assert.match(text, /user_id=3/);
  });

  test('log lines never carry secret fields, signed URLs, or stacks', () => {
    const { log, text, lines } = capturedLogger();
    log.info(
      {
        req: { headers: { authorization: 'Bearer header-token', cookie: 'sid=cookie-value', 'user-agent': 'test' } },
        tokens: { access_token: 'access-value', refresh_token: 'refresh-value' },
        source: { url: signedUrl },
        clientSecret: 'client-secret-value',
        nested: [{ password: 'password-value' }],
      },
      `downloading ${signedUrl}`,
    );
    const failure = new Error(`storage refused ${signedUrl}`);
    log.error(failure);
    log.error({ err: failure }, 'upload failed');

    const output = text();
    for (const secret of [
      'header-token',
      'cookie-value',
      'access-value',
      'refresh-value',
      '0123abcd',
      'client-secret-value',
      'password-value',
      'session-token-value',
    ]) {
      assert.ok(!output.includes(secret), `${secret} leaked: ${output}`);
    }
    assert.ok(!output.includes('"stack"'));
    assert.ok(!output.includes('at '), 'no stack frames');
    const [first, second, third] = lines();
    assert.equal((first?.['req'] as { headers: Record<string, string> }).headers['user-agent'], 'test');
    assert.match(String(second?.['msg']), /^storage refused https:\/\/bucket/);
    assert.deepEqual(Object.keys(third?.['err'] as object).sort(), ['message', 'type']);
  });
});

describe('request ids', () => {
  test('a sane X-Request-Id is kept; anything else is replaced by a UUID', () => {
    assert.equal(requestIdFrom('edge-7f3a:42'), 'edge-7f3a:42');
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    for (const bad of [undefined, '', 'has space', 'x'.repeat(129), 'line\nbreak', '<script>']) {
      assert.match(requestIdFrom(bad), uuid);
    }
  });
});
