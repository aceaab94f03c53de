import { ApiError, call, onSessionEnded, post, type Session } from './api.js';
import { h, notice, replace } from './dom.js';
import { renderSetPassword, renderSignIn, renderSignUp } from './pages/auth.js';
import { renderOverview } from './pages/overview.js';
import { renderStatements } from './pages/statements.js';
import { renderTokens } from './pages/tokens.js';
import { renderTopUp, renderTopUpDetail } from './pages/top-up.js';
import { renderUsage } from './pages/usage.js';
import { BASE, consolePath, href } from './paths.js';

/** What a page gets: where to draw, the signed-in session, and how to move on. */
export interface View {
  main: HTMLElement;
  session: Session | null;
  params: string[];
  search: URLSearchParams;
  /** Goes to a console path ("/tokens", "/usage?outcome=skipped"). */
  navigate(path: string, opts?: { replace?: boolean; notice?: string }): void;
  /** After sign-in, sign-up or set-password: remember who is signed in. */
  signedIn(session: Session): void;
  /** Says something to screen readers without moving focus. */
  announce(text: string): void;
  /** A message carried over from the previous page ("You are signed out."). */
  carried: string | null;
}

interface Route {
  pattern: RegExp;
  title: string;
  /** The navigation link this page belongs to. */
  nav?: string;
  signedIn: boolean;
  render(view: View): Promise<void>;
}

export const NAV: [label: string, path: string][] = [
  ['Overview', '/'],
  ['API tokens', '/tokens'],
  ['Usage', '/usage'],
  ['Statements', '/statements'],
  ['Top up', '/top-up'],
];

const ROUTES: Route[] = [
  { pattern: /^\/$/, title: 'Overview', nav: 'Overview', signedIn: true, render: renderOverview },
  {
    pattern: /^\/tokens$/,
    title: 'API tokens',
    nav: 'API tokens',
    signedIn: true,
    render: renderTokens,
  },
  { pattern: /^\/usage$/, title: 'Usage', nav: 'Usage', signedIn: true, render: renderUsage },
  {
    pattern: /^\/statements$/,
    title: 'Statements',
    nav: 'Statements',
    signedIn: true,
    render: renderStatements,
  },
  { pattern: /^\/top-up$/, title: 'Top up', nav: 'Top up', signedIn: true, render: renderTopUp },
  {
    pattern: /^\/top-ups\/([0-9a-fA-F-]{36})$/,
    title: 'Top-up',
    nav: 'Top up',
    signedIn: true,
    render: renderTopUpDetail,
  },
  { pattern: /^\/sign-in$/, title: 'Sign in', signedIn: false, render: renderSignIn },
  { pattern: /^\/sign-up$/, title: 'Create an account', signedIn: false, render: renderSignUp },
  {
    pattern: /^\/set-password$/,
    title: 'Set your password',
    signedIn: false,
    render: renderSetPassword,
  },
];

function match(path: string): { route: Route | null; params: string[] } {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (m) return { route, params: m.slice(1) };
  }
  return { route: null, params: [] };
}

/** The sign-in path that comes back here afterwards. */
function signInFor(path: string, search: string): string {
  return path === '/' ? '/sign-in' : `/sign-in?next=${encodeURIComponent(path + search)}`;
}

