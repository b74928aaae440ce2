import { AuthService, BackstageCredentials } from '@backstage/backend-plugin-api';
import { GangwayAuth } from '@gangway/backstage-common';
import { GangwayScaffolderConfig } from './config';

/** Who Gangway sees, and how to get a token for each request. */
export interface GangwayCaller {
  /** A token for the next request (plugin tokens are short-lived: ask again each time). */
  token: () => Promise<GangwayAuth>;
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
/** Team names out of a user entity's memberOf refs: group:default/payments → payments, group:ops/sre → ops/sre. */
export function teamsOf(memberOf: unknown): string[] {
  if (!Array.isArray(memberOf)) return [];
  return memberOf
    .filter((r): r is string => typeof r === 'string')
    .map(r => r.toLowerCase().replace(/^group:/, ''))
    .filter(r => !r.includes(':'))
    .map(r => r.replace(/^default\//, ''));
}

export async function callerFor(
  config: GangwayScaffolderConfig,
  auth: AuthService,
  getInitiatorCredentials: () => Promise<BackstageCredentials>,
  user?: { ref?: string; entity?: { spec?: { memberOf?: unknown } } },
): Promise<GangwayCaller> {
  if (config.credentials === 'service' && !config.onBehalfOf) {
    const token = config.token as string;
    return { token: async () => token, describe: 'the service account of gangway.token' };
  }
  const credentials = await getInitiatorCredentials();
  if (config.credentials === 'service') {
    /* A service token with the act_on_behalf role (docs/policy.md): the
     * request is the user's, with the teams of the user's catalog entity. */
    if (!auth.isPrincipal(credentials, 'user')) {
      throw new Error('This task was not started by a user: gangway.onBehalfOf has nobody to act for.');
    }
    const subject = credentials.principal.userEntityRef;
    const teams = teamsOf(user?.entity?.spec?.memberOf);
    const headers: Record<string, string> = { 'Gangway-On-Behalf-Of': subject };
    if (teams.length) headers['Gangway-On-Behalf-Of-Teams'] = teams.join(',');
    const token = config.token as string;
    return {
      token: async () => ({ token, headers }),
      describe: `${subject} (through the service account of gangway.token)`,
    };
  }
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
