import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { amiTimestamp, computeAmiSignature } from '../../src/ami/signature.ts';

// The reference is an independent implementation: Python's hmac, written from ami.md, fed the same fields.
const PYTHON_SIGNER = `
import hashlib, hmac, json, sys
from urllib.parse import parse_qsl
out = []
for case in json.load(sys.stdin):
    fields = case["fields"] if "fields" in case else parse_qsl(case["body"], keep_blank_values=True)
    lines = sorted(f"{name}={value}\\r\\n" for name, value in fields if name != "signature")
    out.append(hmac.new(case["secret"].encode("utf-8"), "".join(lines).encode("utf-8"), hashlib.sha1).hexdigest())
print(json.dumps(out))
`;

type Fields = [string, string][];
type Case = { secret: string; fields: Fields } | { secret: string; body: string };

function pythonSignatures(cases: Case[]): string[] {
  const output = execFileSync('python3', ['-c', PYTHON_SIGNER], { input: JSON.stringify(cases), encoding: 'utf8' });
  return JSON.parse(output) as string[];
}

const realistic: Fields = [
  ['user_id', '24'],
  ['user_login', 'artist'],
  ['entity_type', 'Version'],
  ['selected_ids', '9155,9156'],
  ['ids', '9155, 9156 ,9157'],
  ['title', 'undefined'],
  ['page_id', '2279'],
  ['server_hostname', 'studio.shotgrid.autodesk.com'],
  ['referrer_path', '/page/2279'],
  ['session_uuid', '4f1c8a2e-6a7b-11ef-9a43-0242ac120002'],
  ['view', 'Default'],
  ['cols', 'code,image,entity,sg_status_list,user,description,created_at'],
  ['column_display_names', 'Version Name,Thumbnail,Link,Status,Artist,Description, notes,Date Created'],
  ['sort_column', 'created_at'],
  ['sort_direction', 'desc'],
  ['grouping_column', ''],
  ['grouping_method', ''],
  ['grouping_direction', ''],
  ['project_id', '116'],
  ['project_name', 'Démo – Ödön 東京'],
  ['timestamp', '2026-11-20T10:11:12Z'],
];

const vectors: { name: string; secret: string; fields: Fields }[] = [
  { name: 'a realistic payload', secret: 'sandbox-secret', fields: realistic },
  { name: 'a non-ASCII secret', secret: 'sécret-トークン-🔑', fields: realistic },
  { name: 'plus signs, percent escapes and commas kept literal', secret: 's', fields: [['title', 'a+b %2C c,d'], ['ids', '1,2,3'], ['x', '%']] },
  { name: 'empty values and an empty secret', secret: '', fields: [['title', ''], ['view', ''], ['a', '']] },
  // "a=\uFF01" sorts after "a=😀" by UTF-16 code units but before it by code point, as Python sorts.
  { name: 'characters beyond U+FFFF sorted by code point', secret: 'k', fields: [['a', '\uFF01'], ['a', '😀'], ['b', '\uE000'], ['b', '𝄞']] },
  { name: 'names that prefix each other', secret: 'k', fields: [['ids', '1'], ['id', '2'], ['ids_x', '3'], ['i', '=']] },
  { name: 'line breaks inside values', secret: 'k', fields: [['note', 'one\r\ntwo'], ['note2', 'three\nfour']] },
];

describe('computeAmiSignature', () => {
  test('matches an independent Python implementation', () => {
    const expected = pythonSignatures(vectors.map(({ secret, fields }) => ({ secret, fields })));
    for (const [index, vector] of vectors.entries()) {
      assert.equal(computeAmiSignature(vector.fields, vector.secret), expected[index], vector.name);
    }
  });

  test('matches Python on values decoded from a form-encoded body', () => {
    const fields: Fields = [...realistic, ['title', 'a+b=c&d %2C,é'], ['empty', '']];
    const body = new URLSearchParams(fields).toString();
    const [expected] = pythonSignatures([{ secret: 'sandbox-secret', body }]);
    assert.equal(computeAmiSignature(new URLSearchParams(body), 'sandbox-secret'), expected);
    assert.equal(computeAmiSignature(fields, 'sandbox-secret'), expected);
  });

  test('leaves out the signature field and ignores field order', () => {
    const plain = computeAmiSignature(realistic, 'k');
    assert.equal(computeAmiSignature([...realistic, ['signature', 'abc']], 'k'), plain);
    assert.equal(computeAmiSignature([...realistic].reverse(), 'k'), plain);
    assert.match(plain, /^[0-9a-f]{40}$/);
  });

  test('changes with any value, name or the secret', () => {
    const plain = computeAmiSignature(realistic, 'k');
    assert.notEqual(computeAmiSignature(realistic, 'K'), plain);
    assert.notEqual(computeAmiSignature(realistic.map(([n, v]) => [n, n === 'selected_ids' ? '9155' : v]), 'k'), plain);
    assert.notEqual(computeAmiSignature(realistic.map(([n, v]) => [n === 'view' ? 'View' : n, v]), 'k'), plain);
  });
});

describe('amiTimestamp', () => {
  test('is UTC to the second without milliseconds', () => {
    assert.equal(amiTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), '2026-01-02T03:04:05Z');
    assert.equal(amiTimestamp(new Date('2026-11-20T23:59:59.999-05:00')), '2026-11-21T04:59:59Z');
  });
});
