import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compareRecords,
  compileFilter,
  FilterError,
  parseArrayFilters,
  parseHashFilters,
  parseQueryFilters,
  parseSort,
  type FilterContext,
  type FilterGroup,
} from '../../src/sandbox/filters.ts';
import { RecordStore, type EntityRef, type StoredRecord } from '../../src/sandbox/records.ts';
import type { EntityType } from '../../src/sandbox/schema.ts';

// A small site: ids are per type, so every assertion names exact ids of the searched type.
function site() {
  const store = new RecordStore();
  const ref = (r: StoredRecord): EntityRef => ({ type: r.type, id: r.id });

  const alpha = store.insert('Project', { name: 'Alpha', archived: false }); // Project 1
  const beta = store.insert('Project', { name: 'beta', archived: true }); // Project 2
  const ann = store.insert('HumanUser', { name: 'Ann Lee', login: 'ann' }); // HumanUser 1
  const bob = store.insert('HumanUser', { name: 'bob stone', login: 'bob' }); // HumanUser 2
  const sq01 = store.insert('Sequence', { code: 'SQ01', project: ref(alpha) }); // Sequence 1
  const sq02 = store.insert('Sequence', { code: 'sq02', project: ref(alpha) }); // Sequence 2
  const sh010 = store.insert('Shot', { code: 'sh010', project: ref(alpha), sg_sequence: ref(sq01), sg_cut_in: 1001, sg_status_list: 'ip' }); // Shot 1
  const sh020 = store.insert('Shot', { code: 'SH020', project: ref(alpha), sg_sequence: ref(sq01), sg_cut_in: 1010, sg_status_list: 'fin' }); // Shot 2
  store.insert('Shot', { code: 'sh030', project: ref(alpha), sg_sequence: ref(sq02), sg_cut_in: null, sg_status_list: 'wtg' }); // Shot 3
  store.insert('Shot', { code: 'xx040', project: ref(beta), sg_sequence: null, sg_cut_in: 990, description: 'Hero shot', sg_status_list: 'IP' }); // Shot 4
  const robot = store.insert('Asset', { code: 'robot', project: ref(alpha) }); // Asset 1
  const comp = store.insert('Task', { content: 'Comp', project: ref(alpha), entity: ref(sh010), task_assignees: [ref(ann), ref(bob)] }); // Task 1
  const anim = store.insert('Task', { content: 'Anim', project: ref(alpha), entity: ref(sh020), task_assignees: [ref(bob)] }); // Task 2
  store.insert('Task', { content: 'Layout', project: ref(alpha), entity: ref(robot), task_assignees: [] }); // Task 3
  const dailies = store.insert('Playlist', { code: 'Dailies Monday', project: ref(alpha) }); // Playlist 1
  const client = store.insert('Playlist', { code: 'client review', project: ref(alpha) }); // Playlist 2

  const v = (fields: Parameters<RecordStore['insert']>[1], created: string) => {
    const record = store.insert('Version', { project: ref(alpha), ...fields });
    record.fields.created_at = created; // insert stamps "now"; tests need distinct times
    return record;
  };
  // Version 1
  v({ code: 'sh010_comp_v001', description: 'first pass', entity: ref(sh010), sg_task: ref(comp), user: ref(ann), sg_status_list: 'rev', playlists: [ref(dailies)] }, '2024-03-01T10:00:00Z');
  // Version 2
  v({ code: 'SH010_comp_v002', description: null, entity: ref(sh010), sg_task: ref(comp), user: ref(bob), sg_status_list: 'apr', playlists: [ref(dailies), ref(client)] }, '2024-03-02T10:00:00Z');
  // Version 3
  v({ code: 'sh020_anim_v001', description: '', entity: ref(sh020), sg_task: ref(anim), user: ref(ann), sg_status_list: 'rev', playlists: [] }, '2024-03-03T10:00:00Z');
  // Version 4: linked to an Asset, no task or user, an uploaded movie and a thumbnail
  v(
    {
      code: 'robot_v001', description: 'Robot turntable', entity: ref(robot), sg_task: null, user: null, sg_status_list: null, playlists: [ref(client)],
      sg_uploaded_movie: { link_type: 'upload', attachmentId: 1, name: 'robot.mov', content_type: 'video/quicktime', key: 'k/robot.mov', size: 10 },
      image: { key: 'thumbs/robot.jpg', content_type: 'image/jpeg', readyAt: 0, failed: false },
    },
    '2024-03-04T10:00:00Z',
  );
  // Version 5: another project, no entity; its thumbnail failed processing
  v(
    { code: 'orphan', project: ref(beta), entity: null, user: ref(bob), sg_status_list: 'REV', image: { key: 'thumbs/bad.txt', content_type: 'text/plain', readyAt: 0, failed: true } },
    '2024-03-05T10:00:00Z',
  );
  return store;
}

