import type { ResourceFacts } from '@hcp/core';
import { checkRedirect, createUrlCanonicalizer } from './url-canonicalizer';
import type { UrlCanonicalizer, UrlCanonicalizerOptions } from './url-canonicalizer';
import type { Resolver } from './system-resolver';

const DNS: Readonly<Record<string, readonly string[]>> = {
  'public.example': ['93.184.216.34'],
  'public6.example': ['2606:4700:0:0:0:0:0:1111'],
  'dual.example': ['93.184.216.34', '2606:4700::1111', '93.184.216.34'],
  'private.example': ['10.0.0.5'],
  'mixed.example': ['93.184.216.34', '10.0.0.5'],
  'metadata.example': ['169.254.169.254'],
  'aws6.example': ['fd00:ec2::254'],
  'mapped.example': ['::ffff:8.8.8.8'],
  'internal.example': ['10.1.2.3'],
  'internal2.example': ['10.9.9.9'],
  'empty.example': [],
  'garbage.example': ['not-an-address'],
  'octal.example': ['0177.0.0.1'],
  localhost: ['127.0.0.1', '::1'],
};

const fakeResolver: Resolver = (host) => {
  const answer = DNS[host];
  return answer === undefined
    ? Promise.reject(
        Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' }),
      )
    : Promise.resolve(answer);
};

function make(options: Partial<UrlCanonicalizerOptions> = {}): UrlCanonicalizer {
  return createUrlCanonicalizer({ resolver: fakeResolver, ...options });
}

const canon = make();

function refusal(facts: ResourceFacts): { status: string; rule: string } {
  if (facts.status === 'resolved') {
    throw new Error(`expected a refusal, got resolved ${facts.resource.canonical}`);
  }
  return { status: facts.status, rule: facts.rule };
}

async function ruleOf(raw: string, c: UrlCanonicalizer = canon): Promise<string> {
  const facts = await c.canonicalize(raw);
  return facts.status === 'resolved' ? 'resolved' : facts.rule;
}

describe('url canonicaliser: resolved resources', () => {
  it('normalises the URL, strips the fragment, lower-cases the host and lists addresses', async () => {
    expect(await canon.canonicalize('HTTP://Public.Example:80/a/../b?q=1#frag')).toEqual({
      status: 'resolved',
      resource: {
        kind: 'url',
        raw: 'HTTP://Public.Example:80/a/../b?q=1#frag',
        canonical: 'http://public.example/b?q=1',
        host: 'public.example',
        addresses: ['93.184.216.34'],
        scheme: 'http',
        port: 80,
      },
    });
  });

  it('gives the port the request goes to: the one the URL names, else the scheme default', async () => {
    const portOf = async (raw: string) => {
      const facts = await canon.canonicalize(raw);
      return facts.status === 'resolved' ? [facts.resource.scheme, facts.resource.port] : [];
    };
    await expect(portOf('https://public.example/x')).resolves.toEqual(['https', 443]);
    await expect(portOf('https://public.example:443/x')).resolves.toEqual(['https', 443]);
    await expect(portOf('https://public.example:8443/x')).resolves.toEqual(['https', 8443]);
    await expect(portOf('http://public.example:18080/')).resolves.toEqual(['http', 18080]);
  });

  it('normalises and de-duplicates resolved addresses', async () => {
    const facts = await canon.canonicalize('https://dual.example/');
    expect(facts.status === 'resolved' && facts.resource.addresses).toEqual([
      '93.184.216.34',
      '2606:4700::1111',
    ]);
  });

  it('uses IP literals directly, IPv6 without brackets in host', async () => {
    const facts = await canon.canonicalize('http://[2606:4700:0:0:0:0:0:1111]:8080/x');
    expect(facts.status === 'resolved' && facts.resource).toEqual({
      kind: 'url',
      raw: 'http://[2606:4700:0:0:0:0:0:1111]:8080/x',
      canonical: 'http://[2606:4700::1111]:8080/x',
      host: '2606:4700::1111',
      addresses: ['2606:4700::1111'],
      scheme: 'http',
      port: 8080,
    });
  });
});

describe('url canonicaliser: url.scheme', () => {
  it('denies schemes outside the allowed list; admits http and https', async () => {
    for (const raw of [
      'ftp://public.example/',
      'file:///etc/passwd',
      'gopher://public.example/',
      'javascript:alert(1)',
      'data:text/plain,hi',
    ]) {
      expect(refusal(await canon.canonicalize(raw))).toEqual({
        status: 'denied',
        rule: 'url.scheme',
      });
    }
    expect(await ruleOf('http://public.example/')).toBe('resolved');
    expect(await ruleOf('https://public.example/')).toBe('resolved');
  });

  it('honours a narrower allowedSchemes list', async () => {
    const httpsOnly = make({ allowedSchemes: ['https'] });
    expect(await ruleOf('http://public.example/', httpsOnly)).toBe('url.scheme');
    expect(await ruleOf('https://public.example/', httpsOnly)).toBe('resolved');
  });
});

