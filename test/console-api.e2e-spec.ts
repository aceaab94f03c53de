import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { adminHeaders, createAccount, expectErrorBody, ISO } from './helpers/api.js';
import {
  call,
  ConsoleApp,
  nextAddress,
  sessionCookieOf,
  setCookies,
  signUp,
  startConsoleApp,
} from './helpers/console.js';
import { bearer } from './helpers/test-app.js';

const PASSWORD = 'correct horse battery staple';
const newEmail = (tag = 'user'): string => `${tag}-${randomBytes(4).toString('hex')}@Example.test`;

describe('customer console API', () => {
  let app: ConsoleApp;
  const url = () => app.baseUrl;

  beforeAll(async () => {
    app = await startConsoleApp({ SIGNUP_TRIAL_CREDIT: '5.00' });
  });
  afterAll(async () => {
    await app.close();
  });

  const admin = (method: string, path: string, body?: unknown) =>
    call(url(), method, path, { body, headers: { Authorization: adminHeaders(app.t)[1] } });

  describe('sign-up', () => {
    it('creates an account and its login, books the trial credit as an adjustment and signs in', async () => {
      const email = newEmail('founder');
      const res = await call(url(), 'POST', '/v1/console/sign-up', {
        body: { name: 'Founder Co', email, password: PASSWORD },
        from: nextAddress(),
      });
      expect(res.status).toBe(201);
      expect(res.body).toEqual({
        email: email.toLowerCase(),
        expiresAt: expect.stringMatching(ISO),
        account: expect.objectContaining({ name: 'Founder Co', balance: '5.00', status: 'active' }),
      });
      const [cookie] = setCookies(res);
      expect(cookie).toMatch(
        /^console_session=[A-Za-z0-9_-]{43}; Path=\/v1; Max-Age=\d+; HttpOnly; SameSite=Lax$/,
      );
      expect(cookie).not.toContain('Secure'); // the public URL here is http

      const me = await call(url(), 'GET', '/v1/me', { cookie: sessionCookieOf(res) });
      expect(me.status).toBe(200);
      expect(me.body.id).toBe(res.body.account.id);
      const ledger = await call(url(), 'GET', '/v1/me/ledger', { cookie: sessionCookieOf(res) });
      expect(ledger.body.data).toEqual([
        expect.objectContaining({ type: 'adjustment', amount: '5.00', balanceAfter: '5.00' }),
      ]);
      // Only a hash of the token is stored, and the password only as scrypt.
      const token = sessionCookieOf(res).split('=')[1];
      const stored = await app.t.sql.query(
        `SELECT s.token_hash, l.password_hash FROM console_sessions s JOIN console_logins l ON l.id = s.login_id
         WHERE s.account_id = $1`,
        [res.body.account.id],
      );
      expect(stored.rows).toHaveLength(1);
      expect(stored.rows[0].token_hash).not.toContain(token);
      expect(stored.rows[0].password_hash).toMatch(/^scrypt\$/);
      expect(stored.rows[0].password_hash).not.toContain(PASSWORD);
    });

    it('refuses a second account for the same email, whatever its case, and leaves nothing behind', async () => {
      const email = newEmail('twice');
      await signUp(app, 'First', email);
      const before = await app.t.sql.query(`SELECT count(*)::int AS n FROM accounts`);
      const res = await call(url(), 'POST', '/v1/console/sign-up', {
        body: { name: 'Second', email: email.toUpperCase(), password: PASSWORD },
        from: nextAddress(),
      });
      expectErrorBody(res as never, 409, 'conflict');
      const after = await app.t.sql.query(`SELECT count(*)::int AS n FROM accounts`);
      expect(after.rows[0].n).toBe(before.rows[0].n);
    });

    it('names every bad field: a password under 10 characters, an email that is not one', async () => {
      const res = await call(url(), 'POST', '/v1/console/sign-up', {
        body: { name: '', email: 'not-an-email', password: 'short' },
        from: nextAddress(),
      });
      expectErrorBody(res as never, 400, 'validation_failed');
      const fields = [
        ...new Set((res.body.error.details as { field: string }[]).map((d) => d.field)),
      ];
      expect(fields.sort()).toEqual(['email', 'name', 'password']);
      expect(JSON.stringify(res.body)).not.toContain('short');
    });

    it('refuses a console POST without X-Requested-With (CSRF)', async () => {
      const res = await call(url(), 'POST', '/v1/console/sign-up', {
        body: { name: 'X', email: newEmail(), password: PASSWORD },
        csrf: false,
        from: nextAddress(),
      });
      expectErrorBody(res as never, 403, 'forbidden');
    });

    it('answers 429 with Retry-After after 10 sign-ups from one address in a minute', async () => {
      const from = nextAddress();
      const statuses: number[] = [];
      let last = null as Awaited<ReturnType<typeof call>> | null;
      for (let i = 0; i < 11; i++) {
        last = await call(url(), 'POST', '/v1/console/sign-up', {
          body: { name: `Bulk ${i}`, email: newEmail('bulk'), password: PASSWORD },
          from,
        });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([...Array(10).fill(201), 429]);
      expect(Number(last?.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(last?.headers['retry-after'])).toBeLessThanOrEqual(60);
      expect(last?.body.error.code).toBe('too_many_attempts');
    });
  });

  describe('sign-in', () => {
    it('sets a fresh session cookie for the right password', async () => {
      const u = await signUp(app, 'Signer', newEmail('signer'));
      const res = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email: u.email.toUpperCase(), password: PASSWORD },
        from: nextAddress(),
      });
      expect(res.status).toBe(200);
      expect(res.body.account.id).toBe(u.accountId);
      expect(sessionCookieOf(res)).not.toBe(u.cookie);
      expect(res.headers['cache-control']).toBe('no-store');
    });

    it('answers the same 401 for an unknown email and a wrong password', async () => {
      const u = await signUp(app, 'Same', newEmail('same'));
      const wrong = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email: u.email, password: 'not the password' },
        from: nextAddress(),
      });
      const unknown = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email: newEmail('nobody'), password: 'not the password' },
        from: nextAddress(),
      });
      expectErrorBody(wrong as never, 401, 'unauthorized');
      expect(unknown.status).toBe(401);
      expect(unknown.body).toEqual(wrong.body);
      expect(setCookies(wrong)).toEqual([]);
    });

    it('answers 429 after 10 failures for one email, from any address, even with the right password', async () => {
      const u = await signUp(app, 'Target', newEmail('target'));
      const statuses: number[] = [];
      for (let i = 0; i < 10; i++) {
        const r = await call(url(), 'POST', '/v1/console/sign-in', {
          body: { email: u.email, password: `guess number ${i}` },
          from: nextAddress(),
        });
        statuses.push(r.status);
      }
      expect(statuses).toEqual(Array(10).fill(401));
      const blocked = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email: u.email, password: PASSWORD },
        from: nextAddress(),
      });
      expectErrorBody(blocked as never, 429, 'too_many_attempts');
      const retry = Number(blocked.headers['retry-after']);
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
      expect(blocked.body.error.message).toContain(`${retry} second`);
      // Counted in PostgreSQL, so every instance sees the same count.
      const rows = await app.t.sql.query(
        `SELECT attempts FROM console_throttle WHERE key LIKE 'email:%' ORDER BY attempts DESC LIMIT 1`,
      );
      expect(rows.rows[0].attempts).toBeGreaterThan(10);
    });

    it('answers 429 after 10 failures from one address, whatever the emails', async () => {
      const from = nextAddress();
      const statuses: number[] = [];
      for (let i = 0; i < 11; i++) {
        const r = await call(url(), 'POST', '/v1/console/sign-in', {
          body: { email: newEmail('spray'), password: 'not the password' },
          from,
        });
        statuses.push(r.status);
      }
      expect(statuses).toEqual([...Array(10).fill(401), 429]);
      // Another address is not held back by this one.
      const other = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email: newEmail('spray'), password: 'not the password' },
        from: nextAddress(),
      });
      expect(other.status).toBe(401);
    });

    it('counts every one of many concurrent failures (no check-then-insert race)', async () => {
      const u = await signUp(app, 'Burst', newEmail('burst'));
      const results = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          call(url(), 'POST', '/v1/console/sign-in', {
            body: { email: u.email, password: `burst guess ${i}` },
            from: nextAddress(),
          }),
        ),
      );
      const by = (s: number) => results.filter((r) => r.status === s).length;
      expect(by(401)).toBe(10);
      expect(by(429)).toBe(15);
    });
  });

  describe('sessions on the customer API', () => {
    it('accept the cookie like the console key, and refuse changes without X-Requested-With', async () => {
      const u = await signUp(app, 'Maker', newEmail('maker'));
      const noHeader = await call(url(), 'POST', '/v1/me/tokens', {
        body: { name: 'web' },
        cookie: u.cookie,
        csrf: false,
      });
      expectErrorBody(noHeader as never, 403, 'forbidden');
      expect(noHeader.body.error.message).toContain('X-Requested-With');
      const ok = await call(url(), 'POST', '/v1/me/tokens', {
        body: { name: 'web' },
        cookie: u.cookie,
      });
      expect(ok.status).toBe(201);
      expect(ok.body.key).toMatch(/^sk-/);
      // Reads need no header.
      const list = await call(url(), 'GET', '/v1/me/tokens', { cookie: u.cookie, csrf: false });
      expect(list.status).toBe(200);
      expect(list.body.data).toHaveLength(1);
    });

    it('stand for a customer only: admin and gateway routes answer 403', async () => {
      const u = await signUp(app, 'Curious', newEmail('curious'));
      const res = await call(url(), 'GET', '/v1/admin/accounts', { cookie: u.cookie });
      expectErrorBody(res as never, 403, 'forbidden');
      const gw = await call(url(), 'POST', '/v1/gateway/authorize', {
        body: { key: 'sk-x', model: 'gpt-image-2' },
        cookie: u.cookie,
      });
      expect(gw.status).toBe(403);
    });

    it('lose to an Authorization header: a bad key with a good cookie is 401', async () => {
      const u = await signUp(app, 'Both', newEmail('both'));
      const res = await call(url(), 'GET', '/v1/me', {
        cookie: u.cookie,
        headers: { Authorization: 'Bearer ck_not_a_key' },
      });
      expect(res.status).toBe(401);
    });

    it('answer 401 for a made-up cookie', async () => {
      const res = await call(url(), 'GET', '/v1/me', { cookie: 'console_session=made-up-token' });
      expectErrorBody(res as never, 401, 'unauthorized');
    });

    it('report the signed-in login at GET /v1/console/session', async () => {
      const u = await signUp(app, 'Who', newEmail('who'));
      const res = await call(url(), 'GET', '/v1/console/session', { cookie: u.cookie });
      expect(res.status).toBe(200);
      expect(res.body).toEqual({
        email: u.email,
        expiresAt: expect.stringMatching(ISO),
        account: expect.objectContaining({ id: u.accountId, name: 'Who' }),
      });
      const none = await call(url(), 'GET', '/v1/console/session');
      expect(none.status).toBe(401);
    });
  });

  describe('ending sessions', () => {
    it('sign-out ends the session and clears the cookie', async () => {
      const u = await signUp(app, 'Leaver', newEmail('leaver'));
      const out = await call(url(), 'POST', '/v1/console/sign-out', { cookie: u.cookie });
      expect(out.status).toBe(204);
      expect(setCookies(out)[0]).toMatch(
        /^console_session=; Path=\/v1; Max-Age=0; HttpOnly; SameSite=Lax/,
      );
      const after = await call(url(), 'GET', '/v1/me', { cookie: u.cookie });
      expect(after.status).toBe(401);
      // Signing out again (no session) is still fine.
      expect((await call(url(), 'POST', '/v1/console/sign-out', { cookie: u.cookie })).status).toBe(
        204,
      );
    });

    it('sign-out everywhere ends every session of the login', async () => {
      const u = await signUp(app, 'Everywhere', newEmail('everywhere'));
      const second = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email: u.email, password: PASSWORD },
        from: nextAddress(),
      });
      const other = sessionCookieOf(second);
      await call(url(), 'POST', '/v1/console/sign-out', {
        cookie: u.cookie,
        body: { everywhere: true },
      });
      expect((await call(url(), 'GET', '/v1/me', { cookie: other })).status).toBe(401);
    });

    it('rotating the console key ends every session of the account', async () => {
      const u = await signUp(app, 'Rotated', newEmail('rotated'));
      const rotated = await admin('POST', `/v1/admin/accounts/${u.accountId}/console-key`);
      expect(rotated.status).toBe(201);
      expect((await call(url(), 'GET', '/v1/me', { cookie: u.cookie })).status).toBe(401);
      // The new key works; so does signing in again.
      const me = await call(url(), 'GET', '/v1/me', {
        headers: { Authorization: `Bearer ${rotated.body.consoleKey}` },
      });
      expect(me.status).toBe(200);
      const again = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email: u.email, password: PASSWORD },
        from: nextAddress(),
      });
      expect(again.status).toBe(200);
    });

    it('a suspended account still reads through its session but changes nothing', async () => {
      const u = await signUp(app, 'Paused', newEmail('paused'));
      const patched = await admin('PATCH', `/v1/admin/accounts/${u.accountId}`, {
        status: 'suspended',
      });
      expect(patched.status).toBe(200);
      const me = await call(url(), 'GET', '/v1/me', { cookie: u.cookie });
      expect(me.status).toBe(200);
      expect(me.body.status).toBe('suspended');
      const create = await call(url(), 'POST', '/v1/me/tokens', {
        body: { name: 'x' },
        cookie: u.cookie,
      });
      expectErrorBody(create as never, 403, 'account_suspended');
    });
  });

  describe('invites', () => {
    it('give a one-time link, valid 72 hours, that sets the password and signs in', async () => {
      const account = await createAccount(app.t, 'Invited Co');
      const email = newEmail('invitee');
      const inv = await admin('POST', `/v1/admin/accounts/${account.id}/invite`, { email });
      expect(inv.status).toBe(201);
      expect(inv.body).toEqual({
        accountId: account.id,
        email: email.toLowerCase(),
        inviteUrl: expect.stringMatching(
          new RegExp(`^${url()}/console/set-password#token=[A-Za-z0-9_-]{43}$`),
        ),
        expiresAt: expect.stringMatching(ISO),
      });
      const hours = (Date.parse(inv.body.expiresAt) - Date.now()) / 3_600_000;
      expect(hours).toBeGreaterThan(71.9);
      expect(hours).toBeLessThanOrEqual(72);
      const token = new URL(inv.body.inviteUrl).hash.replace('#token=', '');
      // Audited with the invite, without the link.
      const audit = await admin('GET', `/v1/admin/audit-log?target=account:${account.id}`);
      expect(audit.body.data).toEqual([
        expect.objectContaining({
          actor: 'admin',
          action: 'account.invite',
          after: { email: email.toLowerCase(), expiresAt: inv.body.expiresAt },
        }),
        expect.objectContaining({ actor: 'admin', action: 'account.create' }),
      ]);
      expect(JSON.stringify(audit.body)).not.toContain(token);

      const info = await call(url(), 'POST', '/v1/console/invites/lookup', { body: { token } });
      expect(info.body).toEqual({
        email: email.toLowerCase(),
        accountName: 'Invited Co',
        expiresAt: inv.body.expiresAt,
      });

      const set = await call(url(), 'POST', '/v1/console/set-password', {
        body: { token, password: PASSWORD },
      });
      expect(set.status).toBe(200);
      expect(set.body.account.id).toBe(account.id);
      const me = await call(url(), 'GET', '/v1/me', { cookie: sessionCookieOf(set) });
      expect(me.body.id).toBe(account.id);

      const again = await call(url(), 'POST', '/v1/console/set-password', {
        body: { token, password: 'another password here' },
      });
      expectErrorBody(again as never, 400, 'validation_failed');
      expect(again.body.error.details[0].field).toBe('token');

      const signIn = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email, password: PASSWORD },
        from: nextAddress(),
      });
      expect(signIn.status).toBe(200);
      const stored = await app.t.sql.query(
        `SELECT token_hash FROM console_invites WHERE account_id = $1`,
        [account.id],
      );
      expect(stored.rows[0].token_hash).not.toBe(token);
    });

    it('reset the password of an email that already signs in there, ending its sessions', async () => {
      const u = await signUp(app, 'Forgetful', newEmail('forgetful'));
      const inv = await admin('POST', `/v1/admin/accounts/${u.accountId}/invite`, {
        email: u.email,
      });
      const token = new URL(inv.body.inviteUrl).hash.replace('#token=', '');
      const set = await call(url(), 'POST', '/v1/console/set-password', {
        body: { token, password: 'a brand new password' },
      });
      expect(set.status).toBe(200);
      expect((await call(url(), 'GET', '/v1/me', { cookie: u.cookie })).status).toBe(401);
      const old = await call(url(), 'POST', '/v1/console/sign-in', {
        body: { email: u.email, password: PASSWORD },
        from: nextAddress(),
      });
      expect(old.status).toBe(401);
    });

    it('refuse an email that signs in to another account, an unknown account and a customer caller', async () => {
      const u = await signUp(app, 'Owner', newEmail('owner'));
      const other = await createAccount(app.t, 'Other');
      const taken = await admin('POST', `/v1/admin/accounts/${other.id}/invite`, {
        email: u.email,
      });
      expectErrorBody(taken as never, 409, 'conflict');
      const unknown = await admin(
        'POST',
        `/v1/admin/accounts/00000000-0000-4000-8000-000000000000/invite`,
        {
          email: newEmail(),
        },
      );
      expect(unknown.status).toBe(404);
      const asCustomer = await call(url(), 'POST', `/v1/admin/accounts/${u.accountId}/invite`, {
        body: { email: newEmail() },
        cookie: u.cookie,
      });
      expect(asCustomer.status).toBe(403);
      const bad = await admin('POST', `/v1/admin/accounts/${other.id}/invite`, { email: 'nope' });
      expectErrorBody(bad as never, 400, 'validation_failed');
    });

    it('a newer invite for the same email replaces the older link', async () => {
      const account = await createAccount(app.t, 'Twice Invited');
      const email = newEmail('twice-invited');
      const first = await admin('POST', `/v1/admin/accounts/${account.id}/invite`, { email });
      await admin('POST', `/v1/admin/accounts/${account.id}/invite`, { email });
      const token = new URL(first.body.inviteUrl).hash.replace('#token=', '');
      const res = await call(url(), 'POST', '/v1/console/set-password', {
        body: { token, password: PASSWORD },
      });
      expect(res.status).toBe(400);
    });
  });

  describe('customer reads the console needs', () => {
    it('lists only selectable groups', async () => {
      const hidden = `hidden${randomBytes(3).toString('hex')}`;
      await admin('POST', '/v1/admin/groups', { name: hidden, ratio: '2.0' });
      const u = await signUp(app, 'Grouper', newEmail('grouper'));
      const res = await call(url(), 'GET', '/v1/me/groups', { cookie: u.cookie });
      expect(res.status).toBe(200);
      const names = (res.body.data as { name: string }[]).map((g) => g.name);
      expect(names).toEqual(expect.arrayContaining(['default', 'image2Enterprise']));
      expect(names).not.toContain(hidden);
      expect(res.body.data.find((g: { name: string }) => g.name === 'default')).toEqual({
        name: 'default',
        ratio: '1.0',
        description: 'Default group',
        isDefault: true,
      });
    });

    it('prices a top-up exactly as POST /v1/me/top-ups would, and lists the running promotion', async () => {
      const u = await signUp(app, 'Shopper', newEmail('shopper'));
      const price = await call(url(), 'GET', '/v1/me/top-up-price?credit=100.00', {
        cookie: u.cookie,
      });
      expect(price.body).toEqual({
        credit: '100.00',
        price: '85.00',
        currency: 'USD',
        promotion: expect.objectContaining({ name: '15% off top-ups', rate: '0.85' }),
      });
      const odd = await call(url(), 'GET', '/v1/me/top-up-price?credit=10.01', {
        cookie: u.cookie,
      });
      expect(odd.body.price).toBe('8.51'); // 8.5085 half-up
      const bad = await call(url(), 'GET', '/v1/me/top-up-price?credit=0.5', { cookie: u.cookie });
      expectErrorBody(bad as never, 400, 'validation_failed');
      const promos = await call(url(), 'GET', '/v1/me/promotions', { cookie: u.cookie });
      expect(promos.body.data).toEqual([
        expect.objectContaining({
          name: '15% off top-ups',
          rate: '0.85',
          minCredit: '0.00',
          endsAt: null,
        }),
      ]);
      // The console key reads them too.
      const account = await createAccount(app.t, 'Keyed');
      const viaKey = await call(url(), 'GET', '/v1/me/groups', {
        headers: { Authorization: bearer(account.consoleKey)[1] },
      });
      expect(viaKey.status).toBe(200);
    });
  });

  describe('the console pages', () => {
    it('are served under /console with a strict CSP, the app answering every page path', async () => {
      const index = await call(url(), 'GET', '/console/');
      expect(index.status).toBe(200);
      expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(index.headers['content-security-policy']).toContain("default-src 'self'");
      expect(index.headers['cache-control']).toBe('no-cache');
      const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(index.text)?.[1];
      expect(script).toBeDefined();
      const js = await call(url(), 'GET', script as string, {
        headers: { 'Accept-Encoding': 'gzip' },
      });
      expect(js.status).toBe(200);
      expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(js.headers['content-encoding']).toBe('gzip');
      const deep = await call(url(), 'GET', '/console/statements?month=2026-01');
      expect(deep.text).toBe(index.text);
      expect((await call(url(), 'GET', '/console/assets/missing.js')).status).toBe(404);
      const bare = await call(url(), 'GET', '/console');
      expect(bare.status).toBe(301);
      expect(bare.headers.location).toBe('/console/');
    });

    it("send Stripe Checkout's return link to the console's top-up page", async () => {
      const id = '0b8a4c1e-5a55-4a8e-9f0e-0a1b2c3d4e5f';
      const res = await call(url(), 'GET', `/top-ups/${id}?checkout=success&session_id=cs_test_1`);
      expect(res.status).toBe(302);
      expect(res.headers.location).toBe(
        `/console/top-ups/${id}?checkout=success&session_id=cs_test_1`,
      );
    });
  });
});

