import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';

/** Debian's chromium here; CHROMIUM_PATH names another build (Google Chrome on GitHub's runners, .github/workflows/ci.yml). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Debian's Chromium, headless, with a fresh profile and no background traffic. */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'chromium-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/** Signs in to the console through the test identity provider's login and consent forms. */
export async function signInToConsole(context: BrowserContext, base: string, account: string): Promise<Page> {
  const page = await context.newPage();
  await page.goto(`${base}/console/`);
  await page.getByRole('link', { name: /sign in with/i }).click();
  await page.locator('input[name="login"]').fill(account);
  await page.locator('input[name="password"]').fill('any');
  await page.locator('button[type="submit"]').click();
  // The provider's consent step, then back through /console/callback.
  await page.locator('button[type="submit"]').click();
  await page.waitForURL(`${base}/console/tenants`);
  return page;
}
