/**
 * NATS subject grant-store announces every committed write on and policy-decision
 * invalidates its cache from; payload `hcp.grants.v1.GrantsChangedEvent`. One constant,
 * so publisher and subscriber cannot drift apart.
 */
export const GRANTS_CHANGED_SUBJECT = 'hcp.grants.changed';
