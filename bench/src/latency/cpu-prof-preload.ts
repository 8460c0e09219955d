import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { basename, join } from 'node:path';

/**
 * Preloaded into every stack process of a profile run (NODE_OPTIONS=--require <this file>),
 * because Node 20 refuses --cpu-prof in NODE_OPTIONS and the stack's processes are started by
 * scripts we do not change. Starts the V8 sampling profiler at load and writes
 * `<HCP_BENCH_CPU_PROF_DIR>/<script>-<pid>.cpuprofile` when the process exits normally (the
 * services exit through process.exit after SIGTERM). The in-thread inspector session answers
 * synchronously, so writing from the 'exit' handler works.
 */
const dir = process.env['HCP_BENCH_CPU_PROF_DIR'];
if (dir !== undefined && dir !== '') {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 250 });
  session.post('Profiler.start');
  process.once('exit', () => {
    session.post('Profiler.stop', (err, res) => {
      if (err !== null) return;
      const script = basename(process.argv[1] ?? 'node', '.js');
      const parent = basename(join(process.argv[1] ?? '', '..', '..'));
      writeFileSync(
        join(dir, `${parent}-${script}-${process.pid}.cpuprofile`),
        JSON.stringify(res.profile),
      );
    });
  });
}
