import assert from 'node:assert/strict';
import { isAbsolute } from 'node:path';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { amiActions } from '../src/ami/actions.ts';
import { ConfigError, loadConfig, type Config } from '../src/config.ts';
import { sandboxDefaults } from '../src/sandbox/defaults.ts';

const site = {
  SHOTGRID_URL: 'https://studio.shotgrid.autodesk.com',
  SHOTGRID_SCRIPT_NAME: 'ami-transfer',
  SHOTGRID_SCRIPT_KEY: 'script-key-value',
};

const productionReady = {
  ...site,
  NODE_ENV: 'production',
  AMI_SECRET_TOKEN: 'shared-ami-token',
  SESSION_SECRET: 'a'.repeat(40),
};

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    assert.ok(error instanceof ConfigError, `expected a ConfigError, got ${String(error)}`);
    return error;
  }
  assert.fail(`expected ${JSON.stringify(env)} to be refused`);
}

function secretValues(config: Config): Record<string, string | null> {
  return Object.fromEntries(amiActions.map((action) => [action, config.ami.secrets[action]?.reveal() ?? null]));
}

describe('loadConfig defaults', () => {
  test('an empty environment is sandbox mode in development with documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.nodeEnv, 'development');
    assert.equal(config.production, false);
    assert.equal(config.port, 3000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.publicUrl, 'http://localhost:3000');
    assert.equal(config.publicUrlIsDefault, true);
    assert.equal(config.publicPath, '');
    assert.equal(config.basePath, '');
    assert.equal(config.trustProxy, 0);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.site, null);
    assert.equal(config.ami.acceptUnsigned, false);
    assert.equal(config.ami.timestampWindowSeconds, 60);
    assert.equal(config.redisUrl, null);
    assert.equal(config.frameAncestors, null);
    assert.equal(config.contextTtlSeconds, 3600);
    assert.equal(config.maxUploadBytes, null);
    assert.equal(config.thumbnailMaxBytes, 50 * 2 ** 20);
    assert.deepEqual(config.webLinkHosts, []);
    assert.equal(config.localStorageMounts.size, 0);
    assert.equal(config.shutdownGraceSeconds, 30);
    assert.deepEqual(config.sandbox, { port: 3001, storagePort: 3002, dataDir: null, faults: {} });
  });

  test('sandbox mode signs every action with the sandbox secret unless AMI_SECRET_TOKEN is set', () => {
    const sandbox = loadConfig({});
    for (const value of Object.values(secretValues(sandbox))) assert.equal(value, sandboxDefaults.amiSecret);
    assert.equal(sandbox.ami.sharedSecret?.reveal(), 'sandbox-secret');

    const own = loadConfig({ AMI_SECRET_TOKEN: 'mine' });
    for (const value of Object.values(secretValues(own))) assert.equal(value, 'mine');
  });

  test('without SESSION_SECRET outside production a random one is made per process, with a warning', () => {
    const first = loadConfig({});
    const second = loadConfig({});
    assert.equal(first.session.generated, true);
    assert.ok(first.session.secret.reveal().length >= 32);
    assert.notEqual(first.session.secret.reveal(), second.session.secret.reveal());
    assert.ok(first.warnings.some((warning) => warning.includes('SESSION_SECRET')));
  });

  test('PUBLIC_URL defaults to localhost on PORT, and its path is the base path', () => {
    assert.equal(loadConfig({ PORT: '8080' }).publicUrl, 'http://localhost:8080');
    const proxied = loadConfig({ PUBLIC_URL: 'https://tools.example.com/ami-transfer/' });
    assert.equal(proxied.publicUrl, 'https://tools.example.com/ami-transfer');
    assert.equal(proxied.publicUrlIsDefault, false);
    assert.equal(proxied.publicPath, '/ami-transfer');
    assert.equal(proxied.basePath, '/ami-transfer');
  });

  test('BASE_PATH=/ serves at the root behind a proxy that strips the prefix; links keep the public path', () => {
    const stripped = loadConfig({ PUBLIC_URL: 'https://tools.example.com/ami-transfer', BASE_PATH: '/' });
    assert.equal(stripped.basePath, '');
    assert.equal(stripped.publicPath, '/ami-transfer');
    const local = loadConfig({ BASE_PATH: '/tools/ami/' });
    assert.equal(local.basePath, '/tools/ami');
    assert.equal(local.publicUrl, 'http://localhost:3000/tools/ami');
  });

  test('an empty variable counts as unset', () => {
    assert.equal(loadConfig({ PORT: '', SHOTGRID_URL: '  ' }).port, 3000);
    assert.equal(loadConfig({ SHOTGRID_URL: '' }).site, null);
  });
});