describe('customer console API behind https, with sign-up disabled', () => {
  let app: ConsoleApp;

  beforeAll(async () => {
    app = await startConsoleApp({
      SIGNUP_ENABLED: 'false',
      PUBLIC_BASE_URL: 'https://billing.example.test',
    });
  });
  afterAll(async () => {
    await app.close();
  });

  it('refuses sign-up', async () => {
    const res = await call(app.baseUrl, 'POST', '/v1/console/sign-up', {
      body: { name: 'Nope', email: newEmail(), password: PASSWORD },
      from: nextAddress(),
    });
    expectErrorBody(res as never, 403, 'forbidden');
  });

  it('invites with links on the public URL and sets Secure session cookies', async () => {
    const account = await createAccount(app.t, 'Secure Co');
    const inv = await call(app.baseUrl, 'POST', `/v1/admin/accounts/${account.id}/invite`, {
      body: { email: newEmail('secure') },
      headers: { Authorization: adminHeaders(app.t)[1] },
    });
    expect(inv.body.inviteUrl).toMatch(
      /^https:\/\/billing\.example\.test\/console\/set-password#token=/,
    );
    const token = new URL(inv.body.inviteUrl).hash.replace('#token=', '');
    const set = await call(app.baseUrl, 'POST', '/v1/console/set-password', {
      body: { token, password: PASSWORD },
    });
    expect(set.status).toBe(200);
    expect(setCookies(set)[0]).toMatch(/; HttpOnly; SameSite=Lax; Secure$/);
  });
});
