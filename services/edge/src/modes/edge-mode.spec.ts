import { ABLATION_SWITCHES } from '@hcp/policy';
import {
  ABLATION_EFFECTS,
  checkModeAblations,
  EDGE_MODES,
  modeBanner,
  parseEdgeMode,
} from './edge-mode';

describe('edge modes', () => {
  it('parses each mode, defaults to hcp, and refuses anything else', () => {
    for (const mode of EDGE_MODES) expect(parseEdgeMode(mode)).toBe(mode);
    expect(parseEdgeMode(' Connection ')).toBe('connection');
    expect(parseEdgeMode(undefined)).toBe('hcp');
    expect(parseEdgeMode('')).toBe('hcp');
    expect(() => parseEdgeMode('niave')).toThrow(/unknown edge mode "niave"; known: naive/);
    expect(() => parseEdgeMode('off')).toThrow(/unknown edge mode/);
  });

  it('refuses ablations outside hcp mode; allows them in hcp', () => {
    expect(() => checkModeAblations('naive', ['grant_matching'])).toThrow(/hcp only/);
    expect(() => checkModeAblations('connection', ['init_check'])).toThrow(/hcp only/);
    expect(() => checkModeAblations('hcp', ['grant_matching'])).not.toThrow();
    expect(() => checkModeAblations('naive', [])).not.toThrow();
  });

  it('describes every ablation switch', () => {
    expect(Object.keys(ABLATION_EFFECTS).sort()).toEqual([...ABLATION_SWITCHES].sort());
  });

  it('prints one calm line for hcp without ablations', () => {
    expect(modeBanner('hcp', [])).toBe('HCP edge mode: hcp (B2); every invariant I1-I8 enforced');
  });

  it('prints a boxed warning naming what is off for every other configuration', () => {
    const naive = modeBanner('naive', []);
    expect(naive.split('\n')[0]).toMatch(/^=+$/);
    expect(naive).toMatch(
      /!! HCP EDGE MODE: naive \(B0\)\. MEASUREMENT ONLY\. NOTHING IS ENFORCED\./,
    );
    expect(naive).toMatch(/NEVER run this configuration in production/);

    const connection = modeBanner('connection', []);
    expect(connection).toMatch(/connection \(B1\)/);
    expect(connection).toMatch(/Not checked: grants/);

    const ablated = modeBanner('hcp', ['grant_matching', 'approval_gate']);
    expect(ablated).toMatch(/hcp \(B2\) WITH ABLATIONS/);
    expect(ablated).toMatch(/- grant_matching: I5: calls need no matching grant/);
    expect(ablated).toMatch(/- approval_gate: I2:/);
    expect(ablated).toMatch(/NEVER/);
  });
});