describe('loadConfig values', () => {
  test('a configured site leaves sandbox mode; actions without a token have none', () => {
    const config = loadConfig(site);
    assert.equal(config.site?.url, 'https://studio.shotgrid.autodesk.com');
    assert.equal(config.site?.scriptName, 'ami-transfer');
    assert.equal(config.site?.scriptKey.reveal(), 'script-key-value');
    assert.equal(config.ami.sharedSecret, null);
    for (const value of Object.values(secretValues(config))) assert.equal(value, null);
  });

  test('a trailing slash on SHOTGRID_URL is accepted', () => {
    assert.equal(loadConfig({ ...site, SHOTGRID_URL: 'https://studio.shotgrid.autodesk.com/' }).site?.url, site.SHOTGRID_URL);
  });

  test('a per-action token overrides AMI_SECRET_TOKEN for that action only', () => {
    const config = loadConfig({ ...site, AMI_SECRET_TOKEN: 'shared', AMI_SECRET_TOKEN_DOWNLOAD_ZIP: 'zip-only' });
    const secrets = secretValues(config);
    assert.equal(secrets['download-zip'], 'zip-only');
    assert.equal(secrets['upload-files'], 'shared');
    assert.equal(secrets['submit-for-review'], 'shared');
  });

  test('lists, sizes, mounts, faults and paths are parsed', () => {
    const config = loadConfig({
      FRAME_ANCESTORS: "https://Studio.ShotGrid.Autodesk.com/, https://*.example.com, 'self'",
      WEB_LINK_HOSTS: 'vimeo.com, *.Example.com',
      LOCAL_STORAGE_MOUNTS: 'primary=/mnt/projects, renders=/mnt/renders',
      MAX_UPLOAD_BYTES: '50GiB',
      THUMBNAIL_MAX_BYTES: '8MiB',
      TRUST_PROXY: '2',
      AMI_ACCEPT_UNSIGNED: 'yes',
      AMI_TIMESTAMP_WINDOW_SECONDS: '30',
      CONTEXT_TTL_SECONDS: '600',
      SHUTDOWN_GRACE_SECONDS: '0',
      REDIS_URL: 'redis://:pw@redis.internal:6379/0',
      SANDBOX_PORT: '0',
      SANDBOX_DATA_DIR: '.sandbox-data',
      SANDBOX_FAULTS: '{"storagePutFailRate":0.25,"latencyMs":10}',
      LOG_LEVEL: 'debug',
    });
    assert.deepEqual(config.frameAncestors, ['https://studio.shotgrid.autodesk.com', 'https://*.example.com', "'self'"]);
    assert.deepEqual(config.webLinkHosts, ['vimeo.com', '*.example.com']);
    assert.deepEqual([...config.localStorageMounts], [
      ['primary', '/mnt/projects'],
      ['renders', '/mnt/renders'],
    ]);
    assert.equal(config.maxUploadBytes, 50 * 2 ** 30);
    assert.equal(config.thumbnailMaxBytes, 8 * 2 ** 20);
    assert.equal(config.trustProxy, 2);
    assert.equal(config.ami.acceptUnsigned, true);
    assert.ok(config.warnings.some((warning) => warning.includes('AMI_ACCEPT_UNSIGNED')));
    assert.equal(config.ami.timestampWindowSeconds, 30);
    assert.equal(config.contextTtlSeconds, 600);
    assert.equal(config.shutdownGraceSeconds, 0);
    assert.equal(config.redisUrl?.reveal(), 'redis://:pw@redis.internal:6379/0');
    assert.equal(config.sandbox.port, 0);
    assert.ok(config.sandbox.dataDir !== null && isAbsolute(config.sandbox.dataDir));
    assert.deepEqual(config.sandbox.faults, { storagePutFailRate: 0.25, latencyMs: 10 });
    assert.equal(config.logLevel, 'debug');
  });

  test('secrets never show when the config is printed or serialized', () => {
    const config = loadConfig({
      ...productionReady,
      AMI_SECRET_TOKEN_SET_THUMBNAIL: 'thumbnail-token',
      REDIS_URL: 'rediss://:redis-password@redis.internal:6380',
    });
    for (const text of [JSON.stringify(config), inspect(config, { depth: 10 }), String(config.site?.scriptKey)]) {
      for (const secret of ['script-key-value', 'shared-ami-token', 'thumbnail-token', 'a'.repeat(40), 'redis-password']) {
        assert.ok(!text.includes(secret), `${secret} leaked into ${text.slice(0, 80)}…`);
      }
    }
  });
});

describe('loadConfig refuses bad values, naming the variable', () => {
  const cases: [variable: string, env: Record<string, string>][] = [
    ['PORT', { PORT: 'http' }],
    ['PORT', { PORT: '65536' }],
    ['PUBLIC_URL', { PUBLIC_URL: 'ftp://files.example.com' }],
    ['PUBLIC_URL', { PUBLIC_URL: 'https://tools.example.com/?x=1' }],
    ['PUBLIC_URL', { PUBLIC_URL: 'tools.example.com' }],
    ['BASE_PATH', { BASE_PATH: 'ami-transfer' }],
    ['BASE_PATH', { BASE_PATH: '/a/../b' }],
    ['TRUST_PROXY', { TRUST_PROXY: 'true' }],
    ['NODE_ENV', { NODE_ENV: 'staging' }],
    ['LOG_LEVEL', { LOG_LEVEL: 'verbose' }],
    ['SHOTGRID_URL', { ...site, SHOTGRID_URL: 'studio.shotgrid.autodesk.com' }],
    ['SHOTGRID_URL', { ...site, SHOTGRID_URL: 'https://studio.shotgrid.autodesk.com/page/123' }],
    ['AMI_SECRET_TOKEN_UPLOAD', { AMI_SECRET_TOKEN_UPLOAD: 'typo' }],
    ['AMI_ACCEPT_UNSIGNED', { AMI_ACCEPT_UNSIGNED: 'maybe' }],
    ['AMI_TIMESTAMP_WINDOW_SECONDS', { AMI_TIMESTAMP_WINDOW_SECONDS: '0' }],
    ['SESSION_SECRET', { SESSION_SECRET: 'too-short' }],
    ['REDIS_URL', { REDIS_URL: 'http://redis.internal' }],
    ['FRAME_ANCESTORS', { FRAME_ANCESTORS: 'https://studio.shotgrid.autodesk.com/page' }],
    ['FRAME_ANCESTORS', { FRAME_ANCESTORS: "https://a.example.com; script-src 'unsafe-inline'" }],
    ['CONTEXT_TTL_SECONDS', { CONTEXT_TTL_SECONDS: '1h' }],
    ['MAX_UPLOAD_BYTES', { MAX_UPLOAD_BYTES: '5GB' }],
    ['MAX_UPLOAD_BYTES', { MAX_UPLOAD_BYTES: '0' }],
    ['WEB_LINK_HOSTS', { WEB_LINK_HOSTS: 'https://vimeo.com' }],
    ['LOCAL_STORAGE_MOUNTS', { LOCAL_STORAGE_MOUNTS: 'primary:/mnt/projects' }],
    ['LOCAL_STORAGE_MOUNTS', { LOCAL_STORAGE_MOUNTS: 'primary=mnt/projects' }],
    ['LOCAL_STORAGE_MOUNTS', { LOCAL_STORAGE_MOUNTS: 'primary=/a,primary=/b' }],
    ['SHUTDOWN_GRACE_SECONDS', { SHUTDOWN_GRACE_SECONDS: '1.5' }],
    ['SANDBOX_PORT', { SANDBOX_PORT: '-1' }],
    ['SANDBOX_STORAGE_PORT', { SANDBOX_STORAGE_PORT: '99999' }],
    ['SANDBOX_FAULTS', { SANDBOX_FAULTS: '{"storagePutFailRate": 2}' }],
    ['SANDBOX_FAULTS', { SANDBOX_FAULTS: 'not json' }],
  ];
  for (const [variable, env] of cases) {
    test(`${variable}=${JSON.stringify(Object.values(env).at(-1))}`, () => {
      const error = configError(env);
      assert.deepEqual(error.variables, [variable]);
      assert.match(error.message, new RegExp(`\\b${variable}\\b`));
    });
  }

  test('the message says what is expected', () => {
    assert.match(configError({ PORT: 'http' }).message, /PORT must be a port number from 0 to 65535 \(got "http"\)/);
  });

  test('secret values are not echoed in the message', () => {
    const message = configError({ SESSION_SECRET: 'my-short-secret', REDIS_URL: 'http://:pw-in-url@host' }).message;
    assert.ok(!message.includes('my-short-secret'));
    assert.ok(!message.includes('pw-in-url'));
  });

  test('every problem is reported at once', () => {
    const error = configError({ PORT: 'x', LOG_LEVEL: 'loud', SHUTDOWN_GRACE_SECONDS: '-3' });
    assert.deepEqual(error.variables, ['PORT', 'LOG_LEVEL', 'SHUTDOWN_GRACE_SECONDS']);
  });

  test('a half-configured site names the missing variables instead of falling back to the sandbox', () => {
    const error = configError({ SHOTGRID_URL: site.SHOTGRID_URL });
    assert.deepEqual(error.variables, ['SHOTGRID_SCRIPT_NAME', 'SHOTGRID_SCRIPT_KEY']);
  });
});

describe('loadConfig in production', () => {
  test('starts with a site, a secret token and a session secret', () => {
    const config = loadConfig(productionReady);
    assert.equal(config.production, true);
    assert.equal(config.session.generated, false);
    assert.equal(config.session.secret.reveal(), 'a'.repeat(40));
    assert.deepEqual(config.warnings, []);
  });

  test('refuses to start without an AMI secret token', () => {
    const { AMI_SECRET_TOKEN: _, ...withoutToken } = productionReady;
    const error = configError(withoutToken);
    assert.deepEqual(error.variables, ['AMI_SECRET_TOKEN']);
    assert.match(error.message, /AMI_ACCEPT_UNSIGNED/);
  });

  test('refuses when only some actions have their own token, naming the others', () => {
    const { AMI_SECRET_TOKEN: _, ...withoutToken } = productionReady;
    const error = configError({ ...withoutToken, AMI_SECRET_TOKEN_UPLOAD_FILES: 'u', AMI_SECRET_TOKEN_DOWNLOAD_ZIP: 'd' });
    assert.deepEqual(error.variables, ['AMI_SECRET_TOKEN']);
    assert.match(error.message, /attach-files, set-thumbnail, submit-for-review/);
    assert.doesNotMatch(error.message, /upload-files|download-zip/);
  });

  test('starts without a token when AMI_ACCEPT_UNSIGNED is set, with a warning', () => {
    const { AMI_SECRET_TOKEN: _, ...withoutToken } = productionReady;
    const config = loadConfig({ ...withoutToken, AMI_ACCEPT_UNSIGNED: 'true' });
    assert.equal(config.ami.acceptUnsigned, true);
    assert.equal(config.ami.secrets['upload-files'], null);
    assert.ok(config.warnings.some((warning) => warning.includes('AMI_ACCEPT_UNSIGNED')));
  });

  test('refuses to start without SESSION_SECRET', () => {
    const { SESSION_SECRET: _, ...withoutSession } = productionReady;
    const error = configError(withoutSession);
    assert.deepEqual(error.variables, ['SESSION_SECRET']);
    assert.match(error.message, /SESSION_SECRET is required when NODE_ENV=production/);
  });

  test('AMI_ACCEPT_UNSIGNED does not excuse a missing SESSION_SECRET', () => {
    const { SESSION_SECRET: _, AMI_SECRET_TOKEN: __, ...bare } = productionReady;
    assert.deepEqual(configError({ ...bare, AMI_ACCEPT_UNSIGNED: 'true' }).variables, ['SESSION_SECRET']);
  });

  test('refuses sandbox mode, whose credentials are public', () => {
    const { SHOTGRID_URL: _, SHOTGRID_SCRIPT_NAME: __, SHOTGRID_SCRIPT_KEY: ___, ...noSite } = productionReady;
    const error = configError(noSite);
    assert.deepEqual(error.variables, ['SHOTGRID_URL']);
  });
});
