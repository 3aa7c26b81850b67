// The SMS-login page in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core), as a person uses it:
// the banners and the visit counter, the phone check on blur, "send code" and its countdown, the code read from the
// phone panel, login, the username in the header (and after a reload), logout, registration switching to the login
// dialog, and a password login of the new account. No page error and no console error (CSP included) is allowed.
// Screenshots of the login dialog and of the logged-in page go to $SMS_LOGIN_SCREENSHOTS (a temp dir otherwise).
// Skipped, saying why, where /usr/bin/chromium is not installed (.ci/run installs it).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { DEMO, freshPhone, startSmsLogin, type SmsLoginServer } from '../integration/sms-login.harness.ts';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} is not installed (apt-get install -y chromium); the browser test needs it`;

let srv: SmsLoginServer;
let context: BrowserContext;
let page: Page;
let profile: string;
const problems: string[] = [];
let shots: string;

before(async () => {
  if (skip) return;
  shots = process.env.SMS_LOGIN_SCREENSHOTS || mkdtempSync(join(tmpdir(), 'sms-login-shots-'));
  mkdirSync(shots, { recursive: true });
  srv = await startSmsLogin({ SMS_LOGIN_RESEND_SECONDS: '3', SMS_LOGIN_CODE_TTL: '300' });
  profile = mkdtempSync(join(tmpdir(), 'sms-login-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run'],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // 4xx answers of the API are part of the flows (wrong code, short password); they are checked by status below
    if (msg.type() === 'error' && !/^Failed to load resource: the server responded with a status of 4\d\d/.test(msg.text())) {
      problems.push(`console error: ${msg.text()}`);
    }
  });
  page.on('response', (res) => {
    const path = new URL(res.url()).pathname;
    if (res.status() >= 500 || (res.status() >= 400 && !path.startsWith('/api/'))) problems.push(`${res.status()} for ${path}`);
  });
  page.setDefaultTimeout(15_000);
});

after(async () => {
  if (skip) return;
  await context?.close();
  rmSync(profile, { recursive: true, force: true });
  assert.equal(await srv.stop(), 0, srv.proc.out);
});

test('the home page shows the banners from the cache and counts the visit', { skip }, async () => {
  await page.goto(srv.url);
  await page.locator('.banner').first().waitFor();
  assert.equal(await page.locator('.banner').count(), 3);
  assert.equal(await page.locator('.banner h3').first().textContent(), 'Tasks in TypeScript');
  await page.locator('#visits', { hasText: /^\d+$/ }).waitFor();
  assert.match((await page.locator('#visits').textContent()) ?? '', /^\d+$/);
  assert.match((await page.locator('#banner-meta').textContent()) ?? '', /3 banners · refreshed by update_banner at .* · served from the (cache|database)/);
  assert.equal(await page.locator('#nav-guest').isVisible(), true);
});

