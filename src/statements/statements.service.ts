import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { AccountsService } from '../accounts/accounts.service.js';
import { decodeCursor, DEFAULT_LIMIT, Page, toPage } from '../common/pagination/pagination.js';
import type { LedgerEntryDto } from './dto/ledger-entry.dto.js';
import type { StatementDto } from './dto/statement.dto.js';
import { BuiltStatement, buildStatement, parsePeriod, Period } from './statement-math.js';
import { toLedgerEntryDto, toStatementDto } from './statements.mapper.js';
import { LedgerCursor, StatementsRepository } from './statements.repository.js';

/** A ledger page's position: the last entry's created_at (text, microseconds kept) and id, or its id alone. */
function ledgerCursor(cursor: string | undefined): LedgerCursor | null {
  if (cursor === undefined) return null;
  try {
    const [at, id] = decodeCursor(cursor, ['timestamp', 'int']) ?? [];
    return { at, id };
  } catch {
    // A cursor of the id alone, from before; anything else is refused by this decode.
    const [id] = decodeCursor(cursor, ['int']) ?? [];
    return { at: null, id };
  }
}

/** The ledger as the customer reads it, and monthly statements. */
@Injectable()
export class StatementsService {
  private readonly logger = new Logger(StatementsService.name);

  constructor(
    @Inject(DataSource) private readonly ds: DataSource,
    @Inject(StatementsRepository) private readonly repo: StatementsRepository,
    @Inject(AccountsService) private readonly accounts: AccountsService,
  ) {}

  /**
   * Newest first; the cursor is the last entry's (created_at, id), the ledger's primary key
   * after its account. A cursor of an id alone (given out before the key changed) still works.
   */
  async ledger(
    accountId: string,
    limit = DEFAULT_LIMIT,
    cursor?: string,
  ): Promise<Page<LedgerEntryDto>> {
    await this.accounts.get(accountId);
    const rows = await this.repo.ledgerPage(accountId, limit + 1, ledgerCursor(cursor));
    return toPage(rows, limit, (e) => [e.cursorAt, e.id], toLedgerEntryDto);
  }

  /**
   * A month's statement, read in one REPEATABLE READ snapshot so that the balances, the
   * movements and the usage roll-ups agree even while events are being booked. Costs a few
   * index probes and ~31 × models roll-up rows, whatever the month's volume.
   */
  async statement(accountId: string, periodParam: string, now = new Date()): Promise<StatementDto> {
    const period = parsePeriod(periodParam, now);
    await this.accounts.get(accountId);
    const built = await this.ds.transaction('REPEATABLE READ', async (em) => {
      await em.query('SET TRANSACTION READ ONLY');
      const openingBalance = await this.repo.balanceBefore(accountId, period.start, em);
      const closingBalance = await this.repo.balanceBefore(accountId, period.end, em);
      const moves = await this.repo.movements(accountId, period.start, period.end, em);
      const daily = await this.repo.usageByModelFromRollups(
        accountId,
        period.startDay,
        period.endDay,
        em,
      );
      const facts = {
        openingBalance,
        closingBalance,
        topUps: moves.topUps,
        redemptions: moves.redemptions,
        refundEntries: moves.refunds,
        disputeEntries: moves.disputes,
        adjustmentEntries: moves.adjustments,
      };
      const fromRollups = buildStatement(period.period, { ...facts, byModel: daily });
      if (fromRollups.reconciles) return fromRollups;
      // Should not happen: the roll-ups are written with the events and their ledger entries.
      // Recount from the events themselves (same snapshot) and say loudly what disagreed.
      const events = await this.repo.usageByModelFromEvents(
        accountId,
        period.start,
        period.end,
        em,
      );
      const fromEvents = buildStatement(period.period, { ...facts, byModel: events });
      this.reportMismatch(accountId, period, fromRollups, fromEvents);
      return fromEvents;
    });
    return toStatementDto(built.statement);
  }

  private reportMismatch(
    accountId: string,
    period: Period,
    rollups: BuiltStatement,
    events: BuiltStatement,
  ): void {
    const where = `account ${accountId} period ${period.period}`;
    if (events.reconciles) {
      this.logger.error(
        `usage_daily disagrees with usage_events for ${where}: roll-ups charge ` +
          `${rollups.statement.usage.charge.toFixed()}, events ${events.statement.usage.charge.toFixed()}; ` +
          `statement built from the events`,
      );
    } else {
      this.logger.error(
        `statement does not reconcile for ${where}: closing ${events.statement.closingBalance.toFixed()}, ` +
          `movements give ${events.expectedClosing.toFixed()}`,
      );
    }
  }
}
