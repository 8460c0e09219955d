import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { Principal } from '@hcp/core';
import { bearerToken, type TokenVerifier } from '@hcp/platform';
import { AUDIT_TOKEN_VERIFIER } from './audit-log.tokens';
import { NotAcceptableError, OperatorRequiredError } from './errors';

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

/**
 * HTTP guard: Bearer JWT -> principal, operators only, answering JSON. Its errors go through the
 * exception filter, which records each refusal; the principal is attached before the operator
 * check so a 403 is recorded with who was refused.
 */
@Injectable()
export class OperatorGuard implements CanActivate {
  constructor(@Inject(AUDIT_TOKEN_VERIFIER) private readonly verifier: TokenVerifier) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<{
      headers: Record<string, string | string[] | undefined>;
      /** Express's content negotiation (the `accepts` package). */
      accepts(type: string): string | false;
      [PRINCIPAL_KEY]?: Principal;
    }>();
    const header = req.headers['authorization'];
    const principal = await this.verifier.verify(
      bearerToken(typeof header === 'string' ? header : undefined),
    );
    req[PRINCIPAL_KEY] = principal;
    if (principal.kind !== 'operator') throw new OperatorRequiredError(principal.kind);
    if (req.accepts('application/json') === false)
      throw new NotAcceptableError(String(req.headers['accept'] ?? ''));
    return true;
  }
}
