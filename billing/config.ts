import Stripe from 'stripe';
import { z } from 'zod';
import type { EnvironmentConfig } from '../config/environments.ts';
import { BillingConfigError } from './errors.ts';

const environmentSchema = z.object({
  STRIPE_API_KEY: z.string().trim().optional(),
  /** Where the Stripe API is, for a local contract server: `http://127.0.0.1:12111`. @default - api.stripe.com */
  STRIPE_API_URL: z.url().optional(),
  /** Largest accepted difference in reconcile, as a fraction of our total. */
  BILLING_RECONCILE_TOLERANCE: z.coerce.number().min(0).max(1).optional(),
});

export interface BillingConfig {
  readonly apiKey: string;
  readonly api?: { readonly host: string; readonly port: number; readonly protocol: 'http' | 'https' };
  readonly reconcileTolerance: number;
}

/** Default reconcile tolerance: Stripe stores decimal values, so anything past rounding is a real difference. */
export const DEFAULT_RECONCILE_TOLERANCE = 0;

/**
 * Reads the Stripe settings. The key must match the environment's mode: live keys only for prod, test keys
 * everywhere else, so a dev run can never bill a real customer.
 */
export function loadBillingConfig(
  env: EnvironmentConfig,
  source: NodeJS.ProcessEnv = process.env,
): BillingConfig {
  const parsed = environmentSchema.safeParse(source);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new BillingConfigError(`invalid billing setting '${issue.path.join('.')}': ${issue.message}`);
  }
  const { STRIPE_API_KEY: apiKey, STRIPE_API_URL: url, BILLING_RECONCILE_TOLERANCE: tolerance } = parsed.data;
  if (!apiKey) throw new BillingConfigError('STRIPE_API_KEY is not set: billing needs the Stripe secret key');
  const live = /^(sk|rk)_live_/.test(apiKey);
  if (env.name === 'prod' && !live)
    throw new BillingConfigError(`environment 'prod' needs a live Stripe key (sk_live_ or rk_live_)`);
  if (env.name !== 'prod' && live)
    throw new BillingConfigError(`environment '${env.name}' refuses a live Stripe key: use a test key`);
  let api: BillingConfig['api'];
  if (url) {
    const u = new URL(url);
    const protocol = u.protocol === 'http:' ? 'http' : 'https';
    api = { host: u.hostname, port: Number(u.port || (protocol === 'http' ? 80 : 443)), protocol };
  }
  return { apiKey, ...(api ? { api } : {}), reconcileTolerance: tolerance ?? DEFAULT_RECONCILE_TOLERANCE };
}

/**
 * The official SDK, pointed at STRIPE_API_URL when set. Its own retries are off (maxNetworkRetries 0): it
 * retries 409, 5xx and connection errors but not 429, so billing/retry.ts applies one policy to all of them.
 */
export function createStripeClient(config: BillingConfig): Stripe {
  return new Stripe(config.apiKey, {
    maxNetworkRetries: 0,
    timeout: 30_000,
    telemetry: false,
    appInfo: { name: 'agent-platform-billing' },
    ...(config.api ?? {}),
  });
}
