import { AuthService, BackstageCredentials } from '@backstage/backend-plugin-api';
import { GangwayScaffolderConfig } from './config';

/** Who Gangway sees, and how to get a token for each request. */
export interface GangwayCaller {
  /** A token for the next request (plugin tokens are short-lived: ask again each time). */
  token: () => Promise<string>;
  /** For log lines: "user:default/alice" or "the service account of gangway.token". */
  describe: string;
}

/**
 * The initiator's credentials become a plugin token (sub = this plugin,
 * aud = gangway, obo = the user's token) that Gangway verifies per
 * docs/auth-backstage.md and records as the user, with the scaffolder as
 * delegate. With `credentials: service` the configured Gangway token is
 * used instead, and said so in the step's log.
 */
export async function callerFor(
  config: GangwayScaffolderConfig,
  auth: AuthService,
  getInitiatorCredentials: () => Promise<BackstageCredentials>,
): Promise<GangwayCaller> {
  if (config.credentials === 'service') {
    const token = config.token as string;
    return { token: async () => token, describe: 'the service account of gangway.token' };
  }
  const credentials = await getInitiatorCredentials();
  if (!auth.isPrincipal(credentials, 'user')) {
    throw new Error(
      `This task was not started by a user (principal type '${(credentials.principal as { type?: string }).type}'); ` +
        "gangway:run submits as the user who started the task. Set gangway.credentials to 'service' " +
        'to submit with a Gangway service token instead.',
    );
  }
  const targetPluginId = config.targetPluginId;
  return {
    token: async () => (await auth.getPluginRequestToken({ onBehalfOf: credentials, targetPluginId })).token,
    describe: credentials.principal.userEntityRef,
  };
}
