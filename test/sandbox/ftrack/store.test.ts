import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EntityStore } from '../../../src/sandbox/ftrack/store.ts';

// The sandbox's attribute index answers what a scan of the type would, through inserts, updates and removes.

test('withAttr finds what a scan finds, after inserts, updates and removes', () => {
  const store = new EntityStore();
  const placed = (id: string, componentId: string, locationId: string) =>
    store.insert({ type: 'ComponentLocation', attrs: { id, component_id: componentId, location_id: locationId, resource_identifier: id } });
  const scan = (componentId: string) => store.all('ComponentLocation').filter((entity) => entity.attrs.component_id === componentId);
  placed('l1', 'c1', 'server');
  placed('l2', 'c2', 'server');
  assert.deepEqual(store.withAttr('ComponentLocation', 'component_id', 'c1'), scan('c1'), 'the index is built from what is there');
  const third = placed('l3', 'c1', 'unmanaged');
  assert.deepEqual(store.withAttr('ComponentLocation', 'component_id', 'c1'), scan('c1'), 'an insert joins it, in order');
  assert.equal(store.withAttr('ComponentLocation', 'component_id', 'c1').length, 2);
  store.update(third, { component_id: 'c2' });
  assert.deepEqual(store.withAttr('ComponentLocation', 'component_id', 'c1'), scan('c1'), 'an update moves it');
  assert.deepEqual(store.withAttr('ComponentLocation', 'component_id', 'c2').map((entity) => entity.attrs.id).sort(), ['l2', 'l3']);
  store.update(third, { resource_identifier: 'elsewhere' });
  assert.equal(store.withAttr('ComponentLocation', 'component_id', 'c2').length, 2, 'an update of another attribute leaves it');
  store.remove(third);
  assert.deepEqual(store.withAttr('ComponentLocation', 'component_id', 'c2'), scan('c2'), 'a remove drops it');
  assert.deepEqual(store.withAttr('ComponentLocation', 'component_id', 'nothing'), []);
});
