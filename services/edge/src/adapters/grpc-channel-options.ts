import type { ClientOptions } from '@grpc/grpc-js';

/**
 * Channel options of the edge's gRPC clients (grant-store, policy-decision, handle-vault), built
 * once at start (ADR 0005 §3). Keep-alive pings every 20 s, calls or not, so a connection a
 * middlebox or the peer dropped is found and replaced while the edge is idle, not on the first
 * call after a pause; a ping unanswered in 5 s closes it. grpc-js otherwise also drops a channel
 * after 30 min without calls (`client_idle_timeout_ms`), so the first call after a quiet half
 * hour paid a new connection: the channel is kept for a day instead. grpc-js servers answer
 * pings without policing their rate, so the services need no setting of their own.
 */
export const EDGE_GRPC_CHANNEL_OPTIONS: Partial<ClientOptions> = {
  'grpc.keepalive_time_ms': 20_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.client_idle_timeout_ms': 24 * 60 * 60 * 1000,
};
