import { Module, type DynamicModule } from '@nestjs/common';
import { AUTHZEN_TOKEN, AuthzenController, HealthController } from './authzen.controller';
import type { DecisionService } from './decision.service';
import { DECISION_SERVICE, PolicyDecisionController } from './policy-decision.controller';

/** The gRPC side: PolicyDecision, over one DecisionService shared with the HTTP side. */
@Module({})
export class PolicyDecisionGrpcModule {
  static forRoot(service: DecisionService): DynamicModule {
    return {
      module: PolicyDecisionGrpcModule,
      controllers: [PolicyDecisionController],
      providers: [{ provide: DECISION_SERVICE, useValue: service }],
    };
  }
}

/** The HTTP side: AuthZEN evaluation API and health endpoints. */
@Module({})
export class PolicyDecisionHttpModule {
  static forRoot(
    service: DecisionService,
    token: string | null,
    ready: () => boolean,
  ): DynamicModule {
    return {
      module: PolicyDecisionHttpModule,
      controllers: [AuthzenController, HealthController],
      providers: [
        { provide: DECISION_SERVICE, useValue: service },
        { provide: AUTHZEN_TOKEN, useValue: token },
        { provide: 'READINESS', useValue: ready },
      ],
    };
  }
}
