import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { csvCell, manifestCsv, type ManifestRow } from '../../../src/transfer/zip/manifest.ts';

// The manifest is read back by Python's csv module, an independent RFC 4180 reader, the way a script would.

const pythonCsvReader = `
import csv, json, sys
with open(sys.argv[1], encoding="utf-8-sig", newline="") as manifest:
    sys.stdout.write(json.dumps(list(csv.reader(manifest)), ensure_ascii=True))
`;

async function readWithPythonCsv(bytes: Buffer): Promise<string[][]> {
  const folder = await mkdtemp(join(tmpdir(), 'ami-transfer-manifest-'));
  try {
    const path = join(folder, 'manifest.csv');
    await writeFile(path, bytes);
    const output = await new Promise<string>((resolve, reject) => {
      execFile('python3', ['-c', pythonCsvReader, path], { encoding: 'utf8' }, (error, stdout, stderr) => {
        if (error) reject(new Error(`python csv failed: ${stderr || error.message}`));
        else resolve(stdout);
      });
    });
    return JSON.parse(output) as string[][];
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

const header = ['entity_type', 'entity_id', 'entity_name', 'source', 'field', 'link_type', 'link', 'file_name', 'size_bytes', 'zip_entry', 'status', 'reason'];

function row(overrides: Partial<ManifestRow> = {}): ManifestRow {
  return {
    entityType: 'Version',
    entityId: '1201',
    entityName: 'sh010_comp_v003',
    source: 'field',
    field: 'sg_uploaded_movie',
    linkType: 'upload',
    link: null,
    fileName: 'sh010_comp_v003.mov',
    size: 52_428_800,
    entryName: 'Version/sh010_comp_v003/sh010_comp_v003.mov',
    status: 'included',
    reason: null,
    ...overrides,
  };
}

test('starts with a UTF-8 byte order mark and ends every record with CRLF', () => {
  const bytes = manifestCsv([row(), row({ status: 'skipped', entryName: null, reason: 'size unknown', size: null })]);
  assert.deepEqual([...bytes.subarray(0, 3)], [0xef, 0xbb, 0xbf]);
  const text = bytes.toString('utf8').slice(1);
  assert.ok(text.endsWith('\r\n'));
  const records = text.split('\r\n');
  assert.equal(records.length, 4);
  assert.equal(records[3], '');
  for (const record of records) assert.ok(!record.includes('\n') && !record.includes('\r'));
  assert.equal(records[0], header.join(','));
  assert.equal(records[1], 'Version,1201,sh010_comp_v003,field,sg_uploaded_movie,upload,,sh010_comp_v003.mov,52428800,Version/sh010_comp_v003/sh010_comp_v003.mov,included,');
  assert.equal(records[2], 'Version,1201,sh010_comp_v003,field,sg_uploaded_movie,upload,,sh010_comp_v003.mov,,,skipped,size unknown');
});

test('an empty listing is the header alone', async () => {
  assert.deepEqual(await readWithPythonCsv(manifestCsv([])), [header]);
});

test("Python's csv module reads back commas, quotes, line breaks and Unicode as written", async () => {
  const awkward = [
    'comma, inside.mov',
    'say "cheese".jpg',
    'two\nlines.txt',
    'carriage\r\nreturn.txt',
    'Été 日本 🎬.mov',
    '"',
    ',',
    '',
    ' padded ',
    'שלום.txt',
  ];
  const rows = awkward.map((fileName, index) => row({ entityId: String(index), entityName: `ent, "${index}"`, fileName, link: 'https://media.example.com/a?b=1,2' }));
  const parsed = await readWithPythonCsv(manifestCsv(rows));
  assert.deepEqual(parsed[0], header);
  assert.equal(parsed.length, rows.length + 1);
  for (const [index, fileName] of awkward.entries()) {
    const record = parsed[index + 1]!;
    assert.equal(record.length, header.length);
    assert.equal(record[7], fileName);
    assert.equal(record[2], `ent, "${index}"`);
    assert.equal(record[1], String(index));
    assert.equal(record[6], 'https://media.example.com/a?b=1,2');
  }
});

test('cells a spreadsheet would run as formulas get a leading apostrophe; others are untouched', async () => {
  const formulas = ['=HYPERLINK("https://evil.example","click")', '+1+1', '-2+3', '@SUM(A1:A2)', '\t=1', '\rx', ' =1', '\n+1'];
  const harmless = ['plate.mov', 'a=b.txt', 'x-y', '1.5', "'quoted", 'e@mail'];
  const parsed = await readWithPythonCsv(
    manifestCsv([...formulas, ...harmless].map((name) => row({ fileName: name, entityName: name, reason: name, status: 'skipped', entryName: null }))),
  );
  for (const [index, name] of [...formulas, ...harmless].entries()) {
    const expected = index < formulas.length ? `'${name}` : name;
    const record = parsed[index + 1]!;
    assert.equal(record[7], expected, JSON.stringify(name));
    assert.equal(record[2], expected, JSON.stringify(name));
    assert.equal(record[11], expected, JSON.stringify(name));
  }
});

test('NUL becomes U+FFFD; numbers and empty cells are written plainly', () => {
  assert.equal(csvCell('a\0b'), 'a\ufffdb');
  assert.equal(csvCell(0), '0');
  assert.equal(csvCell(5_000_000_000), '5000000000');
  assert.equal(csvCell(null), '');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell('=1,2'), `"'=1,2"`);
});