const store = site();

function ids(type: EntityType, group: FilterGroup, context: FilterContext = store): number[] {
  const match = compileFilter(type, group, context);
  return store.all(type).filter(match).map((r) => r.id);
}
/** Array syntax. */
const arr = (type: EntityType, filters: unknown, context?: FilterContext) => ids(type, parseArrayFilters(filters), context);
/** Hash syntax. */
const hash = (type: EntityType, filters: unknown) => ids(type, parseHashFilters(filters));
/** Asserts one array condition selects exactly `expected`, and that the hash syntax (array and object conditions) agrees. */
function check(type: EntityType, condition: unknown[], expected: number[]): void {
  assert.deepEqual(arr(type, [condition]), expected, `array ${JSON.stringify(condition)}`);
  assert.deepEqual(hash(type, { logical_operator: 'and', conditions: [condition] }), expected, `hash ${JSON.stringify(condition)}`);
  const [path, relation, ...values] = condition;
  assert.deepEqual(hash(type, { logical_operator: 'or', conditions: [{ path, relation, values }] }), expected, `object ${JSON.stringify(condition)}`);
}
function refuses(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (error: unknown) => error instanceof FilterError && message.test(error.message));
}
const compileArr = (type: EntityType, filters: unknown) => compileFilter(type, parseArrayFilters(filters), store);

describe('text fields', () => {
  test('is / is_not compare case-insensitively', () => {
    check('Version', ['code', 'is', 'SH010_COMP_V001'], [1]);
    check('Version', ['code', 'is', 'sh010_comp_v002'], [2]);
    check('Version', ['code', 'is_not', 'Sh010_Comp_V001'], [2, 3, 4, 5]);
  });
  test('is null matches unset and empty text; is_not null the rest', () => {
    check('Version', ['description', 'is', null], [2, 3, 5]);
    check('Version', ['description', 'is_not', null], [1, 4]);
  });
  test('in / not_in, with the list wrapped or spread', () => {
    check('Version', ['code', 'in', ['ORPHAN', 'robot_v001']], [4, 5]);
    check('Version', ['code', 'in', 'orphan', 'ROBOT_V001'], [4, 5]);
    check('Version', ['code', 'not_in', ['orphan', 'robot_v001']], [1, 2, 3]);
    check('Version', ['description', 'in', [null, 'first pass']], [1, 2, 3, 5]);
    check('Version', ['code', 'in', []], []);
  });
  test('contains / not_contains / starts_with / ends_with', () => {
    check('Version', ['code', 'contains', 'COMP'], [1, 2]);
    check('Version', ['code', 'not_contains', 'comp'], [3, 4, 5]);
    check('Version', ['description', 'not_contains', 'pass'], [2, 3, 4, 5]);
    check('Version', ['code', 'starts_with', 'SH0'], [1, 2, 3]);
    check('Version', ['code', 'ends_with', '_V001'], [1, 3, 4]);
  });
});

