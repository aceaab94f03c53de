import { Injectable } from '@nestjs/common';
import { Decimal } from 'decimal.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ZERO } from '../common/money/money.js';

/**
 * The service's Prometheus metrics (prom-client), one registry per app instance. Money is
 * the exception: `billing_charge_usd_total` is summed as Decimal and rendered as exact text,
 * because prom-client keeps values as JS numbers and money never passes through one.
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly usageEvents = new Counter({
    name: 'billing_usage_events_total',
    help: 'Usage events answered, by outcome (charged, skipped, review, duplicate, rejected).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly authorize = new Counter({
    name: 'billing_authorize_total',
    help: 'Gateway authorize answers, by allowed and deny reason.',
    labelNames: ['allowed', 'reason'] as const,
    registers: [this.registry],
  });
  readonly ingestBatchSize = new Histogram({
    name: 'billing_ingest_batch_size',
    help: 'Events written per ingestion transaction (group commit).',
    buckets: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000],
    registers: [this.registry],
  });
  readonly authorizeGroupSize = new Histogram({
    name: 'billing_authorize_group_size',
    help: 'Authorizes answered per statement and commit (group commit).',
    buckets: [1, 2, 5, 10, 25, 64],
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'billing_http_request_duration_seconds',
    help: 'HTTP request duration, by route template and status.',
    labelNames: ['route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.registry],
  });
  readonly stripeEvents = new Counter({
    name: 'billing_stripe_events_total',
    help: 'Stripe webhook events received, by type and outcome.',
    labelNames: ['type', 'outcome'] as const,
    registers: [this.registry],
  });
  private readonly charges = new Map<string, Decimal>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    // Gauges whose names end in _total fail `promtool check metrics`; the per-type gauges
    // beside them (nodejs_active_handles etc.) carry the same counts.
    for (const name of LINT_FAILING_DEFAULTS) this.registry.removeSingleMetric(name);
  }

  /** billing_holds_active, counted at each scrape by whoever owns the holds. */
  gaugeActiveHolds(count: () => Promise<number>): void {
    new Gauge({
      name: 'billing_holds_active',
      help: 'Holds that count now (active, not expired), all accounts.',
      registers: [this.registry],
      async collect() {
        this.set(await count());
      },
    });
  }

  /** Adds a booked charge to its model's total (exact). */
  charged(model: string, charge: Decimal): void {
    this.charges.set(model, (this.charges.get(model) ?? ZERO).plus(charge));
  }

  /** The exposition text: prom-client's metrics, then the exact money counter. */
  async render(): Promise<string> {
    const lines = [
      '# HELP billing_charge_usd_total USD booked for usage by this instance since it started, by model.',
      '# TYPE billing_charge_usd_total counter',
      ...[...this.charges.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(
          ([model, sum]) =>
            `billing_charge_usd_total{model="${escapeLabel(model)}"} ${sum.toFixed()}`,
        ),
    ];
    return `${await this.registry.metrics()}${lines.join('\n')}\n`;
  }
}

const LINT_FAILING_DEFAULTS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

const escapeLabel = (v: string): string =>
  v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
