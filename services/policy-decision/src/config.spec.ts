import { ConfigError } from '@hcp/platform';
import { loadPolicyDecisionConfig } from './config';

const base = {
  HCP_GRANT_STORE_URL: '127.0.0.1:50061',
  HCP_NATS_URL: 'nats://127.0.0.1:4222',
};

describe('policy-decision config', () => {
  it('starts with every check on: no ablation reaches the parsed config', () => {
    const c = loadPolicyDecisionConfig(base);
    expect(c.HCP_ABLATIONS).toBeUndefined();
    expect(
      loadPolicyDecisionConfig({ ...base, HCP_ABLATIONS: '  ' }).HCP_ABLATIONS,
    ).toBeUndefined();
  });

  it.each(['grant_matching', 'audit_required,approval_gate', 'no-such-switch'])(
    'refuses to start with HCP_ABLATIONS=%s (ablations are benchmark-only)',
    (value) => {
      let error: unknown;
      try {
        loadPolicyDecisionConfig({ ...base, HCP_ABLATIONS: value });
      } catch (err: unknown) {
        error = err;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).problems.map((p) => p.variable)).toEqual(['HCP_ABLATIONS']);
      expect((error as Error).message).toContain('cannot be started with a check switched off');
    },
  );
});
