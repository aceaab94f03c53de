import { get, type Statement } from '../api.js';
import type { View } from '../app.js';
import { monthLabel, recentMonths } from '../dates.js';
import { field, h, replace, table } from '../dom.js';
import { formatUsd, isNegative } from '../money.js';
import { usageCsvUrl } from '../usage-query.js';

/** The disputes figure, whether the API sends a signed amount or an object holding one. */
export function disputesAmount(d: Statement['disputes']): string | null {
  if (d === undefined || d === null) return null;
  if (typeof d === 'string') return d;
  return d.net ?? d.amount ?? null;
}

const amount = (v: string) =>
  h('span', { class: `amount${isNegative(v) ? ' negative' : ''}` }, formatUsd(v));

function row(label: string, value: string, note?: string) {
  return h(
    'div',
    { class: 'line' },
    h('dt', null, label),
    h('dd', null, amount(value), note ? h('small', null, note) : null),
  );
}

const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;

export async function renderStatements(view: View): Promise<void> {
  const months = recentMonths(new Date(), 24);
  const wanted = view.search.get('month');
  const period = wanted && months.includes(wanted) ? wanted : months[0];

  const select = h(
    'select',
    { name: 'month' },
    months.map((m) => h('option', { value: m, selected: m === period }, monthLabel(m))),
  );
  select.addEventListener('change', () =>
    view.navigate(`/statements?month=${select.value}`, { replace: true }),
  );

  const s = await get<Statement>(`/v1/me/statements/${period}`);
  const disputes = disputesAmount(s.disputes);
  const lastDay = (() => {
    const [y, m] = period.split('-');
    const d = new Date(Date.UTC(Number.parseInt(y, 10), Number.parseInt(m, 10), 0));
    return d.toISOString().slice(0, 10);
  })();

  replace(
    view.main,
    h('h1', null, 'Statements'),
    h('div', { class: 'toolbar' }, field('Month', select)),
    h(
      'section',
      { class: 'card statement', 'aria-labelledby': 'st-h' },
      h('h2', { id: 'st-h' }, `${monthLabel(s.period)} (UTC)`),
      h(
        'dl',
        { class: 'lines' },
        row('Opening balance', s.openingBalance),
        row(
          'Top-ups',
          s.topUps.credit,
          `${plural(s.topUps.count, 'top-up')}, ${formatUsd(s.topUps.cashPaid)} paid`,
        ),
        s.redemptions
          ? row('Redemptions', s.redemptions.credit, plural(s.redemptions.count, 'code'))
          : null,
        row(
          'Usage',
          s.usage.charge,
          `${plural(s.usage.requests, 'request')}: ${s.usage.charged} charged, ${s.usage.skipped} not billed${s.usage.review ? `, ${s.usage.review} in review` : ''}`,
        ),
        row('Refunds', s.refunds, 'Credit taken back by card refunds'),
        disputes !== null ? row('Disputes', disputes, 'Held back by card disputes (signed)') : null,
        row('Adjustments', s.adjustments, 'Signed'),
        h(
          'div',
          { class: 'line total' },
          h('dt', null, 'Closing balance'),
          h('dd', null, amount(s.closingBalance)),
        ),
      ),
      h(
        'p',
        { class: 'hint' },
        'Closing balance = opening balance + top-ups',
        s.redemptions ? ' + redemptions' : '',
        ' − usage − refunds',
        disputes !== null ? ' + disputes' : '',
        ' + adjustments, to the last digit.',
      ),
    ),
    s.usage.byModel.length > 0
      ? h(
          'section',
          { class: 'card', 'aria-labelledby': 'bm-h' },
          h('h2', { id: 'bm-h' }, 'Usage by model'),
          table(
            `Usage by model, ${monthLabel(s.period)}`,
            ['Model', 'Requests', 'Charged', 'Not billed', 'Charge'],
            s.usage.byModel.map((m) => [
              m.model,
              m.requests,
              m.charged,
              m.skipped,
              h('span', { class: 'num' }, formatUsd(m.charge)),
            ]),
          ),
        )
      : h('p', { class: 'empty' }, `No usage in ${monthLabel(s.period)}.`),
    h(
      'p',
      null,
      h(
        'a',
        {
          href: usageCsvUrl({ from: `${period}-01`, to: lastDay }),
          download: `usage-${period}.csv`,
        },
        `Download ${monthLabel(period)} usage as CSV`,
      ),
    ),
  );
}
