import { findSecretSpans, looksLikeSecret, redactText, renderPreview, REDACTED } from './redaction';

const R = REDACTED;
const red = (text: string) => redactText(text).text;
const preview = (text: string, max = 4096) => renderPreview(Buffer.from(text, 'utf8'), max);

describe('redaction rules', () => {
  it.each([
    // 1. credential-named keys, each next to an ordinary key that stays
    ['password=hunter2 user=alice', `password=${R} user=alice`],
    ['DB_PASSWORD=s3cr3t\nDB_HOST=db.internal', `DB_PASSWORD=${R}\nDB_HOST=db.internal`],
    ['{"token": "abc123", "name": "build"}', `{"token": "${R}", "name": "build"}`],
    ["{'api_key': 'k-1', 'region': 'eu'}", `{'api_key': '${R}', 'region': 'eu'}`],
    ['{"client_secret":"x\\"y","id":7}', `{"client_secret":"${R}","id":7}`],
    ['X-Api-Key: 0xdeadbeef\nAccept: */*', `X-Api-Key: ${R}\nAccept: */*`],
    [
      'https://h/cb?code=1&access_token=zz9&state=ok',
      `https://h/cb?code=1&access_token=${R}&state=ok`,
    ],
    ['url=https://h/?session_id=abc;path=/', `url=https://h/?session_id=${R};path=/`],
    ['Set-Cookie: sid=1 ; Path=/', `Set-Cookie: ${R} ; Path=/`],
    ['aws_secret_access_key = wJalrXUtnFEMI/K7MDENG', `aws_secret_access_key = ${R}`],
    ['private_key: "-----x"', `private_key: "${R}"`],
    ['run --password=pw1 --user=me', `run --password=${R} --user=me`],
    // 2. bearer / basic
    ['Authorization: Bearer eyJhbGciOi.x.y', `Authorization: Bearer ${R}`],
    ['curl -H "Bearer abcdefgh12" -v', `curl -H "Bearer ${R}" -v`],
    ['auth header was Basic dXNlcjpwYXNzd29yZA== ok', `auth header was Basic ${R} ok`],
    // 3. URL userinfo
    [
      'postgres://app:pa55@db:5432/x and http://h/a',
      `postgres://app:${R}@db:5432/x and http://h/a`,
    ],
    // 5. AWS key id
    ['id AKIAIOSFODNN7EXAMPLE next', `id ${R} next`],
    // 6. long opaque strings
    ['sha 0123456789abcdef0123456789abcdef end', `sha ${R} end`],
    ['tok ghp_16C7e42F292c6912E7710c838347Ae178B4a.', `tok ${R}.`],
    ['k=Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdI==;', `k=${R};`],
  ])('%j', (input, expected) => {
    expect(red(input)).toBe(expected);
  });

  it('keeps ordinary text that resembles secrets: the unredacted neighbours', () => {
    const keep = [
      'max_tokens: 512, tokens=12',
      'author: Alice; passenger=Bob; bypass=yes',
      'id 123e4567-e89b-12d3-a456-426614174000',
      '/home/alice/projects/handle-vault/src/index.ts',
      'node_modules/@types/node/index.d.ts',
      'SOME_VERY_LONG_CONSTANT_NAME_FOR_THE_VAULT_2024',
      'the_quick_brown_fox_jumps_over_the_lazy_dog_42',
      'Bearer of bad news',
      'http://example.com/a/b?x=1&y=2',
      'AKIA is a prefix, AKIA123 too short',
      'deadbeef cafe 1234',
    ];
    for (const text of keep) expect(red(text)).toBe(text);
  });

  it('masks a PEM private key body and keeps the armour lines', () => {
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAAA\n-----END RSA PRIVATE KEY-----';
    expect(red(`key:\n${pem}\nafter`)).toBe(
      `key:\n-----BEGIN RSA PRIVATE KEY-----${R}-----END RSA PRIVATE KEY-----\nafter`,
    );
    // No END line: everything after the header is masked.
    expect(red('-----BEGIN PRIVATE KEY-----\nMIIE...')).toBe(`-----BEGIN PRIVATE KEY-----${R}`);
    // A public key is not a secret.
    const pub = '-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----';
    expect(red(pub)).toBe(pub);
  });

  it('masks every segment of a JWT through the long-string rule', () => {
    const jwt =
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c';
    expect(red(`jwt ${jwt} end`)).toBe(`jwt ${R}.${R}.${R} end`);
  });

  it('merges overlapping findings into one marker', () => {
    // The key rule and the long-string rule both find the value.
    const value = 'Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MEFCQ0RFRkdI';
    expect(findSecretSpans(`secret=${value}`)).toHaveLength(1);
    expect(red(`secret=${value}`)).toBe(`secret=${R}`);
  });

  it('classifies long runs', () => {
    expect(looksLikeSecret('a'.repeat(40))).toBe(false);
    expect(looksLikeSecret('0123456789abcdef0123456789abcdef')).toBe(true);
    expect(looksLikeSecret('0123456789012345678901234567890123')).toBe(false);
    expect(looksLikeSecret('src/Main2/Application/Components/Widget')).toBe(false);
    expect(looksLikeSecret('api/v1/reset/Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb')).toBe(true);
  });

  it('stays linear on hostile input (1 MiB each, well under a second)', () => {
    const hostile = [
      'a.'.repeat(512 * 1024),
      'password'.repeat(128 * 1024),
      'a='.repeat(512 * 1024),
      'a-'.repeat(512 * 1024),
      'x://a:'.repeat(170 * 1024),
      '-----BEGIN RSA PRIVATE KEY-----'.repeat(32 * 1024),
      'Bearer '.repeat(140 * 1024),
      'A'.repeat(1024 * 1024),
      '"token":"'.repeat(110 * 1024),
    ];
    for (const text of hostile) {
      const started = performance.now();
      redactText(text);
      expect(performance.now() - started).toBeLessThan(1500);
    }
  });
});

describe('renderPreview', () => {
  it('is empty for an empty payload', () => {
    expect(renderPreview(Buffer.alloc(0), 10)).toEqual({
      preview: '',
      truncated: false,
      redactionCount: 0,
    });
  });

  it('counts the markers it shows', () => {
    expect(preview('a password=x b token=y c')).toEqual({
      preview: `a password=${R} b token=${R} c`,
      truncated: false,
      redactionCount: 2,
    });
  });

  it('cuts at max bytes after redacting, so a secret across the cut is still masked', () => {
    const text = `0123456789 token=${'s'.repeat(40)} tail`;
    const p = preview(text, 20);
    expect(p.preview).toBe(`0123456789 token=${R}`.slice(0, 20));
    expect(p.preview).not.toContain('sss');
    expect(p.truncated).toBe(true);
    expect(p.redactionCount).toBe(1);
    // The marker after the cut is not counted.
    expect(preview('abc token=x', 3)).toEqual({
      preview: 'abc',
      truncated: true,
      redactionCount: 0,
    });
  });

  it('never splits a UTF-8 character', () => {
    const p = preview('ééé', 3);
    expect(p.preview).toBe('é');
    expect(Buffer.byteLength(p.preview)).toBeLessThanOrEqual(3);
  });

  it('summarises binary and non-UTF-8 payloads instead of showing them', () => {
    expect(renderPreview(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0xff]), 100)).toEqual({
      preview: '[binary payload: 5 bytes]',
      truncated: true,
      redactionCount: 0,
    });
    expect(renderPreview(Buffer.from('text\u0000with nul'), 100).preview).toBe(
      '[binary payload: 13 bytes]',
    );
  });

  it('replaces terminal control characters but keeps tabs and newlines', () => {
    expect(preview('a\u001b[31mred\tb\r\nc').preview).toBe('a\uFFFD[31mred\tb\r\nc');
  });
});
