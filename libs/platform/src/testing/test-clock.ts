/** A clock tests move by hand: call it for the time, set or advance it between steps. */
export interface TestClock {
  (): number;
  set(ms: number): void;
  advance(ms: number): void;
}

/** A TestClock starting at `start` (epoch ms), so specs never depend on the wall clock. */
export function testClock(start: number): TestClock {
  let now = start;
  const clock = (() => now) as TestClock;
  clock.set = (ms) => (now = ms);
  clock.advance = (ms) => (now += ms);
  return clock;
}
