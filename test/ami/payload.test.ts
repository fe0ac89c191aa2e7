import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AmiPayloadError, fieldsFromUrlEncoded, parseAmiPayload, type AmiFields } from '../../src/ami/payload.ts';

// The AMI form as ShotGrid posts it (ami.md), parsed into the typed payload; every refusal names its field.

type Fields = [string, string][];

// Autodesk's SIGGRAPH 2019 example POST, the fields ami.md lists, with plausible values where it names a field only.
const siggraph2019: Fields = [
  ['cols', 'code,image,entity,sg_status_list,user,description,created_at'],
  ['column_display_names', 'Version Name,Thumbnail,Link,Status,Artist,Description,Date Created'],
  ['entity_type', 'Version'],
  ['ids', '9155'],
  ['page_id', '2279'],
  ['project_id', '116'],
  ['project_name', 'SIGGRAPH 2019'],
  ['referrer_path', '/detail/HumanUser/24'],
  ['selected_ids', '9155'],
  ['server_hostname', 'siggraph2019.shotgunstudio.com'],
  ['session_uuid', '3ae7e3f0-b0a5-11e9-a2a3-2a2ae2dbcce4'],
  ['sort_column', 'created_at'],
  ['sort_direction', 'desc'],
  ['title', 'undefined'],
  ['user_id', '24'],
  ['user_login', 'demo.user'],
  ['view', 'Default'],
];

function withField(fields: Fields, name: string, value: string | null): Fields {
  const rest = fields.filter(([field]) => field !== name);
  return value === null ? rest : [...rest, [name, value]];
}

function assertRefused(fields: AmiFields, field: string, pattern?: RegExp): void {
  assert.throws(
    () => parseAmiPayload(fields),
    (error: unknown) => {
      assert.ok(error instanceof AmiPayloadError, `an AmiPayloadError, got ${String(error)}`);
      assert.equal(error.field, field);
      assert.ok(error.message.includes(field), `the message names ${field}: ${error.message}`);
      if (pattern) assert.match(error.message, pattern);
      return true;
    },
  );
}

