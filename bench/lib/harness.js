/**
 * @module bench/lib/harness — the integration-test harness (test/support), compiled to bench/dist/support
 * by `tsc -p bench` (part of `pnpm bench`), and the built core. One place for both imports.
 */

export { httpRequest } from '../dist/support/http.js';
export { captureLogger } from '../dist/support/logs.js';
export { startChallTestSrv, startPebble } from '../dist/support/pebble.js';
export { freePort } from '../dist/support/ports.js';
export { commandExists, delay, makeTempDir, startProcess } from '../dist/support/processes.js';
export { startRedis } from '../dist/support/redis.js';
