import 'reflect-metadata';
import { CASES } from '@hcp/bench/attacks/cases';
import { hcpProblems, runSpec, type CaseResult } from '@hcp/bench/attacks/runner';
import { startAttackWorld, type AttackWorldOptions } from '@hcp/bench/attacks/stack';
import { fetchProviderRequired } from '@hcp/edge/testing';
import { describeIntegration, integrationEnv } from '@hcp/platform/testing';

/**
 * In CI: the attack corpus (bench/src/attacks/cases.ts) against the real edge in hcp
 * mode. Every attack must be blocked, every allowed neighbour served and every denial found in
 * the audit REST API by its decision id, with the reason (and a pipe's target reason) the case
 * names in `refusedWith`; a case with a documented knownGap must still show exactly that gap (so a
 * fix is noticed and the marker removed). The baselines and ablations are
 * measured by `pnpm bench:attacks` (docs/benchmarks.md), not asserted here.
 */

const FETCH_AVAILABLE = fetchProviderRequired('the URL cases of the attack suite');

const STACKS: {
  name: string;
  suite: typeof describe | typeof describeIntegration;
  options: () => AttackWorldOptions;
}[] = [
  {
    name: 'embedded',
    suite: describe,
    options: () => ({ kind: 'embedded', fetch: FETCH_AVAILABLE }),
  },
  {
    name: 'distributed',
    suite: describeIntegration,
    options: () => ({
      kind: 'distributed',
      databaseUrl: integrationEnv().databaseUrl,
      natsUrl: integrationEnv().natsUrl,
      fetch: FETCH_AVAILABLE,
    }),
  },
];

for (const stack of STACKS) {
  stack.suite(`attack corpus in hcp mode (${stack.name})`, () => {
    const results = new Map<string, CaseResult>();

    beforeAll(async () => {
      const world = await startAttackWorld(stack.options());
      try {
        const rs = await runSpec(world, { label: 'hcp', mode: 'hcp', ablations: [] }, CASES);
        for (const r of rs) results.set(r.id, r);
      } finally {
        await world.close();
      }
    }, 300_000);

    it('has ten core cases, two per class, and at least 69 more', () => {
      const core = CASES.filter((c) => c.core !== undefined);
      expect(core).toHaveLength(10);
      const perClass = new Map<string, number>();
      for (const c of core) perClass.set(c.core!, (perClass.get(c.core!) ?? 0) + 1);
      expect([...perClass.values()]).toEqual([2, 2, 2, 2, 2]);
      expect(CASES.length - core.length).toBeGreaterThanOrEqual(69);
      expect(new Set(CASES.map((c) => c.id)).size).toBe(CASES.length);
    });

    it.each(CASES.map((c) => [c.id, c.title]))('%s: %s', (id) => {
      const r = results.get(id);
      if (r === undefined) throw new Error(`${id} did not run`);
      if (!r.applicable) return; // e.g. a URL case without the fetch provider (outside CI only)
      expect(hcpProblems([r])).toEqual([]);
    });
  });
}
