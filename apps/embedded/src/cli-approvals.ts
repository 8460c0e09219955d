import { parseArgs } from 'node:util';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { reasonOfGrpcError, callUnary, createGrpcClient, type UnaryMethod } from '@hcp/platform';
import { core, grants } from '@hcp/proto';

/** The CLI's exit codes: scripts branch on them, so they are part of its contract. */
export const EXIT = {
  /** The command did what it was asked. */
  ok: 0,
  /** grant-store answered with a refusal (not an operator, already decided, unknown id, ...). */
  refused: 1,
  /** The command line (or a value in it) is wrong; nothing was sent, or grant-store called it malformed. */
  usage: 2,
  /** grant-store could not be reached within the deadline; nothing is known to have happened. */
  unavailable: 3,
} as const;

/** One of EXIT's values. */
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** Where grant-store is looked for when neither --grant-store nor HCP_GRANT_STORE_URL says. */
export const DEFAULT_GRANT_STORE_URL = '127.0.0.1:50051';

/** Deadline of each grant-store call, so a stuck server cannot hang an operator's shell. */
export const CALL_DEADLINE_MS = 5000;

/** Most approvals `list` prints (the server pages; the CLI follows pages up to this many). */
export const MAX_LIST_LIMIT = 1000;

/** A bearer token longer than this is not a token anyone issued; refused before it is sent. */
const MAX_TOKEN_LENGTH = 8192;
/** grant-store's own id bound (LIMITS.idLength). */
const MAX_ID_LENGTH = 128;

/** How the CLI speaks: stdout for results, stderr for errors and hints. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
}

/**
 * A failure the CLI reports and exits with: the exit code, one line saying what happened, and
 * an optional hint saying what to do about it.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    readonly exitCode: Exclude<ExitCode, 0>,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
  }
}

/** The usage text; printed by `--help` and after a usage error. */
export const USAGE = `usage: hcp approvals <command> [options]

commands:
  list                 approvals waiting for an operator (pending, not expired), oldest first
  show <id>            one approval: who asked, for what, its state
  approve <id>         approve the bound call (once); needs an operator token
  deny <id>            refuse the bound call; needs an operator token

options:
  --grant-store <host:port>  grant-store gRPC address (env HCP_GRANT_STORE_URL, default ${DEFAULT_GRANT_STORE_URL})
  --token <jwt>              operator bearer token (env HCP_OPERATOR_TOKEN)
  --principal <id>           list: only approvals for this principal
  --limit <n>                list: at most n approvals (default 50, max ${MAX_LIST_LIMIT})
  --json                     print the grant-store response as JSON
  -h, --help                 this text

exit codes: 0 ok, 1 refused by grant-store, 2 usage, 3 grant-store unreachable`;

type Command = 'list' | 'show' | 'approve' | 'deny';

interface Invocation {
  readonly command: Command;
  readonly id?: string;
  readonly url: string;
  readonly token?: string;
  readonly principal: string;
  readonly limit: number;
  readonly json: boolean;
}

const usage = (message: string) => new CliError(EXIT.usage, message, 'see: hcp approvals --help');

function parseInvocation(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): Invocation | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        'grant-store': { type: 'string' },
        token: { type: 'string' },
        principal: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (err: unknown) {
    // node:util's messages name the offending option; they are the usage error.
    throw usage(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  const [group, command, id, ...extra] = positionals;
  if (group === undefined) throw usage('no command given');
  if (group !== 'approvals') throw usage(`unknown command group '${group}' (only 'approvals')`);
  if (command === undefined) throw usage('approvals: no command given');
  if (command !== 'list' && command !== 'show' && command !== 'approve' && command !== 'deny')
    throw usage(`approvals: unknown command '${command}'`);
  if (extra.length > 0) throw usage(`approvals ${command}: unexpected '${extra.join(' ')}'`);
  if (command === 'list') {
    if (id !== undefined) throw usage(`approvals list: unexpected '${id}'`);
  } else {
    if (id === undefined) throw usage(`approvals ${command}: the approval id is required`);
    checkId(id);
  }
  if (command !== 'list' && (values.principal !== undefined || values.limit !== undefined))
    throw usage(`approvals ${command}: --principal and --limit apply to list only`);

  const url =
    values['grant-store'] ?? nonEmpty(env['HCP_GRANT_STORE_URL']) ?? DEFAULT_GRANT_STORE_URL;
  checkAddress(url);
  const token = values.token ?? nonEmpty(env['HCP_OPERATOR_TOKEN']);
  if (token !== undefined) checkToken(token);
  if ((command === 'approve' || command === 'deny') && token === undefined)
    throw new CliError(
      EXIT.usage,
      `approvals ${command}: an operator token is required`,
      'pass --token <jwt> or set HCP_OPERATOR_TOKEN',
    );
  const principal = values.principal ?? '';
  if (principal.length > 256 || /[\s\p{Cc}]/u.test(principal))
    throw usage('--principal: at most 256 characters, no spaces or control characters');
  return {
    command,
    ...(id !== undefined && { id }),
    url,
    ...(token !== undefined && { token }),
    principal,
    limit: parseLimit(values.limit),
    json: values.json,
  };
}

function nonEmpty(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function checkId(id: string): void {
  if (id.length > MAX_ID_LENGTH || !/^[A-Za-z0-9_-]+$/.test(id))
    throw usage(`'${id.slice(0, 40)}' is not an approval id (like apr_0193...)`);
}

function checkAddress(url: string): void {
  const m = /^(?:grpc:\/\/)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(url);
  if (m === null || Number(m[2]) < 1 || Number(m[2]) > 65535)
    throw usage(`--grant-store '${url.slice(0, 80)}' is not host:port`);
}

function checkToken(token: string): void {
  // The shape of a compact JWS; anything else would only be refused by grant-store.
  if (
    token.length > MAX_TOKEN_LENGTH ||
    !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)
  )
    throw new CliError(
      EXIT.usage,
      'the operator token is not a JWT (three base64url parts)',
      'pass the token itself, without "Bearer "',
    );
}

function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return 50;
  if (!/^[0-9]{1,7}$/.test(raw) || Number(raw) < 1 || Number(raw) > MAX_LIST_LIMIT)
    throw usage(`--limit: a whole number from 1 to ${MAX_LIST_LIMIT}`);
  return Number(raw);
}

