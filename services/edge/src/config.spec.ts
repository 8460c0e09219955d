import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@hcp/platform';
import { loadEdgeConfig, loadProvidersFile, verifierOptionsOf } from './config';

const K1 = 'a'.repeat(32);
const K2 = 'b'.repeat(40);

const base = {
  HCP_GRANT_STORE_URL: '127.0.0.1:50061',
  HCP_PDP_URL: '127.0.0.1:50062',
  HCP_VAULT_URL: '127.0.0.1:50063',
  HCP_NATS_URL: 'nats://127.0.0.1:4222',
  HCP_AUTH_ISSUER: 'hcp-local',
  HCP_AUTH_AUDIENCE: 'hcp',
  HCP_AUTH_HS256_SECRET: 'x'.repeat(32),
  HCP_SESSION_KEYS: `k1:${K1}`,
  HCP_EDGE_PROVIDERS_FILE: '/etc/hcp/providers.json',
};

function problems(env: Record<string, string | undefined>): string[] {
  try {
    loadEdgeConfig(env);
  } catch (err: unknown) {
    if (err instanceof ConfigError) return err.problems.map((p) => p.variable);
    throw err;
  }
  return [];
}

describe('edge config', () => {
  it('reads defaults: port 8080, the HS256 verifier', () => {
    const c = loadEdgeConfig(base);
    expect(c.HCP_HOST).toBe('127.0.0.1');
    expect(c.HCP_EDGE_PORT).toBe(8080);
    expect(c.HCP_SESSION_KEYS).toEqual([{ id: 'k1', secret: K1 }]);
    expect(c.HCP_SESSION_MARKS_BUCKET).toBe('hcp_session_marks');
    expect(verifierOptionsOf(c)).toEqual({
      issuer: 'hcp-local',
      audience: 'hcp',
      hs256Secret: 'x'.repeat(32),
    });
  });

  it('parses a keyring in order (first signs), secrets may contain ":"', () => {
    const c = loadEdgeConfig({ ...base, HCP_SESSION_KEYS: `new:${K2}, old:${K1}:x` });
    expect(c.HCP_SESSION_KEYS).toEqual([
      { id: 'new', secret: K2 },
      { id: 'old', secret: `${K1}:x` },
    ]);
  });

  it('refuses short, malformed, duplicate or missing session keys, naming the variable only', () => {
    expect(problems({ ...base, HCP_SESSION_KEYS: 'k1:short' })).toEqual(['HCP_SESSION_KEYS']);
    expect(problems({ ...base, HCP_SESSION_KEYS: K1 })).toEqual(['HCP_SESSION_KEYS']);
    expect(problems({ ...base, HCP_SESSION_KEYS: `k1:${K1},k1:${K2}` })).toEqual([
      'HCP_SESSION_KEYS',
    ]);
    expect(problems({ ...base, HCP_SESSION_KEYS: undefined })).toEqual(['HCP_SESSION_KEYS']);
    try {
      loadEdgeConfig({ ...base, HCP_SESSION_KEYS: `k1:${K1},k2:tooshort-secret` });
    } catch (err: unknown) {
      expect((err as Error).message).toContain('key k2');
      expect((err as Error).message).not.toContain('tooshort-secret');
    }
  });

  it('refuses to start with a measurement mode or an ablation switch set (benchmark only)', () => {
    for (const mode of ['naive', 'connection', 'yolo'])
      expect(problems({ ...base, HCP_EDGE_MODE: mode })).toEqual(['HCP_EDGE_MODE']);
    for (const ablations of ['grant_matching', 'audit_required,init_check', 'no-such-switch'])
      expect(problems({ ...base, HCP_ABLATIONS: ablations })).toEqual(['HCP_ABLATIONS']);
    expect(problems({ ...base, HCP_EDGE_MODE: 'naive', HCP_ABLATIONS: 'grant_matching' })).toEqual([
      'HCP_EDGE_MODE',
      'HCP_ABLATIONS',
    ]);
    try {
      loadEdgeConfig({ ...base, HCP_ABLATIONS: 'grant_matching' });
      throw new Error('started');
    } catch (err: unknown) {
      expect(err).toBeInstanceOf(ConfigError);
      expect((err as Error).message).toContain('cannot be started with a check switched off');
    }
    // What production may say: hcp (or nothing); neither reaches the parsed config.
    const c = loadEdgeConfig({ ...base, HCP_EDGE_MODE: 'hcp', HCP_ABLATIONS: ' ' });
    expect(c.HCP_EDGE_MODE).toBeUndefined();
    expect(c.HCP_ABLATIONS).toBeUndefined();
  });

  it('names every bad variable at once', () => {
    expect(
      problems({
        ...base,
        HCP_PDP_URL: undefined,
        HCP_NATS_URL: undefined,
        HCP_EDGE_PORT: '70000',
        HCP_EDGE_PROVIDERS_FILE: undefined,
      }),
    ).toEqual(['HCP_EDGE_PORT', 'HCP_PDP_URL', 'HCP_NATS_URL', 'HCP_EDGE_PROVIDERS_FILE']);
    expect(problems({ ...base, HCP_AUTH_JWKS_URL: 'https://issuer/jwks' })).toEqual([
      'HCP_AUTH_HS256_SECRET',
    ]);
    expect(problems({ ...base, HCP_AUTH_HS256_SECRET: undefined })).toEqual([
      'HCP_AUTH_HS256_SECRET',
    ]);
  });

  it('selects the JWKS verifier when only HCP_AUTH_JWKS_URL is set', () => {
    const c = loadEdgeConfig({
      ...base,
      HCP_AUTH_HS256_SECRET: undefined,
      HCP_AUTH_JWKS_URL: 'https://issuer/jwks',
    });
    expect(verifierOptionsOf(c)).toEqual({
      issuer: 'hcp-local',
      audience: 'hcp',
      jwksUrl: 'https://issuer/jwks',
    });
  });
});

