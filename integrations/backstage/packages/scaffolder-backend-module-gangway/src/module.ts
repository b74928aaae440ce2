import { coreServices, createBackendModule } from '@backstage/backend-plugin-api';
import { scaffolderActionsExtensionPoint } from '@backstage/plugin-scaffolder-node';
import { GangwayClient } from '@gangway/backstage-common';
import { createGangwayActionFor, createGangwayRunAction } from './actions';
import { readGangwayConfig } from './config';

/**
 * The scaffolder module: `gangway:run`, and with gangway.generateActions one
 * `gangway:<id>` per action Gangway lists at startup.
 */
export const gangwayScaffolderModule = createBackendModule({
  pluginId: 'scaffolder',
  moduleId: 'gangway',
  register(env) {
    env.registerInit({
      deps: {
        scaffolder: scaffolderActionsExtensionPoint,
        config: coreServices.rootConfig,
        auth: coreServices.auth,
        logger: coreServices.logger,
      },
      async init({ scaffolder, config, auth, logger }) {
        const cfg = readGangwayConfig(config);
        const client = new GangwayClient({
          baseUrl: cfg.baseUrl,
          requestTimeoutMs: cfg.requestTimeoutMs,
          userAgent: 'gangway-backstage-scaffolder',
        });
        const deps = { client, auth, config: cfg };
        scaffolder.addActions(createGangwayRunAction(deps));
        if (!cfg.generateActions) return;
        /* Listed with the configured token, or as this plugin itself (a
         * plugin token without obo: Gangway must accept it with
         * obo_required false). A failure leaves gangway:run working. */
        try {
          const token =
            cfg.token ??
            (
              await auth.getPluginRequestToken({
                onBehalfOf: await auth.getOwnServiceCredentials(),
                targetPluginId: cfg.targetPluginId,
              })
            ).token;
          const summaries = await client.listActions(token);
          const actions = await Promise.all(summaries.map(s => client.getAction(token, s.id)));
          scaffolder.addActions(...actions.map(a => createGangwayActionFor(deps, a)));
          logger.info(`Gangway: registered ${actions.length} actions: ${actions.map(a => `gangway:${a.id}`).join(', ')}`);
        } catch (e) {
          logger.warn(`Gangway: could not list actions for gangway:<id> (gangway:run still works): ${String(e)}`);
        }
      },
    });
  },
});
