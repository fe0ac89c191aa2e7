import assert from 'node:assert/strict';
import { test } from 'node:test';
import { matchFilesByName, matchKey, stem } from '../src/shared/match-files.ts';

const versions = [
  { type: 'Version', id: 1, name: 'sh010_comp_v003' },
  { type: 'Version', id: 2, name: 'sh020_comp_v001' },
  { type: 'Version', id: 3, name: 'hero_robot_lookdev_v001' },
];

test('files match Versions by stem, ignoring case and separators', () => {
  const result = matchFilesByName(['SH010_comp.v003.mov', 'sh020-comp-v001.MP4', 'notes.txt'], versions);
  assert.deepEqual(result.matches.map((m) => m.targets.map((t) => t.id)), [[1], [2], []]);
  assert.deepEqual(result.unmatchedTargets.map((t) => t.id), [3]);
});

test('a version in the name is not an extension; short extensions are', () => {
  assert.equal(stem('sh010_comp.v003'), 'sh010_comp');
  assert.equal(stem('sh010_comp_v003.mov'), 'sh010_comp_v003');
  assert.equal(stem('archive.tar.gz'), 'archive.tar');
  assert.equal(stem('.hidden'), '.hidden');
  assert.equal(matchKey(' Hero Robot__lookdev '), 'hero_robot_lookdev');
  // "sh010_comp.v003" has no extension of its own: matched as a whole it equals the Version's key.
  assert.deepEqual(matchFilesByName(['sh010_comp.v003.exr'], versions).matches[0]!.targets.map((t) => t.id), [1]);
});

test('two targets with the same name both receive the file', () => {
  const twins = [...versions, { type: 'Version', id: 4, name: 'SH010_COMP_V003' }];
  assert.deepEqual(matchFilesByName(['sh010_comp_v003.mov'], twins).matches[0]!.targets.map((t) => t.id), [1, 4]);
});
