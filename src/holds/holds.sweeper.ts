import {
  Inject,
  Injectable,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import type { AppConfig } from '../config/app.config.js';
import { HoldsService } from './holds.service.js';

/**
 * Each instance sweeps expired holds now and then. Correctness never depends on it: an
 * expired hold stops counting at its expiry (authorize sweeps the account it touches, and
 * reads subtract expired holds); the sweep only tidies up accounts nobody is using.
 */
@Injectable()
export class HoldsSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HoldsSweeper.name);
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    @Inject(HoldsService) private readonly holds: HoldsService,
    @Inject(ConfigService) private readonly config: ConfigService<AppConfig, true>,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(
      () => this.tick(),
      this.config.get('spend', { infer: true }).holdSweepSeconds * 1000,
    );
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.running;
  }

  private tick(): void {
    if (this.running) return;
    this.running = this.holds
      .sweepExpired()
      .then((n) => {
        if (n > 0) this.logger.log(`expired ${n} holds`);
      })
      .catch((err: unknown) => this.logger.warn(`hold sweep failed: ${String(err)}`))
      .finally(() => (this.running = null));
  }
}
