import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { formatUsd } from '../web/src/money.js';
import {
  adminHeaders,
  createAccount,
  deliverWebhook,
  gatewayHeaders,
  paidEvent,
  PendingTopUp,
} from './helpers/api.js';
import {
  Browser,
  call,
  ConsoleApp,
  launchChromium,
  nextAddress,
  signUp,
  startConsoleApp,
} from './helpers/console.js';
import { startStripeStub, StripeStub } from './helpers/stripe-stub.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const PASSWORD = 'correct horse battery staple';
const CHECKOUT_ORIGIN = 'https://checkout.stripe.test';
const newEmail = (tag: string): string => `${tag}-${randomBytes(4).toString('hex')}@example.test`;

/** With CONSOLE_SCREENSHOTS=<dir>, every page the tests pass through is photographed there. */
async function shot(page: Page, name: string): Promise<void> {
  const dir = process.env.CONSOLE_SCREENSHOTS;
  if (!dir) return;
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`), fullPage: true });
}

/**
 * The customer console in Debian's Chromium (playwright-core), against the whole app on a
 * real port with the Stripe stub. Controls are found by the names a person reads.
 */
describe('customer console in a browser', () => {
  let stub: StripeStub;
  let app: ConsoleApp;
  let browser: Browser;
  const webhookSecret = `whsec_test_${randomBytes(16).toString('hex')}`;
  /** Requests the pages tried to send anywhere but the service (and the stubbed Checkout). */
  const thirdParty: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    stub = await startStripeStub();
    app = await startConsoleApp({
      STRIPE_SECRET_KEY: 'sk_test_stub_0123456789',
      STRIPE_WEBHOOK_SECRET: webhookSecret,
      STRIPE_API_BASE: stub.url,
      SIGNUP_TRIAL_CREDIT: '2.00',
    });
    browser = await launchChromium();
    await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], {
      origin: app.baseUrl,
    });
    // Nothing leaves the machine: the service answers, Checkout is a stub page, the rest fails.
    await browser.context.route('**/*', async (route) => {
      const url = route.request().url();
      if (url.startsWith(app.baseUrl)) return route.continue();
      if (url.startsWith(CHECKOUT_ORIGIN)) {
        return route.fulfill({
          contentType: 'text/html',
          body: '<!doctype html><title>Stripe Checkout (stub)</title><h1>Stripe Checkout (stub)</h1>',
        });
      }
      thirdParty.push(url);
      return route.abort();
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await stub?.close();
    expect(thirdParty).toEqual([]);
  });

  async function open(width = 1440, height = 900): Promise<Page> {
    const page = await browser.newPage(width, height);
    page.on('pageerror', (e) => pageErrors.push(e.message));
    return page;
  }

  const heading = (page: Page, name: string) => page.getByRole('heading', { level: 1, name });
  const nav = (page: Page, name: string) =>
    page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });

  async function signInThroughPage(page: Page, email: string, password = PASSWORD): Promise<void> {
    await page.goto(`${app.baseUrl}/console/sign-in`);
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await heading(page, 'Overview').waitFor();
  }

  const api = (page: Page, path: string) =>
    page.request
      .get(`${app.baseUrl}${path}`)
      .then(async (r) => ({ status: r.status(), body: await r.json() }));

  it('takes a new customer from sign-up to a token, billed and skipped usage, a Stripe top-up and a statement that matches the API', async () => {
    const page = await open();
    const email = 'ops@journey-imaging.example'; // each test file has a database of its own

    // Sign up.
    await page.goto(`${app.baseUrl}/console/`);
    await heading(page, 'Sign in').waitFor();
    await page.getByRole('link', { name: 'Create an account' }).click();
    await heading(page, 'Create an account').waitFor();
    await page.getByLabel('Name', { exact: true }).fill('Journey Imaging');
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await shot(page, 'sign-up');
    await page.getByRole('button', { name: 'Create account' }).click();
    await heading(page, 'Overview').waitFor();
    await expect(
      page.locator('.figure', { hasText: 'Balance' }).locator('.amount').textContent(),
    ).resolves.toBe('$2.00');
    for (const name of ['Overview', 'API tokens', 'Usage', 'Statements', 'Top up']) {
      await expect(nav(page, name).isVisible()).resolves.toBe(true);
    }

    // Create a token; the key is shown once, with Copy.
    await nav(page, 'API tokens').click();
    await heading(page, 'API tokens').waitFor();
    await page.getByText('No API tokens yet').waitFor();
    await page.getByRole('button', { name: 'Create token' }).click();
    await page.getByLabel('Name', { exact: true }).fill('production');
    await page.getByLabel('Group', { exact: true }).selectOption('default');
    await page.getByLabel('Spend limit', { exact: true }).fill('50');
    const nextYear = `${new Date().getUTCFullYear() + 1}-06-30`;
    await page.getByLabel('Expires', { exact: true }).fill(nextYear);
    await page.getByRole('button', { name: 'Create token' }).click();
    const keyField = page.getByLabel('New API key', { exact: true });
    await keyField.waitFor();
    const key = await keyField.inputValue();
    expect(key).toMatch(/^sk-/);
    await page.getByRole('button', { name: 'Copy', exact: true }).click();
    await page.getByText('Copied.').waitFor();
    await shot(page, 'tokens-new-key');
    await expect(page.evaluate<string>('navigator.clipboard.readText()')).resolves.toBe(key);
    const row = page.getByRole('row', { name: /production/ });
    await row.waitFor();
    await expect(row.textContent()).resolves.toContain(`${nextYear} 23:59 UTC`);
    await row.getByRole('button', { name: 'Revoke production' }).waitFor();

    // The gateway checks the key, then reports a billed and a failed request for it.
    const auth = await app.t.http
      .post('/v1/gateway/authorize')
      .set(...gatewayHeaders(app.t))
      .send({
        key,
        model: 'gpt-image-2',
        requestId: 'req-journey-charged',
        size: '1024x1024',
        quality: 'low',
      })
      .expect(200);
    expect(auth.body.allowed).toBe(true);
    const tokenId = auth.body.tokenId as string;
    const charged = await app.t.http
      .post('/v1/usage-events')
      .set(...gatewayHeaders(app.t))
      .send({
        requestId: 'req-journey-charged',
        tokenId,
        model: 'gpt-image-2',
        statusCode: 200,
        usage: { inputTokens: 1234, outputTokens: 4567 },
      })
      .expect(201);
    expect(charged.body.outcome).toBe('charged');
    expect(charged.body.charge).toBe('0.146882');
    const skipped = await app.t.http
      .post('/v1/usage-events')
      .set(...gatewayHeaders(app.t))
      .send({ requestId: 'req-journey-failed', tokenId, model: 'gpt-image-2', statusCode: 502 })
      .expect(201);
    expect(skipped.body).toEqual(
      expect.objectContaining({ outcome: 'skipped', reason: 'upstream_error' }),
    );

    // Usage shows both, the skipped one with its reason.
    await nav(page, 'Usage').click();
    await heading(page, 'Usage').waitFor();
    const chargedRow = page.getByRole('row', { name: /req-journey-charged/ });
    const failedRow = page.getByRole('row', { name: /req-journey-failed/ });
    await expect(chargedRow.textContent()).resolves.toMatch(/Charged.*\$0\.146882/);
    await expect(failedRow.textContent()).resolves.toMatch(
      /Skipped \(not billed\).*Upstream error.*\$0\.00/,
    );
    await shot(page, 'usage');
    await page.getByLabel('Outcome', { exact: true }).selectOption('skipped');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/outcome=skipped/);
    await page.getByRole('row', { name: /req-journey-failed/ }).waitFor();
    await expect(page.getByRole('row', { name: /req-journey-charged/ }).count()).resolves.toBe(0);
    const csvHref = await page.getByRole('link', { name: 'Download CSV' }).getAttribute('href');
    expect(csvHref).toBe('/v1/me/usage/export?outcome=skipped');
    const csv = await page.request.get(`${app.baseUrl}${csvHref}`);
    expect(csv.status()).toBe(200);
    const csvText = await csv.text();
    expect(csvText).toContain('req-journey-failed');
    expect(csvText).not.toContain('req-journey-charged');

    // Top up through Stripe Checkout (the stub), paid by a signed webhook.
    await nav(page, 'Top up').click();
    await heading(page, 'Top up').waitFor();
    const credit = page.getByLabel('Credit (USD)', { exact: true });
    await credit.fill('100');
    await page.getByText('You pay $85.00').waitFor();
    await shot(page, 'top-up');
    await page.getByText('No top-ups yet.').waitFor();
    const sessionsBefore = stub.sessions.size;
    await page.getByRole('button', { name: 'Pay with Stripe' }).click();
    await page.waitForURL(`${CHECKOUT_ORIGIN}/**`);
    expect(stub.sessions.size).toBe(sessionsBefore + 1);
    const session = [...stub.sessions.values()].pop();
    if (!session) throw new Error('no Checkout session');
    expect(page.url()).toBe(session.url);
    const topUpId = session.metadata.topUpId;
    const pending: PendingTopUp = {
      accountId: session.metadata.accountId,
      consoleKey: '',
      topUpId,
      price: '85.00',
      session,
      paymentIntent: `pi_test_${randomBytes(6).toString('hex')}`,
      chargeId: `ch_test_${randomBytes(6).toString('hex')}`,
    };
    await deliverWebhook(app.t, paidEvent(pending), webhookSecret).expect(200);

    // Stripe sends the customer back to the success link.
    expect(session.success_url.startsWith(`${app.baseUrl}/top-ups/${topUpId}`)).toBe(true);
    await page.goto(session.success_url.replace('{CHECKOUT_SESSION_ID}', session.id));
    await heading(page, 'Top-up').waitFor();
    await page.getByText('Paid: $100.00 was added to your balance.').waitFor();
    await shot(page, 'top-up-paid');
    expect(new URL(page.url()).pathname).toBe(`/console/top-ups/${topUpId}`);

    // Overview shows the new balance, every digit.
    await nav(page, 'Overview').click();
    await heading(page, 'Overview').waitFor();
    const me = await api(page, '/v1/me');
    expect(me.body.balance).toBe('101.853118');
    const balance = page.locator('.figure', { hasText: 'Balance' }).locator('.amount');
    await expect(balance.textContent()).resolves.toBe('$101.853118');
    await expect(
      page.locator('.figure', { hasText: 'Usage this month' }).locator('.amount').textContent(),
    ).resolves.toBe('$0.146882');
    await expect(page.getByText('15% off top-ups').isVisible()).resolves.toBe(true);
    await expect(page.getByRole('img', { name: /Daily usage charge/ }).isVisible()).resolves.toBe(
      true,
    );
    // The README's picture: refreshed with UPDATE_SCREENSHOTS=1 (a normal run changes no file).
    if (process.env.UPDATE_SCREENSHOTS === '1') {
      mkdirSync(join(ROOT, 'docs'), { recursive: true });
      await page.screenshot({ path: join(ROOT, 'docs', 'console-overview.png') });
    }
    await shot(page, 'overview');

    // The statement's closing balance is the API's, to the digit.
    await nav(page, 'Statements').click();
    await heading(page, 'Statements').waitFor();
    const period = new Date().toISOString().slice(0, 7);
    await expect(page.getByLabel('Month', { exact: true }).inputValue()).resolves.toBe(period);
    const statement = await api(page, `/v1/me/statements/${period}`);
    const line = (label: string) =>
      page
        .locator('.line', { has: page.locator('dt', { hasText: new RegExp(`^${label}$`) }) })
        .locator('.amount');
    await expect(line('Closing balance').textContent()).resolves.toBe(
      formatUsd(statement.body.closingBalance),
    );
    await expect(line('Closing balance').textContent()).resolves.toBe('$101.853118');
    await expect(line('Opening balance').textContent()).resolves.toBe('$0.00');
    await expect(line('Top-ups').textContent()).resolves.toBe('$100.00');
    await expect(line('Usage').textContent()).resolves.toBe('$0.146882');
    await expect(line('Refunds').textContent()).resolves.toBe('$0.00');
    await expect(line('Adjustments').textContent()).resolves.toBe('$2.00');
    await shot(page, 'statements');
    await page.close();
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('says so when a sign-in fails, and stays on the sign-in page', async () => {
    const u = await signUp(app, 'Failing Co', newEmail('failing'));
    const page = await open();
    await page.goto(`${app.baseUrl}/console/sign-in`);
    await page.getByLabel('Email', { exact: true }).fill(u.email);
    await page.getByLabel('Password', { exact: true }).fill('not the password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toBe(
      'Email or password is wrong.',
    );
    await shot(page, 'sign-in-failed');
    await expect(heading(page, 'Sign in').isVisible()).resolves.toBe(true);
    await expect(page.getByLabel('Password', { exact: true }).inputValue()).resolves.toBe('');
    await page.close();
  });

  it('signs out: the session ends on the server and pages send you to sign-in', async () => {
    const u = await signUp(app, 'Leaving Co', newEmail('leaving'));
    const page = await open();
    await signInThroughPage(page, u.email);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await heading(page, 'Sign in').waitFor();
    await page.getByText('You are signed out.').waitFor();
    expect((await api(page, '/v1/me')).status).toBe(401);
    await page.goto(`${app.baseUrl}/console/tokens`);
    await heading(page, 'Sign in').waitFor();
    expect(new URL(page.url()).searchParams.get('next')).toBe('/tokens');
    // Signing in again goes back to where you were going.
    await page.getByLabel('Email', { exact: true }).fill(u.email);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await heading(page, 'API tokens').waitFor();
    await page.close();
  });

  it('sends an ended session back to sign-in with a reason', async () => {
    const u = await signUp(app, 'Rotated Co', newEmail('rotated'));
    const page = await open();
    await signInThroughPage(page, u.email);
    // An admin rotates the account's console key: its console sessions end too.
    await app.t.http
      .post(`/v1/admin/accounts/${u.accountId}/console-key`)
      .set(...adminHeaders(app.t))
      .expect(201);
    await nav(page, 'Usage').click();
    await heading(page, 'Sign in').waitFor();
    await page.getByText('Your session has ended. Sign in again to continue.').waitFor();
    await page.close();
  });

  it('lets an invited person set a password from the link and sign in to the account', async () => {
    const account = await createAccount(app.t, 'Invited Studio');
    const email = newEmail('invited');
    const inv = await app.t.http
      .post(`/v1/admin/accounts/${account.id}/invite`)
      .set(...adminHeaders(app.t))
      .send({ email })
      .expect(201);
    const page = await open();
    await page.goto(inv.body.inviteUrl as string);
    await heading(page, 'Set your password').waitFor();
    await page.getByText('You were invited to Invited Studio.').waitFor();
    await expect(page.getByLabel('Email', { exact: true }).inputValue()).resolves.toBe(email);
    await page.getByLabel('Password', { exact: true }).fill('an invited password');
    await page.getByRole('button', { name: 'Set password' }).click();
    await heading(page, 'Overview').waitFor();
    expect(page.url()).not.toContain('token=');
    expect((await api(page, '/v1/me')).body.id).toBe(account.id);
    // The link works once.
    await page.goto(inv.body.inviteUrl as string);
    await page
      .getByText('This link is invalid, already used or expired.', { exact: false })
      .waitFor();
    await page.close();
  });

  it("shows a second customer none of the first one's data", async () => {
    // The first customer, with a token, usage and a top-up.
    const first = await signUp(app, 'First Tenant', newEmail('first'));
    const token = await call(app.baseUrl, 'POST', '/v1/me/tokens', {
      body: { name: 'first-secret-token' },
      cookie: first.cookie,
    });
    await app.t.http
      .post('/v1/usage-events')
      .set(...gatewayHeaders(app.t))
      .send({
        requestId: 'req-first-tenant',
        tokenId: token.body.id,
        model: 'gpt-image-2-all',
        statusCode: 200,
      })
      .expect(201);
    const topUp = await call(app.baseUrl, 'POST', '/v1/me/top-ups', {
      body: { credit: '40.00' },
      cookie: first.cookie,
      headers: { 'Idempotency-Key': randomBytes(8).toString('hex') },
    });
    expect(topUp.status).toBe(201);

    const second = await signUp(app, 'Second Tenant', newEmail('second'));
    const page = await open();
    await signInThroughPage(page, second.email);
    await expect(
      page.locator('.figure', { hasText: 'Balance' }).locator('.amount').textContent(),
    ).resolves.toBe('$2.00');
    await nav(page, 'API tokens').click();
    await page.getByText('No API tokens yet').waitFor();
    await nav(page, 'Usage').click();
    await page.getByText('No usage yet.').waitFor();
    await nav(page, 'Top up').click();
    await page.getByText('No top-ups yet.').waitFor();
    await page.goto(`${app.baseUrl}/console/top-ups/${topUp.body.id as string}`);
    await page.getByText('There is no such top-up in your account.').waitFor();
    const text = await page.locator('body').innerText();
    expect(text).not.toContain('$40.00');
    expect(text).not.toContain('First Tenant');
    await page.goto(`${app.baseUrl}/console/usage?tokenId=${token.body.id as string}`);
    await page.getByText('No usage matches these filters.').waitFor();
    expect(await page.locator('body').innerText()).not.toContain('req-first-tenant');
    await page.close();
  });

  it('creates a token with the keyboard alone', async () => {
    const u = await signUp(app, 'Keyboard Co', newEmail('keys'));
    const page = await open();
    await page.goto(`${app.baseUrl}/console/sign-in`);
    // Page code as strings: the tests compile without the DOM library.
    const focused = () =>
      page.evaluate<{ tag: string; text: string }>(`(() => {
        const el = document.activeElement;
        const label = el && el.id ? document.querySelector('label[for="' + el.id + '"]') : null;
        return { tag: el ? el.tagName : '', text: ((label || el || {}).textContent || '').trim() };
      })()`);
    async function tabTo(text: string, max = 40): Promise<void> {
      for (let i = 0; i < max; i++) {
        await page.keyboard.press('Tab');
        if ((await focused()).text === text) return;
      }
      throw new Error(`Tab never reached ${text}`);
    }
    await tabTo('Email');
    await page.keyboard.type(u.email);
    await page.keyboard.press('Tab');
    expect((await focused()).text).toBe('Password');
    await page.keyboard.type(PASSWORD);
    await page.keyboard.press('Enter');
    await heading(page, 'Overview').waitFor();

    await tabTo('API tokens');
    await page.keyboard.press('Enter');
    await heading(page, 'API tokens').waitFor();
    await tabTo('Create token');
    await page.keyboard.press('Enter');
    // The form opens with the focus on its first field.
    await page.locator('input[name="name"]:focus').waitFor();
    await page.keyboard.type('keyboard-made');
    await page.keyboard.press('Tab');
    expect((await focused()).text).toBe('Group');
    await page.keyboard.press('ArrowDown'); // default → image2Enterprise
    await page.keyboard.press('Tab');
    expect((await focused()).text).toBe('Spend limit');
    await page.keyboard.type('25');
    await page.keyboard.press('Enter');

    const keyInput = page.locator('input:focus');
    await page.getByLabel('New API key', { exact: true }).waitFor();
    expect(await keyInput.inputValue()).toMatch(/^sk-/);
    expect((await focused()).text).toBe('New API key');
    await page.keyboard.press('Tab');
    expect((await focused()).text).toBe('Copy');
    await page.keyboard.press('Enter');
    await page.getByText('Copied.').waitFor();

    const tokens = await api(page, '/v1/me/tokens');
    expect(tokens.body.data).toEqual([
      expect.objectContaining({
        name: 'keyboard-made',
        group: 'image2Enterprise',
        spendLimit: '25.00',
        status: 'active',
      }),
    ]);
    await page.close();
  });

  it('fits a 375 px wide phone: no sideways scrolling, every navigation link on screen', async () => {
    const u = await signUp(app, 'Narrow Screen Company With A Long Name', newEmail('narrow'));
    await call(app.baseUrl, 'POST', '/v1/me/tokens', { body: { name: 'phone' }, cookie: u.cookie });
    const page = await open(375, 812);
    await signInThroughPage(page, u.email);
    for (const [name, title] of [
      ['Overview', 'Overview'],
      ['API tokens', 'API tokens'],
      ['Usage', 'Usage'],
      ['Statements', 'Statements'],
      ['Top up', 'Top up'],
    ]) {
      await nav(page, name).click();
      await heading(page, title).waitFor();
      await page.waitForLoadState('networkidle');
      const width = await page.evaluate<number>('document.documentElement.scrollWidth');
      expect({ page: title, width }).toEqual({ page: title, width: 375 });
      for (const link of ['Overview', 'API tokens', 'Usage', 'Statements', 'Top up']) {
        const box = await nav(page, link).boundingBox();
        expect(box).not.toBeNull();
        expect((box?.x ?? -1) >= 0 && (box?.x ?? 0) + (box?.width ?? 0) <= 375).toBe(true);
      }
      await expect(page.getByRole('button', { name: 'Sign out' }).isVisible()).resolves.toBe(true);
      await shot(page, `375-${title.toLowerCase().replace(/ /g, '-')}`);
    }
    // Tables become one card per row: a row's Revoke button is on screen, not scrolled away.
    await nav(page, 'API tokens').click();
    const revoke = page.getByRole('button', { name: 'Revoke phone' });
    await revoke.waitFor();
    const box = await revoke.boundingBox();
    expect((box?.x ?? -1) >= 0 && (box?.x ?? 0) + (box?.width ?? 0) <= 375).toBe(true);
    await page.close();
  });

  it('downloads little on a first visit: every byte from the service, compressed', async () => {
    await browser.context.clearCookies();
    const page = await open();
    const seen: { url: string; bytes: number; encoding: string | undefined }[] = [];
    page.on('requestfinished', (req) => {
      void (async () => {
        const res = await req.response();
        const sizes = await req.sizes();
        seen.push({
          url: req.url(),
          bytes: sizes.responseBodySize + sizes.responseHeadersSize,
          encoding: res ? (await res.allHeaders())['content-encoding'] : undefined,
        });
      })();
    });
    await page.goto(`${app.baseUrl}/console/`);
    await heading(page, 'Sign in').waitFor();
    await page.waitForLoadState('networkidle');
    await page.waitForTimeout(200);
    expect(seen.every((r) => r.url.startsWith(app.baseUrl))).toBe(true);
    const script = seen.find((r) => r.url.endsWith('.js'));
    expect(script?.encoding).toMatch(/^(br|gzip)$/);
    const total = seen.reduce((n, r) => n + r.bytes, 0);
    // The whole first load, headers included: a budget, well above today's figure (README).
    expect(total).toBeLessThan(40_000);
    if (process.env.CONSOLE_SCREENSHOTS) {
      process.stdout.write(`first load: ${total} bytes\n${JSON.stringify(seen, null, 1)}\n`);
    }
    await page.close();
  });

  it('answers a 429 on sign-in with when to retry', async () => {
    const page = await open();
    const email = newEmail('locked');
    // Ten failures for this email from elsewhere, then the browser tries.
    for (let i = 0; i < 10; i++) {
      await call(app.baseUrl, 'POST', '/v1/console/sign-in', {
        body: { email, password: `wrong ${i}` },
        from: nextAddress(),
      });
    }
    await page.goto(`${app.baseUrl}/console/sign-in`);
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill('whatever it is');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toMatch(
      /^Too many attempts\. Try again in \d+ seconds?\.$/,
    );
    await page.close();
  });
});