/** A refused or failed call as the CLI reports it; the reason code when grant-store sent one. */
function cliErrorOf(err: unknown, url: string): CliError {
  const e = err as Partial<ServiceError>;
  if (typeof e.code !== 'number') return new CliError(EXIT.refused, String(err));
  const reason = reasonOfGrpcError(e);
  const what = `${status[e.code]}${reason !== undefined ? ` (${reason.reason})` : ''}`;
  const detail = reason?.detail ?? e.details ?? '';
  if (e.code === status.UNAVAILABLE || e.code === status.DEADLINE_EXCEEDED)
    return new CliError(
      EXIT.unavailable,
      `grant-store at ${url} did not answer: ${what}`,
      'is the stack running? set --grant-store or HCP_GRANT_STORE_URL',
    );
  if (e.code === status.INVALID_ARGUMENT)
    return new CliError(EXIT.usage, `grant-store called the request malformed: ${detail}`);
  if (e.code === status.UNAUTHENTICATED)
    return new CliError(
      EXIT.refused,
      `refused: ${what}: ${detail}`,
      'pass a valid operator token with --token or HCP_OPERATOR_TOKEN',
    );
  if (e.code === status.PERMISSION_DENIED)
    return new CliError(
      EXIT.refused,
      `refused: ${what}: ${detail}`,
      'approvals are decided with an operator token (hcp_kind=operator), never an agent token',
    );
  // NOT_FOUND, FAILED_PRECONDITION (already decided, own approval, expired) and any other answer.
  return new CliError(EXIT.refused, `refused: ${what}: ${detail}`);
}

const STATES: Record<number, string> = {
  [core.ApprovalState.APPROVAL_STATE_PENDING]: 'pending',
  [core.ApprovalState.APPROVAL_STATE_APPROVED]: 'approved',
  [core.ApprovalState.APPROVAL_STATE_DENIED]: 'denied',
};

function iso(ts: { seconds: number; nanos: number } | undefined): string {
  return ts === undefined ? '-' : new Date(ts.seconds * 1000 + ts.nanos / 1e6).toISOString();
}

