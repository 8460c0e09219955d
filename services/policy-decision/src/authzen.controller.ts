import { timingSafeEqual } from 'node:crypto';
import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Inject,
  Post,
  Req,
  ServiceUnavailableException,
  UnauthorizedException,
} from '@nestjs/common';
import type { Decision } from '@hcp/core';
import { DecisionService } from './decision.service';
import { DECISION_SERVICE } from './policy-decision.controller';
import {
  evaluationSchema,
  evaluationsSchema,
  evaluationToInput,
  resourceArgumentNamed,
  type Evaluation,
} from './authzen';

/** Token under which the composition root provides the AuthZEN bearer token (or null: no auth). */
export const AUTHZEN_TOKEN = Symbol('AuthzenToken');

interface EvaluationResult {
  decision: boolean;
  context: {
    decision_id: string;
    reason_code: string;
    invariant?: string;
    reason_admin: { en: string };
  };
}

function result(d: Decision): EvaluationResult {
  return {
    decision: d.outcome === 'allow',
    context: {
      decision_id: d.id,
      reason_code: d.reason,
      ...(d.invariant !== undefined ? { invariant: d.invariant } : {}),
      reason_admin: { en: d.explanation },
    },
  };
}

function bad(issues: { path: PropertyKey[]; message: string }[]): BadRequestException {
  const first = issues[0];
  const field = first ? first.path.map(String).join('.') || '(body)' : '(body)';
  return new BadRequestException({
    error: { code: 'INPUT_INVALID', message: `${field}: ${first?.message ?? 'invalid'}` },
  });
}

/**
 * OpenID AuthZEN 1.0 Access Evaluation API (§6 evaluation, §7 evaluations) from the same
 * engine and cache as the gRPC Decide. Malformed bodies are 400 with a typed code; a
 * refusal is `decision: false` with the reason code in `context`.
 */
@Controller()
export class AuthzenController {
  constructor(
    @Inject(DECISION_SERVICE) private readonly decisions: DecisionService,
    @Inject(AUTHZEN_TOKEN) private readonly token: string | null,
  ) {}

  @Post('access/v1/evaluation')
  @HttpCode(200)
  async evaluation(
    @Body() body: unknown,
    @Headers('authorization') auth: string | undefined,
  ): Promise<EvaluationResult> {
    this.authenticate(auth);
    const parsed = evaluationSchema.safeParse(body);
    if (!parsed.success) throw bad(parsed.error.issues);
    return result(await this.decisions.decide(await this.inputOf(parsed.data)));
  }

  @Post('access/v1/evaluations')
  @HttpCode(200)
  async evaluations(
    @Body() body: unknown,
    @Headers('authorization') auth: string | undefined,
  ): Promise<EvaluationResult | { evaluations: EvaluationResult[] }> {
    this.authenticate(auth);
    const parsed = evaluationsSchema.safeParse(body);
    if (!parsed.success) throw bad(parsed.error.issues);
    const { evaluations, options, ...defaults } = parsed.data;
    const complete = (i: number, e: Partial<Evaluation>): Evaluation => {
      const merged = { ...defaults, ...e };
      const check = evaluationSchema.safeParse(merged);
      if (!check.success)
        throw bad(check.error.issues.map((x) => ({ ...x, path: ['evaluations', i, ...x.path] })));
      return check.data;
    };
    if (evaluations === undefined || evaluations.length === 0) {
      return result(await this.decisions.decide(await this.inputOf(complete(0, {}))));
    }
    // Validate every item before deciding any, so a bad item cannot leave a partial batch.
    const items = evaluations.map((e, i) => complete(i, e));
    const semantic = options?.evaluations_semantic ?? 'execute_all';
    const out: EvaluationResult[] = [];
    for (const e of items) {
      const r = result(await this.decisions.decide(await this.inputOf(e)));
      out.push(r);
      if (semantic === 'deny_on_first_deny' && !r.decision) break;
      if (semantic === 'permit_on_first_permit' && r.decision) break;
    }
    return { evaluations: out };
  }

  /** The engine's input for an evaluation; an unnamed resource goes to the first declared argument. */
  private async inputOf(e: Evaluation) {
    const first =
      resourceArgumentNamed(e.resource) === undefined
        ? await this.decisions.firstResourceArgument(e.subject.id, e.action.name)
        : undefined;
    return evaluationToInput(e, first);
  }

  @Get('.well-known/authzen-configuration')
  configuration(
    @Req() req: { protocol: string; headers: Record<string, string | undefined> },
  ): Record<string, string> {
    const base = `${req.protocol}://${req.headers['host'] ?? 'localhost'}`;
    return {
      policy_decision_point: base,
      access_evaluation_endpoint: `${base}/access/v1/evaluation`,
      access_evaluations_endpoint: `${base}/access/v1/evaluations`,
    };
  }

  private authenticate(header: string | undefined): void {
    if (this.token === null) return;
    const presented = header?.startsWith('Bearer ') ? header.slice(7) : '';
    const a = Buffer.from(presented);
    const b = Buffer.from(this.token);
    if (a.length !== b.length || !timingSafeEqual(a, b)) {
      throw new UnauthorizedException({
        error: { code: 'PRINCIPAL_UNAUTHENTICATED', message: 'bearer token required' },
      });
    }
  }
}

/** Liveness and readiness for the HTTP side. */
@Controller()
export class HealthController {
  constructor(@Inject('READINESS') private readonly ready: () => boolean) {}

  @Get('healthz')
  healthz(): { status: string } {
    return { status: 'ok' };
  }

  @Get('readyz')
  readyz(): { status: string } {
    if (!this.ready()) throw new ServiceUnavailableException({ status: 'not ready' });
    return { status: 'ready' };
  }
}
