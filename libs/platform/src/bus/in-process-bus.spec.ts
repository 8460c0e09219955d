import { describeEventBusConformance } from '../testing/bus-conformance';
import { InProcessBus } from './in-process-bus';

describeEventBusConformance('InProcessBus', () => Promise.resolve(new InProcessBus()));
