import * as oidc from 'openid-client';
import type { ControlPlaneConfig } from '../config.ts';
import { ControlPlaneConfigError } from '../config.ts';
import { OPERATOR_ROLES, type OperatorRole } from '../operator-auth.ts';
import type { LoginSession } from './sessions.ts';

/** Sign-in failed for a reason the operator can act on; the message is shown on the sign-in page. */
export class SignInError extends Error {
  override readonly name = 'SignInError';
}

type OidcSettings = Pick<
  ControlPlaneConfig,
  | 'OIDC_ISSUER_URL'
  | 'OIDC_CLIENT_ID'
  | 'OIDC_CLIENT_SECRET'
  | 'OIDC_SCOPES'
  | 'OIDC_ROLE_CLAIM'
  | 'OIDC_ROLE_MAP'
  | 'OIDC_ALLOW_HTTP'
  | 'CONSOLE_PUBLIC_URL'
>;

/** Claim value -> role, from `admin=a,operator=b,viewer=c`; each role may be named once. */
export function parseRoleMap(text: string | undefined): Map<string, OperatorRole> {
  const map = new Map<string, OperatorRole>();
  if (text === undefined) {
    for (const role of OPERATOR_ROLES) map.set(role, role);
    return map;
  }
  for (const pair of text.split(',')) {
    const [role, value] = pair.split('=').map((s) => s.trim());
    if (!OPERATOR_ROLES.includes(role as OperatorRole) || value === undefined || value === '') {
      throw new ControlPlaneConfigError(
        `invalid OIDC_ROLE_MAP (${JSON.stringify(text)}): each entry is <admin|operator|viewer>=<claim value>`,
      );
    }
    map.set(value, role as OperatorRole);
  }
  return map;
}

/** The strongest role the claim grants: a claim may be one value or a list (groups). Null when none. */
export function roleFromClaim(claim: unknown, roles: Map<string, OperatorRole>): OperatorRole | null {
  const values = Array.isArray(claim) ? claim : [claim];
  const granted = values.flatMap((v) => (typeof v === 'string' && roles.has(v) ? [roles.get(v)!] : []));
  for (const role of OPERATOR_ROLES) if (granted.includes(role)) return role;
  return null;
}

export interface SignedInOperator {
  readonly subject: string;
  readonly role: OperatorRole;
}

/** Authorization code flow with PKCE (S256), state and nonce, through openid-client. */
export class OidcSignIn {
  private configuration: Promise<oidc.Configuration> | null = null;
  private readonly roles: Map<string, OperatorRole>;
  readonly redirectUri: string;

  constructor(private readonly settings: OidcSettings & { OIDC_ISSUER_URL: string }) {
    this.roles = parseRoleMap(settings.OIDC_ROLE_MAP);
    this.redirectUri = new URL('/console/callback', settings.CONSOLE_PUBLIC_URL).toString();
  }

  /** Discovery runs on the first sign-in, so the control plane starts while the identity provider is down. */
  private discover(): Promise<oidc.Configuration> {
    if (this.configuration === null) {
      const s = this.settings;
      this.configuration = oidc
        .discovery(
          new URL(s.OIDC_ISSUER_URL),
          s.OIDC_CLIENT_ID!,
          s.OIDC_CLIENT_SECRET,
          s.OIDC_CLIENT_SECRET === undefined ? oidc.None() : undefined,
          s.OIDC_ALLOW_HTTP ? { execute: [oidc.allowInsecureRequests] } : {},
        )
        .catch((error: unknown) => {
          this.configuration = null;
          throw new SignInError(`identity provider ${s.OIDC_ISSUER_URL} unreachable: ${String(error)}`);
        });
    }
    return this.configuration;
  }

  /** The provider's authorization URL and the login state to keep on the server until the callback. */
  async start(ttlMs: number): Promise<{ url: string; login: LoginSession }> {
    const config = await this.discover();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.redirectUri,
      scope: this.settings.OIDC_SCOPES,
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    return {
      url: url.toString(),
      login: { kind: 'login', codeVerifier, state, nonce, expiresAt: Date.now() + ttlMs },
    };
  }

  /** Exchanges the code, checks state, nonce and PKCE, and reads the role from the ID token or userinfo. */
  async finish(callbackPathAndQuery: string, login: LoginSession): Promise<SignedInOperator> {
    const config = await this.discover();
    const currentUrl = new URL(callbackPathAndQuery, this.redirectUri);
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: login.codeVerifier,
        expectedState: login.state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
    } catch (error) {
      throw new SignInError(`sign-in refused: ${error instanceof Error ? error.message : String(error)}`);
    }
    const idClaims = tokens.claims()!;
    const claimName = this.settings.OIDC_ROLE_CLAIM;
    let claims: Record<string, unknown> = idClaims;
    // Many providers put profile and group claims only in userinfo when an access token is issued.
    if (idClaims[claimName] === undefined) {
      claims = { ...(await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub)), ...idClaims };
    }
    const role = roleFromClaim(claims[claimName], this.roles);
    if (role === null) {
      throw new SignInError(
        `your account has no console role: claim '${claimName}' names none of ${[...this.roles.keys()].join(', ')}`,
      );
    }
    const label = [claims.email, claims.preferred_username, idClaims.sub].find(
      (v): v is string => typeof v === 'string' && v !== '',
    )!;
    return { subject: label, role };
  }
}
