import { RDSClient } from '@aws-sdk/client-rds';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { databaseInstanceId } from '../../config/names.ts';
import { parseTenantId } from '../../tenants/tenant-id.ts';
import type { ControlPlaneContext } from '../context.ts';
import { HttpError, parseInput } from '../errors.ts';
import { operatorHostHook } from '../host-tenancy.ts';
import { canWrite } from '../operator-auth.ts';
import { operatorKeyRoutes } from '../routes/operator-keys.ts';
import { operatorStatusRoutes } from '../routes/operator-status.ts';
import { operatorTenantRoutes } from '../routes/operator-tenants.ts';
import { tenantStanding } from '../routes/usage-view.ts';
import { RdsBackupWatch } from './backups.ts';
import { guardRuns, latestCostReport } from './costs.ts';
import { readiness, scheduledRuns, TrafficSampler } from './health.ts';
import { html, page, type SafeHtml } from './html.ts';
import { OidcSignIn, SignInError } from './oidc.ts';
import { CONSOLE_API, costsPage, healthPage, signInPage, tenantDetailPage, tenantsPage } from './pages.ts';
import { registerAssets, registerBrowserSecurity, requireCsrf } from './security.ts';
import { type OperatorSession, type SessionStore, sessionCookie } from './sessions.ts';
import { tenantDetail } from './tenant-detail.ts';
import { tenantPage, tenantQuerySchema } from './tenants-data.ts';

export const CONSOLE_COOKIE = '__Host-console';
const LOGIN_COOKIE = '__Host-console-login';
const LOGIN_TTL_SECONDS = 600;
const ASSETS = '/console/assets';
const NO_BACKUP_CHECK = {
  job: 'database backups',
  lastRunAt: null,
  finishedAt: null,
  exitCode: null,
  detail: 'not checked: AWS_PROVISIONING is off, so the database is not the platform RDS instance',
};
const NAV = [
  { href: '/console/tenants', label: 'Tenants' },
  { href: '/console/costs', label: 'Costs' },
  { href: '/console/health', label: 'Health' },
];

/**
 * The operator console: OIDC sign-in, server-rendered pages, and the operator routes themselves
 * mounted under /console/api with the session as credential. Changes therefore run the same
 * handlers, checks and audit writes as the JWT API; there is no second write path.
 */
