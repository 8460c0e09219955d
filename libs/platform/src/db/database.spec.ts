import { describeDatabaseConformance } from '../testing/db-conformance';
import { openDatabase } from './database';

describeDatabaseConformance('PGlite', () => openDatabase({ kind: 'pglite' }));
