import { describe, expect, it } from '@jest/globals';
import { GroupCommit } from './group-commit.js';

/** A write the test finishes by hand: each call is recorded with its items. */
function manualWrite() {
  const calls: {
    items: string[];
    alone: boolean;
    finish: (fail?: Error) => void;
  }[] = [];
  const write = (items: string[], alone: boolean): Promise<string[]> =>
    new Promise((resolve, reject) => {
      calls.push({
        items,
        alone,
        finish: (fail) => (fail ? reject(fail) : resolve(items.map((i) => `${i}!`))),
      });
    });
  return { calls, write };
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('GroupCommit', () => {
  it('writes a lone item at once, and items that arrive meanwhile together in the next write', async () => {
    const { calls, write } = manualWrite();
    const q = new GroupCommit({ name: 't', maxGroup: 10, maxInFlight: 1, write });
    const a = q.submit(['a']);
    expect(calls.map((c) => c.items)).toEqual([['a']]);
    const b = q.submit(['b']);
    const c = q.submit(['c', 'd']);
    calls[0].finish();
    expect(await a).toEqual(['a!']);
    await tick();
    expect(calls.map((x) => x.items)).toEqual([['a'], ['b', 'c', 'd']]);
    calls[1].finish();
    expect(await b).toEqual(['b!']);
    expect(await c).toEqual(['c!', 'd!']);
  });

  it('starts another write beside one in flight only once enough items wait', async () => {
    const { calls, write } = manualWrite();
    const q = new GroupCommit({
      name: 't',
      maxGroup: 10,
      maxInFlight: 4,
      minGroupWhileBusy: 3,
      busyWaitMs: 60_000,
      write,
    });
    const all = [q.submit(['a']), q.submit(['b']), q.submit(['c'])];
    // a went alone; b and c wait: two are fewer than three.
    expect(calls.map((x) => x.items)).toEqual([['a']]);
    all.push(q.submit(['d']));
    // Three wait now: they go together beside a.
    expect(calls.map((x) => x.items)).toEqual([['a'], ['b', 'c', 'd']]);
    for (const x of calls) x.finish();
    expect(await Promise.all(all)).toEqual([['a!'], ['b!'], ['c!'], ['d!']]);
  });

  it('starts a waiting item beside a write that takes long, once it has waited busyWaitMs', async () => {
    const { calls, write } = manualWrite();
    const q = new GroupCommit({
      name: 't',
      maxGroup: 10,
      maxInFlight: 4,
      minGroupWhileBusy: 100,
      busyWaitMs: 30,
      write,
    });
    const a = q.submit(['a']); // never finished until the end: a stuck transaction
    const started = Date.now();
    const b = q.submit(['b']);
    expect(calls).toHaveLength(1);
    while (calls.length < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(calls[1].items).toEqual(['b']);
    calls[1].finish();
    expect(await b).toEqual(['b!']);
    calls[0].finish();
    expect(await a).toEqual(['a!']);
  });

  it('writes each item of a failed group alone; one that fails alone fails only its own submission', async () => {
    const { calls, write } = manualWrite();
    const q = new GroupCommit({ name: 't', maxGroup: 10, maxInFlight: 1, write });
    const first = q.submit(['x']);
    // Its answer is read at the end; the handler is attached now, before it fails.
    const single = q.submit(['bad']).then(
      () => 'written',
      (e: unknown) => (e as Error).message,
    );
    const batch = q.submit(['ok', 'bad2'], (item) => `${item}?`);
    calls[0].finish();
    await first;
    await tick();
    expect(calls[1]).toMatchObject({ items: ['bad', 'ok', 'bad2'], alone: false });
    calls[1].finish(new Error('group failed'));
    // Each alone, in order, one at a time (maxInFlight 1), marked alone.
    for (const [item, fail] of [
      ['bad', true],
      ['ok', false],
      ['bad2', true],
    ] as const) {
      while (calls.length < 3 || calls[calls.length - 1].items[0] !== item) await tick();
      const call = calls[calls.length - 1];
      expect(call).toMatchObject({ items: [item], alone: true });
      call.finish(fail ? new Error(`${item} refused`) : undefined);
    }
    expect(await single).toBe('bad refused');
    expect(await batch).toEqual(['ok!', 'bad2?']);
  });
});