describe('number fields', () => {
  test('id: is, is_not, in, not_in', () => {
    check('Version', ['id', 'is', 3], [3]);
    check('Version', ['id', 'is_not', 3], [1, 2, 4, 5]);
    check('Version', ['id', 'in', [1, 2]], [1, 2]);
    check('Version', ['id', 'in', 1, 2], [1, 2]);
    check('Version', ['id', 'not_in', [1, 2]], [3, 4, 5]);
  });
  test('less_than, greater_than, between and not_between (open bounds, unset excluded)', () => {
    check('Shot', ['sg_cut_in', 'less_than', 1001], [4]);
    check('Shot', ['sg_cut_in', 'greater_than', 1000], [1, 2]);
    check('Shot', ['sg_cut_in', 'between', [1001, 1010]], [1, 2]);
    check('Shot', ['sg_cut_in', 'between', 995, 1005], [1]);
    check('Shot', ['sg_cut_in', 'between', [null, 1001]], [1, 4]);
    check('Shot', ['sg_cut_in', 'not_between', [995, 1005]], [2, 4]);
    check('Shot', ['sg_cut_in', 'is', null], [3]);
    check('Shot', ['sg_cut_in', 'is_not', null], [1, 2, 4]);
  });
  test('numeric strings are read as numbers (query-string filters)', () => {
    check('Version', ['id', 'in', ['2', '4']], [2, 4]);
    check('Shot', ['sg_cut_in', 'greater_than', '1001'], [2]);
  });
});

describe('checkbox, list, status_list and date_time fields', () => {
  test('checkbox is / is_not', () => {
    check('Project', ['archived', 'is', true], [2]);
    check('Project', ['archived', 'is_not', true], [1]);
    check('Project', ['archived', 'is', 'false'], [1]);
  });
  test('status_list is / in / is null, case-insensitive', () => {
    check('Version', ['sg_status_list', 'is', 'rev'], [1, 3, 5]);
    check('Version', ['sg_status_list', 'in', ['apr', 'REV']], [1, 2, 3, 5]);
    check('Version', ['sg_status_list', 'is', null], [4]);
    check('Version', ['sg_status_list', 'not_in', ['rev']], [2, 4]);
    check('Shot', ['sg_status_list', 'is_not', 'ip'], [2, 3]);
  });
  test('date_time compares instants', () => {
    check('Version', ['created_at', 'greater_than', '2024-03-03T10:00:00Z'], [4, 5]);
    check('Version', ['created_at', 'less_than', '2024-03-02T10:00:00Z'], [1]);
    check('Version', ['created_at', 'between', ['2024-03-02T00:00:00Z', '2024-03-04T10:00:00Z']], [2, 3, 4]);
    check('Version', ['created_at', 'is', '2024-03-02T11:00:00+01:00'], [2]);
    check('Version', ['created_at', 'in', ['2024-03-01T10:00:00Z', '2024-03-05T10:00:00Z']], [1, 5]);
  });
});

