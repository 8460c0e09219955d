import { describeSessionMarksConformance } from '../testing/session-marks-conformance';
import { InMemorySessionMarks } from './session-store';

// The same suite runs against NatsSessionMarks on a real server in
// test/integration/session-marks.int.spec.ts.
describeSessionMarksConformance('in memory', (now) =>
  Promise.resolve({ marks: new InMemorySessionMarks({ now }) }),
);
