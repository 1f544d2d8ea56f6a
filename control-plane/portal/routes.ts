import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { hashApiKey, parseApiKeyPrefix } from '../../tenants/api-keys.ts';
import { page, type SafeHtml } from '../console/html.ts';
import { registerAssets, registerBrowserSecurity, requireCsrf } from '../console/security.ts';
import { type SessionStore, sessionCookie, type TenantSession } from '../console/sessions.ts';
import { apiKeysOf, dailyUsage } from '../console/tenant-detail.ts';
import type { ControlPlaneContext } from '../context.ts';
import { HttpError, parseInput } from '../errors.ts';
import { keyFitsHost, otherTenantRefusal, requestHost } from '../host-tenancy.ts';
import { tenantStanding } from '../routes/usage-view.ts';
import { portalPage, portalSignInPage } from './pages.ts';
import type { RateLimitHits } from './rate-limit-hits.ts';

export const PORTAL_COOKIE = '__Host-portal';
const ASSETS = '/portal/assets';
const signInBody = z.strictObject({ key: z.string().min(1).max(200) });

/**
 * The customer portal: an API key is exchanged for a short session (the key never reaches browser
 * storage), and every figure shown is read for the session's tenant only. On a tenant's own host the
 * host and the key must name the same tenant (host-tenancy.ts, the same rule as the API).
 */
export async function portalRoutes(
  app: FastifyInstance,
  ctx: ControlPlaneContext,
  sessions: SessionStore,
  hits: RateLimitHits,
) {
  const { config } = ctx;
  const https = config.CONSOLE_PUBLIC_URL?.startsWith('https://') ?? true;
  const hostOf = (request: FastifyRequest) => requestHost(request, ctx.hostRules);

  await app.register(async (scope) => {
    await registerBrowserSecurity(scope, { https });
    registerAssets(scope, ASSETS);

    const render = (reply: FastifyReply, title: string, session: TenantSession | null, body: SafeHtml) =>
      reply.type('text/html; charset=utf-8').send(
        page(
          {
            title,
            csrfToken: reply.generateCsrf(),
            nav: [],
            current: '',
            signedInAs: session === null ? null : session.tenantId,
            signOutPath: '/portal/logout',
            assetsPath: ASSETS,
            pollMs: config.CONSOLE_POLL_MS,
          },
          body,
        ),
      );

    /** The session, refused when the host names another tenant than the one signed in. */
    const sessionOf = async (request: FastifyRequest) => {
      const session = await sessions.get(request.cookies[PORTAL_COOKIE], 'tenant');
      if (session === null) return null;
      return keyFitsHost(hostOf(request), session.tenantId) ? session : null;
    };

    scope.get('/portal', async (_request, reply) => reply.redirect('/portal/'));
    scope.get('/portal/', async (request, reply) => {
      const session = await sessionOf(request);
      if (session === null) return render(reply, 'Usage portal: sign in', null, portalSignInPage(null));
      const tenant = await ctx.tenants.get(session.tenantId);
      if (tenant === null) {
        await sessions.destroy(request.cookies[PORTAL_COOKIE]!);
        return render(
          reply,
          'Usage portal: sign in',
          null,
          portalSignInPage('This tenant no longer exists.'),
        );
      }
      const [standing, leases, daily, keys, hitsByDay] = await Promise.all([
        tenantStanding(ctx, tenant),
        ctx.leases.liveLeases(tenant.id),
        dailyUsage(ctx.pool, tenant.id, 30),
        apiKeysOf(ctx.pool, tenant.id),
        hits.byDay(tenant.id),
      ]);
      const shownDays = new Set(daily.map((d) => d.day));
      const rateLimitHits = [...hitsByDay]
        .filter(([day]) => shownDays.has(day))
        .sort(([a], [b]) => b.localeCompare(a))
        .map(([day, n]) => ({ day, hits: n }));
      return render(
        reply,
        `Usage of ${tenant.id}`,
        session,
        portalPage({ tenant, standing, leases, now: (ctx.clock ?? Date.now)(), daily, rateLimitHits, keys }),
      );
    });

    scope.post('/portal/session', { onRequest: requireCsrf(scope) }, async (request, reply) => {
      const { key } = parseInput(signInBody, request.body, 'body');
      // As on the API: a valid key is never refused by the guessing limit; only failures count.
      const owner = await ctx.keys.verify(hashApiKey(key), key);
      if (owner === null) {
        const prefix = parseApiKeyPrefix(key);
        const sources = prefix === null ? [`ip:${request.ip}`] : [`ip:${request.ip}`, `prefix:${prefix}`];
        const blocked = Math.max(
          ...(await Promise.all(sources.map((source) => ctx.authFailures.fail(source)))),
        );
        if (blocked > 0) {
          throw new HttpError(429, 'too many failed sign-ins from this address or for this key', {
            'Retry-After': blocked,
          });
        }
        throw new HttpError(401, 'invalid or revoked API key');
      }
      const host = hostOf(request);
      if (host.kind === 'tenant' && host.tenantId !== owner.tenantId) {
        ctx.metrics.hostTenantRefusals.inc({ surface: 'portal' });
        throw otherTenantRefusal(host);
      }
      const ttl = config.PORTAL_SESSION_TTL_SECONDS;
      const id = await sessions.create({
        kind: 'tenant',
        tenantId: owner.tenantId,
        keyPrefix: owner.prefix,
        expiresAt: Date.now() + ttl * 1000,
      });
      reply.setCookie(PORTAL_COOKIE, id, sessionCookie(ttl));
      return { next: '/portal/' };
    });

    scope.post('/portal/logout', { onRequest: requireCsrf(scope) }, async (request, reply) => {
      const id = request.cookies[PORTAL_COOKIE];
      if (id !== undefined) await sessions.destroy(id);
      reply.clearCookie(PORTAL_COOKIE, { path: '/' });
      return { next: '/portal/' };
    });
  });
}
