import { ApiError, call, describeError, post, type Session } from '../api.js';
import type { View } from '../app.js';
import { field, h, notice, replace } from '../dom.js';
import { href, safeNext } from '../paths.js';

const input = (props: Record<string, string | boolean>) => h('input', props);

/** A form whose submit button is disabled while the request runs, with one error slot. */
function authForm(
  fields: HTMLElement[],
  button: string,
  submit: (setError: (e: unknown) => void) => Promise<void>,
): HTMLFormElement {
  const errorSlot = h('div', { class: 'form-error' });
  const btn = h('button', { type: 'submit', class: 'primary' }, button);
  const form = h(
    'form',
    { novalidate: true },
    errorSlot,
    fields,
    h('div', { class: 'actions' }, btn),
  );
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!form.checkValidity()) {
      const bad = form.querySelector<HTMLInputElement>(':invalid');
      replace(
        errorSlot,
        notice('error', bad ? `${labelOf(bad)}: ${bad.validationMessage}` : 'Check the form.'),
      );
      bad?.focus();
      return;
    }
    btn.disabled = true;
    replace(errorSlot);
    submit((e) => {
      // role=alert: screen readers say it at once, without moving the focus.
      replace(
        errorSlot,
        notice('error', e instanceof ApiError ? authMessage(e) : describeError(e)),
      );
    })
      .catch((e: unknown) => replace(errorSlot, notice('error', describeError(e))))
      .finally(() => {
        btn.disabled = false;
      });
  });
  return form;
}

function labelOf(el: HTMLInputElement): string {
  return document.querySelector(`label[for="${el.id}"]`)?.textContent ?? el.name;
}

function authMessage(e: ApiError): string {
  if (e.status === 401) return 'Email or password is wrong.';
  return describeError(e);
}

function finish(view: View, s: Session): void {
  view.signedIn(s);
  view.navigate(safeNext(view.search.get('next')), { replace: true });
}

export async function renderSignIn(view: View): Promise<void> {
  const email = input({ type: 'email', name: 'email', autocomplete: 'username', required: true });
  const password = input({
    type: 'password',
    name: 'password',
    autocomplete: 'current-password',
    required: true,
  });
  const form = authForm(
    [field('Email', email), field('Password', password)],
    'Sign in',
    async (fail) => {
      try {
        const s = await call<Session>('POST', '/v1/console/sign-in', {
          body: { email: email.value, password: password.value },
          expect401: true,
        });
        finish(view, s);
      } catch (e) {
        password.value = '';
        fail(e);
        password.focus();
      }
    },
  );
  replace(
    view.main,
    h(
      'section',
      { class: 'card auth' },
      h('h1', null, 'Sign in'),
      view.carried ? notice('info', view.carried) : null,
      form,
      h(
        'p',
        { class: 'alt' },
        'New here? ',
        h('a', { href: href('/sign-up') }, 'Create an account'),
      ),
    ),
  );
  await Promise.resolve();
}

export async function renderSignUp(view: View): Promise<void> {
  const name = input({
    type: 'text',
    name: 'name',
    autocomplete: 'organization',
    required: true,
    maxlength: '200',
  });
  const email = input({
    type: 'email',
    name: 'email',
    autocomplete: 'email',
    required: true,
    maxlength: '320',
  });
  const password = input({
    type: 'password',
    name: 'password',
    autocomplete: 'new-password',
    required: true,
    minlength: '10',
  });
  const form = authForm(
    [
      field('Name', name, 'Your company or project: the account name on statements.'),
      field('Email', email),
      field('Password', password, 'At least 10 characters.'),
    ],
    'Create account',
    async (fail) => {
      try {
        const s = await post<Session>('/v1/console/sign-up', {
          name: name.value,
          email: email.value,
          password: password.value,
        });
        finish(view, s);
      } catch (e) {
        fail(e);
      }
    },
  );
  replace(
    view.main,
    h(
      'section',
      { class: 'card auth' },
      h('h1', null, 'Create an account'),
      form,
      h(
        'p',
        { class: 'alt' },
        'Already have an account? ',
        h('a', { href: href('/sign-in') }, 'Sign in'),
      ),
    ),
  );
  await Promise.resolve();
}

/** The invite link: /console/set-password#token=… (the token never reaches a server log). */
export async function renderSetPassword(view: View): Promise<void> {
  const token = new URLSearchParams(location.hash.slice(1)).get('token') ?? '';
  const card = h('section', { class: 'card auth' }, h('h1', null, 'Set your password'));
  replace(view.main, card);
  let info: { email: string; accountName: string; expiresAt: string };
  try {
    info = await post('/v1/console/invites/lookup', { token });
  } catch (e) {
    card.append(
      notice(
        'error',
        e instanceof ApiError && e.status === 400
          ? 'This link is invalid, already used or expired. Ask your administrator for a new invite.'
          : describeError(e),
      ),
      h('p', { class: 'alt' }, h('a', { href: href('/sign-in') }, 'Go to sign in')),
    );
    return;
  }
  const email = input({
    type: 'email',
    name: 'email',
    autocomplete: 'username',
    readonly: true,
    value: info.email,
  });
  const password = input({
    type: 'password',
    name: 'password',
    autocomplete: 'new-password',
    required: true,
    minlength: '10',
  });
  const form = authForm(
    [field('Email', email), field('Password', password, 'At least 10 characters.')],
    'Set password',
    async (fail) => {
      try {
        const s = await post<Session>('/v1/console/set-password', {
          token,
          password: password.value,
        });
        history.replaceState(null, '', href('/set-password')); // drop the used token
        finish(view, s);
      } catch (e) {
        fail(e);
      }
    },
  );
  card.append(h('p', null, 'You were invited to ', h('strong', null, info.accountName), '.'), form);
}
