import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { matchFilesByName, matchFilesByPrefix, matchKey, stem } from '../src/shared/match-files.ts';

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

describe('matching new Versions’ movies to Shots, Assets and Tasks', () => {
  const shots = [
    { type: 'Shot', id: 1, name: 'sh010' },
    { type: 'Shot', id: 2, name: 'sh0100' },
    { type: 'Asset', id: 3, name: 'hero_robot' },
  ];

  test('the entity whose name begins the file’s, up to a separator; the longest wins', () => {
    const result = matchFilesByPrefix(['sh010_comp_v004.mov', 'SH0100-anim.v001.mp4', 'hero robot lookdev v002.mov', 'sh01_x.mov', 'sh010.mov'], shots);
    assert.deepEqual(result.matches.map((m) => m.targets.map((t) => t.id)), [[1], [2], [3], [], [1]]);
    assert.deepEqual(result.unmatchedTargets, []);
  });

  test('a name that merely starts the same letters does not match', () => {
    assert.deepEqual(matchFilesByPrefix(['sh0105_comp.mov'], shots).matches[0]!.targets, []);
  });

  test('Tasks answer to "<entity>_<task>" and to their entity; a file two fit equally is left for the person', () => {
    const tasks = [
      { type: 'Task', id: 10, name: 'comp', parent: 'sh010' },
      { type: 'Task', id: 11, name: 'anim', parent: 'sh010' },
    ];
    const namesOf = (task: (typeof tasks)[number]) => [`${task.parent}_${task.name}`, task.parent];
    const result = matchFilesByPrefix(['sh010_comp_v004.mov', 'SH010.anim.v002.mov', 'sh010_v003.mov'], tasks, namesOf);
    assert.deepEqual(result.matches.map((m) => m.targets.map((t) => t.id)), [[10], [11], []]);
  });
});
