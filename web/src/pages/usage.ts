import { get, type Model, type Page, type Token, type UsageItem } from '../api.js';
import type { View } from '../app.js';
import { formatTime } from '../dates.js';
import { field, h, replace, table } from '../dom.js';
import { formatUsd } from '../money.js';
import {
  filtersFromSearch,
  filtersToSearch,
  outcomeLabel,
  reasonLabel,
  usageCsvUrl,
  usageListUrl,
  type UsageFilters,
} from '../usage-query.js';

const PAGE = 100;

export async function renderUsage(view: View): Promise<void> {
  const filters = filtersFromSearch(location.search);
  const [models, tokens, first] = await Promise.all([
    get<Page<Model>>('/v1/models?limit=500'),
    get<Page<Token>>('/v1/me/tokens?limit=500'),
    get<Page<UsageItem>>(usageListUrl(filters, { limit: PAGE })),
  ]);

  const option = (value: string, label: string, selected?: string) =>
    h('option', { value, selected: value === (selected ?? '') }, label);
  const from = h('input', { type: 'date', name: 'from', value: filters.from ?? '' });
  const to = h('input', { type: 'date', name: 'to', value: filters.to ?? '' });
  const model = h(
    'select',
    { name: 'model' },
    option('', 'All models', filters.model),
    models.data.map((m) => option(m.model, m.model, filters.model)),
  );
  const token = h(
    'select',
    { name: 'tokenId' },
    option('', 'All tokens', filters.tokenId),
    tokens.data.map((t) =>
      option(t.id, `${t.name}${t.status === 'revoked' ? ' (revoked)' : ''}`, filters.tokenId),
    ),
  );
  const outcome = h(
    'select',
    { name: 'outcome' },
    option('', 'All outcomes', filters.outcome),
    ['charged', 'skipped', 'review', 'voided'].map((o) =>
      option(o, outcomeLabel(o), filters.outcome),
    ),
  );
  const form = h(
    'form',
    { class: 'filters card', 'aria-label': 'Filter usage' },
    field('From', from),
    field('To', to),
    field('Model', model),
    field('Token', token),
    field('Outcome', outcome),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'submit', class: 'primary' }, 'Apply filters'),
    ),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const f: UsageFilters = {
      from: from.value || undefined,
      to: to.value || undefined,
      model: model.value || undefined,
      tokenId: token.value || undefined,
      outcome: outcome.value || undefined,
    };
    view.navigate(`/usage${filtersToSearch(f)}`);
  });

  let items = first.data;
  let cursor = first.nextCursor;
  const listSlot = h('div');
  const describe = (u: UsageItem) => [
    h('time', { datetime: u.recordedAt }, formatTime(u.recordedAt)),
    h('code', { class: 'request-id' }, u.requestId),
    u.tokenName,
    u.model,
    h('span', { class: `badge ${u.outcome}` }, outcomeLabel(u.outcome)),
    reasonLabel(u.reason) || '—',
    h('span', { class: 'num' }, formatUsd(u.charge)),
  ];
  async function more(): Promise<void> {
    const next = await get<Page<UsageItem>>(
      usageListUrl(filters, { limit: PAGE, cursor: cursor ?? undefined }),
    );
    items = [...items, ...next.data];
    cursor = next.nextCursor;
    draw();
    view.announce(`${next.data.length} more events shown.`);
  }
  function draw(): void {
    if (items.length === 0) {
      const filtered = Object.keys(filters).length > 0;
      replace(
        listSlot,
        h(
          'p',
          { class: 'empty' },
          filtered
            ? 'No usage matches these filters.'
            : 'No usage yet. Requests made with your API tokens show here, billed or not.',
        ),
      );
      return;
    }
    replace(
      listSlot,
      table(
        'Usage events, newest first',
        ['Time', 'Request', 'Token', 'Model', 'Outcome', 'Reason', 'Charge'],
        items.map(describe),
      ),
      cursor
        ? h(
            'button',
            {
              type: 'button',
              onclick: () => void more(),
            },
            'Show more',
          )
        : null,
    );
  }
  draw();

  replace(
    view.main,
    h('h1', null, 'Usage'),
    h(
      'p',
      { class: 'lede' },
      'Every request the gateway reported, billed or not: skipped ones (moderated, failed upstream, timed out, no output) cost nothing and say why. Times are when the event was booked (UTC).',
    ),
    form,
    h(
      'p',
      { class: 'toolbar' },
      h(
        'a',
        { class: 'button', href: usageCsvUrl(filters), download: 'usage.csv' },
        'Download CSV',
      ),
    ),
    listSlot,
  );
}