export function startApp(root: HTMLElement): void {
  // undefined: not asked yet; null: nobody is signed in.
  let session: Session | null | undefined;
  let carried: string | null = null;
  let first = true;
  let renders = 0;

  const live = h('div', { class: 'visually-hidden', 'aria-live': 'polite' });
  const header = h('header', { class: 'top' });
  const banner = h('div', { class: 'banner-slot' });
  const main = h('main', { id: 'main', tabindex: -1 });
  replace(
    root,
    h('a', { class: 'skip', href: '#main' }, 'Skip to content'),
    header,
    banner,
    main,
    live,
  );

  const announce = (text: string): void => {
    live.textContent = '';
    window.setTimeout(() => (live.textContent = text), 50);
  };

  const navigate: View['navigate'] = (path, opts = {}) => {
    carried = opts.notice ?? null;
    if (opts.replace) history.replaceState(null, '', href(path));
    else history.pushState(null, '', href(path));
    void render();
  };

  async function loadSession(): Promise<void> {
    try {
      session = await call<Session>('GET', '/v1/console/session', { expect401: true });
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) session = null;
      else throw e;
    }
  }

  // Any page call answering 401: the session expired or was ended elsewhere.
  onSessionEnded(() => {
    const path = consolePath(location.pathname);
    if (!match(path).route?.signedIn) return;
    session = null;
    navigate(signInFor(path, location.search), {
      replace: true,
      notice: 'Your session has ended. Sign in again to continue.',
    });
  });

  function drawHeader(route: Route | null): void {
    const s = route?.signedIn ? session : null;
    replace(
      header,
      h(
        'a',
        { class: 'brand', href: href('/') },
        h('span', { class: 'logo', 'aria-hidden': 'true' }, 'S'),
        h('span', null, 'Image API billing'),
      ),
      s
        ? [
            h(
              'nav',
              { 'aria-label': 'Main' },
              h(
                'ul',
                null,
                NAV.map(([label, path]) =>
                  h(
                    'li',
                    null,
                    h(
                      'a',
                      { href: href(path), 'aria-current': route?.nav === label ? 'page' : null },
                      label,
                    ),
                  ),
                ),
              ),
            ),
            h(
              'div',
              { class: 'who' },
              h('span', { class: 'who-name' }, s.account.name, h('small', null, s.email)),
              h('button', { type: 'button', onclick: () => void signOut() }, 'Sign out'),
            ),
          ]
        : null,
    );
    replace(
      banner,
      s?.account.status === 'suspended'
        ? notice(
            'warning',
            h('strong', null, 'This account is suspended. '),
            'You can see everything, but nothing can be changed: new tokens, top-ups and codes are refused.',
          )
        : null,
    );
  }

  async function signOut(): Promise<void> {
    try {
      await post('/v1/console/sign-out');
    } catch {
      // Signed out here either way: the cookie is cleared by the answer or expires.
    }
    session = null;
    navigate('/sign-in', { notice: 'You are signed out.' });
  }

  async function render(): Promise<void> {
    const mine = ++renders;
    const path = consolePath(location.pathname);
    const { route, params } = match(path);
    if (route?.signedIn && session === undefined) {
      try {
        await loadSession();
      } catch {
        session = undefined;
      }
      if (mine !== renders) return;
    }
    if (route?.signedIn && session === null) {
      history.replaceState(null, '', href(signInFor(path, location.search)));
      return render();
    }
    drawHeader(route);
    document.title = `${route?.title ?? 'Not found'} · Image API billing`;
    const view: View = {
      main,
      session: session ?? null,
      params,
      search: new URLSearchParams(location.search),
      navigate,
      signedIn: (s) => {
        session = s;
      },
      announce,
      carried,
    };
    carried = null;
    main.className = route?.signedIn === false ? 'narrow' : '';
    replace(main, h('p', { class: 'loading' }, 'Loading…'));
    try {
      if (!route) {
        replace(
          main,
          h('h1', null, 'Page not found'),
          h('p', null, h('a', { href: href('/') }, 'Go to the overview')),
        );
      } else {
        await route.render(view);
      }
    } catch (e) {
      if (mine !== renders) return;
      if (e instanceof ApiError && e.status === 401) return; // onSessionEnded moved on
      replace(
        main,
        h('h1', null, route?.title ?? 'Error'),
        notice(
          'error',
          e instanceof ApiError && e.status !== 0
            ? `This page could not be loaded: ${e.message}`
            : 'This page could not be loaded. Check your connection and reload.',
        ),
      );
    }
    if (mine !== renders) return;
    const h1 = main.querySelector('h1');
    if (h1) h1.setAttribute('tabindex', '-1');
    // Focus the new page's heading (not on first load: the browser starts at the top).
    if (!first && h1) h1.focus();
    first = false;
  }

  // Links inside the console change the page without reloading it.
  document.addEventListener('click', (ev) => {
    const a = ev.target instanceof Element ? ev.target.closest('a') : null;
    if (!a || ev.defaultPrevented || ev.button !== 0) return;
    if (ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    if (a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith(BASE) || url.hash) return;
    ev.preventDefault();
    if (url.pathname === location.pathname && url.search === location.search) return;
    history.pushState(null, '', url.pathname + url.search);
    carried = null;
    void render();
  });
  window.addEventListener('popstate', () => void render());

  void render();
}