describe('providers file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'edge-providers-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (content: unknown): string => {
    const file = join(dir, 'providers.json');
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
    return file;
  };
  const messages = (file: string): string[] => {
    try {
      loadProvidersFile(file);
    } catch (err: unknown) {
      if (err instanceof ConfigError) {
        expect(err.problems.every((p) => p.variable === 'HCP_EDGE_PROVIDERS_FILE')).toBe(true);
        return err.problems.map((p) => p.message.slice(file.length + 2));
      }
      throw err;
    }
    return [];
  };

  const fs = {
    config: {
      id: 'fs',
      transport: { kind: 'stdio', command: '/usr/bin/node', args: ['server.js', '/srv/sandbox'] },
      resources: { filesystemRoots: ['/srv/sandbox'] },
    },
    capabilities: [
      {
        tool: 'read_text_file',
        effects: ['read'],
        risk: 'low',
        requiredScopes: ['fs:read'],
        resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'read' }],
      },
    ],
  };

  it('reads providers, fills defaults, and keeps settings of known capabilities', () => {
    const file = write({
      providers: [fs],
      capabilitySettings: { 'fs/read_text_file': { inlinePreview: true, previewMaxBytes: 256 } },
    });
    const parsed = loadProvidersFile(file);
    expect(parsed.providers).toHaveLength(1);
    expect(parsed.providers[0]!.config.transport).toEqual(fs.config.transport);
    expect(parsed.providers[0]!.capabilities).toEqual([
      { ...fs.capabilities[0], approvalRequired: false },
    ]);
    expect(parsed.capabilitySettings).toEqual({
      'fs/read_text_file': { inlinePreview: true, previewMaxBytes: 256 },
    });
    expect(loadProvidersFile(write({ providers: [] }))).toEqual({
      providers: [],
      capabilitySettings: {},
    });
  });

  it('names the offending field of a provider config (through providerConfigSchema)', () => {
    const bad = {
      ...fs,
      config: { ...fs.config, transport: { kind: 'http', url: 'ftp://x' } },
    };
    expect(messages(write({ providers: [bad] }))).toEqual([
      expect.stringMatching(/^providers\.0\.config\.transport\.url: /),
    ]);
    expect(
      messages(write({ providers: [{ ...fs, config: { ...fs.config, id: 'Bad.Id' } }] })),
    ).toEqual([expect.stringMatching(/^providers\.0\.config\.id: /)]);
  });

  it('names bad capability specs, unknown keys, duplicates and settings of unknown capabilities', () => {
    const cap = fs.capabilities[0]!;
    expect(
      messages(write({ providers: [{ ...fs, capabilities: [{ ...cap, risk: 'extreme' }] }] })),
    ).toEqual([expect.stringMatching(/^providers\.0\.capabilities\.0\.risk: /)]);
    expect(
      messages(
        write({ providers: [{ ...fs, capabilities: [{ ...cap, definitionDigest: 'x' }] }] }),
      ),
    ).toEqual([expect.stringMatching(/^providers\.0\.capabilities\.0: /)]);
    expect(messages(write({ providers: [fs, fs] }))).toEqual([
      expect.stringMatching(/^providers\.1\.config\.id: provider fs given twice/),
    ]);
    expect(
      messages(write({ providers: [fs], capabilitySettings: { 'fs/write_file': {} } })),
    ).toEqual([expect.stringMatching(/^capabilitySettings\.fs\/write_file: names no capability/)]);
  });

  it('reads every resource argument with its role, scopes and arrays; none is an empty list', () => {
    const move = {
      tool: 'move_file',
      effects: ['write', 'delete'],
      risk: 'high',
      resourceArguments: [
        { name: 'source', canonicalizer: 'path', role: 'delete' },
        { name: 'destination', canonicalizer: 'path', role: 'write', scopes: ['fs:write'] },
      ],
    };
    const many = {
      tool: 'read_multiple_files',
      effects: ['read'],
      risk: 'low',
      resourceArguments: [{ name: 'paths', canonicalizer: 'path', role: 'read', many: true }],
    };
    const ping = { tool: 'ping', effects: [], risk: 'low' };
    const parsed = loadProvidersFile(
      write({ providers: [{ ...fs, capabilities: [move, many, ping] }] }),
    );
    expect(parsed.providers[0]!.capabilities?.map((c) => c.resourceArguments)).toEqual([
      move.resourceArguments,
      many.resourceArguments,
      [],
    ]);
  });

  it('names a bad resource argument: unknown role, repeated name, the old single-argument key', () => {
    const cap = fs.capabilities[0]!;
    const withArgs = (resourceArguments: unknown) =>
      write({ providers: [{ ...fs, capabilities: [{ ...cap, resourceArguments }] }] });
    expect(messages(withArgs([{ name: 'path', canonicalizer: 'path', role: 'own' }]))).toEqual([
      expect.stringMatching(/^providers\.0\.capabilities\.0\.resourceArguments\.0\.role: /),
    ]);
    expect(messages(withArgs([{ name: 'path', canonicalizer: 'path' }]))).toEqual([
      expect.stringMatching(/^providers\.0\.capabilities\.0\.resourceArguments\.0\.role: /),
    ]);
    const path = { name: 'path', canonicalizer: 'path', role: 'read' };
    expect(messages(withArgs([path, { ...path, role: 'write' }]))).toEqual([
      expect.stringMatching(/resourceArguments: must not name an argument twice/),
    ]);
    const legacy = { ...cap, resourceArgument: { name: 'path', canonicalizer: 'path' } };
    expect(messages(write({ providers: [{ ...fs, capabilities: [legacy] }] }))).toEqual([
      expect.stringMatching(/^providers\.0\.capabilities\.0: .*resourceArgument/),
    ]);
    expect(messages(withArgs([path]))).toEqual([]);
  });

  it('carries nonResourceArguments to the pin-time check, bounded', () => {
    const search = {
      tool: 'search_files',
      effects: ['read'],
      risk: 'low',
      resourceArguments: [{ name: 'path', canonicalizer: 'path', role: 'read' }],
      nonResourceArguments: ['pattern'],
    };
    const parsed = loadProvidersFile(write({ providers: [{ ...fs, capabilities: [search] }] }));
    expect(parsed.providers[0]!.capabilities?.[0]?.nonResourceArguments).toEqual(['pattern']);
    const tooMany = {
      ...search,
      nonResourceArguments: Array.from({ length: 17 }, (_, i) => `a${i}`),
    };
    expect(messages(write({ providers: [{ ...fs, capabilities: [tooMany] }] }))).toEqual([
      expect.stringMatching(/^providers\.0\.capabilities\.0\.nonResourceArguments: /),
    ]);
  });

  it('refuses a missing file and text that is not JSON', () => {
    expect(messages(join(dir, 'absent.json'))).toEqual([expect.stringContaining('ENOENT')]);
    expect(messages(write('{ providers: '))).toEqual([expect.stringContaining('not JSON')]);
  });

  it('never echoes header values (they may hold credentials)', () => {
    const secret = 'Bearer super-secret-value';
    const bad = {
      config: {
        id: 'web',
        transport: { kind: 'http', url: 'https://x', headers: { 'bad header': secret } },
      },
    };
    const out = messages(write({ providers: [bad] }));
    expect(out.length).toBeGreaterThan(0);
    expect(out.join(' ')).not.toContain('super-secret');
  });
});
