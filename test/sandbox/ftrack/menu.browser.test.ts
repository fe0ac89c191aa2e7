import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { EventHub, type EventPayload } from '@ftrack/api';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../../helpers/page-checks.ts';
import { startFtrackSandbox, type FtrackSandbox } from '../../../src/sandbox/ftrack/site.ts';
import { named, unrefLongTimers } from './helpers.ts';

// The ftrack sandbox's action menu in a real browser: select a shot, ask for actions, click one, and the widget URL
// the listener replied opens in the page's frame (a stand-in for the service answers it).


let sandbox: FtrackSandbox;
let listener: EventHub;
let service: Server;
let browser: Browser;
const requested: string[] = [];

before(async () => {
  unrefLongTimers();
  service = createServer((req, res) => {
    requested.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><h1 id="widget-page">Upload files</h1>');
  });
  await new Promise<void>((resolve) => service.listen(0, '127.0.0.1', resolve));
  const widgetUrl = `http://127.0.0.1:${(service.address() as AddressInfo).port}/ftrack/launch/ctx`;
  sandbox = await startFtrackSandbox();
  listener = new EventHub(sandbox.url, sandbox.apiUser, sandbox.apiKey);
  listener.connect();
  listener.subscribe('topic=ftrack.action.discover', () => ({ items: [{ label: 'Upload files', actionIdentifier: 'ami-transfer.upload' }] }));
  listener.subscribe('topic=ftrack.action.launch', (event: EventPayload) =>
    (event.data as { actionIdentifier?: string }).actionIdentifier === 'ami-transfer.upload'
      ? { success: true, message: 'Opening the upload page', type: 'widget', url: widgetUrl, title: 'Upload files' }
      : undefined,
  );
  await sandbox.hub.whenSubscribed('ftrack.action.launch');
  browser = await launchChromium();
});
after(async () => {
  await browser?.close();
  listener?.disconnect();
  await sandbox?.close();
  service?.close();
});

test('select, Actions, click an item: the launch reply opens its URL in the frame', async () => {
  const page = await browser.newPage();
  try {
    await page.goto(`${sandbox.menuUrl}?type=Shot&login=artist`);
    await page.locator(`tr.row[data-id="${named(sandbox, 'Shot', 'sh020')}"] input.row-select`).check();
    await page.click('#actions-button');
    await page.locator('button.action-item', { hasText: 'Upload files' }).click();
    await page.frameLocator('#widget-frame').locator('#widget-page').waitFor();
    assert.equal(await page.textContent('#menu-status'), 'Opening the upload page');
    assert.deepEqual(requested, ['/ftrack/launch/ctx']);
    const launch = sandbox.hub.history.findLast((event) => event.topic === 'ftrack.action.launch');
    assert.deepEqual((launch?.data as { selection: unknown }).selection, [{ entityId: named(sandbox, 'Shot', 'sh020'), entityType: 'task' }]);
  } finally {
    await page.close();
  }
});
