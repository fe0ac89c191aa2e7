import { randomUUID } from 'node:crypto';
import { request } from 'undici';
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startSandboxSite, type SandboxOptions, type SandboxSite } from '../../src/sandbox/site.ts';
import { computeAmiSignature } from '../../src/ami/signature.ts';
import { startServer, type RunningServer } from '../../src/server.ts';
import { csrfToken } from '../../src/web/csrf.ts';

// The real service with the real sandbox site in one test process, and launches as ShotGrid makes them: the
// sandbox's menu signs the payload (with the AMI's secret token), the test POSTs it and follows the 303.

export const TEST_SESSION_SECRET = 'test-session-secret-of-at-least-32-characters';

export interface ServiceWithSandbox {
  service: RunningServer;
  site: SandboxSite;
  close(): Promise<void>;
}

/** `sandbox` adds to the options the service starts its sandbox with (e.g. a shorter thumbnailDelayMs). */
export async function startServiceWithSandbox(env: Record<string, string> = {}, sandbox: Partial<SandboxOptions> = {}): Promise<ServiceWithSandbox> {
  let site: SandboxSite | undefined;
  const service = await startServer(
    loadConfig({ PORT: '0', HOST: '127.0.0.1', SANDBOX_PORT: '0', SANDBOX_STORAGE_PORT: '0', LOG_LEVEL: 'silent', SESSION_SECRET: TEST_SESSION_SECRET, ...env }),
    { log: createLogger({ level: 'silent' }), startSandbox: async (options) => (site = await startSandboxSite({ ...options, ...sandbox })) },
  );
  if (!site) throw new Error('the sandbox did not start');
  return { service, site, close: async () => void (await service.close(0)) };
}

export interface Launched {
  /** The action page's URL on the service. */
  pageUrl: string;
  contextId: string;
  /** The AMI signature the launch carried (for tests that look for it where it must not be). */
  signature: string;
  /** The CSRF token of one of the page's forms or APIs ("uploads", "form-upload", "discard"). */
  token(purpose: string): string;
}

/**
 * Launches `action` on the rows (by id) as `login`, as the sandbox's right-click menu would. With `actAs`, the
 * payload then names that person instead, signed all the same: a launch the menu would never offer them (rows
 * they cannot see), for testing what the service does with it.
 */
export async function launch(
  env: { site: SandboxSite; service: { url: string } },
  action: string,
  entityType: string,
  ids: readonly number[],
  login = 'artist',
  options: { actAs?: string; selectNothing?: boolean } = {},
): Promise<Launched> {
  const { site, service } = env;
  // An action offered on several types is one menu item per type (submit-for-review: Shot, Asset, Task).
  const ami = site.store
    .all('ActionMenuItem')
    .find((item) => String(item.fields.url).endsWith(`/ami/${action}`) && (item.fields.entity_type === null || item.fields.entity_type === entityType));
  if (!ami) throw new Error(`no menu item for ${action}`);
  const signed = await request(`${site.url}/sandbox/menu/launch`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      ami_id: ami.id,
      login,
      entity_type: entityType,
      selected_ids: ids,
      page_ids: ids,
      sort_column: entityType === 'Task' ? 'content' : 'code',
      sort_direction: 'asc',
      grouping_column: '',
      session_uuid: randomUUID(),
    }),
  });
  let { fields } = (await signed.body.json()) as { fields: [string, string][] };
  if (signed.statusCode !== 200) throw new Error(`the sandbox refused the launch: ${JSON.stringify(fields)}`);
  if (options.selectNothing) {
    // An item that needs no selection, run with none: no selected_ids at all (ShotGrid posts no blank field).
    const named = fields.filter(([name]) => name !== 'signature' && name !== 'selected_ids');
    fields = [...named, ['signature', computeAmiSignature(named, site.amiSecret)]];
  }
  if (options.actAs !== undefined) {
    const person = site.store.all('HumanUser').find((user) => user.fields.login === options.actAs);
    if (!person) throw new Error(`no person ${options.actAs}`);
    const named = fields
      .filter(([name]) => name !== 'signature')
      .map(([name, value]): [string, string] => (name === 'user_id' ? [name, String(person.id)] : name === 'user_login' ? [name, options.actAs!] : [name, value]));
    fields = [...named, ['signature', computeAmiSignature(named, site.amiSecret)]];
  }
  const posted = await request(`${service.url}/ami/${action}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  await posted.body.dump();
  if (posted.statusCode !== 303) throw new Error(`the launch answered ${posted.statusCode}`);
  const location = String(posted.headers.location);
  const contextId = location.split('/').pop() ?? '';
  return {
    pageUrl: new URL(location, service.url).toString(),
    contextId,
    signature: fields.find(([name]) => name === 'signature')?.[1] ?? '',
    token: (purpose) => csrfToken(TEST_SESSION_SECRET, contextId, purpose),
  };
}
