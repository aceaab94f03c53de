import {
  ApiError,
  call,
  describeError,
  get,
  post,
  type Group,
  type Model,
  type Page,
  type Token,
} from '../api.js';
import type { View } from '../app.js';
import { endOfDayUtc, formatTime, utcDay } from '../dates.js';
import { field, h, notice, replace, table, uid } from '../dom.js';
import { checkSpendLimit, formatUsd } from '../money.js';

interface Created extends Token {
  key: string;
}

async function copy(text: string, input: HTMLInputElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    input.select();
    return document.execCommand('copy');
  }
}

/** The new key, shown once, with a Copy button. */
function newKeyPanel(token: Created, view: View, onDone: () => void): HTMLElement {
  const keyInput = h('input', {
    id: uid('newkey'),
    type: 'text',
    readonly: true,
    value: token.key,
    class: 'mono',
    spellcheck: 'false',
    autocomplete: 'off',
  });
  const status = h('span', { class: 'copy-status', role: 'status' });
  const panel = h(
    'section',
    { class: 'card new-key', 'aria-labelledby': 'newkey-h' },
    h('h2', { id: 'newkey-h' }, `Token “${token.name}” created`),
    h(
      'p',
      null,
      'Copy the key now and keep it somewhere safe: it is shown only once. Send it as ',
      h('code', null, 'Authorization: Bearer <key>'),
      ' to the image API.',
    ),
    h(
      'div',
      { class: 'field' },
      h('label', { for: keyInput.id }, 'New API key'),
      h(
        'div',
        { class: 'inline' },
        keyInput,
        h(
          'button',
          {
            type: 'button',
            onclick: () =>
              void copy(token.key, keyInput).then((ok) => {
                status.textContent = ok ? 'Copied.' : 'Select the key and copy it by hand.';
              }),
          },
          'Copy',
        ),
        status,
      ),
    ),
    h('div', { class: 'actions' }, h('button', { type: 'button', onclick: onDone }, 'Done')),
  );
  keyInput.addEventListener('focus', () => keyInput.select());
  view.announce('Token created. The new API key is shown once.');
  return panel;
}

