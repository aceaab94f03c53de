import {
  ApiError,
  describeError,
  get,
  post,
  type Page,
  type TopUp,
  type TopUpPrice,
} from '../api.js';
import type { View } from '../app.js';
import { formatTime } from '../dates.js';
import { field, h, notice, replace, table } from '../dom.js';
import { checkCredit, formatUsd } from '../money.js';
import { href } from '../paths.js';

const STATUS: Record<string, string> = {
  pending: 'Waiting for payment',
  paid: 'Paid',
  failed: 'Failed',
  expired: 'Expired',
  needs_review: 'Being reviewed',
};
export const statusLabel = (s: string): string => STATUS[s] ?? s;

const newIdempotencyKey = (): string =>
  typeof crypto.randomUUID === 'function'
    ? crypto.randomUUID()
    : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
        b.toString(16).padStart(2, '0'),
      ).join('');

function redeemForm(view: View, suspended: boolean): HTMLElement {
  const code = h('input', {
    type: 'text',
    name: 'code',
    autocomplete: 'off',
    spellcheck: 'false',
    required: true,
    maxlength: '128',
    class: 'mono',
  });
  const result = h('div');
  const button = h('button', { type: 'submit', disabled: suspended }, 'Redeem');
  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'redeem-h', novalidate: true },
    h('h2', { id: 'redeem-h' }, 'Redeem code'),
    h('p', null, 'Bought a prepaid code from a reseller? Enter it here to add its credit.'),
    result,
    field('Code', code),
    h('div', { class: 'actions' }, button),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const value = code.value.trim();
    if (value === '') {
      replace(result, notice('error', 'Enter the code.'));
      code.focus();
      return;
    }
    button.disabled = true;
    post<{ credit: string; balance: string }>('/v1/me/redemptions', { code: value })
      .then((r) => {
        code.value = '';
        replace(
          result,
          notice(
            'success',
            `Added ${formatUsd(r.credit)}. Your balance is now ${formatUsd(r.balance)}.`,
          ),
        );
        view.announce('Code redeemed.');
      })
      .catch((e: unknown) => {
        const message =
          e instanceof ApiError && e.code === 'invalid_code'
            ? 'This code cannot be redeemed: it is mistyped, already used, expired or disabled.'
            : e instanceof ApiError &&
                e.status === 404 &&
                e.code === 'not_found' &&
                /route/.test(e.message)
              ? 'Redeeming codes is not available on this service yet.'
              : describeError(e);
        replace(result, notice('error', message));
        code.focus();
      })
      .finally(() => {
        button.disabled = suspended;
      });
  });
  return form;
}

export async function renderTopUp(view: View): Promise<void> {
  const suspended = view.session?.account.status === 'suspended';
  const history = await get<Page<TopUp>>('/v1/me/top-ups?limit=20');

  const credit = h('input', {
    type: 'text',
    name: 'credit',
    inputmode: 'decimal',
    autocomplete: 'off',
    value: '100.00',
    required: true,
  });
  const price = h('p', { class: 'price', 'aria-live': 'polite', id: 'price' });
  const errorSlot = h('div');
  const pay = h(
    'button',
    { type: 'submit', class: 'primary', disabled: suspended },
    'Pay with Stripe',
  );
  let quoted: TopUpPrice | null = null;
  let asked = 0;

  async function quote(): Promise<void> {
    const mine = ++asked;
    const c = checkCredit(credit.value);
    if (!c.ok) {
      quoted = null;
      replace(price, h('span', { class: 'invalid' }, c.message));
      credit.setAttribute('aria-invalid', 'true');
      return;
    }
    credit.setAttribute('aria-invalid', 'false');
    try {
      const q = await get<TopUpPrice>(`/v1/me/top-up-price?credit=${c.credit}`);
      if (mine !== asked) return;
      quoted = q;
      replace(
        price,
        h('strong', null, `You pay ${formatUsd(q.price)}`),
        ` for ${formatUsd(q.credit)} of credit`,
        q.promotion
          ? h('span', { class: 'promo-note' }, ` (${q.promotion.name}, rate ${q.promotion.rate})`)
          : '',
        '.',
      );
    } catch (e) {
      if (mine !== asked) return;
      quoted = null;
      replace(price, h('span', { class: 'invalid' }, describeError(e)));
    }
  }

  let timer = 0;
  credit.addEventListener('input', () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(() => void quote(), 250);
  });

  const form = h(
    'form',
    { class: 'card', 'aria-labelledby': 'buy-h', novalidate: true },
    h('h2', { id: 'buy-h' }, 'Buy credit'),
    errorSlot,
    field(
      'Credit (USD)',
      credit,
      'From $1.00 to $10,000.00. The credit is added when Stripe confirms the payment.',
    ),
    price,
    h('div', { class: 'actions' }, pay),
  );
  let idempotencyKey = newIdempotencyKey();
  credit.addEventListener('input', () => (idempotencyKey = newIdempotencyKey()));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const c = checkCredit(credit.value);
    if (!c.ok) {
      replace(errorSlot, notice('error', c.message));
      credit.focus();
      return;
    }
    pay.disabled = true;
    post<TopUp>('/v1/me/top-ups', { credit: c.credit }, { 'Idempotency-Key': idempotencyKey })
      .then((t) => {
        if (!t.checkoutUrl) throw new Error('no checkout URL');
        if (quoted && quoted.price !== t.price)
          view.announce(`The price is ${formatUsd(t.price)}.`);
        replace(errorSlot, notice('info', 'Opening Stripe Checkout…'));
        window.location.assign(t.checkoutUrl);
      })
      .catch((e: unknown) => {
        replace(errorSlot, notice('error', describeError(e)));
        pay.disabled = suspended;
        pay.focus();
      });
  });

  const rows = history.data.map((t) => [
    h('a', { href: href(`/top-ups/${t.id}`) }, formatTime(t.createdAt)),
    h('span', { class: 'num' }, formatUsd(t.credit)),
    h('span', { class: 'num' }, formatUsd(t.price)),
    h('span', { class: `badge ${t.status}` }, statusLabel(t.status)),
    formatTime(t.paidAt),
  ]);

  replace(
    view.main,
    h('h1', null, 'Top up'),
    suspended
      ? notice('warning', 'This account is suspended: top-ups and codes are refused.')
      : null,
    h('div', { class: 'columns' }, form, redeemForm(view, suspended)),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'hist-h' },
      h('h2', { id: 'hist-h' }, 'Top-up history'),
      rows.length > 0
        ? table('Top-ups, newest first', ['Created', 'Credit', 'Price', 'Status', 'Paid'], rows)
        : h('p', { class: 'empty' }, 'No top-ups yet.'),
    ),
  );
  await quote();
}

