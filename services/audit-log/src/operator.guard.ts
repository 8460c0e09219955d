import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Principal } from '@hcp/core';
import { bearerToken, type TokenVerifier } from '@hcp/platform';
import { AUDIT_TOKEN_VERIFIER } from './audit-log.tokens';
import { OperatorRequiredError } from './errors';

/** The authenticated caller, once the guard has run (request property). */
export const PRINCIPAL_KEY = 'hcpPrincipal';

/** Verifies a token and insists on an operator: the one access rule of the audit (agents never read it). */
export async function requireOperator(
  verifier: TokenVerifier,
  authorization: string | undefined,
): Promise<Principal> {
  const principal = await verifier.verify(bearerToken(authorization));
  if (principal.kind !== 'operator') throw new OperatorRequiredError(principal.kind);
  return principal;
}

/** HTTP guard: Bearer JWT -> principal, operators only. Its errors go through the exception filter. */
@Injectable()
export class OperatorGuard implements CanActivate {
  constructor(@Inject(AUDIT_TOKEN_VERIFIER) private readonly verifier: TokenVerifier) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<{
      headers: Record<string, string | string[] | undefined>;
      [PRINCIPAL_KEY]?: Principal;
    }>();
    const header = req.headers['authorization'];
    req[PRINCIPAL_KEY] = await requireOperator(
      this.verifier,
      typeof header === 'string' ? header : undefined,
    );
    return true;
  }
}
