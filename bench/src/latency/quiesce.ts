import { readFileSync } from 'node:fs';

/** Idle and total jiffies summed over every CPU (the first line of /proc/stat). */
function cpuTimes(): { idle: number; total: number } | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    if (f.length < 5 || f.some((n) => !Number.isFinite(n))) return null;
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  } catch {
    return null;
  }
}

/** How busy the machine was over `ms` (0..1); null where /proc/stat is missing. */
export async function busyFraction(ms: number): Promise<number | null> {
  const a = cpuTimes();
  await new Promise((r) => setTimeout(r, ms));
  const b = cpuTimes();
  if (a === null || b === null || b.total === a.total) return null;
  return 1 - (b.idle - a.idle) / (b.total - a.total);
}

/**
 * Waits until the machine is nearly idle (below `maxBusy` over a 250 ms window) or `timeoutMs`
 * passes. Each decision leaves work behind it — its audit entry is published, consumed and
 * written to the database after the answer — so a phase started right after another would be
 * measured against the previous phase's backlog. Returns the last busy fraction seen.
 */
export async function quiesce(maxBusy = 0.2, timeoutMs = 5_000): Promise<number | null> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  const seen: (number | null)[] = [];
  let busy = await busyFraction(250);
  seen.push(busy);
  while (busy !== null && busy > maxBusy && Date.now() < deadline) {
    busy = await busyFraction(250);
    seen.push(busy);
  }
  if (busy === null) await new Promise((r) => setTimeout(r, 1000));
  if (process.env['HCP_BENCH_DEBUG'] !== undefined)
    console.error(
      `[quiesce ${process.pid}] ${Date.now() - started} ms: ${seen.map((b) => b?.toFixed(2)).join(' ')}`,
    );
  return busy;
}
