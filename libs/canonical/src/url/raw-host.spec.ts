import { extractRawHost } from './raw-host';

describe('extractRawHost', () => {
  it.each([
    ['http://Example.COM/x', 'example.com'],
    ['http://user:pw@host:8080/p', 'host'],
    ['http://a@b@host/', 'host'],
    ['http://[::1]:80/', '[::1]'],
    ['http://2130706433/', '2130706433'],
    ['http:\\\\0x7f.1\\x', '0x7f.1'],
    ['http:///host/', 'host'],
    ['http:host', 'host'],
    ['  http://host  ', 'host'],
    ['http://%31%32%37.0.0.1/', '127.0.0.1'],
    ['http://host?q', 'host'],
    ['http://host#f', 'host'],
    ['foo://host/x', 'host'],
    ['foo:opaque', ''],
  ])('%j -> %j', (input, host) => {
    expect(extractRawHost(input)).toBe(host);
  });

  it.each([
    ['//other/x', 'http://base/', 'other'],
    ['\\\\other\\x', 'http://base/', 'other'],
    ['/path', 'http://BASE:1/', 'base'],
    ['rel', 'http://0x7f.1/', '0x7f.1'],
    ['http:rel', 'http://base/', 'base'],
    ['http:rel', 'https://base/', 'rel'],
    ['https:/\\other', 'https://base/', 'other'],
  ])('%j against %j -> %j', (input, base, host) => {
    expect(extractRawHost(input, base)).toBe(host);
  });

  it('gives up (undefined) where it cannot tell, so callers fail closed', () => {
    expect(extractRawHost('http://%zz/')).toBeUndefined();
    expect(extractRawHost('/relative')).toBeUndefined();
    expect(extractRawHost('file:///etc/passwd')).toBeUndefined();
  });
});
