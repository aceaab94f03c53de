import { get, type Me, type Page, type Promotion, type Summary, type TopUpPrice } from '../api.js';
import type { View } from '../app.js';
import { dailyChart, fillDays } from '../chart.js';
import { last30Days, monthLabel, utcMonth } from '../dates.js';
import { h, notice, replace } from '../dom.js';
import { formatUsd, isNegative, isZero } from '../money.js';
import { href } from '../paths.js';

function figure(label: string, value: string, note?: string) {
  return h(
    'div',
    { class: 'figure' },
    h('dt', null, label),
    h(
      'dd',
      null,
      h('span', { class: `amount${isNegative(value) ? ' negative' : ''}` }, formatUsd(value)),
      note ? h('small', null, note) : null,
    ),
  );
}

export async function renderOverview(view: View): Promise<void> {
  const now = new Date();
  const month = utcMonth(now);
  const range = last30Days(now);
  const [me, daily, thisMonth, promotions] = await Promise.all([
    get<Me>('/v1/me'),
    get<Summary>(`/v1/me/usage/summary?groupBy=day&from=${range.from}&to=${range.to}`),
    get<Summary>(`/v1/me/usage/summary?from=${month}-01`),
    get<Page<Promotion>>('/v1/me/promotions'),
  ]);
  const best = promotions.data[0] ?? null;
  // An example price through the same rule the top-up uses (no client-side money math).
  const quoted = best
    ? await get<TopUpPrice>('/v1/me/top-up-price?credit=100.00').catch(() => null)
    : null;
  const example = quoted?.promotion?.id === best?.id ? quoted : null;

  const series = fillDays(range.days, daily.rows);
  const anyUsage = daily.rows.some((r) => r.requests > 0);

  replace(
    view.main,
    h('h1', null, 'Overview'),
    h(
      'p',
      { class: 'lede' },
      'Amounts in USD with every digit the ledger holds; days and months in UTC.',
    ),
    h(
      'dl',
      { class: 'figures' },
      figure('Balance', me.balance),
      figure('Held', me.held, 'Set aside for requests in flight'),
      figure(
        'Available',
        me.available,
        isZero(me.creditLimit) ? undefined : `Credit limit ${formatUsd(me.creditLimit)}`,
      ),
      figure(
        'Usage this month',
        thisMonth.totals.charge,
        `${monthLabel(month)}: ${thisMonth.totals.requests} request${thisMonth.totals.requests === 1 ? '' : 's'}, ${thisMonth.totals.skipped} not billed`,
      ),
    ),
    isNegative(me.available)
      ? notice(
          'warning',
          'Your available balance is below zero: new requests are refused until you ',
          h('a', { href: href('/top-up') }, 'top up'),
          '.',
        )
      : null,
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'promo-h' },
      h('h2', { id: 'promo-h' }, 'Promotion'),
      best
        ? h(
            'p',
            { class: 'promo' },
            h('strong', null, best.name),
            ` — rate ${best.rate}`,
            example
              ? `: ${formatUsd(example.credit)} of credit costs ${formatUsd(example.price)}`
              : '',
            isZero(best.minCredit) ? '' : ` (on top-ups of ${formatUsd(best.minCredit)} or more)`,
            best.endsAt ? `, until ${best.endsAt.slice(0, 10)}` : '',
            '. ',
            h('a', { href: href('/top-up') }, 'Top up'),
          )
        : h('p', null, 'No promotion is running right now.'),
    ),
    h(
      'section',
      { class: 'card', 'aria-labelledby': 'chart-h' },
      h('h2', { id: 'chart-h' }, 'Daily usage charge, last 30 days'),
      anyUsage
        ? dailyChart(series)
        : h(
            'p',
            { class: 'empty' },
            'No usage in the last 30 days. ',
            h('a', { href: href('/tokens') }, 'Create an API token'),
            ' to get started.',
          ),
    ),
  );
}
