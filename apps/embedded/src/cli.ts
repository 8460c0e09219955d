import { runCli } from './cli-approvals';
import { runCapabilitiesCli } from './cli-capabilities';

/**
 * `pnpm hcp approvals list|show <id>|approve <id>|deny <id>` and
 * `pnpm hcp capabilities list|pin <id> <digest>` (node apps/embedded/dist/cli.js): the
 * operator's side of I2 and I1, against grant-store's gRPC API.
 */
const argv = process.argv.slice(2);
const io = {
  out: (line: string) => process.stdout.write(`${line}\n`),
  err: (line: string) => process.stderr.write(`${line}\n`),
};
const run =
  argv[0] === 'capabilities'
    ? runCapabilitiesCli(argv, process.env, io)
    : runCli(argv, process.env, io);
void run.then((code) => {
  // exitCode, not exit(): lets stdout drain when piped.
  process.exitCode = code;
});
