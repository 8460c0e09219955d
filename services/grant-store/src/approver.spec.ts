import { Metadata } from '@grpc/grpc-js';
import { HcpError, type Principal } from '@hcp/core';
import { createTokenVerifier, mintToken } from '@hcp/platform';
import { approverOf, OPERATOR_METADATA_KEY, type ApproverAuthentication } from './approver';
import { ApproverRequiredError } from './errors';

const tokens = { issuer: 'hcp-test', audience: 'hcp', hs256Secret: 's'.repeat(32) };
const byToken: ApproverAuthentication = { mode: 'token', verifier: createTokenVerifier(tokens) };
const byMetadata: ApproverAuthentication = { mode: 'trusted-metadata' };

function md(entries: Record<string, string>): Metadata {
  const m = new Metadata();
  for (const [k, v] of Object.entries(entries)) m.set(k, v);
  return m;
}
const bearer = async (p: Principal) =>
  md({ authorization: `Bearer ${await mintToken(p, tokens)}` });

describe('approverOf', () => {
  it('with a verifier: an operator token names the approver', async () => {
    await expect(
      approverOf(byToken, await bearer({ id: 'ops-1', kind: 'operator' }), 'DecideApproval'),
    ).resolves.toMatchObject({ id: 'ops-1', kind: 'operator' });
  });

  it.each(['agent', 'service'] as const)(
    'with a verifier: a %s token is refused as not an approver',
    async (kind) => {
      const p = approverOf(byToken, await bearer({ id: 'x', kind }), 'DecideApproval');
      await expect(p).rejects.toBeInstanceOf(ApproverRequiredError);
      await expect(p).rejects.toMatchObject({ reason: 'PRINCIPAL_UNAUTHENTICATED' });
    },
  );

  it('with a verifier: trusted metadata is ignored, so no token is unauthenticated', async () => {
    const p = approverOf(byToken, md({ [OPERATOR_METADATA_KEY]: 'ops-1' }), 'DecideApproval');
    await expect(p).rejects.toBeInstanceOf(HcpError);
    await expect(p).rejects.toMatchObject({ reason: 'PRINCIPAL_UNAUTHENTICATED' });
    await expect(approverOf(byToken, undefined, 'DecideApproval')).rejects.toMatchObject({
      reason: 'PRINCIPAL_UNAUTHENTICATED',
    });
  });

  it('with a verifier: a token signed with another key is unauthenticated', async () => {
    const forged = await mintToken(
      { id: 'ops-1', kind: 'operator' },
      { ...tokens, hs256Secret: 'z'.repeat(32) },
    );
    await expect(
      approverOf(byToken, md({ authorization: `Bearer ${forged}` }), 'DecideApproval'),
    ).rejects.toMatchObject({ reason: 'PRINCIPAL_UNAUTHENTICATED', message: /signature/ });
  });

  it('without a verifier (dev only): the id in hcp-principal-id, and nothing without it', async () => {
    await expect(
      approverOf(byMetadata, md({ [OPERATOR_METADATA_KEY]: 'ops-1' }), 'DecideApproval'),
    ).resolves.toEqual({ id: 'ops-1', kind: 'operator' });
    await expect(approverOf(byMetadata, md({}), 'DecideApproval')).rejects.toThrow(
      /hcp-principal-id/,
    );
  });
});
