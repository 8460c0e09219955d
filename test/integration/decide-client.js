// A separate process calling policy-decision over gRPC, using the compiled packages
/* eslint-disable @typescript-eslint/no-require-imports */
// (run `pnpm build` first). Usage: node decide-client.js <host:port> <principal>
'use strict';
const { argumentsDigest } = require('@hcp/core');
const { callUnary, createGrpcClient } = require('@hcp/platform');
const {
  policy,
  decisionFromProto,
  principalToProto,
  sessionToProto,
  resourceFactsToProto,
} = require('@hcp/proto');
const { activeSession, path, READ_DEFINITION_DIGEST } = require('@hcp/policy/testing');

const [url, principal] = process.argv.slice(2);
const client = createGrpcClient(policy.PolicyDecisionClient, url);
callUnary(client.decide.bind(client), {
  principal: principalToProto({ id: principal, kind: 'agent' }),
  session: sessionToProto(activeSession(principal)),
  call: {
    capabilityId: 'fs/read_file',
    observedDefinitionDigest: READ_DEFINITION_DIGEST,
    resource: resourceFactsToProto(path('/data/app/a.txt')),
    argumentsDigest: argumentsDigest({ path: '/data/app/a.txt' }),
    approvalId: '',
  },
  endpointFamily: 1,
  traceId: '',
  auditUnavailable: false,
})
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
