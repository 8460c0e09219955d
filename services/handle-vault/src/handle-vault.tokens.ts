/** DI token of the vault's kysely handle (`Kysely<VaultDb>`). */
export const VAULT_DB = Symbol('VAULT_DB');
/** DI token of the audit publisher every peek, pipe and delete is recorded through (I7). */
export const VAULT_AUDIT = Symbol('VAULT_AUDIT');
/** DI token of the clock (epoch millis); injected so tests can move time. */
export const VAULT_CLOCK = Symbol('VAULT_CLOCK');
/** DI token of the keyring payloads are sealed and opened with. */
export const VAULT_KEYRING = Symbol('VAULT_KEYRING');
/** DI token of the resolved VaultLimits. */
export const VAULT_LIMITS = Symbol('VAULT_LIMITS');
/** DI token of the sweeper interval in millis (0 = no periodic sweep). */
export const VAULT_SWEEP_INTERVAL = Symbol('VAULT_SWEEP_INTERVAL');

/** The clock services read `now` from; one source of time for every rule and row. */
export type Clock = () => number;
