import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { startFtrackSandbox, type FtrackSandbox } from '../../src/sandbox/ftrack/site.ts';
import { FtrackApi } from '../../src/trackers/ftrack/api.ts';
import { countingDispatcher, type CountingDispatcher } from '../helpers/counting-dispatcher.ts';

// A long query's pages: every entity once, in the server's order, with the pages after the first asked four to a
// batch (a remote server's round trips are what a listing of thousands of components waits on).

let site: FtrackSandbox;
let counted: CountingDispatcher;
let api: FtrackApi;

before(async () => {
  site = await startFtrackSandbox({ pageSize: 2 });
  counted = countingDispatcher(site.url);
  api = new FtrackApi({ serverUrl: site.url, apiUser: site.apiUser, apiKey: site.apiKey, dispatcher: counted.dispatcher });
});
after(async () => {
  await counted?.dispatcher.close();
  await site?.close();
});

test('a query answered in pages of 2 gives every entity once, in order, in 1 + ⌈(n − 2) / 8⌉ calls', async () => {
  const expected = site.store.all('FileComponent').map((component) => component.attrs.id);
  assert.ok(expected.length > 8, `enough components for more than one batch (${expected.length})`);
  counted.reset();
  const found = await api.query(null, 'select id from FileComponent');
  assert.deepEqual(found.map((component) => component.id), expected);
  assert.equal(counted.sent(), 1 + Math.ceil((expected.length - 2) / 8));
});

test('a query that fits its first page is one call; one that ends inside a batch stops there', async () => {
  counted.reset();
  assert.equal((await api.query(null, 'select id from Location')).length, 2);
  assert.equal(counted.sent(), 1);
  counted.reset();
  const users = site.store.all('User').length;
  assert.equal((await api.query(null, 'select id from User')).length, users);
  assert.equal(counted.sent(), 1 + Math.ceil((users - 2) / 8));
});

/**
 * A stand-in /api on a real socket that answers each query of a batch with `page(from, entity)`: its entities from
 * `from` (the expression's offset) and how many there are in all; `entity` is called in the order the response
 * writes them (for identity maps spanning a response). Runs `use` with an FtrackApi pointed at it.
 */
async function withStandInApi(
  total: number,
  page: (from: number) => number,
  entity: (index: number, written: Set<string>) => Record<string, unknown>,
  use: (api: FtrackApi) => Promise<void>,
): Promise<void> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      const written = new Set<string>();
      const replies = (JSON.parse(body) as { expression: string }[]).map(({ expression }) => {
        const from = Number(/offset (\d+)/.exec(expression)?.[1] ?? 0);
        const count = Math.max(0, Math.min(page(from), total - from));
        const data = Array.from({ length: count }, (_, i) => entity(from + i, written));
        return { action: 'query', data, metadata: { next: { offset: from + count < total ? from + count : null } } };
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(replies));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const stand = new FtrackApi({ serverUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, apiUser: 'ami-transfer', apiKey: 'key' });
  try {
    await use(stand);
  } finally {
    await stand.close();
    await new Promise((resolve) => server.close(resolve));
  }
}

test('a server whose later pages come back shorter than the first loses no entity and repeats none', async () => {
  // 20 entities; the first page holds 5, every later one at most 3, whatever limit is asked.
  await withStandInApi(20, (from) => (from === 0 ? 5 : 3), (index) => ({ __entity_type__: 'Status', id: `s${index}` }), async (api) => {
    const found = await api.query(null, 'select id from Status');
    assert.deepEqual(found.map((status) => status.id), Array.from({ length: 20 }, (_, i) => `s${i}`));
  });
});

test('an entity written in full once per response, then as references in the batch\'s later pages, is whole everywhere', async () => {
  // The identity map spans the response (as @ftrack/api's decoder assumes): the asset is in full where the response
  // first mentions it, {__entity_type__, id} after that, whichever operation it is in.
  const asset = (written: Set<string>) => (written.has('a1') ? { __entity_type__: 'Asset', id: 'a1' } : (written.add('a1'), { __entity_type__: 'Asset', id: 'a1', name: 'sh010_comp' }));
  await withStandInApi(9, () => 2, (index, written) => ({ __entity_type__: 'AssetVersion', id: `v${index}`, version: index, asset: asset(written) }), async (api) => {
    const found = await api.query(null, 'select version, asset.name from AssetVersion');
    assert.equal(found.length, 9);
    assert.deepEqual(found.map((version) => (version.asset as { name?: unknown }).name), Array.from({ length: 9 }, () => 'sh010_comp'));
  });
});
