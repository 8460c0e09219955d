import {
  describeDatabaseConformance,
  describeIntegration,
  integrationEnv,
  openScratchPostgres,
} from '@hcp/platform/testing';

describeIntegration('PostgreSQL', () => {
  describeDatabaseConformance('PostgreSQL (pg pool)', () =>
    openScratchPostgres(integrationEnv().databaseUrl),
  );
});