describe('entity fields', () => {
  const sh010 = { type: 'Shot', id: 1 };
  const sh020 = { type: 'Shot', id: 2 };
  test('is / is_not a link, or null for unset', () => {
    check('Version', ['entity', 'is', sh010], [1, 2]);
    check('Version', ['entity', 'is', { type: 'Shot', id: 1, name: 'ignored' }], [1, 2]);
    check('Version', ['entity', 'is_not', sh010], [3, 4, 5]);
    check('Version', ['entity', 'is', null], [5]);
    check('Version', ['entity', 'is_not', null], [1, 2, 3, 4]);
    // Same id, other type: Asset 1 is not Shot 1.
    check('Version', ['entity', 'is', { type: 'Asset', id: 1 }], [4]);
  });
  test('in / not_in', () => {
    check('Version', ['entity', 'in', [sh010, sh020]], [1, 2, 3]);
    check('Version', ['entity', 'in', sh020, { type: 'Asset', id: 1 }], [3, 4]);
    check('Version', ['entity', 'not_in', [sh010, sh020]], [4, 5]);
    check('Version', ['user', 'in', [null, { type: 'HumanUser', id: 2 }]], [2, 4, 5]);
  });
  test('type_is / type_is_not', () => {
    check('Version', ['entity', 'type_is', 'Asset'], [4]);
    check('Version', ['entity', 'type_is_not', 'Shot'], [4, 5]);
  });
  test('name relations read the linked display name, case-insensitively', () => {
    check('Version', ['entity', 'name_is', 'SH010'], [1, 2]);
    check('Version', ['entity', 'name_contains', 'h02'], [3]);
    check('Version', ['entity', 'name_not_contains', 'sh0'], [4, 5]);
    check('Version', ['entity', 'name_starts_with', 'RO'], [4]);
    check('Version', ['entity', 'name_ends_with', '20'], [3]);
    check('Version', ['user', 'contains', 'LEE'], [1, 3]);
    check('Version', ['user', 'starts_with', 'bob'], [2, 5]);
    check('Version', ['user', 'ends_with', 'stone'], [2, 5]);
    check('Version', ['user', 'not_contains', 'ann'], [2, 4, 5]);
  });
});

describe('multi_entity fields', () => {
  const dailies = { type: 'Playlist', id: 1 };
  const client = { type: 'Playlist', id: 2 };
  test('is means "holds", is_not "does not hold", null means empty', () => {
    check('Version', ['playlists', 'is', dailies], [1, 2]);
    check('Version', ['playlists', 'is_not', dailies], [3, 4, 5]);
    check('Version', ['playlists', 'is', null], [3, 5]);
    check('Version', ['playlists', 'is_not', null], [1, 2, 4]);
  });
  test('in means "holds any", not_in "holds none"', () => {
    check('Version', ['playlists', 'in', [dailies, client]], [1, 2, 4]);
    check('Version', ['playlists', 'in', client], [2, 4]);
    check('Version', ['playlists', 'not_in', [client]], [1, 3, 5]);
    check('Task', ['task_assignees', 'in', [{ type: 'HumanUser', id: 1 }]], [1]);
  });
  test('contains / name_contains look at every linked name', () => {
    check('Version', ['playlists', 'name_contains', 'REVIEW'], [2, 4]);
    check('Version', ['playlists', 'contains', 'dailies'], [1, 2]);
    check('Version', ['playlists', 'name_not_contains', 'review'], [1, 3, 5]);
    check('Task', ['task_assignees', 'not_contains', 'bob'], [3]);
  });
  test('type_is', () => {
    check('Task', ['task_assignees', 'type_is', 'HumanUser'], [1, 2]);
    check('Task', ['task_assignees', 'type_is_not', 'HumanUser'], [3]);
  });
});

describe('file and image fields', () => {
  test('only is / is_not null', () => {
    check('Version', ['sg_uploaded_movie', 'is_not', null], [4]);
    check('Version', ['sg_uploaded_movie', 'is', null], [1, 2, 3, 5]);
    // A failed thumbnail shows as null, so it counts as none.
    check('Version', ['image', 'is_not', null], [4]);
    check('Version', ['image', 'is', null], [1, 2, 3, 5]);
    refuses(() => compileArr('Version', [['sg_uploaded_movie', 'is', 'robot.mov']]), /"sg_uploaded_movie" \(url\) can only be compared with null/);
    refuses(() => compileArr('Version', [['image', 'is_not', 'x']]), /"image" \(image\) can only be compared with null/);
    refuses(() => compileArr('Version', [['sg_uploaded_movie', 'contains', 'robot']]), /^Invalid relation "contains" for url field "sg_uploaded_movie"$/);
  });
});

