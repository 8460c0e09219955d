// What nats-server itself says about a JetStream consumer, read from its monitoring endpoint
// (`/jsz`, on the port servers.sh records as NATS_MON_PORT): lets a suite show that messages were
// delivered and not acknowledged, which no client API of the EventBus exposes.
import { readEnvFile } from './servers';

/** A durable consumer's delivery state on the server. */
export interface ConsumerState {
  /** Delivered, not yet acknowledged. */
  readonly ackPending: number;
  /** In the stream, not yet delivered. */
  readonly pending: number;
}

interface JszConsumer {
  name?: string;
  num_ack_pending?: number;
  num_pending?: number;
}
interface Jsz {
  account_details?: { stream_detail?: { name?: string; consumer_detail?: JszConsumer[] }[] }[];
}

/** The monitoring URL of the integration tier's nats-server (from HCP_SERVERS_DIR/env). */
export function natsMonitorUrl(): string {
  const dir = process.env['HCP_SERVERS_DIR'];
  if (!dir) throw new Error('HCP_SERVERS_DIR is not set (run with jest.integration.config.js)');
  const port = readEnvFile(dir)['NATS_MON_PORT'];
  if (!port) throw new Error(`${dir}/env has no NATS_MON_PORT`);
  return `http://127.0.0.1:${port}`;
}

/** The state of one durable consumer of one stream; undefined when the server does not list it. */
export async function consumerState(
  stream: string,
  durable: string,
): Promise<ConsumerState | undefined> {
  const res = await fetch(`${natsMonitorUrl()}/jsz?accounts=true&streams=true&consumers=true`);
  if (res.status !== 200) throw new Error(`nats-server /jsz: ${res.status}`);
  const jsz = (await res.json()) as Jsz;
  for (const account of jsz.account_details ?? [])
    for (const s of account.stream_detail ?? []) {
      if (s.name !== stream) continue;
      const c = (s.consumer_detail ?? []).find((x) => x.name === durable);
      if (c !== undefined)
        return {
          ackPending: c.num_ack_pending ?? 0,
          pending: c.num_pending ?? 0,
        };
    }
  return undefined;
}
