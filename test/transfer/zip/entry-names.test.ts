import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EntryNamer, nameCollisionKey, safeEntrySegment, type EntryNameInput } from '../../../src/transfer/zip/entry-names.ts';

// What every entry name must be, checked independently of how the code gets there.
const windowsRefused = /[<>:"/\\|?*]/;
// eslint-disable-next-line no-control-regex
const controls = /[\u0000-\u001f\u007f-\u009f]/;
const bidiControls = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;
const deviceNames = /^(con|prn|aux|nul|conin\$|conout\$|com[0-9¹²³]|lpt[0-9¹²³])$/i;
const utf8Bytes = (text: string) => Buffer.byteLength(text, 'utf8');

function assertSafeSegment(segment: string, context: string): void {
  assert.notEqual(segment, '', `${context}: empty segment`);
  assert.ok(segment !== '.' && segment !== '..', `${context}: ${segment} is a traversal segment`);
  assert.ok(!windowsRefused.test(segment), `${context}: ${JSON.stringify(segment)} has a character Windows refuses`);
  assert.ok(!controls.test(segment), `${context}: ${JSON.stringify(segment)} has a control character`);
  assert.ok(!bidiControls.test(segment), `${context}: ${JSON.stringify(segment)} has a bidi control`);
  assert.ok(!/[. ]$/.test(segment), `${context}: ${JSON.stringify(segment)} ends in a dot or space`);
  assert.ok(!/^\s/u.test(segment), `${context}: ${JSON.stringify(segment)} starts with white space`);
  assert.ok(!deviceNames.test(segment.split('.')[0]!.trimEnd()), `${context}: ${JSON.stringify(segment)} is a device name`);
  assert.ok(segment.isWellFormed(), `${context}: lone surrogate`);
  assert.equal(segment, segment.normalize('NFC'), `${context}: not NFC`);
  assert.ok(utf8Bytes(segment) <= 200, `${context}: ${utf8Bytes(segment)} bytes`);
}

function assertSafeEntryName(name: string): void {
  const segments = name.split('/');
  assert.equal(segments.length, 3, `${JSON.stringify(name)} is not type/entity/file`);
  for (const segment of segments) assertSafeSegment(segment, name);
  assert.ok(utf8Bytes(name) <= 400, `${JSON.stringify(name)} is ${utf8Bytes(name)} bytes`);
}

const shot = (fileName: string, entityName = 'sh010', entityId: number = 1): EntryNameInput => ({ entityType: 'Shot', entityId: String(entityId), entityName, fileName });

function nameAll(inputs: readonly EntryNameInput[]): string[] {
  const namer = new EntryNamer();
  return inputs.map((input) => namer.name(input));
}

test('hostile file names become one harmless segment each', () => {
  const cases: [string, string][] = [
    ['../../etc/passwd', '.._.._etc_passwd'],
    ['/etc/passwd', '_etc_passwd'],
    ['C:\\x', 'C__x'],
    ['C:', 'C_'],
    ['\\\\server\\share\\x.mov', '__server_share_x.mov'],
    ['a<b>c:d"e|f?g*h.txt', 'a_b_c_d_e_f_g_h.txt'],
    ['nul\u0000byte.txt', 'nul_byte.txt'],
    ['tab\there\nnew\rline\u007fdel\u0085nel.txt', 'tab_here_new_line_del_nel.txt'],
    ['trailing dots. . .', 'trailing dots'],
    ['  leading spaces.mov', 'leading spaces.mov'],
    ['.hidden', '.hidden'],
  ];
  for (const [raw, expected] of cases) {
    const safe = safeEntrySegment(raw, 'file');
    assert.equal(safe, expected, JSON.stringify(raw));
    assertSafeSegment(safe, JSON.stringify(raw));
  }
});

test('nothing usable left gives the fallback, itself made safe', () => {
  for (const raw of ['', '.', '..', '...', ' . ', '\u202e', '   ']) assert.equal(safeEntrySegment(raw, '1234'), '1234', JSON.stringify(raw));
  assert.equal(safeEntrySegment('..', '../x'), '.._x');
  assert.equal(safeEntrySegment('', ''), '_');
});

test('Windows device names get a leading underscore, with or without an extension', () => {
  const cases: [string, string][] = [
    ['CON', '_CON'],
    ['CON.txt', '_CON.txt'],
    ['con.tar.gz', '_con.tar.gz'],
    ['CON .txt', '_CON .txt'],
    ['Nul', '_Nul'],
    ['PRN.mov', '_PRN.mov'],
    ['aux', '_aux'],
    ['COM1', '_COM1'],
    ['com9.log', '_com9.log'],
    ['LPT1.txt', '_LPT1.txt'],
    ['COM¹', '_COM¹'],
    ['CONOUT$', '_CONOUT$'],
  ];
  for (const [raw, expected] of cases) assert.equal(safeEntrySegment(raw, 'file'), expected, raw);
  for (const fine of ['CONSOLE.txt', 'icon.png', 'COM10', 'LPT', 'con_tract.pdf', 'NULL']) assert.equal(safeEntrySegment(fine, 'file'), fine);
});

test('Unicode stays, in NFC; lone surrogates become U+FFFD', () => {
  assert.equal(safeEntrySegment('Été 日本 🎬.mov', 'file'), 'Été 日本 🎬.mov');
  assert.equal(safeEntrySegment('Cafe\u0301.mov', 'file'), 'Caf\u00e9.mov');
  assert.equal(safeEntrySegment('שלום עולם.txt', 'file'), 'שלום עולם.txt');
  assert.equal(safeEntrySegment('a\ud800b.txt', 'file'), 'a\ufffdb.txt');
  assert.equal(safeEntrySegment('👨‍👩‍👧.png', 'file'), '👨‍👩‍👧.png');
});

test('bidi overrides that fake an extension are removed; right-to-left text itself is kept', () => {
  // Displayed as "invoiceexe.pdf" with the override: without it the real extension shows.
  assert.equal(safeEntrySegment('invoice\u202efdp.exe', 'file'), 'invoicefdp.exe');
  assert.equal(safeEntrySegment('\u2067x\u2069\u200f.mov', 'file'), 'x.mov');
  assert.equal(safeEntrySegment('e\u202e\u0301.txt', 'file'), '\u00e9.txt');
});

test('long names are cut to 200 UTF-8 bytes between characters, keeping the extension', () => {
  const ascii = safeEntrySegment(`${'a'.repeat(300)}.mov`, 'file');
  assert.equal(ascii, `${'a'.repeat(196)}.mov`);

  const cjk = safeEntrySegment(`${'日本'.repeat(150)}.mov`, 'file');
  assert.ok(cjk.endsWith('.mov') && utf8Bytes(cjk) <= 200 && utf8Bytes(cjk) > 190, cjk);
  assert.match(cjk, /^(日本)*日?\.mov$/u);

  const emoji = safeEntrySegment(`${'🎬'.repeat(100)}.mov`, 'file');
  assert.equal(emoji, `${'🎬'.repeat(49)}.mov`);
  assert.ok(emoji.isWellFormed());

  // A family emoji (5 code points, 18 bytes) is kept whole or dropped whole.
  const family = '👨‍👩‍👧';
  const families = safeEntrySegment(`${family.repeat(20)}.txt`, 'file');
  assert.equal(families, `${family.repeat(10)}.txt`);

  // No usable extension (too long, or spaces): cut at the end like any text.
  const longTail = safeEntrySegment(`x.${'y'.repeat(300)}`, 'file');
  assert.equal(utf8Bytes(longTail), 200);
  assert.ok(longTail.startsWith('x.y'));

  // A cut that lands after a space or dot does not leave it trailing.
  const spaced = safeEntrySegment(`${'a'.repeat(195)}   b.mov`, 'file');
  assert.equal(spaced, `${'a'.repeat(195)}.mov`);

  for (const name of [ascii, cjk, emoji, families, longTail, spaced]) assertSafeSegment(name, name);
});

test('entry names are <type>/<entity>/<file>, the id standing in for a missing entity name', () => {
  const names = nameAll([
    shot('plate.exr'),
    { entityType: 'Version', entityId: '42', entityName: '', fileName: 'movie.mov' },
    { entityType: 'Version', entityId: '43', entityName: '../..', fileName: '' },
    { entityType: '', entityId: '7', entityName: 'x', fileName: 'y' },
  ]);
  assert.deepEqual(names, ['Shot/sh010/plate.exr', 'Version/42/movie.mov', 'Version/.._/file', 'Entity/x/y']);
});

test("the issue's hostile names, and others, all pass as entry names", () => {
  const hostile = [
    '../../etc/passwd',
    'C:\\x',
    'CON.txt',
    `${'n'.repeat(300)}.mov`,
    `${'é'.repeat(300)}`,
    '🎬🎞️📽️.mov',
    'nul\u0000.txt',
    'rtl\u202egnp.exe',
    '/',
    '\\',
    '..',
    'x/../../y',
    ' ',
    '\u0001\u0002',
    'a:b',
  ];
  const entityNames = ['../../etc', 'C:\\', 'CON', 'x'.repeat(500), '', '\u0000'];
  const inputs = hostile.flatMap((fileName, index) => [
    { entityType: 'Shot', entityId: String(index), entityName: entityNames[index % entityNames.length]!, fileName },
    { entityType: '../Ver:sion', entityId: String(index), entityName: entityNames[(index + 1) % entityNames.length]!, fileName },
  ]);
  const names = nameAll(inputs);
  for (const name of names) assertSafeEntryName(name);
  assert.equal(new Set(names.map(nameCollisionKey)).size, names.length, 'names are unique case-insensitively');
});

test('the whole name stays within 400 bytes when every part is long, duplicates included', () => {
  const input: EntryNameInput = { entityType: 'T'.repeat(300), entityId: '1', entityName: 'E'.repeat(300), fileName: `${'F'.repeat(300)}.mov` };
  const [first, second] = nameAll([input, input]);
  for (const name of [first!, second!]) {
    assertSafeEntryName(name);
    assert.ok(name.endsWith('.mov'));
  }
  assert.equal(utf8Bytes(first!), 400);
  assert.ok(second!.endsWith(' (2).mov'));
  assert.equal(utf8Bytes(second!), 400);
});

test('duplicates get (2), (3) before the extension; case-only differences count as duplicates', () => {
  const names = nameAll([
    shot('plate.mov'),
    shot('plate.mov'),
    shot('PLATE.MOV'),
    shot('Plate.mov'),
    shot('notes'),
    shot('NOTES'),
    shot('plate.MOV', 'sh020', 2),
  ]);
  assert.deepEqual(names, [
    'Shot/sh010/plate.mov',
    'Shot/sh010/plate (2).mov',
    'Shot/sh010/PLATE (3).MOV',
    'Shot/sh010/Plate (4).mov',
    'Shot/sh010/notes',
    'Shot/sh010/NOTES (2)',
    'Shot/sh020/plate.MOV',
  ]);
});

test('a numbered name already taken is skipped over, and names that become equal once made safe are numbered', () => {
  assert.deepEqual(nameAll([shot('a (2).txt'), shot('a.txt'), shot('a.txt')]), [
    'Shot/sh010/a (2).txt',
    'Shot/sh010/a.txt',
    'Shot/sh010/a (3).txt',
  ]);
  assert.deepEqual(nameAll([shot('a:b.txt'), shot('a?b.txt'), shot('a_b.txt')]), [
    'Shot/sh010/a_b.txt',
    'Shot/sh010/a_b (2).txt',
    'Shot/sh010/a_b (3).txt',
  ]);
  // Unicode case pairs that a plain ASCII comparison would miss.
  assert.deepEqual(nameAll([shot('ÉTÉ.txt'), shot('été.txt')]), ['Shot/sh010/ÉTÉ.txt', 'Shot/sh010/été (2).txt']);
});

test('each entity has its own folder: entities with the same name are numbered, one entity keeps one folder', () => {
  const names = nameAll([
    shot('a.mov', 'sh010', 1),
    shot('a.mov', 'SH010', 2),
    shot('b.mov', 'sh010', 1),
    shot('a.mov', 'sh010', 3),
    shot('c.mov', 'SH010', 2),
    { entityType: 'Version', entityId: '1', entityName: 'sh010', fileName: 'a.mov' },
  ]);
  assert.deepEqual(names, [
    'Shot/sh010/a.mov',
    'Shot/SH010 (2)/a.mov',
    'Shot/sh010/b.mov',
    'Shot/sh010 (3)/a.mov',
    'Shot/SH010 (2)/c.mov',
    'Version/sh010/a.mov',
  ]);
});

test('the same list in the same order always gives the same names', () => {
  const inputs = Array.from({ length: 500 }, (_, index) =>
    shot(['plate.mov', 'PLATE.mov', 'CON.txt', '../x', `${'z'.repeat(250)}.exr`][index % 5]!, `sh${index % 7}`, index % 7),
  );
  const first = nameAll(inputs);
  const second = nameAll(inputs.map((input) => ({ ...input })));
  assert.deepEqual(second, first);
  assert.equal(new Set(first.map(nameCollisionKey)).size, first.length);
  for (const name of first) assertSafeEntryName(name);
});
