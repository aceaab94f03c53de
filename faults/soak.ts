/**
 * `npm run soak`: ten minutes (SOAK_SECONDS) of steady mixed traffic at a moderate rate,
 * open loop (each request is due at its scheduled time, its latency counted from then):
 * single usage events, a batch every second, gateway authorize calls, and customer reads
 * (usage list, month statement, balance) with console keys. The service's RSS is sampled
 * every second and latency summarised per window. Verdict: memory flat (median RSS of the
 * last third after warm-up within +15% of the first third's) and latency flat (the median of
 * the per-window p99s over the last third of the post-warm-up windows within 2× the first
 * third's, or under 20 ms; in a short run that is the last window against the first after
 * warm-up), no errors, and the books exact at the end (direct SQL + reconcile-cli).
 * Writes faults/results/soak.json (git-ignore faults/results/).
 *
 * Env: SOAK_SECONDS (600), SOAK_WINDOW_SECONDS (30), SOAK_RATE (single events/s, 300),
 * SOAK_BATCH (events per batch, one batch per second, 100), SOAK_AUTHORIZE_RATE (50),
 * SOAK_ACCOUNTS (100), DATABASE_URL (unset: embedded PostgreSQL), SOAK_SEED.
 */
import { writeFileSync } from 'node:fs';
import type { OutgoingHttpHeaders } from 'node:http';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';
import { CpuProbe, type CpuUsage, rssMiB } from '../bench/lib/cpu.js';
import { prepareDatabases } from '../bench/lib/db.js';
import type { HttpResponse } from '../bench/lib/load.js';
import { round, sleep, summarize } from '../bench/lib/stats.js';
import {
  checkBooks,
  Dec,
  envInt,
  errText,
  Gateway,
  jsonHeaders,
  newKeys,
  planEvent,
  RESULTS_DIR,
  rng,
  runMain,
  seedFrom,
  ServiceSlot,
  setupAccounts,
  table,
  type PlannedEvent,
} from './lib/index.js';

interface Req {
  method: string;
  path: string;
  headers: OutgoingHttpHeaders;
  body?: string;
  events?: PlannedEvent[];
}

interface Stream {
  name: string;
  rate: number;
  /** Gates the verdict on its latency (the others are reported). */
  gated: boolean;
  make(): Req;
  /** null when the answer is right, else what is wrong. */
  check(req: Req, res: HttpResponse): string | null;
}

interface WindowStats {
  index: number;
  fromS: number;
  toS: number;
  latency: Record<string, number[]>;
  errors: number;
  rss: number[];
  cpu: CpuUsage | null;
}

const median = (xs: number[]): number => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '—');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '—');

