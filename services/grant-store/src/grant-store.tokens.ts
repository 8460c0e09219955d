/** DI token of the grant-store kysely handle (`Kysely<GrantStoreDb>`). */
export const GRANT_STORE_DB = Symbol('GRANT_STORE_DB');
/** DI token of the EventBus grant-store publishes `hcp.grants.changed` on. */
export const GRANT_STORE_BUS = Symbol('GRANT_STORE_BUS');
/** DI token of the AuditPublisher grant and approval changes are recorded through (null: not recorded). */
export const GRANT_STORE_AUDIT = Symbol('GRANT_STORE_AUDIT');
/** DI token of the ApproverAuthentication DecideApproval and ListApprovals use. */
export const GRANT_STORE_APPROVER_AUTH = Symbol('GRANT_STORE_APPROVER_AUTH');
/** DI token of the clock (epoch millis); injected so tests can move time. */
export const GRANT_STORE_CLOCK = Symbol('GRANT_STORE_CLOCK');

/** DI token of the ApprovalLifetimes RequestApproval applies (absent: the defaults). */
export const GRANT_STORE_APPROVAL_LIFETIMES = Symbol('GRANT_STORE_APPROVAL_LIFETIMES');

/** How long an approval stays usable: when the request names no TTL, and at most. */
export interface ApprovalLifetimes {
  readonly defaultTtlMs: number;
  readonly maxTtlMs: number;
}

/** The clock services read `now` from; one source of time for every rule and row. */
export type Clock = () => number;