export async function consoleRoutes(app: FastifyInstance, ctx: ControlPlaneContext, sessions: SessionStore) {
  const { config } = ctx;
  const signIn =
    config.OIDC_ISSUER_URL === undefined
      ? null
      : new OidcSignIn({ ...config, OIDC_ISSUER_URL: config.OIDC_ISSUER_URL });
  const traffic = new TrafficSampler(ctx.metrics);
  // On the platform's AWS account (the EKS chart sets AWS_PROVISIONING) the database is the RDS instance.
  const backups = config.AWS_PROVISIONING
    ? new RdsBackupWatch(new RDSClient({ maxAttempts: 2 }), databaseInstanceId(ctx.environment))
    : null;
  app.addHook('onClose', async () => traffic.close());
  const https = config.CONSOLE_PUBLIC_URL?.startsWith('https://') ?? true;

  await app.register(async (scope) => {
    scope.addHook('onRequest', operatorHostHook(ctx.hostRules));
    await registerBrowserSecurity(scope, { https });
    registerAssets(scope, ASSETS);

    const operatorOf = (request: FastifyRequest) => sessions.get(request.cookies[CONSOLE_COOKIE], 'operator');

    const render = (
      reply: FastifyReply,
      title: string,
      current: string,
      session: OperatorSession | null,
      body: SafeHtml,
    ) =>
      reply.type('text/html; charset=utf-8').send(
        page(
          {
            title,
            csrfToken: reply.generateCsrf(),
            nav: session === null ? [] : NAV,
            current,
            signedInAs: session === null ? null : `${session.subject} (${session.role})`,
            signOutPath: '/console/logout',
            assetsPath: ASSETS,
            pollMs: config.CONSOLE_POLL_MS,
          },
          body,
        ),
      );

    /** Page handler that sends a visitor without a session to the sign-in page. */
    const signedIn =
      (
        handler: (request: FastifyRequest, reply: FastifyReply, session: OperatorSession) => Promise<unknown>,
      ) =>
      async (request: FastifyRequest, reply: FastifyReply) => {
        const session = await operatorOf(request);
        if (session === null) return reply.redirect('/console/login');
        return handler(request, reply, session);
      };

    scope.get('/console/login', async (request, reply) => {
      const problem =
        typeof (request.query as { error?: unknown }).error === 'string'
          ? 'Sign-in failed; see below.'
          : null;
      return render(reply, 'Sign in to the console', '', null, signInPage(config.OIDC_ISSUER_URL, problem));
    });

    scope.get('/console/login/start', async (_request, reply) => {
      if (signIn === null) throw new HttpError(503, 'console sign-in is not configured (OIDC_ISSUER_URL)');
      const { url, login } = await signIn.start(LOGIN_TTL_SECONDS * 1000);
      // Lax, not Strict: the provider's redirect back is a cross-site navigation and must carry it.
      reply.setCookie(LOGIN_COOKIE, await sessions.create(login), sessionCookie(LOGIN_TTL_SECONDS, 'lax'));
      return reply.redirect(url);
    });

    scope.get('/console/callback', async (request, reply) => {
      if (signIn === null) throw new HttpError(503, 'console sign-in is not configured (OIDC_ISSUER_URL)');
      const login = await sessions.take(request.cookies[LOGIN_COOKIE], 'login');
      reply.clearCookie(LOGIN_COOKIE, { path: '/' });
      if (login === null) {
        return render(
          reply.code(400),
          'Sign-in failed',
          '',
          null,
          html`<p role="alert">The sign-in expired or was already used. <a href="/console/login/start">Sign in again</a>.</p>`,
        );
      }
      try {
        const operator = await signIn.finish(request.url, login);
        const ttl = config.CONSOLE_SESSION_TTL_SECONDS;
        const id = await sessions.create({
          kind: 'operator',
          ...operator,
          expiresAt: Date.now() + ttl * 1000,
        });
        reply.setCookie(CONSOLE_COOKIE, id, sessionCookie(ttl));
        request.log.info({ subject: operator.subject, role: operator.role }, 'console sign-in');
        // A redirect would continue the provider's cross-site navigation, and browsers then withhold the
        // Strict cookie; a same-origin document moving on sends it.
        return reply
          .type('text/html; charset=utf-8')
          .send(
            '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/console/tenants"><title>Signed in</title><a href="/console/tenants">Continue</a>',
          );
      } catch (error) {
        if (!(error instanceof SignInError)) throw error;
        request.log.warn({ err: error.message }, 'console sign-in refused');
        return render(
          reply.code(403),
          'Sign-in failed',
          '',
          null,
          html`<p role="alert">${error.message}</p><p><a href="/console/login/start">Try again</a></p>`,
        );
      }
    });

    scope.post('/console/logout', { onRequest: requireCsrf(scope) }, async (request, reply) => {
      const id = request.cookies[CONSOLE_COOKIE];
      if (id !== undefined) await sessions.destroy(id);
      reply.clearCookie(CONSOLE_COOKIE, { path: '/' });
      return { next: '/console/login' };
    });

    scope.get('/console', async (_request, reply) => reply.redirect('/console/tenants'));
    scope.get('/console/', async (_request, reply) => reply.redirect('/console/tenants'));

    scope.get(
      '/console/tenants',
      signedIn(async (request, reply, session) => {
        const query = parseInput(tenantQuerySchema, request.query, 'query');
        const data = await tenantPage(ctx.pool, ctx.leases, query);
        return render(reply, 'Tenants', '/console/tenants', session, tenantsPage(data, query));
      }),
    );

    scope.get<{ Params: { id: string } }>(
      '/console/tenants/:id',
      signedIn(async (request, reply, session) => {
        const id = parseTenantId((request.params as { id: string }).id);
        const [view, state, leases] = await Promise.all([
          tenantDetail(ctx.pool, id),
          ctx.tenants.get(id),
          ctx.leases.liveLeases(id),
        ]);
        if (view === null || state === null) throw new HttpError(404, `tenant '${id}' does not exist`);
        const { usage } = await tenantStanding(ctx, state);
        return render(
          reply,
          `Tenant ${id}`,
          '/console/tenants',
          session,
          tenantDetailPage(view, { standing: usage, leases, now: (ctx.clock ?? Date.now)() }, session.role),
        );
      }),
    );

    scope.get(
      '/console/costs',
      signedIn(async (_request, reply, session) => {
        const [report, runs] = await Promise.all([
          latestCostReport(ctx.pool, ctx.environment),
          guardRuns(ctx.pool),
        ]);
        return render(reply, 'Costs', '/console/costs', session, costsPage(report, runs));
      }),
    );

    scope.get(
      '/console/health',
      signedIn(async (_request, reply, session) => {
        const [checks, figures, runs, backup] = await Promise.all([
          readiness(ctx.pool, ctx.store),
          traffic.figures(),
          scheduledRuns(ctx.pool),
          backups?.latest() ?? NO_BACKUP_CHECK,
        ]);
        return render(
          reply,
          'Health',
          '/console/health',
          session,
          healthPage(checks, figures, [...runs, backup]),
        );
      }),
    );

    // The operator API itself, with the console session instead of a bearer JWT.
    await scope.register(
      async (api) => {
        api.addHook('onRequest', async (request) => {
          const session = await operatorOf(request);
          if (session === null) throw new HttpError(401, 'console session missing or expired: sign in again');
          request.operator = { role: session.role, subject: `console:${session.subject}` };
        });
        api.addHook('onRequest', requireCsrf(api));
        api.addHook('onRequest', async (request) => {
          const reads = request.method === 'GET' || request.method === 'HEAD';
          if (!reads && !canWrite(request.operator!.role)) {
            throw new HttpError(403, `role '${request.operator!.role}' may only read`);
          }
        });
        operatorTenantRoutes(api, ctx);
        operatorKeyRoutes(api, ctx);
        operatorStatusRoutes(api, ctx);
      },
      { prefix: CONSOLE_API },
    );
  });
}