describe('groups and syntaxes', () => {
  test('array conditions are ANDed', () => {
    assert.deepEqual(arr('Version', [['code', 'contains', 'v001'], ['user', 'is', { type: 'HumanUser', id: 1 }]]), [1, 3]);
    assert.deepEqual(arr('Version', []), [1, 2, 3, 4, 5]);
  });
  test('nested and/or groups mixing array and object conditions', () => {
    const filters = {
      logical_operator: 'or',
      conditions: [
        { logical_operator: 'and', conditions: [['sg_status_list', 'is', 'rev'], { path: 'user', relation: 'is', values: [{ type: 'HumanUser', id: 2 }] }] },
        ['entity', 'type_is', 'Asset'],
        { logical_operator: 'and', conditions: [['code', 'starts_with', 'sh010'], ['description', 'is', null]] },
      ],
    };
    assert.deepEqual(hash('Version', filters), [2, 4, 5]);
    assert.deepEqual(hash('Version', { logical_operator: 'or', conditions: [] }), [1, 2, 3, 4, 5]);
  });
  test('object conditions accept a wrapped list as the value list', () => {
    assert.deepEqual(hash('Version', { logical_operator: 'and', conditions: [{ path: 'id', relation: 'in', values: [[2, 3]] }] }), [2, 3]);
  });
  test('the parsed forms are equal', () => {
    const expected = { logical_operator: 'and', conditions: [{ path: 'id', relation: 'in', values: [1, 2] }] };
    assert.deepEqual(parseArrayFilters([['id', 'in', [1, 2]]]), expected);
    assert.deepEqual(parseArrayFilters([['id', 'in', 1, 2]]), expected);
    assert.deepEqual(parseHashFilters({ logical_operator: 'and', conditions: [['id', 'in', [1, 2]]] }), expected);
    assert.deepEqual(parseHashFilters({ logical_operator: 'and', conditions: [{ path: 'id', relation: 'in', values: [1, 2] }] }), expected);
  });
});

describe('query-string filters', () => {
  test('single values mean is, comma lists and repeated keys mean in', () => {
    assert.deepEqual(parseQueryFilters({ 'filter[code]': 'sh010', 'filter[id]': '1,2', fields: 'code', 'page[size]': '10' }), {
      logical_operator: 'and',
      conditions: [
        { path: 'code', relation: 'is', values: ['sh010'] },
        { path: 'id', relation: 'in', values: ['1', '2'] },
      ],
    });
    assert.deepEqual(parseQueryFilters({ 'filter[id]': ['1', '2,3'] }).conditions, [{ path: 'id', relation: 'in', values: ['1', '2', '3'] }]);
    assert.deepEqual(parseQueryFilters({ 'filter[description]': '' }).conditions, [{ path: 'description', relation: 'is', values: [null] }]);
    assert.deepEqual(parseQueryFilters({}).conditions, []);
  });
  test('evaluate like the JSON forms', () => {
    const query = (type: EntityType, q: Record<string, unknown>) => ids(type, parseQueryFilters(q));
    assert.deepEqual(query('Version', { 'filter[code]': 'SH010_COMP_V002' }), [2]);
    assert.deepEqual(query('Version', { 'filter[id]': '1,3,9' }), [1, 3]);
    assert.deepEqual(query('Version', { 'filter[sg_status_list]': 'rev', 'filter[user.HumanUser.login]': 'ann' }), [1, 3]);
    // qs-style nested object
    assert.deepEqual(query('Shot', { filter: { 'project.Project.id': '2' } }), [4]);
    assert.deepEqual(query('Project', { 'filter[archived]': 'true' }), [2]);
  });
  test('refuses values that are not strings', () => {
    refuses(() => parseQueryFilters({ 'filter[code]': { a: 1 } }), /^filter\[code\] must be a string value$/);
    refuses(() => parseQueryFilters({ filter: 'x' }), /filter\[field\]=value/);
  });
});

