/**
 * Gangway's scaffolder module for Backstage's new backend system:
 * `backend.add(import('@gangway/backstage-plugin-scaffolder-backend-module-gangway'))`.
 */
export { gangwayScaffolderModule as default } from './module';
export { createGangwayRunAction, createGangwayActionFor } from './actions';
export { readGangwayConfig } from './config';
export type { GangwayScaffolderConfig } from './config';
export { runGangwayStep, defaultIdempotencyKey } from './run';
export { followRun, describeApproval, describeFailure } from './follow';