runMain('soak', envInt('SOAK_SECONDS', 600) + 900, async (h) => {
  const { log } = h;
  const seed = seedFrom('SOAK_SEED');
  const r = rng(seed);
  const CFG = {
    seconds: envInt('SOAK_SECONDS', 600),
    windowSeconds: envInt('SOAK_WINDOW_SECONDS', 30),
    singleRate: envInt('SOAK_RATE', 300),
    batchSize: envInt('SOAK_BATCH', 100),
    batchRate: 1,
    authorizeRate: envInt('SOAK_AUTHORIZE_RATE', 50),
    usageReadRate: 2,
    statementRate: 1,
    balanceRate: 1,
    accounts: envInt('SOAK_ACCOUNTS', 100),
    maxSockets: 128,
    maxInFlight: 4000,
    rssGrowthLimit: 0.15,
    p99Factor: 2,
    p99FloorMs: 20,
  };
  const warmupSeconds = Math.min(60, Math.round(CFG.seconds * 0.2));
  log(`seed ${seed}: ${JSON.stringify(CFG)}, warm-up ${warmupSeconds} s`);

  const dbs = await prepareDatabases(log);
  h.onCleanup(() => dbs.cleanup());
  const keys = newKeys();
  const slot = new ServiceSlot('service', {
    databaseUrl: dbs.serviceUrl,
    ...keys,
    logDir: h.outDir,
    maxSockets: CFG.maxSockets,
  });
  h.onCleanup(() => slot.stop());
  const svc = await slot.start();
  const client = slot.client();
  if (!client) throw new Error('no client');
  log(
    `PostgreSQL ${dbs.serverVersion} (${dbs.source}); service pid ${svc.pid} on :${svc.port}, RSS ${f1(rssMiB(svc.pid) ?? NaN)} MiB`,
  );

  const fx = await setupAccounts({
    clients: [client],
    adminKey: keys.adminKey,
    accounts: CFG.accounts,
    tokensPerAccount: 2,
    credit: () => '1000000.00',
    tag: 'soak',
  });
  log(
    `set-up: ${fx.accounts.length} accounts, ${fx.tokens.length} tokens; RSS ${f1(rssMiB(svc.pid) ?? NaN)} MiB`,
  );

  // ---- traffic ------------------------------------------------------------------------------------
  const runTag = `s${seed.toString(36)}${Date.now().toString(36)}`;
  let seq = 0;
  const planned: PlannedEvent[] = [];
  const nextEvent = (): PlannedEvent => {
    const e = planEvent(r, `${runTag}-${seq++}`, fx, r.int(0, fx.tokens.length - 1));
    planned.push(e);
    return e;
  };
  const gw = (body: string): OutgoingHttpHeaders => jsonHeaders(keys.gatewayKey, body);
  const period = new Date().toISOString().slice(0, 7);
  const sameEvent = (
    e: PlannedEvent,
    outcome: string | undefined,
    charge: string | undefined,
  ): string | null =>
    outcome === e.outcome && charge !== undefined && new Dec(charge).eq(e.charge)
      ? null
      : `${e.requestId}: ${outcome}/${charge}, expected ${e.outcome}/${e.charge.toFixed()}`;
  const status =
    (want: number) =>
    (_req: Req, res: HttpResponse): string | null =>
      res.status === want ? null : `HTTP ${res.status}: ${res.body.slice(0, 200)}`;

  const streams: Stream[] = [
    {
      name: 'single event',
      rate: CFG.singleRate,
      gated: true,
      make: () => {
        const e = nextEvent();
        return {
          method: 'POST',
          path: '/v1/usage-events',
          headers: gw(e.json),
          body: e.json,
          events: [e],
        };
      },
      check: (req, res) => {
        if (res.status !== 201) return `HTTP ${res.status}: ${res.body.slice(0, 200)}`;
        const a = JSON.parse(res.body) as { outcome?: string; charge?: string };
        return sameEvent(req.events![0], a.outcome, a.charge);
      },
    },
    {
      name: `batch of ${CFG.batchSize}`,
      rate: CFG.batchRate,
      gated: false,
      make: () => {
        const events = Array.from({ length: CFG.batchSize }, nextEvent);
        const body = `{"events":[${events.map((e) => e.json).join(',')}]}`;
        return { method: 'POST', path: '/v1/usage-events/batch', headers: gw(body), body, events };
      },
      check: (req, res) => {
        if (res.status !== 200) return `HTTP ${res.status}: ${res.body.slice(0, 200)}`;
        const a = JSON.parse(res.body) as { results?: { outcome?: string; charge?: string }[] };
        const evs = req.events!;
        if (a.results?.length !== evs.length)
          return `batch: ${a.results?.length} results for ${evs.length}`;
        for (let i = 0; i < evs.length; i++) {
          const wrong = sameEvent(evs[i], a.results[i].outcome, a.results[i].charge);
          if (wrong) return wrong;
        }
        return null;
      },
    },
    {
      name: 'authorize',
      rate: CFG.authorizeRate,
      gated: true,
      make: () => {
        const body = JSON.stringify({
          key: fx.tokens[r.int(0, fx.tokens.length - 1)].key,
          model: r.pick(['gpt-image-2', 'gpt-image-2-all', 'gpt-image-2-vip']),
        });
        return { method: 'POST', path: '/v1/gateway/authorize', headers: gw(body), body };
      },
      check: (_req, res) =>
        res.status === 200 && (JSON.parse(res.body) as { allowed?: boolean }).allowed === true
          ? null
          : `authorize HTTP ${res.status}: ${res.body.slice(0, 200)}`,
    },
    {
      name: 'GET /v1/me/usage',
      rate: CFG.usageReadRate,
      gated: false,
      make: () => ({
        method: 'GET',
        path: '/v1/me/usage?limit=50',
        headers: jsonHeaders(fx.accounts[r.int(0, fx.accounts.length - 1)].consoleKey),
      }),
      check: status(200),
    },
    {
      name: 'GET statement',
      rate: CFG.statementRate,
      gated: false,
      make: () => ({
        method: 'GET',
        path: `/v1/me/statements/${period}`,
        headers: jsonHeaders(fx.accounts[r.int(0, fx.accounts.length - 1)].consoleKey),
      }),
      check: status(200),
    },
    {
      name: 'GET /v1/me',
      rate: CFG.balanceRate,
      gated: false,
      make: () => ({
        method: 'GET',
        path: '/v1/me',
        headers: jsonHeaders(fx.accounts[r.int(0, fx.accounts.length - 1)].consoleKey),
      }),
      check: status(200),
    },
  ];

  const nWindows = Math.ceil(CFG.seconds / CFG.windowSeconds);
  const windows: WindowStats[] = Array.from({ length: nWindows }, (_, i) => ({
    index: i,
    fromS: i * CFG.windowSeconds,
    toS: Math.min(CFG.seconds, (i + 1) * CFG.windowSeconds),
    latency: Object.fromEntries(streams.map((s) => [s.name, [] as number[]])),
    errors: 0,
    rss: [],
    cpu: null,
  }));
  const errorSamples: string[] = [];
  /** Events whose request failed (no answer, or a non-2xx): the gateway would resend them. */
  const redeliver: PlannedEvent[] = [];
  let errors = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let maxSendLagMs = 0;
  const run: { aborted: string | null; probe: CpuProbe | null; window: number } = {
    aborted: null,
    probe: null,
    window: -1,
  };
  const rssSamples: { t: number; mib: number }[] = [];

  const T = performance.now() + 20;
  const windowOf = (scheduled: number): WindowStats =>
    windows[
      Math.min(nWindows - 1, Math.max(0, Math.floor((scheduled - T) / 1000 / CFG.windowSeconds)))
    ];
  const recordError = (w: WindowStats, m: string): void => {
    errors++;
    w.errors++;
    if (errorSamples.length < 10) errorSamples.push(m.slice(0, 300));
  };
  const fire = (s: Stream, scheduled: number): void => {
    const req = s.make();
    const w = windowOf(scheduled);
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    client.request(req.method, req.path, req.headers, req.body).then(
      (res) => {
        inFlight--;
        w.latency[s.name].push(performance.now() - scheduled);
        let wrong: string | null;
        try {
          wrong = s.check(req, res);
        } catch (e) {
          wrong = `unreadable answer (${errText(e)}): ${res.body.slice(0, 200)}`;
        }
        if (wrong) recordError(w, `${s.name}: ${wrong}`);
        if (res.status < 200 || res.status >= 300) redeliver.push(...(req.events ?? []));
        // The bodies are no longer needed; keep only what the books check reads.
        for (const e of req.events ?? []) e.json = '';
      },
      (err: unknown) => {
        inFlight--;
        w.latency[s.name].push(performance.now() - scheduled);
        recordError(w, `${s.name}: network: ${errText(err)}`);
        redeliver.push(...(req.events ?? []));
      },
    );
  };

  log(
    `soak: ${CFG.seconds} s, ${CFG.windowSeconds} s windows; ${CFG.singleRate} single events/s + a batch of ${CFG.batchSize}/s ` +
      `(${CFG.singleRate + CFG.batchSize * CFG.batchRate} events/s), ${CFG.authorizeRate} authorize/s, ` +
      `${CFG.usageReadRate + CFG.statementRate + CFG.balanceRate} customer reads/s; load average before: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
  );
  const sent = streams.map(() => 0);
  const endAt = T + CFG.seconds * 1000;
  await new Promise<void>((resolve) => {
    const rssTimer = setInterval(() => {
      const mib = rssMiB(svc.pid);
      if (mib === null) return;
      const t = (performance.now() - T) / 1000;
      rssSamples.push({ t, mib });
      windowOf(performance.now()).rss.push(mib);
    }, 1000);
    const tick = (): void => {
      const now = performance.now();
      const wi = Math.floor((now - T) / 1000 / CFG.windowSeconds);
      if (wi !== run.window && wi < nWindows && now >= T) {
        if (run.probe && run.window >= 0) windows[run.window].cpu = run.probe.stop();
        run.probe = new CpuProbe({ service: svc.pid, postmaster: dbs.postmasterPid });
        run.window = wi;
        if (wi > 0) {
          const prev = windows[wi - 1];
          const s0 = summarize(prev.latency[streams[0].name]);
          log(
            `  window ${wi}/${nWindows}: single p50 ${f2(s0.p50)} ms p99 ${f2(s0.p99)} ms, RSS ${f1(median(prev.rss))} MiB, ` +
              `errors ${prev.errors}, in flight ${inFlight}`,
          );
        }
      }
      const until = Math.min(now, endAt);
      streams.forEach((s, i) => {
        const interval = 1000 / s.rate;
        while (T + sent[i] * interval <= until && T + sent[i] * interval < endAt) {
          const scheduled = T + sent[i] * interval;
          maxSendLagMs = Math.max(maxSendLagMs, now - scheduled);
          sent[i]++;
          fire(s, scheduled);
        }
      });
      if (inFlight > CFG.maxInFlight)
        run.aborted = `${inFlight} requests in flight: the service fell behind`;
      if (now >= endAt || run.aborted || svc.exited()) {
        clearInterval(rssTimer);
        if (svc.exited()) run.aborted = `the service died:\n${svc.logTail()}`;
        resolve();
        return;
      }
      setTimeout(tick, 2);
    };
    setTimeout(tick, Math.max(0, T - performance.now()));
  });
  // Wait for the stragglers (bounded by the client's 30 s timeout).
  const drainUntil = performance.now() + 35_000;
  while (inFlight > 0 && performance.now() < drainUntil) await sleep(20);
  if (run.probe && run.window >= 0) windows[run.window].cpu = run.probe.stop();
  const rssEnd = rssMiB(svc.pid);

  // ---- verdict ------------------------------------------------------------------------------------
  const after = rssSamples.filter((s) => s.t >= warmupSeconds).map((s) => s.mib);
  const third = Math.max(1, Math.floor(after.length / 3));
  const rssFirst = median(after.slice(0, third));
  const rssLast = median(after.slice(-third));
  const rssGrowth = rssLast / rssFirst - 1;
  const memoryFlat = Number.isFinite(rssGrowth) && rssGrowth <= CFG.rssGrowthLimit;
  // Latency trend: the median of the per-window p99s over the last third of the windows after
  // warm-up against the first third's (one window each in a short run). A single window's
  // p99 rests on its slowest 1%: one burst of other work on the machine moves it, so the
  // last-window-against-first-window figure is printed too, but does not decide.
  const steady = windows.filter((w) => w.fromS >= warmupSeconds);
  const wThird = Math.max(1, Math.floor(steady.length / 3));
  const baseline = steady[0] ?? windows[0];
  const last = windows[nWindows - 1];
  const latencyVerdicts = streams
    .filter((s) => s.gated)
    .map((s) => {
      const p99s = steady.map((w) => summarize(w.latency[s.name]).p99);
      const firstMedian = median(p99s.slice(0, wThird));
      const lastMedian = median(p99s.slice(-wThird));
      const b = summarize(baseline.latency[s.name]).p99;
      const l = summarize(last.latency[s.name]).p99;
      const ok = lastMedian <= CFG.p99Factor * firstMedian || lastMedian < CFG.p99FloorMs;
      return {
        stream: s.name,
        windowsPerThird: wThird,
        firstThirdMedianP99: round(firstMedian),
        lastThirdMedianP99: round(lastMedian),
        baselineWindow: baseline.index,
        baselineP99: round(b),
        lastP99: round(l),
        lastWindowWithin: l <= CFG.p99Factor * b || l < CFG.p99FloorMs,
        ok,
      };
    });
  const maxOther = Math.max(0, ...windows.map((w) => w.cpu?.otherPct ?? 0));
  const latencyFlat = latencyVerdicts.every((v) => v.ok);

  const rows: string[][] = [
    [
      'window (s)',
      'events',
      'single p50',
      'single p99',
      `batch p99`,
      'authorize p99',
      'reads p99',
      'errors',
      'RSS MiB',
      'CPU svc/pg/other %',
    ],
    ...windows.map((w) => {
      const single = summarize(w.latency[streams[0].name]);
      const reads = summarize(streams.slice(3).flatMap((s) => w.latency[s.name]));
      const cpu = w.cpu;
      return [
        `${w.fromS}–${w.toS}`,
        String(
          w.latency[streams[0].name].length + w.latency[streams[1].name].length * CFG.batchSize,
        ),
        f2(single.p50),
        f2(single.p99),
        f2(summarize(w.latency[streams[1].name]).p99),
        f2(summarize(w.latency[streams[2].name]).p99),
        f2(reads.p99),
        String(w.errors),
        f1(median(w.rss)),
        cpu
          ? `${Math.round(cpu.servicePct ?? 0)}/${Math.round(cpu.postgresPct ?? 0)}/${Math.round(cpu.otherPct ?? 0)}`
          : '—',
      ];
    }),
  ];
  const totals = streams.map((s) => ({
    stream: s.name,
    rate: s.rate,
    ...summarize(windows.flatMap((w) => w.latency[s.name])),
  }));
  log(
    `traffic done: ${errors} errors, max ${maxInFlight} in flight, max send lag ${f2(maxSendLagMs)} ms; checking the books`,
  );
  const redelivery = new Gateway(keys.gatewayKey);
  if (redeliver.length > 0) {
    log(`resending the ${redeliver.length} event(s) whose request failed, as the gateway would`);
    for (const e of redeliver) await redelivery.deliver(slot, [e], false);
  }
  const bookFailures = await checkBooks(log, dbs.serviceUrl, fx, planned);

  const failures: string[] = [];
  if (run.aborted) failures.push(`aborted: ${run.aborted}`);
  if (errors > 0) failures.push(`${errors} errors, e.g. ${errorSamples.slice(0, 3).join(' | ')}`);
  failures.push(...redelivery.failures.map((f) => `resending: ${f}`));
  if (!memoryFlat)
    failures.push(
      `memory not flat: median RSS ${f1(rssFirst)} → ${f1(rssLast)} MiB (+${(rssGrowth * 100).toFixed(1)}% > ${CFG.rssGrowthLimit * 100}%)`,
    );
  for (const v of latencyVerdicts)
    if (!v.ok)
      failures.push(
        `${v.stream} latency not flat: median window p99 ${v.firstThirdMedianP99} ms (first third) → ${v.lastThirdMedianP99} ms (last third)`,
      );
  failures.push(...bookFailures);

  const out = [
    '',
    `Soak — ${CFG.seconds} s, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, node ${process.version}, PostgreSQL ${dbs.serverVersion} (${dbs.source})`,
    `Traffic (open loop, latency from the scheduled send time): ${CFG.singleRate} single events/s, a batch of ${CFG.batchSize} every second, ` +
      `${CFG.authorizeRate} authorize/s, ${CFG.usageReadRate + CFG.statementRate + CFG.balanceRate} customer reads/s; ${planned.length} events in all`,
    '',
    table(rows),
    '',
    ...totals.map(
      (t) =>
        `  ${t.stream.padEnd(18)} ${String(t.count).padStart(7)} requests  p50 ${f2(t.p50)} ms  p99 ${f2(t.p99)} ms  max ${f2(t.max)} ms`,
    ),
    '',
    `Memory: RSS ${f1(rssSamples[0]?.mib ?? NaN)} MiB at the start, median ${f1(rssFirst)} MiB over the first third after the ${warmupSeconds} s warm-up, ` +
      `${f1(rssLast)} MiB over the last third (${rssGrowth >= 0 ? '+' : ''}${(rssGrowth * 100).toFixed(1)}%; limit +${CFG.rssGrowthLimit * 100}%), ` +
      `max ${f1(Math.max(...rssSamples.map((s) => s.mib)))} MiB, ${f1(rssEnd ?? NaN)} MiB at the end → ${memoryFlat ? 'flat' : 'NOT FLAT'}`,
    ...latencyVerdicts.map(
      (v) =>
        `Latency (${v.stream}): median of the window p99s ${v.firstThirdMedianP99} ms over the first ${v.windowsPerThird} window(s) after warm-up, ` +
        `${v.lastThirdMedianP99} ms over the last ${v.windowsPerThird} (limit ${CFG.p99Factor}× or < ${CFG.p99FloorMs} ms) → ${v.ok ? 'flat' : 'NOT FLAT'}; ` +
        `single windows: p99 ${v.baselineP99} ms in window ${v.baselineWindow}, ${v.lastP99} ms in the last (${v.lastWindowWithin ? 'within' : 'outside'} the same limit)`,
    ),
    ...(maxOther > 25
      ? [
          `WARNING: other processes on this machine used up to ${Math.round(maxOther)}% of a core in a window (column "other"); ` +
            'latency figures are disturbed by them — rerun on a quiet machine for the README',
        ]
      : []),
    `Errors: ${errors}; max ${maxInFlight} requests in flight; max send lag ${f2(maxSendLagMs)} ms`,
    failures.length === 0
      ? 'PASSED: memory and latency flat, no errors, books exact'
      : `FAILED (${failures.length}):\n${failures.map((f) => `  - ${f}`).join('\n')}`,
    '',
    `Results: ${join(RESULTS_DIR, 'soak.json')}`,
  ];
  process.stdout.write(out.join('\n') + '\n');
  writeFileSync(
    join(RESULTS_DIR, 'soak.json'),
    JSON.stringify(
      {
        startedAt: new Date(Date.now() - CFG.seconds * 1000).toISOString(),
        machine: {
          cpus: cpus().length,
          cpuModel: cpus()[0]?.model,
          memGiB: round(totalmem() / 2 ** 30, 1),
          node: process.version,
        },
        postgres: { version: dbs.serverVersion, source: dbs.source },
        config: { ...CFG, warmupSeconds, seed },
        events: planned.length,
        errors,
        errorSamples,
        maxInFlight,
        maxSendLagMs: round(maxSendLagMs),
        totals: totals.map((t) => ({
          ...t,
          p50: round(t.p50),
          p90: round(t.p90),
          p99: round(t.p99),
          max: round(t.max),
          mean: round(t.mean),
        })),
        windows: windows.map((w) => ({
          fromS: w.fromS,
          toS: w.toS,
          errors: w.errors,
          rssMedianMiB: round(median(w.rss), 1),
          rssMaxMiB: round(Math.max(...w.rss), 1),
          cpu: w.cpu,
          latencyMs: Object.fromEntries(
            Object.entries(w.latency).map(([k, v]) => {
              const s = summarize(v);
              return [
                k,
                { count: s.count, p50: round(s.p50), p99: round(s.p99), max: round(s.max) },
              ];
            }),
          ),
        })),
        rss: {
          samples: rssSamples.map((s) => [round(s.t, 1), round(s.mib, 1)]),
          firstThirdMedianMiB: round(rssFirst, 1),
          lastThirdMedianMiB: round(rssLast, 1),
          growthPct: round(rssGrowth * 100, 1),
          flat: memoryFlat,
        },
        latency: { verdicts: latencyVerdicts, flat: latencyFlat },
        failures,
      },
      null,
      2,
    ) + '\n',
  );
  return failures.length === 0;
});
