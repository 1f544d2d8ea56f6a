import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { OPERATOR_ROLES } from '../operator-auth.ts';

const operatorSession = z.object({
  kind: z.literal('operator'),
  subject: z.string().min(1),
  role: z.enum(OPERATOR_ROLES),
  expiresAt: z.number(),
});
const tenantSession = z.object({
  kind: z.literal('tenant'),
  tenantId: z.string().min(1),
  keyPrefix: z.string().min(1),
  expiresAt: z.number(),
});
/** The OIDC round trip in flight: PKCE verifier, state and nonce, kept on the server, used once. */
const loginSession = z.object({
  kind: z.literal('login'),
  codeVerifier: z.string().min(43),
  state: z.string().min(1),
  nonce: z.string().min(1),
  expiresAt: z.number(),
});
const sessionSchema = z.discriminatedUnion('kind', [operatorSession, tenantSession, loginSession]);

export type Session = z.infer<typeof sessionSchema>;
export type OperatorSession = z.infer<typeof operatorSession>;
export type TenantSession = z.infer<typeof tenantSession>;
export type LoginSession = z.infer<typeof loginSession>;

/**
 * Server-side sessions: the cookie holds only a random id, and the store keys the entry by the id's
 * hash, so a copy of Redis lets nobody sign in. Sign-out deletes the entry, which ends the session on
 * every replica at once. Redis when the control plane has it, memory otherwise.
 */
export class SessionStore {
  private readonly memory = new Map<string, string>();

  constructor(
    private readonly redis: Redis | null,
    private readonly keyPrefix: string,
  ) {}

  private key(id: string): string {
    return `${this.keyPrefix}session:${createHash('sha256').update(id).digest('hex')}`;
  }

  /** Stores the session and returns the id for the cookie. */
  async create(session: Session): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    const ttlMs = session.expiresAt - Date.now();
    const value = JSON.stringify(session);
    if (this.redis === null) this.memory.set(this.key(id), value);
    else await this.redis.set(this.key(id), value, 'PX', Math.max(1, Math.ceil(ttlMs)));
    return id;
  }

  /** The live session of a cookie value; null when unknown, expired or of another kind. */
  async get<K extends Session['kind']>(
    id: string | undefined,
    kind: K,
  ): Promise<Extract<Session, { kind: K }> | null> {
    if (id === undefined || id === '' || id.length > 100) return null;
    const key = this.key(id);
    const raw = this.redis === null ? this.memory.get(key) : await this.redis.get(key);
    if (raw === undefined || raw === null) return null;
    const parsed = sessionSchema.safeParse(JSON.parse(raw));
    if (!parsed.success || parsed.data.kind !== kind) return null;
    if (parsed.data.expiresAt <= Date.now()) {
      await this.destroy(id);
      return null;
    }
    return parsed.data as Extract<Session, { kind: K }>;
  }

  /** Reads and deletes in one step, so a login state cannot be replayed. */
  async take<K extends Session['kind']>(
    id: string | undefined,
    kind: K,
  ): Promise<Extract<Session, { kind: K }> | null> {
    const session = await this.get(id, kind);
    if (session !== null && id !== undefined) await this.destroy(id);
    return session;
  }

  async destroy(id: string): Promise<void> {
    if (this.redis === null) this.memory.delete(this.key(id));
    else await this.redis.del(this.key(id));
  }
}

/** Cookie attributes of every session cookie: HttpOnly, Secure, host-only (`__Host-` prefix). */
export function sessionCookie(maxAgeSeconds: number, sameSite: 'strict' | 'lax' = 'strict') {
  return { path: '/', httpOnly: true, secure: true, sameSite, maxAge: maxAgeSeconds } as const;
}