describe('url canonicaliser: url.credentials', () => {
  it('denies userinfo in the URL; admits the same URL without it', async () => {
    expect(refusal(await canon.canonicalize('http://user:pw@public.example/'))).toEqual({
      status: 'denied',
      rule: 'url.credentials',
    });
    expect(await ruleOf('http://user@public.example/')).toBe('url.credentials');
    expect(await ruleOf('http://public.example/')).toBe('resolved');
    // WHATWG drops an empty userinfo entirely; nothing is smuggled.
    expect(await ruleOf('http://@public.example/')).toBe('resolved');
  });

  it('reads the host after the last @, as the parser does', async () => {
    expect(await ruleOf('http://public.example@169.254.169.254/')).toBe('url.credentials');
    const noCreds = await canon.canonicalize('http://a@b@public.example/');
    expect(noCreds.status).toBe('denied');
  });
});

describe('url canonicaliser: url.numeric_host', () => {
  const encodings = [
    'http://2130706433/',
    'http://0x7f.1/',
    'http://0177.0.0.1/',
    'http://127.1/',
    'http://0x7f000001/',
    'http://0x7F.0.0.1/',
    'http://127.0.0.1./',
    'http://１２７.0.0.1/',
    'http:\\\\2130706433\\',
    'http:2130706433',
    'http:///0x7f.1/',
  ];

  it.each(encodings)('denies %s; admits plain dotted decimal', async (raw) => {
    expect(refusal(await canon.canonicalize(raw))).toEqual({
      status: 'denied',
      rule: 'url.numeric_host',
    });
  });

  it('denies a numeric encoding of a public address; admits its dotted form', async () => {
    const n = ((93 * 256 + 184) * 256 + 216) * 256 + 34;
    expect(await ruleOf(`http://${n}/`)).toBe('url.numeric_host');
    expect(await ruleOf('http://93.184.216.34/')).toBe('resolved');
    expect(await ruleOf('http://93.184.216.34:8443/x')).toBe('resolved');
    expect(await ruleOf('http://u:p@93.184.216.34/')).toBe('url.credentials');
  });

  it('with allowNumericHosts the address rules still decide', async () => {
    const lenient = make({ allowNumericHosts: true });
    const n = ((93 * 256 + 184) * 256 + 216) * 256 + 34;
    expect(await ruleOf(`http://${n}/`, lenient)).toBe('resolved');
    expect(await ruleOf('http://2130706433/', lenient)).toBe('url.private_address');
  });

  it('percent-encoded dotted decimal is the same spelling, so the address rule decides', async () => {
    expect(await ruleOf('http://%31%32%37.0.0.1/')).toBe('url.private_address');
    expect(await ruleOf('http://%39%33.184.216.34/')).toBe('resolved');
  });
});

describe('url canonicaliser: url.private_address on literals', () => {
  it('denies the cloud metadata address; admits a public address', async () => {
    expect(refusal(await canon.canonicalize('http://169.254.169.254/latest/meta-data/'))).toEqual({
      status: 'denied',
      rule: 'url.private_address',
    });
    expect(await ruleOf('http://93.184.216.34/')).toBe('resolved');
  });

  it.each([
    'http://127.0.0.1/',
    'http://127.255.255.254/',
    'http://10.0.0.1/',
    'http://172.16.0.1/',
    'http://172.31.255.255/',
    'http://192.168.1.1/',
    'http://100.64.0.1/',
    'http://0.0.0.0/',
    'http://0/',
    'http://224.0.0.1/',
    'http://255.255.255.255/',
    'http://192.0.2.1/',
    'http://198.51.100.7/',
    'http://203.0.113.9/',
    'http://198.18.0.1/',
    'http://240.0.0.1/',
    'http://[::1]/',
    'http://[::]/',
    'http://[fe80::1]/',
    'http://[fd00:ec2::254]/',
    'http://[fc00::1]/',
    'http://[ff02::1]/',
    'http://[2001:db8::1]/',
    'http://[64:ff9b::808:808]/',
    'http://[2002:7f00:1::]/',
    'http://[2001::1]/',
    'http://[::127.0.0.1]/',
    'http://[100::1]/',
  ])('denies %s', async (raw) => {
    expect(refusal(await canon.canonicalize(raw)).status).toBe('denied');
  });

  it.each([
    'http://8.8.8.8/',
    'http://172.32.0.1/',
    'http://100.128.0.1/',
    'http://[2606:4700::1111]/',
  ])('admits the neighbour %s', async (raw) => {
    expect(await ruleOf(raw)).toBe('resolved');
  });
});

