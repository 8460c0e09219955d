import { Server, ServerCredentials } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { FLOOR_NATS_SUBJECT, assertLoopback } from './targets';

/**
 * The floor's server side, in a process of its own (forked by main.ts): an empty gRPC unary
 * (grpc.health.v1.Health/Check answering SERVING — the smallest real unary on grpc-js, and
 * one ghz can call from the health proto) and a NATS responder answering every request on
 * FLOOR_NATS_SUBJECT with an empty reply. Nothing else runs here, so a call to it costs what
 * the transport costs between two Node processes on loopback.
 *
 *   node floor-server.js [nats-url]   → sends { port } over IPC once listening
 */
async function main(): Promise<void> {
  const natsUrl = process.argv[2];
  const server = new Server();
  new HealthImplementation({ '': 'SERVING' }).addToServer(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (e, p) =>
      e !== null ? reject(e) : resolve(p),
    ),
  );
  let nc: NatsConnection | undefined;
  if (natsUrl !== undefined && natsUrl !== '') {
    assertLoopback(natsUrl);
    nc = await connect({ servers: natsUrl, name: 'hcp-bench-floor' });
    const empty = new Uint8Array(0);
    nc.subscribe(FLOOR_NATS_SUBJECT, {
      callback: (_e, m) => {
        m.respond(empty);
      },
    });
    await nc.flush();
  }
  const stop = () => {
    server.forceShutdown();
    void (nc?.close() ?? Promise.resolve()).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('disconnect', stop);
  process.send?.({ port });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
