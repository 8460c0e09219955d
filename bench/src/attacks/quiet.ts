// Imported first by main.ts: the services' JSON logs would bury the tables, so below errors they
// are off unless HCP_LOG_LEVEL says otherwise or --verbose asks for them (loggers read it at load).
if (process.env['HCP_LOG_LEVEL'] === undefined)
  process.env['HCP_LOG_LEVEL'] = process.argv.includes('--verbose') ? 'info' : 'error';

/** Marks the module as loaded for its side effect (nothing to call). */
export const QUIET_LOGS = true;
