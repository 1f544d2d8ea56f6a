import { type CryptoKey, createRemoteJWKSet, importSPKI, type JWTVerifyGetKey, jwtVerify } from 'jose';
import { z } from 'zod';
import type { ControlPlaneConfig } from './config.ts';

export const OPERATOR_ROLES = ['admin', 'operator', 'viewer'] as const;
export type OperatorRole = (typeof OPERATOR_ROLES)[number];

/** An authenticated operator. */
export interface Operator {
  readonly role: OperatorRole;
  /** `sub` of the token, used as the audit actor. */
  readonly subject: string;
}

/** `sub` goes into the audit trail, so it is bounded and printable. */
export const MAX_SUBJECT_LENGTH = 200;

const claimsSchema = z.object({
  role: z.enum(OPERATOR_ROLES),
  sub: z
    .string()
    .min(1)
    .max(MAX_SUBJECT_LENGTH)
    .regex(/^[\x21-\x7e]+$/)
    .optional(),
  iat: z.number(),
  exp: z.number(),
});

export type OperatorVerifier = (token: string) => Promise<Operator | null>;

/** Builds the JWT check from config: an HS256 secret, a PEM public key or a JWKS URL. */
export async function createOperatorVerifier(
  config: Pick<
    ControlPlaneConfig,
    | 'JWT_SECRET'
    | 'JWT_PUBLIC_KEY'
    | 'JWT_JWKS_URL'
    | 'JWT_ALGORITHM'
    | 'JWT_ISSUER'
    | 'JWT_AUDIENCE'
    | 'JWT_MAX_LIFETIME_SECONDS'
  >,
): Promise<OperatorVerifier> {
  let key: Uint8Array | CryptoKey | JWTVerifyGetKey;
  let algorithms: string[];
  if (config.JWT_SECRET !== undefined) {
    key = new TextEncoder().encode(config.JWT_SECRET);
    algorithms = ['HS256'];
  } else if (config.JWT_PUBLIC_KEY !== undefined) {
    key = await importSPKI(config.JWT_PUBLIC_KEY, config.JWT_ALGORITHM);
    algorithms = [config.JWT_ALGORITHM];
  } else if (config.JWT_JWKS_URL !== undefined) {
    key = createRemoteJWKSet(new URL(config.JWT_JWKS_URL));
    algorithms = ['RS256', 'ES256', 'EdDSA', 'PS256'];
  } else {
    throw new Error('no JWT key configured');
  }
  const options = {
    algorithms,
    // jose accepts a token without exp; one that never expires could not be withdrawn short of a key change.
    requiredClaims: ['exp', 'iat'],
    // A stolen token is good for at most this long after it was issued.
    maxTokenAge: config.JWT_MAX_LIFETIME_SECONDS,
    ...(config.JWT_ISSUER === undefined ? {} : { issuer: config.JWT_ISSUER }),
    ...(config.JWT_AUDIENCE === undefined ? {} : { audience: config.JWT_AUDIENCE }),
  };
  return async (token) => {
    try {
      const { payload } =
        typeof key === 'function'
          ? await jwtVerify(token, key, options)
          : await jwtVerify(token, key, options);
      const claims = claimsSchema.safeParse(payload);
      if (!claims.success) return null;
      // maxTokenAge bounds the age now; this bounds how long the issuer made it valid for.
      if (claims.data.exp - claims.data.iat > config.JWT_MAX_LIFETIME_SECONDS) return null;
      return { role: claims.data.role, subject: claims.data.sub ?? 'unknown' };
    } catch {
      return null;
    }
  };
}

/** Viewers read; operators and admins also write. */
export function canWrite(role: OperatorRole): boolean {
  return role === 'admin' || role === 'operator';
}
