import { randomBytes } from 'node:crypto';
import type { EdgeMode } from '@hcp/edge';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { PRINCIPALS } from './stack';
import {
  NEGOTIATED_VERSION,
  connect,
  type AttackWorld,
  type EdgeRun,
  type RawResponse,
  type RefusalData,
} from './stack';

/**
 * The agent side of an attack case: SDK clients of alice and bob against the running edge, and a
 * record of every refusal the attack met (so the runner can look each one up in the audit).
 *
 * The agent model is the attacker's best case: the "model" does whatever injected text asks of it,
 * with the means the runtime gives it. Where the runtime returns output inline (naive, connection)
 * it copies the text; where it returns a handle (hcp) it passes the handle on with hcp_pipe. Its
 * client declares elicitation and answers every per-call prompt with accept, in every mode (in hcp
 * no prompt is ever sent, so the same client changes nothing there).
 */

/** Who acts. */
export type Who = keyof Pick<typeof PRINCIPALS, 'alice' | 'bob'>;

/** Data the agent holds: text it was shown, or a handle to data it was not. */
export type Datum = { readonly text: string } | { readonly handle: string };

/** One tools/call as the agent saw it. */
export type CallStep =
  | {
      readonly ok: true;
      /** The content text the agent received (for hcp, the handle JSON). */
      readonly text: string;
      readonly handle?: string;
      /** The provider answered with isError. */
      readonly toolError: boolean;
    }
  | {
      readonly ok: false;
      readonly message: string;
      /** The refusal's data when the edge sent one (reason code, decision id, ...). */
      readonly data?: RefusalData;
    };

/** One principal's MCP client on the current edge. */
export interface Agent {
  readonly who: Who;
  readonly client: Client;
  readonly transport: StreamableHTTPClientTransport;
  /** The session the edge issued (undefined in naive mode, which issues none). */
  readonly sessionId: string | undefined;
  call(
    tool: string,
    args: Record<string, unknown>,
    meta?: Record<string, unknown>,
  ): Promise<CallStep>;
  /** Tool names the agent is shown; undefined when tools/list was refused. */
  list(): Promise<string[] | undefined>;
  /** The description of a tool as shown to the agent (undefined when not shown). */
  description(tool: string): Promise<string | undefined>;
  /** Reads a file with fs.read_text_file; undefined when refused or the provider failed. */
  read(path: string): Promise<Datum | undefined>;
  /** Puts `datum` into `argument` of `tool`: inline text as is, a handle with hcp_pipe. */
  send(
    tool: string,
    argument: string,
    datum: Datum,
    args?: Record<string, unknown>,
    meta?: Record<string, unknown>,
  ): Promise<CallStep>;
  /** What the agent can read of a served call: the inline text, or its handle peeked (hcp). */
  see(step: CallStep): Promise<string | undefined>;
  /** A call an operator approves when the edge asks for an approval (the allowed neighbour of I2). */
  approved(tool: string, args: Record<string, unknown>): Promise<CallStep>;
}

/** What a case gets to act and to check its success condition. */
export interface CaseContext {
  readonly world: AttackWorld;
  readonly run: EdgeRun;
  readonly mode: EdgeMode;
  /** Lower-case letters only, unique per case execution: attributes what the listeners saw. */
  readonly marker: string;
  /** An agent of `who` (a fresh SDK client: initialize, or the given session id and version header). */
  agent(
    who: Who,
    options?: { readonly sessionId?: string; readonly protocolVersion?: string },
  ): Promise<Agent>;
  /** A raw JSON-RPC POST to the edge; a refusal in its body is recorded like any other. */
  rpc(body: unknown, headers: Record<string, string>, contentType?: string): Promise<RawResponse>;
  /** An approval id filed by a refusal, approved by the operator; undefined when none was filed. */
  operatorApproves(step: CallStep): Promise<string | undefined>;
  /** Records a refusal met outside `call`/`rpc`. */
  refused(message: string, data?: RefusalData): void;
  /** Runs at the end of the case, success or not (restores what the case changed). */
  defer(cleanup: () => Promise<void> | void): void;
  /** True when the egress target received `text` during this phase (its forwarder's log). */
  egressSaw(text: string): boolean;
  /** True when the attacker's upstream (helper) received `text` during this phase. */
  helperSaw(text: string): boolean;
  /** What the recording origin saw during this phase: request paths, and the addresses dialled. */
  origin(): { readonly paths: readonly string[]; readonly dialled: readonly string[] };
}

/** A refusal as the runner records it. */
export interface Refusal {
  readonly message: string;
  readonly data?: RefusalData;
}

/** The context of one phase (attack or neighbour) of one case, and what it recorded. */
export interface PhaseRecord {
  readonly ctx: CaseContext;
  readonly refusals: Refusal[];
  /** Per-call prompts the agents' clients answered (connection mode). */
  readonly prompts: { count: number };
  close(): Promise<void>;
}

/** A fresh marker: lower-case letters, so it fits every argument constraint the world has. */
export function newMarker(): string {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  return `mk${[...randomBytes(10)].map((b) => letters[b % 26]).join('')}`;
}

/** The refusal data of an error a client call threw (McpError, or an HTTP-level error with a JSON-RPC body). */
export function refusalOf(err: unknown): Refusal {
  if (err instanceof McpError) {
    const data = err.data as RefusalData | undefined;
    return { message: err.message, ...(data?.reason === undefined ? {} : { data }) };
  }
  const message = err instanceof Error ? err.message : String(err);
  // The SDK transport puts the body of a non-2xx answer after "endpoint: ".
  const at = message.indexOf('{');
  if (at >= 0) {
    try {
      const body = JSON.parse(message.slice(at)) as { error?: { data?: RefusalData } };
      const data = body.error?.data;
      if (data?.reason !== undefined) return { message, data };
    } catch {
      // not JSON: keep the message only
    }
  }
  return { message };
}

