import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { grants as grantsProto, policy, type grants } from '@hcp/proto';
import { PolicyEngine, type AblationSwitch } from '@hcp/policy';
import {
  createGrpcClient,
  createLogger,
  GRANTS_CHANGED_SUBJECT,
  NestJsonLogger,
  startGrpcService,
  type AuditPublisher,
  type EventBus,
  type Subscription,
} from '@hcp/platform';
import { DecisionService } from './decision.service';
import { GrpcGrantSource } from './grpc-grant-source';
import { PolicyCache } from './policy-cache';
import { PolicyDecisionGrpcModule, PolicyDecisionHttpModule } from './policy-decision.module';
import type { GrantSource } from './grant-source';

export { GRANTS_CHANGED_SUBJECT };

/** Everything the PDP needs to run; the composition root or main.ts fills it. */
export interface PolicyDecisionOptions {
  readonly grantStoreUrl: string;
  readonly bus: EventBus;
  readonly grpcPort: number;
  /** HTTP port of the AuthZEN API and health endpoints; null: no HTTP side. */
  readonly httpPort: number | null;
  readonly host?: string;
  readonly maxStalenessMs: number;
  readonly fetchDeadlineMs: number;
  readonly protocolVersions: readonly string[];
  readonly ablations?: readonly AblationSwitch[];
  /** Bearer token AuthZEN callers must present; null disables the check (embedded demo only). */
  readonly authzenToken: string | null;
  readonly clock?: () => number;
  /** Where decisions are recorded (I7). Required outside unit tests. */
  readonly audit?: AuditPublisher;
  /** Replaces grant-store (tests). */
  readonly grantSource?: GrantSource;
}

/** A running policy-decision service. */
export interface RunningPolicyDecision {
  readonly grpcPort: number;
  readonly grpcUrl: string;
  readonly httpPort: number | null;
  readonly cache: PolicyCache;
  close(): Promise<void>;
}

const log = createLogger('PolicyDecision');

/** Starts the PDP: cache, invalidation subscription, gRPC PolicyDecision and the AuthZEN HTTP API. */
export async function startPolicyDecision(
  options: PolicyDecisionOptions,
): Promise<RunningPolicyDecision> {
  const ablations = options.ablations ?? [];
  if (ablations.length > 0) {
    log.warn(
      { ablations },
      'ABLATION SWITCHES ACTIVE: checks are turned off; this is a benchmark configuration, never production',
    );
  }
  const client: grants.GrantStoreClient | undefined =
    options.grantSource === undefined
      ? createGrpcClient(grantsProto.GrantStoreClient, options.grantStoreUrl, {
          // Reconnect quickly after a grant-store restart: the default backoff grows to minutes,
          // which would keep decisions at POLICY_UNAVAILABLE long after grant-store is back.
          'grpc.initial_reconnect_backoff_ms': 100,
          'grpc.max_reconnect_backoff_ms': 1000,
        })
      : undefined;
  const source = options.grantSource ?? new GrpcGrantSource(client!, options.fetchDeadlineMs);
  const clock = options.clock ?? Date.now;
  const cache = new PolicyCache(source, { maxStalenessMs: options.maxStalenessMs, clock });
  const engine = new PolicyEngine({
    supportedProtocolVersions: options.protocolVersions,
    disabled: ablations,
  });
  const decisions = new DecisionService(engine, cache, source, clock, options.audit);

  const subscription: Subscription = await options.bus.subscribe(GRANTS_CHANGED_SUBJECT, (msg) => {
    let event: grants.GrantsChangedEvent;
    try {
      event = grantsProto.GrantsChangedEvent.decode(msg.data);
    } catch (err: unknown) {
      // An event we cannot read may have been a revocation: drop everything rather than guess.
      log.error({ err }, 'undecodable grants-changed event');
      cache.invalidateAll('undecodable grants-changed event');
      return;
    }
    if (event.principalId === '') cache.invalidateManifest(event.revision);
    else cache.invalidatePrincipal(event.principalId, event.revision);
  });
  const stopStatus = options.bus.onStatus((s) => {
    if (s === 'disconnected' || s === 'reconnected') cache.invalidateAll(`bus ${s}`);
  });

  const grpc = await startGrpcService({
    name: 'policy-decision',
    module: PolicyDecisionGrpcModule.forRoot(decisions),
    services: { 'hcp.policy.v1.PolicyDecision': policy.PolicyDecisionService },
    host: options.host ?? '127.0.0.1',
    port: options.grpcPort,
  });

  let http: NestExpressApplication | undefined;
  let httpPort: number | null = null;
  if (options.httpPort !== null) {
    http = await NestFactory.create<NestExpressApplication>(
      PolicyDecisionHttpModule.forRoot(decisions, options.authzenToken, () =>
        options.bus.isConnected(),
      ),
      { logger: new NestJsonLogger(), bodyParser: false },
    );
    http.useBodyParser('json', { limit: '256kb' });
    http.enableShutdownHooks();
    await http.listen(options.httpPort, options.host ?? '127.0.0.1');
    const address = http.getHttpServer().address() as { port: number } | null;
    httpPort = address?.port ?? options.httpPort;
  }
  log.info(
    { grpc: grpc.url, http: httpPort, maxStalenessMs: options.maxStalenessMs },
    'policy-decision started',
  );

  return {
    grpcPort: grpc.port,
    grpcUrl: grpc.url,
    httpPort,
    cache,
    close: async () => {
      stopStatus();
      await subscription.unsubscribe().catch(() => undefined);
      if (http !== undefined) await http.close();
      await grpc.close();
      (client as { close?: () => void } | undefined)?.close?.();
    },
  };
}
