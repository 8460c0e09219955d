import { systemResolver } from './system-resolver';
import { createUrlCanonicalizer } from './url-canonicalizer';

describe('systemResolver', () => {
  it('answers every address of localhost from the system resolver', async () => {
    const addresses = await systemResolver('localhost');
    expect(addresses.length).toBeGreaterThan(0);
    for (const a of addresses) expect(['127.0.0.1', '::1']).toContain(a);
  });

  it('makes http://localhost/ a private address, as the provider would see it', async () => {
    const c = createUrlCanonicalizer({ resolver: systemResolver });
    const facts = await c.canonicalize('http://localhost:8080/admin');
    expect(facts.status === 'denied' && facts.rule).toBe('url.private_address');
  });
});
