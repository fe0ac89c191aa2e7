import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ByteBudget } from '../../src/net/byte-budget.ts';

test('a byte budget holds what is acquired, makes the next wait for room, and serves waiters in order', async () => {
  const budget = new ByteBudget(100);
  await budget.acquire(60);
  const order: string[] = [];
  const big = budget.acquire(70).then(() => order.push('big'));
  const small = budget.acquire(10).then(() => order.push('small'));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(order, [], 'the big one waits, and the small one does not pass it');
  budget.release(60);
  await Promise.all([big, small]);
  assert.deepEqual(order, ['big', 'small']);
  assert.equal(budget.held, 80);
  budget.release(80);
  await budget.acquire(500);
  assert.equal(budget.held, 100, 'more than the whole budget is granted once it is all free');
  budget.release(500);
  assert.equal(budget.held, 0);
});
