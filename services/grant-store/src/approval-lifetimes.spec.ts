import { approvalBindingDigest, argumentsDigest } from '@hcp/core';
import { ApprovalRepository } from './approval.repository';
import { ApprovalService, DEFAULT_APPROVAL_TTL_MS } from './approval.service';
import { CapabilityRepository } from './capability.repository';
import { approvalLifetimesOf, loadGrantStoreConfig } from './config';
import { GrantsChangedPublisher } from './grants-changed.publisher';
import { RevisionRepository } from './revision.repository';
import { serviceHarness, T0, type ServiceHarness } from './testing/harness';

/** RequestApproval applies the lifetimes the configuration sets (HCP_APPROVAL_*_TTL_MS). */
describe('approval lifetimes as settings', () => {
  let h: ServiceHarness;
  beforeAll(async () => {
    h = await serviceHarness();
  });
  afterAll(() => h.close());
  beforeEach(async () => {
    await h.reset();
    await h.seedManifest();
  });

  const request = (cmd: string, ttlMs?: number) => ({
    principalId: 'agent-1',
    capabilityId: 'shell/exec',
    bindingDigest: approvalBindingDigest({
      principalId: 'agent-1',
      capabilityId: 'shell/exec',
      canonicalResources: [],
      argumentsDigest: argumentsDigest({ cmd }),
    }),
    summary: cmd,
    ...(ttlMs === undefined ? {} : { ttlMs }),
  });

  it('uses the configured default and caps at the configured maximum', async () => {
    const config = loadGrantStoreConfig({
      HCP_DATABASE: 'pglite',
      HCP_APPROVAL_DEFAULT_TTL_MS: '120000',
      HCP_APPROVAL_MAX_TTL_MS: '600000',
    });
    const db = h.database.db;
    const configured = new ApprovalService(
      db,
      new ApprovalRepository(db),
      new CapabilityRepository(db),
      new RevisionRepository(db),
      new GrantsChangedPublisher(h.bus, null),
      h.clock,
      approvalLifetimesOf(config),
    );
    expect((await configured.request(request('a'))).expiresAt).toBe(T0 + 120_000);
    expect((await configured.request(request('b', 3_600_000))).expiresAt).toBe(T0 + 600_000);
    // Neighbour: without settings the defaults stand (15 min).
    expect((await h.approvals.request(request('c'))).expiresAt).toBe(T0 + DEFAULT_APPROVAL_TTL_MS);
  });
});
