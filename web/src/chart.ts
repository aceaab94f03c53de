import { h, svg } from './dom.js';
import { formatUsd, maxDecimal, permille } from './money.js';

export interface DayCharge {
  day: string;
  charge: string;
}

/** Every day of `days`, with its charge from the summary rows or "0". */
export function fillDays(days: string[], rows: { key: string; charge: string }[]): DayCharge[] {
  const byDay = new Map(rows.map((r) => [r.key, r.charge]));
  return days.map((day) => ({ day, charge: byDay.get(day) ?? '0' }));
}

const W = 600;
const H = 160;
const GAP = 2;

/**
 * A bar per day, heights by exact integer ratios of the amounts. Each bar has a <title>
 * (hover) and the same figures are in a table below for screen readers and copying.
 */
export function dailyChart(series: DayCharge[]): HTMLElement {
  const max = maxDecimal(series.map((s) => s.charge));
  const bw = W / series.length;
  const bars = series.map((s, i) => {
    const hgt = Math.max(
      permille(s.charge, max) === 0 ? 0 : 1,
      (permille(s.charge, max) * H) / 1000,
    );
    return svg(
      'rect',
      {
        x: (i * bw + GAP / 2).toFixed(2),
        y: (H - hgt).toFixed(2),
        width: (bw - GAP).toFixed(2),
        height: hgt.toFixed(2),
        class: 'bar',
      },
      svg('title', null, `${s.day}: ${formatUsd(s.charge)}`),
    );
  });
  const first = series[0]?.day ?? '';
  const last = series[series.length - 1]?.day ?? '';
  return h(
    'figure',
    { class: 'chart' },
    h(
      'div',
      { class: 'chart-frame' },
      h('span', { class: 'chart-max', 'aria-hidden': 'true' }, formatUsd(max)),
      svg(
        'svg',
        {
          viewBox: `0 0 ${W} ${H}`,
          preserveAspectRatio: 'none',
          role: 'img',
          'aria-label': `Daily usage charge from ${first} to ${last}; highest day ${formatUsd(max)}`,
        },
        svg('line', { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis' }),
        bars,
      ),
      h(
        'div',
        { class: 'chart-days', 'aria-hidden': 'true' },
        h('span', null, first),
        h('span', null, last),
      ),
    ),
    h(
      'figcaption',
      null,
      h(
        'details',
        null,
        h('summary', null, 'Show the daily figures'),
        h(
          'div',
          { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Daily usage charge' },
          h(
            'table',
            null,
            h(
              'thead',
              null,
              h(
                'tr',
                null,
                h('th', { scope: 'col' }, 'Day (UTC)'),
                h('th', { scope: 'col' }, 'Charge'),
              ),
            ),
            h(
              'tbody',
              null,
              [...series]
                .reverse()
                .map((s) =>
                  h(
                    'tr',
                    null,
                    h('td', null, s.day),
                    h('td', { class: 'num' }, formatUsd(s.charge)),
                  ),
                ),
            ),
          ),
        ),
      ),
    ),
  );
}
