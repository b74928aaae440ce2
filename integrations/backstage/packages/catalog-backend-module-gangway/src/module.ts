import { coreServices, createBackendModule } from '@backstage/backend-plugin-api';
import { catalogProcessingExtensionPoint } from '@backstage/plugin-catalog-node';
import { GangwayClient } from '@gangway/backstage-common';
import { GangwayEntityProvider } from './provider';

/** The catalog module: Gangway's live resources as Resource entities. */
export const gangwayCatalogModule = createBackendModule({
  pluginId: 'catalog',
  moduleId: 'gangway',
  register(env) {
    env.registerInit({
      deps: {
        catalog: catalogProcessingExtensionPoint,
        config: coreServices.rootConfig,
        auth: coreServices.auth,
        logger: coreServices.logger,
        scheduler: coreServices.scheduler,
        lifecycle: coreServices.rootLifecycle,
      },
      async init({ catalog, config, auth, logger, scheduler, lifecycle }) {
        const g = config.getConfig('gangway');
        const baseUrl = g.getString('baseUrl').replace(/\/+$/, '');
        if (!/^https?:\/\/[^/]+/.test(baseUrl)) {
          throw new Error(`gangway.baseUrl must be an http(s) URL, not '${baseUrl}'`);
        }
        const staticToken = g.getOptionalString('token');
        const targetPluginId = g.getOptionalString('targetPluginId') ?? 'gangway';
        const resyncSeconds = g.getOptionalNumber('catalog.resyncSeconds') ?? 3600;
        if (!(resyncSeconds >= 0)) throw new Error('gangway.catalog.resyncSeconds must be 0 or more');
        const provider = new GangwayEntityProvider({
          client: new GangwayClient({ baseUrl, userAgent: 'gangway-backstage-catalog' }),
          token: async () =>
            staticToken ??
            (
              await auth.getPluginRequestToken({
                onBehalfOf: await auth.getOwnServiceCredentials(),
                targetPluginId,
              })
            ).token,
          logger,
          baseUrl,
          consoleUrl: (g.getOptionalString('consoleUrl') ?? baseUrl).replace(/\/+$/, ''),
          namespace: g.getOptionalString('catalog.namespace') ?? 'default',
          ownerNamespace: g.getOptionalString('catalog.ownerNamespace') ?? 'default',
        });
        catalog.addEntityProvider(provider);
        if (resyncSeconds > 0) {
          await scheduler.scheduleTask({
            id: 'gangway-catalog-resync',
            scope: 'local',
            frequency: { seconds: resyncSeconds },
            timeout: { minutes: 10 },
            initialDelay: { seconds: resyncSeconds },
            fn: async () => {
              await provider.resync();
            },
          });
        }
        lifecycle.addShutdownHook(() => provider.stop());
      },
    });
  },
});
