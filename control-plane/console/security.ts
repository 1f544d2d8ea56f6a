import { readFileSync } from 'node:fs';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyHelmet from '@fastify/helmet';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const ASSETS_DIR = new URL('./assets/', import.meta.url);

/**
 * Headers and CSRF for the browser-facing scopes: @fastify/helmet defaults with a CSP that allows
 * scripts, styles and connections from this origin only (no inline script, no inline style), and a
 * CSRF token bound to an HttpOnly SameSite=Strict cookie, required on every state-changing request.
 */
export async function registerBrowserSecurity(
  scope: FastifyInstance,
  options: { https: boolean },
): Promise<void> {
  await scope.register(fastifyHelmet, {
    contentSecurityPolicy: {
      useDefaults: true,
      directives: {
        'default-src': ["'self'"],
        'script-src': ["'self'"],
        'style-src': ["'self'"],
        'img-src': ["'self'", 'data:'],
        'connect-src': ["'self'"],
        'form-action': ["'self'"],
        'frame-ancestors': ["'none'"],
        'base-uri': ["'none'"],
        'object-src': ["'none'"],
        // Behind TLS every request is https anyway; on a local http listener the upgrade would break it.
        'upgrade-insecure-requests': options.https ? [] : null,
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
  });
  await scope.register(fastifyCookie);
  await scope.register(fastifyCsrf, {
    sessionPlugin: '@fastify/cookie',
    cookieKey: '__Host-csrf',
    cookieOpts: { path: '/', httpOnly: true, secure: true, sameSite: 'strict' },
    getToken: (request: FastifyRequest) => {
      const header = request.headers['x-csrf-token'];
      return typeof header === 'string' ? header : undefined;
    },
  });
  // Pages change with every load and may hold a freshly issued key: never store them.
  scope.addHook('onSend', async (_request, reply: FastifyReply) => {
    reply.header('Cache-Control', 'no-store');
  });
}

/** onRequest check: a POST, PUT, PATCH or DELETE without a valid CSRF token gets 403 from the plugin. */
export function requireCsrf(scope: FastifyInstance) {
  return (request: FastifyRequest, reply: FastifyReply, done: () => void): void => {
    if (request.method === 'GET' || request.method === 'HEAD') {
      done();
      return;
    }
    scope.csrfProtection(request, reply, done);
  };
}

/** The console's own script and stylesheet, read once. */
export function registerAssets(scope: FastifyInstance, prefix: string): void {
  const assets = {
    'app.js': { type: 'text/javascript; charset=utf-8', body: readFileSync(new URL('app.js', ASSETS_DIR)) },
    'app.css': { type: 'text/css; charset=utf-8', body: readFileSync(new URL('app.css', ASSETS_DIR)) },
  };
  for (const [name, asset] of Object.entries(assets)) {
    scope.get(`${prefix}/${name}`, async (_request, reply) => reply.type(asset.type).send(asset.body));
  }
}
