import { parseArgs } from 'node:util';
import { callUnary, createGrpcClient } from '@hcp/platform';
import { capabilityFromProto, capabilityToProto, grants } from '@hcp/proto';
import {
  CliError,
  DEFAULT_GRANT_STORE_URL,
  EXIT,
  type CliIo,
  type ExitCode,
} from './cli-approvals';

/** Usage of `hcp capabilities`. */
export const CAPABILITIES_USAGE = `usage: hcp capabilities <command> [options]

commands:
  list                      the manifest: every capability with its pinned definition digest
  pin <capability> <digest> re-approve a changed tool definition: pin the digest the edge logged
                            ("tool definition differs from its pin"); the tool is callable again

options:
  --grant-store <host:port>  grant-store gRPC address (env HCP_GRANT_STORE_URL, default ${DEFAULT_GRANT_STORE_URL})
  -h, --help                 this text

exit codes: 0 ok, 1 refused by grant-store, 2 usage, 3 grant-store unreachable`;

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const CAPABILITY = /^[a-z][a-z0-9_-]*\/[A-Za-z0-9_.-]{1,128}$/;

/**
 * The operator's side of I1: what is pinned, and re-approving a tool whose definition changed.
 * A pin is only ever written by an operator (here) or on a tool's first registration by the
 * edge; nothing an upstream server says can change it.
 */
export async function runCapabilitiesCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: CliIo,
): Promise<ExitCode> {
  let values: { 'grant-store'?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'grant-store': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err: unknown) {
    io.err(`hcp: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT.usage;
  }
  if (values.help === true) {
    io.out(CAPABILITIES_USAGE);
    return EXIT.ok;
  }
  const [, command, id, digest, ...extra] = positionals;
  const usage = (message: string): ExitCode => {
    io.err(`hcp: capabilities: ${message}`);
    io.err('hint: see hcp capabilities --help');
    return EXIT.usage;
  };
  if (command !== 'list' && command !== 'pin') return usage(`unknown command '${command ?? ''}'`);
  if (extra.length > 0) return usage(`unexpected '${extra.join(' ')}'`);
  if (command === 'list' && id !== undefined) return usage(`list: unexpected '${id}'`);
  if (command === 'pin') {
    if (id === undefined || !CAPABILITY.test(id))
      return usage('pin: a capability id provider/tool is required');
    if (digest === undefined || !DIGEST.test(digest))
      return usage('pin: the digest must look like sha256:<64 hex digits>');
  }
  const url = values['grant-store'] ?? env['HCP_GRANT_STORE_URL'] ?? DEFAULT_GRANT_STORE_URL;
  const client = createGrpcClient(grants.GrantStoreClient, url);
  try {
    if (command === 'list') {
      const res = await callUnary(client.listCapabilities.bind(client), { provider: '' });
      for (const c of res.capabilities.map(capabilityFromProto))
        io.out(
          `${c.id.padEnd(32)} ${c.definitionDigest ?? '(not pinned)'}  ${c.risk}${c.approvalRequired ? ', approval' : ''}`,
        );
      return EXIT.ok;
    }
    const current = await callUnary(client.getCapability.bind(client), { capabilityId: id! });
    if (current.capability === undefined)
      throw new CliError(EXIT.refused, `${id!}: not in the manifest`);
    const capability = capabilityFromProto(current.capability);
    await callUnary(client.putCapability.bind(client), {
      capability: capabilityToProto({ ...capability, definitionDigest: digest! }),
    });
    io.out(`${id!}: pinned ${digest!} (was ${capability.definitionDigest ?? 'not pinned'})`);
    return EXIT.ok;
  } catch (err: unknown) {
    if (err instanceof CliError) {
      io.err(`hcp: ${err.message}`);
      return err.exitCode;
    }
    const code = (err as { code?: number }).code;
    io.err(`hcp: ${err instanceof Error ? err.message : String(err)}`);
    return code === 14 || code === 4 ? EXIT.unavailable : EXIT.refused;
  } finally {
    client.close();
  }
}
