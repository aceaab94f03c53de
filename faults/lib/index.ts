/**
 * Shared pieces of the fault suite (npm run test:crash, test:instances, soak): a harness with
 * cleanup on every exit path, a service "slot" that can be SIGKILLed and restarted, the
 * account set-up through the API, an event planner that prices every event independently of
 * the service (from the contract's seeded prices and group ratios, exact in decimal) with the
 * hold each request's authorize must get, a gateway simulator that authorizes, delivers and
 * releases, resending until it gets a definitive answer, and the books check by direct SQL
 * (ledger, balances, spend and holds) followed by `reconcile-cli`.
 */
// One concern per file; this index re-exports what the fault tests (crash.ts, two-instances.ts,
// soak.ts) use. Internals (Resender, the single hold checks) stay in their files.
export {
  Dec,
  envInt,
  errText,
  MAIN_JS,
  makeLogger,
  RECONCILE_JS,
  RESULTS_DIR,
  ROOT,
  ZERO,
} from './env.js';
export { runMain, type Harness } from './harness.js';
export { newKeys, ServiceSlot, type Target } from './service.js';
export { callJson, honourKeepAliveHint, jsonHeaders } from './http.js';
export {
  GROUP_RATIOS,
  setupAccounts,
  type AccountFx,
  type Fixture,
  type TokenFx,
} from './fixture.js';
export { rng, seedFrom, type Rng } from './rng.js';
export {
  accountsNeverShort,
  planEvent,
  planHold,
  planHolds,
  type Outcome,
  type PlannedEvent,
  type PlannedHold,
} from './plan.js';
export type { RetryStats } from './resender.js';
export { Gateway, type GatewayStats } from './gateway.js';
export {
  HoldGateway,
  holdFigures,
  type AuthorizeAnswer,
  type HoldPlan,
  type HoldStats,
} from './hold-gateway.js';
export { authorizeAndDeliver, type GatewayJob } from './gateway-job.js';
export { checkBooks, verifyBooks, type BooksReport } from './books.js';
export { runReconcile } from './reconcile.js';
export { negativeControl } from './negative-control.js';
export { table } from '../../bench/lib/table.js';
