import { registerAs } from '@nestjs/config';
import { isDecimalString, money } from '../common/money/money.js';

export interface ConsoleConfig {
  /** SIGNUP_ENABLED (default true): POST /v1/console/sign-up creates accounts. */
  signupEnabled: boolean;
  /** SIGNUP_TRIAL_CREDIT (default "0"): USD booked as an adjustment on every new sign-up. */
  signupTrialCredit: string;
  /** Base of invite links (PUBLIC_BASE_URL, else http://localhost:PORT). */
  publicBaseUrl: string;
  /** Session cookies are Secure when the public base URL is https (or the request is). */
  secureCookies: boolean;
}

function parseBoolean(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value === '') return fallback;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new Error(`Invalid configuration:\n  ${name}: must be true or false`);
}

function parseTrialCredit(value: string | undefined): string {
  if (value === undefined || value === '') return '0';
  const ok = isDecimalString(value) && money(value).gte(0) && money(value).lte(10000);
  if (!ok || money(value).decimalPlaces() > 10) {
    throw new Error(
      'Invalid configuration:\n  SIGNUP_TRIAL_CREDIT: must be a decimal string from 0 to 10000 (USD), e.g. "5.00"',
    );
  }
  return value;
}

/**
 * Read from process.env here (not src/config) so the console module stays self-contained;
 * a bad value stops the start with a message naming the variable.
 */
export function loadConsoleConfig(env: NodeJS.ProcessEnv = process.env): ConsoleConfig {
  const publicBaseUrl = (env.PUBLIC_BASE_URL || `http://localhost:${env.PORT || '3000'}`).replace(
    /\/+$/,
    '',
  );
  return {
    signupEnabled: parseBoolean('SIGNUP_ENABLED', env.SIGNUP_ENABLED, true),
    signupTrialCredit: parseTrialCredit(env.SIGNUP_TRIAL_CREDIT),
    publicBaseUrl,
    secureCookies: publicBaseUrl.startsWith('https://'),
  };
}

export const consoleConfig = registerAs('console', (): ConsoleConfig => loadConsoleConfig());
