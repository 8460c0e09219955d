import { HcpError } from '@hcp/core';
import { PROVIDER_CONFIG_LIMITS, parseProviderConfig } from './provider-config';

const stdio = {
  id: 'fs',
  transport: { kind: 'stdio', command: '/usr/bin/node', args: ['server.js', '/srv/data'] },
  resources: { filesystemRoots: ['/srv/data'] },
};
const http = {
  id: 'fetch',
  transport: { kind: 'http', url: 'https://mcp.example.com/mcp', headers: { Authorization: 'x' } },
  resources: { allowCidrs: ['10.0.0.0/8', 'fd00::/8'] },
};

/** Parses and returns the field the error names, or fails the test when parsing succeeds. */
function failingField(input: unknown): string {
  try {
    parseProviderConfig(input);
  } catch (err) {
    expect(err).toBeInstanceOf(HcpError);
    const e = err as HcpError;
    expect(e.reason).toBe('INPUT_INVALID');
    expect(e.message).toContain(String(e.details['field']));
    return String(e.details['field']);
  }
  throw new Error('expected the config to be rejected');
}

describe('parseProviderConfig', () => {
  it('accepts a stdio provider and defaults args', () => {
    expect(parseProviderConfig(stdio)).toEqual(stdio);
    const noArgs = parseProviderConfig({ id: 'a', transport: { kind: 'stdio', command: 'x' } });
    expect(noArgs.transport).toEqual({ kind: 'stdio', command: 'x', args: [] });
  });

  it('takes a URL length limit within its bounds (256..65536)', () => {
    for (const maxUrlLength of [256, 8192, 65_536]) {
      const parsed = parseProviderConfig({ ...http, resources: { maxUrlLength } });
      expect(parsed.resources?.maxUrlLength).toBe(maxUrlLength);
    }
    expect(parseProviderConfig(http).resources?.maxUrlLength).toBeUndefined();
  });

  it.each([1000, 60_000, 3_600_000])('takes a re-list interval of %i ms', (ms) => {
    expect(parseProviderConfig({ ...stdio, relistIntervalMs: ms }).relistIntervalMs).toBe(ms);
  });

  it.each([0, 999, 3_600_001, 1500.5])('refuses a re-list interval of %d ms', (ms) => {
    expect(failingField({ ...stdio, relistIntervalMs: ms })).toBe('relistIntervalMs');
  });

  it('accepts an http provider with headers and CIDRs', () => {
    expect(parseProviderConfig(http)).toEqual(http);
  });

  it.each([
    ['id with a slash', { ...stdio, id: 'fs/evil' }, 'id'],
    ['upper-case id', { ...stdio, id: 'FS' }, 'id'],
    ['over-long id', { ...stdio, id: 'a'.repeat(PROVIDER_CONFIG_LIMITS.idMaxLength + 1) }, 'id'],
    ['missing command', { id: 'a', transport: { kind: 'stdio' } }, 'transport.command'],
    ['empty command', { id: 'a', transport: { kind: 'stdio', command: '' } }, 'transport.command'],
    [
      'too many args',
      { id: 'a', transport: { kind: 'stdio', command: 'x', args: Array(65).fill('a') } },
      'transport.args',
    ],
    [
      'NUL in an arg',
      { id: 'a', transport: { kind: 'stdio', command: 'x', args: ['ok', 'a\0b'] } },
      'transport.args.1',
    ],
    [
      'relative cwd',
      { id: 'a', transport: { kind: 'stdio', command: 'x', cwd: 'rel/dir' } },
      'transport.cwd',
    ],
    [
      'bad env name',
      { id: 'a', transport: { kind: 'stdio', command: 'x', env: { 'A-B': '1' } } },
      'transport.env.A-B',
    ],
    [
      'unknown transport kind',
      { id: 'a', transport: { kind: 'ws', url: 'ws://x' } },
      'transport.kind',
    ],
    [
      'non-http url',
      { id: 'a', transport: { kind: 'http', url: 'file:///etc/passwd' } },
      'transport.url',
    ],
    ['not a url', { id: 'a', transport: { kind: 'http', url: 'nope' } }, 'transport.url'],
    [
      'header value with CRLF',
      { id: 'a', transport: { kind: 'http', url: 'http://h/', headers: { X: 'a\r\nB: c' } } },
      'transport.headers.X',
    ],
    [
      'relative filesystem root',
      { ...stdio, resources: { filesystemRoots: ['/ok', 'data'] } },
      'resources.filesystemRoots.1',
    ],
    [
      'malformed CIDR',
      { ...http, resources: { allowCidrs: ['10.0.0.0/33'] } },
      'resources.allowCidrs.0',
    ],
    [
      'URL length limit under 256',
      { ...http, resources: { maxUrlLength: 255 } },
      'resources.maxUrlLength',
    ],
    [
      'URL length limit over 65536',
      { ...http, resources: { maxUrlLength: 65_537 } },
      'resources.maxUrlLength',
    ],
    ['unknown top-level key (typo)', { ...stdio, resource: {} }, '(root)'],
    [
      'unknown transport key (typo)',
      { id: 'a', transport: { kind: 'stdio', command: 'x', comand: 'y' } },
      'transport',
    ],
    ['not an object', 'fs', '(root)'],
  ])('rejects %s, naming the field', (_label, input, field) => {
    expect(failingField(input)).toBe(field);
  });

  it('never echoes a header or env value in the error', () => {
    const secret = 'Bearer s3cr3t\n';
    let message = '';
    try {
      parseProviderConfig({
        id: 'a',
        transport: { kind: 'http', url: 'http://h/', headers: { Authorization: secret } },
      });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('transport.headers.Authorization');
    expect(message).not.toContain('s3cr3t');
  });
});