/** `in 14m`, `5m ago`: how far a time is from now, at the precision an operator needs. */
function relative(ts: { seconds: number } | undefined, now: number): string {
  if (ts === undefined) return '-';
  const s = Math.round(ts.seconds - now / 1000);
  const abs = Math.abs(s);
  const text =
    abs < 60
      ? `${abs}s`
      : abs < 3600
        ? `${Math.floor(abs / 60)}m`
        : abs < 86_400
          ? `${Math.floor(abs / 3600)}h`
          : `${Math.floor(abs / 86_400)}d`;
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

/** A summary comes from the agent's side: one line, no control characters, bounded. */
function safe(text: string, max = 120): string {
  const flat = text.replace(/[\p{Cc}\p{Cf}]/gu, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** Runs one CLI invocation against grant-store; resolves to the exit code and never throws. */
export async function runCli(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: CliIo,
  now: () => number = Date.now,
): Promise<ExitCode> {
  let inv: Invocation | 'help';
  try {
    inv = parseInvocation(argv, env);
  } catch (err: unknown) {
    return report(err, io);
  }
  if (inv === 'help') {
    io.out(USAGE);
    return EXIT.ok;
  }
  const client = createGrpcClient(grants.GrantStoreClient, inv.url);
  try {
    await execute(inv, client, io, now);
    return EXIT.ok;
  } catch (err: unknown) {
    return report(err instanceof CliError ? err : cliErrorOf(err, inv.url), io);
  } finally {
    client.close();
  }
}

function report(err: unknown, io: CliIo): Exclude<ExitCode, 0> {
  const e = err instanceof CliError ? err : new CliError(EXIT.refused, String(err));
  io.err(`hcp: ${e.message}`);
  if (e.hint !== undefined) io.err(`hint: ${e.hint}`);
  return e.exitCode;
}

async function execute(
  inv: Invocation,
  client: grants.GrantStoreClient,
  io: CliIo,
  now: () => number,
): Promise<void> {
  const metadata = () => {
    const md = new Metadata();
    if (inv.token !== undefined) md.set('authorization', `Bearer ${inv.token}`);
    return md;
  };
  // ts-proto's codecs write every field, so requests are always built complete with fromPartial.
  const call = <Req, Res>(method: UnaryMethod<Req, Res>, request: Req) =>
    callUnary(method, request, { deadlineMs: CALL_DEADLINE_MS, metadata: metadata() });

  switch (inv.command) {
    case 'list': {
      const approvals: grants.PendingApproval[] = [];
      let pageToken = '';
      let more: boolean;
      do {
        const page = await call(
          client.listApprovals.bind(client),
          grants.ListApprovalsRequest.fromPartial({
            principalId: inv.principal,
            pageSize: Math.min(inv.limit - approvals.length, 200),
            pageToken,
          }),
        );
        approvals.push(...page.approvals);
        pageToken = page.nextPageToken;
        more = pageToken !== '';
      } while (more && approvals.length < inv.limit);
      if (inv.json) {
        io.out(
          JSON.stringify(
            grants.ListApprovalsResponse.toJSON({ approvals, nextPageToken: pageToken }),
            null,
            2,
          ),
        );
        return;
      }
      if (approvals.length === 0) {
        io.out('no approvals waiting');
        return;
      }
      io.out(['ID', 'PRINCIPAL', 'CAPABILITY', 'REQUESTED', 'EXPIRES', 'SUMMARY'].join('\t'));
      for (const p of approvals) {
        const a = p.approval!;
        io.out(
          [
            a.id,
            safe(a.principalId, 40),
            a.capabilityId,
            relative(p.createdAt, now()),
            relative(a.expiresAt, now()),
            safe(p.summary),
          ].join('\t'),
        );
      }
      if (more) io.out(`(more waiting; raise --limit, at most ${MAX_LIST_LIMIT})`);
      return;
    }
    case 'show': {
      const res = await call(
        client.getApproval.bind(client),
        grants.GetApprovalRequest.fromPartial({ approvalId: inv.id! }),
      );
      if (inv.json) {
        io.out(JSON.stringify(grants.GetApprovalResponse.toJSON(res), null, 2));
        return;
      }
      const a = res.approval!;
      const rows: [string, string][] = [
        ['id', a.id],
        ['state', STATES[a.state] ?? 'unknown'],
        ['principal', safe(a.principalId, 256)],
        ['capability', a.capabilityId],
        ['summary', safe(res.summary, 1000) || '-'],
        ['binding digest', a.bindingDigest],
        ['requested', `${iso(res.createdAt)} (${relative(res.createdAt, now())})`],
        ['expires', `${iso(a.expiresAt)} (${relative(a.expiresAt, now())})`],
        ['decided by', a.decidedBy === '' ? '-' : a.decidedBy],
        ['consumed', a.consumedAt === undefined ? 'no' : iso(a.consumedAt)],
      ];
      for (const [k, v] of rows) io.out(`${k.padEnd(15)}${v}`);
      return;
    }
    case 'approve':
    case 'deny': {
      const verdict =
        inv.command === 'approve'
          ? grants.ApprovalVerdict.APPROVAL_VERDICT_APPROVE
          : grants.ApprovalVerdict.APPROVAL_VERDICT_DENY;
      const res = await call(
        client.decideApproval.bind(client),
        grants.DecideApprovalRequest.fromPartial({ approvalId: inv.id!, verdict }),
      );
      if (inv.json) {
        io.out(JSON.stringify(grants.DecideApprovalResponse.toJSON(res), null, 2));
        return;
      }
      const a = res.approval!;
      io.out(
        `${inv.command === 'approve' ? 'approved' : 'denied'} ${a.id}: ${a.capabilityId} for ${safe(a.principalId, 256)}, decided by ${a.decidedBy}` +
          (inv.command === 'approve' ? `; usable once until ${iso(a.expiresAt)}` : ''),
      );
      return;
    }
  }
}
