import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../helpers/page-checks.ts';
import { startSandboxSite, type SandboxSite } from '../../src/sandbox/site.ts';

// The sandbox's right-click menu page in a real browser: pick Versions, select two, fire an Action Menu Item in a
// new tab and in the modal overlay, and check what a stand-in for the service receives — every AMI field of
// ami.md, and a signature that Python's hmac (not our own code) accepts.


const VERSION_COLS = 'code,image,entity,sg_task,sg_status_list,user,description,sg_path_to_frames,project,created_at';
const VERSION_COLUMN_NAMES = 'Version Name,Thumbnail,Link,Task,Status,Artist,Description,Frames (EXR, DPX),Project,Date Created';
const VERSION_PAGE_ID = '2279';
const PAYLOAD_FIELDS = [
  'user_id', 'user_login', 'title', 'entity_type', 'server_hostname', 'referrer_path', 'page_id', 'session_uuid',
  'project_name', 'project_id', 'view', 'cols', 'column_display_names', 'sort_column', 'sort_direction',
  'selected_ids', 'ids', 'timestamp', 'signature',
];
/** Only a grouped page sends these (ami.md: no grouping fields on an ungrouped page). */
const GROUPING_FIELDS = ['grouping_column', 'grouping_method', 'grouping_direction'];

/** Verifies the AMI signature of a raw form body as Autodesk's sample does, in Python: prints "ok" or "bad". */
const PYTHON_VERIFIER = `
import hashlib, hmac, sys
from urllib.parse import parse_qsl
fields = parse_qsl(sys.stdin.read(), keep_blank_values=True, strict_parsing=True)
received = dict(fields).get("signature", "")
lines = sorted(f"{name}={value}\\r\\n" for name, value in fields if name != "signature")
expected = hmac.new(sys.argv[1].encode("utf-8"), "".join(lines).encode("utf-8"), hashlib.sha1).hexdigest()
print("ok" if hmac.compare_digest(expected, received) else "bad")
`;

function signatureVerifies(rawBody: string, secret: string): boolean {
  return execFileSync('python3', ['-c', PYTHON_VERIFIER, secret], { input: rawBody, encoding: 'utf8' }).trim() === 'ok';
}

interface ReceivedPost {
  path: string;
  headers: IncomingHttpHeaders;
  rawBody: string;
  fields: URLSearchParams;
}

