/**
 * Gangway's catalog module for Backstage's new backend system:
 * `backend.add(import('@gangway/backstage-plugin-catalog-backend-module-gangway'))`.
 */
export { gangwayCatalogModule as default } from './module';
export { GangwayEntityProvider } from './provider';
export type { GangwayEntityProviderOptions } from './provider';
export * from './entity';
