import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';

// The ftrack site kind in the configuration: FTRACK_SERVER_URL, FTRACK_API_USER, FTRACK_API_KEY (a secret), one
// site at most, and SANDBOX_SITE choosing the sandbox when none is configured.

const ftrack = { FTRACK_SERVER_URL: 'https://studio.ftrackapp.com', FTRACK_API_USER: 'ami-transfer', FTRACK_API_KEY: 'ftrack-key-value' };
const shotgrid = { SHOTGRID_URL: 'https://studio.shotgrid.autodesk.com', SHOTGRID_SCRIPT_NAME: 'ami-transfer', SHOTGRID_SCRIPT_KEY: 'script-key' };

function problems(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  assert.fail('the configuration was accepted');
}

test('an ftrack server is read, its key kept secret; no ShotGrid site and no sandbox then', () => {
  const config = loadConfig({ ...ftrack, NODE_ENV: 'production', SESSION_SECRET: 'x'.repeat(32) });
  assert.equal(config.ftrack?.url, 'https://studio.ftrackapp.com');
  assert.equal(config.ftrack?.apiUser, 'ami-transfer');
  assert.equal(config.ftrack?.apiKey.reveal(), 'ftrack-key-value');
  assert.equal(config.site, null);
  // ftrack launches come over its hub: production needs no AMI token.
  for (const text of [JSON.stringify(config), inspect(config, { depth: 10 })]) assert.ok(!text.includes('ftrack-key-value'));
});

test('both sites, or part of ftrack, or a bad value: clear start-up errors naming the variables', () => {
  assert.match(problems({ ...ftrack, ...shotgrid }).message, /Both a ShotGrid site .* and an ftrack server/);
  const partial = problems({ FTRACK_SERVER_URL: ftrack.FTRACK_SERVER_URL });
  assert.deepEqual(partial.variables, ['FTRACK_API_USER', 'FTRACK_API_KEY']);
  assert.match(partial.message, /FTRACK_API_KEY is required when FTRACK_SERVER_URL is set/);
  const badUrl = problems({ ...ftrack, FTRACK_SERVER_URL: 'https://studio.ftrackapp.com/some/path' });
  assert.deepEqual(badUrl.variables, ['FTRACK_SERVER_URL']);
  const badKey = problems({ ...ftrack, FTRACK_API_KEY: 'k'.repeat(2000) });
  assert.deepEqual(badKey.variables, ['FTRACK_API_KEY']);
  assert.ok(!badKey.message.includes('kkkk'), 'a secret is never echoed');
  assert.deepEqual(problems({ SANDBOX_SITE: 'kitsu' }).variables, ['SANDBOX_SITE']);
});

test('sandbox mode starts ShotGrid by default, ftrack with SANDBOX_SITE=ftrack; SANDBOX_SITE with a site is a warning', () => {
  assert.equal(loadConfig({}).sandboxSite, 'shotgrid');
  const sandbox = loadConfig({ SANDBOX_SITE: 'ftrack' });
  assert.equal(sandbox.sandboxSite, 'ftrack');
  assert.equal(sandbox.ftrack, null);
  assert.ok(loadConfig({ ...ftrack, SANDBOX_SITE: 'ftrack' }).warnings.some((warning) => /SANDBOX_SITE is set but not used/.test(warning)));
  assert.match(problems({ NODE_ENV: 'production' }).message, /FTRACK_SERVER_URL/);
});
