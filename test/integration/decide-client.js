/* eslint-disable @typescript-eslint/no-require-imports */
// A separate process calling policy-decision over gRPC, using the compiled packages
// (run `pnpm build` first). Usage: node decide-client.js <host:port> <principal>
'use strict';
const { callUnary, createGrpcClient } = require('@hcp/platform');
const { policy, decisionFromProto, decideRequestToProto } = require('@hcp/proto');
const { activeSession, call, path } = require('@hcp/policy/testing');

const [url, principal] = process.argv.slice(2);
const client = createGrpcClient(policy.PolicyDecisionClient, url);
callUnary(
  client.decide.bind(client),
  decideRequestToProto({
    principal: { id: principal, kind: 'agent' },
    session: activeSession(principal),
    call: call('fs/read_file', path('/data/app/a.txt'), { path: '/data/app/a.txt' }),
  }),
)
  .then((res) => {
    const d = decisionFromProto(res.decision);
    process.stdout.write(
      JSON.stringify({ outcome: d.outcome, reason: d.reason, pid: process.pid }),
    );
    client.close();
  })
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });
