import { randomBytes } from 'node:crypto';
import { isAbsolute, resolve } from 'node:path';
import { isIP } from 'node:net';
import { inspect } from 'node:util';
import type { LevelWithSilent } from 'pino';
import { z } from 'zod';
import { amiActionEnvSuffix, amiActions, type AmiAction } from './ami/actions.ts';
import { readOutboundProxy, type OutboundProxy } from './net/outbound.ts';
import { sandboxDefaults } from './sandbox/defaults.ts';
import { faultsFromEnv, type FaultSettingsInput } from './sandbox/faults.ts';

// The environment, read once at start into a typed config. Every problem names its variable and what it expects,
// and all problems are reported together so an operator fixes them in one go. Secret values are held in `Secret`
// boxes that print as "[secret]", so logging the config (or an error holding it) never leaks them.

export class ConfigError extends Error {
  /** The variables that were wrong or missing, in the order found. */
  readonly variables: readonly string[];

  constructor(problems: readonly { variable: string; message: string }[]) {
    const lines = problems.map((problem) => `- ${problem.message}`);
    super(`Invalid configuration (environment variables):\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.variables = problems.map((problem) => problem.variable);
  }
}

/** A secret from the environment: `reveal()` gives the value; every other way of printing it gives "[secret]". */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toString(): string {
    return '[secret]';
  }

  toJSON(): string {
    return '[secret]';
  }

  [inspect.custom](): string {
    return 'Secret([secret])';
  }
}

export const nodeEnvs = ['development', 'production', 'test'] as const;
export type NodeEnv = (typeof nodeEnvs)[number];
const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const satisfies readonly LevelWithSilent[];

export interface ShotgridSiteConfig {
  /** The site's origin, e.g. https://studio.shotgrid.autodesk.com (no trailing slash). */
  url: string;
  scriptName: string;
  scriptKey: Secret;
}

export interface FtrackSiteConfig {
  /** The server's origin, e.g. https://studio.ftrackapp.com (no trailing slash). */
  url: string;
  /** The user the service's API key acts as (an administrator), and the key (System settings → API keys). */
  apiUser: string;
  apiKey: Secret;
}

export const sandboxSites = ['shotgrid', 'ftrack'] as const;
export type SandboxSite = (typeof sandboxSites)[number];

export interface Config {
  nodeEnv: NodeEnv;
  production: boolean;
  port: number;
  host: string;
  /** Where browsers and ShotGrid reach the service through the proxy, without a trailing slash. */
  publicUrl: string;
  /** True when PUBLIC_URL was not set: the server then fills in the port it actually listens on. */
  publicUrlIsDefault: boolean;
  /** The path part of publicUrl ('' at the root): the prefix for links in pages and redirects. */
  publicPath: string;
  /** The prefix requests arrive with at the service ('' at the root): where the routes are mounted. */
  basePath: string;
  /** Number of reverse-proxy hops whose X-Forwarded-* headers are believed. */
  trustProxy: number;
  logLevel: LevelWithSilent;
  /** The ShotGrid site, or null (ftrack, or sandbox mode: the server then starts a sandbox site in-process). */
  site: ShotgridSiteConfig | null;
  /** The ftrack server, or null. At most one of `site` and `ftrack` is set; neither is sandbox mode. */
  ftrack: FtrackSiteConfig | null;
  ami: {
    /** AMI_SECRET_TOKEN, the token for every action without its own (in sandbox mode: the sandbox's default). */
    sharedSecret: Secret | null;
    /** The secret token each action's requests are signed with; null when that action has none. */
    secrets: Readonly<Record<AmiAction, Secret | null>>;
    acceptUnsigned: boolean;
    timestampWindowSeconds: number;
  };
  session: { secret: Secret; generated: boolean };
  redisUrl: Secret | null;
  /** CSP frame-ancestors sources; null means the site's own origin. */
  frameAncestors: readonly string[] | null;
  /** Origins a launch POST may come from (its Origin header); null means the frame ancestors. */
  amiAllowedOrigins: readonly string[] | null;
  contextTtlSeconds: number;
  /** How long each user's record of an action (uploads, Versions, zips) is kept after its last change (RECORD_DAYS). */
  recordDays: number;
  /** Largest file the service accepts, or null for no limit of its own. */
  maxUploadBytes: number | null;
  /** Largest image "Set thumbnail" accepts (a thumbnail is small: a big file is a mistake). */
  thumbnailMaxBytes: number;
  /** The Version field that upload-files writes. */
  uploadVersionField: string;
  /** Parts of one file in flight at once (the no-JavaScript form's held window; the page's default). */
  uploadParallelParts: number;
  /** How long a request may wait on its client (a body that stopped coming, an answer not taken) before it is cut. */
  clientIdleSeconds: number;
  /** How often one instance looks for what expired launches and closed pages left (uploads, empty Versions). */
  sweepIntervalSeconds: number;
  /** A submit-for-review page silent this long has gone: its new Versions still waiting for a movie are removed. */
  reviewSilenceSeconds: number;
  /** MiB the process may hold at once of bodies it buffers (the plain form's parts, launch forms). */
  heldBytesMiB: number;
  /** Connections open at once, past which new ones are refused. */
  maxConnections: number;
  /** Requests in flight at once from one client address (as TRUST_PROXY reads it). */
  maxRequestsPerClient: number;
  /** Requests under launches one user may send per minute (all instances together with Redis). */
  rateLimitPerMinute: number;
  /** Requests in flight to the site's API at once from this instance (the API is the whole studio's). */
  siteMaxConcurrentRequests: number;
  /** How long a zip waits for a file under the site's malware scan before listing it in the manifest only. */
  zipScanWaitSeconds: number;
  /** Hosts web links may be fetched from (`*.example.com` allows subdomains). */
  webLinkHosts: readonly string[];
  /** Private or loopback ranges (CIDR) web links may reach after all: an intranet host on WEB_LINK_HOSTS. */
  webLinkPrivateRanges: readonly string[];
  /** LocalStorage code → the path where that storage is mounted on this machine. */
  localStorageMounts: ReadonlyMap<string, string>;
  shutdownGraceSeconds: number;
  /** The outbound proxy (HTTPS_PROXY, HTTP_PROXY, NO_PROXY), or null: requests go out direct. */
  outboundProxy: OutboundProxy | null;
  /** Web links through the proxy too (WEB_LINKS_VIA_PROXY): their host allow-list is then their guard. */
  webLinksViaProxy: boolean;
  /** Where Prometheus metrics are served (METRICS_PORT, METRICS_HOST); null: nowhere. */
  metrics: { port: number; host: string } | null;
  /** How long /readyz answers from its last check of the site and the store. */
  readyzCacheSeconds: number;
  /** Which sandbox site sandbox mode starts (SANDBOX_SITE). */
  sandboxSite: SandboxSite;
  sandbox: {
    port: number;
    storagePort: number;
    /** Where the sandbox keeps its objects; null for a fresh temporary folder. */
    dataDir: string | null;
    faults: FaultSettingsInput;
  };
  /** Things the operator should know, logged at start. */
  warnings: readonly string[];
}

type Env = Readonly<Record<string, string | undefined>>;

// ---- value schemas: each parses the raw string of one variable ----

function integerIn(min: number, max: number) {
  return z
    .string()
    .regex(/^\d+$/)
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));
}

const portSchema = integerIn(0, 65_535);

const booleanSchema = z
  .string()
  .transform((raw) => raw.toLowerCase())
  .pipe(z.enum(['true', 'false', '1', '0', 'yes', 'no']))
  .transform((word) => word === 'true' || word === '1' || word === 'yes');

function httpUrlSchema() {
  return z.string().transform((raw, ctx) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      ctx.addIssue({ code: 'custom', message: 'not a URL' });
      return z.NEVER;
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username || url.password || url.search || url.hash) {
      ctx.addIssue({ code: 'custom', message: 'not a plain http(s) URL' });
      return z.NEVER;
    }
    return url;
  });
}

const publicUrlSchema = httpUrlSchema().transform((url) => url.origin + url.pathname.replace(/\/+$/, ''));

const siteUrlSchema = httpUrlSchema()
  .refine((url) => url.pathname === '/')
  .transform((url) => url.origin);

const basePathSchema = z
  .string()
  .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/)
  .refine((path) => !path.includes('//') && !path.split('/').includes('..'))
  .transform((path) => path.replace(/\/+$/, ''));

const sizeUnits: Readonly<Record<string, number>> = { '': 1, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40 };
const byteSizeSchema = z.string().transform((raw, ctx) => {
  const match = /^(\d+)\s*([KMGT]iB)?$/i.exec(raw);
  const unit = sizeUnits[(match?.[2] ?? '').toLowerCase()];
  const bytes = match?.[1] !== undefined && unit !== undefined ? Number(match[1]) * unit : Number.NaN;
  if (!Number.isSafeInteger(bytes) || bytes < 1) {
    ctx.addIssue({ code: 'custom', message: 'not a size' });
    return z.NEVER;
  }
  return bytes;
});

function commaList<T>(item: z.ZodType<T, string>) {
  return z
    .string()
    .transform((raw) => raw.split(',').map((part) => part.trim()).filter((part) => part !== ''))
    .pipe(z.array(item));
}

const frameAncestorSchema = z
  .string()
  .transform((raw) => raw.toLowerCase().replace(/\/+$/, ''))
  .pipe(z.string().regex(/^(?:'self'|https?:\/\/(?:\*\.)?[a-z0-9.-]+(?::\d{1,5})?)$/));

const cidrSchema = z.string().refine((value) => {
  const [address, prefix, extra] = value.split('/');
  const family = isIP(address ?? '');
  const bits = Number(prefix);
  return extra === undefined && family !== 0 && Number.isInteger(bits) && bits >= 0 && bits <= (family === 4 ? 32 : 128);
}, 'not a CIDR range');

const hostnameSchema = z
  .string()
  .transform((raw) => raw.toLowerCase())
  .pipe(z.string().regex(/^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/));

const localStorageMountSchema = z
  .string()
  .regex(/^[A-Za-z0-9_.-]+=.+$/)
  .transform((raw) => {
    const at = raw.indexOf('=');
    return [raw.slice(0, at), raw.slice(at + 1)] as const;
  })
  .refine(([, path]) => isAbsolute(path));

const nonEmpty = z.string().min(1);

const redisUrlSchema = z.string().refine((raw) => {
  try {
    const url = new URL(raw);
    return url.protocol === 'redis:' || url.protocol === 'rediss:';
  } catch {
    return false;
  }
});

// ---- reading ----

interface Problem {
  variable: string;
  message: string;
}

/** Reads variables one at a time, collecting problems instead of stopping at the first. */
class EnvReader {
  readonly problems: Problem[] = [];
  readonly #env: Env;

  constructor(env: Env) {
    this.#env = env;
  }

  /** The raw value, with an empty string counted as unset (a `NAME=` line in an env file). */
  raw(name: string): string | undefined {
    const value = this.#env[name]?.trim();
    return value === '' ? undefined : value;
  }

  /** Parses the variable when set; on failure records "NAME must be <expected>" (with the value unless secret). */
  read<T>(name: string, schema: z.ZodType<T, string>, expected: string, options: { secret?: boolean } = {}): T | undefined {
    const raw = this.raw(name);
    if (raw === undefined) return undefined;
    const result = schema.safeParse(raw);
    if (result.success) return result.data;
    const shown = options.secret ? '' : ` (got ${JSON.stringify(raw.length > 200 ? `${raw.slice(0, 200)}…` : raw)})`;
    this.problem(name, `${name} must be ${expected}${shown}.`);
    return undefined;
  }

  problem(variable: string, message: string): void {
    this.problems.push({ variable, message });
  }

  /** Variable names that start with the prefix. */
  namesStartingWith(prefix: string): string[] {
    return Object.keys(this.#env).filter((name) => name.startsWith(prefix));
  }
}

/** Reads and validates the configuration; throws a ConfigError naming every bad or missing variable. */
export function loadConfig(env: Env = process.env): Config {
  const reader = new EnvReader(env);
  const warnings: string[] = [];

  const nodeEnv = reader.read('NODE_ENV', z.enum(nodeEnvs), `one of ${nodeEnvs.join(', ')}`) ?? 'development';
  const production = nodeEnv === 'production';

  const port = reader.read('PORT', portSchema, 'a port number from 0 to 65535') ?? 3000;
  const host = reader.read('HOST', nonEmpty, 'a host name or IP address to listen on') ?? '0.0.0.0';
  const explicitPublicUrl = reader.read(
    'PUBLIC_URL',
    publicUrlSchema,
    'the http(s) URL browsers and ShotGrid reach the service at, without query or credentials, e.g. https://tools.example.com/ami-transfer',
  );
  const explicitBasePath = reader.read(
    'BASE_PATH',
    basePathSchema,
    'a URL path starting with "/", e.g. /ami-transfer (or "/" for the root)',
  );
  const publicUrl = explicitPublicUrl ?? `http://localhost:${port}${explicitBasePath ?? ''}`;
  const publicPath = new URL(publicUrl).pathname.replace(/\/+$/, '');
  // A proxy may pass the path prefix on (the default) or strip it (then BASE_PATH=/).
  const basePath = explicitBasePath ?? publicPath;
  const trustProxy = reader.read('TRUST_PROXY', integerIn(0, 32), 'the number of reverse proxies in front of the service, 0 to 32') ?? 0;
  const logLevel = reader.read('LOG_LEVEL', z.enum(logLevels), `one of ${logLevels.join(', ')}`) ?? 'info';

  const site = readSite(reader);
  const ftrack = readFtrack(reader);
  // Sandbox mode only when no site variable is set at all: a half-configured site is an error, not a sandbox.
  const shotgridGiven = siteVariables.some((name) => reader.raw(name) !== undefined);
  const ftrackGiven = ftrackVariables.some((name) => reader.raw(name) !== undefined);
  const sandboxMode = !shotgridGiven && !ftrackGiven;
  if (shotgridGiven && ftrackGiven) {
    reader.problem(
      'FTRACK_SERVER_URL',
      'Both a ShotGrid site (SHOTGRID_*) and an ftrack server (FTRACK_*) are configured: the service works with one site. Unset the variables of the other.',
    );
  }
  if (sandboxMode && production) {
    reader.problem(
      'SHOTGRID_URL',
      'SHOTGRID_URL, SHOTGRID_SCRIPT_NAME and SHOTGRID_SCRIPT_KEY (or FTRACK_SERVER_URL, FTRACK_API_USER and FTRACK_API_KEY) are required when NODE_ENV=production: ' +
        'without them the service runs the sandbox site, whose credentials are public. Unset NODE_ENV to try the sandbox.',
    );
  }
  const sandboxSite = reader.read('SANDBOX_SITE', z.enum(sandboxSites), `one of ${sandboxSites.join(', ')}`) ?? 'shotgrid';
  if (!sandboxMode && reader.raw('SANDBOX_SITE') !== undefined) warnings.push('SANDBOX_SITE is set but not used: a site is configured, so no sandbox runs.');

  const ami = readAmi(reader, sandboxMode, warnings);
  // ftrack launches come over its event hub, not as signed Action Menu Item posts: no AMI token is needed.
  if (production && !ami.acceptUnsigned && !ftrackGiven) {
    const unsigned = amiActions.filter((action) => ami.secrets[action] === null);
    if (unsigned.length > 0) {
      reader.problem(
        'AMI_SECRET_TOKEN',
        `AMI_SECRET_TOKEN is required when NODE_ENV=production (no secret token for ${unsigned.join(', ')}): ` +
          "set it to the Action Menu Items' secret token, or per action as AMI_SECRET_TOKEN_<ACTION>, " +
          'or set AMI_ACCEPT_UNSIGNED=true to accept unsigned requests knowingly.',
      );
    }
  }
  if (ami.acceptUnsigned) {
    warnings.push(
      'AMI_ACCEPT_UNSIGNED is set: unsigned Action Menu Item requests are accepted, and the user they name is taken on trust.',
    );
  }

  const session = readSessionSecret(reader, production, warnings);
  const redisUrl = reader.read('REDIS_URL', redisUrlSchema, 'a redis:// or rediss:// URL', { secret: true }) ?? null;
  const outbound = readOutboundProxy(env);
  for (const problem of outbound.problems) reader.problem(problem.variable, problem.message);
  const webLinksViaProxy = reader.read('WEB_LINKS_VIA_PROXY', booleanSchema, 'true or false (also 1/0, yes/no)') ?? false;
  if (webLinksViaProxy && outbound.proxy === null && outbound.problems.length === 0) {
    reader.problem('WEB_LINKS_VIA_PROXY', 'WEB_LINKS_VIA_PROXY=true sends web links through the outbound proxy, but neither HTTPS_PROXY nor HTTP_PROXY is set.');
  }
  const metricsPort = reader.read('METRICS_PORT', portSchema, 'a port number from 0 to 65535, other than PORT');
  if (metricsPort !== undefined && metricsPort !== 0 && metricsPort === port) reader.problem('METRICS_PORT', `METRICS_PORT must differ from PORT (${port}): metrics are kept off the public port.`);

  const config: Config = {
    nodeEnv,
    production,
    port,
    host,
    publicUrl,
    publicUrlIsDefault: explicitPublicUrl === undefined,
    publicPath,
    basePath,
    trustProxy,
    logLevel,
    site,
    ftrack,
    ami,
    session,
    redisUrl: redisUrl === null ? null : new Secret(redisUrl),
    frameAncestors:
      reader.read(
        'FRAME_ANCESTORS',
        commaList(frameAncestorSchema).pipe(z.array(z.string()).min(1)),
        "a comma-separated list of origins allowed to frame the pages, e.g. https://studio.shotgrid.autodesk.com,'self'",
      ) ?? null,
    amiAllowedOrigins:
      reader.read(
        'AMI_ALLOWED_ORIGINS',
        commaList(frameAncestorSchema).pipe(z.array(z.string()).min(1)),
        "a comma-separated list of origins the site's pages are reached at, e.g. https://studio.shotgrid.autodesk.com,https://shotgrid.studio.lan",
      ) ?? null,
    contextTtlSeconds:
      reader.read('CONTEXT_TTL_SECONDS', integerIn(60, 7 * 24 * 3600), 'a number of seconds from 60 to 604800') ?? 3600,
    recordDays: reader.read('RECORD_DAYS', integerIn(1, 90), 'a number of days from 1 to 90') ?? 7,
    maxUploadBytes:
      reader.read('MAX_UPLOAD_BYTES', byteSizeSchema, 'a positive number of bytes, optionally with KiB, MiB, GiB or TiB, e.g. 50GiB') ??
      null,
    thumbnailMaxBytes:
      reader.read('THUMBNAIL_MAX_BYTES', byteSizeSchema, 'a positive number of bytes, optionally with KiB, MiB, GiB or TiB, e.g. 50MiB') ??
      50 * 2 ** 20,
    uploadVersionField:
      reader.read('UPLOAD_VERSION_FIELD', z.string().regex(/^[a-z][a-z0-9_]{0,63}$/), 'a ShotGrid field name such as sg_uploaded_movie') ??
      'sg_uploaded_movie',
    uploadParallelParts: reader.read('UPLOAD_PARALLEL_PARTS', integerIn(1, 16), 'a number from 1 to 16') ?? 4,
    clientIdleSeconds: reader.read('CLIENT_IDLE_SECONDS', integerIn(1, 3600), 'a number of seconds from 1 to 3600') ?? 60,
    sweepIntervalSeconds: reader.read('SWEEP_INTERVAL_SECONDS', integerIn(1, 86_400), 'a number of seconds from 1 to 86400') ?? 300,
    reviewSilenceSeconds: reader.read('REVIEW_SILENCE_SECONDS', integerIn(6, 86_400), 'a number of seconds from 6 to 86400') ?? 180,
    heldBytesMiB: reader.read('HELD_BYTES_MIB', integerIn(64, 65_536), 'a number of MiB from 64 to 65536') ?? 256,
    maxConnections: reader.read('MAX_CONNECTIONS', integerIn(16, 1_000_000), 'a number from 16 to 1000000') ?? 4096,
    maxRequestsPerClient: reader.read('MAX_REQUESTS_PER_CLIENT', integerIn(1, 1_000_000), 'a number from 1 to 1000000') ?? 512,
    rateLimitPerMinute: reader.read('RATE_LIMIT_PER_MINUTE', integerIn(60, 1_000_000), 'a number of requests from 60 to 1000000') ?? 3000,
    siteMaxConcurrentRequests: reader.read('SITE_MAX_CONCURRENT_REQUESTS', integerIn(1, 64), 'a number from 1 to 64') ?? 8,
    zipScanWaitSeconds: reader.read('ZIP_SCAN_WAIT_SECONDS', integerIn(0, 3600), 'a number of seconds from 0 to 3600') ?? 180,
    webLinkHosts:
      reader.read('WEB_LINK_HOSTS', commaList(hostnameSchema), 'a comma-separated list of host names, e.g. vimeo.com,*.example.com') ?? [],
    webLinkPrivateRanges:
      reader.read('WEB_LINK_PRIVATE_RANGES', commaList(cidrSchema), 'a comma-separated list of CIDR ranges, e.g. 10.20.0.0/16') ?? [],
    localStorageMounts: readLocalStorageMounts(reader),
    shutdownGraceSeconds:
      reader.read('SHUTDOWN_GRACE_SECONDS', integerIn(0, 3600), 'a number of seconds from 0 to 3600') ?? 30,
    outboundProxy: outbound.proxy,
    webLinksViaProxy,
    metrics:
      metricsPort === undefined
        ? null
        : { port: metricsPort, host: reader.read('METRICS_HOST', nonEmpty, 'a host name or IP address to serve metrics on') ?? '127.0.0.1' },
    readyzCacheSeconds: reader.read('READYZ_CACHE_SECONDS', integerIn(1, 300), 'a number of seconds from 1 to 300') ?? 10,
    sandboxSite,
    sandbox: readSandbox(reader),
    warnings,
  };

  if (reader.problems.length > 0) throw new ConfigError(reader.problems);
  return config;
}

const siteVariables = ['SHOTGRID_URL', 'SHOTGRID_SCRIPT_NAME', 'SHOTGRID_SCRIPT_KEY'] as const;

function readSite(reader: EnvReader): ShotgridSiteConfig | null {
  const url = reader.read(
    'SHOTGRID_URL',
    siteUrlSchema,
    "the site's address with no path, e.g. https://studio.shotgrid.autodesk.com",
  );
  const scriptName = reader.read('SHOTGRID_SCRIPT_NAME', nonEmpty, 'the name of the API script');
  const scriptKey = reader.read('SHOTGRID_SCRIPT_KEY', nonEmpty, "the API script's key", { secret: true });

  const given = siteVariables.filter((name) => reader.raw(name) !== undefined);
  if (given.length === 0) return null;
  if (given.length < siteVariables.length) {
    for (const missing of siteVariables.filter((name) => !given.includes(name))) {
      reader.problem(missing, `${missing} is required when ${given.join(' and ')} ${given.length > 1 ? 'are' : 'is'} set: set all three, or none for sandbox mode.`);
    }
    return null;
  }
  if (url === undefined || scriptName === undefined || scriptKey === undefined) return null;
  return { url, scriptName, scriptKey: new Secret(scriptKey) };
}

const ftrackVariables = ['FTRACK_SERVER_URL', 'FTRACK_API_USER', 'FTRACK_API_KEY'] as const;

function readFtrack(reader: EnvReader): FtrackSiteConfig | null {
  const url = reader.read('FTRACK_SERVER_URL', siteUrlSchema, "the ftrack server's address with no path, e.g. https://studio.ftrackapp.com");
  const apiUser = reader.read('FTRACK_API_USER', z.string().max(256), 'the username the API key acts as (an administrator)');
  const apiKey = reader.read('FTRACK_API_KEY', z.string().max(1024), "the server's API key (System settings → API keys)", { secret: true });

  const given = ftrackVariables.filter((name) => reader.raw(name) !== undefined);
  if (given.length === 0) return null;
  if (given.length < ftrackVariables.length) {
    for (const missing of ftrackVariables.filter((name) => !given.includes(name))) {
      reader.problem(missing, `${missing} is required when ${given.join(' and ')} ${given.length > 1 ? 'are' : 'is'} set: set all three, or none.`);
    }
    return null;
  }
  if (url === undefined || apiUser === undefined || apiKey === undefined) return null;
  return { url, apiUser, apiKey: new Secret(apiKey) };
}

function readAmi(reader: EnvReader, sandboxMode: boolean, warnings: string[]): Config['ami'] {
  const tokenExpected = 'the secret token set on the Action Menu Items';
  const shared =
    reader.read('AMI_SECRET_TOKEN', nonEmpty, tokenExpected, { secret: true }) ??
    (sandboxMode ? sandboxDefaults.amiSecret : undefined);

  const prefix = 'AMI_SECRET_TOKEN_';
  const known = new Map(amiActions.map((action) => [prefix + amiActionEnvSuffix(action), action] as const));
  for (const name of reader.namesStartingWith(prefix)) {
    if (!known.has(name)) {
      reader.problem(name, `${name} names no action: the per-action tokens are ${[...known.keys()].join(', ')}.`);
    }
  }

  const secrets = {} as Record<AmiAction, Secret | null>;
  const ownTokens: string[] = [];
  for (const [name, action] of known) {
    const own = reader.read(name, nonEmpty, tokenExpected, { secret: true });
    if (own !== undefined) ownTokens.push(name);
    const token = own ?? shared;
    secrets[action] = token === undefined ? null : new Secret(token);
  }
  if (sandboxMode && ownTokens.length > 0) {
    warnings.push(
      `${ownTokens.join(', ')} ${ownTokens.length > 1 ? 'are' : 'is'} set in sandbox mode, but the sandbox's menu signs every action with AMI_SECRET_TOKEN ("${sandboxDefaults.amiSecret}" unless set): those actions will refuse its requests.`,
    );
  }

  return {
    sharedSecret: shared === undefined ? null : new Secret(shared),
    secrets,
    acceptUnsigned:
      reader.read('AMI_ACCEPT_UNSIGNED', booleanSchema, 'true or false (also 1/0, yes/no)') ?? false,
    timestampWindowSeconds:
      reader.read('AMI_TIMESTAMP_WINDOW_SECONDS', integerIn(1, 3600), 'a number of seconds from 1 to 3600') ?? 60,
  };
}

function readSessionSecret(reader: EnvReader, production: boolean, warnings: string[]): Config['session'] {
  const secret = reader.read(
    'SESSION_SECRET',
    z.string().min(32),
    'at least 32 characters (e.g. the output of `openssl rand -hex 32`)',
    { secret: true },
  );
  if (secret !== undefined) return { secret: new Secret(secret), generated: false };
  if (production && reader.raw('SESSION_SECRET') === undefined) {
    reader.problem(
      'SESSION_SECRET',
      'SESSION_SECRET is required when NODE_ENV=production: at least 32 random characters, the same on every instance (e.g. `openssl rand -hex 32`).',
    );
  } else if (reader.raw('SESSION_SECRET') === undefined) {
    warnings.push(
      'SESSION_SECRET is not set: using a random one for this process, so the forms of pages open when it restarts stop working (and instances cannot check each other\'s).',
    );
  }
  return { secret: new Secret(randomBytes(32).toString('hex')), generated: true };
}

function readLocalStorageMounts(reader: EnvReader): ReadonlyMap<string, string> {
  const entries = reader.read(
    'LOCAL_STORAGE_MOUNTS',
    commaList(localStorageMountSchema),
    'a comma-separated list of <LocalStorage code>=<absolute path>, e.g. primary=/mnt/projects,renders=/mnt/renders',
  );
  const mounts = new Map<string, string>();
  for (const [code, path] of entries ?? []) {
    if (mounts.has(code)) reader.problem('LOCAL_STORAGE_MOUNTS', `LOCAL_STORAGE_MOUNTS names the LocalStorage "${code}" twice.`);
    mounts.set(code, path);
  }
  return mounts;
}

function readSandbox(reader: EnvReader): Config['sandbox'] {
  let faults: FaultSettingsInput = {};
  try {
    faults = faultsFromEnv(reader.raw('SANDBOX_FAULTS'));
  } catch (error) {
    // faultsFromEnv's messages already name the variable and say what is wrong.
    reader.problem('SANDBOX_FAULTS', error instanceof Error ? error.message : 'SANDBOX_FAULTS is invalid.');
  }
  const dataDir = reader.read('SANDBOX_DATA_DIR', nonEmpty, 'a folder path');
  return {
    port: reader.read('SANDBOX_PORT', portSchema, 'a port number from 0 to 65535') ?? 3001,
    storagePort: reader.read('SANDBOX_STORAGE_PORT', portSchema, 'a port number from 0 to 65535') ?? 3002,
    dataDir: dataDir === undefined ? null : resolve(dataDir),
    faults,
  };
}