describe('deep paths', () => {
  test('follow entity links through the store', () => {
    check('Version', ['entity.Shot.code', 'is', 'SH010'], [1, 2]);
    check('Version', ['entity.Shot.sg_cut_in', 'greater_than', 1005], [3]);
    check('Version', ['entity.Shot.sg_sequence.Sequence.code', 'is', 'sq01'], [1, 2, 3]);
    // Linked to an Asset, or to nothing: the Shot's code reads as unset.
    check('Version', ['entity.Shot.code', 'is', null], [4, 5]);
    check('Version', ['sg_task.Task.task_assignees', 'is', { type: 'HumanUser', id: 1 }], [1, 2]);
  });
  test('through multi_entity links: any linked record', () => {
    check('Version', ['playlists.Playlist.code', 'starts_with', 'client'], [2, 4]);
    check('HumanUser', ['id', 'in', [1, 2]], [1, 2]);
  });
  test('need record lookup from the context', () => {
    const namesOnly: FilterContext = { nameOf: (r) => store.nameOf(r) };
    refuses(() => arr('Version', [['entity.Shot.code', 'is', 'sh010']], namesOnly), /^Deep path "entity.Shot.code" is not supported here/);
    assert.deepEqual(arr('Version', [['entity', 'name_is', 'sh010']], namesOnly), [1, 2]);
  });
  test('refuse bad paths', () => {
    refuses(() => compileArr('Version', [['entity.Shot', 'is', 'x']]), /^Invalid field path "entity.Shot"/);
    refuses(() => compileArr('Version', [['entity..code', 'is', 'x']]), /^Invalid field path/);
    refuses(() => compileArr('Version', [['entity.Project.name', 'is', 'x']]), /Version.entity does not link to "Project"/);
    refuses(() => compileArr('Version', [['code.Shot.code', 'is', 'x']]), /Version.code is a text field, not a link/);
    refuses(() => compileArr('Version', [['entity.Shot.nope', 'is', 'x']]), /^Unknown field "nope" on Shot in path "entity.Shot.nope"$/);
  });
});

