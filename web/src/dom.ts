/** A tiny element builder: text always goes in as text nodes, never as HTML. */

export type Child = Node | string | number | null | undefined | false | Child[];
type Handler = (ev: Event) => void;
export type Props = Record<string, string | number | boolean | Handler | null | undefined>;

// Set as DOM properties rather than attributes.
const PROPS = new Set([
  'value',
  'checked',
  'disabled',
  'selected',
  'readOnly',
  'required',
  'hidden',
]);

function append(el: Element, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

function apply(el: Element, props: Props | null | undefined): void {
  if (!props) return;
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) {
      if (PROPS.has(k)) (el as unknown as Record<string, unknown>)[k] = false;
      continue;
    }
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else if (PROPS.has(k)) (el as unknown as Record<string, unknown>)[k] = v;
    else el.setAttribute(k === 'className' ? 'class' : k, v === true ? '' : String(v));
  }
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props?: Props | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  apply(el, props);
  append(el, children);
  return el;
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag: string, props?: Props | null, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG, tag);
  apply(el, props);
  append(el, children);
  return el;
}

let ids = 0;
/** A unique id for label/aria wiring. */
export const uid = (prefix: string): string => `${prefix}-${++ids}`;

/** A labelled form field: <label> + control (+ hint), wired by id and aria-describedby. */
export function field(
  label: string,
  control: HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement,
  hint?: string,
): HTMLDivElement {
  if (!control.id) control.id = uid('f');
  const parts: Child[] = [h('label', { for: control.id }, label)];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute('aria-describedby', hintId);
    parts.push(h('p', { class: 'hint', id: hintId }, hint));
  }
  parts.push(control);
  return h('div', { class: 'field' }, parts);
}

/** Replaces an element's children. */
export function replace(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

/** An inline error or notice box. role=alert for errors so screen readers say it at once. */
export function notice(kind: 'error' | 'info' | 'success' | 'warning', ...children: Child[]) {
  return h(
    'div',
    { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    children,
  );
}

/**
 * A table that turns into one card per row on a narrow screen (each cell labelled by its
 * column through data-label). The ARIA roles keep it a table for screen readers when CSS
 * changes its display.
 */
export function table(caption: string, head: string[], rows: Child[][]): HTMLDivElement {
  return h(
    'div',
    { class: 'table-wrap stack' },
    h(
      'table',
      { role: 'table' },
      h('caption', { class: 'visually-hidden' }, caption),
      h(
        'thead',
        { role: 'rowgroup' },
        h(
          'tr',
          { role: 'row' },
          head.map((c) => h('th', { scope: 'col', role: 'columnheader' }, c)),
        ),
      ),
      h(
        'tbody',
        { role: 'rowgroup' },
        rows.map((r) =>
          h(
            'tr',
            { role: 'row' },
            r.map((c, i) => h('td', { role: 'cell', 'data-label': head[i] ?? '' }, c)),
          ),
        ),
      ),
    ),
  );
}
