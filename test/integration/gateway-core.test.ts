/**
 * The core promise on the standalone gateway: one login seen by every mount, a mount
 * reads and writes only its keys, forged headers stripped (the tests: core-suite.ts).
 */
import { startGateway } from '../support/gateway.ts';
import { coreSuite } from './core-suite.ts';

coreSuite({ start: (config) => startGateway(config), unmatched: 'gateway' });