describe('url canonicaliser: url.ipv4_mapped', () => {
  it('denies IPv4-mapped IPv6 whatever it embeds; admits the plain public v4', async () => {
    expect(refusal(await canon.canonicalize('http://[::ffff:127.0.0.1]/'))).toEqual({
      status: 'denied',
      rule: 'url.ipv4_mapped',
    });
    expect(await ruleOf('http://[::ffff:8.8.8.8]/')).toBe('url.ipv4_mapped');
    expect(await ruleOf('http://[0:0:0:0:0:ffff:808:808]/')).toBe('url.ipv4_mapped');
    expect(await ruleOf('http://mapped.example/')).toBe('url.ipv4_mapped');
    expect(await ruleOf('http://8.8.8.8/')).toBe('resolved');
  });

  it('is not admitted by an allowCidrs rule', async () => {
    const c = make({ allowCidrs: ['::ffff:0:0/96', '0.0.0.0/0'] });
    expect(await ruleOf('http://[::ffff:8.8.8.8]/', c)).toBe('url.ipv4_mapped');
  });
});

describe('url canonicaliser: resolution through the resolver', () => {
  it('denies a name resolving to 10.0.0.5; admits a name resolving to a public address', async () => {
    expect(refusal(await canon.canonicalize('http://private.example/'))).toEqual({
      status: 'denied',
      rule: 'url.private_address',
    });
    expect(await ruleOf('http://public.example/')).toBe('resolved');
  });

  it('denies when one of two addresses is private', async () => {
    const facts = await canon.canonicalize('http://mixed.example/');
    expect(facts.status === 'denied' && facts.rule).toBe('url.private_address');
    expect(facts.status === 'denied' && facts.detail).toContain('10.0.0.5');
    expect(facts.status === 'denied' && facts.canonical).toBe('http://mixed.example/');
  });

  it('denies names resolving to metadata, AWS IPv6 metadata or loopback; admits public v6', async () => {
    expect(await ruleOf('http://metadata.example/')).toBe('url.private_address');
    expect(await ruleOf('http://aws6.example/')).toBe('url.private_address');
    expect(await ruleOf('http://localhost/')).toBe('url.private_address');
    expect(await ruleOf('http://public6.example/')).toBe('resolved');
  });

  it('url.no_address for a resolver failure or an empty answer', async () => {
    expect(refusal(await canon.canonicalize('http://nowhere.example/'))).toEqual({
      status: 'unresolvable',
      rule: 'url.no_address',
    });
    expect(refusal(await canon.canonicalize('http://empty.example/'))).toEqual({
      status: 'unresolvable',
      rule: 'url.no_address',
    });
  });

  it('url.bad_address when the resolver answers with something that is not a strict address', async () => {
    expect(await ruleOf('http://garbage.example/')).toBe('url.bad_address');
    expect(await ruleOf('http://octal.example/')).toBe('url.bad_address');
  });

  it('passes the lower-case ASCII host to the resolver', async () => {
    const asked: string[] = [];
    const c = createUrlCanonicalizer({
      resolver: (host) => {
        asked.push(host);
        return Promise.resolve(['93.184.216.34']);
      },
    });
    await c.canonicalize('http://BÜCHER.Example/');
    await c.canonicalize('http://8.8.8.8/');
    expect(asked).toEqual(['xn--bcher-kva.example']);
  });
});

describe('url canonicaliser: allowCidrs', () => {
  const c = make({ allowCidrs: ['10.1.0.0/16'] });

  it('an explicit rule admits 10.1.2.3 while 10.9.9.9 is still denied', async () => {
    expect(await ruleOf('http://internal.example/', c)).toBe('resolved');
    expect(await ruleOf('http://10.1.2.3/', c)).toBe('resolved');
    expect(await ruleOf('http://internal2.example/', c)).toBe('url.private_address');
    expect(await ruleOf('http://10.9.9.9/', c)).toBe('url.private_address');
    expect(await ruleOf('http://127.0.0.1/', c)).toBe('url.private_address');
  });

  it('fails fast on a malformed rule', () => {
    expect(() => make({ allowCidrs: ['10.1.0.0'] })).toThrow(/CIDR/);
    expect(() => make({ allowCidrs: ['nonsense/8'] })).toThrow(/CIDR/);
  });
});