describe('FilterError', () => {
  test('unknown fields and relations', () => {
    refuses(() => compileArr('Version', [['foo', 'is', 1]]), /^Unknown field "foo" on Version$/);
    refuses(() => compileArr('Version', [['code', 'looks_like', 'x']]), /^Unknown relation "looks_like"$/);
    refuses(() => compileArr('Version', [['created_at', 'in_last', 1, 'DAY']]), /^Relation "in_last" is not supported by the sandbox$/);
    refuses(() => compileArr('ActionMenuItem', [['secret_token', 'is', 'x']]), /cannot be filtered/);
    // Validation is up front: a bad condition inside an "or" group is refused even though another branch would match.
    refuses(() => hash('Version', { logical_operator: 'or', conditions: [['id', 'is', 1], { logical_operator: 'and', conditions: [['nope', 'is', 1]] }] }), /Unknown field "nope"/);
  });
  test('relations invalid for the field type', () => {
    const cases: [EntityType, string, string, unknown, string][] = [
      ['Version', 'id', 'starts_with', 'x', 'Invalid relation "starts_with" for number field "id"'],
      ['Version', 'code', 'less_than', 'x', 'Invalid relation "less_than" for text field "code"'],
      ['Version', 'code', 'between', 'x', 'Invalid relation "between" for text field "code"'],
      ['Version', 'code', 'name_contains', 'x', 'Invalid relation "name_contains" for text field "code"'],
      ['Project', 'archived', 'in', true, 'Invalid relation "in" for checkbox field "archived"'],
      ['Version', 'sg_status_list', 'contains', 'r', 'Invalid relation "contains" for status_list field "sg_status_list"'],
      ['Version', 'entity', 'less_than', 1, 'Invalid relation "less_than" for entity field "entity"'],
      ['Version', 'playlists', 'starts_with', 'x', 'Invalid relation "starts_with" for multi_entity field "playlists"'],
      ['Version', 'playlists', 'name_is', 'x', 'Invalid relation "name_is" for multi_entity field "playlists"'],
      ['Version', 'image', 'in', null, 'Invalid relation "in" for image field "image"'],
      ['Version', 'created_at', 'contains', '2024', 'Invalid relation "contains" for date_time field "created_at"'],
      ['Version', 'entity.Shot.code', 'less_than', 'x', 'Invalid relation "less_than" for text field "entity.Shot.code"'],
    ];
    for (const [type, path, relation, value, message] of cases) {
      assert.throws(() => compileArr(type, [[path, relation, value]]), new FilterError(message));
    }
  });
  test('wrong number or kind of values', () => {
    const cases: [EntityType, unknown[], RegExp][] = [
      ['Version', ['id', 'is', 1, 2], /^"id" is takes one value, got 2$/],
      ['Shot', ['sg_cut_in', 'between', [1]], /^"sg_cut_in" between takes two values \[low, high\], got 1$/],
      ['Version', ['id', 'is', 'abc'], /^"id" is needs a number, got "abc"$/],
      ['Version', ['id', 'less_than', null], /needs a number, got null/],
      ['Version', ['code', 'is', 5], /^"code" is needs a string, got 5$/],
      ['Version', ['code', 'contains', null], /needs a string, got null/],
      ['Project', ['archived', 'is', 'yes'], /needs true or false, got "yes"/],
      ['Version', ['created_at', 'greater_than', 'yesterday'], /needs an ISO 8601 date-time, got "yesterday"/],
      ['Version', ['entity', 'is', 1], /^"entity" is needs an entity \{"type","id"\} or null, got 1$/],
      ['Version', ['entity', 'in', [{ type: 'Shot' }]], /needs an entity/],
      ['Version', ['playlists', 'is', 'Dailies Monday'], /needs an entity/],
      ['Version', ['entity', 'type_is', 5], /needs an entity type name/],
      ['Version', ['entity', 'name_is', null], /needs a string, got null/],
    ];
    for (const [type, condition, message] of cases) refuses(() => compileArr(type, [condition]), message);
  });
  test('malformed array filters', () => {
    refuses(() => parseArrayFilters({ logical_operator: 'and', conditions: [] }), /must be an array of conditions/);
    refuses(() => parseArrayFilters(undefined), /must be an array of conditions/);
    refuses(() => parseArrayFilters(['code']), /^filters\[0\] must be an array/);
    refuses(() => parseArrayFilters([['code', 'is']]), /^filters\[0\]: missing value for "code" is$/);
    refuses(() => parseArrayFilters([[1, 'is', 1]]), /the field name must be a non-empty string/);
    refuses(() => parseArrayFilters([['code', 5, 1]]), /the relation must be a string/);
    refuses(() => parseArrayFilters([{ logical_operator: 'or', conditions: [] }]), /nested filter groups need Content-Type application\/vnd\+shotgun.api3_hash\+json/);
  });
  test('malformed hash filters', () => {
    refuses(() => parseHashFilters([['code', 'is', 'x']]), /^filters must be an object \{logical_operator, conditions\}/);
    refuses(() => parseHashFilters({ conditions: [] }), /^filters.logical_operator must be "and" or "or", got nothing$/);
    refuses(() => parseHashFilters({ logical_operator: 'any', conditions: [] }), /got "any"/);
    refuses(() => parseHashFilters({ logical_operator: 'and' }), /^filters.conditions must be an array$/);
    refuses(() => parseHashFilters({ logical_operator: 'and', conditions: [{ path: 'code', relation: 'is' }] }), /^filters.conditions\[0\].values must be an array$/);
    refuses(() => parseHashFilters({ logical_operator: 'and', conditions: [{ relation: 'is', values: [] }] }), /^filters.conditions\[0\].path must be a non-empty string$/);
    refuses(() => parseHashFilters({ logical_operator: 'and', conditions: ['code'] }), /must be a condition or a group/);
    refuses(
      () => parseHashFilters({ logical_operator: 'and', conditions: [{ logical_operator: 'xor', conditions: [] }] }),
      /^filters.conditions\[0\].logical_operator must be "and" or "or"/,
    );
  });
});

