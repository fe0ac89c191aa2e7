import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { PartLinks } from '../../src/transfer/part-links.ts';

// The bookkeeping of part links asked ahead; upload-session.test.ts watches it at work against the sandbox.

function counter() {
  const asked: string[] = [];
  return { asked, ask: (key: string, answer: Promise<string> = Promise.resolve(`url-${key}-${asked.length}`)) => () => (asked.push(key), answer) };
}

test('a link asked ahead is used once; the next take asks again', async () => {
  const links = new PartLinks({ maxAgeMs: 60_000 });
  const { asked, ask } = counter();
  links.askAhead([['u:0:2', ask('u:0:2')], ['u:0:3', ask('u:0:3')]]);
  links.askAhead([['u:0:3', ask('u:0:3')]]);
  assert.deepEqual(asked, ['u:0:2', 'u:0:3'], 'a link already asked for is not asked again');
  assert.equal(await links.take('u:0:2', ask('u:0:2')), 'url-u:0:2-0');
  assert.equal(await links.take('u:0:2', ask('u:0:2')), 'url-u:0:2-2', 'taken once: asked afresh');
});

test('a link asked ahead that failed, or is too old, is asked again', async () => {
  const links = new PartLinks({ maxAgeMs: 20 });
  const { asked, ask } = counter();
  links.askAhead([['u:0:2', ask('u:0:2', Promise.reject(new Error('site busy')))], ['u:0:3', ask('u:0:3')]]);
  assert.equal(await links.take('u:0:2', ask('u:0:2')), 'url-u:0:2-2');
  await sleep(30);
  assert.equal(await links.take('u:0:3', ask('u:0:3')), 'url-u:0:3-3');
  assert.deepEqual(asked, ['u:0:2', 'u:0:3', 'u:0:2', 'u:0:3']);
});

test("forget drops an upload's links and no other's", async () => {
  const links = new PartLinks({ maxAgeMs: 60_000 });
  const { asked, ask } = counter();
  links.askAhead([['a:0:2', ask('a:0:2')], ['b:0:2', ask('b:0:2')]]);
  links.forget('a:');
  await links.take('a:0:2', ask('a:0:2'));
  await links.take('b:0:2', ask('b:0:2'));
  assert.deepEqual(asked, ['a:0:2', 'b:0:2', 'a:0:2']);
});
