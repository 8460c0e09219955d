import type { Capability } from '@hcp/core';
import type { ProviderConfig } from '../providers/provider-config';
import { parseProviderConfig } from '../providers/provider-config';
import { canonicalizerPort } from './canonicalizer-port';

/** One provider's `resources.maxUrlLength` reaches the URL canonicaliser of that provider only. */
describe('the URL length limit as a provider setting', () => {
  const fetchOf = (provider: string): Capability => ({
    id: `${provider}/fetch`,
    provider,
    tool: 'fetch',
    effects: ['network'],
    risk: 'low',
    approvalRequired: false,
    requiredScopes: [],
    resourceArguments: [{ name: 'url', canonicalizer: 'url', role: 'fetch' }],
  });
  const configs = new Map<string, ProviderConfig>([
    [
      'short',
      parseProviderConfig({
        id: 'short',
        transport: { kind: 'http', url: 'http://127.0.0.1:1/mcp' },
        resources: { maxUrlLength: 256 },
      }),
    ],
    [
      'plain',
      parseProviderConfig({
        id: 'plain',
        transport: { kind: 'http', url: 'http://127.0.0.1:1/mcp' },
      }),
    ],
  ]);
  const port = canonicalizerPort((id) => configs.get(id), {
    resolver: () => Promise.resolve(['93.184.215.14']),
  });
  const statusOf = async (provider: string, url: string) => {
    const [fact] = await port.canonicalize(fetchOf(provider), { url });
    return fact?.facts.status === 'resolved' ? 'resolved' : fact?.facts.rule;
  };

  it('refuses a URL over the provider’s own limit (url.too_long); the default 8192 admits it elsewhere', async () => {
    const long = `https://example.org/${'a'.repeat(400)}`;
    expect(await statusOf('short', long)).toBe('url.too_long');
    expect(await statusOf('plain', long)).toBe('resolved');
    expect(await statusOf('plain', `https://example.org/${'a'.repeat(8200)}`)).toBe('url.too_long');
    // Neighbour: a URL within 256 passes the short provider.
    expect(await statusOf('short', 'https://example.org/a')).toBe('resolved');
  });
});
