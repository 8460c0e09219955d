import {
  createLogger,
  GRANTS_CHANGED_SUBJECT,
  type EventBus,
  type Subscription,
} from '@hcp/platform';
import { grants } from '@hcp/proto';

const log = createLogger('GrantsChangedListener');

/** What a grants-changed listener is told; `undefined` means "anything may have changed". */
export type GrantsChange = grants.GrantsChangedEvent | undefined;

/**
 * Subscribes to grant-store's change events and to the bus's connection state. Delivery is
 * at-most-once, so an undecodable event or a connection gap is reported as `undefined` (drop
 * everything) rather than guessed at; the caches' TTL bounds what a lost event can cost.
 */
export function onGrantsChanged(
  bus: EventBus,
  handler: (change: GrantsChange) => void,
): Promise<Subscription> {
  const subscribing = subscribe(bus, handler);
  subscribing.catch((err: unknown) =>
    log.error({ err }, 'could not subscribe to grants-changed; caches rely on their TTL alone'),
  );
  return subscribing;
}

async function subscribe(
  bus: EventBus,
  handler: (change: GrantsChange) => void,
): Promise<Subscription> {
  const subscription = await bus.subscribe(GRANTS_CHANGED_SUBJECT, (msg) => {
    let event: grants.GrantsChangedEvent;
    try {
      event = grants.GrantsChangedEvent.decode(msg.data);
    } catch (err: unknown) {
      log.warn({ err }, 'undecodable grants-changed event; dropping cached policy data');
      handler(undefined);
      return;
    }
    handler(event);
  });
  const stopStatus = bus.onStatus((s) => {
    if (s === 'disconnected' || s === 'reconnected') handler(undefined);
  });
  return {
    async unsubscribe() {
      stopStatus();
      await subscription.unsubscribe();
    },
  };
}

/**
 * Ends a subscription started in a constructor. One that never came up was already logged (the
 * cache then relies on its TTL alone), so closing it is a no-op rather than an error.
 */
export async function closeSubscription(
  subscription: Promise<Subscription> | undefined,
): Promise<void> {
  if (subscription === undefined) return;
  const live = await subscription.catch(() => undefined);
  await live?.unsubscribe();
}
