import { runCli } from './cli-approvals';

/**
 * `pnpm hcp approvals list|show <id>|approve <id>|deny <id>` (node apps/embedded/dist/cli.js):
 * the operator's side of I2, against grant-store's gRPC API. See cli-approvals.ts for options.
 */
void runCli(process.argv.slice(2), process.env, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
}).then((code) => {
  // exitCode, not exit(): lets stdout drain when piped.
  process.exitCode = code;
});