describe('sorting', () => {
  const sorted = (type: EntityType, sort: unknown, context: FilterContext = store) =>
    store
      .all(type)
      .sort(compareRecords(parseSort(type, sort), context))
      .map((r) => r.id);

  test('default is id ascending', () => {
    assert.deepEqual(parseSort('Version', undefined).map((k) => [k.path, k.direction]), [['id', 'asc']]);
    assert.deepEqual(parseSort('Version', '').map((k) => [k.path, k.direction]), [['id', 'asc']]);
    assert.deepEqual(sorted('Version', []), [1, 2, 3, 4, 5]);
  });
  test('text sorts case-insensitively; descending with -', () => {
    // orphan, robot_v001, sh010_comp_v001, SH010_comp_v002, sh020_anim_v001
    assert.deepEqual(sorted('Version', 'code'), [5, 4, 1, 2, 3]);
    assert.deepEqual(sorted('Version', '-code'), [3, 2, 1, 4, 5]);
    assert.deepEqual(sorted('Version', '-id'), [5, 4, 3, 2, 1]);
  });
  test('entity fields sort by display name, unset first ascending and last descending', () => {
    // entity names: sh010 (1, 2), SH020 (3), robot (4), none (5)
    assert.deepEqual(sorted('Version', 'entity'), [5, 4, 1, 2, 3]);
    assert.deepEqual(sorted('Version', '-entity'), [3, 1, 2, 4, 5]);
    // user names: Ann Lee (1, 3), bob stone (2, 5), none (4)
    assert.deepEqual(sorted('Version', ['user']), [4, 1, 3, 2, 5]);
  });
  test('numbers with nulls, several keys, ties by id', () => {
    assert.deepEqual(sorted('Shot', 'sg_cut_in'), [3, 4, 1, 2]);
    assert.deepEqual(sorted('Shot', '-sg_cut_in'), [2, 1, 4, 3]);
    assert.deepEqual(sorted('Version', 'sg_status_list, -created_at'), [4, 2, 5, 3, 1]);
    assert.deepEqual(sorted('Version', ['-user', 'code']), [5, 2, 1, 3, 4]);
    assert.deepEqual(sorted('Project', '-archived'), [2, 1]);
    // Ties fall back to id even when the input is not in id order (Array.sort is stable, so this needs checking).
    const reversed = store.all('Version').reverse().sort(compareRecords(parseSort('Version', 'entity'), store));
    assert.deepEqual(reversed.map((r) => r.id), [5, 4, 1, 2, 3]);
  });
  test('deep paths through entity links', () => {
    // entity.Shot.sg_cut_in: 1001 (1, 2), 1010 (3), unset (4: an Asset, 5: nothing)
    assert.deepEqual(sorted('Version', 'entity.Shot.sg_cut_in'), [4, 5, 1, 2, 3]);
    refuses(() => sorted('Version', 'entity.Shot.code', { nameOf: (r) => store.nameOf(r) }), /^Deep path "entity.Shot.code" is not supported here/);
  });
  test('refuses unknown and unsortable fields', () => {
    refuses(() => parseSort('Version', 'code,foo'), /^Unknown field "foo" on Version$/);
    refuses(() => parseSort('Version', 'code,,id'), /empty field name/);
    refuses(() => parseSort('Version', '-'), /empty field name/);
    refuses(() => parseSort('Version', 'playlists'), /^Cannot sort by multi_entity field "playlists"$/);
    refuses(() => parseSort('Version', 'sg_uploaded_movie'), /^Cannot sort by url field/);
    refuses(() => parseSort('Version', 'playlists.Playlist.code'), /goes through a multi_entity field/);
    refuses(() => parseSort('Version', 5), /sort must be a comma-separated string or a list of field names/);
    refuses(() => parseSort('Version', ['code', 1]), /sort must be/);
  });
});