describe('url canonicaliser: bounded input', () => {
  it('takes its length limit as a setting, within 256..65536', async () => {
    const short = createUrlCanonicalizer({ resolver: fakeResolver, maxUrlLength: 256 });
    const long = `http://public.example/${'a'.repeat(300)}`;
    expect(refusal(await short.canonicalize(long))).toEqual({
      status: 'invalid',
      rule: 'url.too_long',
    });
    // Neighbour: the default (8192) admits the same URL, and a URL within 256 passes the short one.
    expect(await ruleOf(long)).toBe('resolved');
    expect((await short.canonicalize('http://public.example/a')).status).toBe('resolved');
    for (const bad of [255, 65_537, 1000.5])
      expect(() => createUrlCanonicalizer({ resolver: fakeResolver, maxUrlLength: bad })).toThrow(
        /maxUrlLength/,
      );
  });

  it('rejects what is not a bounded absolute URL as invalid; never throws', async () => {
    expect(refusal(await canon.canonicalize(''))).toEqual({ status: 'invalid', rule: 'url.empty' });
    expect(refusal(await canon.canonicalize('not a url'))).toEqual({
      status: 'invalid',
      rule: 'url.unparsable',
    });
    expect(refusal(await canon.canonicalize('/relative/path'))).toEqual({
      status: 'invalid',
      rule: 'url.unparsable',
    });
    expect(refusal(await canon.canonicalize(`http://public.example/${'a'.repeat(9000)}`))).toEqual({
      status: 'invalid',
      rule: 'url.too_long',
    });
    expect(await ruleOf(`http://public.example/${'a'.repeat(8000)}`)).toBe('resolved');
    expect(refusal(await canon.canonicalize('http://public.example/\0'))).toEqual({
      status: 'invalid',
      rule: 'url.control_char',
    });
    expect(await ruleOf('http://169.254.\n169.254/')).toBe('url.control_char');
    expect(await ruleOf(7 as unknown as string)).toBe('url.not_string');
    expect(await ruleOf('http://[::1/')).toBe('url.unparsable');
  });

  it('url.empty_host for a custom scheme without a host', async () => {
    const c = make({ allowedSchemes: ['http', 'mailto'] });
    expect(await ruleOf('mailto:someone@public.example', c)).toBe('url.empty_host');
  });
});

describe('url canonicaliser: redirects', () => {
  const base = 'https://public.example/start';

  it('denies a redirect to a private address; admits a redirect to a public one', async () => {
    expect(refusal(await checkRedirect(canon, 'http://169.254.169.254/latest/', base))).toEqual({
      status: 'denied',
      rule: 'url.private_address',
    });
    const ok = await checkRedirect(canon, 'https://public6.example/next#x', base);
    expect(ok.status === 'resolved' && ok.resource).toEqual({
      kind: 'url',
      raw: 'https://public6.example/next#x',
      canonical: 'https://public6.example/next',
      host: 'public6.example',
      addresses: ['2606:4700::1111'],
      scheme: 'https',
      port: 443,
    });
  });

  it('resolves relative Locations against the previous URL', async () => {
    const rel = await checkRedirect(canon, '../other?x=1', 'https://public.example/a/b/c');
    expect(rel.status === 'resolved' && rel.resource.canonical).toBe(
      'https://public.example/a/other?x=1',
    );
    expect(await ruleOf2('//private.example/x', base)).toBe('url.private_address');
    expect(await ruleOf2('\\\\private.example\\x', base)).toBe('url.private_address');
    expect(await ruleOf2('/\\private.example/x', base)).toBe('url.private_address');
    expect(await ruleOf2('//public.example/x', base)).toBe('resolved');
  });

  it('runs every rule on the hop: numeric host, scheme, credentials', async () => {
    expect(await ruleOf2('//2130706433/', base)).toBe('url.numeric_host');
    expect(await ruleOf2('http://0x5d.184.216.34/', base)).toBe('url.numeric_host');
    expect(await ruleOf2('https:/\\0x7f.1/', base)).toBe('url.numeric_host');
    expect(await ruleOf2('file:///etc/passwd', base)).toBe('url.scheme');
    expect(await ruleOf2('http://u:p@public.example/', base)).toBe('url.credentials');
  });

  it('follows WHATWG: a same-scheme `https:host` Location is a relative path on the old host', async () => {
    const same = await checkRedirect(canon, 'https:2130706433', 'https://public.example/dir/page');
    expect(same.status === 'resolved' && same.resource.canonical).toBe(
      'https://public.example/dir/2130706433',
    );
    // Against a different scheme it names a host, and is judged as one.
    expect(await ruleOf2('http:2130706433', 'https://public.example/')).toBe('url.numeric_host');
  });

  it('rejects a broken base or Location as invalid', async () => {
    expect(await ruleOf2('/x', 'not a url')).toBe('url.unparsable');
    expect(await ruleOf2('http://[::1', base)).toBe('url.unparsable');
    expect(await ruleOf2('', base)).toBe('url.empty');
    expect(await ruleOf2('/x', '')).toBe('url.empty');
  });

  async function ruleOf2(location: string, from: string): Promise<string> {
    const facts = await canon.canonicalizeRedirect(location, from);
    return facts.status === 'resolved' ? 'resolved' : facts.rule;
  }
});