/** A stand-in for the service: records each POST and answers a small page. */
class StubReceiver {
  readonly received: ReceivedPost[] = [];
  readonly #waiters: ((post: ReceivedPost) => void)[] = [];
  readonly #server: Server = createServer((req, res) => {
    if (req.method !== 'POST') {
      res.writeHead(404).end();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      const post = { path: req.url ?? '', headers: req.headers, rawBody, fields: new URLSearchParams(rawBody) };
      this.received.push(post);
      this.#waiters.shift()?.(post);
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end('<!doctype html><title>Stub service</title><h1>Received</h1>');
    });
  });
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  /** The next POST to arrive (or one that already arrived and was not taken yet). */
  nextPost(alreadyTaken: number): Promise<ReceivedPost> {
    const waiting = this.received[alreadyTaken];
    if (waiting) return Promise.resolve(waiting);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

describe('sandbox right-click menu page', { timeout: 120_000 }, () => {
  const stub = new StubReceiver();
  let site: SandboxSite;
  let browser: Browser;
  let page: Page;
  const cspViolations: string[] = [];
  const launchAnswers: string[] = [];

  const versionId = (code: string): number => {
    const record = site.store.all('Version').find((version) => version.fields.code === code);
    assert.ok(record, `seeded Version ${code}`);
    return record.id;
  };
  const userId = (login: string): number => site.store.all('HumanUser').find((user) => user.fields.login === login)!.id;
  const demo = () => site.store.all('Project').find((project) => project.fields.name === 'Demo')!;

  before(async () => {
    await stub.start();
    site = await startSandboxSite({ serviceUrl: stub.url });
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) cspViolations.push(message.text());
    });
    page.on('response', async (response) => {
      if (response.url().endsWith('/sandbox/menu/launch')) launchAnswers.push(await response.text());
    });
  });

  after(async () => {
    await browser?.close();
    await site?.close();
    await stub.close();
  });

  /** Checks the fields every launch from the artist's Versions page carries, whatever the page state. */
  function assertVersionPayload(post: ReceivedPost, expected: { selected: number[]; sessionUuid: string; grouped: boolean }): void {
    const { fields } = post;
    assert.equal(post.path, '/ami/upload-files');
    assert.match(post.headers['content-type'] ?? '', /^application\/x-www-form-urlencoded/);
    const names = expected.grouped ? [...PAYLOAD_FIELDS, ...GROUPING_FIELDS] : PAYLOAD_FIELDS;
    assert.deepEqual([...fields.keys()].sort(), [...names].sort(), 'every field once, nothing else');
    assert.ok([...fields.values()].every((value) => value !== ''), 'no blank field, as a real site posts');
    assert.equal(fields.get('user_id'), String(userId('artist')));
    assert.equal(fields.get('user_login'), 'artist');
    assert.equal(fields.get('entity_type'), 'Version');
    assert.equal(fields.get('selected_ids'), expected.selected.join(','));
    // Upload files requires a selection: ami.md's ids then equals selected_ids.
    assert.equal(fields.get('ids'), expected.selected.join(','));
    assert.equal(fields.get('title'), 'undefined');
    assert.equal(fields.get('page_id'), VERSION_PAGE_ID);
    assert.equal(fields.get('referrer_path'), `/page/${VERSION_PAGE_ID}`);
    assert.equal(fields.get('server_hostname'), new URL(site.url).host);
    assert.equal(fields.get('session_uuid'), expected.sessionUuid);
    assert.equal(fields.get('view'), 'Default');
    assert.equal(fields.get('cols'), VERSION_COLS);
    assert.equal(fields.get('column_display_names'), VERSION_COLUMN_NAMES);
    assert.equal(fields.get('project_id'), String(demo().id));
    assert.equal(fields.get('project_name'), 'Demo');

    const timestamp = fields.get('timestamp') ?? '';
    assert.match(timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.ok(Math.abs(Date.parse(timestamp) - Date.now()) < 5000, `timestamp ${timestamp} is within 5 s of now`);
    assert.match(fields.get('signature') ?? '', /^[0-9a-f]{40}$/);
    assert.ok(signatureVerifies(post.rawBody, site.amiSecret), 'signature verifies with the AMI secret');
    assert.ok(!signatureVerifies(post.rawBody, `${site.amiSecret}x`), 'and not with another secret');
  }

  async function selectVersions(codes: string[]): Promise<number[]> {
    const ids = codes.map(versionId);
    for (const id of ids) await page.locator(`tr.row[data-id="${id}"] input.row-select`).check();
    await page.locator('#selection-count').filter({ hasText: `${ids.length} of` }).waitFor();
    return ids;
  }

  const sessionUuid = async (): Promise<string> => (await page.locator('#menu-page').getAttribute('data-session-uuid')) ?? '';

  test('each person sees only the rows of their projects', async () => {
    await page.goto(`${site.menuUrl}?entity_type=Version&login=outsider`);
    assert.deepEqual(await page.locator('tr.row .col-code').allTextContents().then((texts) => texts.map((t) => t.trim())), ['bl010_comp_v001']);
    await page.goto(`${site.menuUrl}?entity_type=Version&login=artist`);
    assert.equal(await page.locator('tr.row').count(), 40);
  });

  test('fires "Upload files" in a new tab with the signed payload', async () => {
    await page.goto(`${site.menuUrl}?entity_type=Shot&login=artist`);
    await Promise.all([page.waitForURL(/entity_type=Version/), page.selectOption('select[name="entity_type"]', 'Version')]);
    await page.locator('h1', { hasText: 'Versions' }).waitFor();
    const selected = await selectVersions(['sh010_comp_v003', 'sh020_comp_v003']);

    // Right-click one of the selected rows: the selection stays, the menu lists this page's items.
    await page.locator(`tr.row[data-id="${selected[1]}"] .col-description`).click({ button: 'right' });
    const menu = page.getByRole('menu', { name: 'Actions' });
    await menu.waitFor();
    assert.deepEqual(
      (await menu.getByRole('menuitem').allTextContents()).map((text) => text.trim()),
      ['Upload files', 'Attach files', 'Download as zip', 'Set thumbnail'],
      'the Version items and the every-type items, in list order; not the Shot-only one',
    );
    await menu.getByLabel('In a new tab').check();
    const taken = stub.received.length;
    const [popup] = await Promise.all([page.waitForEvent('popup'), menu.getByRole('menuitem', { name: 'Upload files' }).click()]);
    const post = await stub.nextPost(taken);
    await popup.waitForLoadState();
    assert.equal(await popup.locator('h1').textContent(), 'Received');
    await popup.close();

    assertVersionPayload(post, { selected, sessionUuid: await sessionUuid(), grouped: false });
    assert.equal(post.fields.get('sort_column'), 'code');
    assert.equal(post.fields.get('sort_direction'), 'asc');
    assert.equal(await menu.isHidden(), true, 'the menu closes when an item is chosen');
  });

  test('fires it again in the modal overlay from a grouped, re-sorted page; Esc closes the overlay', async () => {
    await page.goto(`${site.menuUrl}?entity_type=Version&login=artist`);
    await Promise.all([page.waitForURL(/group=sg_status_list/), page.selectOption('select[name="group"]', 'sg_status_list')]);
    await Promise.all([page.waitForURL(/direction=desc/), page.getByRole('link', { name: 'Version Name' }).click()]);
    await page.locator('tr.group-row').first().waitFor();
    const selected = await selectVersions(['sh010_comp_v003', 'sh020_comp_v003']);

    await page.getByRole('button', { name: 'Actions ▾' }).click();
    const menu = page.getByRole('menu', { name: 'Actions' });
    await menu.getByLabel('In a modal overlay').check();
    const taken = stub.received.length;
    await menu.getByRole('menuitem', { name: 'Upload files' }).click();
    const post = await stub.nextPost(taken);

    const dialog = page.getByRole('dialog', { name: 'Upload files' });
    await dialog.waitFor();
    await page.frameLocator('iframe[name="ami-overlay-frame"]').locator('h1', { hasText: 'Received' }).waitFor();
    // Both rows are "Pending Review"; within the group they come by code, descending.
    assertVersionPayload(post, { selected: [...selected].reverse(), sessionUuid: await sessionUuid(), grouped: true });
    assert.equal(post.fields.get('sort_column'), 'code');
    assert.equal(post.fields.get('sort_direction'), 'desc');
    assert.equal(post.fields.get('grouping_column'), 'sg_status_list');
    assert.equal(post.fields.get('grouping_method'), 'exact');
    assert.equal(post.fields.get('grouping_direction'), 'asc');

    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden' });
    assert.equal(await page.locator('iframe[name="ami-overlay-frame"]').getAttribute('src'), 'about:blank');
  });

  test('an item that needs no selection sends every row of the page as ids, opening where the item says', async () => {
    const secret = 'another-secret-ü';
    const ami = site.store.insert('ActionMenuItem', {
      title: 'Page report',
      url: `${stub.url}/ami/page-report`,
      entity_type: 'Version',
      list_order: 99,
      folder: null,
      selection_required: false,
      open_in_overlay: true,
      secret_token: secret,
      projects: [],
      permissions_groups: [],
    });
    try {
      await page.goto(`${site.menuUrl}?entity_type=Version&login=artist`);
      const pageIds = (await page.locator('tr.row').evaluateAll((rows) => rows.map((row) => (row as HTMLElement).dataset.id))).join(',');
      await page.getByRole('button', { name: 'Actions ▾' }).click();
      const menu = page.getByRole('menu', { name: 'Actions' });
      assert.equal(await menu.getByRole('menuitem', { name: 'Upload files' }).isDisabled(), true, 'needs a selection');
      const taken = stub.received.length;
      await menu.getByRole('menuitem', { name: /Page report/ }).click();
      const post = await stub.nextPost(taken);
      await page.getByRole('dialog', { name: 'Page report' }).waitFor();
      assert.equal(post.path, '/ami/page-report');
      assert.equal(post.fields.get('selected_ids'), null, 'nothing selected: no selected_ids field at all');
      assert.equal(post.fields.get('ids'), pageIds);
      assert.equal(pageIds.split(',').length, 40);
      assert.ok(signatureVerifies(post.rawBody, secret));
      await page.getByRole('button', { name: 'Close' }).click();
      await page.getByRole('dialog').waitFor({ state: 'hidden' });
    } finally {
      site.store.retire(ami);
    }
  });

  test('the page keeps to its CSP and the secret token never reaches the browser', () => {
    assert.deepEqual(cspViolations, []);
    assert.ok(launchAnswers.length >= 3);
    for (const answer of launchAnswers) {
      assert.ok(!answer.includes(site.amiSecret) && !answer.includes('another-secret'), 'no secret in the launch answer');
    }
  });
});