export async function renderTokens(view: View): Promise<void> {
  const [groups, models] = await Promise.all([
    get<Page<Group>>('/v1/me/groups'),
    get<Page<Model>>('/v1/models?limit=500'),
  ]);
  const suspended = view.session?.account.status === 'suspended';

  const keySlot = h('div');
  const listSlot = h('div');
  const formSlot = h('div');
  const toggle = h(
    'button',
    { type: 'button', class: 'primary', 'aria-expanded': 'false', disabled: suspended },
    'Create token',
  );

  let tokens: Token[] = [];
  let nextCursor: string | null = null;

  async function load(more = false): Promise<void> {
    const page = await get<Page<Token>>(
      `/v1/me/tokens?limit=50${more && nextCursor ? `&cursor=${encodeURIComponent(nextCursor)}` : ''}`,
    );
    tokens = more ? [...tokens, ...page.data] : page.data;
    nextCursor = page.nextCursor;
    drawList();
  }

  function drawList(message?: HTMLElement): void {
    if (tokens.length === 0) {
      replace(
        listSlot,
        message ?? null,
        h(
          'p',
          { class: 'empty' },
          'No API tokens yet. Create one per project: the gateway accepts its key.',
        ),
      );
      return;
    }
    const rows = tokens.map((t) => [
      h('span', { class: 'strong' }, t.name),
      t.group,
      h('code', null, `${t.keyPrefix}…`),
      h('span', { class: `badge ${t.status}` }, t.status === 'active' ? 'Active' : 'Revoked'),
      h(
        'span',
        { class: 'num' },
        formatUsd(t.spent),
        t.spendLimit === null ? ' / no limit' : ` / ${formatUsd(t.spendLimit)}`,
      ),
      t.expiresAt ? formatTime(t.expiresAt) : 'Never',
      formatTime(t.lastUsedAt),
      t.status === 'active'
        ? h(
            'button',
            {
              type: 'button',
              class: 'danger small',
              'aria-label': `Revoke ${t.name}`,
              disabled: suspended,
              onclick: () => void revoke(t),
            },
            'Revoke',
          )
        : '',
    ]);
    replace(
      listSlot,
      message ?? null,
      table(
        'API tokens',
        ['Name', 'Group', 'Key', 'Status', 'Spent / limit', 'Expires', 'Last used', 'Actions'],
        rows,
      ),
      nextCursor
        ? h('button', { type: 'button', onclick: () => void load(true) }, 'Show more tokens')
        : null,
    );
  }

  async function revoke(t: Token): Promise<void> {
    if (
      !window.confirm(
        `Revoke “${t.name}”? Requests with its key are refused from now on. This cannot be undone.`,
      )
    )
      return;
    try {
      await call('DELETE', `/v1/me/tokens/${t.id}`);
      await load();
      drawList(notice('success', `Token “${t.name}” is revoked.`));
      view.announce(`Token ${t.name} revoked.`);
    } catch (e) {
      drawList(notice('error', describeError(e)));
    }
  }

  function openForm(): void {
    toggle.hidden = true;
    toggle.setAttribute('aria-expanded', 'true');
    const name = h('input', {
      type: 'text',
      name: 'name',
      required: true,
      maxlength: '200',
      autocomplete: 'off',
    });
    const group = h(
      'select',
      { name: 'group' },
      groups.data.map((g) =>
        h(
          'option',
          { value: g.name, selected: g.isDefault },
          `${g.name} (×${g.ratio})${g.description ? ` — ${g.description}` : ''}`,
        ),
      ),
    );
    const limit = h('input', {
      type: 'text',
      name: 'spendLimit',
      inputmode: 'decimal',
      autocomplete: 'off',
      placeholder: 'No limit',
    });
    const expires = h('input', {
      type: 'date',
      name: 'expires',
      min: utcDay(new Date(Date.now() + 86_400_000)),
    });
    const modelBoxes = models.data.map((m) =>
      h('input', { type: 'checkbox', name: 'models', value: m.model, id: uid('model') }),
    );
    const errorSlot = h('div');
    const submit = h('button', { type: 'submit', class: 'primary' }, 'Create token');
    const cancel = h('button', { type: 'button', onclick: () => closeForm(true) }, 'Cancel');
    const form = h(
      'form',
      { class: 'card', novalidate: true, 'aria-labelledby': 'create-h' },
      h('h2', { id: 'create-h' }, 'New token'),
      errorSlot,
      field('Name', name, 'What it is for, e.g. “production” or “staging”.'),
      field('Group', group, 'The group sets the price ratio and capacity.'),
      field('Spend limit', limit, 'USD this token may spend in all; empty for no limit.'),
      field('Expires', expires, 'Optional: the token stops working after this day (UTC).'),
      models.data.length > 0
        ? h(
            'fieldset',
            { class: 'models' },
            h('legend', null, 'Models (none ticked: every model)'),
            modelBoxes.map((box) =>
              h('label', { class: 'check', for: box.id }, box, ` ${box.value}`),
            ),
          )
        : null,
      h('div', { class: 'actions' }, submit, cancel),
    );
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const spend = checkSpendLimit(limit.value);
      const problems: string[] = [];
      if (name.value.trim() === '') problems.push('Name: give the token a name.');
      if (!spend.ok) problems.push(`Spend limit: ${spend.message}`);
      name.setAttribute('aria-invalid', String(name.value.trim() === ''));
      limit.setAttribute('aria-invalid', String(!spend.ok));
      if (problems.length > 0 || !spend.ok) {
        replace(errorSlot, notice('error', problems.join(' ')));
        (name.value.trim() === '' ? name : limit).focus();
        return;
      }
      const allowed = modelBoxes.filter((b) => b.checked).map((b) => b.value);
      submit.disabled = true;
      post<Created>('/v1/me/tokens', {
        name: name.value.trim(),
        group: group.value,
        spendLimit: spend.value,
        expiresAt: expires.value ? endOfDayUtc(expires.value) : null,
        allowedModels: allowed.length > 0 ? allowed : null,
      })
        .then(async (created) => {
          closeForm(false);
          const panel = newKeyPanel(created, view, () => {
            replace(keySlot);
            toggle.focus();
          });
          replace(keySlot, panel);
          panel.querySelector('input')?.focus();
          await load();
        })
        .catch((e: unknown) => {
          replace(errorSlot, notice('error', describeError(e)));
          if (e instanceof ApiError) {
            for (const d of e.details)
              form.querySelector(`[name="${d.field}"]`)?.setAttribute('aria-invalid', 'true');
          }
          submit.disabled = false;
          submit.focus();
        });
    });
    replace(formSlot, form);
    name.focus();
  }

  function closeForm(refocus: boolean): void {
    replace(formSlot);
    toggle.hidden = false;
    toggle.setAttribute('aria-expanded', 'false');
    if (refocus) toggle.focus();
  }

  toggle.addEventListener('click', openForm);

  replace(
    view.main,
    h('h1', null, 'API tokens'),
    h(
      'p',
      { class: 'lede' },
      'Tokens are what your applications send to the image API. Create one per project; revoke one the moment it leaks.',
    ),
    keySlot,
    h('div', { class: 'toolbar' }, toggle),
    formSlot,
    listSlot,
  );
  await load();
}
