import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from 'playwright-core';

// What every browser suite needs: Debian's Chromium started the same way, its Content Security Policy reports
// collected, screenshots at both widths people see a page (a tab, and ShotGrid's 640 px overlay or ftrack's
// widget), nothing wider than the frame, a control reached by Tab.

/** Debian's Chromium's flags for a test run: no sandbox (CI runs as root), no GPU, no background traffic. */
export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
export const CHROMIUM_PATH = '/usr/bin/chromium';

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/** Every console message of the context's pages that reports a Content Security Policy violation goes into `into`. */
export function collectCspViolations(context: BrowserContext, into: string[]): void {
  context.on('console', (message) => {
    if (/Content[- ]Security[- ]Policy/i.test(message.text())) into.push(message.text());
  });
}

/** Screenshots of the page at 1280 and 640 px into SCREENSHOT_DIR as `<name>-<width>.png`, when it is set. */
export async function screenshotWidths(page: Page, name: string): Promise<void> {
  const folder = process.env['SCREENSHOT_DIR'];
  if (folder === undefined) return;
  const viewport = page.viewportSize() ?? { width: 1280, height: 900 };
  for (const width of [1280, 640]) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: join(folder, `${name}-${width}.png`), fullPage: true });
  }
  await page.setViewportSize(viewport);
}

/** Nothing on the page is wider than `width` px. */
export async function assertFitsWidth(page: Page, width: number): Promise<void> {
  const viewport = page.viewportSize() ?? { width: 1280, height: 900 };
  await page.setViewportSize({ width, height: viewport.height });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, `nothing wider than ${width} px`);
  await page.setViewportSize(viewport);
}

/** Tabs from the page's first link until `target` has the focus, and asserts it got there within `presses`. */
export async function tabTo(page: Page, target: Locator, presses = 15): Promise<void> {
  await page.locator('a').first().focus();
  const focused = () => target.evaluate((el) => el === document.activeElement);
  for (let pressed = 0; pressed < presses && !(await focused()); pressed++) await page.keyboard.press('Tab');
  assert.ok(await focused(), 'reachable with Tab');
}
