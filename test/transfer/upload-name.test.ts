import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanUploadName } from '../../src/transfer/upload-name.ts';

test('an upload name keeps the last path component, without control or bidi characters, and nothing else changed', () => {
  assert.equal(cleanUploadName('C:\\fakepath\\sh010.mov'), 'sh010.mov');
  assert.equal(cleanUploadName('../../etc/passwd'), 'passwd');
  // invoice\u202Efdp.exe displays as "invoiceexe.pdf": the override goes, as it does from zip entry names.
  assert.equal(cleanUploadName('inv\u202efdp.exe'), 'invfdp.exe');
  assert.equal(cleanUploadName('a\u2066b\u2069c\u200f.txt'), 'abc.txt');
  assert.equal(cleanUploadName('tab\there\u0007.txt'), 'tabhere.txt');
  assert.equal(cleanUploadName('café_ü 東京.txt'), 'café_ü 東京.txt');
  assert.equal(cleanUploadName('CON.txt'), 'CON.txt', 'Windows names are left to the zip: renaming here would break matching at the site');
  assert.throws(() => cleanUploadName('\u202e\u0000'), /not a usable file name/);
});
