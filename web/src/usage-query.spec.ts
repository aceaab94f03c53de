import { describe, expect, it } from '@jest/globals';
import { fillDays } from './chart.js';
import { consolePath, href, safeNext } from './paths.js';
import {
  filtersFromSearch,
  filtersToSearch,
  outcomeLabel,
  reasonLabel,
  usageCsvUrl,
  usageListUrl,
} from './usage-query.js';

describe('usage links', () => {
  it('builds the CSV link with the same filters, the last day included', () => {
    expect(usageCsvUrl({})).toBe('/v1/me/usage/export');
    expect(
      usageCsvUrl({
        from: '2026-11-01',
        to: '2026-11-30',
        model: 'gpt-image-2',
        outcome: 'skipped',
      }),
    ).toBe('/v1/me/usage/export?from=2026-11-01&to=2026-12-01&model=gpt-image-2&outcome=skipped');
  });

  it('pages the list with limit and cursor, escaping the cursor', () => {
    expect(usageListUrl({ tokenId: 'abc' }, { limit: 100, cursor: 'a+b/c=' })).toBe(
      '/v1/me/usage?tokenId=abc&limit=100&cursor=a%2Bb%2Fc%3D',
    );
  });

  it('drops days that are not dates rather than sending them', () => {
    expect(usageCsvUrl({ from: '2026-13', to: 'yesterday' })).toBe('/v1/me/usage/export');
  });

  it('keeps filters in the page address and reads them back', () => {
    const f = { from: '2026-11-01', outcome: 'charged', tokenId: 't-1' };
    const search = filtersToSearch(f);
    expect(search).toBe('?from=2026-11-01&tokenId=t-1&outcome=charged');
    expect(filtersFromSearch(search)).toEqual(f);
    expect(filtersToSearch({})).toBe('');
  });

  it('says why an event was not billed', () => {
    expect(reasonLabel('upstream_error')).toBe('Upstream error');
    expect(reasonLabel('moderated')).toBe('Blocked by moderation');
    expect(reasonLabel(null)).toBe('');
    expect(reasonLabel('something_new')).toBe('something_new');
    expect(outcomeLabel('skipped')).toBe('Skipped (not billed)');
  });
});

describe('console paths', () => {
  it.each([
    ['/console', '/'],
    ['/console/', '/'],
    ['/console/tokens', '/tokens'],
    ['/console/top-ups/abc/', '/top-ups/abc'],
  ])('reads %p as %p', (pathname, path) => {
    expect(consolePath(pathname)).toBe(path);
  });

  it('builds links with their query', () => {
    expect(href('/')).toBe('/console/');
    expect(href('/usage?outcome=skipped')).toBe('/console/usage?outcome=skipped');
  });

  it.each([
    [null, '/'],
    ['/tokens', '/tokens'],
    ['/usage?x=1', '/usage?x=1'],
    ['//evil.example', '/'],
    ['https://evil.example', '/'],
    ['/\\evil.example', '/'],
    ['/sign-in', '/'],
  ])('goes back after sign-in only inside the console (%p → %p)', (next, expected) => {
    expect(safeNext(next)).toBe(expected);
  });
});

describe('chart days', () => {
  it('fills days without usage with zero', () => {
    expect(
      fillDays(['2026-11-01', '2026-11-02', '2026-11-03'], [{ key: '2026-11-02', charge: '0.5' }]),
    ).toEqual([
      { day: '2026-11-01', charge: '0' },
      { day: '2026-11-02', charge: '0.5' },
      { day: '2026-11-03', charge: '0' },
    ]);
  });
});
