import { classifyAddress } from './address-classifier';

describe('classifyAddress', () => {
  it.each([
    ['127.0.0.1', 'loopback'],
    ['10.0.0.5', 'private'],
    ['172.16.0.1', 'private'],
    ['192.168.0.1', 'private'],
    ['169.254.169.254', 'linkLocal'],
    ['100.64.0.1', 'carrierGradeNat'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['224.0.0.251', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['192.0.2.1', 'reserved'],
    ['240.0.0.1', 'reserved'],
    ['::1', 'loopback'],
    ['::', 'unspecified'],
    ['fe80::1', 'linkLocal'],
    ['fe80::1%eth0', 'linkLocal'],
    ['fd00:ec2::254', 'uniqueLocal'],
    ['fc00::1', 'uniqueLocal'],
    ['::ffff:8.8.8.8', 'ipv4Mapped'],
    ['64:ff9b::808:808', 'rfc6052'],
    ['2002:c000:204::1', '6to4'],
    ['2001:0:4136:e378::1', 'teredo'],
    ['2001:db8::1', 'reserved'],
    ['ff02::1', 'multicast'],
    ['::7f00:1', 'nonGlobal'],
    ['4000::1', 'nonGlobal'],
  ])('denies %s (%s)', (addr, range) => {
    expect(classifyAddress(addr)).toEqual({ allowed: false, range });
  });

  it.each(['93.184.216.34', '8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700::1111', '2a00:1450::1'])(
    'admits the public neighbour %s',
    (addr) => {
      expect(classifyAddress(addr)).toEqual({ allowed: true, range: 'unicast' });
    },
  );

  it.each([
    '2130706433',
    '0x7f.1',
    '0177.0.0.1',
    '127.1',
    '010.0.0.1',
    '1.2.3.256',
    'example.com',
    '',
    '[::1]',
  ])('refuses the non-strict literal %j as invalid', (addr) => {
    expect(classifyAddress(addr)).toEqual({ allowed: false, range: 'invalid' });
  });

  it('refuses a zone id on an otherwise global address', () => {
    expect(classifyAddress('2606:4700::1111%eth0')).toEqual({ allowed: false, range: 'zoned' });
  });
});