/** Where Stripe Checkout returns to: the top-up's status, watched until Stripe confirms. */
export async function renderTopUpDetail(view: View): Promise<void> {
  const id = view.params[0];
  const checkout = view.search.get('checkout');
  const statusSlot = h('div', { 'aria-live': 'polite' });
  const details = h('div');
  replace(
    view.main,
    h('h1', null, 'Top-up'),
    statusSlot,
    details,
    h('p', null, h('a', { href: href('/top-up') }, 'Back to Top up')),
  );

  let t: TopUp;
  try {
    t = await get<TopUp>(`/v1/me/top-ups/${id}`);
  } catch (e) {
    if (e instanceof ApiError && (e.status === 403 || e.status === 404)) {
      replace(statusSlot, notice('error', 'There is no such top-up in your account.'));
      return;
    }
    throw e;
  }

  const draw = (): void => {
    const line = (label: string, value: string) =>
      h('div', { class: 'line' }, h('dt', null, label), h('dd', null, value));
    replace(
      details,
      h(
        'dl',
        { class: 'lines card' },
        line('Status', statusLabel(t.status)),
        line('Credit', formatUsd(t.credit)),
        line('Price', formatUsd(t.price)),
        line('Promotion', t.promotion ? `${t.promotion.name} (rate ${t.promotion.rate})` : 'None'),
        line('Created', formatTime(t.createdAt)),
        line('Paid', formatTime(t.paidAt)),
      ),
    );
    let message: HTMLElement;
    if (t.status === 'paid')
      message = notice('success', `Paid: ${formatUsd(t.credit)} was added to your balance.`);
    else if (t.status === 'pending' && checkout === 'cancelled')
      message = notice(
        'info',
        'Checkout was cancelled. Nothing was charged; you can start again from Top up.',
      );
    else if (t.status === 'pending' && checkout === 'success')
      message = notice('info', 'Thanks! Waiting for Stripe to confirm the payment…');
    else if (t.status === 'pending') message = notice('info', 'Waiting for payment.');
    else if (t.status === 'needs_review')
      message = notice(
        'warning',
        'The payment arrived but needs a check by our team before the credit is added.',
      );
    else
      message = notice(
        'error',
        `This top-up is ${statusLabel(t.status).toLowerCase()}; nothing was credited.`,
      );
    replace(statusSlot, message);
  };
  draw();

  // Stripe's webhook usually lands within seconds of the return; watch for about a minute.
  // Not awaited: the page is usable while it watches; it stops when the page is left.
  const watch = async (): Promise<void> => {
    for (let i = 0; i < 30 && t.status === 'pending'; i++) {
      await new Promise((r) => window.setTimeout(r, 2000));
      if (!statusSlot.isConnected) return;
      t = await get<TopUp>(`/v1/me/top-ups/${id}`);
      if (!statusSlot.isConnected) return;
      draw();
    }
  };
  if (t.status === 'pending' && checkout === 'success') void watch().catch(() => undefined);
}
