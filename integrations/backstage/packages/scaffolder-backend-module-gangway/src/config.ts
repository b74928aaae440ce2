import { Config } from '@backstage/config';

/** The `gangway:` section of app-config, as the scaffolder module uses it. */
export interface GangwayScaffolderConfig {
  baseUrl: string;
  consoleUrl: string;
  credentials: 'user' | 'service';
  token?: string;
  /** With credentials 'service': send Gangway-On-Behalf-Of with the task's user. */
  onBehalfOf: boolean;
  targetPluginId: string;
  generateActions: boolean;
  requestTimeoutMs: number;
  runTimeoutMs: number;
  pollIntervalMs: number;
}

function seconds(config: Config, key: string, dflt: number, min: number): number {
  const v = config.getOptionalNumber(key);
  if (v === undefined) return dflt * 1000;
  if (!Number.isFinite(v) || v < min) {
    throw new Error(`gangway.${key} must be a number of seconds of at least ${min}, not ${v}`);
  }
  return v * 1000;
}

/** Reads and checks `gangway:`; throws naming the key at fault. */
export function readGangwayConfig(root: Config): GangwayScaffolderConfig {
  const config = root.getConfig('gangway');
  const baseUrl = config.getString('baseUrl').replace(/\/+$/, '');
  if (!/^https?:\/\/[^/]+/.test(baseUrl)) {
    throw new Error(`gangway.baseUrl must be an http(s) URL, not '${baseUrl}'`);
  }
  const credentials = config.getOptionalString('credentials') ?? 'user';
  if (credentials !== 'user' && credentials !== 'service') {
    throw new Error(`gangway.credentials must be 'user' or 'service', not '${credentials}'`);
  }
  const token = config.getOptionalString('token');
  if (credentials === 'service' && !token) {
    throw new Error("gangway.credentials is 'service' but gangway.token is not set");
  }
  if (config.getOptionalBoolean('onBehalfOf') && credentials !== 'service') {
    throw new Error("gangway.onBehalfOf applies to credentials 'service' only (user credentials already carry the user)");
  }
  return {
    baseUrl,
    consoleUrl: (config.getOptionalString('consoleUrl') ?? baseUrl).replace(/\/+$/, ''),
    credentials,
    token,
    onBehalfOf: config.getOptionalBoolean('onBehalfOf') ?? false,
    targetPluginId: config.getOptionalString('targetPluginId') ?? 'gangway',
    generateActions: config.getOptionalBoolean('generateActions') ?? false,
    requestTimeoutMs: seconds(config, 'timeouts.requestSeconds', 30, 1),
    runTimeoutMs: seconds(config, 'timeouts.runSeconds', 86400, 1),
    pollIntervalMs: seconds(config, 'timeouts.pollSeconds', 2, 0.05),
  };
}