const textOf = (r: CallToolResult) =>
  (r.content as { type: string; text?: string }[]).map((c) => c.text ?? '').join('');

/** Opens one phase: a context whose agents are created lazily and closed with it. */
export function openPhase(world: AttackWorld, run: EdgeRun): PhaseRecord {
  const refusals: Refusal[] = [];
  const prompts = { count: 0 };
  const clients: Client[] = [];
  const cleanups: (() => Promise<void> | void)[] = [];
  const marker = newMarker();
  const from = {
    tap: world.tap.bodies.length,
    helper: world.helperTap.bodies.length,
    requests: world.origin?.requests.length ?? 0,
    dialled: world.origin?.dialled.length ?? 0,
  };
  const record = (r: Refusal) => {
    refusals.push(r);
  };

  const makeAgent = async (
    who: Who,
    options: { readonly sessionId?: string; readonly protocolVersion?: string } = {},
  ): Promise<Agent> => {
    const { client, transport } = await connect(run.url, world.tokens[who], {
      elicitation: 'accept',
      prompts,
      name: `attack-agent-${who}`,
      ...(options.sessionId === undefined ? {} : { sessionId: options.sessionId }),
      ...(options.protocolVersion === undefined
        ? options.sessionId === undefined
          ? {}
          : { protocolVersion: NEGOTIATED_VERSION }
        : { protocolVersion: options.protocolVersion }),
    });
    clients.push(client);
    const call = async (
      tool: string,
      args: Record<string, unknown>,
      meta?: Record<string, unknown>,
    ): Promise<CallStep> => {
      try {
        const r = (await client.callTool({
          name: tool,
          arguments: args,
          ...(meta === undefined ? {} : { _meta: meta }),
        })) as CallToolResult;
        const s = r.structuredContent as { handle?: unknown; toolError?: unknown } | undefined;
        if (run.mode === 'hcp' && typeof s?.handle === 'string')
          return { ok: true, text: textOf(r), handle: s.handle, toolError: s.toolError === true };
        return { ok: true, text: textOf(r), toolError: r.isError === true };
      } catch (err) {
        const refusal = refusalOf(err);
        record(refusal);
        return { ok: false, ...refusal };
      }
    };
    const see = async (step: CallStep): Promise<string | undefined> => {
      if (!step.ok) return undefined;
      if (step.handle === undefined) return step.text;
      const peeked = await call('hcp_peek', { handle: step.handle, maxBytes: 65536 });
      return peeked.ok ? peeked.text : undefined;
    };
    const tools = async () => {
      try {
        return (await client.listTools()).tools;
      } catch (err) {
        record(refusalOf(err));
        return undefined;
      }
    };
    const agent: Agent = {
      who,
      client,
      transport,
      sessionId: transport.sessionId,
      call,
      list: async () => (await tools())?.map((t) => t.name).sort(),
      description: async (tool) => (await tools())?.find((t) => t.name === tool)?.description,
      read: async (path) => {
        const step = await call('fs.read_text_file', { path });
        if (!step.ok || step.toolError) return undefined;
        return step.handle === undefined ? { text: step.text } : { handle: step.handle };
      },
      send: (tool, argument, datum, args = {}, meta) =>
        'handle' in datum
          ? call('hcp_pipe', { handle: datum.handle, tool, argument, arguments: args }, meta)
          : call(tool, { ...args, [argument]: datum.text }, meta),
      see,
      approved: async (tool, args) => {
        const first = await call(tool, args);
        const approvalId = await ctx.operatorApproves(first);
        if (approvalId === undefined) return first;
        return call(tool, args, { 'hcp/approvalId': approvalId });
      },
    };
    return agent;
  };

  const ctx: CaseContext = {
    world,
    run,
    mode: run.mode,
    marker,
    agent: makeAgent,
    rpc: async (body, headers, contentType) => {
      const res = await world.rpc(run.url, body, headers, contentType);
      const data = res.json?.error?.data;
      if (res.json?.error !== undefined || res.status >= 400)
        record({
          message: res.json?.error?.message ?? `HTTP ${res.status}`,
          ...(data?.reason === undefined ? {} : { data }),
        });
      return res;
    },
    operatorApproves: async (step) => {
      if (step.ok) return undefined;
      const id = step.data?.approvalRequestId;
      if (id === undefined) return undefined;
      await world.decideApproval(world.tokens.operator, id);
      return id;
    },
    refused: (message, data) => record({ message, ...(data === undefined ? {} : { data }) }),
    defer: (cleanup) => {
      cleanups.push(cleanup);
    },
    egressSaw: (text) => world.tap.bodies.slice(from.tap).some((b) => b.includes(text)),
    helperSaw: (text) => world.helperTap.bodies.slice(from.helper).some((b) => b.includes(text)),
    origin: () => ({
      paths: (world.origin?.requests ?? []).slice(from.requests).map((r) => r.path),
      dialled: (world.origin?.dialled ?? []).slice(from.dialled),
    }),
  };

  return {
    ctx,
    refusals,
    prompts,
    close: async () => {
      for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
      for (const c of clients) await c.close().catch(() => undefined);
    },
  };
}
