import { NatsBus } from '@hcp/platform';
import {
  describeEventBusConformance,
  describeIntegration,
  integrationEnv,
  restartNats,
} from '@hcp/platform/testing';

describeIntegration('NATS JetStream', () => {
  describeEventBusConformance(
    'NatsBus',
    () => NatsBus.connect({ servers: integrationEnv().natsUrl, name: 'bus-conformance' }),
    { restartServer: restartNats },
  );
});
