import { mintToken } from '@hcp/platform';

/**
 * `node apps/embedded/dist/token.js <principal-id> [operator|agent|service] [ttl-seconds]`:
 * prints a bearer token signed with HCP_AUTH_HS256_SECRET for the issuer and audience the
 * embedded stack uses (HCP_AUTH_ISSUER, default hcp-embedded; HCP_AUTH_AUDIENCE, default hcp).
 * For local use and the documented curl examples; production tokens come from your IdP.
 */
async function main(): Promise<void> {
  const [id, kind = 'operator', ttl = '3600'] = process.argv.slice(2);
  const secret = process.env['HCP_AUTH_HS256_SECRET'];
  if (id === undefined || secret === undefined || secret.length < 32) {
    console.error(
      'usage: HCP_AUTH_HS256_SECRET=<32+ chars> token.js <principal-id> [operator|agent|service] [ttl-seconds]',
    );
    process.exit(2);
  }
  if (kind !== 'operator' && kind !== 'agent' && kind !== 'service') {
    console.error(`unknown kind ${kind}`);
    process.exit(2);
  }
  const token = await mintToken(
    { id, kind },
    {
      issuer: process.env['HCP_AUTH_ISSUER'] ?? 'hcp-embedded',
      audience: process.env['HCP_AUTH_AUDIENCE'] ?? 'hcp',
      hs256Secret: secret,
      ttlSec: Number(ttl),
    },
  );
  process.stdout.write(`${token}\n`);
}

void main();
