import {
  Catch,
  HttpException,
  HttpStatus,
  type ArgumentsHost,
  type ExceptionFilter,
} from '@nestjs/common';
import { HcpError } from '@hcp/core';
import { createLogger } from '@hcp/platform';
import { EntryNotFoundError, OperatorRequiredError } from './errors';

interface HttpError {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

const log = createLogger('AuditHttpExceptionFilter');

/** Names for the statuses Nest itself raises (unknown route, wrong method). */
const HTTP_CODES: Readonly<Record<number, string>> = {
  400: 'INPUT_INVALID',
  401: 'PRINCIPAL_UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  503: 'UNAVAILABLE',
};

/** The one place audit-log's errors become HTTP responses `{ error: { code, message } }`. */
export function httpErrorOf(err: unknown): HttpError {
  if (err instanceof HcpError) {
    if (err.reason === 'PRINCIPAL_UNAUTHENTICATED')
      return { status: 401, code: err.reason, message: err.message };
    if (err.reason === 'INPUT_INVALID' || err.reason === 'PAYLOAD_TOO_LARGE')
      return { status: 400, code: err.reason, message: err.message };
    if (err.reason === 'AUDIT_UNAVAILABLE' || err.reason === 'POLICY_UNAVAILABLE')
      return { status: 503, code: err.reason, message: err.message };
    return { status: 403, code: err.reason, message: err.message };
  }
  if (err instanceof OperatorRequiredError)
    return { status: 403, code: 'FORBIDDEN', message: err.message };
  if (err instanceof EntryNotFoundError)
    return { status: 404, code: 'NOT_FOUND', message: err.message };
  if (err instanceof HttpException) {
    const status = err.getStatus();
    return { status, code: HTTP_CODES[status] ?? 'HTTP_ERROR', message: err.message };
  }
  log.error({ err }, 'unexpected error in the audit REST API');
  return { status: HttpStatus.INTERNAL_SERVER_ERROR, code: 'INTERNAL', message: 'internal error' };
}

interface ExpressResponse {
  status(code: number): ExpressResponse;
  setHeader(name: string, value: string): void;
  json(body: unknown): void;
}

/** Global filter of the HTTP app: every error, also from guards and unknown routes, in one shape. */
@Catch()
export class AuditHttpExceptionFilter implements ExceptionFilter {
  catch(exception: unknown, host: ArgumentsHost): void {
    const res = host.switchToHttp().getResponse<ExpressResponse>();
    const e = httpErrorOf(exception);
    if (e.status === 401) res.setHeader('WWW-Authenticate', 'Bearer realm="hcp-audit"');
    res.status(e.status).json({ error: { code: e.code, message: e.message } });
  }
}