describe('parseAmiPayload', () => {
  test("parses Autodesk's SIGGRAPH 2019 example exactly", () => {
    assert.deepEqual(parseAmiPayload(siggraph2019), {
      user: { id: 24, login: 'demo.user' },
      entityType: 'Version',
      selectedIds: [9155],
      title: null,
      pageId: 2279,
      serverHostname: 'siggraph2019.shotgunstudio.com',
      referrerPath: '/detail/HumanUser/24',
      sessionUuid: '3ae7e3f0-b0a5-11e9-a2a3-2a2ae2dbcce4',
      view: 'Default',
      cols: ['code', 'image', 'entity', 'sg_status_list', 'user', 'description', 'created_at'],
      columnDisplayNames: 'Version Name,Thumbnail,Link,Status,Artist,Description,Date Created',
      sort: [{ column: 'created_at', direction: 'desc' }],
      grouping: [],
      project: { id: 116, name: 'SIGGRAPH 2019' },
    });
  });

  test('parses the same example from its urlencoded body', () => {
    const body = new URLSearchParams(siggraph2019).toString();
    assert.deepEqual(parseAmiPayload(fieldsFromUrlEncoded(body)), parseAmiPayload(siggraph2019));
  });

  test('requires user_id, user_login and entity_type', () => {
    for (const field of ['user_id', 'user_login', 'entity_type']) {
      assertRefused(withField(siggraph2019, field, null), field, /missing/);
      assertRefused(withField(siggraph2019, field, ''), field, /missing/);
    }
    assertRefused(withField(siggraph2019, 'user_login', 'undefined'), 'user_login', /missing/);
  });

  test('user_id, page_id and project_id must be ids', () => {
    for (const field of ['user_id', 'page_id', 'project_id']) {
      for (const bad of ['abc', '0', '-3', '1.5', '1e3', '12abc', '9007199254740993']) {
        assertRefused(withField(siggraph2019, field, bad), field, /whole number/);
      }
    }
    assert.equal(parseAmiPayload(withField(siggraph2019, 'user_id', ' 42 ')).user.id, 42, 'spaces around an id are fine');
  });

  test('entity_type must be an entity type name', () => {
    for (const name of ['Version', 'Shot', 'CustomEntity01', 'CustomNonProjectEntity15', 'PublishedFile', 'Sg_Thing']) {
      assert.equal(parseAmiPayload(withField(siggraph2019, 'entity_type', name)).entityType, name);
    }
    for (const bad of ['version', '1Shot', 'Shot Sequence', 'Shot;drop', ' Version', 'Versión']) {
      assertRefused(withField(siggraph2019, 'entity_type', bad), 'entity_type', /entity type name/);
    }
  });

  test('selected ids are trimmed and deduplicated in order', () => {
    const payload = parseAmiPayload(withField(withField(siggraph2019, 'selected_ids', ' 1, 2 ,3,2,  1'), 'ids', null));
    assert.deepEqual(payload.selectedIds, [1, 2, 3]);
  });

  test('ids (every row of the page) is not read: any length, even past maxIds, and any form is accepted', () => {
    const rows = Array.from({ length: 200_000 }, (_, index) => index + 1).join(',');
    assert.deepEqual(parseAmiPayload(withField(withField(siggraph2019, 'selected_ids', '7,5'), 'ids', rows)).selectedIds, [7, 5]);
    assert.deepEqual(parseAmiPayload(withField(siggraph2019, 'ids', '1,,x'), { maxIds: 3 }).selectedIds, [9155]);
  });

  test('selected_ids may be empty (nothing selected) but must be a valid list', () => {
    for (const empty of ['', ' ', 'undefined']) {
      const payload = parseAmiPayload(withField(withField(siggraph2019, 'selected_ids', empty), 'ids', '1,2'));
      assert.deepEqual(payload.selectedIds, []);
    }
    assert.deepEqual(parseAmiPayload(withField(siggraph2019, 'selected_ids', null)).selectedIds, []);
    for (const bad of ['1,,2', '1,2,', 'a', '1;2', '1 2', '0', '-1', '3.0', '0x10', '１２']) {
      assertRefused(withField(siggraph2019, 'selected_ids', bad), 'selected_ids', /comma-separated list of ids/);
    }
  });

  test('the message quotes a bad id briefly, not the whole list', () => {
    const ids = `${Array.from({ length: 5000 }, (_, index) => index + 1).join(',')},${'x'.repeat(1000)}`;
    assert.throws(
      () => parseAmiPayload(withField(siggraph2019, 'selected_ids', ids)),
      (error: AmiPayloadError) => error.field === 'selected_ids' && error.message.length < 200,
    );
  });

  test('thousands of selected ids parse, up to maxIds', () => {
    const ids = Array.from({ length: 50_000 }, (_, index) => 100_000 + index);
    const payload = parseAmiPayload(withField(siggraph2019, 'selected_ids', ids.join(', ')));
    assert.deepEqual(payload.selectedIds, ids);
    assert.equal(parseAmiPayload(withField(siggraph2019, 'selected_ids', '1,2,3'), { maxIds: 3 }).selectedIds.length, 3);
    assert.throws(
      () => parseAmiPayload(withField(siggraph2019, 'selected_ids', '1,2,3,4'), { maxIds: 3 }),
      (error: AmiPayloadError) => error.field === 'selected_ids',
    );
  });

  test('every field at most once, whatever it is', () => {
    for (const field of ['user_id', 'selected_ids', 'signature', 'cols', 'some_new_field']) {
      assertRefused([...withField(siggraph2019, field, '1'), [field, '2']], field, /more than once/);
    }
  });

  test('"undefined" and empty optional fields are null', () => {
    const fields = ['title', 'page_id', 'server_hostname', 'referrer_path', 'session_uuid', 'view', 'column_display_names'];
    for (const empty of ['', 'undefined', null]) {
      let input = siggraph2019;
      for (const field of fields) input = withField(input, field, empty);
      const payload = parseAmiPayload(input);
      assert.deepEqual(
        [payload.title, payload.pageId, payload.serverHostname, payload.referrerPath, payload.sessionUuid, payload.view, payload.columnDisplayNames],
        [null, null, null, null, null, null, null],
      );
    }
    assert.equal(parseAmiPayload(withField(siggraph2019, 'title', 'All Versions')).title, 'All Versions');
  });

  test('project only when project_id is sent', () => {
    assert.equal(parseAmiPayload(withField(siggraph2019, 'project_id', null)).project, null);
    assert.equal(parseAmiPayload(withField(siggraph2019, 'project_id', 'undefined')).project, null);
    assert.deepEqual(parseAmiPayload(withField(siggraph2019, 'project_name', null)).project, { id: 116, name: null });
    assert.deepEqual(parseAmiPayload(withField(siggraph2019, 'project_name', 'Démo, “Ödön” 東京')).project, {
      id: 116,
      name: 'Démo, “Ödön” 東京',
    });
  });

  test('cols is split; column_display_names is kept whole (names hold commas)', () => {
    const payload = parseAmiPayload(
      withField(withField(siggraph2019, 'cols', 'code, description ,created_at'), 'column_display_names', 'Version Name,Description, notes,Date'),
    );
    assert.deepEqual(payload.cols, ['code', 'description', 'created_at']);
    assert.equal(payload.columnDisplayNames, 'Version Name,Description, notes,Date');
    assert.deepEqual(parseAmiPayload(withField(siggraph2019, 'cols', null)).cols, []);
  });

  test('sort from the singular fields, or the plural lists when several keys', () => {
    const none = parseAmiPayload(withField(withField(siggraph2019, 'sort_column', ''), 'sort_direction', 'desc'));
    assert.deepEqual(none.sort, [], 'a direction without a column says nothing');
    assert.deepEqual(parseAmiPayload(withField(siggraph2019, 'sort_direction', null)).sort, [{ column: 'created_at', direction: 'asc' }]);
    assert.deepEqual(parseAmiPayload(withField(siggraph2019, 'sort_direction', 'DESC')).sort, [{ column: 'created_at', direction: 'desc' }]);
    const several = withField(withField(siggraph2019, 'sort_columns', 'created_at, code'), 'sort_directions', 'desc,asc');
    assert.deepEqual(parseAmiPayload(several).sort, [
      { column: 'created_at', direction: 'desc' },
      { column: 'code', direction: 'asc' },
    ]);
    assertRefused(withField(siggraph2019, 'sort_direction', 'down'), 'sort_direction', /asc or desc/);
    assertRefused(withField(several, 'sort_directions', 'desc,up'), 'sort_directions', /asc or desc/);
    assertRefused(withField(several, 'sort_directions', 'desc,asc,asc'), 'sort_directions', /more directions/);
    assertRefused(withField(several, 'sort_columns', 'created_at,,code'), 'sort_columns', /empty entries/);
  });

  test('grouping with its methods and directions', () => {
    const sandboxStyle = [
      ...siggraph2019,
      ['grouping_column', ''],
      ['grouping_method', ''],
      ['grouping_direction', ''],
    ] satisfies Fields;
    assert.deepEqual(parseAmiPayload(sandboxStyle).grouping, []);
    const one = withField(withField(withField(siggraph2019, 'grouping_column', 'entity'), 'grouping_method', 'entitytype'), 'grouping_direction', 'asc');
    assert.deepEqual(parseAmiPayload(one).grouping, [{ column: 'entity', method: 'entitytype', direction: 'asc' }]);
    const several = [
      ...siggraph2019,
      ['grouping_column', 'entity'],
      ['grouping_columns', 'entity,created_at'],
      ['grouping_methods', 'entitytype,month'],
      ['grouping_directions', 'asc,desc'],
    ] satisfies Fields;
    assert.deepEqual(parseAmiPayload(several).grouping, [
      { column: 'entity', method: 'entitytype', direction: 'asc' },
      { column: 'created_at', method: 'month', direction: 'desc' },
    ]);
    assertRefused(withField(several, 'grouping_directions', 'sideways'), 'grouping_directions', /asc or desc/);
    assertRefused(withField(several, 'grouping_methods', 'a,b,c'), 'grouping_methods', /more methods/);
  });

  test('unknown fields are ignored', () => {
    const payload = parseAmiPayload([...siggraph2019, ['light_payload', 'false'], ['some_future_field', 'x'], ['timestamp', '2026-01-01T00:00:00Z']]);
    assert.deepEqual(payload, parseAmiPayload(siggraph2019));
  });
});

describe('fieldsFromUrlEncoded', () => {
  test("decodes as forms do ('+' is a space, %2B a plus, UTF-8 escapes), keeping order and duplicates", () => {
    const body = 'title=a+b%2Bc%2C+d&project_name=D%C3%A9mo+%E6%9D%B1%E4%BA%AC+%F0%9F%8E%AC&cols=code&cols=image&empty=&bare';
    assert.deepEqual(fieldsFromUrlEncoded(body), [
      ['title', 'a b+c, d'],
      ['project_name', 'Démo 東京 🎬'],
      ['cols', 'code'],
      ['cols', 'image'],
      ['empty', ''],
      ['bare', ''],
    ]);
  });

  test('an empty body has no fields', () => {
    assert.deepEqual(fieldsFromUrlEncoded(''), []);
  });
});