test('log in with a phone and an SMS code read from the phone panel; the header shows the username', { skip }, async () => {
  await page.click('#login-open');
  await page.locator('#login-dialog').waitFor({ state: 'visible' });
  const send = page.locator('#send-code');
  assert.equal(await send.isDisabled(), true, 'disabled before the phone is checked');

  // a malformed number is caught on blur, and send stays off
  await page.fill('#login-phone', '12345');
  await page.locator('#login-phone').blur();
  await page.locator('#login-phone-hint.error').waitFor();
  assert.equal(await send.isDisabled(), true);
  // a number nobody registered
  await page.fill('#login-phone', '13700000009');
  await page.locator('#login-phone').blur();
  await page.locator('#login-phone-hint', { hasText: 'not registered' }).waitFor();
  assert.equal(await send.isDisabled(), true);

  await page.fill('#login-phone', DEMO.phone);
  await page.locator('#login-phone').blur();
  await page.locator('#login-phone-hint', { hasText: 'Registered' }).waitFor();
  assert.equal(await send.isEnabled(), true);
  await send.click();
  await page.locator('#send-code', { hasText: /^Resend in \d s$/ }).waitFor();
  assert.equal(await send.isDisabled(), true, 'counting down');

  const sms = page.locator(`#sms-list .sms[data-to="${DEMO.phone}"] .sms-code`).first();
  await sms.waitFor();
  const code = (await sms.textContent())!;
  assert.match(code, /^\d{6}$/);
  await page.fill('#login-code', code);
  await page.screenshot({ path: join(shots, 'login-dialog.png') });

  // the countdown ends and the button comes back
  await page.locator('#send-code:not([disabled])', { hasText: /^Send code$/ }).waitFor({ timeout: 6000 });
  assert.equal(await send.isEnabled(), true);

  await page.click('#login-submit');
  await page.locator('#login-dialog').waitFor({ state: 'hidden' });
  await page.locator('#header-user').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#header-user').textContent(), DEMO.username);
  const cookies = Object.fromEntries((await context.cookies(srv.url)).map((c) => [c.name, c]));
  assert.equal(cookies.username.value, DEMO.username);
  assert.match(cookies.token.value, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(cookies.token.sameSite, 'Strict');
  await page.screenshot({ path: join(shots, 'logged-in.png') });

  // the cookie keeps the session across a reload; logout ends it
  await page.reload();
  await page.locator('#header-user').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#header-user').textContent(), DEMO.username);
  await page.click('#logout');
  await page.locator('#nav-guest').waitFor({ state: 'visible' });
  assert.equal((await srv.api('GET', '/api/me', undefined, cookies.token.value)).status, 401, 'revoked on the server too');
});

test('a wrong code is explained in the dialog', { skip }, async () => {
  await page.click('#login-open');
  await page.fill('#login-phone', DEMO.phone);
  await page.locator('#login-phone').blur();
  await page.locator('#send-code:not([disabled])').waitFor();
  await page.click('#send-code');
  await page.locator(`#sms-list .sms[data-to="${DEMO.phone}"]`).nth(1).waitFor();
  const code = (await page.locator(`#sms-list .sms[data-to="${DEMO.phone}"] .sms-code`).first().textContent())!;
  await page.fill('#login-code', code === '000000' ? '000001' : '000000');
  await page.click('#login-submit');
  await page.locator('#login-code-hint', { hasText: 'Wrong code; 4 attempts left' }).waitFor();
  await page.fill('#login-code', code);
  await page.click('#login-submit');
  await page.locator('#header-user').waitFor({ state: 'visible' });
  await page.click('#logout');
  await page.locator('#nav-guest').waitFor({ state: 'visible' });
});

test('register a new number: code from the phone panel, password, then the login dialog; log in with the password', { skip }, async () => {
  const phone = freshPhone();
  await page.click('#register-open');
  await page.locator('#register-dialog').waitFor({ state: 'visible' });
  // a number that already has an account cannot register
  await page.fill('#register-phone', DEMO.phone);
  await page.locator('#register-phone').blur();
  await page.locator('#register-phone-hint', { hasText: 'already registered' }).waitFor();
  assert.equal(await page.locator('#register-send-code').isDisabled(), true);

  await page.fill('#register-phone', phone);
  await page.locator('#register-phone').blur();
  await page.locator('#register-phone-hint', { hasText: 'available' }).waitFor();
  await page.click('#register-send-code');
  const sms = page.locator(`#sms-list .sms[data-to="${phone}"] .sms-code`).first();
  await sms.waitFor();
  await page.fill('#register-code', (await sms.textContent())!);
  await page.fill('#register-username', 'dora_e2e');
  await page.fill('#register-password', 'short');
  await page.click('#register-submit');
  await page.locator('#register-hint', { hasText: '8 to 64 characters' }).waitFor();
  await page.fill('#register-password', 'a-browser-password');
  await page.click('#register-submit');

  await page.locator('#login-dialog').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#register-dialog').isVisible(), false);
  assert.match((await page.locator('#login-notice').textContent()) ?? '', /Account dora_e2e created/);
  assert.equal(await page.locator('#login-phone').inputValue(), phone);

  await page.click('#tab-password');
  assert.equal(await page.locator('#login-account').inputValue(), phone);
  await page.fill('#login-password', 'a-browser-password');
  await page.click('#password-submit');
  await page.locator('#header-user').waitFor({ state: 'visible' });
  assert.equal(await page.locator('#header-user').textContent(), 'dora_e2e');
});

test('no page errors, no console errors, no missing files', { skip }, () => {
  assert.deepEqual(problems, []);
});
